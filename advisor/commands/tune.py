"""advisor tune: the tuning track alone (sft data + QLoRA adapter), resumable after a crash.

advisor tune RUN_DIR                          # a run directory that has config.yaml and chunks.jsonl
advisor tune RUN_DIR tuning.max_steps=200     # the same run, trained again with its config changed so
advisor tune --corpus docs/ --qa qa.jsonl [--out RUN_DIR] [key=value ...]   # ingest, then tune
"""

from __future__ import annotations

import argparse
from pathlib import Path

from advisor.core.textio import read_json


def add_parser(sub) -> None:
    p = sub.add_parser(
        "tune",
        help="run the tuning track alone: leak-free training data, then the QLoRA adapter (resumes after a crash)",
        description="Build the training data (corpus text, training questions (given, else generated from the "
        "corpus), verified unanswerable questions for abstention, RAFT examples; eval questions never trained on; leakage report in sft/leakage.json) and train the adapter "
        "into RUN_DIR/adapter (PEFT format, training.json manifest, val_loss.png). Checkpoints every "
        "tuning.save_every steps; rerunning the same command resumes from the last one. Given an existing run "
        "directory, it uses that run's config.yaml, with --config, --model, --train-qa and key=value overrides "
        "applied on top (its corpus and evaluation questions stay its own); otherwise it ingests the corpus "
        "like 'advisor run' and writes the config first.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  advisor tune runs/sample-smollm2-xxxx\n"
        "  advisor tune runs/sample-smollm2-xxxx tuning.epochs=8 tuning.lr=1e-3\n"
        "  advisor tune --corpus docs/ --qa qa.jsonl --out runs/docs tuning.max_steps=200 tuning.lora.r=8\n"
        "  accelerate launch -m tuning.train RUN_DIR     (several GPUs: DDP, see README)",
    )
    p.add_argument("run_dir", nargs="?", metavar="RUN_DIR", help="existing run directory to tune in")
    p.add_argument("--corpus", metavar="PATH", help="folder or file of documents; default: the bundled sample")
    p.add_argument("--qa", metavar="FILE", help="evaluation questions (JSONL), only to keep them out of training")
    p.add_argument("--train-qa", metavar="FILE", help="training questions about the same facts (JSONL)")
    p.add_argument("--model", metavar="SPEC", help="base causal LM: bundled name, local folder or Hub id")
    p.add_argument(
        "--config",
        metavar="FILE",
        help="a preset name or YAML file of overrides (default: quickstart, or RUN_DIR's own)",
    )
    p.add_argument("--out", metavar="RUN_DIR", help="run directory to create or reuse (new, empty, or a run directory)")
    p.add_argument(
        "--force", action="store_true", help="write into an --out folder holding other files (never overwriting them)"
    )
    p.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides, e.g. tuning.lora.r=8")
    p.set_defaults(func=cmd_tune)


