"""Know the cost before spending it: a run's plan, and a run sized to a time budget (docs/architecture.md,
'Cost before spending').

    advisor plan [the arguments of advisor run] [--device a100 --price-per-hour 2.5]
    advisor run --dry-run ...              # the same plan, nothing built
    advisor run --time-budget 10m ...      # sized to fit (size_to_budget), then run

Three steps, none of which trains or generates an answer to an eval question:
  1. measure_work(cfg): read the corpus and the QA set and tokenize what each stage will process: chunks to
     embed, the training set (capped by tuning.max_train_tokens as the tune stage caps it), eval prompts per
     arm, probe items;
  2. calibrate(cfg): a short measurement of the real model on this machine (loading it, a batched prefill, a
     batched greedy decode with the LoRA adapter off and on, a few training steps at the configured micro-batch,
     the embedder's throughput), cached per machine and model in $ADVISOR_HOME/calibration/;
  3. estimate(cfg, work, cal): per stage of pipeline.planned_stages(cfg) (the list the pipeline runs) its work,
     wall time and peak memory, and the total.
"""

from __future__ import annotations

import bisect
import copy
import json
import math
import os
import platform
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from advisor.core.config import Config
from advisor.core.errors import AdvisorError

# ---------------------------------------------------------------- the budget rule

# What a time budget may cut, and the least it keeps (size_to_budget). Below 20 answerable questions an accuracy
# CI is wider than +-20 points; below 10 steps an adapter has barely moved; 20 probe items still show a collapse.
MIN_ANSWERABLE = 20
MIN_STEPS = 10
MIN_PROBE_ITEMS = 20
ONLY_AT_THE_END = 1_000_000  # tuning.eval_every that leaves only the validation after the last step
# Held-out examples a budgeted run scores after its last step (the training set stays the same): the pass over a 30x
# sample corpus's 165 took 81 s of a 10 min 50 s run; 32 keep the loss a rough check that training moved.
BUDGET_VAL_LIMIT = 32
# A budgeted run is sized so that its plan takes this share of the budget: the rest is room for the plan's error.
# A 30x sample corpus sized to 597 s of a 10 min budget took 801 s (the tune stage 409 s against 282 planned: its
# first 15 steps drew longer rows than the mean, and trained at 89 tokens/s against the 111 the quickstart recorded).
BUDGET_SHARE = 0.85
BUDGET_RULE = (
    f"the plan is sized to {BUDGET_SHARE:.0%} of the budget (the rest is room for its error); "
    "every arm is kept; the extra-seed adapters, the learning curve and the validation passes during training "
    f"(the one after the last step stays, on at most {BUDGET_VAL_LIMIT} held-out examples) go first; "
    "then training steps, eval questions (answerable and unanswerable in proportion) and probe items are cut "
    f"by one common fraction, each down to its floor ({MIN_STEPS} steps, {MIN_ANSWERABLE} answerable questions, "
    f"{MIN_PROBE_ITEMS} probe items); when the floors need more than that share but fit the budget itself, the run is "
    "sized to the floors and says how little room is left"
)

# Assumed speed-ups over this machine for --device (models under 1B parameters, where per-step overheads rather than
# FLOPs bound an accelerator). Rough figures, printed as the assumption they are; --speedup replaces them. One was
# measured: on an H200 the quickstart's work (a random-weight model of SmolLM2-135M's shape) ran in 1/16 of the
# 2-core CPU's time with the CPU's memory levers (114 s vs 1,781 s) and trained at 42x its tokens/s without them
# (docs/fine-tuning-measured.md, 'On a GPU'); the steps are launch-bound there, so a100/h100/h200 share the
# whole-run figure (they were 40 and 60 before that measurement).
DEVICES = {"cpu-16": 6.0, "t4": 10.0, "l4": 15.0, "a10g": 15.0, "a100": 16.0, "h100": 16.0, "h200": 16.0}


# ---------------------------------------------------------------- step 1: the work


@dataclass
class Work:
    """What a run with this config will process, counted (not estimated) where the inputs allow."""

    n_documents: int
    n_chunks: int
    embed_tokens: int  # embedder tokens of all chunks (what the index stage embeds)
    chunk_block_tokens: float  # generator tokens of one chunk as the retrieval prompt shows it (mean)
    ingest_s: float  # measured here: reading and chunking the corpus
    sft_s: float  # measured here: segmenting and tokenizing the training text
    train: list[int]  # tokens of each training example (train + validation), after tuning.max_train_tokens
    train_kinds: dict[str, int]  # examples per kind
    train_cap: dict  # what the cap did (tuning/data.py cap_training_set)
    both: list[int] | None  # the separate tuned+RAG adapter's examples (tuning.both_adapter=separate)
    # every eval question: (unanswerable, closed-book prompt tokens, rag prompt tokens)
    questions: list[tuple[bool, int, int]]
    question_ids: list[str]
    probes: dict[str, list[int]]  # per probe set: tokens each item runs (its context once, then every choice)
    perplexity: list[int]  # tokens of each general-text passage
    notes: list[str] = field(default_factory=list)  # what was estimated rather than counted
    # mean tokens of a training answer (+ its end of turn): what an adapter trained on them answers with (the
    # quickstart's tuned arms: 4.5 new tokens per answer against the base model's 22)
    answer_tokens: float | None = None
    # training positions of each example (as `train`) that run without gradients (tuning.prompt_grad_tokens: a RAFT
    # example's passages), priced as forward-only work; None = none
    train_detached: list[int] | None = None
    both_detached: list[int] | None = None  # the same for `both`
    # positions of each example (as `train`) that take a loss (text: all; a pair: its answer), which the vocabulary
    # projection is computed for (tuning/train.py label_only_loss_module); None = all
    train_labelled: list[int] | None = None
    both_labelled: list[int] | None = None  # the same for `both`
    # tokens every closed-book prompt begins with (the chat template and the instruction), which a batch of them
    # prefills once (advisor.core.decoding.prefill_after_head)
    closed_head: int = 0


