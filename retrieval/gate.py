"""The retrieval arms' abstention gate: a question whose best chunk is less similar to it than nearly every
question the corpus does answer is one the corpus most likely does not answer; the arm gives the abstention
answer without generating (docs/architecture.md, 'The retrieval gate').

The threshold is calibrated per run, never on evaluation questions: the dense cosine between each answerable
training question (the given --train-qa file, else the qa stage's generated qa/train.jsonl) and its best chunk;
the gate sits at the `retrieval.abstain_gate` quantile of those (0.05: it would turn away 5% of them).

    gate = calibrate_gate(retriever, questions, share=0.05)   # {"threshold": 0.62, "n_questions": 420, ...}
    write_gate(run_dir, gate); load_gate(run_dir)             # eval/gate.json; the eval stage and the server
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from advisor.core.artifacts import atomic_write_json
from advisor.core.textio import read_json

GATE_FILE = "eval/gate.json"
MIN_QUESTIONS = 20  # fewer answerable training questions than this: no gate (a 5% quantile of 10 is one question)
SIGNAL = "dense cosine between the question and its most similar chunk"


def calibrate_gate(retriever, questions: list[str], share: float, source: str = "") -> dict:
    """The gate's threshold from answerable questions the corpus answers: the `share` quantile of their best
    chunks' cosines. With fewer than MIN_QUESTIONS questions the threshold is None (no gate) and `why` says so."""
    gate = {"share": share, "n_questions": len(questions), "source": source, "signal": SIGNAL, "threshold": None}
    if len(questions) < MIN_QUESTIONS:
        gate["why"] = (
            f"{len(questions)} answerable training questions, fewer than the {MIN_QUESTIONS} the gate is "
            "calibrated on: no gate"
        )
        return gate
    cos = retriever.best_cosine(questions)
    gate["threshold"] = round(float(np.quantile(cos, share)), 6)
    gate["cosine_median"] = round(float(np.median(cos)), 6)
    return gate


def write_gate(run_dir: Path, gate: dict) -> None:
    atomic_write_json(Path(run_dir) / GATE_FILE, gate)


def read_gate(run_dir: Path | None) -> dict | None:
    """The run's eval/gate.json, or None when there is none (no run directory, a run made before the gate, or
    with it off). A file that is not a JSON object is an error naming it."""
    from advisor.core.errors import AdvisorError

    if run_dir is None or not (Path(run_dir) / GATE_FILE).is_file():
        return None
    path = Path(run_dir) / GATE_FILE
    fix = "delete it and run the eval stage again"
    gate = read_json(path, "retrieval gate", fix)
    if not isinstance(gate, dict):
        raise AdvisorError(f"retrieval gate {path} is not a JSON object; {fix}")
    return gate


def load_gate(run_dir: Path | None) -> float | None:
    """The run's gate threshold, or None: no gate file (see read_gate) or too few questions to calibrate it."""
    gate = read_gate(run_dir)
    return gate.get("threshold") if gate else None


def gate_summary(run_dir: Path, arms: list[str]) -> dict | None:
    """eval/metrics.json's "gate": the calibration (eval/gate.json) and, per retrieval arm (the arm table's
    needs_index), how many answerable and unanswerable questions the gate answered with the abstention answer;
    None without a gate file."""
    from advisor.core.arms import ARM
    from advisor.core.textio import read_jsonl

    gate = read_gate(run_dir)
    if gate is None:
        return None
    out = {**gate, "arms": {}}
    for arm in arms:
        path = Path(run_dir) / "eval" / f"{arm}.jsonl"
        if not ARM[arm].needs_index or not path.is_file():
            continue  # a closed-book arm has nothing to gate
        rows = read_jsonl(path)
        una = [r for r in rows if r.get("unanswerable")]
        out["arms"][arm] = {
            "gated_unanswerable": sum(bool(r.get("gated")) for r in una),
            "n_unanswerable": len(una),
            "gated_answerable": sum(bool(r.get("gated")) for r in rows if not r.get("unanswerable")),
            "n_answerable": len(rows) - len(una),
        }
    return out
