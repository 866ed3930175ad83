"""The tune stage: build leak-free training data, then train a (Q)LoRA adapter and save it in PEFT format.

    python -m tuning.train RUN_DIR      # reads RUN_DIR/config.yaml and chunks.jsonl (advisor run does this)

Reads: config.yaml, chunks.jsonl, the eval QA set (for the leakage check) and the training QA set.
Writes: sft/{train,val}.jsonl, sft/leakage.json, adapter/ (adapter_model.safetensors, adapter_config.json,
training.json with losses, steps, tokens, wall time and peak memory).
"""

from __future__ import annotations

import math
import os
import random
import shutil
import sys
import time
from pathlib import Path

from tqdm.auto import tqdm

from advisor.core.artifacts import RunDir, atomic_write_json, combine_hashes, peak_rss_mb, read_jsonl, sha256_file
from advisor.core.config import Config, load_run_config
from advisor.core.errors import AdvisorError
from advisor.core.qa import load_qa
from tuning.data import build_sft, write_sft

IGNORE = -100


def sft_inputs_hash(run: RunDir, cfg: Config) -> str:
    files = [run / "chunks.jsonl", Path(cfg.corpus.qa)] + ([Path(cfg.corpus.train_qa)] if cfg.corpus.train_qa else [])
    return combine_hashes(cfg.section_hash("seed", "model", "tuning"), *(sha256_file(f) for f in files))


def tokenize_examples(examples: list[dict], tok, max_seq_len: int, chat: bool) -> tuple[list[dict], int]:
    """input_ids + labels per example; loss only on completion tokens for qa pairs. Returns (rows, n_skipped)."""
    rows, skipped = [], 0
    for ex in examples:
        if ex["kind"] == "text":
            ids = tok(ex["text"], add_special_tokens=not chat)["input_ids"][: max_seq_len - 1] + [tok.eos_token_id]
            labels = list(ids)
        else:
            p = tok(ex["prompt"], add_special_tokens=not chat)["input_ids"]
            c = tok(ex["completion"], add_special_tokens=False)["input_ids"]
            if len(p) + len(c) > max_seq_len:
                skipped += 1
                continue
            ids, labels = p + c, [IGNORE] * len(p) + c
        rows.append({"input_ids": ids, "labels": labels})
    return rows, skipped