def measure_work(cfg: Config) -> Work:
    """Count each stage's work for a resolved, validated config (pipeline.resolve_inputs, validate_inputs):
    the chunks, the training set, the eval questions and the probe items, in that order."""
    from advisor.core.models import load_tokenizer

    notes: list[str] = []
    t0 = time.perf_counter()
    chunks, docs = _count_chunks(cfg, notes)
    ingest_s = time.perf_counter() - t0

    tok = load_tokenizer(cfg.model.spec, "causal")
    tok.model_max_length = 10**9

    def ntok(text: str) -> int:
        return len(tok(text, add_special_tokens=False)["input_ids"])

    from advisor.core.answer import Context, context_block

    step = max(1, len(chunks) // 200)  # the mean of a spread of 200 chunks
    blocks = [ntok(context_block([Context("x", src, text, 0.0, 1)])) for src, text, _ in chunks[::step]]
    chunk_block = sum(blocks) / max(1, len(blocks))
    t0 = time.perf_counter()
    train, kinds, cap, both, answer_tokens = _count_training(cfg, docs, bool(chunks), chunk_block, tok, ntok, notes)
    sft_s = time.perf_counter() - t0
    questions, ids, head = _count_eval(cfg, chunks, chunk_block, tok, ntok, notes)
    probes, ppl = _count_probes(cfg, ntok)
    work = Work(
        len({c[0] for c in chunks}),
        len(chunks),
        sum(c[2] for c in chunks),
        chunk_block,
        ingest_s,
        sft_s,
        train,
        kinds,
        cap,
        both,
        questions,
        ids,
        probes,
        ppl,
        notes,
        answer_tokens,
    )
    work.train_detached = detached_positions(cfg, train, kinds["text"], answer_tokens)
    work.train_labelled = labelled_positions(train, kinds["text"], answer_tokens)
    work.closed_head = head
    if both is not None:
        work.both_detached = detached_positions(cfg, both, kinds["text"], answer_tokens)
        work.both_labelled = labelled_positions(both, kinds["text"], answer_tokens)
    return work


def detached_positions(cfg: Config, lengths: list[int], n_text: int, answer_tokens: float | None) -> list[int]:
    """Positions of each training example (`lengths`: the corpus-text segments first, n_text of them, then the
    instruction pairs) that run without gradients under tuning.prompt_grad_tokens: a pair's prompt positions more
    than that many before its answer (of answer_tokens, the training answers' mean); text learns from every token."""
    grad = cfg.tuning.prompt_grad_window()
    if not grad:
        return [0] * len(lengths)
    answer = round(answer_tokens or 0)
    return [0] * n_text + [max(0, n - answer - grad) for n in lengths[n_text:]]


def labelled_positions(lengths: list[int], n_text: int, answer_tokens: float | None) -> list[int]:
    """Positions of each training example (as detached_positions) that take a loss: a text segment's every token
    after its first, an instruction pair's answer (answer_tokens, the training answers' mean; all, without one)."""
    answer = round(answer_tokens) if answer_tokens else None
    return [max(0, n - 1) for n in lengths[:n_text]] + [min(n, answer or n) for n in lengths[n_text:]]


def _count_chunks(cfg: Config, notes: list[str]) -> tuple[list[tuple[str, str, int]], dict[str, str]]:
    """The chunks the ingest stage will make, as (source, text, embedder tokens), and each document's text."""
    from advisor.core.corpus import chunk_text, iter_documents
    from advisor.core.embedders import chunk_offsets_fn

    offsets = chunk_offsets_fn(cfg.retrieval.embedder)
    chunks: list[tuple[str, str, int]] = []
    docs: dict[str, str] = {}
    try:
        for d in iter_documents(Path(cfg.corpus.path), cfg.corpus.text_field):
            docs[d.doc_id] = docs.get(d.doc_id, "") + d.text
            offs = offsets(d.text)
            starts, ends = [a for a, _ in offs], [b for _, b in offs]
            for s, e in chunk_text(d.text, offs, cfg.chunking.size, cfg.chunking.overlap):
                n = bisect.bisect_right(ends, e) - bisect.bisect_left(starts, s)  # the tokens inside the chunk
                chunks.append((d.doc_id, d.text[s:e], max(0, n)))
    except AdvisorError as e:  # the checks read file heads only; ingestion will stop here and say so
        notes.append(f"the corpus could be read only up to an error, which the ingest stage will report ({e})")
    return chunks, docs


def _count_training(
    cfg: Config, docs: dict[str, str], has_chunks: bool, chunk_block: float, tok, ntok, notes: list[str]
) -> tuple[list[int], dict[str, int], dict, list[int] | None, float | None]:
    """The training set as tuning/data.py build_sft makes it: tokens per example (after tuning.max_train_tokens),
    examples per kind, what the cap did, the separate tuned+RAG adapter's examples (or None), and the mean tokens
    of a training answer (None without training questions)."""
    from advisor.core.answer import render_target
    from advisor.core.qa import load_qa
    from advisor.pipeline import SAMPLE_TRAIN
    from tuning.data import abstain_cap, cap_text_segments, text_segments

    tc = cfg.tuning
    text: list[tuple[str, int]] = []
    if cfg.trains_corpus_text():
        for src, body in sorted(docs.items()):
            text += [(src, ntok(seg) + 1) for seg in text_segments(body, tok, tc.max_seq_len - 2)]
    given = Path(cfg.corpus.train_qa) if cfg.corpus.train_qa else None
    pairs: dict[str, list[int]] = {"qa": [], "abstain": [], "raft": []}
    answer_tokens = None
    if tc.use_train_qa:
        n_ans, n_una = generated_training_counts(cfg)  # what the qa stage makes when no training set is given
        if given:
            items = load_qa(given)
        else:  # generated by the qa stage, which has not run yet: the bundled sample's phrasings stand in
            sample = [it for it in load_qa(SAMPLE_TRAIN) if not it.unanswerable]
            items = [sample[i % len(sample)] for i in range(n_ans)]
            closed_book = f" and {n_una} unanswerable ones" if tc.abstain_questions == "any" else ""
            notes.append(
                f"training questions: up to {n_ans} generated ones{closed_book} "
                f"({_generated_from(cfg)}; counted as that many, sized like the bundled sample's)"
            )
        answerable = [it for it in items if not it.unanswerable and it.answers]
        # closed-book abstention (tuning/train.py, abstention_source): the given set's own unanswerable items,
        # else with tuning.abstain_questions=any the qa stage's (wants_qa_stage; the stand-ins have none)
        unanswerable_given = sum(1 for it in items if it.unanswerable)
        unanswerable = unanswerable_given or (n_una if tc.abstain_questions == "any" else 0)
        n_abstain = min(abstain_cap(len(answerable), tc.abstain_share), unanswerable) if tc.abstain else 0
        closed = [ntok("".join(render_target(tok, it.question, it.answers[0]))) for it in answerable]
        if answerable:
            answer_tokens = sum(ntok(it.answers[0]) + 1 for it in answerable) / len(answerable)
        pairs["qa"] = closed
        abstain_len = ntok("".join(render_target(tok, answerable[0].question, "I don't know."))) if answerable else 0
        pairs["abstain"] = [abstain_len] * n_abstain
        if tc.raft and tc.both_adapter == "shared" and has_chunks:
            passages = min(cfg.retrieval.context_tokens, (1 + tc.raft_distractors) * chunk_block)
            with_source = [c for it, c in zip(answerable, closed) if it.source or not given]
            n_raft = round(tc.raft_share * len(with_source))
            mean_closed = sum(with_source) / max(1, len(with_source))
            # tuning.raft_unanswerable: one more for each unanswerable question (the given set's, else the qa
            # stage's), capped like the abstention questions (tuning/data.py, unanswerable_in_context)
            n_una_ctx = (tc.abstain and tc.raft_unanswerable) and abstain_cap(len(answerable), tc.abstain_share)
            n_una_ctx = min(n_una_ctx, unanswerable_given or n_una)
            pairs["raft"] = [round(mean_closed + passages + 4)] * (n_raft + n_una_ctx)
            if n_raft:
                notes.append(
                    f"RAFT examples: about {n_raft} (tuning.raft_share={tc.raft_share} of the training "
                    "questions)"
                    + (f" and {n_una_ctx} of unanswerable questions (tuning.raft_unanswerable)" if n_una_ctx else "")
                    + ", each sized as a question plus its passages"
                )
    instr = [n for v in pairs.values() for n in v]
    cap = {
        "max_train_tokens": tc.max_train_tokens,
        "capped": False,
        "text_tokens_all": sum(n for _, n in text),
        "n_text_segments_all": len(text),
        "instruction_tokens": sum(instr),
    }
    kept_text = [n for _, n in text]
    if tc.max_train_tokens and sum(instr) + sum(kept_text) > tc.max_train_tokens:
        keep = cap_text_segments([s for s, _ in text], kept_text, max(0, tc.max_train_tokens - sum(instr)), cfg.seed)
        kept_text = [kept_text[i] for i in keep]
        cap.update(capped=True, text_tokens_kept=sum(kept_text), n_text_segments_kept=len(kept_text))
    cap["train_tokens"] = sum(instr) + sum(kept_text)
    both = None
    if tc.both_adapter == "separate" and tc.use_train_qa:
        passages = min(cfg.retrieval.context_tokens, (1 + tc.raft_distractors) * chunk_block)
        both = kept_text + [round(c + passages + 4) for c in pairs["qa"]]
    kinds = {"text": len(kept_text), **{k: len(v) for k, v in pairs.items()}}
    return kept_text + instr, kinds, cap, both, answer_tokens


def _count_eval(
    cfg: Config, chunks: list[tuple[str, str, int]], chunk_block: float, tok, ntok, notes: list[str]
) -> tuple[list[tuple[bool, int, int]], list[str], int]:
    """Every eval question as (unanswerable, closed-book prompt tokens, retrieval prompt tokens), the ids
    (eval.limit is applied by estimate, so a budget can size it) and the tokens every closed-book prompt begins
    with."""
    from advisor.core.answer import Context, context_block, render_prompt
    from advisor.core.decoding import common_prefix
    from advisor.core.qa import load_qa
    from advisor.pipeline import SAMPLE_EVAL

    eval_items = load_qa(Path(cfg.corpus.qa)) if cfg.corpus.qa else None
    if eval_items is None:
        sample = load_qa(SAMPLE_EVAL)
        n_una = round(cfg.qa.n * cfg.qa.unanswerable)
        ans = [it for it in sample if not it.unanswerable]
        una = [it for it in sample if it.unanswerable] or ans
        eval_items = [replace(ans[i % len(ans)], id=f"a{i}") for i in range(cfg.qa.n - n_una)] + [
            replace(una[i % len(una)], id=f"u{i}", unanswerable=True) for i in range(n_una)
        ]
        notes.append(
            f"eval questions: qa.n={cfg.qa.n} generated by the qa stage ({n_una} unanswerable), sized like "
            "the bundled sample's"
        )
    demo = [Context("x", src, text_, 0.0, i + 1) for i, (src, text_, _) in enumerate(chunks[: cfg.retrieval.top_k])]
    ctx_tokens = min(cfg.retrieval.context_tokens, cfg.retrieval.top_k * chunk_block)
    # a retrieval prompt: the closed-book prompt, the context instruction and top_k chunks of the mean size
    q0 = eval_items[0].question
    extra = (
        ntok(render_prompt(tok, q0, demo)) - ntok(context_block(demo)) - ntok(render_prompt(tok, q0)) + ctx_tokens
        if demo
        else 0
    )
    prompts = [tok(render_prompt(tok, it.question), add_special_tokens=False)["input_ids"] for it in eval_items]
    questions = [(it.unanswerable, len(ids), round(len(ids) + extra)) for it, ids in zip(eval_items, prompts)]
    head = min(common_prefix(prompts[0], ids) for ids in prompts)
    return questions, [it.id for it in eval_items], head


def _count_probes(cfg: Config, ntok) -> tuple[dict[str, list[int]], list[int]]:
    """Tokens each probe item runs through the model per probe set (its context once, then each choice: the
    choices share the context's keys and values, LM._score_shared), and of each general-text perplexity passage."""
    from evalsuite.probes import general_text, load_probe

    probes: dict[str, list[int]] = {}
    for name in cfg.eval.probes:
        items = load_probe(name, cfg.eval.probe_limit)
        probes[name] = [
            sum(ntok(it.context + ch) for ch in it.choices) - (len(it.choices) - 1) * ntok(it.context) for it in items
        ]
    ppl = [min(256, ntok(t)) for t in general_text(cfg.eval.perplexity_texts)] if cfg.eval.perplexity_texts else []
    return probes, ppl


# ---------------------------------------------------------------- step 2: calibration


def machine() -> dict:
    """What the measurements belong to: this machine's processor, cores and accelerator."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "host": platform.node(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "gpu": gpu,
    }


def calibration_key(cfg: Config) -> dict:
    """Everything a calibration's figures depend on: the machine, the models and the shapes they run at."""
    from advisor.core.embedders import resolve_embed_dtype
    from advisor.core.models import default_device

    tc = cfg.tuning
    return {
        "machine": machine(),
        "model": cfg.model.spec,
        "quantization": cfg.model.quantization,
        "embedder": cfg.retrieval.embedder,
        "embed_dtype": resolve_embed_dtype(cfg.retrieval.embed_dtype),
        "method": tc.method,
        "lora_r": tc.lora.r,
        "batch_size": tc.batch_size,
        "max_seq_len": tc.max_seq_len,
        "max_batch_tokens": tc.memory_levers(default_device())[0],
        # a tune stage's recorded speed depends on it (the quickstart: 111 tokens/s at 1 MB, 142 at 4 MB)
        "heap_mmap_threshold": tc.heap_mmap_threshold(default_device()),
        # the tune's malloc (tuning.allocator): mimalloc trained the quickstart's rows 1.3x as fast as glibc at 1 MB
        "tune_allocator": tc.malloc(default_device()),
        # the training step timed in a process of its own under that threshold (measure_costs_apart), not under
        # glibc's own heap as calibrations before 2026-12-05 were: those are measured again
        "train_step_heap": "the tune stage's",
        # tuning/dropout.py: torch's own LoRA dropout was 15-20% of a CPU tune
        "fast_dropout": tc.lora.uses_fast_dropout(default_device()),
        "shared_dropout": tc.lora.uses_shared_dropout(default_device()),
        "gradient_checkpointing": tc.gradient_checkpointing,
        # since 2026-12-05 a CPU tune multiplies by fp32 copies of the 4-bit weights made once (more memory, less
        # time) and runs a pass's common prefix once: the calibrations before are measured again
        "dequantize_once": tc.uses_dequantize_once(default_device()),
        "shared_prefix": tc.shared_prefix,
        # since 2026-12-06 a tune stage's recorded speed is per position that takes gradients (prompt_grad_tokens)
        "prompt_grad_tokens": tc.prompt_grad_tokens,
        # since 2026-12-07 the training step is timed on text rows, on question rows (the vocabulary projection
        # priced per position that takes a loss) and on a row whose passages run without gradients: the
        # calibrations before are measured again
        "train_rows": "text, questions and passages without gradients",
        "max_new_tokens": cfg.model.max_new_tokens,
        # LM.generate decodes from one dequantized copy of the 4-bit weights per call; before 2026-12-05 every
        # decoding step dequantized them again: those calibrations priced the eval stages high and are measured again
        "decode_weights": "one copy per generate call",
        # since 2026-12-06 a batch of closed-book prompts prefills their common head once: the decode rate is what
        # the batch's time leaves after the tokens it really prefilled
        "closed_prefill": "common head once per batch",
        # the eval stages' memory: the KV cache per token (kv_mb_per_token), measured since 2026-12-05
        "eval_memory": "kv per token",
    } | _matmul_key(cfg)


def _matmul_key(cfg: Config) -> dict:
    """The 4-bit layers' product dtype, named only where it is bfloat16 (model.cpu_matmul_dtype), so that the float32
    calibrations made before the setting stand."""
    dtype = cfg.model.products_dtype()
    return {} if dtype == "float32" else {"cpu_matmul_dtype": dtype}


def calibration_path(key: dict) -> Path:
    from advisor.core.artifacts import sha256_bytes
    from advisor.core.models import advisor_home

    return advisor_home() / "calibration" / f"{sha256_bytes(json.dumps(key, sort_keys=True).encode())[:16]}.json"


def _rss_mb() -> float:
    from advisor.core.artifacts import rss_mb

    now = rss_mb()  # /proc/self/status; psutil off Linux
    if now is not None:
        return now
    import psutil

    return psutil.Process().memory_info().rss / 2**20


class PeakRSS:
    """The highest resident memory (MB) while the block runs, above what it was when it began, sampled every
    10 ms by a thread (ru_maxrss would hold an earlier phase's peak)."""

    def __enter__(self) -> PeakRSS:
        import threading

        self.start = self.peak = _rss_mb()
        self._stop = threading.Event()

        def poll() -> None:
            while not self._stop.wait(0.01):
                self.peak = max(self.peak, _rss_mb())

        self._thread = threading.Thread(target=poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())

    @property
    def added_mb(self) -> float:
        return max(0.0, self.peak - self.start)


def calibrate(cfg: Config, refresh: bool = False, progress: bool = True) -> dict:
    """The per-token costs of this machine with this config's models, measured once and cached
    ($ADVISOR_HOME/calibration/<hash of calibration_key>.json); `refresh` measures again."""
    from advisor.core.artifacts import atomic_write_json, now_iso

    key = calibration_key(cfg)
    path = calibration_path(key)
    if path.is_file() and not refresh:
        try:
            cal = json.loads(path.read_text())
            if cal.get("key") == key:
                return {**cal, "cached": True}
        except (OSError, ValueError):
            pass  # a damaged cache file is measured again
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    if not progress:  # the weight-loading bar too: a log or a captured stderr gets no progress lines
        hf_logging.disable_progress_bar()
    try:
        cal = measure_costs_apart(cfg, progress)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    cal.update(key=key, measured=now_iso())
    atomic_write_json(path, cal)
    return {**cal, "cached": False}


# A tune stage that trained on fewer tokens than this says little about a run's steady speed.
MIN_OBSERVED_TOKENS = 5_000
# A tune stage on CPU whose steps had less than this share of its threads' time shared the cores with other work:
# its speed is not this machine's (a tune beside another model's evaluation ran at 10-14 tokens/s, not ~95)
MIN_CPU_SHARE = 0.75


def train_s_per_token(cal: dict, label_share: float = 1.0) -> float:
    """Seconds per training token that takes gradients: what the last real tune stage with this calibration's key ran
    at, when one was recorded (its optimizer steps only, validation and the positions run without gradients apart),
    else the calibration's, for a training set in which `label_share` of the positions take a loss (text rows every
    one, a question row its answer's): the model's pass per position plus the vocabulary projection per labelled
    one (_measure_training). Priced at the calibration's fully labelled rows alone, the first run of Gemma 3 270M
    (a 262,144-entry vocabulary) was planned at 1.8-2.3 times its tune's time over three calibrations."""
    return (cal.get("observed_train") or {}).get("s_per_token") or (
        cal["train_body_s_per_token"] + label_share * cal["train_label_s"]
    )


def detached_s_per_token(cal: dict) -> float:
    """Seconds per training position run without gradients (tuning.prompt_grad_tokens: a RAFT example's passages):
    the calibration's (_price_detached_row), else, for calibrations without it, a validation pass's rate."""
    return cal.get("train_detached_s_per_token") or val_s_per_token(cal)


def val_s_per_token(cal: dict) -> float:
    """Seconds per token of a validation-loss pass: what the last real tune stage's passes ran at, when recorded,
    else the calibration's prefill rate. A 30x sample corpus's held-out set of long RAFT rows ran at half the
    prefill rate (86 s against 43 planned)."""
    return (cal.get("observed_train") or {}).get("val_s_per_token") or cal["prefill_s_per_token"]


def record_training_speed(cfg: Config, training: dict, run: str) -> dict | None:
    """After a tune stage (`training`: its adapter/training.json): keep the speed of its steps in the calibration
    file of the same key, for the plans after it on this machine. None when there is no such calibration, the
    stage trained too little to tell, or it ran on CPU with other work on its cores (cpu_share)."""
    from advisor.core.artifacts import atomic_write_json, now_iso

    history = training.get("history") or []
    steps_s = sum(r.get("step_s") or 0 for r in history)
    tokens = training.get("tokens_seen") or 0
    if tokens < MIN_OBSERVED_TOKENS or steps_s <= 0:
        return None
    share = cpu_share(training)
    if share is not None and share < MIN_CPU_SHARE:
        return None
    key = calibration_key(cfg)
    path = calibration_path(key)
    try:
        cal = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if cal.get("key") != key:
        return None
    seen = cal.get("observed_train") or {}
    if seen.get("run") == run and seen.get("tokens") == tokens:
        return seen  # a rerun whose tune stage was skipped: the same stage, already recorded
    observed = {"s_per_token": steps_s / tokens, "tokens": tokens, "steps_s": steps_s, "run": run, "at": now_iso()}
    val_s = sum(r.get("val_s") or 0 for r in history)
    val_tokens = sum(r.get("val_tokens") or 0 for r in history if r.get("val_s"))
    if val_tokens:  # adapters trained before the passes were timed have none
        observed["val_s_per_token"] = val_s / val_tokens
    detached = sum(r.get("detached_tokens") or 0 for r in history)
    if 0 < detached < tokens:  # tuning.prompt_grad_tokens: the steps' positions without gradients at their rate
        forward_s = detached * detached_s_per_token({**cal, "observed_train": observed})
        observed["s_per_token"] = max(steps_s - forward_s, steps_s / 4) / (tokens - detached)
        observed["detached_tokens"] = detached
    cal["observed_train"] = observed
    atomic_write_json(path, cal)
    return observed


def cpu_share(training: dict) -> float | None:
    """The share of its threads' time a CPU tune stage's steps had (process CPU time / wall time / threads): near 1
    on cores of its own, about 0.5 beside another process as busy. None off CPU or for adapters trained before
    the steps' CPU time was recorded."""
    history = training.get("history") or []
    threads = training.get("cpu_threads")
    cpu = sum(r.get("cpu_s") or 0 for r in history)
    wall = sum(r.get("step_s") or 0 for r in history if r.get("cpu_s") is not None)
    if training.get("device") != "cpu" or not threads or not cpu or wall <= 0:
        return None
    return cpu / (wall * threads)


def _sample_texts(size: int, overlap: int, offsets) -> list[str]:
    """Chunk-sized texts from the bundled sample documents: realistic prose, the same on every machine."""
    from advisor.core.corpus import chunk_text, iter_documents
    from advisor.pipeline import SAMPLE_CORPUS

    out = []
    for d in iter_documents(SAMPLE_CORPUS):
        out += [d.text[s:e] for s, e in chunk_text(d.text, offsets(d.text), size, overlap)]
    return out


# measure_costs' steps, in order; the figures of the training step (from the tune's process when it runs apart)
CALIBRATION_STEPS = ("imports", "embedder", "load model", "generate", "train")
TRAIN_FIGURES = (
    "train_s_per_token",
    "train_body_s_per_token",
    "train_label_s",
    "train_detached_s_per_token",
    "train_tokens_per_step",
    "train_rss_mb",
    "train_heap_mmap_threshold",
    "train_allocator",
)


def measure_costs_apart(cfg: Config, progress: bool = True) -> dict:
    """measure_costs in a process of its own, as each track of a run is (pipeline.run_tracks), with this process's
    thread count: there the training step is timed under the tune stage's heap (tuning.low_memory_heap), a setting
    of the whole process that cannot be undone and that would slow this process's generation afterwards (decode
    at half speed under a 1 MB mmap threshold). Timed under glibc's own heap, the quickstart's calibration trained
    at 127-149 tokens/s and its tune at 104 (2 cores): the plan put the tune at 0.76 of its time. When the tune
    runs under another malloc (tuning.allocator: mimalloc preloaded on a CPU), the training step is timed in a
    second process started under it, as the tune's is, and the rest under this process's malloc, as the eval
    stages run (in one process under mimalloc the calibration decoded 1.4x as fast, the eval stages did not). The
    processes' imports are timed from cold, as a track's are. An AdvisorError there (a model that cannot be had)
    is raised here with its message."""
    from advisor.core.allocator import preload_env
    from advisor.core.models import default_device

    lib = cfg.tuning.allocator_library(default_device())
    if lib is None:
        return _calibration_child(cfg, progress, dict(os.environ), CALIBRATION_STEPS)
    got = _calibration_child(cfg, progress, dict(os.environ), CALIBRATION_STEPS[:4])
    train = _calibration_child(cfg, progress, preload_env(dict(os.environ), lib), ("imports", "load model", "train"))
    got.update({k: train[k] for k in TRAIN_FIGURES if k in train})
    got["calibration_parts_s"]["train"] = train["calibration_parts_s"]["train"]
    got["calibration_parts_s"]["train process"] = round(
        train["calibration_s"] - train["calibration_parts_s"]["train"], 1
    )
    got["calibration_s"] = round(got["calibration_s"] + train["calibration_s"], 1)
    return got


def _calibration_child(cfg: Config, progress: bool, env: dict, steps: tuple[str, ...]) -> dict:
    """measure_costs' `steps` in a process started with `env` and this process's thread count (calibration_process)."""
    import subprocess
    import sys
    import tempfile

    import torch

    from advisor.core.config import dump_config
    from advisor.core.errors import ModelUnavailable
    from advisor.pipeline import _die_with_parent

    with tempfile.TemporaryDirectory(prefix="advisor-calibration-") as tmp:
        conf, out = Path(tmp) / "config.yaml", Path(tmp) / "costs.json"
        conf.write_text(dump_config(cfg))
        code = "import sys; from advisor.plan import calibration_process; sys.exit(calibration_process(sys.argv[1:]))"
        flags = [*([] if progress else ["--quiet"]), "--steps", ",".join(steps)]
        rc = subprocess.run(
            [sys.executable, "-c", code, str(conf), str(out), *flags],
            env={**env, "OMP_NUM_THREADS": str(torch.get_num_threads())},
            preexec_fn=_die_with_parent,
        ).returncode
        got = json.loads(out.read_text()) if out.is_file() else {}
    if "error" in got:
        raise (ModelUnavailable if got.get("kind") == "ModelUnavailable" else AdvisorError)(got["error"])
    if rc != 0 or not got:
        raise AdvisorError(f"the calibration's process failed (exit {rc}); its error is printed above")
    return got


def calibration_process(argv: list[str]) -> int:
    """The calibration's own process (measure_costs_apart): argv is CONFIG.yaml OUT.json [--quiet] [--steps A,B].
    Writes measure_costs' figures (of those steps; default all) to OUT.json, or {"error", "kind"} for an
    AdvisorError (exit 2)."""
    from advisor.core.artifacts import atomic_write_json
    from advisor.core.config import from_dict, read_yaml

    conf, out = Path(argv[0]), Path(argv[1])
    progress = "--quiet" not in argv
    steps = tuple(argv[argv.index("--steps") + 1].split(",")) if "--steps" in argv else CALIBRATION_STEPS
    if not progress:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    try:
        cfg = from_dict(Config, read_yaml(conf))
        atomic_write_json(out, measure_costs(cfg, progress, tune_heap=True, steps=steps))
    except AdvisorError as e:
        atomic_write_json(out, {"error": str(e), "kind": type(e).__name__})
        return e.exit_code
    return 0


def measure_costs(
    cfg: Config, progress: bool = True, tune_heap: bool = False, steps: tuple[str, ...] = CALIBRATION_STEPS
) -> dict:
    """A short measurement on the real model (well under a minute of work for SmolLM2-135M on 2 idle cores):
    imports, the embedder, loading the generator, generation, training (`steps`, CALIBRATION_STEPS' names; the
    training step needs the model loaded). See calibrate. `tune_heap`: the training step runs under the tune
    stage's heap setting, which stays set for the rest of the process (only in a process of its own:
    measure_costs_apart)."""
    from tqdm.auto import tqdm

    t_all = time.perf_counter()
    every = {
        "imports": _measure_imports,
        "embedder": _measure_embedder,
        "load model": _load_generator,
        "generate": _measure_generation,
        "train": _measure_training,
    }
    bar = tqdm(total=len(steps), desc="calibrate", unit="step", disable=not progress, leave=False)
    out: dict = {}
    parts: dict[str, float] = {}
    for name, step in ((n, every[n]) for n in steps):
        bar.set_postfix_str(name)
        if name == "train" and tune_heap:
            out.update(_as_the_tune_stage_heap(cfg, out["device"]))
        t0 = time.perf_counter()
        out.update(step(cfg, out))
        parts[name] = round(time.perf_counter() - t0, 1)
        bar.update(1)
    bar.close()
    for k in ("lm", "params", "chunk_texts"):  # the loaded model goes with this function's frame
        out.pop(k, None)
    out["calibration_s"] = round(time.perf_counter() - t_all, 1)
    out["calibration_parts_s"] = parts  # where a cold plan's time goes
    return out


def _measure_imports(cfg: Config, _: dict) -> dict:
    t0 = time.perf_counter()
    import torch  # noqa: F401  (timed: a fresh process of each track pays these imports)
    import transformers  # noqa: F401

    if cfg.tuning.method == "lora":
        import peft  # noqa: F401
    return {"import_s": round(time.perf_counter() - t0, 2), "base_rss_mb": round(_rss_mb(), 1)}


def _measure_embedder(cfg: Config, _: dict) -> dict:
    """Load the embedder, then embed every chunk of the bundled sample at the configured batch size, as the index
    stage embeds a corpus: sentence-transformers sorts each call's texts by length, so its batches hold chunks of
    like length. The first 64 chunks alone, one batch, were a sixth padding (documents' short last chunks beside
    full ones), and a 30x sample corpus's index (735,364 tokens) embedded at 4,667 tokens/s where the calibration
    had measured 3,201."""
    from advisor.core.embedders import chunk_offsets_fn, load_embedder, resolve_embed_dtype

    with PeakRSS() as mem:
        t0 = time.perf_counter()
        emb = load_embedder(cfg.retrieval.embedder, resolve_embed_dtype(cfg.retrieval.embed_dtype))
        offsets = chunk_offsets_fn(cfg.retrieval.embedder)
        load_s = time.perf_counter() - t0
        texts = _sample_texts(cfg.chunking.size, cfg.chunking.overlap, offsets)
        emb.encode(texts[:8], batch_size=8)  # warm-up
        t0 = time.perf_counter()
        emb.encode(texts, batch_size=cfg.retrieval.batch_size)
        embed_s = time.perf_counter() - t0
    tokens = sum(len(offsets(t)) for t in texts)
    return {
        "embed_load_s": round(load_s, 2),
        "embed_s_per_token": embed_s / max(1, tokens),
        "embed_rss_mb": round(mem.added_mb, 1),
    }


def _load_generator(cfg: Config, _: dict) -> dict:
    """The generator as the tune stage builds it: quantized, with a fresh LoRA adapter (zero-initialised, so it
    answers like the base model, at the adapter's cost)."""
    from advisor.core.corpus import whitespace_offsets
    from advisor.core.decoding import plain_cache_layout
    from advisor.core.lm import LM
    from advisor.core.models import causal_tokenizer, default_device, resolve_cpu_matmul
    from tuning.train import build_trainable_model

    device = default_device()
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    with PeakRSS() as peak:
        model, params = build_trainable_model(cfg, device)
        tok = causal_tokenizer(cfg.model.spec)
    tok.model_max_length = 10**9  # the training text is segmented, never fed whole
    load_s = time.perf_counter() - t0
    model.eval()
    return {
        "lm": LM(
            model,
            tok,
            cfg.model.spec,
            device,
            resolve_cpu_matmul(cfg.model.cpu_matmul_dtype, device, quantization=cfg.model.quantization),
        ),
        "params": params,
        "device": device,
        "chunk_texts": _sample_texts(cfg.chunking.size, cfg.chunking.overlap, whitespace_offsets),
        "load_s": round(load_s, 2),
        "load_rss_mb": round(max(0.0, _rss_mb() - rss0), 1),  # what stays resident
        "load_peak_mb": round(peak.added_mb, 1),
        # whether the tune can run a prompt's early positions without gradients (tuning.prompt_grad_tokens) and
        # share a pass's prefix: only with plain keys and values in every layer (not Gemma 3's sliding windows)
        "plain_cache": plain_cache_layout(model.config),
    }


def _measure_generation(cfg: Config, got: dict) -> dict:
    """Prefill: 4 retrieval-sized prompts, one new token each (after a one-prompt warm-up). Decode: one batch of
    eval.batch_size closed-book sample questions (up to 48), greedy, with the adapter off and on: a batch of 8 made
    the per-token decode cost 3-9x what the eval stages, which decode 48 at once, pay. Scoring: the perplexity of 4
    sample chunks."""
    from advisor.core.answer import Context, render_prompt
    from advisor.core.lm import perplexity_rows
    from advisor.core.qa import load_qa
    from advisor.pipeline import SAMPLE_EVAL

    lm, chunks, k = got["lm"], got["chunk_texts"], cfg.retrieval.top_k
    tok = lm.tokenizer
    questions = [it.question for it in load_qa(SAMPLE_EVAL) if not it.unanswerable]
    rag = [
        render_prompt(tok, q, [Context("x", "doc.md", chunks[(i * k + j) % len(chunks)], 0.0, j + 1) for j in range(k)])
        for i, q in enumerate(questions[:4])
    ]
    batch = min(48, cfg.eval.batch_size, len(questions))
    closed = [render_prompt(tok, q) for q in questions[:batch]]
    timed = {}
    with PeakRSS() as mem:
        with lm.adapter(False):
            lm.generate(rag[:1], max_new_tokens=1, batch_size=1)  # warm-up
            t0 = time.perf_counter()
            gens = lm.generate(rag, max_new_tokens=1, batch_size=len(rag))
            prefill_s = time.perf_counter() - t0
        prefill_tokens = sum(g.prompt_tokens for g in gens)
        # Scoring every position of a text (the perplexity probe) projects each onto the 49k-word vocabulary,
        # which a prefill does for the last position only.
        t0 = time.perf_counter()
        lm.perplexity(chunks[:4], batch_size=4)
        score_s = time.perf_counter() - t0
        score_tokens = sum(n for _, n in perplexity_rows(tok, chunks[:4], 256))
        # Off, then on, the whole batch each time, to the end. A third of the batch saved no time (a decode step
        # costs about as much for 16 rows as for 48); a third of it for 8 tokens saved 9 s of 32 but measured a
        # factor of 1.06-1.21 where whole batches measured 1.44-1.47 back to back, so it priced the tuned arms low.
        for on in (False, True):
            with lm.adapter(on):
                lm.prefill_tokens = 0
                t0 = time.perf_counter()
                gens = lm.generate(closed, cfg.model.max_new_tokens, batch_size=batch)  # the same answers both ways
                timed[on] = time.perf_counter() - t0
                run_tokens = lm.prefill_tokens  # the batch's common head once (decoding.prefill_after_head)
    prefill_rate = prefill_s / max(1, prefill_tokens)
    new_tokens = sum(g.new_tokens for g in gens)
    prompt_tokens = sum(g.prompt_tokens for g in gens)
    # the decode share of a greedy batch: what its prompts' prefill does not explain (at least a quarter of it)
    decode_rate = max(timed[False] - run_tokens * prefill_rate, 0.25 * timed[False]) / max(1, new_tokens)
    return {
        "prefill_s_per_token": prefill_rate,
        "score_s_per_token": score_s / max(1, score_tokens),
        "prefill_batch": len(rag),
        "prefill_tokens": prefill_tokens,
        "decode_s_per_token": decode_rate,
        "decode_batch": batch,
        "new_tokens_per_answer": new_tokens / max(1, len(closed)),
        "adapter_factor": round(timed[True] / max(timed[False], 1e-9), 3) if lm.has_adapter else 1.0,
        "gen_rss_mb": round(mem.added_mb, 1),
        # the KV cache of the decoded batch, which gen_rss_mb holds: an eval batch's cache grows with its prompts
        "kv_mb_per_token": _kv_mb_per_token(lm, closed[0]),
        "gen_kv_tokens": batch * (prompt_tokens / max(1, len(closed)) + cfg.model.max_new_tokens),
    }


def _kv_mb_per_token(lm, prompt: str) -> float:
    """MB of keys and values the model caches per token: one forward over a prompt, its cache's tensors summed.
    0 off CPU: the cache is then in the accelerator's memory, not in the resident set the plan prices."""
    import torch

    if lm.device != "cpu":
        return 0.0
    ids = lm.encode(prompt)
    with torch.no_grad():
        cache = lm.model(input_ids=torch.tensor([ids], device=lm.device), use_cache=True).past_key_values
    size = sum(
        t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values) if t is not None
    )
    return size / len(ids) / 2**20


