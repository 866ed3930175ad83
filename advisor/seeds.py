"""Stage `seeds`: the tuned arms answered again with the adapters of the other seeds (tuning.seeds > 1).

    advisor run ... tuning.seeds=3      # trains adapter/ (seed) and adapter_seeds/seed-1, seed-2 (seed+1, seed+2)

Each extra adapter's LoRA weights are loaded into the evaluation model in place (advisor/curve.py
`adapter_weights`), the tuned arms answer every eval question, and the answers go to
eval/seeds/<arm>.seed-<i>.jsonl. metrics.json then carries, per tuned arm,
    "seed_spread": {"seeds": [0, 1, 2], "accuracy": [...], "mean": float, "sd": float,
                    "top_answer": [...], "top_share": [...], "collapsed": [...]}
next to the question-level CI: the CI says how sure the number is for THIS adapter; the spread says how much
another training run with another seed would move it. Each seed's answers also go through the collapse guard
(evalsuite/collapse.py): its commonest answer, that answer's share, and whether it collapsed.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from advisor.core.artifacts import mean_accuracy, numbered_dirs, read_jsonl
from evalsuite.collapse import detect_collapse


def seed_adapters(run_dir: Path) -> list[tuple[int, Path]]:
    """(i, folder) of the finished extra-seed adapters, in order."""
    return numbered_dirs(Path(run_dir) / "adapter_seeds", "seed", "training.json")


def answers_path(run_dir: Path, arm: str, i: int) -> Path:
    return Path(run_dir) / "eval" / "seeds" / f"{arm}.seed-{i}.jsonl"


def seed_spread(run_dir: Path, arm: str, seed: int) -> dict | None:
    """The arm's accuracy per seed (the main adapter first) with mean and standard deviation, and each seed's
    commonest answer with its share and the collapse guard's finding; None with one seed."""
    run_dir = Path(run_dir)
    extra = [(i, answers_path(run_dir, arm, i)) for i, _ in seed_adapters(run_dir)]
    extra = [(i, p) for i, p in extra if p.is_file()]
    main = run_dir / "eval" / f"{arm}.jsonl"
    if not extra or not main.is_file():
        return None
    rows = [read_jsonl(main)] + [read_jsonl(p) for _, p in extra]
    accs = [mean_accuracy(r) for r in rows]
    guard = [detect_collapse([x["answer"] for x in r]) for r in rows]
    return {
        "seeds": [seed] + [seed + i for i, _ in extra],
        "accuracy": [round(a, 4) for a in accs],
        "mean": round(statistics.fmean(accs), 4),
        "sd": round(statistics.stdev(accs), 4),
        "top_answer": [g["top_answer"] for g in guard],
        "top_share": [g["top_share"] for g in guard],
        "collapsed": [g["collapsed"] for g in guard],
    }


def collapsed_seeds(spread: dict | None, first: bool = False) -> list[tuple[int, str, float]]:
    """(seed, commonest answer, its share) of each seed whose answers the collapse guard flagged in a
    `seed_spread`: the extra seeds only, unless `first` (the first seed's finding is the arm's own, in
    metrics.json's `collapse`); none for a spread measured before it carried the guard's findings.

    >>> sp = {"seeds": [0, 1, 2], "top_answer": ["10", "10", "3"], "top_share": [0.3, 0.26, 0.05],
    ...       "collapsed": [True, True, False]}
    >>> collapsed_seeds(sp), collapsed_seeds(sp, first=True)[0], collapsed_seeds({"seeds": [0, 1]})
    ([(1, '10', 0.26)], (0, '10', 0.3), [])
    """
    sp = spread or {}
    rows = list(zip(*(sp.get(k) or [] for k in ("seeds", "top_answer", "top_share", "collapsed"))))
    return [(seed, top, share) for seed, top, share, gone in rows[0 if first else 1 :] if gone]
