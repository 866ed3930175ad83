"""A loaded causal LM with the two operations evaluation needs: batched greedy generation and
log-likelihood of continuations (multiple-choice probes), plus switching a LoRA adapter on/off; and
seeded sampling of several answers per prompt (the known-facts stage). The decoding engine itself (prefill,
evicting decoder, stop strings) is advisor/core/decoding.py; this module batches the prompts for it and turns
its rows into Generations.

    lm = LM.load("smollm2-135m-instruct", quantization="nf4", adapter="runs/x/adapter")
    with lm.adapter(False):          # the base arms reuse the same weights with the adapter off
        outs = lm.generate([prompt], max_new_tokens=32)
        samples = lm.sample([prompt], k=4, temperature=0.7, seed=0)   # [[Generation x 4]]
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

from tqdm.auto import tqdm

from advisor.core import decoding


@dataclass
class Generation:
    text: str
    prompt_tokens: int
    new_tokens: int
    latency_s: float  # wall time of the batch this prompt was in, divided by the batch size
    confidence: float | None = None  # geometric-mean probability of the generated tokens (0..1)
    # log-probability of each generated token up to and including the end or stop token (what `confidence`
    # averages); the raw server returns them as chat logprobs
    token_logprobs: list[float] | None = None


class LM:
    # The decoding engine's settings (advisor/core/decoding.py says what each does); one LM may set its own.
    ROWWISE_PREFILL_TOKENS = decoding.ROWWISE_PREFILL_TOKENS
    MIN_SHARED_PREFIX = decoding.MIN_SHARED_PREFIX
    DEQUANT_ONCE_BYTES = decoding.DEQUANT_ONCE_BYTES

    def __init__(self, model, tokenizer, spec: str, device: str, matmul_dtype: str = "float32"):
        self.model = model
        self.tokenizer = tokenizer
        self.spec = spec
        self.device = device
        # the dtype of the 4-bit layers' dequantized copies (models.resolve_cpu_matmul: float32 off CPU)
        self.matmul_dtype = matmul_dtype
        # A chat template renders its own special tokens; plain prompts need the tokenizer's BOS.
        self.has_chat_template = bool(getattr(tokenizer, "chat_template", None))
        self._adapter_on = True
        self.prefill_tokens = 0  # prompt tokens run through the model by `decoding.prefill` (shared prefixes once)
        self.score_tokens = 0  # tokens run through the model by scoring (loglikelihood, perplexity; contexts once)

    @classmethod
    def load(
        cls,
        spec: str,
        quantization: str = "nf4",
        adapter: str | None = None,
        device: str | None = None,
        matmul_dtype: str = "float32",
    ) -> LM:
        """`matmul_dtype`: the 4-bit layers' product dtype on CPU, as model.cpu_matmul_dtype (auto: bfloat16 on CPUs
        with AVX512-BF16, models.resolve_cpu_matmul); float32 unless asked, so the answers are bitsandbytes' own."""
        from advisor.core.models import default_device, load_causal_model, resolve_cpu_matmul

        device = device or default_device()
        model, tok = load_causal_model(spec, quantization, device)
        if adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter, is_trainable=False)
            model.eval()
        return cls(model, tok, spec, device, resolve_cpu_matmul(matmul_dtype, device, quantization=quantization))

    @property
    def has_adapter(self) -> bool:
        return hasattr(self.model, "disable_adapter")

    @contextlib.contextmanager
    def adapter(self, enabled: bool) -> Iterator[None]:
        """Run with the LoRA adapter on or off (no-op for a model without one)."""
        if enabled or not self.has_adapter:
            yield
            return
        with self.model.disable_adapter():
            yield

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=not self.has_chat_template)["input_ids"]

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def dequantized_once(self):
        """A block in which every 4-bit layer multiplies by one dequantized copy of its weight (decoding.py)."""
        return decoding.dequantized_once(self)

    # ---------------------------------------------------------------- generation
    def generate(
        self,
        prompts: list[str],
        max_new_tokens: int = 32,
        batch_size: int = 16,
        stop: tuple[str, ...] = ("\n",),
        desc: str | None = None,
        min_new_tokens: int = 0,
        evict: bool = True,
    ) -> list[Generation]:
        """Greedy answers for rendered prompts, in input order; batches are length-sorted, left-padded.

        With `evict` (default) a batch is prefilled by `decoding.prefill` (long prompts one at a time, sharing the
        keys and values of common prefixes) and decoded by `decoding.decode`, which drops every finished sequence
        from the batch and its KV cache, so a batch costs what its live rows cost; `evict=False` runs
        `model.generate` instead (same tokens, every row computed until the longest finishes)."""
        import torch

        tok = self.tokenizer
        tok.padding_side = "left"
        ids = [self.encode(p) for p in prompts]
        order = decoding.batch_order(self, ids) if evict else sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out: list[Generation | None] = [None] * len(prompts)
        bar = tqdm(total=len(prompts), desc=desc or "generate", unit="q", leave=False, disable=desc is None)
        # One dequantized copy of the 4-bit weights for the whole call, prefill and every decoding step; else each
        # step of a batch dequantizes all of them again (docs/evaluation-results.md, 'Decoding from one copy').
        with self.dequantized_once():
            for b in range(0, len(order), batch_size):
                idx = order[b : b + batch_size]
                t0 = time.perf_counter()
                with torch.inference_mode():
                    if evict:
                        prefilled = decoding.prefill(self, [ids[i] for i in idx], max_new_tokens)
                        rows = decoding.decode(self, *prefilled, max_new_tokens, stop, min_new_tokens)
                        # the batch's KV cache goes now, not when the next batch's prefill returns: until then both
                        # were alive (the retrieval arms' peak, 48 rows of ~535-token prompts: +0.8 GB)
                        del prefilled
                    else:
                        batch = tok.pad({"input_ids": [ids[i] for i in idx]}, return_tensors="pt").to(self.device)
                        rows = decoding.hf_generate(self, batch, max_new_tokens, stop, min_new_tokens)
                dt = time.perf_counter() - t0
                for (new, lps), i in zip(rows, idx):
                    out[i] = self._generation(new, lps, len(ids[i]), dt / len(idx), stop)
                bar.update(len(idx))
        bar.close()
        return out  # type: ignore[return-value]

    def _generation(
        self, new: list[int], lps: list[float], prompt_tokens: int, latency_s: float, stop: tuple[str, ...]
    ) -> Generation:
        """One decoded row as a Generation: text cut at the first stop string, confidence over the live tokens."""
        tok = self.tokenizer
        live = [k for k, t in enumerate(new) if t != tok.pad_token_id]
        text = tok.decode(new, skip_special_tokens=True)
        for s in stop:
            text = text.split(s, 1)[0] if s in text else text
        conf = math.exp(sum(lps[k] for k in live) / len(live)) if live else None
        return Generation(text.strip(), prompt_tokens, len(live), latency_s, conf, [lps[k] for k in live])

    def sample(
        self,
        prompts: list[str],
        k: int,
        temperature: float,
        seed: int = 0,
        max_new_tokens: int = 16,
        batch_size: int = 16,
        stop: tuple[str, ...] = ("\n",),
        desc: str | None = None,
    ) -> list[list[Generation]]:
        """`k` answers per prompt sampled at `temperature` (softmax of logits / temperature, no top-k or top-p),
        in input order. Each prompt is prefilled once and its keys and values copied into k rows that `decode`
        samples and evicts like greedy rows; `batch_size` counts prompts, so a batch decodes batch_size * k rows
        (80 prompts x 4 samples of SmolLM2-135M, nf4, 2 cores: 192 rows per batch took half the time of 48).

        Sample j of a prompt draws its random numbers from its own generator, seeded by (seed, j, prompt
        text): the same seed gives the same samples whatever the batch size, the order of the prompts or the
        other prompts in the batch (up to the float rounding of a differently padded batch)."""
        import torch

        if k < 1 or temperature <= 0:
            raise ValueError(f"sample needs k >= 1 and temperature > 0 (got k={k}, temperature={temperature})")
        self.tokenizer.padding_side = "left"
        ids = [self.encode(p) for p in prompts]
        order = decoding.batch_order(self, ids)
        out: list[list[Generation]] = [[] for _ in prompts]
        bar = tqdm(total=len(prompts), desc=desc or "sample", unit="q", leave=False, disable=desc is None)
        # One dequantized copy of the 4-bit weights for the whole call: ~10% faster on CPU than dequantizing at every
        # decoding step (108-116 vs 120-131 s for 80 x 4 samples of SmolLM2-135M), the same tokens.
        with self.dequantized_once():
            for b in range(0, len(order), batch_size):
                idx = order[b : b + batch_size]
                uniforms = torch.stack(
                    [decoding.sample_uniforms(seed, j, prompts[i], max_new_tokens) for i in idx for j in range(k)]
                )
                t0 = time.perf_counter()
                with torch.inference_mode():
                    logits, cache, mask, pos = decoding.prefill(self, [ids[i] for i in idx], max_new_tokens)
                    cache.batch_repeat_interleave(k)
                    rows = decoding.decode(
                        self,
                        logits.repeat_interleave(k, 0),
                        cache,
                        mask.repeat_interleave(k, 0),
                        pos.repeat_interleave(k, 0),
                        max_new_tokens,
                        stop,
                        temperature=temperature,
                        uniforms=uniforms.to(logits.device),
                    )
                    del logits, cache, mask, pos  # the batch's KV cache goes before the next batch's prefill
                dt = time.perf_counter() - t0
                for n, i in enumerate(idx):
                    out[i] = [
                        self._generation(*rows[n * k + j], len(ids[i]), dt / (len(idx) * k), stop) for j in range(k)
                    ]
                bar.update(len(idx))
        bar.close()
        return out

    # ---------------------------------------------------------------- scoring
    def loglikelihood(
        self, requests: list[tuple[str, str]], batch_size: int = 16, desc: str | None = None
    ) -> list[float]:
        """Sum of log-probabilities of each continuation given its context (the lm-evaluation-harness
        method: trailing whitespace of the context moves to the continuation)."""
        return self._score_tail(loglikelihood_rows(self.encode, requests), batch_size, desc)

    def perplexity(
        self, texts: list[str], max_tokens: int = 256, batch_size: int = 8, desc: str | None = None
    ) -> list[float]:
        """Per-text perplexity exp(mean negative log-likelihood per token) of the first `max_tokens`
        tokens of each text; the first token is context only (general-text forgetting probe)."""
        rows = perplexity_rows(self.tokenizer, texts, max_tokens)
        return perplexities(self._score_tail(rows, batch_size, desc), rows)

    def _score_tail(self, rows: list[tuple[list[int], int]], batch_size: int, desc: str | None) -> list[float]:
        """Sum of log-probabilities of the last n tokens of each (ids, n) row."""
        return self._tail_logprobs(rows, batch_size, desc)[0]

    def token_logprobs(self, rows: list[list[int]], batch_size: int = 16) -> list[list[float]]:
        """The log-probability of every token of each row given the tokens before it (len(row) - 1 values:
        the first token has no context); what `advisor serve --raw` returns for completions with echo."""
        return self._tail_logprobs([(r, len(r) - 1) for r in rows], batch_size, None)[1]

    def _tail_logprobs(
        self, rows: list[tuple[list[int], int]], batch_size: int, desc: str | None
    ) -> tuple[list[float], list[list[float]]]:
        """(sum, per-token list) of the log-probabilities of the last n tokens of each (ids, n) row. Rows that share
        their context with others (a multiple-choice item's choices: `shared_contexts`) run that context once per
        group and each row only its own tail after it (`_score_shared`); the others go in length-sorted,
        right-padded passes whose vocabulary projection runs only from the first scored position on
        (`logits_to_keep`), which skips most of the prompt's (49k-wide) logits. A pass holds at most `batch_size`
        rows and SCORE_LOGITS_MB of logits (`score_batches`, `group_batches`)."""
        out = [0.0] * len(rows)
        per_token: list[list[float]] = [[] for _ in rows]
        share = decoding.plain_cache(self) and getattr(self, "_keep_ok", True)
        groups = shared_contexts(rows, self.MIN_SHARED_PREFIX) if share else []
        grouped = {i for _, members in groups for i in members}
        alone = [(ids, 0 if i in grouped else n) for i, (ids, n) in enumerate(rows)]  # n = 0: not in a plain pass
        vocab = self.vocab_size()
        passes = [(False, idx) for idx in score_batches(alone, batch_size, vocab)]
        passes += [(True, gs) for gs in group_batches(rows, groups, batch_size, vocab)]
        # one dequantized copy of the 4-bit weights for every pass, as in generate
        with self.dequantized_once():
            for shared, part in tqdm(passes, desc=desc or "score", leave=False, disable=desc is None):
                got = self._score_groups(rows, part, batch_size, vocab) if shared else self._score_plain(rows, part)
                for i, lp in got:
                    out[i] = float(lp.sum())
                    per_token[i] = lp.tolist()
        return out, per_token

    def _score_plain(self, rows: list[tuple[list[int], int]], idx: list[int]) -> list:
        """(row index, log-probabilities of its last n tokens) for the rows `idx`, in one right-padded pass."""
        import torch

        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        width = max(len(rows[i][0]) for i in idx)
        first = min(len(rows[i][0]) - rows[i][1] - 1 for i in idx)  # first position whose logits are needed
        inp = torch.full((len(idx), width), pad, dtype=torch.long)
        att = torch.zeros((len(idx), width), dtype=torch.long)
        for r, i in enumerate(idx):
            seq = rows[i][0]
            inp[r, : len(seq)] = torch.tensor(seq)
            att[r, : len(seq)] = 1
        with torch.inference_mode():
            logits = self._forward_tail(inp.to(self.device), att.to(self.device), width - first)
        self.score_tokens += int(att.sum())
        got = []
        for r, i in enumerate(idx):
            seq, n = rows[i]
            pos = torch.arange(len(seq) - n, len(seq))
            lp = torch.log_softmax(logits[r, pos - 1 - first].float(), dim=-1).cpu()
            got.append((i, lp[torch.arange(n), torch.tensor(seq[len(seq) - n :])]))
        return got

    def _score_groups(self, rows: list[tuple[list[int], int]], part: list, batch_size: int, vocab: int) -> list:
        """`_score_shared` over the groups of `part`; a model whose forward takes no `logits_to_keep` (or no
        `position_ids`) scores their rows in plain passes instead, as `_forward_tail` does, and from then on."""
        if getattr(self, "_keep_ok", True):  # a later group of the same call skips the attempt once it failed
            try:
                return self._score_shared(rows, part)
            except TypeError:
                self._keep_ok = False
        members = {i for _, m in part for i in m}
        alone = [(ids, n if i in members else 0) for i, (ids, n) in enumerate(rows)]
        return [got for idx in score_batches(alone, batch_size, vocab) for got in self._score_plain(rows, idx)]

    def _score_shared(self, rows: list[tuple[list[int], int]], groups: list[tuple[int, list[int]]]) -> list:
        """(row index, log-probabilities of its last n tokens) for the rows of `groups` ((context length L, rows
        whose first L tokens are the same)): one left-padded pass over the groups' contexts keeps their keys and
        values, each row's copy of its group's, and one right-padded pass over the rows' tails (tokens L on)
        continues from them; the logits at a context's last position come from the first pass."""
        import torch

        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        dev = self.device
        lens = torch.tensor([length for length, _ in groups])
        width = int(lens.max())
        ctx = torch.full((len(groups), width), pad, dtype=torch.long)
        ctx_att = torch.zeros((len(groups), width), dtype=torch.long)
        for g, (length, members) in enumerate(groups):
            ctx[g, width - length :] = torch.tensor(rows[members[0]][0][:length])
            ctx_att[g, width - length :] = 1
        members = [(g, i) for g, (_, m) in enumerate(groups) for i in m]
        gidx = torch.tensor([g for g, _ in members])
        tails = [rows[i][0][int(lens[g]) :] for g, i in members]
        t_width = max(map(len, tails))
        inp = torch.full((len(members), t_width), pad, dtype=torch.long)
        att = torch.cat([ctx_att[gidx], torch.zeros((len(members), t_width), dtype=torch.long)], 1)
        for r, t in enumerate(tails):
            inp[r, : len(t)] = torch.tensor(t)
            att[r, width : width + len(t)] = 1
        pos = lens[gidx][:, None] + torch.arange(t_width)[None]
        with torch.inference_mode():
            first = self.model(
                input_ids=ctx.to(dev),
                attention_mask=ctx_att.to(dev),
                position_ids=(ctx_att.cumsum(-1) - 1).clamp(min=0).to(dev),
                use_cache=True,
                logits_to_keep=1,
            )
            cache = first.past_key_values
            cache.reorder_cache(gidx.to(dev))  # each row's own copy of its group's keys and values
            logits = self.model(
                input_ids=inp.to(dev), attention_mask=att.to(dev), position_ids=pos.to(dev), past_key_values=cache
            ).logits
        self.score_tokens += int(lens.sum()) + sum(map(len, tails))
        got = []
        for r, (g, i) in enumerate(members):
            seq, n = rows[i]
            # the logits before token p: the context pass's at p = L, the tail pass's position p - 1 - L after it
            every = torch.cat([first.logits[g, -1:], logits[r]])
            lp = torch.log_softmax(every[torch.arange(len(seq) - n, len(seq)) - int(lens[g])].float(), -1).cpu()
            got.append((i, lp[torch.arange(n), torch.tensor(seq[len(seq) - n :])]))
        return got

    def vocab_size(self) -> int:
        """Width of the model's vocabulary projection (0 when the model does not say)."""
        head = self.model.get_output_embeddings() if hasattr(self.model, "get_output_embeddings") else None
        n = getattr(head, "out_features", None) if head is not None else None
        return int(n or getattr(getattr(self.model, "config", None), "vocab_size", 0) or 0)

    def _forward_tail(self, inp, att, keep: int):
        """Logits of the last `keep` positions; models without `logits_to_keep` return all of them."""
        if getattr(self, "_keep_ok", True):
            try:
                return self.model(input_ids=inp, attention_mask=att, logits_to_keep=keep).logits
            except TypeError:
                self._keep_ok = False
        return self.model(input_ids=inp, attention_mask=att).logits[:, -keep:]