def _as_the_tune_stage_heap(cfg: Config, device: str) -> dict:
    """Set glibc's mmap threshold as the tune stage sets it on `device` (tuning.low_memory_heap, when glibc's malloc
    serves this process); for good. Also which malloc serves it (measure_costs_apart preloads the tune's)."""
    from advisor.core.allocator import active_allocator
    from tuning.train import large_allocations_via_mmap

    malloc = active_allocator()
    threshold = cfg.tuning.heap_mmap_threshold(device, malloc)
    return {
        "train_heap_mmap_threshold": threshold if threshold and large_allocations_via_mmap(threshold) else 0,
        "train_allocator": malloc,
    }


# The positions a calibration's question-like rows take a loss on: about a training answer's (the quickstart's: 6).
CALIBRATION_ANSWER_TOKENS = 8


def _measure_training(cfg: Config, got: dict) -> dict:
    """A warm-up step, then one timed step, each one forward/backward pass of full-length text rows at the size the
    tune stage runs them (the micro-batch, or its first piece under tuning.max_batch_tokens); then the same rows as
    question rows take a loss (_price_row_shapes) and, where the tune runs a prompt's passages without gradients,
    joined into one row as long as a RAFT example (_price_detached_row)."""
    import torch

    from tuning.data import text_segments
    from tuning.train import collate, label_only_loss_module, token_pieces

    tc, lm = cfg.tuning, got["lm"]
    tok, model, device = lm.tokenizer, lm.model, got["device"]
    rows = []
    for seg in text_segments("\n".join(got["chunk_texts"]), tok, tc.max_seq_len - 2)[: tc.batch_size]:
        ids = tok(seg, add_special_tokens=False)["input_ids"][: tc.max_seq_len - 1] + [tok.eos_token_id]
        rows.append({"input_ids": ids, "labels": list(ids)})
    # One piece of the micro-batch as tuning.max_batch_tokens splits it: each forward/backward of the tune stage
    # is such a piece, so its cost per token is the step's; two whole steps took 26 s of a 68.5 s calibration.
    max_batch_tokens = tc.memory_levers(device)[0]
    rows = [rows[j] for j in token_pieces([len(r["input_ids"]) for r in rows], max_batch_tokens)[0]]
    model.train()
    opt = torch.optim.AdamW(got["params"], lr=1e-5)

    whole = label_only_loss_module(model)

    def train_step(batch_rows: list[dict], loss_mod=whole) -> tuple[float, int]:
        """(seconds, positions) of one optimizer step on `batch_rows`."""
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        n = 0
        for piece in token_pieces([len(r["input_ids"]) for r in batch_rows], max_batch_tokens):
            b = {k: v.to(device) for k, v in collate([batch_rows[j] for j in piece], tok.pad_token_id).items()}
            s, m = loss_mod(**b)
            (s / max(m, 1)).backward()
            n += int(b["attention_mask"].sum())
        opt.step()
        return time.perf_counter() - t0, n

    with PeakRSS() as mem:
        # The warm-up is a full step too: the first step at this size pays for allocating (and page-faulting) the
        # activation memory, which made a timed first step 3x slower than the tune stage's steady state.
        train_step(rows)
        train_s, tokens = train_step(rows)
        shapes = _price_row_shapes(train_step, rows, train_s)
        window = tc.prompt_grad_window() if got.get("plain_cache", True) else 0
        if window:
            detached = label_only_loss_module(model, prompt_grad_tokens=window)
            shapes |= _price_detached_row(lambda r: train_step(r, detached), rows, shapes, window)
    return {
        "train_s_per_token": train_s / max(1, tokens),
        **shapes,
        "train_tokens_per_step": tokens,
        "train_rss_mb": round(mem.added_mb, 1),
    }


