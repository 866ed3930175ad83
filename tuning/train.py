"""The tune stage: build leak-free training data, then train a (Q)LoRA adapter and save it in PEFT format.

    python -m tuning.train RUN_DIR      # reads RUN_DIR/config.yaml and chunks.jsonl (advisor run does this)
    advisor tune RUN_DIR                # the same, alone, from the CLI (advisor/commands/tune.py)
    accelerate launch -m tuning.train RUN_DIR   # unchanged under accelerate (DDP over the processes)

Reads: config.yaml, chunks.jsonl, the eval QA set (for the leakage check) and the training QA set.
Writes: sft/{train,val}.jsonl, sft/leakage.json, adapter/ (adapter_model.safetensors, adapter_config.json,
training.json = the manifest: base model, quantization, data hash, steps, losses, history, wall time, peak
memory, tokens seen; val_loss.png), adapter/curve/step-N/ (adapter snapshots part-way through, for the
learning-vs-forgetting curve) and, while training, adapter/checkpoints/step-N/ (deleted when done).

Speed: the vocabulary projection (49k x 576 for SmolLM2, the largest matmul of a small model) runs only
at positions whose next token carries a label; padding is avoided by length-grouped batches.
Crash safety: a checkpoint (trainable weights, optimizer, scheduler, RNG, step, data order, history) is
written atomically every tuning.save_every steps; a rerun resumes from the newest one and ends at the
same step as an uninterrupted run. A checkpoint written under another config is refused (exit 2) and kept.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from advisor.core.artifacts import (
    RunDir,
    atomic_write_json,
    combine_hashes,
    peak_rss_mb,
    read_jsonl,
    rss_mb,
    sha256_bytes,
    sha256_file,
)
from advisor.core.config import Config, load_run_config
from advisor.core.errors import AdvisorError
from advisor.core.qa import load_qa
from advisor.core.textio import read_json
from tuning.data import build_sft, write_sft

IGNORE = -100


def optimizer_steps(n_train: int, tc, world: int = 1) -> int:
    """Optimizer steps of a training run on `n_train` rows (`tc`: the tuning config): tuning.max_steps when set,
    else `epochs` passes over batches of batch_size x world processes, grad_accum batches a step. advisor plan
    counts with this too."""
    steps_per_epoch = math.ceil(math.ceil(n_train / (tc.batch_size * world)) / tc.grad_accum)
    return tc.max_steps or max(1, math.ceil(tc.epochs * steps_per_epoch))


def curve_steps(total_steps: int, tc) -> list[int]:
    """The steps after which the adapter is also saved for the learning-vs-forgetting curve (tuning.curve_points,
    at 1/(n+1) ... n/(n+1) of the steps; LoRA only); the final adapter is the curve's last point."""
    if tc.method != "lora":
        return []
    n = tc.curve_points
    return sorted({round(total_steps * i / (n + 1)) for i in range(1, n + 1)} - {0, total_steps})