# Logits one scoring pass may hold (float32: positions x vocabulary x 4 bytes). Eight 256-token perplexity rows
# of Gemma 3's 262k-word vocabulary are 2.1 GB of logits (the probes stage then peaked at 5.9 GB); SmolLM2's 49k
# words fit 5 such rows. docs/architecture.md 'Peak memory'.
SCORE_LOGITS_MB = 256


def score_batches(rows: list[tuple[list[int], int]], batch_size: int, vocab: int) -> list[list[int]]:
    """Indices of the (ids, n) rows with n > 0 in scoring passes, longest rows first: each pass at most
    `batch_size` rows and, past its first row, at most SCORE_LOGITS_MB of logits (rows x positions from the first
    scored one x vocab x 4 bytes)."""
    order = sorted((i for i in range(len(rows)) if rows[i][1] > 0), key=lambda i: -len(rows[i][0]))
    limit = SCORE_LOGITS_MB * 2**20
    batches: list[list[int]] = []
    cur: list[int] = []
    first = 0
    for i in order:
        start = len(rows[i][0]) - rows[i][1] - 1
        if cur:
            keep = len(rows[cur[0]][0]) - min(first, start)  # the pass's width is its first (longest) row's
            if len(cur) < batch_size and (len(cur) + 1) * keep * vocab * 4 <= limit:
                cur.append(i)
                first = min(first, start)
                continue
            batches.append(cur)
        cur, first = [i], start
    if cur:
        batches.append(cur)
    return batches