def _price_row_shapes(train_step, rows: list[dict], text_s: float) -> dict:
    """One more timed step: the text rows (`rows`, whose step took `text_s` with a loss on every position) with a
    loss on their last CALIBRATION_ANSWER_TOKENS positions only, as a question row takes it: the model's pass per
    position (`train_body_s_per_token`); the difference is the vocabulary projection, computed only where a loss is
    taken (label_only_loss_module: `train_label_s` per such position). Gemma 3 270M (262,144 entries) trained 83
    tokens/s on text rows and 193 on rows with a short loss; its tune, mostly question rows, 210: priced at the
    text rows' rate alone its plan said 1.8-2.3 times the tune's time. Real question rows and rows run partly without
    gradients were timed too, as differences from this step; from one step each on 2 cores they varied 0-0.14 s per
    row and 1-4 ms per position over four calibrations, too little signal to price them by."""
    k = CALIBRATION_ANSWER_TOKENS
    answers = [{**r, "labels": [-100] * (len(r["labels"]) - k) + r["labels"][-k:]} for r in rows]
    answers_s, tokens = train_step(answers)
    losses = sum(len(r["labels"]) - 1 for r in rows) - k * len(rows)  # the loss positions the text rows have more
    return {
        "train_body_s_per_token": answers_s / max(1, tokens),
        "train_label_s": max(0.0, text_s - answers_s) / max(1, losses),
    }


