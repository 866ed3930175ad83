"""advisor drill: the knowledge-update drill on a finished run (advisor/drill.py), then the advice and
the report recomputed with its figures."""

from __future__ import annotations

from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser(
        "drill",
        help="knowledge-update drill: change facts, time re-index vs retrain, accuracy on the changed facts",
        description="Change or add facts in a finished run's corpus, then measure RAG (re-index time, accuracy on "
        "the changed facts) and the tuned model (adapter training time on the changed documents, accuracy on them). "
        "The figures feed the freshness criterion; recommendation.json and the report are rewritten. "
        "On the bundled sample it takes about 3 minutes on 2 CPU cores.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="a finished run directory")
    p.add_argument(
        "--changes",
        metavar="DIR",
        type=Path,
        help="folder with corpus/ (changed or new documents) and qa.jsonl (questions on the changed facts); "
        "default: the bundled sample's drill, for runs on the sample corpus",
    )
    p.add_argument("--steps", type=int, default=20, help="optimizer steps of the fine-tune update (default 20)")
    from advisor.commands.eval import add_backend_args

    add_backend_args(p)
    p.set_defaults(func=cmd_drill)


def cmd_drill(args) -> int:
    from advisor.commands.eval import backend_overrides
    from advisor.commands.recommend import print_advice, refresh_advice
    from advisor.core.rundirs import run_lock
    from advisor.drill import check_drill_inputs, run_drill
    from advisor.pipeline import command_line
    from advisor.report import _ci

    check_drill_inputs(args.run_dir, args.changes, args.steps, backend_overrides(args))  # before the lock (a file)
    with run_lock(args.run_dir, command_line()):
        drill = run_drill(args.run_dir, args.changes, args.steps, backend_overrides(args))
        advice = refresh_advice(args.run_dir)
    print(f"knowledge-update drill: {drill['n_changed_documents']} documents, {drill['n_questions']} questions")
    print(f"  before the update, rag: {_ci(drill['before']['accuracy'])} % correct")
    for o, d in drill["options"].items():
        print(f"  {o:<10} {d['update_s']:8.1f} s  {_ci(d['accuracy'])} % correct  ({d['how']})")
    print_advice(advice)
    print(f"report: {args.run_dir / 'report.html'}")
    return 0
