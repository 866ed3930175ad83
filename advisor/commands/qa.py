"""advisor qa generate: an evaluation set and a training set generated from a corpus, no labelled questions
needed (the same stage `advisor run --corpus DIR` runs when no --qa is given)."""

from __future__ import annotations

import argparse
from pathlib import Path

from advisor.core.errors import AdvisorError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "qa",
        help="generate an evaluation set from a corpus (no QA file needed)",
        description="Question sets made from a corpus.",
    )
    qsub = p.add_subparsers(dest="qa_command", metavar="ACTION")
    g = qsub.add_parser(
        "generate",
        help="write eval.jsonl, train.jsonl and qa_report.json from a corpus or a run directory",
        description="Generate evaluation questions (with verified unanswerable ones) and training questions about "
        "the same facts from a corpus, split by fact so no evaluation question is ever trained on. Every item is "
        "marked synthetic and carries its verbatim evidence (source, character offsets). The extractive generator "
        "makes questions by rules from sentences holding a date, number, amount, duration, name or defined term "
        "(no LLM, deterministic for a seed); the llm generator asks a model for question/answer/evidence per passage "
        "and keeps only what verifies. Review the set in the dashboard before trusting its numbers.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  advisor qa generate docs/ --out qa/\n"
        "  advisor qa generate runs/x --out qa/ --n 200 --unanswerable 0.25 --seed 1\n"
        "  advisor qa generate docs/ --out qa/ --generator llm --model smollm2-135m-instruct\n"
        "  ADVISOR_QA_API_KEY=... advisor qa generate docs/ --out qa/ --generator llm \\\n"
        "      --base-url http://127.0.0.1:8001/v1 --api-model my-model",
    )
    g.add_argument("corpus", metavar="CORPUS", type=Path, help="folder or file of documents, or a run directory")
    g.add_argument(
        "--out", metavar="DIR", type=Path, required=True, help="folder for eval.jsonl, train.jsonl, qa_report.json"
    )
    g.add_argument("--n", type=int, default=150, help="evaluation questions in all (default 150)")
    g.add_argument("--unanswerable", type=float, default=0.2, help="share of unanswerable questions (default 0.2)")
    g.add_argument("--generator", choices=("extractive", "llm"), default="extractive")
    g.add_argument(
        "--model", metavar="SPEC", default="smollm2-135m-instruct", help="llm generator: model run in process"
    )
    g.add_argument("--base-url", metavar="URL", default="", help="llm generator: an OpenAI-compatible endpoint (…/v1)")
    g.add_argument("--api-model", metavar="NAME", default="", help="llm generator: the served model name at --base-url")
    g.add_argument(
        "--max-passages", type=int, default=200, metavar="N", help="llm generator: passages sent at most (default 200)"
    )
    g.add_argument(
        "--min-answerable",
        type=int,
        default=30,
        metavar="N",
        help="fewer answerable questions than this is an error (default 30)",
    )
    g.add_argument("--split", choices=("by_fact", "by_document"), default="by_fact")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument(
        "--embedder",
        metavar="SPEC",
        default="all-minilm-l6-v2",
        help="sentence embedder for near-duplicate removal ('none' = off)",
    )
    g.add_argument("--text-field", default="text", help="field (JSONL) or column (CSV) holding each record's text")
    g.set_defaults(func=cmd_generate)
    p.set_defaults(func=lambda args: p.print_help() or 2)


def cmd_generate(args) -> int:
    from advisor.core.config import QAConfig
    from advisor.pipeline import say
    from evalsuite.qagen.stage import corpus_view, make_sets, summary, write_sets

    if args.out.exists() and not args.out.is_dir():
        raise AdvisorError(f"--out {args.out} is a file; pass a folder for eval.jsonl, train.jsonl and qa_report.json")
    if args.base_url and not args.api_model:
        raise AdvisorError("--base-url needs --api-model: the name the server serves the model under")
    if args.generator == "extractive" and (args.base_url or args.api_model):
        raise AdvisorError("--base-url and --api-model apply to --generator llm only")
    qc = QAConfig(
        n=args.n,
        unanswerable=args.unanswerable,
        generator=args.generator,
        model=args.model,
        base_url=args.base_url,
        api_model=args.api_model,
        split=args.split,
        max_passages=args.max_passages,
        min_answerable=args.min_answerable,
    )
    if args.generator == "llm" and not args.base_url:
        from advisor.core.models import resolve_model

        resolve_model(args.model, "causal")  # a model that cannot be had fails here, before any work
    qaset = make_sets(corpus_view(args.corpus, args.text_field), qc, args.seed, args.embedder, args.model)
    write_sets(args.out, qaset)
    say(summary(qaset, args.out))
    print(args.out)
    return 0