def _price_detached_row(train_step, rows: list[dict], shapes: dict, window: int) -> dict:
    """Two more timed steps (the faster counts): the text rows joined into one row, as long as a RAFT example with
    its passages, with a loss on its last CALIBRATION_ANSWER_TOKENS positions and every position more than
    `window` before them run without gradients (tuning.prompt_grad_tokens): `train_detached_s_per_token`, the
    time of each such position once the positions with gradients are priced as a question row's (`shapes`).
    Priced at the prefill rate, the quickstart's RAFT steps were planned at 0.6 of their time: the tune runs such
    a row's early positions in train mode (its LoRA dropout on), one row per pass (tuning.max_batch_tokens), and
    the positions after them attend to all of them with gradients (docs/fine-tuning-measured.md, 'Positions
    without gradients, priced'). Nothing when the row is too short for the tune to run any without gradients."""
    from advisor.core.decoding import MIN_SHARED_PREFIX

    k = CALIBRATION_ANSWER_TOKENS
    ids = [t for r in rows for t in r["input_ids"]]
    detached = len(ids) - k - window  # as tuning.train.detached_len counts them
    if detached < MIN_SHARED_PREFIX:
        return {}
    row = {"input_ids": ids, "labels": [-100] * (len(ids) - k) + ids[-k:]}
    seconds = min(train_step([row])[0], train_step([row])[0])  # a row of a new length pays for its memory once
    with_grad = (len(ids) - detached) * shapes["train_body_s_per_token"] + k * shapes["train_label_s"]
    return {"train_detached_s_per_token": max(0.0, seconds - with_grad) / detached}


# ---------------------------------------------------------------- step 3: the estimate


@dataclass
class StageEstimate:
    name: str
    work: str
    seconds: float
    peak_mb: float | None = None
    track: str = ""  # 'index' or 'tune' when the two tracks run in parallel


@dataclass
class Plan:
    stages: list[StageEstimate]
    total_s: float
    peak_mb: float
    sizes: dict  # the sizes a budget may cut: steps, questions (answerable, unanswerable), probe items
    notes: list[str]
    calibration: dict
    done: list[str] = field(default_factory=list)  # stages an earlier attempt finished (resumed past, not counted)

    def to_dict(self) -> dict:
        return {
            "total_s": round(self.total_s, 1),
            "peak_mb": round(self.peak_mb),
            "sizes": self.sizes,
            "done_earlier": self.done,
            "stages": {
                s.name: {
                    "seconds": round(s.seconds, 1),
                    "peak_mb": None if s.peak_mb is None else round(s.peak_mb),
                    "work": s.work,
                }
                for s in self.stages
            },
            "notes": self.notes,
        }


def eval_questions(cfg: Config, work: Work) -> list[tuple[bool, int, int]]:
    """The questions eval.limit keeps (advisor.core.qa.stratified_limit, as the eval stages choose them)."""
    from advisor.core.qa import QAItem, stratified_limit

    items = [
        QAItem(i, "q", [] if u else ["a"], unanswerable=u) for i, (u, _, _) in zip(work.question_ids, work.questions)
    ]
    keep = {it.id for it in stratified_limit(items, cfg.eval.limit)}
    return [q for i, q in zip(work.question_ids, work.questions) if i in keep]


def generated_training_counts(cfg: Config) -> tuple[int, int]:
    """(answerable, unanswerable) training questions the qa stage makes at most (evalsuite/qagen/build.py):
    qa.max_train answerable ones and unanswerable twins for half their qa.unanswerable share; with a given
    evaluation set, every question the generator writes for evaluation is training material too
    (evalsuite/qagen/stage.py training_only). Wikipedia and the sample, eval set given: 420 and 60."""
    qc = cfg.qa
    n_ans, n_una = qc.max_train, round(qc.max_train * qc.unanswerable / 2)
    if not cfg.corpus.generated:
        una_eval = round(qc.n * qc.unanswerable)
        n_ans, n_una = n_ans + qc.n - una_eval, n_una + una_eval
    return n_ans, n_una


def _generated_from(cfg: Config) -> str:
    qc = cfg.qa
    if cfg.corpus.generated:
        return f"qa.max_train={qc.max_train}"
    return (
        f"qa.max_train={qc.max_train} plus the generator's qa.n={qc.n} evaluation questions, the eval set being given"
    )


def training_steps(cfg: Config, n_examples: int) -> int:
    """Optimizer steps the tune stage will take for n examples: the validation split and the step rule of the
    tuning track itself (tuning/data.py val_count, tuning/train.py optimizer_steps)."""
    from tuning.data import val_count
    from tuning.train import optimizer_steps

    return optimizer_steps(n_examples - val_count(n_examples, cfg.tuning.val_fraction), cfg.tuning)


def _train_estimate(
    cfg: Config,
    examples: list[int],
    cal: dict,
    detached: list[int] | None = None,
    labelled: list[int] | None = None,
) -> tuple[float, int, int, float]:
    """(seconds, steps, tokens seen, tokens per step) of one adapter's training, its validations included; the
    share of positions that run without gradients (`detached`, per example) at the forward-only rate of a
    validation pass; the positions that take a loss (`labelled`, per example; None: all) priced apart."""
    tc = cfg.tuning
    n = len(examples)
    if not n:
        return 0.0, 0, 0, 0.0
    from tuning.data import val_count, val_scored
    from tuning.train import validation_steps

    steps = training_steps(cfg, n)
    n_val = val_count(n, tc.val_fraction)
    n_scored = val_scored(n, tc.val_fraction, tc.val_limit)
    mean = sum(examples) / n
    per_step = mean * min(tc.batch_size, n - n_val) * tc.grad_accum
    tokens = round(steps * per_step)
    val_passes = len(validation_steps(steps, tc))
    without = sum(detached or []) / max(1, sum(examples)) if cal.get("plain_cache", True) else 0.0
    # of the positions that take gradients, the share that takes a loss (None: every one, as in text rows)
    share = sum(labelled) / max(1, sum(examples) * (1 - without)) if labelled is not None else 1.0
    seconds = tokens * (
        (1 - without) * train_s_per_token(cal, min(1.0, share)) + without * detached_s_per_token(cal)
    ) + val_passes * n_scored * mean * val_s_per_token(cal)
    return seconds, steps, tokens, per_step


def closed_prefill_tokens(lengths: list[int], head: int, batch: int, cal: dict) -> int:
    """Tokens the prefill of closed-book prompts of these lengths runs in batches of `batch`: each batch of two or
    more runs the `head` they all begin with once (advisor.core.decoding.prefill_after_head)."""
    from advisor.core.decoding import MIN_SHARED_PREFIX

    n = len(lengths)
    if n < 2 or head < MIN_SHARED_PREFIX or not cal.get("plain_cache", True):
        return sum(lengths)
    return sum(lengths) - head * (n - math.ceil(n / max(1, batch)))


def _generate_s(cal: dict, prompt_tokens: float, answers: float, new_tokens: float, adapter: bool) -> float:
    s = prompt_tokens * cal["prefill_s_per_token"] + answers * new_tokens * cal["decode_s_per_token"]
    return s * (cal["adapter_factor"] if adapter else 1.0)


def fmt_s(s: float) -> str:
    """'45 s', '3 min 20 s', '2 h 05 min'."""
    s = max(0.0, s)
    if s < 1:
        return "<1 s"
    if s < 90:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


def estimate(cfg: Config, work: Work, cal: dict) -> Plan:
    """Per stage of planned_stages(cfg): its work, wall time and peak memory on the calibrated machine. The
    build stages, the eval stages and the rest are estimated in turn, then added up by track."""
    from advisor.pipeline import planned_stages, tracks_overlap

    stages = planned_stages(cfg)
    qs = eval_questions(cfg, work)
    n_una = sum(1 for u, _, _ in qs if u)
    sizes = {"questions": len(qs), "answerable": len(qs) - n_una, "unanswerable": n_una}
    model_mb = cal["base_rss_mb"] + cal["load_rss_mb"]
    est = _estimate_build(cfg, work, cal, stages, sizes, model_mb)
    epochs = _epochs_seen(cfg, work, sizes["steps"])
    est.update(_estimate_eval(cfg, work, cal, qs, model_mb, epochs))
    est.update(_estimate_after_eval(cfg, work, cal, stages, qs, sizes, model_mb))
    missing = [s for s in stages if s not in est]
    if missing:  # a stage the pipeline gained without an estimator here
        raise AdvisorError(
            f"advisor plan has no estimate for the stage(s) {', '.join(missing)}; this is a bug in advisor/plan.py"
        )
    out = [est[s] for s in stages]
    total, peak = _add_up(out, "index" in stages and "tune" in stages and tracks_overlap(cfg))
    return Plan(out, total, peak, sizes, list(work.notes), cal)


def _estimate_build(
    cfg: Config, work: Work, cal: dict, stages: list[str], sizes: dict, model_mb: float
) -> dict[str, StageEstimate]:
    """ingest, qa, index, sft and the training stages (tune, tune_both, tune_seed<i>); fills sizes' training
    figures."""
    tc = cfg.tuning
    est: dict[str, StageEstimate] = {}
    est["ingest"] = StageEstimate("ingest", f"{work.n_documents} documents -> {work.n_chunks} chunks", work.ingest_s)
    if "qa" in stages:
        # The extractive generator reads the corpus twice (facts, then the BM25 check of unanswerable questions)
        # and embeds one candidate question per document a round until it has its answerable questions
        # (~16 tokens each). Counted as one embedding pass over the corpus it was 15x too high on a 30x sample
        # corpus (2 min 37 s planned, 10.5 s run).
        n_ans = cfg.qa.n - round(cfg.qa.n * cfg.qa.unanswerable)
        est["qa"] = StageEstimate(
            "qa",
            f"generate {cfg.qa.n} eval questions + training phrasings ({cfg.qa.generator}); rough: "
            f"{max(work.n_documents, n_ans):,} candidate questions embedded, the corpus read twice",
            cal["embed_load_s"] + max(work.n_documents, n_ans) * 16 * cal["embed_s_per_token"] + 2 * work.ingest_s,
        )
    est["index"] = StageEstimate(
        "index",
        f"{work.n_chunks:,} chunks to embed ({work.embed_tokens:,} embedder tokens)"
        + (" + BM25" if cfg.retrieval.hybrid else ""),
        cal["import_s"] + cal["embed_load_s"] + work.embed_tokens * cal["embed_s_per_token"],
        cal["base_rss_mb"] + cal["embed_rss_mb"],
        "index",
    )
    est["sft"] = StageEstimate(
        "sft",
        ", ".join(f"{n:,} {k}" for k, n in work.train_kinds.items() if n)
        + f" examples, {sum(work.train):,} tokens"
        + (
            f" (capped at tuning.max_train_tokens={tc.max_train_tokens:,}: "
            f"{work.train_cap['n_text_segments_kept']:,} of {work.train_cap['n_text_segments_all']:,} "
            "corpus-text segments, every document kept)"
            if work.train_cap.get("capped")
            else ""
        ),
        work.sft_s,
        None,
        "tune",
    )
    tune_mb = model_mb + cal["train_rss_mb"]
    secs, steps, tokens, per_step = _train_estimate(cfg, work.train, cal, work.train_detached, work.train_labelled)
    if "tune" not in stages:  # no tuned arm: nothing is trained, so a budget has no steps to cut
        steps = tokens = 0
    sizes.update(steps=steps, train_tokens=tokens, train_set_tokens=sum(work.train))
    how = f"{tc.max_steps} steps" if tc.max_steps else f"{tc.epochs:g} epochs = {steps} steps"
    est["tune"] = StageEstimate(
        "tune",
        f"{how} of ~{per_step:,.0f} tokens; {tokens:,} training tokens",
        cal["import_s"] + cal["load_s"] + secs,
        tune_mb,
        "tune",
    )
    if work.both is not None:
        b_secs, b_steps, b_tokens, _ = _train_estimate(cfg, work.both, cal, work.both_detached, work.both_labelled)
        est["tune_both"] = StageEstimate(
            "tune_both", f"{b_steps} steps, {b_tokens:,} tokens (RAFT adapter)", b_secs, tune_mb, "tune"
        )
    for i in range(1, tc.seeds):
        est[f"tune_seed{i}"] = StageEstimate(
            f"tune_seed{i}", f"{steps} steps, seed {cfg.seed + i}", secs, tune_mb, "tune"
        )
    return est


