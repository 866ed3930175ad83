"""advisor eval: re-evaluate an existing run directory (answers, scores, probes, metrics.json).

advisor eval runs/sample-smollm2-135m-instruct-af0baa8d --arms base rag --limit 20
advisor eval RUN_DIR --judge smollm2-135m-instruct        # add the optional LLM judge and its kappa
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="re-evaluate an existing run: answer with the arms again, rescore, rewrite eval/metrics.json",
        description="Answer the run's QA set again with the chosen arms (reusing its index and adapter), score "
        "every answer (EM, F1, containment, semantic similarity, abstention, hallucination, wrong-and-confident, "
        "faithfulness, recall@k, MRR, latency, prompt tokens, peak memory), rerun the forgetting probes when their "
        "inputs changed, and rewrite eval/<arm>.jsonl and eval/metrics.json with 95% bootstrap CIs and paired "
        "differences between arms; then refresh recommendation.json and report.md.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  advisor eval runs/my-run\n  advisor eval runs/my-run --arms base rag --limit 20\n"
        "  advisor eval runs/my-run --qa runs/my-run/qa/reviewed.jsonl   (after reviewing a generated set)\n"
        "  advisor eval runs/my-run --judge smollm2-135m-instruct",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="a run directory made by 'advisor run'")
    p.add_argument("--arms", nargs="+", metavar="ARM", help="arms to re-answer (default: the run's eval.arms)")
    p.add_argument(
        "--limit", type=int, metavar="N", help="answer at most N questions (answerable/unanswerable in proportion)"
    )
    p.add_argument(
        "--qa",
        metavar="FILE",
        type=Path,
        help="evaluate on this QA file instead of the run's (e.g. RUN_DIR/qa/reviewed.jsonl after a review)",
    )
    p.add_argument(
        "--judge", metavar="SPEC", help="also grade answers with this local model as LLM judge (off by default)"
    )
    add_backend_args(p)
    p.add_argument("overrides", nargs="*", metavar="key=value", help="dotted eval overrides, e.g. eval.batch_size=32")
    p.set_defaults(func=cmd_eval)


def add_backend_args(p) -> None:
    """--backend/--base-url/--served-model/--served-adapter: the generation section from the command line."""
    p.add_argument(
        "--backend",
        choices=["hf", "openai"],
        help="generate in this process (hf) or on an "
        "OpenAI-compatible server (openai; default: the run's generation.backend)",
    )
    p.add_argument("--base-url", metavar="URL", help="the server's API root, e.g. http://127.0.0.1:8001/v1")
    p.add_argument("--served-model", metavar="NAME", help="served name of the base model (default: model.spec)")
    p.add_argument(
        "--served-adapter",
        metavar="NAME",
        help="served name of the run's adapter (vLLM --lora-modules NAME=PATH; default: the run folder's name)",
    )


def backend_overrides(args) -> dict:
    """The generation settings given on the command line (an empty dict keeps the run's)."""
    out = {}
    for flag, key in (
        ("backend", "backend"),
        ("base_url", "base_url"),
        ("served_model", "model"),
        ("served_adapter", "adapter_model"),
    ):
        if getattr(args, flag, None):
            out[key] = getattr(args, flag)
    if out.get("base_url") and "backend" not in out:
        out["backend"] = "openai"  # a base URL alone means: generate there
    return out


def cmd_eval(args) -> int:
    from advisor.core.arms import ARMS, uses_adapter
    from advisor.core.artifacts import RunDir, sha256_file
    from advisor.core.config import Config, _deep_merge, from_dict, load_run_config, parse_override
    from advisor.core.errors import AdvisorError
    from advisor.core.qa import load_qa, require_answerable
    from advisor.core.rundirs import attempt, run_lock
    from advisor.pipeline import advise, check_eval_inputs, check_model_specs, command_line, evaluate, say
    from advisor.report import write_report

    run_dir = args.run_dir
    if not run_dir.is_dir():
        raise AdvisorError(f"run directory {run_dir} does not exist; make one with 'advisor run'")
    base = load_run_config(run_dir)
    over: dict = {"eval": {}}
    if args.arms:
        over["eval"]["arms"] = args.arms
    if args.limit is not None:
        over["eval"]["limit"] = args.limit
    if args.judge is not None:
        if not args.judge.strip():
            raise AdvisorError("--judge is empty; pass a model spec (e.g. smollm2-135m-instruct), or leave it out")
        over["eval"]["judge"] = args.judge
    over["generation"] = backend_overrides(args)
    data = _deep_merge(base.to_dict(), over)
    for item in args.overrides:
        data = _deep_merge(data, parse_override(item))
    cfg: Config = from_dict(Config, data)
    if args.qa:
        cfg.corpus.qa = str(args.qa.resolve())
    qa = cfg.corpus.eval_file(run_dir)
    require_answerable(load_qa(qa), qa)
    check_model_specs(cfg)  # the judge and the embedders too: a typo fails now, not after answering
    run = RunDir(run_dir)
    check_eval_inputs(run, cfg)
    from advisor.core.remote_lm import check_generation_server

    check_generation_server(cfg, str(run_dir / "adapter") if uses_adapter(cfg.eval.arms) else None)
    # metrics.json keeps covering the run's own arms plus the re-answered ones.
    report_arms = [
        a for a in ARMS if a in cfg.eval.arms or (a in base.eval.arms and (run / "eval" / f"{a}.jsonl").exists())
    ]
    with run_lock(run_dir, command_line()), attempt(run_dir, command_line()) as work:
        run = RunDir(work)
        evaluate(run, cfg, sha256_file(qa), force=True, report_arms=report_arms)
        cfg.eval.arms = report_arms  # the recommendation and report cover every arm metrics.json holds
        advise(run, cfg)
        write_report(run.path)
    say(f"metrics: {run_dir / 'eval' / 'metrics.json'}; report: {run_dir / 'report.md'}")
    print(run_dir / "eval" / "metrics.json")
    return 0
