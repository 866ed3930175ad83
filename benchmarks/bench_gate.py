"""The retrieval gate's rules side by side on one run's index (docs/fine-tuning-measured.md, 'The retrieval gate'):
the cosine alone, the margin alone, and both (the default), each calibrated at a share of the answerable
calibration questions, and what each would turn away of the evaluation questions.

    .venv/bin/python benchmarks/bench_gate.py RUN_DIR                      # the run's own files
    .venv/bin/python benchmarks/bench_gate.py RUN_DIR --calib train.jsonl --eval eval.jsonl --arms rag tuned_rag

RUN_DIR holds an index (a run directory or `advisor index --out` folder). --calib defaults to the run's
qa/train.jsonl, --eval to its config's corpus.qa. With --arms, RUN_DIR/eval/<arm>.jsonl must come from a run
evaluated with retrieval.abstain_gate=0 (every question answered): each rule's accuracy, abstention and false
abstention are then exact (a gated answerable question is wrong and a false abstention, a gated unanswerable
one an abstention; the others keep their answers). The evaluation questions chose nothing here: the thresholds
come from the calibration questions only; this script is how the rule was chosen and is reported.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SHARES = (0.02, 0.05, 0.1)


def rules(calib: np.ndarray, share: float) -> dict:
    """Per rule, a Gate (retrieval/gate.py) with its thresholds at `share` of `calib`: the cosine alone, the margin
    alone (any cosine is below +inf) and both, the gate's own rule."""
    from retrieval.gate import Gate

    tb, tm = float(np.quantile(calib[:, 0], share)), float(np.quantile(calib[:, 1], share))
    return {"cosine": Gate(tb), "margin": Gate(float("inf"), tm), "both": Gate(tb, tm)}


def main(argv: list[str] | None = None) -> int:
    from advisor.core.textio import read_jsonl
    from evalsuite.metrics.hallucination import is_abstention
    from retrieval.index import Retriever

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--calib", type=Path, help="answerable calibration questions (default RUN_DIR/qa/train.jsonl)")
    ap.add_argument("--eval", type=Path, help="evaluation questions (default: the run config's corpus.qa)")
    ap.add_argument("--arms", nargs="*", default=[], help="retrieval arms evaluated with retrieval.abstain_gate=0")
    a = ap.parse_args(argv)
    r = Retriever(a.run_dir)
    calib = a.calib or a.run_dir / "qa" / "train.jsonl"
    if a.eval is None:
        import yaml

        a.eval = Path(yaml.safe_load((a.run_dir / "config.yaml").read_text())["corpus"]["qa"])
    cal = r.gate_signals([q["question"] for q in read_jsonl(calib) if not q.get("unanswerable")])
    ev = read_jsonl(a.eval)
    una = np.array([bool(q.get("unanswerable")) for q in ev])
    sig = r.gate_signals([q["question"] for q in ev])
    print(f"{len(cal)} calibration questions ({calib}); {int((~una).sum())} answerable, {int(una.sum())} unanswerable")
    print("share  rule    calibration  answerable declined  unanswerable declined")
    for share in SHARES:
        for name, gate in rules(cal, share).items():
            d, dc = gate.declines_all(sig), gate.declines_all(cal)
            u = f"{100 * d[una].mean():5.1f}%" if una.any() else "    -"
            print(f"{share:<6} {name:7s} {100 * dc.mean():10.1f}% {100 * d[~una].mean():18.1f}% {u:>21}")
    for arm in a.arms:
        by_id = {x["id"]: x for x in read_jsonl(a.run_dir / "eval" / f"{arm}.jsonl")}
        kept = [i for i, q in enumerate(ev) if q.get("id") in by_id]
        rows, s = [by_id[ev[i]["id"]] for i in kept], sig[kept]  # the eval questions' signals, embedded once
        un = np.array([bool(x["unanswerable"]) for x in rows])
        acc = np.array([x["scores"].get("accuracy", 0.0) for x in rows])  # answerable ones only carry it
        abst = np.array([is_abstention(x["answer"]) for x in rows])
        for name, gate in [("none", None)] + list(rules(cal, 0.05).items()):
            g = np.zeros(len(s), bool) if gate is None else gate.declines_all(s)
            ab = g | abst
            una_txt = f"abstains on unanswerable {100 * ab[un].mean():5.1f}%, " if un.any() else ""
            print(
                f"{arm} at 0.05, {name:6s}: accuracy {100 * np.where(g, 0.0, acc)[~un].mean():5.1f}%, {una_txt}"
                f"false abstention {100 * ab[~un].mean():5.1f}% ({int(g[~un].sum())} + {int(g[un].sum())} gated)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