def _epochs_seen(cfg: Config, work: Work, steps: int) -> float:
    """Passes over the training examples that `steps` optimizer steps make (validation split apart)."""
    from tuning.data import val_count

    n = len(work.train) - val_count(len(work.train), cfg.tuning.val_fraction)
    return steps * cfg.tuning.batch_size * cfg.tuning.grad_accum / max(1, n)


def _estimate_eval(
    cfg: Config, work: Work, cal: dict, qs: list[tuple[bool, int, int]], model_mb: float, epochs: float = 1.0
) -> dict[str, StageEstimate]:
    """eval_<arm> (and eval_<arm>_seed<i> for the tuned arms): every question's prompt prefilled and its answer
    decoded; the first eval stage also loads the model and the eval embedder. An arm with the adapter answers as
    long as the training answers (`work.answer_tokens`) once training has passed over them (`epochs` >= 1), and
    before that between the base model's length and theirs, in proportion to the epochs trained: a time
    budget's 21 steps (0.1 epoch) on a 30x sample corpus left the tuned arm answering at the base model's length
    (11 s against 3.6 s planned). The other arms answer as long as the calibration's base model. A closed-book
    arm's batches prefill the head their prompts begin with (`work.closed_head`) once (`closed_prefill_tokens`)."""
    from advisor.arms import seed_arms
    from advisor.core.arms import ADAPTER_ARMS, INDEX_ARMS

    tc, ev = cfg.tuning, cfg.eval
    answer_tokens, head = work.answer_tokens, work.closed_head
    seeded = seed_arms(cfg)
    n_q = len(qs)
    n_una = sum(1 for u, _, _ in qs if u)
    new = min(cal["new_tokens_per_answer"], cfg.model.max_new_tokens)
    est: dict[str, StageEstimate] = {}
    for i_arm, a in enumerate(ev.arms):
        rag = a in INDEX_ARMS
        ptoks = sum(r if rag else c for _, c, r in qs)
        run = ptoks if rag else closed_prefill_tokens([c for _, c, _ in qs], head, ev.batch_size, cal)
        arm_new = new
        if answer_tokens and a in ADAPTER_ARMS:
            arm_new = new - (new - min(new, answer_tokens)) * min(1.0, epochs)
        s = _generate_s(cal, run, n_q, arm_new, a in ADAPTER_ARMS)
        if rag:
            s += n_q * 16 * cal["embed_s_per_token"]  # embedding the questions (~16 tokens each) for the search
        if i_arm == 0:
            s += cal["import_s"] + cal["load_s"] + cal["embed_load_s"]  # the model (and the eval embedder) load once
        mean_len = ptoks / max(1, n_q)
        # the calibration's generation overhead (the dequantized weights, its batch's cache) with this arm's batch
        # cache in place of the calibration's: a batch of up to eval.batch_size prompts of this arm's mean length
        kv_eval = cal["kv_mb_per_token"] * min(ev.batch_size, n_q) * (mean_len + cfg.model.max_new_tokens)
        gen = cal["gen_rss_mb"] + max(0.0, kv_eval - cal["kv_mb_per_token"] * cal["gen_kv_tokens"])
        mb = model_mb + cal["embed_rss_mb"] + gen  # the eval process holds the embedder for every arm
        est[f"eval_{a}"] = StageEstimate(
            f"eval_{a}",
            f"{n_q} prompts ({n_q - n_una} answerable + {n_una} unanswerable), "
            f"{ptoks:,} prompt tokens, ~{arm_new:.0f} new tokens each",
            s,
            mb,
        )
        for i in range(1, tc.seeds):
            if a in seeded:
                est[f"eval_{a}_seed{i}"] = StageEstimate(
                    f"eval_{a}_seed{i}", f"{n_q} prompts, seed {cfg.seed + i}", s, mb
                )
    return est


def _estimate_after_eval(
    cfg: Config, work: Work, cal: dict, stages: list[str], qs: list[tuple[bool, int, int]], sizes: dict, model_mb: float
) -> dict[str, StageEstimate]:
    """known, probes, curve, metrics and recommend; fills sizes' probe_items."""
    from advisor.arms import seed_arms
    from advisor.core.arms import ADAPTER_ARMS
    from advisor.pipeline import KNOWN_MAX_NEW_TOKENS

    tc, ev = cfg.tuning, cfg.eval
    n_q = len(qs)
    n_ans = sum(1 for u, _, _ in qs if not u)
    new = min(cal["new_tokens_per_answer"], cfg.model.max_new_tokens)
    adapter = any(a in ADAPTER_ARMS for a in ev.arms)
    # they run in the eval stages' process, which holds the embedder and generates or scores as the calibration did
    mb = model_mb + cal["embed_rss_mb"] + cal["gen_rss_mb"]
    est: dict[str, StageEstimate] = {}
    if ev.known_samples:
        ans_tokens = closed_prefill_tokens([c for u, c, _ in qs if not u], work.closed_head, ev.batch_size, cal)
        rows = n_ans * ev.known_samples
        # k sampled rows per prompt decode together (eval.batch_size prompts x k rows a batch); a wider batch
        # costs less per row-token, as the square root of the width (advisor/core/lm.py LM.sample: 192 rows a
        # batch took half the time of 48)
        width = min(ev.batch_size, n_ans) * ev.known_samples / max(1, cal["decode_batch"])
        decode = rows * min(KNOWN_MAX_NEW_TOKENS, cfg.model.max_new_tokens) * cal["decode_s_per_token"]
        s = ans_tokens * cal["prefill_s_per_token"] + decode / math.sqrt(max(1.0, width))
        est["known"] = StageEstimate("known", f"{n_ans} answerable questions x {ev.known_samples} samples", s, mb)
    weights = 2 if adapter else 1
    sizes["probe_items"] = max((len(v) for v in work.probes.values()), default=0)
    ptok = sum(sum(v) for v in work.probes.values()) + sum(work.perplexity)
    if "probes" in stages:
        what = ", ".join(f"{name} {len(v)} items" for name, v in work.probes.items())
        if work.perplexity:
            what += f"{', ' if what else ''}{len(work.perplexity)} perplexity passages"
        # choices are scored on their last tokens (a prefill's cost); perplexity passages on every token
        mc_s = sum(sum(v) for v in work.probes.values()) * cal["prefill_s_per_token"]
        ppl_s = sum(work.perplexity) * cal.get("score_s_per_token", cal["prefill_s_per_token"])
        est["probes"] = StageEstimate(
            "probes",
            f"{what}; {ptok:,} tokens x {weights} weights",
            weights * (mc_s + ppl_s) * (cal["adapter_factor"] if adapter else 1),
            mb,
        )
    if "curve" in stages:
        cq = [c for u, c, _ in qs if not u][: ev.curve_questions]
        first = next(iter(work.probes.values()), [])[: ev.curve_probe_items]
        cq_run = closed_prefill_tokens(cq, work.closed_head, ev.batch_size, cal)
        per_point = _generate_s(cal, cq_run, len(cq), new, True) + sum(first) * cal["prefill_s_per_token"]
        # its training questions at every adapter point, the final adapter's too (closed book, sized like the eval
        # questions' closed-book prompts, answered as briefly as the tuned arms answer)
        n_tq = min(ev.curve_train_questions, work.train_kinds.get("qa", 0))
        tq_run = closed_prefill_tokens([round(sum(cq) / max(1, len(cq)))] * n_tq, work.closed_head, ev.batch_size, cal)
        brief = min(work.answer_tokens or new, new)
        train_s = (tc.curve_points + 1) * _generate_s(cal, tq_run, n_tq, brief, True) if n_tq else 0.0
        trained = f"; {n_tq} training questions x {tc.curve_points + 1} points" if n_tq else ""
        est["curve"] = StageEstimate(
            "curve",
            f"{tc.curve_points} snapshots x ({len(cq)} questions + {len(first)} probe items){trained}",
            tc.curve_points * per_point + train_s,
            mb,
        )
    answered = n_q * (len(ev.arms) + len(seed_arms(cfg)) * (tc.seeds - 1))
    est["metrics"] = StageEstimate(
        "metrics",
        f"score {answered:,} answers, {ev.bootstrap} bootstrap resamples",
        answered * 2 * 12 * cal["embed_s_per_token"] + 1.0,
    )
    est["recommend"] = StageEstimate("recommend", "utilities, sensitivity, report (not calibrated: a few seconds)", 3.0)
    return est


def _add_up(out: list[StageEstimate], parallel: bool) -> tuple[float, float]:
    """(total seconds, peak MB): the index and tune tracks run side by side when both are planned."""
    if parallel:
        total = max(sum(e.seconds for e in out if e.track == "index"), sum(e.seconds for e in out if e.track == "tune"))
        total += sum(e.seconds for e in out if not e.track)
        peak = max(
            [
                sum(e.peak_mb or 0 for e in out if e.track == "index")
                + max((e.peak_mb or 0 for e in out if e.track == "tune"), default=0)
            ]
            + [e.peak_mb or 0 for e in out if not e.track]
        )
        return total, peak
    for e in out:
        e.track = ""
    return sum(e.seconds for e in out), max((e.peak_mb or 0 for e in out), default=0)


def done_earlier(run_dir: Path, cfg: Config) -> list[str]:
    """The stages an earlier attempt in `run_dir` finished with this very config (config.yaml) and these input
    files (manifest.json 'inputs'): a run there resumes past them, as each stage's inputs hash is unchanged. None
    when the folder holds no run, or one of another config or other inputs (a question set the qa stage made is
    that run's own, so only a given one is compared)."""
    from advisor.core.artifacts import RunDir
    from advisor.core.config import dump_config
    from advisor.pipeline import input_hashes, planned_stages

    try:
        manifest = RunDir(run_dir).read_manifest()
        config = (Path(run_dir) / "config.yaml").read_text(encoding="utf-8")
    except (OSError, AdvisorError):
        return []
    if not isinstance(manifest, dict) or config != dump_config(cfg):
        return []
    was = manifest.get("inputs") or {}
    if any(h is not None and was.get(k) != h for k, h in input_hashes(cfg).items()):
        return []
    stages = manifest.get("stages") or {}
    return [s for s in planned_stages(cfg) if (stages.get(s) or {}).get("status") == "done"]


