"""advisor run: the whole pipeline, corpus to recommendation, in one run directory."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


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
    p.add_argument("--corpus", metavar="PATH", help="folder or file of documents (.md, .txt, .jsonl); default: the bundled sample")
    p.add_argument("--qa", metavar="FILE", help="evaluation questions, JSONL: question, answers[, id, source, unanswerable]; "
                   "default: generated from the corpus (stage qa, RUN_DIR/qa/; the bundled sample keeps its own)")
    p.add_argument("--train-qa", metavar="FILE", help="training questions about the same facts (never the eval questions), JSONL")
    p.add_argument("--model", metavar="SPEC", help="base causal LM: bundled name (smollm2-135m-instruct, gemma3-270m), local folder or Hub id")
    p.add_argument("--embedder", metavar="SPEC", help="sentence embedder: bundled name (all-minilm-l6-v2), local folder or Hub id")
    p.add_argument("--config", metavar="FILE", default="quickstart",
                   help="a preset name or YAML file of overrides (default: quickstart; see advisor ls)")
    p.add_argument("--out", metavar="RUN_DIR",
                   help="run directory (default: runs/<corpus>-<model>-<config hash>, reused and resumed by the same config); "
                   "a new or empty folder or an existing run directory")
    p.add_argument("--force", action="store_true",
                   help="write into an --out folder that holds other files (never overwriting any of them)")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="dotted config overrides, e.g. tuning.lora.r=16 eval.limit=40 model.quantization=none")
    p.set_defaults(func=cmd_run)


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
    from advisor.core.config import load_config
    from advisor.pipeline import run_pipeline, say

    extra = path_flags(args, [("corpus", "corpus", "path"), ("qa", "corpus", "qa"), ("train_qa", "corpus", "train_qa"),
                              ("model", "model", "spec"), ("embedder", "retrieval", "embedder")])
    cfg = load_config(args.config, args.overrides, extra)
    run_dir = run_pipeline(cfg, Path(args.out) if args.out else None, force=args.force)
    rec_path = run_dir / "recommendation.json"
    if rec_path.exists():
        rec = json.loads(rec_path.read_text())
        say(f"verdict: {rec['verdict']}  (utilities: " + ", ".join(f"{o} {u:.3f}" for o, u in rec["utilities"].items()) + ")")
        for r in rec["reasons"][:3]:
            say(f"  - {r}")
    say(f"report: {run_dir / 'report.md'}")
    print(run_dir)
    return 0
