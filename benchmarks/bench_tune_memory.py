"""Peak memory and speed of the tune stage under each memory lever, against the first variant in the same run
(run it alone on the machine; docs/fine-tuning-measured.md, 'Tune-stage memory', has the measured table):

    flock /tmp/advisor-cpu.lock .venv/bin/python benchmarks/bench_tune_memory.py runs/sample-...      # ~17 min
    .venv/bin/python benchmarks/bench_tune_memory.py RUN_DIR --steps 2 --variants max_batch_tokens=2048 ""

RUN_DIR is a finished run (its config.yaml and sft/train.jsonl). Each variant is a comma-separated list of
tuning settings (`max_batch_tokens=1024,low_memory_heap=true`; "" = the run's own settings) trained in a fresh
process, so its peak resident memory is its own: `--steps` optimizer steps over the WIDEST training rows first
(the longest half, then rows from the middle), so every variant meets the stage's peak batch shape within a few
steps. A setting may be nested (`lora.fast_dropout=false`); values are read as YAML scalars, as on the command
line. Printed per variant: peak RSS, tokens per second, and both as ratios to the first variant. `--rows sample`
trains a seeded sample of the training set's rows instead, its own mix of short questions and long RAFT examples:
the speed a whole tune sees (docs/fine-tuning-measured.md, 'One shared prefix per pass'):

    .venv/bin/python benchmarks/bench_tune_memory.py RUN_DIR --rows sample --steps 8 \
        --variants "" shared_prefix=false,dequantize_once=false "" shared_prefix=false,dequantize_once=false

A variant's process starts under its tune's malloc (`allocator=glibc`, `allocator=/path/libjemalloc.so.2`; the
run's tuning.allocator otherwise), as a tune stage's does.
`heap_mmap_threshold=BYTES` in a variant sets the glibc mmap threshold of tuning.low_memory_heap for it
(advisor.core.config.LOW_MEMORY_MMAP_THRESHOLD, 1 MB), e.g. 4 MB:

    .venv/bin/python benchmarks/bench_tune_memory.py RUN_DIR --steps 3 --variants "" heap_mmap_threshold=4194304 \
        low_memory_heap=false
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

VARIANTS = [
    "max_batch_tokens=2048",
    "max_batch_tokens=2048,low_memory_heap=true",
    "max_batch_tokens=2048,gradient_checkpointing=true",
    "max_batch_tokens=2048,gradient_checkpointing=true,low_memory_heap=true",
    "max_batch_tokens=1024",
    "max_batch_tokens=1024,low_memory_heap=true",
]


def one_variant(run_dir: Path, variant: str, steps: int, rows_from: str = "widest") -> dict:
    """Train `steps` steps of the run's adapter with `variant`'s settings in this process; training.json's figures."""
    import advisor.core.config as config_module
    from advisor.core.config import load_run_config
    from advisor.core.models import causal_tokenizer
    from advisor.core.textio import read_json, read_jsonl
    from tuning.train import tokenize_examples, train_adapter

    cfg = load_run_config(run_dir)
    for kv in filter(None, variant.split(",")):
        key, value = kv.split("=", 1)
        if key == "heap_mmap_threshold":  # not a setting: the constant tuning.low_memory_heap uses
            config_module.LOW_MEMORY_MMAP_THRESHOLD = int(value)
            continue
        *path, last = key.split(".")  # a tuning setting, e.g. max_batch_tokens or lora.fast_dropout
        owner = cfg.tuning
        for part in path:
            owner = getattr(owner, part)
        getattr(owner, last)  # an unknown setting fails here, by name
        setattr(owner, last, yaml.safe_load(value))  # parsed as the command line's key=value overrides are
    tc = cfg.tuning
    tc.max_steps, tc.save_every, tc.curve_points, tc.eval_every = steps, 0, 0, 10**6
    tok = causal_tokenizer(cfg.model.spec)
    longest = tc.max_seq_len + cfg.retrieval.context_tokens
    train, _ = tokenize_examples(read_jsonl(run_dir / "sft" / "train.jsonl"), tok, tc.max_seq_len, True, longest)
    val, _ = tokenize_examples(read_jsonl(run_dir / "sft" / "val.jsonl"), tok, tc.max_seq_len, True, longest)
    n = tc.batch_size * tc.grad_accum * steps // 2 + 1
    if rows_from == "sample":  # the training set's own mix of row kinds and lengths, the same rows for every variant
        rows = random.Random(0).sample(train, min(len(train), 2 * n))
    else:
        train.sort(key=lambda r: -len(r["input_ids"]))
        rows = train[:n] + train[len(train) // 2 : len(train) // 2 + n]
    out = Path(tempfile.mkdtemp(prefix="bench-tune-memory-"))
    train_adapter(cfg, rows, val[:8], tok, out, "bench")
    t = read_json(out / "training.json", "the variant's training record")
    name = variant or f"(the run's settings: {t.get('allocator')}, heap_mmap_threshold {t.get('heap_mmap_threshold')})"
    return {"variant": name, "peak_rss_mb": t["peak_rss_mb"], "tok_s": t["tokens_per_s"]}


def variant_env(run_dir: Path, variant: str) -> dict:
    """The environment of a variant's process: its tune's malloc preloaded (tuning.allocator, the variant's or the
    run's), as pipeline.run_tracks starts a tune stage."""
    from advisor.core.allocator import preload_env
    from advisor.core.config import load_run_config
    from advisor.core.models import default_device

    tc = load_run_config(run_dir).tuning
    for kv in filter(None, variant.split(",")):
        key, value = kv.split("=", 1)
        if key in ("allocator", "low_memory_heap"):
            setattr(tc, key, yaml.safe_load(value) if key == "low_memory_heap" else value)
    return preload_env(dict(os.environ), tc.allocator_library(default_device()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path, help="a finished run directory (config.yaml, sft/)")
    ap.add_argument("--steps", type=int, default=6, help="optimizer steps per variant (default 6)")
    ap.add_argument("--variants", nargs="*", default=VARIANTS, help="tuning settings per variant, comma-separated")
    ap.add_argument(
        "--rows",
        choices=("widest", "sample"),
        default="widest",
        help="widest: the longest rows first, for the peak memory (default); sample: a seeded sample of the "
        "training set's rows, its own mix of kinds and lengths, for the speed a whole tune sees",
    )
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one variant in this process
    args = ap.parse_args()
    if args.one is not None:
        print(json.dumps(one_variant(args.run_dir, args.one, args.steps, args.rows)))
        return 0
    if not (args.run_dir / "sft" / "train.jsonl").is_file():
        print(f"{args.run_dir} has no sft/train.jsonl: pass a finished run directory", file=sys.stderr)
        return 2
    results = []
    for v in args.variants:
        cmd = [sys.executable, __file__, str(args.run_dir), "--steps", str(args.steps), "--rows", args.rows, "--one", v]
        done = subprocess.run(cmd, capture_output=True, text=True, env=variant_env(args.run_dir, v))
        if done.returncode:
            print(done.stderr[-2000:], file=sys.stderr)
            return done.returncode
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        r = results[-1]
        print(f"  {r['variant']}: {r['peak_rss_mb']:,.0f} MB, {r['tok_s']:.0f} tokens/s", file=sys.stderr)
    first = results[0]
    rows = "widest rows first" if args.rows == "widest" else "a sample of the training set's rows"
    print(f"\n## tune-stage levers, {args.steps} steps each, {rows} (ratios to the first variant)")
    print(f"{'variant':<72} {'peak RSS':>10} {'ratio':>6} {'tok/s':>6} {'ratio':>6}")
    for r in results:
        print(
            f"{r['variant']:<72} {r['peak_rss_mb']:>8,.0f}MB {r['peak_rss_mb'] / first['peak_rss_mb']:>6.2f} "
            f"{r['tok_s']:>6.0f} {r['tok_s'] / first['tok_s']:>6.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