def resumed(plan: Plan, done: list[str]) -> Plan:
    """The plan of a run that resumes past the stages `done`: those count no time and no memory."""
    if not done:
        return plan
    parallel = any(s.track for s in plan.stages)
    stages = [replace(s, seconds=0.0, peak_mb=None) if s.name in done else s for s in plan.stages]
    total, peak = _add_up(stages, parallel)
    return replace(plan, stages=stages, total_s=total, peak_mb=peak, done=list(done))


# ---------------------------------------------------------------- a time budget


def _min_limit(cfg: Config, work: Work) -> int:
    """The smallest eval.limit that keeps MIN_ANSWERABLE answerable questions (all of them when fewer)."""
    from advisor.core.qa import QAItem, stratified_limit

    items = [
        QAItem(i, "q", [] if u else ["a"], unanswerable=u) for i, (u, _, _) in zip(work.question_ids, work.questions)
    ]
    planned = eval_questions(cfg, work)
    want = min(MIN_ANSWERABLE, sum(1 for u, _, _ in planned if not u))
    lo, hi = 1, len(planned)  # the answerable count grows with the limit: bisect for the smallest that holds
    while lo < hi:
        mid = (lo + hi) // 2
        if sum(1 for it in stratified_limit(items, mid) if not it.unanswerable) >= want:
            hi = mid
        else:
            lo = mid + 1
    return lo


def size_to_budget(cfg: Config, work: Work, cal: dict, budget_s: float, label: str = "") -> tuple[Config, dict]:
    """(a config whose plan fits BUDGET_SHARE of `budget_s` by BUDGET_RULE, the record of what was cut).
    AdvisorError when even the floors do not fit, naming the least budget that does."""
    plan0 = estimate(cfg, work, cal)
    target = budget_s * BUDGET_SHARE
    rec = {
        "time_budget": label or fmt_s(budget_s),
        "budget_s": budget_s,
        "target_s": round(target, 1),
        "estimate_before_s": round(plan0.total_s, 1),
        "rule": BUDGET_RULE,
        "cuts": [],
        "ci_widening": {},
    }
    if plan0.total_s <= target:
        rec["estimate_after_s"] = rec["estimate_before_s"]
        return cfg, rec
    base = copy.deepcopy(cfg)
    dropped = _drop_extras(base, len(work.train))
    best = _scale_to_fit(base, work, cal, (target, budget_s), plan0.sizes, rec["time_budget"])
    plan1 = estimate(best, _with_probe_limit(work, best.eval.probe_limit), cal)
    rec["cuts"] = dropped + _record_cuts(plan0.sizes, plan1.sizes, best, rec["ci_widening"])
    rec["estimate_after_s"] = round(plan1.total_s, 1)
    if plan1.total_s > target:  # the floors: they fit the budget, not its share
        rec["room_share"] = round(max(0.0, 1 - plan1.total_s / budget_s), 3)
    return best, rec


def _drop_extras(base: Config, n_examples: int) -> list[dict]:
    """First cuts, in place: the extra-seed adapters, the curve snapshots, the validation passes while training and
    the held-out examples scored after it beyond BUDGET_VAL_LIMIT (none of them changes an arm's answers)."""
    from tuning.data import val_scored

    dropped = []
    if base.tuning.seeds > 1:
        dropped.append({"what": "extra-seed adapters", "setting": "tuning.seeds", "from": base.tuning.seeds, "to": 1})
        base.tuning.seeds = 1
    if base.tuning.curve_points:
        dropped.append(
            {
                "what": "learning-vs-forgetting curve snapshots",
                "setting": "tuning.curve_points",
                "from": base.tuning.curve_points,
                "to": 0,
            }
        )
        base.tuning.curve_points = 0
    if not base.tuning.eval_every and not base.tuning.early_stopping_patience:
        # A validation pass is a forward pass over the whole held-out set: at the step floor on a 30x sample
        # corpus (165 held-out examples) four of them were planned to take longer than the ten training steps.
        dropped.append(
            {
                "what": "validation-loss passes while training (the one after the last step stays)",
                "setting": "tuning.eval_every",
                "from": 0,
                "to": ONLY_AT_THE_END,
            }
        )
        base.tuning.eval_every = ONLY_AT_THE_END
    scored = val_scored(n_examples, base.tuning.val_fraction, base.tuning.val_limit)
    if scored > BUDGET_VAL_LIMIT:
        dropped.append(
            {"what": "held-out examples scored", "setting": "tuning.val_limit", "from": scored, "to": BUDGET_VAL_LIMIT}
        )
        base.tuning.val_limit = BUDGET_VAL_LIMIT
    return dropped


def _scale_to_fit(base: Config, work: Work, cal: dict, limits: tuple[float, float], s0: dict, label: str) -> Config:
    """Steps, questions and probe items scaled by one factor (never below their floors), the largest whose plan
    fits `target` seconds (BUDGET_SHARE of the budget): a bisection over the plan's own estimate. `limits` is
    (target, budget): floors that need more than the target but fit the budget are what is returned; floors over
    the budget are an AdvisorError naming the least budget. On a host whose embedder runs in float32 the floors of
    a 30x sample corpus were planned at 9 min 31 s: a 10m budget was refused under the 85% share alone."""
    target, budget = limits
    q_floor = _min_limit(base, work)
    step_floor = min(s0["steps"], MIN_STEPS)
    probe_floor = min(s0["probe_items"], MIN_PROBE_ITEMS)

    def at(f: float) -> Config:
        c = copy.deepcopy(base)
        if s0["steps"]:
            c.tuning.max_steps = max(step_floor, round(s0["steps"] * f))
        c.eval.limit = max(q_floor, round(s0["questions"] * f))
        if s0["probe_items"]:
            c.eval.probe_limit = max(probe_floor, round(s0["probe_items"] * f))
        return c

    def total(c: Config) -> float:
        return estimate(c, _with_probe_limit(work, c.eval.probe_limit), cal).total_s

    if total(base) <= target:
        return base
    least = at(0.0)
    need = total(least)
    if need > budget:
        n_ans = sum(1 for u, _, _ in eval_questions(least, work) if not u)
        floors = (
            ([f"{least.tuning.max_steps} training steps"] if s0["steps"] else [])
            + [f"{n_ans} answerable questions"]
            + ([f"{least.eval.probe_limit} probe items"] if s0["probe_items"] else [])
        )
        raise AdvisorError(
            f"the time budget {label} is too small for this run: even its minimum "
            f"({', '.join(floors)}, every arm) needs about {fmt_s(need)} on this machine; "
            f"give at least --time-budget {math.ceil(need / 60)}m ({math.ceil(need / BUDGET_SHARE / 60)}m leaves "
            f"the plan its {1 - BUDGET_SHARE:.0%} of room for error)"
        )
    if need > target:
        return least
    lo, hi = 0.0, 1.0
    for _ in range(25):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if total(at(mid)) <= target else (lo, mid)
    return at(lo)


def _record_cuts(s0: dict, s1: dict, best: Config, ci_widening: dict) -> list[dict]:
    """What scaling cut (sizes before `s0`, after `s1`), and by how much each CI widens (sqrt of the n ratio)."""
    cuts = []
    if s1["steps"] < s0["steps"]:
        cuts.append({"what": "training steps", "setting": "tuning.max_steps", "from": s0["steps"], "to": s1["steps"]})
        best.tuning.max_steps = s1["steps"]
    if s1["questions"] < s0["questions"]:
        cuts.append(
            {
                "what": "eval questions",
                "setting": "eval.limit",
                "from": s0["questions"],
                "to": s1["questions"],
                "answerable": [s0["answerable"], s1["answerable"]],
                "unanswerable": [s0["unanswerable"], s1["unanswerable"]],
            }
        )
        ci_widening["accuracy"] = round(math.sqrt(s0["answerable"] / max(1, s1["answerable"])), 2)
        if s1["unanswerable"]:
            ci_widening["abstention"] = round(math.sqrt(s0["unanswerable"] / s1["unanswerable"]), 2)
    if s1["probe_items"] < s0["probe_items"]:
        cuts.append(
            {
                "what": "probe items per set",
                "setting": "eval.probe_limit",
                "from": s0["probe_items"],
                "to": s1["probe_items"],
            }
        )
        ci_widening["forgetting"] = round(math.sqrt(s0["probe_items"] / max(1, s1["probe_items"])), 2)
    return cuts


def _with_probe_limit(work: Work, limit: int) -> Work:
    if not limit:
        return work
    w = copy.copy(work)
    w.probes = {k: v[:limit] for k, v in work.probes.items()}
    return w


def cut_lines(rec: dict) -> list[str]:
    """What a time budget cut, one sentence per cut (the plan, the manifest's reader and report.md use them)."""
    if not rec or not (rec.get("cuts") or "room_share" in rec):
        return []
    out = []
    for c in rec["cuts"]:
        line = f"{c['what']}: {c['from']} -> {c['to']} ({c['setting']}={c['to']})"
        if c["setting"] == "tuning.eval_every":
            line = (
                "validation-loss passes while training: at the curve's snapshots (or about four) -> one, after the "
                "last step "
                f"({c['setting']}={c['to']})"
            )
        elif c["setting"] == "tuning.val_limit":
            line += "; the training set is the same, its validation loss is noisier"
        elif c["setting"] == "eval.limit":
            a, u = c["answerable"], c["unanswerable"]
            line += f"; answerable {a[0]} -> {a[1]}, unanswerable {u[0]} -> {u[1]}"
            w = rec["ci_widening"]
            line += f"; accuracy CIs about {w['accuracy']:.2f}x wider" + (
                f", abstention CIs {w['abstention']:.2f}x" if "abstention" in w else ""
            )
        elif c["setting"] == "eval.probe_limit":
            line += f"; forgetting CIs about {rec['ci_widening']['forgetting']:.2f}x wider"
        elif c["setting"] == "tuning.max_steps":
            line += "; the adapter sees fewer passes over its training set, so the tuned arms are likely weaker"
        out.append(line)
    if "room_share" in rec:
        out.append(
            f"every cut is at its floor and the plan leaves {rec['room_share']:.0%} of the budget for its own error, "
            f"not {1 - BUDGET_SHARE:.0%}: the run may end past the budget"
        )
    return out


# ---------------------------------------------------------------- the whole plan, printed


def make_plan(cfg: Config, refresh: bool = False, progress: bool = True) -> tuple[Plan, Work]:
    """(plan, work) for a resolved, validated config."""
    cal = calibrate(cfg, refresh=refresh, progress=progress)
    work = measure_work(cfg)
    return estimate(cfg, work, cal), work


def device_speedup(device: str | None, speedup: float | None) -> tuple[float, str] | None:
    """(factor, the assumption in words) for --device / --speedup, None for this machine."""
    if speedup is not None and not speedup > 0:
        raise AdvisorError(f"--speedup {speedup:g} must be positive (how many times faster than this machine)")
    if not device and speedup is None:
        return None
    if speedup is None:
        if device not in DEVICES:
            from advisor.core.errors import did_you_mean

            raise AdvisorError(
                f"unknown --device '{device}'{did_you_mean(str(device), DEVICES)}; known: "
                f"{', '.join(DEVICES)}, or give your own factor with --speedup"
            )
        speedup = DEVICES[device]
        why = (
            f"assumed: {device} runs every stage {speedup:g}x faster than this machine (a rough figure for models "
            "under 1B parameters; measure yours and pass --speedup)"
        )
    else:
        machine = device or "the other machine"
        why = f"assumed: {machine} runs every stage {speedup:g}x faster than this machine (--speedup)"
    return speedup, why


