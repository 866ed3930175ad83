"""The retrieval arms' abstention gate: a question whose best chunk is both less similar to it and stands out
less from the rest than for nearly every question the corpus does answer is one the corpus most likely does not
answer; the arm gives the abstention answer without generating (docs/architecture.md, 'The retrieval gate').

Two signals per question (Retriever.gate_signals): the dense cosine of its best chunk, and that cosine less the
fifth best's (the margin). A question is turned away only when BOTH are below their thresholds: a short,
reworded question has a lower best cosine than the generated questions the gate is calibrated on, but its best
chunk still stands out (docs/fine-tuning-measured.md, 'The retrieval gate'). The thresholds are calibrated per
run, never on evaluation questions: each at the `retrieval.abstain_gate` quantile (0.05) of its signal over the
answerable training questions (the given --train-qa file, else the qa stage's generated qa/train.jsonl); together
they turn away at most that share of them (`calibration_declined` says how many).

    gate = calibrate_gate(retriever, questions, share=0.05)   # {"threshold": 0.53, "margin_threshold": 0.04, ...}
    write_gate(run_dir, gate); load_gate(run_dir)             # eval/gate.json; the eval stage and the server
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from advisor.core.artifacts import atomic_write_json
from advisor.core.textio import read_json

GATE_FILE = "eval/gate.json"
MIN_QUESTIONS = 20  # fewer answerable training questions than this: no gate (a 5% quantile of 10 is one question)
SIGNAL = (
    "dense cosine between the question and its most similar chunk, and that cosine less the 5th most similar's "
    "(the margin); turned away when both are below their thresholds"
)


@dataclass(frozen=True)
class Gate:
    """A calibrated gate: `threshold` on the best cosine and `margin` on the best less the 5th best; a gate file
    written before the margin (margin None) turns away on the best cosine alone."""

    threshold: float
    margin: float | None = None

    def declines(self, signals) -> bool:
        """Whether a question with these gate signals (best cosine, margin) gets the abstention answer."""
        return bool(self.declines_all(np.asarray(signals, dtype=float).reshape(1, 2))[0])

    def declines_all(self, signals) -> np.ndarray:
        """declines for each row of an (n, 2) array of gate signals: a boolean mask."""
        sig = np.asarray(signals, dtype=float).reshape(-1, 2)
        out = sig[:, 0] < self.threshold
        return out if self.margin is None else out & (sig[:, 1] < self.margin)


def calibrate_gate(retriever, questions: list[str], share: float, source: str = "") -> dict:
    """The gate's thresholds from answerable questions the corpus answers: the `share` quantile of their best
    chunks' cosines and of their margins. With fewer than MIN_QUESTIONS questions the threshold is None (no gate)
    and `why` says so."""
    gate = {"share": share, "n_questions": len(questions), "source": source, "signal": SIGNAL, "threshold": None}
    if len(questions) < MIN_QUESTIONS:
        gate["why"] = (
            f"{len(questions)} answerable training questions, fewer than the {MIN_QUESTIONS} the gate is "
            "calibrated on: no gate"
        )
        return gate
    sig = retriever.gate_signals(questions)
    gate["threshold"] = round(float(np.quantile(sig[:, 0], share)), 6)
    gate["margin_threshold"] = round(float(np.quantile(sig[:, 1], share)), 6)
    g = Gate(gate["threshold"], gate["margin_threshold"])
    gate["calibration_declined"] = int(g.declines_all(sig).sum())  # of n_questions: at most share of them
    gate["cosine_median"] = round(float(np.median(sig[:, 0])), 6)
    gate["margin_median"] = round(float(np.median(sig[:, 1])), 6)
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


def load_gate(run_dir: Path | None) -> Gate | None:
    """The run's Gate, or None: no gate file (see read_gate) or too few questions to calibrate it."""
    gate = read_gate(run_dir)
    if not gate or gate.get("threshold") is None:
        return None
    return Gate(
        float(gate["threshold"]), None if gate.get("margin_threshold") is None else float(gate["margin_threshold"])
    )


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
