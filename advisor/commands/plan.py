"""advisor plan: what a run will cost on this machine, before anything is built (advisor/plan.py).

advisor plan                                   # the quickstart on the bundled sample
advisor plan --corpus docs/ --qa qa.jsonl --time-budget 10m --device a100 --price-per-hour 2.5
advisor run --dry-run ...                      # the same
"""

from __future__ import annotations

import argparse
from pathlib import Path

from advisor.commands.run import add_plan_options, add_run_arguments


def add_parser(sub) -> None:
    p = sub.add_parser(
        "plan",
        help="print what a run will cost (work, time and peak memory per stage) without building anything",
        description="Read the corpus and QA set and count each stage's work (chunks to embed, training tokens and "
        "steps, eval prompts and their tokens per arm, probe items) without training or generating; estimate each "
        "stage's wall time and peak memory on this machine from a short calibration on the real model (a few "
        "training steps, a batched prefill and decode, the embedder's throughput; cached per machine and model in "
        "$ADVISOR_HOME/calibration/), and the total. Takes the arguments of 'advisor run'.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  advisor plan\n"
        "  advisor plan --corpus docs/ --qa qa.jsonl --time-budget 10m\n"
        "  advisor plan --device a100 --price-per-hour 2.5\n"
        "  advisor run --dry-run      (the same as advisor plan)",
    )
    add_run_arguments(p)
    p.add_argument(
        "--time-budget", metavar="DURATION", help="show how a run would be sized to fit this wall time (e.g. 10m)"
    )
    add_plan_options(p)
    p.set_defaults(func=cmd_plan)


def cmd_plan(args) -> int:
    from advisor.commands.run import config_from_args
    from advisor.plan import plan_only

    cfg = config_from_args(args)
    print(
        plan_only(
            cfg,
            refresh=args.recalibrate,
            device=args.device,
            speedup=args.speedup,
            price_per_hour=args.price_per_hour,
            budget_label=args.time_budget,
            out=Path(args.out) if args.out else None,
        )
    )
    return 0