def _stage_rows(plan: Plan) -> list[str]:
    """The plan's table: one row per stage (time, peak memory, work), the total, and what a resume skips."""
    width = max(len(s.name) for s in plan.stages)
    L = [f"  {'stage':<{width}}  {'time':>11}  {'peak RSS':>8}  work"]
    for s in plan.stages:
        mem = f"{s.peak_mb / 1024:.1f} GB" if s.peak_mb else "–"
        par = "  [parallel]" if s.track else ""
        when = "done" if s.name in plan.done else fmt_s(s.seconds)
        L.append(f"  {s.name:<{width}}  {when:>11}  {mem:>8}  {s.work}{par}")
    L.append(
        f"  {'total':<{width}}  {fmt_s(plan.total_s):>11}  {plan.peak_mb / 1024:>5.1f} GB"
        + ("  (index and tuning tracks in parallel)" if any(s.track for s in plan.stages) else "")
    )
    if plan.done:
        L.append(
            f"resumes: {len(plan.done)} of {len(plan.stages)} stages were done by an earlier attempt in the run "
            "directory with this config and these inputs; the total counts the rest"
        )
    return L


def render(
    plan: Plan,
    cfg: Config,
    work: Work,
    speed: tuple[float, str] | None = None,
    price_per_hour: float | None = None,
    sizing: dict | None = None,
) -> str:
    """The plan as a table a person reads: per stage the work, time and peak memory; the total; the cost."""
    cal = plan.calibration
    m = cal.get("key", {}).get("machine", {})
    where = f"{m.get('cores')} cores{', ' + m['gpu'] if m.get('gpu') else ''}, {cal.get('device')}"
    # model.cpu_matmul_dtype where it is bfloat16 (the calibration's key names it only then)
    from advisor.core.models import products_words

    bf16 = products_words(cal.get("key", {}).get("cpu_matmul_dtype"))
    L = [
        f"plan: {work.n_documents} documents, {work.n_chunks:,} chunks; model {cfg.model.spec} "
        f"({cfg.model.quantization}{bf16}); embedder {cfg.retrieval.embedder}; this machine: {where}"
    ]
    L += _stage_rows(plan)
    cap = work.train_cap
    if cap.get("capped"):
        L.append(
            f"training data capped by tuning.max_train_tokens={cap['max_train_tokens']:,}: all instruction pairs, "
            f"{cap['n_text_segments_kept']:,} of {cap['n_text_segments_all']:,} corpus-text segments "
            f"({cap['text_tokens_kept']:,} of {cap['text_tokens_all']:,} tokens), every document kept"
        )
    elif cap.get("max_train_tokens"):
        L.append(
            f"training data: {cap['train_tokens']:,} tokens per pass, under tuning.max_train_tokens="
            f"{cap['max_train_tokens']:,} (nothing cut)"
        )
    for n in plan.notes:
        L.append(f"estimated, not counted: {n}")
    if sizing and cut_lines(sizing):
        L.append(
            f"time budget {sizing['time_budget']}: planned {fmt_s(sizing['estimate_before_s'])}, sized to "
            f"{fmt_s(sizing['estimate_after_s'])} ({sizing['rule']}):"
        )
        L += [f"  - {c}" for c in cut_lines(sizing)]
    elif sizing:
        L.append(f"time budget {sizing['time_budget']}: the plan fits, nothing cut")
    tps, qps = 1 / cal["train_s_per_token"], 1 / cal["train_body_s_per_token"]
    without = ""
    if cal.get("train_detached_s_per_token"):
        without = f", {1 / cal['train_detached_s_per_token']:,.0f} on passages without gradients"
    obs = cal.get("observed_train")
    seen = ""
    if obs:  # tokens that take gradients; a tune's progress bar also counts its forward-only positions
        every = f"; {obs['tokens'] / obs['steps_s']:,.0f} counting every position" if obs.get("steps_s") else ""
        seen = f" ({1 / obs['s_per_token']:,.0f} in the last tune stage on this machine, {obs['at'][:10]}: used{every})"
    L.append(
        f"calibration ({'cached, measured ' + cal.get('measured', '') if cal.get('cached') else 'measured now'} "
        f"in {cal['calibration_s']:.0f} s): train {tps:,.0f} tokens/s with gradients on text rows, {qps:,.0f} on "
        f"question rows{seen}{without}, prefill "
        f"{1 / cal['prefill_s_per_token']:,.0f} tokens/s, decode {1 / cal['decode_s_per_token']:,.0f} tokens/s "
        f"(batch {cal['decode_batch']}), embed {1 / cal['embed_s_per_token']:,.0f} tokens/s; model load "
        f"{cal['load_s']:.1f} s"
    )
    malloc = cal.get("train_allocator", "glibc")
    L.append(
        f"memory: peak RSS from the calibration's load and training steps, under the tune's malloc ({malloc}, "
        "tuning.allocator)"
        + ("; long runs also fragment glibc's heap (tuning.low_memory_heap)" if malloc == "glibc" else "")
    )
    L += _elsewhere_lines(plan, speed, price_per_hour, sizing)
    return "\n".join(L)


def _elsewhere_lines(
    plan: Plan, speed: tuple[float, str] | None, price_per_hour: float | None, sizing: dict | None
) -> list[str]:
    """--device / --speedup and --price-per-hour: the plan's time on the other machine, and what it costs."""
    L = []
    if speed:
        factor, why = speed
        sized = ""
        if sizing:  # the budget sized the run from this machine's calibration; a run there plans there
            sized = (
                f" for the run as the time budget {sizing['time_budget']} sized it on this machine (the budget is "
                "this machine's: `advisor plan` on the other machine sizes it there)"
            )
        L.append(f"on the other machine: about {fmt_s(plan.total_s / factor)}{sized} ({why})")
    if price_per_hour is not None:
        hours = plan.total_s / (speed[0] if speed else 1) / 3600
        L.append(
            f"cost: {hours:.2f} h x {price_per_hour:g} per hour = {hours * price_per_hour:.2f} "
            f"({'the other machine' if speed else 'this machine'}, at the price given)"
        )
    return L


def gate(plan: Plan, cfg: Config, yes: bool, interactive: bool, ask=input) -> None:
    """Without a budget, a plan over run.confirm_over needs a yes: asked on a terminal, --yes otherwise."""
    limit = cfg.run.confirm_over_s
    if cfg.run.time_budget or yes or plan.total_s <= limit:
        return
    over = f"this run is planned at {fmt_s(plan.total_s)} on this machine, over run.confirm_over={cfg.run.confirm_over}"
    if not interactive:
        raise AdvisorError(
            f"{over}; nothing was started: rerun with --yes to start it anyway, or with "
            f"--time-budget {cfg.run.confirm_over} to size it to fit"
        )
    answer = ask(f"{over}. Start it? [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        err = AdvisorError(f"not started ({over}); --time-budget {cfg.run.confirm_over} sizes it to fit")
        err.exit_code = 1
        raise err


def manifest_record(plan: Plan, sizing: dict | None) -> dict:
    """What the run's manifest keeps of its plan: the estimate per stage and what a budget cut."""
    return {
        "estimate": plan.to_dict(),
        "budget": sizing,
        "calibration": {k: plan.calibration.get(k) for k in ("measured", "calibration_s", "device")},
    }


def _ask(prompt: str) -> str:
    """A yes/no question on the terminal (the prompt on stderr: stdout stays for results)."""
    import sys

    print(prompt, end="", file=sys.stderr, flush=True)
    return sys.stdin.readline()


def _checked(cfg: Config) -> Config:
    """The config resolved and every input checked, as `advisor run` checks them before touching anything."""
    from advisor.pipeline import check_run_settings, resolve_inputs, validate_inputs

    cfg = resolve_inputs(cfg)
    check_run_settings(cfg)
    validate_inputs(cfg)
    return cfg


def _progress() -> bool:
    import sys

    return sys.stderr.isatty()  # no progress bars into a log or a test's captured output


def _sized(
    cfg: Config, refresh: bool, budget_label: str | None, progress: bool | None = None, echo: bool = True
) -> tuple[Config, Plan, Work, dict | None, Plan]:
    """(config to run, its plan, the work, what a budget cut, the plan before sizing). `progress`: calibration
    progress bars (default: when stderr is a terminal); `echo`: print the unsized plan when a budget is too small."""
    plan, work = make_plan(cfg, refresh=refresh, progress=_progress() if progress is None else progress)
    if not cfg.run.time_budget:
        return cfg, plan, work, None, plan
    try:
        sized, rec = size_to_budget(cfg, work, plan.calibration, cfg.run.budget_s, budget_label or cfg.run.time_budget)
    except AdvisorError:
        if echo:  # the unsized plan for reference (stdout); the error is the one line on stderr
            print(render(plan, cfg, work))
        raise
    if not cut_lines(rec):
        return sized, plan, work, rec, plan
    sized_work = _with_probe_limit(work, sized.eval.probe_limit)
    return sized, estimate(sized, sized_work, plan.calibration), sized_work, rec, plan


def plan_only(
    cfg: Config,
    refresh: bool = False,
    device: str | None = None,
    speedup: float | None = None,
    price_per_hour: float | None = None,
    budget_label: str | None = None,
    out: Path | None = None,
) -> str:
    """advisor plan: the rendered plan of a config (sized to run.time_budget when it has one); builds nothing.
    Stages a run in `out` (default: the config's run directory) already finished are shown done."""
    from advisor.pipeline import default_run_dir

    speed = device_speedup(device, speedup)
    _price(price_per_hour)
    cfg, plan, work, sizing, _ = _sized(_checked(cfg), refresh, budget_label)
    plan = resumed(plan, done_earlier(out or default_run_dir(cfg), cfg))
    return render(plan, cfg, work, speed, price_per_hour, sizing)


def plan_config(cfg: Config) -> tuple[Config, Plan, Work, dict | None]:
    """The plan `advisor plan` prints, as data and quietly (no progress bars, nothing printed): (the config as a
    time budget sized it, its plan, the work, what the budget cut or None). The dashboard's New run estimate."""
    cfg, plan, work, sizing, _ = _sized(_checked(cfg), False, None, progress=False, echo=False)
    return cfg, plan, work, sizing


def _price(price: float | None) -> None:
    if price is not None and not price >= 0:
        raise AdvisorError(f"--price-per-hour {price:g} must be a price >= 0")


def prepare_run(
    cfg: Config,
    out: Path | None,
    force: bool,
    yes: bool,
    interactive: bool,
    refresh: bool = False,
    budget_label: str | None = None,
    device: str | None = None,
    speedup: float | None = None,
    price_per_hour: float | None = None,
    ask=_ask,
) -> tuple[Config, dict]:
    """Before `advisor run` touches anything: check every input, plan the run, size it to run.time_budget, and
    without a budget ask before a run longer than run.confirm_over (gate). The plan is printed either way: on
    stderr when the run goes ahead, on stdout when it does not (stderr then holds the one error line).
    Returns the config to run and the manifest's record of the plan."""
    from advisor.core.logs import say
    from advisor.core.rundirs import check_out, check_unlocked
    from advisor.pipeline import default_run_dir

    speed = device_speedup(device, speedup)
    _price(price_per_hour)
    cfg = _checked(cfg)
    if out is not None:
        check_out(out, force)
    cfg, plan, work, sizing, _ = _sized(cfg, refresh, budget_label)
    run_dir = out or default_run_dir(cfg)
    check_unlocked(run_dir)  # a run directory in use refuses before any plan is printed
    plan = resumed(plan, done_earlier(run_dir, cfg))
    text = render(plan, cfg, work, speed, price_per_hour, sizing)
    needs_yes = not (cfg.run.time_budget or yes) and plan.total_s > cfg.run.confirm_over_s
    if needs_yes and not interactive:
        print(text)  # stdout: stderr holds the one error line gate raises
    else:
        say(text)
    gate(plan, cfg, yes, interactive, ask)
    return cfg, manifest_record(plan, sizing)
