"""advisor recommend: recompute the advice of a finished run from its saved evidence, without re-running
anything, with other weights, situation facts or quality targets; rewrites recommendation.json and the report."""

from __future__ import annotations

import argparse
from pathlib import Path

from advisor.core.errors import AdvisorError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "recommend",
        help="recompute the advice of a finished run with other weights, facts or targets (nothing re-runs)",
        description="Recompute recommendation.json, report.md and report.html of a finished run from its saved "
        "evaluation (and knowledge-update drill, when present). Weights and facts start from the run's config "
        "(recommend section) and are overridden here. 'advisor ls' lists the weight presets and criteria. Quality "
        "targets decide whether an option is fit for purpose (by its 95% CI).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="facts: knowledge_change=static|yearly|monthly|weekly|daily, citations_required=true|false,\n"
        "       style_learning=true|false, budget=low|medium|high, latency_target_s=SECONDS (0 = none),\n"
        "       data_privacy=true|false\n"
        "targets (shares in [0, 1]): accuracy=0.8 (at least), hallucination_rate=0.1 (at most)\n"
        "examples:\n"
        "  advisor recommend runs/x --preset compliance\n"
        "  advisor recommend runs/x --weights accuracy=0.5 build_cost=0.05 --facts knowledge_change=daily\n"
        "  advisor recommend runs/x --targets accuracy=0.6 hallucination_rate=0.2",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="a run directory made by advisor run")
    p.add_argument("--preset", metavar="P", help="weight preset (default: the run's recommend.preset)")
    p.add_argument("--weights", nargs="+", default=[], metavar="k=v", help="criterion weights overriding the preset")
    p.add_argument("--facts", nargs="+", default=[], metavar="k=v", help="situation facts (see below)")
    p.add_argument(
        "--targets",
        nargs="+",
        default=[],
        metavar="k=v",
        help="quality targets for fit for purpose (default: the run's recommend.targets)",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="print the advice only; do not rewrite recommendation.json or the report"
    )
    p.set_defaults(func=cmd_recommend)


EXAMPLE_PAIR = {"weights": "accuracy=0.4", "facts": "knowledge_change=weekly", "targets": "accuracy=0.8"}


def parse_pairs(items: list[str], what: str) -> dict[str, str]:
    """['a=1', 'b=x'] -> {'a': '1', 'b': 'x'}; anything else is a one-line AdvisorError."""
    out = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not sep or not k.strip() or not v.strip():
            raise AdvisorError(
                f"--{what} '{item}' must look like name=value (e.g. --{what} "
                + EXAMPLE_PAIR.get(what, "name=value")
                + ")"
            )
        out[k.strip()] = v.strip()
    return out


def refresh_advice(
    run_dir: Path,
    preset: str | None = None,
    weights: dict | None = None,
    facts: dict | None = None,
    write: bool = True,
    targets: dict | None = None,
) -> dict:
    """The run's advice with its config's recommend settings (preset, weights, facts, targets) overridden
    by the arguments; written to recommendation.json with the report rewritten when `write`."""
    from advisor.core.config import load_run_config
    from advisor.recommend import recommend_run

    if not Path(run_dir).is_dir():
        raise AdvisorError(f"run directory {run_dir} does not exist; pass a folder made by `advisor run`")
    rc = load_run_config(run_dir).recommend
    w = dict(weights or {}) if preset else {**rc.weights, **(weights or {})}
    rec = recommend_run(
        run_dir, preset or rc.preset, w, {**rc.facts, **(facts or {})}, {**rc.targets, **(targets or {})}
    )
    if write:
        write_advice(run_dir, rec)
    return rec


def write_advice(run_dir: Path, rec: dict) -> None:
    """recommendation.json, then the report that shows it."""
    from advisor.core.artifacts import atomic_write_json
    from advisor.report import write_report

    atomic_write_json(Path(run_dir) / "recommendation.json", rec)
    write_report(run_dir)


def print_advice(rec: dict) -> None:
    from advisor.plain import not_above_base, training_sentence

    print(
        f"verdict: {rec['verdict']}  (preset {rec['preset']}; utilities: "
        + ", ".join(f"{o} {u:.3f}" for o, u in rec["utilities"].items())
        + ")"
    )
    fit = rec.get("fit_for_purpose")
    if fit and fit["any_fit"]:
        print(f"  {fit['statement']}")
    for r in rec["reasons"]:
        print(f"  - {r}")
    flips = [(c, f) for c, f in rec["sensitivity"]["flip_points"].items() if f]
    for c, f in sorted(flips, key=lambda cf: abs(cf[1]["change"]))[:3]:
        print(
            f"  flips to {f['new_verdict']} if the weight of {c} goes from {f['weight_now']:.2f} to {f['flips_at']:.2f}"
            + not_above_base(rec, f["new_verdict"])
        )
    if trained := training_sentence(rec):
        print(f"  {trained}")
    print(
        "  win share under random weights: "
        + ", ".join(f"{o} {100 * s:.1f}%" for o, s in rec["sensitivity"]["win_share"].items())
    )
    if rec.get("stability"):
        print(f"  stable under other priorities: {rec['stability']['level']} ({rec['stability']['why']})")
    if rec.get("separation"):
        sep = rec["separation"]
        print(f"  separated by the data: {'yes' if sep['separated'] else 'no'} ({sep['why']})")


def cmd_recommend(args) -> int:
    weights = parse_pairs(args.weights, "weights")
    facts = parse_pairs(args.facts, "facts")
    targets = parse_pairs(args.targets, "targets")
    # every input checked first, then written
    rec = refresh_advice(args.run_dir, args.preset, weights, facts, write=False, targets=targets)
    if not args.dry_run:
        from advisor.core.rundirs import run_lock
        from advisor.pipeline import command_line

        with run_lock(args.run_dir, command_line()):
            write_advice(args.run_dir, rec)
    print_advice(rec)
    if not args.dry_run:
        print(f"report: {args.run_dir / 'report.html'}")
    return 0
