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
    p.add_argument("--out", metavar="RUN_DIR", type=Path,
                   help="run directory (default: runs/<corpus>-<model>-<config hash>, reused and resumed by the same config)")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="dotted config overrides, e.g. tuning.lora.r=16 eval.limit=40 model.quantization=none")
    p.set_defaults(func=cmd_run)


def cmd_run(args) -> int:
    from advisor.core.config import load_config
    from advisor.pipeline import run_pipeline, say

    extra: dict = {}
    if args.corpus:
        extra.setdefault("corpus", {})["path"] = args.corpus
    if args.qa:
        extra.setdefault("corpus", {})["qa"] = args.qa
    if args.train_qa:
        extra.setdefault("corpus", {})["train_qa"] = args.train_qa
    if args.model:
        extra.setdefault("model", {})["spec"] = args.model
    if args.embedder:
        extra.setdefault("retrieval", {})["embedder"] = args.embedder
    cfg = load_config(args.config, args.overrides, extra)
    run_dir = run_pipeline(cfg, args.out)
    rec_path = run_dir / "recommendation.json"
    if rec_path.exists():
        rec = json.loads(rec_path.read_text())
        say(f"verdict: {rec['verdict']}  (utilities: " + ", ".join(f"{o} {u:.3f}" for o, u in rec["utilities"].items()) + ")")
        for r in rec["reasons"][:3]:
            say(f"  - {r}")
    say(f"report: {run_dir / 'report.md'}")
    print(run_dir)
    return 0