def length_grouped_batches(rows: list[dict], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffle, then sort within pools of 50 batches by length so a batch holds similar lengths
    (little padding), then shuffle the batch order."""
    idx = list(range(len(rows)))
    rng.shuffle(idx)
    pool = batch_size * 50
    batches = []
    for p in range(0, len(idx), pool):
        part = sorted(idx[p:p + pool], key=lambda i: len(rows[i]["input_ids"]))
        batches += [part[b:b + batch_size] for b in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(rows: list[dict], pad_id: int):
    import torch

    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    att = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        n = len(r["input_ids"])
        ids[i, :n] = torch.tensor(r["input_ids"])
        labels[i, :n] = torch.tensor(r["labels"])
        att[i, :n] = 1
    return {"input_ids": ids, "attention_mask": att, "labels": labels}


def evaluate_loss(model, rows: list[dict], batch_size: int, pad_id: int, device: str) -> float | None:
    import torch

    if not rows:
        return None
    model.eval()
    total, n_tok = 0.0, 0
    rows = sorted(rows, key=lambda r: len(r["input_ids"]))  # similar lengths per batch: little padding
    with torch.inference_mode():
        for b in range(0, len(rows), batch_size):
            batch = {k: v.to(device) for k, v in collate(rows[b:b + batch_size], pad_id).items()}
            n = int((batch["labels"][:, 1:] != IGNORE).sum())
            total += float(model(**batch).loss) * n
            n_tok += n
    model.train()
    return total / max(n_tok, 1)


def train_adapter(cfg: Config, train_rows: list[dict], val_rows: list[dict], tok, out_dir: Path,
                  data_hash: str) -> dict:
    """Train LoRA on the (quantized) base and save the adapter atomically into out_dir."""
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import get_cosine_schedule_with_warmup, get_linear_schedule_with_warmup

    from advisor.core.models import default_device, load_causal_model

    tc = cfg.tuning
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    device = default_device()
    t_start = time.perf_counter()
    model, _ = load_causal_model(cfg.model.spec, cfg.model.quantization, device)
    if cfg.model.quantization != "none":
        # Casts norms to fp32 and enables input grads; gradient checkpointing costs time on small CPU models.
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    targets = tc.lora.target_modules
    target_modules = targets if targets == "all-linear" else [t.strip() for t in targets.split(",") if t.strip()]
    lora = LoraConfig(r=tc.lora.r, lora_alpha=tc.lora.alpha, lora_dropout=tc.lora.dropout,
                      target_modules=target_modules, task_type="CAUSAL_LM", bias="none")
    try:
        model = get_peft_model(model, lora)
    except ValueError as e:
        raise AdvisorError(f"tuning.lora.target_modules='{targets}' does not fit model '{cfg.model.spec}': {e}") from None
    model.train()

    steps_per_epoch = math.ceil(math.ceil(len(train_rows) / tc.batch_size) / tc.grad_accum)
    total_steps = tc.max_steps or max(1, math.ceil(tc.epochs * steps_per_epoch))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=tc.lr, weight_decay=tc.weight_decay)
    warmup = int(total_steps * tc.warmup_ratio)
    sched_fn = get_cosine_schedule_with_warmup if tc.schedule == "cosine" else get_linear_schedule_with_warmup
    sched = sched_fn(opt, warmup, total_steps)
    val_every = max(10, total_steps // 4)  # about four validation points, the last at the end

    history: list[dict] = []
    tokens_seen, step, micro = 0, 0, 0
    batches: list[list[int]] = []
    bar = tqdm(total=total_steps, desc="tune", unit="step", dynamic_ncols=True)
    t_train = time.perf_counter()
    running = None
    while step < total_steps:
        if not batches:
            batches = length_grouped_batches(train_rows, tc.batch_size, rng)
        batch = {k: v.to(device) for k, v in collate([train_rows[i] for i in batches.pop()], tok.pad_token_id).items()}
        loss = model(**batch).loss / tc.grad_accum
        loss.backward()
        tokens_seen += int(batch["attention_mask"].sum())
        micro += 1
        if micro % tc.grad_accum:
            continue
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        lv = float(loss.detach()) * tc.grad_accum
        running = lv if running is None else 0.9 * running + 0.1 * lv
        rec = {"step": step, "loss": round(lv, 4), "lr": sched.get_last_lr()[0]}
        if step % val_every == 0 or step == total_steps:
            rec["val_loss"] = evaluate_loss(model, val_rows, tc.batch_size, tok.pad_token_id, device)
        history.append(rec)
        el = time.perf_counter() - t_train
        bar.set_postfix(loss=f"{running:.3f}", tok_s=f"{tokens_seen / el:.0f}")
        bar.update(1)
    bar.close()

    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    vals = [h["val_loss"] for h in history if h.get("val_loss") is not None]
    info = {
        "base_model": cfg.model.spec,
        "quantization": cfg.model.quantization,
        "method": "qlora" if cfg.model.quantization in ("nf4", "int8") else "lora",
        "lora": {"r": tc.lora.r, "alpha": tc.lora.alpha, "dropout": tc.lora.dropout, "target_modules": targets},
        "data_sha256": data_hash,
        "n_train": len(train_rows),
        "n_val": len(val_rows),
        "steps": step,
        "tokens_seen": tokens_seen,
        "tokens_per_s": round(tokens_seen / max(time.perf_counter() - t_train, 1e-9), 1),
        "final_train_loss": history[-1]["loss"] if history else None,
        "final_val_loss": vals[-1] if vals else None,
        "wall_s": round(time.perf_counter() - t_start, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "history": history,
        "trainable_params": sum(p.numel() for p in params),
        "device": device,
    }
    atomic_write_json(tmp / "training.json", info)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
    return info


def run_tune_stage(run_dir: Path) -> None:
    """The tuning track of one run directory: sft data, then the adapter (each skipped when up to date)."""
    import torch

    from advisor.core.models import load_tokenizer

    run = RunDir(run_dir)
    cfg = load_run_config(run.path)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    tok = load_tokenizer(cfg.model.spec, "causal")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    chat = bool(getattr(tok, "chat_template", None))

    h_sft = sft_inputs_hash(run, cfg)
    with run.stage("sft", h_sft, ["sft/train.jsonl", "sft/val.jsonl", "sft/leakage.json"]) as st:
        if not st.skipped:
            chunks = read_jsonl(run / "chunks.jsonl")
            eval_qa = load_qa(Path(cfg.corpus.qa))
            train_qa = load_qa(Path(cfg.corpus.train_qa)) if cfg.corpus.train_qa else []
            train, val, report = build_sft(chunks, train_qa, eval_qa, tok, cfg.tuning.max_seq_len,
                                           cfg.tuning.use_corpus_text, cfg.tuning.use_train_qa,
                                           cfg.tuning.val_fraction, cfg.seed)
            write_sft(run / "sft", train, val, report)

    data_hash = combine_hashes(sha256_file(run / "sft/train.jsonl"), sha256_file(run / "sft/val.jsonl"))
    h_tune = combine_hashes(h_sft, data_hash)
    with run.stage("tune", h_tune, ["adapter/adapter_config.json", "adapter/training.json"]) as st:
        if st.skipped:
            return
        train_rows, skipped = tokenize_examples(read_jsonl(run / "sft/train.jsonl"), tok, cfg.tuning.max_seq_len, chat)
        val_rows, _ = tokenize_examples(read_jsonl(run / "sft/val.jsonl"), tok, cfg.tuning.max_seq_len, chat)
        if not train_rows:
            raise AdvisorError(
                f"tuning.max_seq_len={cfg.tuning.max_seq_len} is too small for any training example ({skipped} skipped); raise it"
            )
        train_adapter(cfg, train_rows, val_rows, tok, run / "adapter", data_hash)


def main(argv: list[str] | None = None) -> int:
    from advisor.core.logs import stage_main

    return stage_main(run_tune_stage, sys.argv[1:] if argv is None else argv, "tuning.train")


if __name__ == "__main__":
    raise SystemExit(main())