def shared_contexts(rows: list[tuple[list[int], int]], min_len: int) -> list[tuple[int, list[int]]]:
    """Groups of the (ids, n) rows with n > 0 that begin with the same L >= min_len tokens, none of them scored
    (L <= len(ids) - n for each row): (L, row indices) per group of two or more rows, in lexicographic order of
    the rows. A multiple-choice item's choices are one group whose L is the item's context. Each group's L is set
    by its first two rows; a later row joins while it shares at least those L tokens.

    >>> shared_contexts([([1, 2, 3, 4, 7], 1), ([1, 2, 3, 4, 8, 9], 2), ([5, 6], 1), ([1, 2, 3, 5], 1)], 3)
    [(4, [0, 1])]
    """
    order = sorted((i for i in range(len(rows)) if rows[i][1] > 0), key=lambda i: rows[i][0])
    groups: list[tuple[int, list[int]]] = []
    cur: list[int] = []
    length = 0
    for i in order:
        if cur:
            (a, na), (b, nb) = rows[cur[0]], rows[i]
            shared = min(decoding.common_prefix(a, b), len(a) - na, len(b) - nb)
            if shared >= (length if len(cur) > 1 else min_len):
                length = shared if len(cur) == 1 else length
                cur.append(i)
                continue
            if len(cur) > 1:
                groups.append((length, cur))
        cur, length = [i], 0
    if len(cur) > 1:
        groups.append((length, cur))
    return groups


