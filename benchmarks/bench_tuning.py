"""Tuning benchmark on the bundled model: tokens/s, weight footprint and peak RSS for qlora-nf4, lora-fp32 and
full fine-tuning, and this trainer against TRL's SFTTrainer on the same model, data, LoRA config and length.

    flock /tmp/advisor-cpu.lock .venv/bin/python benchmarks/bench_tuning.py            # ~10 min on 2 cores
    .venv/bin/python benchmarks/bench_tuning.py --steps 3 --modes lora-fp32 --no-trl   # quick look

TRL is benchmark-only: pip install -c constraints.txt -e '.[bench]'  (trl==1.16.0).
Every mode runs in a fresh subprocess so its peak RSS (ru_maxrss, MB) is its own. The data are the bundled
sample's corpus text segments and training questions (loss on answer tokens only), the same rows for every
trainer, each row used once. tokens/s = non-padding tokens / summed optimizer-step time (model loading and
dataset preparation excluded, the same for both trainers).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MODES = {  # name -> (tuning.method, model.quantization)
    "qlora-nf4": ("lora", "nf4"),
    "lora-fp32": ("lora", "none"),
    "full": ("full", "none"),
}


def bench_rows(tok, max_seq_len: int, n: int) -> list[dict]:
    """Training rows from the bundled sample: corpus text segments and answer-only QA pairs, alternating."""
    from advisor.core.answer import render_target
    from advisor.core.corpus import read_corpus
    from advisor.core.qa import load_qa
    from tuning.data import text_segments
    from tuning.train import tokenize_examples

    sample = ROOT / "advisor" / "sample"
    docs, _ = read_corpus(sample / "corpus")
    texts = [{"kind": "text", "text": s} for d in docs for s in text_segments(d.text, tok, max_seq_len - 2)]
    qas = []
    for item in load_qa(next((sample / "qa").glob("train*.jsonl"))):
        if item.answers:
            p, c = render_target(tok, item.question, item.answers[0])
            qas.append({"kind": "qa", "prompt": p, "completion": c})
    mixed = [x for pair in zip(texts, qas) for x in pair]
    rows, _ = tokenize_examples(mixed, tok, max_seq_len, bool(getattr(tok, "chat_template", None)))
    return rows[:n]


def worker_ours(mode: str, args) -> dict:
    from advisor.core.artifacts import peak_rss_mb
    from advisor.core.config import load_config
    from advisor.core.models import causal_tokenizer
    from tuning.train import train_adapter

    method, quant = MODES[mode]
    tok = causal_tokenizer(args.model)
    rows = bench_rows(tok, args.seq_len, args.batch * args.steps)
    cfg = load_config(
        None,
        [
            f"model.spec={args.model}",
            f"model.quantization={quant}",
            f"tuning.method={method}",
            f"tuning.max_steps={args.steps}",
            f"tuning.batch_size={args.batch}",
            f"tuning.max_seq_len={args.seq_len}",
            "tuning.save_every=0",
            "tuning.eval_every=1000",
            "tuning.lora.dropout=0",
            "tuning.warmup_ratio=0",
            "tuning.lr=1e-4",
        ],
    )
    rss_before = peak_rss_mb()
    with tempfile.TemporaryDirectory() as d:
        info = train_adapter(cfg, rows, [], tok, Path(d) / "adapter", "bench")
    h = info["history"]
    return {
        "mode": mode,
        "weights_mb": info["weights_mb"],
        "load_s": info["load_s"],
        "train_s": info["train_s"],
        "tokens": info["tokens_seen"],
        "tokens_per_s": round(info["tokens_seen"] / sum(x["step_s"] for x in h), 1),
        "peak_rss_mb": info["peak_rss_mb"],
        "peak_rss_after_load_mb": info["peak_rss_after_load_mb"],
        "rss_at_start_mb": round(rss_before, 1),
        "final_loss": h[-1]["loss"],
    }


def worker_trl(args) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    from advisor.core.artifacts import peak_rss_mb
    from advisor.core.models import causal_tokenizer, resolve_model
    from tuning.train import IGNORE

    tok = causal_tokenizer(args.model)
    rows = bench_rows(tok, args.seq_len, args.batch * args.steps)
    ds = Dataset.from_list(
        [{"input_ids": r["input_ids"], "completion_mask": [int(x != IGNORE) for x in r["labels"]]} for r in rows]
    )
    model = AutoModelForCausalLM.from_pretrained(resolve_model(args.model, "causal").path, dtype=torch.float32)
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    times: list[float] = []

    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.t = time.perf_counter()

        def on_step_end(self, *a, **k):
            times.append(time.perf_counter() - self.t)

    with tempfile.TemporaryDirectory() as d:
        conf = SFTConfig(
            output_dir=d,
            max_steps=args.steps,
            per_device_train_batch_size=args.batch,
            learning_rate=1e-4,
            lr_scheduler_type="cosine",
            warmup_steps=0,
            logging_steps=1000,
            save_strategy="no",
            report_to=[],
            use_cpu=True,
            max_length=args.seq_len,
            completion_only_loss=True,
            dataset_kwargs={"skip_prepare_dataset": False},
            train_sampling_strategy="group_by_length",
            dataloader_num_workers=0,
            seed=0,
            bf16=False,
        )
        trainer = SFTTrainer(
            model=model, args=conf, train_dataset=ds, processing_class=tok, peft_config=lora, callbacks=[StepTimer()]
        )
        t0 = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - t0
    n_tok = sum(len(r["input_ids"]) for r in rows)
    return {
        "mode": "trl-sft-lora-fp32",
        "train_s": round(wall, 2),
        "steps": len(times),
        "tokens": n_tok,
        "tokens_per_s": round(n_tok / sum(times), 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def run_worker(name: str, args) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        name,
        "--steps",
        str(args.steps),
        "--batch",
        str(args.batch),
        "--seq-len",
        str(args.seq_len),
        "--model",
        args.model,
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "ADVISOR_QUIET": "1"})
    if p.returncode != 0:
        raise SystemExit(f"worker {name} failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--steps", type=int, default=4, help="optimizer steps per mode")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--no-trl", action="store_true")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if args.worker:
        from advisor.core.logs import quiet_libraries

        quiet_libraries()
        res = worker_trl(args) if args.worker == "trl" else worker_ours(args.worker, args)
        print(json.dumps(res))
        return 0
    import platform

    import torch

    print(
        f"# bench_tuning: {args.model}, batch {args.batch} x max {args.seq_len} tokens, {args.steps} timed steps, "
        f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
        f"cuda={torch.cuda.is_available()}"
    )
    results = {m: run_worker(m, args) for m in args.modes.split(",")}
    fp32 = results.get("lora-fp32", {}).get("weights_mb")
    print("\n| mode | weights MB | vs fp32 | peak RSS after load MB | peak RSS MB | tokens/s | final loss |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for m, r in results.items():
        ratio = f"{r['weights_mb'] / fp32:.2f}x" if fp32 else "-"
        print(
            f"| {m} | {r['weights_mb']:.0f} | {ratio} | {r['peak_rss_after_load_mb']:.0f} | {r['peak_rss_mb']:.0f} "
            f"| {r['tokens_per_s']:.0f} | {r['final_loss']:.3f} |"
        )
    if "qlora-nf4" in results and fp32:
        q = results["qlora-nf4"]["weights_mb"] / fp32
        print(f"\nNF4 weight footprint / fp32: {q:.2f} (target <= 0.40: {'met' if q <= 0.4 else 'NOT met'})")
    if not args.no_trl:
        try:
            import trl  # noqa: F401
        except ImportError:
            print("\nTRL not installed: pip install -c constraints.txt -e '.[bench]'  (then rerun)")
            return 0
        ours = results.get("lora-fp32") or run_worker("lora-fp32", args)
        t = run_worker("trl", args)
        ratio = ours["tokens_per_s"] / t["tokens_per_s"]
        print("\n| trainer (LoRA r16 all-linear, fp32, same rows) | tokens/s | peak RSS MB |")
        print("|---|---:|---:|")
        print(
            f"| this trainer (label-only head, length-grouped) | {ours['tokens_per_s']:.0f} | {ours['peak_rss_mb']:.0f} |"
        )
        print(
            f"| TRL {trl.__version__} SFTTrainer (completion_only_loss, group_by_length sampler) | {t['tokens_per_s']:.0f} "
            f"| {t['peak_rss_mb']:.0f} |"
        )
        print(f"\nspeed-up vs TRL: {ratio:.2f}x (target >= 1.3x: {'met' if ratio >= 1.3 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
