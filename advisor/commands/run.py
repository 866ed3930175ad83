"""advisor run: the whole pipeline, corpus to recommendation, in one run directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from advisor.core.corpus import SUPPORTED_LIST
from advisor.core.textio import read_json


def add_parser(sub) -> None:
    p = sub.add_parser(
        "run",
        help="run the whole pipeline (ingest, index + tune in parallel, evaluate 4 arms, recommend, report)",
        description="Run the whole pipeline on a corpus and QA set: ingest and chunk the corpus; build the FAISS "
        "index and train the QLoRA adapter in two parallel processes; answer the eval questions with the base, "
        "rag, tuned and tuned_rag arms; score accuracy, hallucination and forgetting with 95% CIs; write "
        "recommendation.json and report.md. Finished stages are skipped on a rerun. With no arguments it runs the "
        "quickstart preset on the bundled sample domain.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  advisor run\n"
        "  advisor run --corpus docs/ --qa qa.jsonl --model smollm2-135m-instruct\n"
        "  advisor run --config my.yaml tuning.lora.r=16 eval.limit=40\n"
        "  advisor ls      (presets, bundled models, metrics, probe sets)",
    )
    add_run_arguments(p)
    p.add_argument(
        "--time-budget",
        metavar="DURATION",
        help="fit the run into this wall time (e.g. 10m, 1h30m): training steps, eval questions and probe "
        "items are cut by a stated rule, every arm kept; what was cut goes into the plan, manifest and report",
    )
    p.add_argument(
        "--yes",
        action="store_true",
        help="start a run planned longer than run.confirm_over (1h) without asking (needed when not on a terminal)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the plan (advisor plan) and build nothing")
    add_plan_options(p)
    p.set_defaults(func=cmd_run)


def add_run_arguments(p) -> None:
    """The arguments `advisor run` and `advisor plan` share."""
    p.add_argument(
        "--corpus", metavar="PATH", help=f"folder or file of documents ({SUPPORTED_LIST}); default: the bundled sample"
    )
    p.add_argument(
        "--qa",
        metavar="FILE",
        help="evaluation questions, JSONL: question, answers[, id, source, unanswerable]; "
        "default: generated from the corpus (stage qa, RUN_DIR/qa/; the bundled sample keeps its own)",
    )
    p.add_argument(
        "--train-qa", metavar="FILE", help="training questions about the same facts (never the eval questions), JSONL"
    )
    p.add_argument(
        "--model",
        metavar="SPEC",
        help="base causal LM: bundled name (smollm2-135m-instruct, gemma3-270m), local folder or Hub id",
    )
    p.add_argument(
        "--embedder", metavar="SPEC", help="sentence embedder: bundled name (all-minilm-l6-v2), local folder or Hub id"
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        default="quickstart",
        help="a preset name or YAML file of overrides (default: quickstart; see advisor ls)",
    )
    p.add_argument(
        "--out",
        metavar="RUN_DIR",
        help="run directory (default: runs/<corpus>-<model>-<config hash>, reused and resumed by the same config); "
        "a new or empty folder or an existing run directory",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="write into an --out folder that holds other files (never overwriting any of them)",
    )
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="dotted config overrides, e.g. tuning.lora.r=16 eval.limit=40 model.quantization=none",
    )


def add_plan_options(p) -> None:
    """How a plan turns time into money and when it measures again (advisor plan, advisor run --dry-run)."""
    p.add_argument(
        "--device",
        metavar="NAME",
        help="also show the time on another machine: t4, l4, a10g, a100, h100, "
        "cpu-16 (an assumed speed-up, printed with it) or any name with --speedup",
    )
    p.add_argument("--speedup", type=float, metavar="X", help="how many times faster than this machine --device is")
    p.add_argument(
        "--price-per-hour",
        type=float,
        metavar="PRICE",
        help="hardware price per hour: the plan's time turned into money (on --device when given)",
    )
    p.add_argument(
        "--recalibrate",
        action="store_true",
        help="measure this machine again instead of using the cached calibration ($ADVISOR_HOME/calibration/); "
        "this also forgets the tune speed the last run recorded there",
    )


def config_from_args(args):
    """The config a run or plan command asks for: preset or file, path flags, --time-budget, overrides."""
    from advisor.core.config import load_config, parse_duration

    extra = path_flags(
        args,
        [
            ("corpus", "corpus", "path"),
            ("qa", "corpus", "qa"),
            ("train_qa", "corpus", "train_qa"),
            ("model", "model", "spec"),
            ("embedder", "retrieval", "embedder"),
            ("time_budget", "run", "time_budget"),
        ],
    )
    if getattr(args, "time_budget", None):
        parse_duration(args.time_budget, "--time-budget")
    return load_config(args.config, args.overrides, extra)


def path_flags(args, flags: list[tuple[str, str, str]]) -> dict:
    """{section: {key: value}} for the flags given; a flag given as an empty string is an error (an empty
    --corpus must not quietly mean the bundled sample)."""
    from advisor.core.errors import AdvisorError

    extra: dict = {}
    for flag, section, key in flags:
        value = getattr(args, flag, None)
        if value is None:
            continue
        if not str(value).strip():
            raise AdvisorError(f"--{flag.replace('_', '-')} is empty; pass a value, or leave the option out")
        extra.setdefault(section, {})[key] = value
    if getattr(args, "out", None) is not None and not str(args.out).strip():
        raise AdvisorError("--out is empty; pass a folder, or leave the option out")
    if getattr(args, "config", None) is not None and not str(args.config).strip():
        raise AdvisorError("--config is empty; pass a preset name or a YAML file, or leave the option out")
    return extra


def cmd_run(args) -> int:
    import sys

    from advisor.core.logs import say
    from advisor.pipeline import run_pipeline
    from advisor.plan import prepare_run

    if args.dry_run:
        from advisor.commands.plan import cmd_plan

        return cmd_plan(args)
    cfg = config_from_args(args)
    out = Path(args.out) if args.out else None
    cfg, record = prepare_run(
        cfg,
        out,
        args.force,
        yes=args.yes,
        interactive=sys.stdin.isatty(),
        refresh=args.recalibrate,
        budget_label=args.time_budget,
        device=args.device,
        speedup=args.speedup,
        price_per_hour=args.price_per_hour,
    )
    run_dir = run_pipeline(cfg, out, force=args.force, plan=record)
    rec_path = run_dir / "recommendation.json"
    if rec_path.exists():
        rec = read_json(rec_path, "recommendation", f"run advisor recommend {run_dir}")
        say(
            f"verdict: {rec['verdict']}  (utilities: "
            + ", ".join(f"{o} {u:.3f}" for o, u in rec["utilities"].items())
            + ")"
        )
        for r in rec["reasons"][:3]:
            say(f"  - {r}")
    say(f"report: {run_dir / 'report.md'}")
    print(run_dir)
    return 0