def validation_steps(total_steps: int, tc) -> set[int]:
    """The steps after which the validation loss is measured, the last step always among them: every
    tuning.eval_every steps; else, with early stopping, about four times; else at the curve's snapshots
    (`curve_steps`), where each point of the learning-vs-forgetting curve then has its validation loss, or about
    four times when there are none. The quickstart validates three times, not four: 10 s of its tune."""
    every = tc.eval_every
    if not every and not tc.early_stopping_patience and curve_steps(total_steps, tc):
        return set(curve_steps(total_steps, tc)) | {total_steps}
    every = every or max(1, total_steps // 4)
    return set(range(every, total_steps + 1, every)) | {total_steps}


CHECKPOINTS = "checkpoints"
BOTH = "adapter_both"  # tuning.both_adapter=separate: the tuned+RAG arm's own RAFT-trained adapter
SFT_BOTH = "sft/both"  # ... and its training data
SEEDS = "adapter_seeds"  # RUN_DIR/adapter_seeds/seed-i/: the adapters of tuning.seeds > 1 (seed = seed + i)
CURVE = "curve"  # adapter snapshots part-way through training (tuning.curve_points), kept for the learning-vs-forgetting curve


def sft_inputs_hash(run: RunDir, cfg: Config) -> str:
    train_file = cfg.corpus.train_file(run.path, cfg.tuning.use_train_qa)
    generated = run / "qa" / "train.jsonl"  # tuning.abstain_questions=any: abstention questions may come from here
    files = [run / "chunks.jsonl", cfg.corpus.eval_file(run.path)] + [
        f for f in dict.fromkeys([train_file, generated]) if f and Path(f).is_file()
    ]
    # runs made before tuning.abstain_questions behaved as "any": a run the default changes hashes differently
    source = abstention_source(run, cfg)
    changed = [f"closed-book abstention: {source or 'none'}"] if source != abstention_source(run, cfg, "any") else []
    return combine_hashes(weights_settings_hash(cfg), *(sha256_file(f) for f in files), *changed)


def abstention_source(run: RunDir, cfg: Config, questions: str | None = None) -> str:
    """Where the closed-book abstention questions of a run come from: "given" (the unanswerable items of the
    training set the user gave), "generated" (the qa stage's verified unanswerable questions; only with
    tuning.abstain_questions=any, or `questions`="any") or "" (none: the RAFT examples without their passage
    teach abstention in context only). Measured: generated ones taught closed book made the adapter decline
    questions it had not seen (docs/fine-tuning-measured.md, 'Abstention taught in context only')."""
    tc = cfg.tuning
    if not tc.abstain:
        return ""
    given = cfg.corpus.train_qa if tc.use_train_qa else ""
    if given and Path(given).is_file() and any(it.unanswerable for it in load_qa(given)):
        return "given"
    return "generated" if (questions or tc.abstain_questions) == "any" else ""


# Settings that do not change the main adapter's weights: extra seeds, snapshots, checkpoint cadence, how a
# micro-batch is split into forward passes (the gradients add up to the same), how the heap returns memory, which
# malloc serves the process, whether the frozen 4-bit weights are dequantized once or in every pass.
NOT_WEIGHTS = (
    "seeds",
    "curve_points",
    "save_every",
    "max_batch_tokens",
    "low_memory_heap",
    "allocator",
    "dequantize_once",
)


def weights_settings_hash(cfg: Config) -> str:
    d = cfg.stable_dict()  # a setting added later, at its default, keeps the hashes of runs made before it
    tuning = {k: v for k, v in d["tuning"].items() if k not in NOT_WEIGHTS}
    blob = json.dumps(
        {"seed": d["seed"], "model": d["model"], "tuning": tuning, "context": d["retrieval"]["context_tokens"]},
        sort_keys=True,
    )
    return sha256_bytes(blob.encode())


def tokenize_examples(
    examples: list[dict], tok, max_seq_len: int, chat: bool, raft_len: int = 0
) -> tuple[list[dict], int]:
    """input_ids + labels per example; loss only on completion tokens for prompt/completion pairs; a RAFT
    example may be up to raft_len tokens (its passages), the others max_seq_len. Returns (rows, n_skipped)."""
    rows, skipped = [], 0
    for ex in examples:
        if ex["kind"] == "text":
            ids = tok(ex["text"], add_special_tokens=not chat)["input_ids"][: max_seq_len - 1] + [tok.eos_token_id]
            labels = list(ids)
        else:
            p = tok(ex["prompt"], add_special_tokens=not chat)["input_ids"]
            c = tok(ex["completion"], add_special_tokens=False)["input_ids"]
            if len(p) + len(c) > (max(raft_len, max_seq_len) if ex["kind"] == "raft" else max_seq_len):
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
        part = sorted(idx[p : p + pool], key=lambda i: len(rows[i]["input_ids"]))
        batches += [part[b : b + batch_size] for b in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def batch_plan(rows: list[dict], batch_size: int, n_micro: int, seed: int) -> list[list[int]]:
    """The whole run's micro-batches (row indices) in order: epoch e is length-grouped with its own
    seeded RNG, so the order is fixed by the seed alone and a resumed run sees the same batches."""
    plan: list[list[int]] = []
    epoch = 0
    while len(plan) < n_micro:
        plan += length_grouped_batches(rows, batch_size, random.Random(seed * 1_000_003 + epoch))
        epoch += 1
    return plan[:n_micro]


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


def n_labels(row: dict) -> int:
    """Positions that carry a loss (the label of the next token is not ignored)."""
    return sum(1 for t in row["labels"][1:] if t != IGNORE)


def token_pieces(lengths: list[int], max_tokens: int) -> list[list[int]]:
    """Consecutive pieces of a micro-batch (positions into `lengths`) whose padded size, rows x longest row,
    stays within max_tokens (a row longer than that runs alone); 0 = one piece. Attention memory grows with
    the square of the length, so a batch of long RAFT examples is what this bounds.

    >>> token_pieces([100, 120, 600, 650], 1400)
    [[0, 1], [2, 3]]
    """
    if not max_tokens:
        return [list(range(len(lengths)))]
    pieces, cur, width = [], [], 0
    for j, n in enumerate(lengths):
        w = max(width, n)
        if cur and w * (len(cur) + 1) > max_tokens:
            pieces.append(cur)
            cur, w = [], n
        cur.append(j)
        width = w
    return pieces + ([cur] if cur else [])


def label_only_loss_module(model, shared_prefix: bool = False, prompt_grad_tokens: int = 0):
    """A module whose forward(input_ids, attention_mask, labels) returns (summed token NLL, n tokens),
    computing the vocabulary projection only where a label is taken (labels != -100 after the shift).

    Standard causal-LM heads project every position onto the vocabulary: for SmolLM2 at batch 8 x 256 that
    is a 8x256x49152 fp32 logits tensor (400 MB, plus as much again for its gradient and log-softmax) and
    most of the step's FLOPs, though prompt and padding positions carry no loss. Being an nn.Module,
    the wrapper can be handed to accelerate/DDP, which then syncs gradients as usual.

    shared_prefix (tuning.shared_prefix): when the rows of a pass begin with the same tokens and take no loss
    on them (`shared_prefix_len`), that prefix runs once, as one row, and its keys and values are repeated for
    every row, through which the gradients flow back to it; the rows' own tokens follow from that cache. Only
    for models whose cache is plain keys and values in every layer. `prefix_tokens_saved` counts the positions
    not computed again.

    prompt_grad_tokens (tuning.prompt_grad_tokens; 0 = off): in a pass that computes gradients, the positions more
    than this many before every row's first answer token (`detached_len`: a RAFT example's passages) run first,
    without gradients, and the rest of the rows follow from their keys and values: the same forward pass, a
    gradient that stops at them. Only for plain caches, as shared_prefix; a pass it applies to does not also share
    a prefix. `detached_tokens` counts those positions (the plan prices them as forward-only work)."""
    import torch
    import torch.nn.functional as F

    from advisor.core.decoding import MIN_SHARED_PREFIX, plain_cache_layout

    class LabelOnlyLoss(torch.nn.Module):
        def __init__(self, lm):
            super().__init__()
            self.lm = lm
            base = lm.get_base_model() if hasattr(lm, "get_base_model") else lm
            plain = plain_cache_layout(base.config)
            self.share = shared_prefix and plain
            self.grad_tokens = prompt_grad_tokens if plain else 0
            self.prefix_tokens_saved = 0
            self.detached_tokens = 0

        def forward(self, input_ids, attention_mask, labels):
            base = self.lm.get_base_model() if hasattr(self.lm, "get_base_model") else self.lm
            decoder = base.get_decoder()
            d = detached_len(labels, self.grad_tokens) if self.grad_tokens and torch.is_grad_enabled() else 0
            p = shared_prefix_len(input_ids, attention_mask, labels) if self.share and d < MIN_SHARED_PREFIX else 0
            if d >= MIN_SHARED_PREFIX:
                with torch.no_grad():
                    cache = decoder(
                        input_ids=input_ids[:, :d], attention_mask=attention_mask[:, :d], use_cache=True
                    ).past_key_values
                hidden = decoder(
                    input_ids=input_ids[:, d:], attention_mask=attention_mask, past_key_values=cache, use_cache=True
                ).last_hidden_state
                p = d
                self.detached_tokens += int(attention_mask[:, :d].sum())
            elif p >= MIN_SHARED_PREFIX and input_ids.shape[0] > 1:
                cache = decoder(input_ids=input_ids[:1, :p], use_cache=True).past_key_values
                cache.batch_repeat_interleave(input_ids.shape[0])
                hidden = decoder(
                    input_ids=input_ids[:, p:], attention_mask=attention_mask, past_key_values=cache, use_cache=True
                ).last_hidden_state
                self.prefix_tokens_saved += p * (input_ids.shape[0] - 1)
            else:
                p = 0
                hidden = decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
            target = labels[:, p + 1 :]
            keep = target != IGNORE
            logits = base.get_output_embeddings()(hidden[:, :-1][keep]).float()
            cap = getattr(base.config, "final_logit_softcapping", None)
            if cap:  # Gemma-style soft-capping, as the model's own forward does
                logits = torch.tanh(logits / cap) * cap
            return F.cross_entropy(logits, target[keep], reduction="sum"), int(keep.sum())

    return LabelOnlyLoss(model)


def detached_len(labels, grad_tokens: int) -> int:
    """The leading positions of a pass that lie more than `grad_tokens` before every row's first answer token (its
    first label); a row without labels does not limit it. 0 when there are none.

    >>> import torch
    >>> detached_len(torch.tensor([[IGNORE] * 10 + [7, 8], [IGNORE] * 6 + [5, 6, 9, IGNORE, IGNORE, IGNORE]]), 4)
    2
    >>> detached_len(torch.tensor([[IGNORE] * 3 + [7, 8]]), 4)
    0
    """
    has = labels[:, 1:] != IGNORE
    width = labels.shape[1]
    first = [int(row.nonzero()[0]) + 1 if bool(row.any()) else width for row in has]
    return max(0, min(first) - grad_tokens)


def shared_prefix_len(input_ids, attention_mask, labels) -> int:
    """The number of leading positions that every row of a pass holds the same real tokens at and takes no loss
    on (no label at the next position), leaving each row at least one position of its own.

    >>> import torch
    >>> ids = torch.tensor([[5, 6, 7, 8, 0], [5, 6, 7, 9, 4]])
    >>> att = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    >>> shared_prefix_len(ids, att, torch.tensor([[IGNORE, IGNORE, IGNORE, 8, IGNORE], [IGNORE] * 3 + [9, 4]]))
    2
    """
    same = ((input_ids == input_ids[:1]) & (attention_mask == 1)).all(0)
    no_loss = (labels[:, 1:] == IGNORE).all(0)
    shared = int(same.long().cumprod(0).sum())
    quiet = int(no_loss.long().cumprod(0).sum())
    return max(0, min(shared, quiet, int(attention_mask.sum(1).min()) - 1))


def evaluate_loss(
    loss_mod, rows: list[dict], batch_size: int, pad_id: int, device, max_tokens: int = 0
) -> float | None:
    """Mean token NLL over rows (labelled positions only), batches sorted by length (and within max_tokens)."""
    import torch

    if not rows:
        return None
    loss_mod.eval()
    total, n_tok = 0.0, 0
    rows = sorted(rows, key=lambda r: len(r["input_ids"]))  # similar lengths per batch: little padding
    with torch.inference_mode():
        for b in range(0, len(rows), batch_size):
            chunk = rows[b : b + batch_size]
            for piece in token_pieces([len(r["input_ids"]) for r in chunk], max_tokens):
                batch = {k: v.to(device) for k, v in collate([chunk[j] for j in piece], pad_id).items()}
                s, n = loss_mod(**batch)
                total += float(s)
                n_tok += n
    loss_mod.train()
    return total / max(n_tok, 1)


# ---------------------------------------------------------------- checkpoints


def fingerprint(cfg: Config, data_hash: str) -> dict:
    """What a checkpoint must agree with to be resumed: everything that changes the trained weights.
    (threads and save_every do not change them and may differ between the runs.)"""
    tuning = {k: v for k, v in cfg.stable_dict()["tuning"].items() if k not in NOT_WEIGHTS}
    return {
        "seed": cfg.seed,
        "model": {"spec": cfg.model.spec, "quantization": cfg.model.quantization},
        "tuning": tuning,
        "data_sha256": data_hash,
    }


def _flat(d: dict, pre: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{pre}{k}."))
        else:
            out[f"{pre}{k}"] = v
    return out


def latest_checkpoint(ck_root: Path) -> Path | None:
    """The newest complete checkpoint (a step-N folder appears only by an atomic rename)."""
    if not ck_root.is_dir():
        return None
    done = [p for p in ck_root.glob("step-*") if (p / "checkpoint.json").exists()]
    return max(done, key=lambda p: int(p.name.split("-")[1])) if done else None


def check_resumable(ck: Path, want: dict) -> dict:
    """The checkpoint's metadata, or AdvisorError naming the settings that differ (the checkpoint is kept)."""
    meta = read_json(ck / "checkpoint.json", "checkpoint record", f"delete {ck} to train from the start")
    # a checkpoint written before a setting joined NOT_WEIGHTS still carries it: it does not change the weights
    have = {k: v for k, v in _flat(meta["fingerprint"]).items() if k not in {f"tuning.{n}" for n in NOT_WEIGHTS}}
    new = _flat(want)
    diffs = [
        f"{k}: {have.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(have) | set(new)) if have.get(k) != new.get(k)
    ]
    if diffs:
        raise AdvisorError(
            f"refusing to resume from {ck}: it was written with another config or data ({'; '.join(diffs[:4])}"
            f"{' ...' if len(diffs) > 4 else ''}); restore those settings to resume, or delete {ck.parent} to start over"
        )
    return meta


def save_checkpoint(ck_root: Path, step: int, meta: dict, trainable: dict, extra: dict) -> Path:
    """Write step-N atomically (temp folder + rename), then drop older checkpoints."""
    import torch

    final = ck_root / f"step-{step:07d}"
    tmp = ck_root / f".tmp-step-{step:07d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save({k: v.detach().cpu() for k, v in trainable.items()}, tmp / "trainable.pt")
    torch.save(extra, tmp / "state.pt")
    (tmp / "checkpoint.json").write_text(json.dumps({**meta, "step": step}))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in ck_root.glob("step-*"):
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


# ---------------------------------------------------------------- model


def build_trainable_model(cfg: Config, device: str):
    """(model, trainable params) for tuning.method lora (PEFT on the base, quantized per
    model.quantization: QLoRA with nf4) or full (every weight, fp32/bf16 base)."""
    import torch

    from advisor.core.models import load_causal_model

    tc = cfg.tuning  # tuning.method=full with a quantized base is refused by the Config itself
    model, _ = load_causal_model(cfg.model.spec, cfg.model.quantization, device)
    if tc.method == "full":
        for p in model.parameters():
            p.requires_grad_(True)
    else:
        from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

        if cfg.model.quantization != "none":
            # Casts norms to fp32 and enables input grads; gradient checkpointing costs time on small CPU models.
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        targets = tc.lora.target_modules
        target_modules = targets if targets == "all-linear" else [t.strip() for t in targets.split(",") if t.strip()]
        if targets != "all-linear":
            # PEFT only complains when no name matches; a typo next to a valid name would silently train less.
            from advisor.core.errors import did_you_mean

            linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
            unknown = [t for t in target_modules if t not in linear]
            if unknown:
                raise AdvisorError(
                    f"tuning.lora.target_modules: '{unknown[0]}'{did_you_mean(unknown[0], linear)} is not a "
                    f"linear layer of model '{cfg.model.spec}' and does not fit it; its linear layers: "
                    f"{', '.join(linear)} (or use 'all-linear')"
                )
        lora = LoraConfig(
            r=tc.lora.r,
            lora_alpha=tc.lora.alpha,
            lora_dropout=tc.lora.dropout,
            target_modules=target_modules,
            task_type="CAUSAL_LM",
            bias="none",
        )
        try:
            model = get_peft_model(model, lora)
        except ValueError as e:
            first = str(e).splitlines()[0][:200]
            raise AdvisorError(
                f"tuning.lora.target_modules='{targets}' does not fit model '{cfg.model.spec}' ({first}); "
                f"use 'all-linear' or names of its linear layers, e.g. q_proj,v_proj"
            ) from None
        if tc.lora.uses_fast_dropout(device):
            from tuning.dropout import replace_lora_dropout

            replace_lora_dropout(model, shared=tc.lora.shared_dropout)
    if tc.gradient_checkpointing:
        # Activations dominate memory at long sequences (SmolLM2-135M, 8 x 256 tokens: ~5 GB over 30 layers).
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if tc.method == "lora":
            model.enable_input_require_grads()
    if tc.uses_dequantize_once(device):
        from advisor.core.decoding import DEQUANT_ONCE_BYTES, dequantize_4bit_layers
        from advisor.core.models import resolve_cpu_matmul

        dequantize_4bit_layers(
            model,
            device,
            DEQUANT_ONCE_BYTES,
            resolve_cpu_matmul(cfg.model.cpu_matmul_dtype, device, quantization=cfg.model.quantization),
        )
    model.train()
    torch.manual_seed(cfg.seed)
    return model, [p for p in model.parameters() if p.requires_grad]


def plot_history(history: list[dict], path: Path) -> bool:
    """Training and validation loss against step as a PNG; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=110)
    ax.plot([h["step"] for h in history], [h["loss"] for h in history], lw=1, alpha=0.6, label="train loss (batch)")
    vals = [(h["step"], h["val_loss"]) for h in history if h.get("val_loss") is not None]
    if vals:
        ax.plot(*zip(*vals), "o-", color="C3", label="validation loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("token NLL (nats)")
    ax.set_title("Tuning: loss on answer/text tokens")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
    return True


# ---------------------------------------------------------------- training


def large_allocations_via_mmap(threshold_bytes: int) -> bool:
    """Make glibc serve allocations >= threshold_bytes with mmap, returned to the OS on free.

    By default glibc raises its mmap threshold dynamically (up to 32 MB) and keeps freed blocks below it in
    the heap. Length-grouped batches have a different width every step, so activation tensors of ever-new
    sizes are freed and allocated, the heap fragments and RSS ratchets up: SmolLM2-135M LoRA at 8 x 256
    tokens peaked at 7.4 GB; with a fixed 1 MB threshold 4.7 GB. Each allocation above the threshold is a
    fresh mapping of zeroed pages, which costs time when the threshold is low enough to catch most activations:
    the quickstart's tune (max_batch_tokens 768) trained at 111 tokens/s with 1 MB (LOW_MEMORY_MMAP_THRESHOLD),
    peak 2.5 GB, and at 142 with 4 MB, peak 3.2 GB; with corpus text 1 MB peaked at 3.0 GB, 4 MB at 4.7 GB.
    On by default on a CPU (tuning.low_memory_heap). False off glibc."""
    import ctypes

    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(-3, threshold_bytes))  # -3 = M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        return False


def train_adapter(
    cfg: Config,
    train_rows: list[dict],
    val_rows: list[dict],
    tok,
    out_dir: Path,
    data_hash: str,
    both_adapter: str = "",
) -> dict:
    """Train (and resume) on train_rows; save the adapter (or full model) and training.json into out_dir.
    Three named steps, the torchtune recipe's shape: set up (model, optimizer, schedule, the state to resume
    from), the training loop, the write-out."""
    run = AdapterTraining(cfg, train_rows, val_rows, tok, out_dir, data_hash)
    run.train()
    info = run.record(both_adapter)
    if run.main:
        save_final(run.model, info, out_dir)
    run.acc.wait_for_everyone()
    return info


@dataclass
class TrainState:
    """Where training stands: what a checkpoint saves and a rerun resumes from (plus this session's counters)."""

    step: int = 0
    tokens_seen: int = 0
    label_tokens: int = 0
    history: list = field(default_factory=list)
    best: float = math.inf  # the best validation loss so far (early stopping)
    bad_evals: int = 0  # validations since it last improved
    best_state: dict | None = None  # the trainable weights at the best validation
    best_step: int | None = None
    resumed_from: int | None = None
    plan: list | None = None  # the data order: micro-batches of row indices, one per (step, accumulation, rank)
    stopped_early: bool = False
    session_tokens: int = 0  # tokens trained on in this process (the tokens/s figure)


class AdapterTraining:
    """One training run: `__init__` sets up, `train` is the loop, `record` is training.json's content."""

    def __init__(self, cfg: Config, train_rows: list[dict], val_rows: list[dict], tok, out_dir: Path, data_hash: str):
        import torch
        from accelerate import Accelerator

        from advisor.core.allocator import active_allocator
        from advisor.core.models import default_device

        self.cfg, self.tc, self.tok, self.out_dir = cfg, cfg.tuning, tok, out_dir
        self.train_rows, self.val_rows, self.data_hash = train_rows, val_rows, data_hash
        self.val_tokens = sum(len(r["input_ids"]) for r in val_rows)
        self.acc = Accelerator(cpu=not torch.cuda.is_available())
        self.world, self.rank, self.main = self.acc.num_processes, self.acc.process_index, self.acc.is_main_process
        self.device = str(self.acc.device) if self.world > 1 else default_device()
        self.malloc = active_allocator()  # the malloc this process started under (tuning.allocator)
        self.max_batch_tokens, self.low_memory_heap = self.tc.memory_levers(self.device, self.malloc)
        self.heap_threshold = self.tc.heap_mmap_threshold(self.device, self.malloc)
        self.t_start = time.perf_counter()
        self._load_model()
        self._optimizer()
        self.fp = fingerprint(cfg, data_hash)
        self.ck_root = out_dir / CHECKPOINTS
        self.s = TrainState()
        self._resume()
        self.curve_at = curve_steps(self.total_steps, self.tc)

    def _load_model(self) -> None:
        """The trainable model (seeded), wrapped for DDP when several processes train."""
        import torch

        if self.low_memory_heap:
            large_allocations_via_mmap(self.heap_threshold)
        torch.manual_seed(self.cfg.seed)
        self.model, self.params = build_trainable_model(self.cfg, self.device)
        tc = self.tc
        self.loss_inner = label_only_loss_module(
            self.model,
            tc.shared_prefix and not tc.gradient_checkpointing,
            tc.prompt_grad_window(),
        )
        self.loss_mod = self.loss_inner
        if self.world > 1:  # DDP over the launched processes; single-process runs keep the plain module
            self.loss_mod = self.acc.prepare_model(self.loss_mod)
        self.load_s = time.perf_counter() - self.t_start
        self.rss_after_load = peak_rss_mb()
        self.names = [n for n, p in self.model.named_parameters() if p.requires_grad]

    def _optimizer(self) -> None:
        """AdamW, the learning-rate schedule, the number of steps and how often to validate."""
        import torch
        from transformers import get_cosine_schedule_with_warmup, get_linear_schedule_with_warmup

        tc = self.tc
        self.total_steps = optimizer_steps(len(self.train_rows), tc, self.world)
        self.opt = torch.optim.AdamW(self.params, lr=tc.lr, weight_decay=tc.weight_decay)
        sched_fn = get_cosine_schedule_with_warmup if tc.schedule == "cosine" else get_linear_schedule_with_warmup
        self.sched = sched_fn(self.opt, int(self.total_steps * tc.warmup_ratio), self.total_steps)
        self.val_at = validation_steps(self.total_steps, tc)

    def _resume(self) -> None:
        """Continue from the newest checkpoint written under the same config and data, else start fresh (and drop
        the curve snapshots of an earlier training); then fix the data order."""
        import torch

        s, ck = self.s, latest_checkpoint(self.ck_root)
        if ck is not None:
            meta = check_resumable(ck, self.fp)
            state = torch.load(ck / "trainable.pt", map_location=self.device)
            with torch.no_grad():
                for n, p in self.model.named_parameters():
                    if n in state:
                        p.copy_(state[n])
            extra = torch.load(ck / "state.pt", map_location="cpu", weights_only=False)
            self.opt.load_state_dict(extra["optimizer"])
            self.sched.load_state_dict(extra["scheduler"])
            torch.set_rng_state(extra["rng_torch"])
            if torch.cuda.is_available() and extra.get("rng_cuda") is not None:
                torch.cuda.set_rng_state_all(extra["rng_cuda"])
            s.best_state = extra.get("best_state")
            s.step, s.tokens_seen, s.label_tokens = meta["step"], meta["tokens_seen"], meta["label_tokens"]
            s.history, s.plan = meta["history"], meta["data_order"]
            s.best, s.bad_evals, s.best_step = meta["best_val"], meta["bad_evals"], meta["best_step"]
            s.resumed_from = s.step
            if self.main:
                print(f"tune: resuming from {ck} (step {s.step} of {self.total_steps})", file=sys.stderr)
        if ck is None and self.main:  # a fresh start: snapshots of an earlier training do not belong to this one
            shutil.rmtree(self.out_dir / CURVE, ignore_errors=True)
        if s.plan is None:
            s.plan = batch_plan(
                self.train_rows, self.tc.batch_size, self.total_steps * self.tc.grad_accum * self.world, self.cfg.seed
            )

    def train(self) -> None:
        """The loop: optimizer steps up to total_steps (or early stopping), validating, snapshotting and
        checkpointing on the way; the weights of the best validation are kept when training stopped early."""
        import torch

        s, tc = self.s, self.tc
        s.stopped_early = bool(s.history and s.history[-1].get("early_stop"))
        bar = tqdm(
            total=self.total_steps, initial=s.step, desc="tune", unit="step", dynamic_ncols=True, disable=not self.main
        )
        t_train, running = time.perf_counter(), None
        self.loss_mod.train()
        while s.step < self.total_steps and not s.stopped_early:
            t_step, c_step = time.perf_counter(), time.process_time()
            detached = self.loss_inner.detached_tokens
            step_loss = self._step()
            running = step_loss if running is None else 0.9 * running + 0.1 * step_loss
            rec = {
                "step": s.step,
                "loss": round(step_loss, 4),
                "lr": self.sched.get_last_lr()[0],
                "tokens_seen": s.tokens_seen,
                "step_s": round(time.perf_counter() - t_step, 4),
                "cpu_s": round(time.process_time() - c_step, 4),  # all threads: how much of its cores the step had
                # positions its passes ran without gradients (tuning.prompt_grad_tokens), in every process
                "detached_tokens": (self.loss_inner.detached_tokens - detached) * self.world,
            }
            if s.step in self.val_at:
                self._validate(rec)
            # where the process's memory goes over the run: resident now and its peak so far (MB)
            now = rss_mb()
            rec.update(rss_mb=None if now is None else round(now, 1), peak_rss_mb=round(peak_rss_mb(), 1))
            s.history.append(rec)
            el = time.perf_counter() - t_train
            bar.set_postfix(
                loss=f"{running:.3f}",
                tok_s=f"{s.session_tokens / max(el, 1e-9):.0f}",
                **({"val": f"{rec['val_loss']:.3f}"} if rec.get("val_loss") is not None else {}),
            )
            bar.update(1)
            if s.step in self.curve_at:
                self._snapshot()
            if (tc.save_every and s.step % tc.save_every == 0) or s.stopped_early:
                self._checkpoint()
        bar.close()
        self.train_s = time.perf_counter() - t_train
        if s.stopped_early and s.best_state is not None:  # keep the weights of the best validation, not the last
            with torch.no_grad():
                for n, p in zip(self.names, self.params):
                    p.copy_(s.best_state[n].to(p.device))

    def _step(self) -> float:
        """One optimizer step over grad_accum micro-batches; returns its mean loss per label token."""
        import torch

        s, tc, world = self.s, self.tc, self.world
        self.opt.zero_grad(set_to_none=True)
        step_loss = 0.0
        for a in range(tc.grad_accum):
            idx = s.plan[(s.step * tc.grad_accum + a) * world + self.rank]
            n = sum(n_labels(self.train_rows[i]) for i in idx)
            # A micro-batch wider than tuning.max_batch_tokens runs as several forward/backward passes whose
            # gradients add up to the same as one pass (each is normalised by the whole micro-batch's labels).
            for piece in token_pieces([len(self.train_rows[i]["input_ids"]) for i in idx], self.max_batch_tokens):
                rows = [self.train_rows[idx[j]] for j in piece]
                batch = {k: v.to(self.device) for k, v in collate(rows, self.tok.pad_token_id).items()}
                loss_sum, _ = self.loss_mod(**batch)
                loss = loss_sum / max(n, 1)
                (loss / tc.grad_accum).backward()
                step_loss += float(loss.detach()) / tc.grad_accum
                ntok = int(batch["attention_mask"].sum())
                s.tokens_seen += ntok * world
                s.session_tokens += ntok * world
            s.label_tokens += n * world
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.opt.step()
        self.sched.step()
        s.step += 1
        return step_loss

    def _validate(self, rec: dict) -> None:
        """The validation loss into `rec`; with early stopping, the best weights so far and whether to stop."""
        s, tc = self.s, self.tc
        t0 = time.perf_counter()
        v = evaluate_loss(
            self.loss_mod, self.val_rows, tc.batch_size, self.tok.pad_token_id, self.device, self.max_batch_tokens
        )
        rec["val_loss"] = v
        # the pass's own speed, for the plans after this run (advisor/plan.py record_training_speed)
        rec["val_s"] = round(time.perf_counter() - t0, 4)
        rec["val_tokens"] = self.val_tokens
        if v is None or not tc.early_stopping_patience:
            return
        if v < s.best - 1e-4:
            s.best, s.bad_evals, s.best_step = v, 0, s.step
            s.best_state = {n: p.detach().clone().cpu() for n, p in zip(self.names, self.params)}
        else:
            s.bad_evals += 1
            if s.bad_evals >= tc.early_stopping_patience:
                rec["early_stop"] = s.stopped_early = True

    def _checkpoint(self) -> None:
        import torch

        s = self.s
        trainable = dict(zip(self.names, self.params))
        extra = {
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "rng_torch": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "best_state": s.best_state,
        }
        meta = {
            "fingerprint": self.fp,
            "tokens_seen": s.tokens_seen,
            "label_tokens": s.label_tokens,
            "history": s.history,
            "data_order": s.plan,
            "best_val": s.best,
            "bad_evals": s.bad_evals,
            "best_step": s.best_step,
            "total_steps": self.total_steps,
        }
        if self.main:
            save_checkpoint(self.ck_root, s.step, meta, trainable, extra)
        self.acc.wait_for_everyone()

    def _snapshot(self) -> None:
        dest = self.out_dir / CURVE / f"step-{self.s.step}"
        if self.main and not dest.exists():
            tmp = dest.with_name(dest.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            self.model.save_pretrained(tmp)
            os.replace(tmp, dest)

    def record(self, both_adapter: str) -> dict:
        """training.json: the settings, the data, how far training went, losses, time, memory and the history."""
        import torch

        from advisor.core.decoding import copies_dtype, dequantized_copies

        cfg, tc, s = self.cfg, self.tc, self.s
        vals = [h["val_loss"] for h in s.history if h.get("val_loss") is not None]
        peak_gpu = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
        return {
            "base_model": cfg.model.spec,
            "quantization": cfg.model.quantization,
            "method": "full"
            if tc.method == "full"
            else ("qlora" if cfg.model.quantization in ("nf4", "int8") else "lora"),
            "lora": {
                "r": tc.lora.r,
                "alpha": tc.lora.alpha,
                "dropout": tc.lora.dropout,
                "fast_dropout": tc.lora.uses_fast_dropout(self.device),
                "shared_dropout": tc.lora.uses_shared_dropout(self.device),
                "target_modules": tc.lora.target_modules,
            }
            if tc.method == "lora"
            else None,
            "data_sha256": self.data_hash,
            "config_fingerprint": self.fp,
            "n_train": len(self.train_rows),
            "n_val": len(self.val_rows),
            "steps": s.step,
            "planned_steps": self.total_steps,
            "resumed_from_step": s.resumed_from,
            "stopped_early": s.stopped_early,
            "best_step": s.best_step if s.stopped_early else None,
            "tokens_seen": s.tokens_seen,
            "label_tokens": s.label_tokens,
            # tuning.shared_prefix: whether the rows of a pass ran their common prefix once, and the positions
            # this process did not compute again (training and validation passes)
            "shared_prefix": self.loss_inner.share,
            "prefix_tokens_saved": self.loss_inner.prefix_tokens_saved * self.world,
            # tuning.prompt_grad_tokens as it ran (0: off, or a cache that is not plain) and the training positions
            # run without gradients over the whole training, resumed steps included
            "prompt_grad_tokens": self.loss_inner.grad_tokens,
            "detached_tokens": sum(h.get("detached_tokens") or 0 for h in s.history),
            # tuning.dequantize_once: whether the frozen 4-bit weights were multiplied as copies made once, and
            # their dtype (model.cpu_matmul_dtype; None without copies)
            "dequantized_once": dequantized_copies(self.model),
            "cpu_matmul_dtype": copies_dtype(self.model),
            "tokens_per_s": round(s.session_tokens / max(self.train_s, 1e-9), 1),
            "final_train_loss": s.history[-1]["loss"] if s.history else None,
            "final_val_loss": vals[-1] if vals else None,
            "best_val_loss": min(vals) if vals else None,
            "wall_s": round(time.perf_counter() - self.t_start, 2),
            "load_s": round(self.load_s, 2),
            "train_s": round(self.train_s, 2),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "peak_rss_after_load_mb": round(self.rss_after_load, 1),
            "peak_gpu_mb": round(peak_gpu, 1) if peak_gpu is not None else None,
            "weights_mb": round(self.model.get_memory_footprint() / 2**20, 1),
            "trainable_params": sum(p.numel() for p in self.params),
            "device": self.device,
            # the memory levers as this device ran them (tuning.max_batch_tokens / low_memory_heap: auto)
            "max_batch_tokens": self.max_batch_tokens,
            "low_memory_heap": self.low_memory_heap,
            "heap_mmap_threshold": self.heap_threshold,
            "allocator": self.malloc,
            "cpu_threads": torch.get_num_threads(),
            "processes": self.world,
            "history": s.history,
            "plot": "val_loss.png",
            "both_adapter": both_adapter,
            "curve_snapshots": [x for x in self.curve_at if x <= s.step],
        }


def save_final(model, info: dict, out_dir: Path) -> None:
    """Write the adapter (PEFT format) or full model, its plot and training.json into out_dir, file by file
    atomically, training.json last; then drop the checkpoints (a crash before that just resumes at the end)."""
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    if not plot_history(info["history"], tmp / "val_loss.png"):
        info["plot"] = None
    atomic_write_json(tmp / "training.json", info)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.iterdir():
        if old.name not in (CHECKPOINTS, CURVE):
            shutil.rmtree(old) if old.is_dir() else old.unlink()
    for f in sorted(tmp.iterdir(), key=lambda p: p.name == "training.json"):
        os.replace(f, out_dir / f.name)
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(out_dir / CHECKPOINTS, ignore_errors=True)


def run_tune_stage(run_dir: Path) -> None:
    """The tuning track of one run directory: sft data, then the adapter (each skipped when up to date)."""
    import torch

    from advisor.core.models import causal_tokenizer

    run = RunDir(run_dir)
    cfg = load_run_config(run.path)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    tok = causal_tokenizer(cfg.model.spec)
    chat = bool(getattr(tok, "chat_template", None))

    h_sft = sft_inputs_hash(run, cfg)
    separate = cfg.tuning.both_adapter == "separate"
    outputs = ["sft/train.jsonl", "sft/val.jsonl", "sft/leakage.json"]
    with run.stage("sft", h_sft, outputs + ([f"sft/both/{Path(o).name}" for o in outputs] if separate else [])) as st:
        if not st.skipped:
            write_sft(run / "sft", *training_set(run, cfg, tok))
            if separate:
                write_sft(run / SFT_BOTH, *training_set(run, cfg, tok, both=True))

    data_hash = combine_hashes(sha256_file(run / "sft/train.jsonl"), sha256_file(run / "sft/val.jsonl"))
    h_tune = combine_hashes(h_sft, data_hash)
    rows: dict = {}

    def tokenized(sft: Path = run / "sft") -> tuple[list, list]:  # once per data set, for the first stage that trains
        if sft not in rows:
            long_ok = cfg.tuning.max_seq_len + cfg.retrieval.context_tokens  # a RAFT example also carries its passages
            train, skipped = tokenize_examples(
                read_jsonl(sft / "train.jsonl"), tok, cfg.tuning.max_seq_len, chat, long_ok
            )
            val, _ = tokenize_examples(read_jsonl(sft / "val.jsonl"), tok, cfg.tuning.max_seq_len, chat, long_ok)
            if not train:
                raise AdvisorError(
                    f"tuning.max_seq_len={cfg.tuning.max_seq_len} is too small for any training example "
                    f"({skipped} of {skipped} skipped as too long); raise tuning.max_seq_len"
                )
            rows[sft] = (train, val)
        return rows[sft]

    leak = read_json(run / "sft" / "leakage.json", "leakage report", "delete the sft folder and run again")
    both_leak = (
        read_json(run / SFT_BOTH / "leakage.json", "leakage report", "delete the sft folder and run again")
        if separate
        else None
    )
    note = both_adapter_note(leak, cfg, both_leak)
    with run.stage("tune", h_tune, ["adapter/training.json"]) as st:
        if not st.skipped:
            train_adapter(cfg, *tokenized(), tok, run / "adapter", data_hash, note)
    if separate:  # the tuned+RAG arm's own adapter: corpus text and RAFT examples only
        both_hash = combine_hashes(sha256_file(run / "sft/both/train.jsonl"), sha256_file(run / "sft/both/val.jsonl"))
        with run.stage("tune_both", combine_hashes(h_sft, both_hash), [f"{BOTH}/training.json"]) as st:
            if not st.skipped:
                cfg_b = copy.deepcopy(cfg)
                cfg_b.tuning.curve_points = 0
                train_adapter(cfg_b, *tokenized(run / SFT_BOTH), tok, run / BOTH, both_hash, note)
    # tuning.seeds > 1: the same data, other seeds (LoRA initialisation and data order), for the spread across seeds
    for i in range(1, cfg.tuning.seeds):
        with run.stage(f"tune_seed{i}", combine_hashes(h_tune, f"seed+{i}"), [f"{SEEDS}/seed-{i}/training.json"]) as st:
            if not st.skipped:
                cfg_i = copy.deepcopy(cfg)
                cfg_i.seed, cfg_i.tuning.curve_points = cfg.seed + i, 0
                train_adapter(cfg_i, *tokenized(), tok, run / SEEDS / f"seed-{i}", data_hash, note)


def training_set(run: RunDir, cfg: Config, tok, both: bool = False) -> tuple[list, list, dict]:
    """The sft examples of a run: corpus text, training questions (the given file, else the generated
    qa/train.jsonl), abstention questions (the training file's unanswerable ones, else the generated
    verified ones) and RAFT examples (tuning/data.py). `both`: the separate adapter of the tuned+RAG arm
    (tuning.both_adapter=separate): corpus text and a RAFT example for every training question."""
    tc = cfg.tuning
    chunks = read_jsonl(run / "chunks.jsonl")
    eval_qa = load_qa(cfg.corpus.eval_file(run.path))
    train_file = cfg.corpus.train_file(run.path, tc.use_train_qa)
    generated = run / "qa" / "train.jsonl"  # may be empty: the generator found nothing to ask in this corpus

    def read(path) -> list:
        return load_qa(path) if path and Path(path).is_file() and (Path(path) != generated or has_lines(path)) else []

    every = read(train_file)
    source = abstention_source(run, cfg)
    in_train = source == "given" or (source == "generated" and Path(train_file or "") == generated)
    train_qa = every if in_train else [it for it in every if not it.unanswerable]
    abstain_qa = [it for it in read(generated) if it.unanswerable] if source == "generated" and not in_train else []
    # tuning.raft_unanswerable: the given set's unanswerable questions, else the generated ones, in context
    raft_una = []
    if tc.raft_unanswerable and tc.abstain:
        raft_una = [it for it in every if it.unanswerable] or [it for it in read(generated) if it.unanswerable]
    train, val, report = build_sft(
        chunks,
        train_qa,
        eval_qa,
        tok,
        tc.max_seq_len,
        cfg.trains_corpus_text(),
        tc.use_train_qa,
        tc.val_fraction,
        cfg.seed,
        abstain_qa=abstain_qa,
        raft=both or (tc.raft and tc.both_adapter == "shared"),
        raft_share=1.0 if both else tc.raft_share,
        raft_distractors=tc.raft_distractors,
        raft_no_oracle=tc.raft_no_oracle,
        context_tokens=cfg.retrieval.context_tokens,
        abstain_share=tc.abstain_share,
        closed_book=not both,
        max_train_tokens=tc.max_train_tokens,
        raft_distractors_from=tc.raft_distractors_from,
        val_limit=tc.val_limit,
        raft_unanswerable=raft_una,
    )
    report["training_questions_from"] = str(train_file) if train_qa else None
    report["abstention_questions_from"] = (
        str(generated) if abstain_qa else str(train_file) if report["n_abstain"] else None
    )
    report["closed_book_abstention"] = source or "none"  # tuning.abstain_questions decides (abstention_source)
    return train, val, report


def has_lines(path) -> bool:
    with open(path, encoding="utf-8") as f:
        return any(line.strip() for line in f)


def both_adapter_note(leak: dict, cfg: Config, both_leak: dict | None = None) -> str:
    """How the adapters behind the tuned arms were trained, in one sentence (report.md, training.json)."""

    def parts(lk: dict) -> list[str]:
        cap = lk.get("token_cap") or {}
        if cap.get("capped"):
            out = [
                f"{lk.get('n_text_segments', 0)} of {cap['n_text_segments_all']} corpus-text segments (a sample "
                f"covering every document, {cap['text_tokens_kept']:,} of {cap['text_tokens_all']:,} tokens: "
                f"tuning.max_train_tokens={cap['max_train_tokens']:,})"
            ]
        elif lk.get("n_text_segments") or cfg.trains_corpus_text():
            out = [f"{lk.get('n_text_segments', 0)} corpus-text segments"]
        else:
            why = "training questions were given" if cfg.tuning.use_corpus_text == "auto" else "set off"
            out = [f"no corpus text (tuning.use_corpus_text={str(cfg.tuning.use_corpus_text).lower()}: {why})"]
        if lk.get("n_qa_pairs"):
            out.append(f"{lk['n_qa_pairs']} closed-book questions")
        if lk.get("n_abstain"):
            out.append(f"{lk['n_abstain']} unanswerable questions answered with the abstention answer")
        elif lk.get("n_qa_pairs") and cfg.tuning.abstain and cfg.tuning.abstain_questions == "given":
            out.append(
                "no closed-book abstention questions (tuning.abstain_questions=given: they come only from a "
                "training set you give; generated unanswerable questions taught closed book made the adapter "
                "decline questions it had not seen)"
            )
        if lk.get("n_raft"):
            out.append(
                f"{lk['n_raft']} RAFT examples (question + its passage among up to {cfg.tuning.raft_distractors} "
                "BM25 distractors"
                + (
                    " that do not hold the answer, its own document's included"
                    if cfg.tuning.raft_distractors_from == "any_document"
                    else " from other documents"
                )
                + f"; {lk.get('n_raft_without_oracle', 0)} of them without the passage"
                + (
                    f" and {lk['n_raft_unanswerable']} unanswerable questions among their best passages"
                    if lk.get("n_raft_unanswerable")
                    else ""
                )
                + ", answered with the abstention answer)"
            )
        return out

    if both_leak is None:
        return (
            "One adapter, trained on " + ", ".join(parts(leak)) + ", serves both tuned arms (fine-tune closed "
            "book, both with retrieved passages)."
        )
    return (
        "Two adapters: fine-tune's, trained on "
        + ", ".join(parts(leak))
        + "; and both's own, trained on "
        + ", ".join(parts(both_leak))
        + "."
    )


def main(argv: list[str] | None = None) -> int:
    from advisor.core.logs import stage_main

    return stage_main(run_tune_stage, sys.argv[1:] if argv is None else argv, "tuning.train")


if __name__ == "__main__":
    raise SystemExit(main())
