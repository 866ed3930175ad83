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


def load_gate(run_dir: Path | None) -> float | None:
    """The run's gate threshold (eval/gate.json), or None: no run directory, no file (runs made before the gate,
    or with it off) or too few questions to calibrate it."""
    if run_dir is None or not (Path(run_dir) / GATE_FILE).is_file():
        return None
    gate = read_json(Path(run_dir) / GATE_FILE, "retrieval gate", "delete it and run the eval stage again")
    return gate.get("threshold") if isinstance(gate, dict) else None


def gate_summary(run_dir: Path, arms: list[str]) -> dict | None:
    """eval/metrics.json's "gate": the calibration (eval/gate.json) and, per retrieval arm, how many answerable
    and unanswerable questions the gate answered with the abstention answer; None without a gate file."""
    from advisor.core.textio import read_jsonl

    run_dir = Path(run_dir)
    if not (run_dir / GATE_FILE).is_file():
        return None
    out = dict(read_json(run_dir / GATE_FILE, "retrieval gate", "delete it and run the eval stage again"))
    out["arms"] = {}
    for arm in arms:
        path = run_dir / "eval" / f"{arm}.jsonl"
        rows = read_jsonl(path) if path.is_file() else []
        if not rows or not rows[0].get("contexts"):
            continue  # a closed-book arm: nothing to gate
        una = [r for r in rows if r.get("unanswerable")]
        out["arms"][arm] = {
            "gated_unanswerable": sum(bool(r.get("gated")) for r in una),
            "n_unanswerable": len(una),
            "gated_answerable": sum(bool(r.get("gated")) for r in rows if not r.get("unanswerable")),
            "n_answerable": len(rows) - len(una),
        }
    return out