def cmd_tune(args) -> int:

    from advisor.commands.run import path_flags
    from advisor.core.config import load_run_config
    from advisor.core.errors import AdvisorError
    from advisor.core.rundirs import attempt, check_out, run_lock
    from advisor.pipeline import command_line, say, tune_stage

    # argparse puts a lone key=value into run_dir when no RUN_DIR is given
    if args.run_dir is not None and "=" in str(args.run_dir) and not Path(args.run_dir).exists():
        args.overrides, args.run_dir = [str(args.run_dir), *args.overrides], None
    extra = path_flags(
        args,
        [
            ("corpus", "corpus", "path"),
            ("qa", "corpus", "qa"),
            ("train_qa", "corpus", "train_qa"),
            ("model", "model", "spec"),
        ],
    )
    fresh = any([extra, args.overrides, args.out, args.config is not None])
    if args.run_dir is not None and not fresh:
        run_dir = Path(args.run_dir)
        if not (run_dir / "config.yaml").is_file() or not (run_dir / "chunks.jsonl").is_file():
            raise AdvisorError(
                f"{run_dir} is not an ingested run directory (needs config.yaml and chunks.jsonl); "
                "pass --corpus/--qa to make one, or run 'advisor run' first"
            )
        from advisor.pipeline import check_model_specs

        cfg = load_run_config(run_dir)
        check_model_specs(cfg)
        with run_lock(run_dir, command_line()), attempt(run_dir, command_line()) as work:
            tune_stage(work, cfg)
    else:
        from advisor.core.artifacts import RunDir
        from advisor.core.config import dump_config, load_config, warn_ignored_settings
        from advisor.pipeline import default_run_dir, generate_qa, ingest, preflight, resolve_inputs, wants_qa_stage

        if args.run_dir is not None and (Path(args.run_dir) / "config.yaml").is_file():
            cfg = resolve_inputs(retune_config(Path(args.run_dir), args, extra))
        else:
            cfg = resolve_inputs(load_config(args.config or "quickstart", args.overrides, extra))
        inputs = preflight(cfg)
        run_dir = Path(args.out or args.run_dir or default_run_dir(cfg))
        check_out(run_dir, args.force)
        with run_lock(run_dir, command_line()), attempt(run_dir, command_line()) as work:
            say(f"run directory: {run_dir}")
            warn_ignored_settings(cfg)
            run = RunDir(work)
            run.init_manifest(dump_config(cfg), inputs)
            ingest(run, cfg, inputs["corpus"])
            if wants_qa_stage(cfg, tuning=True):  # generated sets: eval kept out of training, as in a run
                generate_qa(run, cfg, inputs["corpus"])
            tune_stage(work, cfg)
    info = read_json(
        run_dir / "adapter" / "training.json", "adapter training record", f"run advisor tune {run_dir} again"
    )
    say(
        f"adapter: {run_dir / 'adapter'}  ({info['steps']} steps, train loss {info['final_train_loss']}, "
        f"val loss {info['final_val_loss']}, {info['tokens_per_s']} tokens/s, peak RSS {info['peak_rss_mb']:.0f} MB)"
    )
    metrics = run_dir / "eval" / "metrics.json"
    if metrics.is_file() and metrics.stat().st_mtime < (run_dir / "adapter" / "training.json").stat().st_mtime:
        say(f"the run's evaluation predates this adapter: 'advisor eval {run_dir}' answers its questions with it")
    print(run_dir)
    return 0


def retune_config(run_dir: Path, args, extra: dict):
    """RUN_DIR's own config.yaml with --config's preset, the flags in `extra` (--model, --train-qa) and the dotted
    overrides on top. Its corpus and evaluation questions stay its own: another --corpus or --qa, or an --out
    elsewhere, would build a different run into this one (or tune this one somewhere else), so they are refused
    before anything is written."""
    from advisor.core.config import (
        Config,
        _deep_merge,
        from_dict,
        load_run_config,
        parse_override,
        read_yaml,
        resolve_config_source,
    )
    from advisor.core.errors import AdvisorError

    base = load_run_config(run_dir)
    for flag, key in (("corpus", "path"), ("qa", "qa")):
        given, own = extra.get("corpus", {}).get(key), getattr(base.corpus, key)
        if given is not None and (not own or Path(given).resolve() != Path(own).resolve()):
            raise AdvisorError(
                f"--{flag} {given}: {run_dir} is a run directory made from {own or 'generated questions'} "
                f"(its config.yaml corpus.{key}); tune it as it is (advisor tune {run_dir} [key=value ...]), or "
                f"make a new run directory for the other one (advisor tune --{flag} {given} --out NEW_DIR)"
            )
    if args.out is not None and Path(args.out).resolve() != run_dir.resolve():
        raise AdvisorError(
            f"--out {args.out} and RUN_DIR {run_dir} name two run directories; give one of them "
            "(RUN_DIR to tune that run again, --out with --corpus for a new one)"
        )
    data = base.to_dict()
    if args.config:
        data = _deep_merge(data, read_yaml(resolve_config_source(args.config)))
    data = _deep_merge(data, extra)  # its corpus and questions, checked above to be the run's own
    for item in args.overrides:
        data = _deep_merge(data, parse_override(item))
    return from_dict(Config, data)