def group_batches(
    rows: list[tuple[list[int], int]], groups: list[tuple[int, list[int]]], batch_size: int, vocab: int
) -> list[list[tuple[int, list[int]]]]:
    """The `shared_contexts` groups in scoring passes, by context length: a pass holds whole groups, at most
    `batch_size` rows (more only when one group has more) and, past its first group, at most SCORE_LOGITS_MB of
    logits (rows x their longest tail x vocab x 4 bytes)."""
    limit = SCORE_LOGITS_MB * 2**20
    passes: list[list[tuple[int, list[int]]]] = []
    cur: list[tuple[int, list[int]]] = []
    n_rows = tail = 0
    for length, members in sorted(groups, key=lambda g: g[0]):
        t = max(len(rows[i][0]) for i in members) - length
        if cur and (n_rows + len(members) > batch_size or (n_rows + len(members)) * max(tail, t) * vocab * 4 > limit):
            passes.append(cur)
            cur, n_rows, tail = [], 0, 0
        cur.append((length, members))
        n_rows, tail = n_rows + len(members), max(tail, t)
    if cur:
        passes.append(cur)
    return passes


def loglikelihood_rows(encode, requests: list[tuple[str, str]]) -> list[tuple[list[int], int]]:
    """(token ids of context + continuation, number of continuation tokens) per request, the tokenization every
    backend scores (the lm-evaluation-harness rule: trailing whitespace of the context moves to the continuation)."""
    rows: list[tuple[list[int], int]] = []
    for ctx, cont in requests:
        n_sp = len(ctx) - len(ctx.rstrip())
        if n_sp:
            ctx, cont = ctx[:-n_sp], ctx[-n_sp:] + cont
        whole = encode(ctx + cont)
        n_cont = max(1, len(whole) - len(encode(ctx)))
        rows.append((whole, n_cont))
    return rows


def perplexity_rows(tokenizer, texts: list[str], max_tokens: int) -> list[tuple[list[int], int]]:
    """(BOS + the first tokens of the text, number of scored tokens) per text: every token but the first."""
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    rows = []
    for t in texts:
        ids = (bos + tokenizer(t, add_special_tokens=False)["input_ids"])[:max_tokens]
        rows.append((ids, len(ids) - 1))
    return rows


def perplexities(sums: list[float], rows: list[tuple[list[int], int]]) -> list[float]:
    """exp(mean negative log-likelihood per scored token) from each row's summed log-probability."""
    return [math.exp(-s / n) if n else float("nan") for s, (_, n) in zip(sums, rows)]
