"""A loaded causal LM with the two operations evaluation needs: batched greedy generation and
log-likelihood of continuations (multiple-choice probes), plus switching a LoRA adapter on/off; and
seeded sampling of several answers per prompt (the known-facts stage).

    lm = LM.load("smollm2-135m-instruct", quantization="nf4", adapter="runs/x/adapter")
    with lm.adapter(False):          # the base arms reuse the same weights with the adapter off
        outs = lm.generate([prompt], max_new_tokens=32)
        samples = lm.sample([prompt], k=4, temperature=0.7, seed=0)   # [[Generation x 4]]
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

from tqdm.auto import tqdm


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
    def __init__(self, model, tokenizer, spec: str, device: str):
        self.model = model
        self.tokenizer = tokenizer
        self.spec = spec
        self.device = device
        # A chat template renders its own special tokens; plain prompts need the tokenizer's BOS.
        self.has_chat_template = bool(getattr(tokenizer, "chat_template", None))
        self._adapter_on = True
        self.prefill_tokens = 0  # prompt tokens run through the model by `_prefill` (shared prefixes count once)

    @classmethod
    def load(cls, spec: str, quantization: str = "nf4", adapter: str | None = None, device: str | None = None) -> LM:
        from advisor.core.models import default_device, load_causal_model

        device = device or default_device()
        model, tok = load_causal_model(spec, quantization, device)
        if adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter, is_trainable=False)
            model.eval()
        return cls(model, tok, spec, device)

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

        With `evict` (default) a batch is prefilled by `_prefill` (long prompts one at a time, sharing the
        keys and values of common prefixes) and decoded by `_decode`, which drops every finished sequence
        from the batch and its KV cache, so a batch costs what its live rows cost; `evict=False` runs
        `model.generate` instead (same tokens, every row computed until the longest finishes)."""
        import torch

        tok = self.tokenizer
        tok.padding_side = "left"
        ids = [self.encode(p) for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: len(ids[i]))
        out: list[Generation | None] = [None] * len(prompts)
        bar = tqdm(total=len(prompts), desc=desc or "generate", unit="q", leave=False, disable=desc is None)
        for b in range(0, len(order), batch_size):
            idx = order[b : b + batch_size]
            t0 = time.perf_counter()
            with torch.inference_mode():
                if evict:
                    rows = self._decode(*self._prefill([ids[i] for i in idx], max_new_tokens), max_new_tokens, stop,
                                        min_new_tokens)
                else:
                    batch = tok.pad({"input_ids": [ids[i] for i in idx]}, return_tensors="pt").to(self.device)
                    rows = self._hf_generate(batch, max_new_tokens, stop, min_new_tokens)
            dt = time.perf_counter() - t0
            for (new, lps), i in zip(rows, idx):
                out[i] = self._generation(new, lps, len(ids[i]), dt / len(idx), stop)
            bar.update(len(idx))
        bar.close()
        return out  # type: ignore[return-value]

    def _generation(self, new: list[int], lps: list[float], prompt_tokens: int, latency_s: float,
                    stop: tuple[str, ...]) -> Generation:
        """One decoded row as a Generation: text cut at the first stop string, confidence over the live tokens."""
        tok = self.tokenizer
        live = [k for k, t in enumerate(new) if t != tok.pad_token_id]
        text = tok.decode(new, skip_special_tokens=True)
        for s in stop:
            text = text.split(s, 1)[0] if s in text else text
        conf = math.exp(sum(lps[k] for k in live) / len(live)) if live else None
        return Generation(text.strip(), prompt_tokens, len(live), latency_s, conf, [lps[k] for k in live])

    def sample(self, prompts: list[str], k: int, temperature: float, seed: int = 0, max_new_tokens: int = 16,
               batch_size: int = 16, stop: tuple[str, ...] = ("\n",), desc: str | None = None) -> list[list[Generation]]:
        """`k` answers per prompt sampled at `temperature` (softmax of logits / temperature, no top-k or top-p),
        in input order. Each prompt is prefilled once and its keys and values copied into k rows that `_decode`
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
        order = sorted(range(len(prompts)), key=lambda i: len(ids[i]))
        out: list[list[Generation]] = [[] for _ in prompts]
        bar = tqdm(total=len(prompts), desc=desc or "sample", unit="q", leave=False, disable=desc is None)
        for b in range(0, len(order), batch_size):
            idx = order[b : b + batch_size]
            uniforms = torch.stack([_uniforms(seed, j, prompts[i], max_new_tokens) for i in idx for j in range(k)])
            t0 = time.perf_counter()
            with torch.inference_mode():
                logits, cache, mask, pos = self._prefill([ids[i] for i in idx], max_new_tokens)
                cache.batch_repeat_interleave(k)
                # One dequantized copy of the 4-bit weights for all decoding steps: ~10% faster on CPU (108-116 vs
                # 120-131 s for 80 x 4 samples of SmolLM2-135M), same tokens. Not around `_prefill`, which makes its own.
                with self.dequantized_once():
                    rows = self._decode(logits.repeat_interleave(k, 0), cache, mask.repeat_interleave(k, 0),
                                        pos.repeat_interleave(k, 0), max_new_tokens, stop,
                                        temperature=temperature, uniforms=uniforms.to(logits.device))
            dt = time.perf_counter() - t0
            for n, i in enumerate(idx):
                out[i] = [self._generation(*rows[n * k + j], len(ids[i]), dt / (len(idx) * k), stop) for j in range(k)]
            bar.update(len(idx))
        bar.close()
        return out

    def _hf_generate(self, batch, max_new_tokens: int, stop: tuple[str, ...], min_new_tokens: int):
        """(new token ids, their log-probabilities) per row from `model.generate`."""
        import torch

        pad = self.tokenizer.pad_token_id
        res = self.model.generate(**batch, max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens,
                                  do_sample=False, num_beams=1, pad_token_id=pad,
                                  stopping_criteria=self._stop_criteria(stop), output_scores=True,
                                  return_dict_in_generate=True)
        new = res.sequences[:, batch["input_ids"].shape[1] :]
        lp = torch.stack([torch.log_softmax(sc.float(), -1).gather(1, new[:, k : k + 1]).squeeze(1)
                          for k, sc in enumerate(res.scores)], 1)
        rows = []
        for r in range(new.shape[0]):
            toks = new[r].tolist()
            # Rows that finished early are padded by generate; cut at the first stop or end token.
            end = next((k + 1 for k, t in enumerate(toks) if t in self._end_ids(stop)), len(toks))
            rows.append((toks[:end], lp[r, :end].tolist()))
        return rows

    def _end_ids(self, stop: tuple[str, ...]) -> set[int]:
        eos = self.model.generation_config.eos_token_id
        eos = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
        self._stop_criteria(stop)
        return set(eos) | set(getattr(self, "_stop_ids", []).tolist() if stop else [])

    # Prompts at least this long (mean over the batch) are prefilled one at a time: on CPU one 530-token
    # prompt already runs the matmuls at full speed, and a padded batch of 32 such prompts was 25% slower
    # per prompt (0.86 vs 0.67 s, SmolLM2-135M, 2 cores); shorter prompts gain from one batched forward.
    ROWWISE_PREFILL_TOKENS = 256
    MIN_SHARED_PREFIX = 8  # shorter common prefixes are recomputed rather than copied
    # A row-by-row prefill multiplies by one fp32 copy of each 4-bit weight, made once per batch, when all the
    # copies fit in this many bytes (430 MB for SmolLM2-135M); otherwise each forward dequantizes as usual.
    DEQUANT_ONCE_BYTES = 2 << 30

    def _prefill(self, rows: list[list[int]], max_new_tokens: int):
        """Run the prompts of one batch through the model. Returns (logits at each prompt's last position,
        KV cache, attention mask, each row's last position) for `_decode`, rows in input order.

        Long prompts (RAG contexts) are prefilled one at a time, without padding, in lexicographic order;
        each reuses the cached keys and values of the longest prefix it shares with the prompt before it
        (the chat template and instruction always; the same top-ranked passage often), which is exactly
        the attention state a full forward would compute. Their caches are then written left-padded into
        one batch cache with room for `max_new_tokens`. Short prompts, and models whose cache is not plain
        full attention in every layer (sliding windows), get one left-padded batched forward."""
        import torch

        if sum(map(len, rows)) < self.ROWWISE_PREFILL_TOKENS * len(rows) or not self._plain_cache():
            batch = self.tokenizer.pad({"input_ids": rows}, return_tensors="pt").to(self.device)
            mask = batch["attention_mask"]
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            out = self.model(input_ids=batch["input_ids"], attention_mask=mask, position_ids=pos, use_cache=True,
                             logits_to_keep=1)
            self.prefill_tokens += sum(map(len, rows))
            return out.logits[:, -1], out.past_key_values, mask, pos[:, -1:]
        from transformers import DynamicCache

        n, width = len(rows), max(map(len, rows))
        logits: list = [None] * n
        kv: list = [None] * n  # per row: [(keys, values) per layer], each [1, heads, len, dim]
        with self.dequantized_once() if n > 1 else contextlib.nullcontext():
            self._prefill_rows(rows, logits, kv)
        layers, growing = [], _growing_layer_class()
        for li in range(len(kv[0])):
            layers.append(growing([kv[i][li] for i in range(n)], width, max_new_tokens))
            for i in range(n):
                kv[i][li] = None  # free each row's copy as soon as it is in the batch cache
        mask = torch.zeros((n, width), dtype=torch.long, device=self.device)
        for i, r in enumerate(rows):
            mask[i, width - len(r):] = 1
        last = torch.tensor([[len(r) - 1] for r in rows], device=self.device)
        cache = DynamicCache()
        cache.layers = layers
        return torch.stack(logits), cache, mask, last

    def _prefill_rows(self, rows: list[list[int]], logits: list, kv: list) -> None:
        """Fill logits[i] and kv[i] for every prompt, one forward each, in lexicographic order so that a
        prompt's longest shared prefix is with its predecessor, whose keys and values it starts from."""
        import torch
        from transformers import DynamicCache

        prev = None
        for i in sorted(range(len(rows)), key=lambda i: rows[i]):
            r = rows[i]
            shared = 0 if prev is None else min(_common_prefix(rows[prev], r), len(r) - 1)
            if shared < self.MIN_SHARED_PREFIX:
                shared = 0
            cache = DynamicCache(ddp_cache_data=[(k[:, :, :shared], v[:, :, :shared]) for k, v in kv[prev]]) if shared \
                else DynamicCache()
            out = self.model(input_ids=torch.tensor([r[shared:]], device=self.device),
                             position_ids=torch.arange(shared, len(r), device=self.device)[None],
                             past_key_values=cache, use_cache=True, logits_to_keep=1)
            logits[i] = out.logits[0, -1]
            kv[i] = [(layer.keys, layer.values) for layer in out.past_key_values.layers]
            self.prefill_tokens += len(r) - shared
            prev = i

    @contextlib.contextmanager
    def dequantized_once(self) -> Iterator[None]:
        """Within the block every bitsandbytes 4-bit layer multiplies by one fp32 dequantized copy of its weight,
        made on entry: the tensor bitsandbytes rebuilds on every call, so outputs are bitwise identical and
        only the repeated dequantization goes. A no-op off CPU, without 4-bit layers, or when the copies
        would exceed DEQUANT_ONCE_BYTES."""
        import bitsandbytes as bnb
        import bitsandbytes.functional as bnbf
        import torch

        # isinstance, not the class name: peft's LoRA wrapper around a 4-bit layer is also called Linear4bit
        layers = [m for m in self.model.modules() if isinstance(m, bnb.nn.Linear4bit)] if self.device == "cpu" else []
        if not layers or sum(m.weight.quant_state.shape.numel() * 4 for m in layers) > self.DEQUANT_ONCE_BYTES:
            yield
            return

        for m in layers:
            w = bnbf.dequantize_4bit(m.weight.data, m.weight.quant_state).to(m.compute_dtype or torch.float32)
            m.forward = functools.partial(_linear_with, m, w)  # an instance attribute shadows the class's forward
        try:
            yield
        finally:
            for m in layers:
                del m.forward

    def _plain_cache(self) -> bool:
        """True when the model's KV cache is a plain growing tensor per layer (no sliding windows,
        no recurrent state): what `_prefill` may reuse, slice and pad."""
        if not hasattr(self, "_plain"):
            from transformers import DynamicCache
            from transformers.cache_utils import DynamicLayer

            try:
                layers = DynamicCache(config=self.model.config).layers
                self._plain = bool(layers) and all(type(layer) is DynamicLayer for layer in layers)
            except Exception:  # noqa: BLE001 - an unknown cache layout gets the padded batch
                self._plain = False
        return self._plain

    def _decode(self, logits, cache, attention_mask, pos, max_new_tokens: int, stop: tuple[str, ...],
                min_new_tokens: int = 0, temperature: float = 0.0, uniforms=None):
        """Greedy decoding of a prefilled, left-padded batch that evicts finished rows: after each step the
        rows that emitted an end-of-sequence or stop token leave the batch, the KV cache (`reorder_cache`),
        the mask and the positions; rows from the end of the batch move into their slots (`_fill_holes`),
        so the batch cache copies only the moved rows. Returns (new token ids, their log-probabilities) per row.

        With `uniforms` ([rows, max_new_tokens] numbers in [0, 1)) the token of row r at step s is sampled
        from softmax(logits / temperature) by inverse CDF with uniforms[r, s]; the log-probability recorded
        is still the model's own (temperature 1)."""
        import torch

        end = torch.tensor(sorted(self._end_ids(stop)), dtype=torch.long, device=attention_mask.device)
        n = attention_mask.shape[0]
        toks: list[list[int]] = [[] for _ in range(n)]
        lps: list[list[float]] = [[] for _ in range(n)]
        alive = torch.arange(n)
        eos = self.model.generation_config.eos_token_id
        eos = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
        for step in range(max_new_tokens):
            logits = logits.float()
            if step < min_new_tokens and eos:  # as transformers' MinNewTokensLengthLogitsProcessor
                logits[:, eos] = -float("inf")
            logp = torch.log_softmax(logits, -1)
            if uniforms is None:
                nxt = logp.argmax(-1)
            else:
                nxt = _inverse_cdf(torch.softmax(logits / temperature, -1), uniforms[alive.to(uniforms.device), step])
            chosen = logp.gather(1, nxt[:, None]).squeeze(1)
            for r, t, v in zip(alive.tolist(), nxt.tolist(), chosen.tolist()):
                toks[r].append(t)
                lps[r].append(v)
            if step + 1 == max_new_tokens:
                break
            done = torch.isin(nxt, end) if step + 1 >= min_new_tokens else torch.zeros_like(nxt, dtype=torch.bool)
            if bool(done.all()):
                break
            if bool(done.any()):
                keep = _fill_holes(~done)
                cache.reorder_cache(keep)
                alive, nxt, attention_mask, pos = alive[keep.cpu()], nxt[keep], attention_mask[keep], pos[keep]
            attention_mask = torch.cat([attention_mask, attention_mask.new_ones((len(nxt), 1))], 1)
            pos = pos[:, -1:] + 1
            logits = self.model(input_ids=nxt[:, None], attention_mask=attention_mask, position_ids=pos,
                                past_key_values=cache, use_cache=True).logits[:, -1]
        return list(zip(toks, lps))

    def _stop_criteria(self, stop: tuple[str, ...]):
        """A sequence is done once it emits a token whose text contains a stop string. The token set is
        computed once per LM (transformers' stop_strings rebuilds its tables on every generate call,
        about 2 s for a 49k vocabulary); text after the stop string is cut after decoding."""
        if not stop:
            return None
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        key = tuple(stop)
        if getattr(self, "_stop_key", None) != key:
            vocab = self.tokenizer.convert_ids_to_tokens(list(range(len(self.tokenizer))))
            ids = [i for i, t in enumerate(vocab) if t is not None and any(
                s in self.tokenizer.convert_tokens_to_string([t]) for s in stop)]
            self._stop_key, self._stop_ids = key, torch.tensor(ids, dtype=torch.long)
        stop_ids = self._stop_ids
        if len(stop_ids) == 0:  # the tokenizer cannot spell the stop string (WordPiece has no newline)
            return None

        class StopOnTokens(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                return torch.isin(input_ids[:, -1], stop_ids.to(input_ids.device))

        return StoppingCriteriaList([StopOnTokens()])

    # ---------------------------------------------------------------- scoring
    def loglikelihood(self, requests: list[tuple[str, str]], batch_size: int = 16, desc: str | None = None) -> list[float]:
        """Sum of log-probabilities of each continuation given its context (the lm-evaluation-harness
        method: trailing whitespace of the context moves to the continuation)."""
        return self._score_tail(loglikelihood_rows(self.encode, requests), batch_size, desc)

    def perplexity(self, texts: list[str], max_tokens: int = 256, batch_size: int = 8,
                   desc: str | None = None) -> list[float]:
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

    def _tail_logprobs(self, rows: list[tuple[list[int], int]], batch_size: int,
                       desc: str | None) -> tuple[list[float], list[list[float]]]:
        """(sum, per-token list) of the log-probabilities of the last n tokens of each (ids, n) row. Batches
        are length-sorted and right-padded; the vocabulary projection runs only from the first scored position
        on (`logits_to_keep`), which skips most of the prompt's (49k-wide) logits."""
        import torch

        tok = self.tokenizer
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i][0]))
        out = [0.0] * len(rows)
        per_token: list[list[float]] = [[] for _ in rows]
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        for b in tqdm(range(0, len(order), batch_size), desc=desc or "score", leave=False, disable=desc is None):
            idx = [i for i in order[b : b + batch_size] if rows[i][1] > 0]
            if not idx:
                continue
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
            for r, i in enumerate(idx):
                seq, n = rows[i]
                pos = torch.arange(len(seq) - n, len(seq))
                lp = torch.log_softmax(logits[r, pos - 1 - first].float(), dim=-1).cpu()
                chosen = lp[torch.arange(n), torch.tensor(seq[len(seq) - n :])]
                out[i] = float(chosen.sum())
                per_token[i] = chosen.tolist()
        return out, per_token

    def _forward_tail(self, inp, att, keep: int):
        """Logits of the last `keep` positions; models without `logits_to_keep` return all of them."""
        if getattr(self, "_keep_ok", True):
            try:
                return self.model(input_ids=inp, attention_mask=att, logits_to_keep=keep).logits
            except TypeError:
                self._keep_ok = False
        return self.model(input_ids=inp, attention_mask=att).logits[:, -keep:]


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


@functools.cache
def _growing_layer_class():
    """A DynamicLayer that writes new keys and values into preallocated room instead of concatenating:
    transformers' DynamicLayer copies the whole cache on every decoding step (about 0.8 GB per step for 32
    RAG prompts of SmolLM2-135M). Defined on first use: transformers is imported lazily."""
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):
        def __init__(self, rows, width: int, room: int):
            """rows: one (keys, values) pair per batch row, each [1, heads, len, dim]; left-padded to `width`."""
            super().__init__()
            k0 = rows[0][0]
            shape = (len(rows), k0.shape[1], width + room, k0.shape[3])
            self._k, self._v = k0.new_zeros(shape), k0.new_zeros(shape)
            for i, (k, v) in enumerate(rows):
                self._k[i, :, width - k.shape[2] : width] = k[0]
                self._v[i, :, width - v.shape[2] : width] = v[0]
            self._rows, self._len = len(rows), width
            self.dtype, self.device, self.is_initialized = k0.dtype, k0.device, True
            self._views()

        def _views(self) -> None:
            self.keys = self._k[: self._rows, :, : self._len]
            self.values = self._v[: self._rows, :, : self._len]

        def update(self, key_states, value_states, *args, **kwargs):
            t = key_states.shape[-2]  # `_decode` adds one position per step, at most `room` in all
            self._k[: self._rows, :, self._len : self._len + t] = key_states
            self._v[: self._rows, :, self._len : self._len + t] = value_states
            self._len += t
            self._views()
            return self.keys, self.values

        def reorder_cache(self, beam_idx) -> None:
            """Row i becomes old row beam_idx[i]. Only rows whose index changes are copied (the right side of
            the assignment is gathered first, so any index list is safe); after `_fill_holes` those are
            the few rows that moved into finished rows' slots, where index_select would copy the whole
            cache (0.7 s of a 7 s decode for 32 RAG prompts)."""
            import torch

            idx = beam_idx.to(self._k.device)
            moved = (idx != torch.arange(len(idx), device=idx.device)).nonzero().squeeze(1)
            if len(moved):
                self._k[moved] = self._k[idx[moved]]
                self._v[moved] = self._v[idx[moved]]
            self._rows = len(idx)
            self._views()

        def batch_select_indices(self, indices) -> None:
            self.reorder_cache(indices)

        def batch_repeat_interleave(self, repeats: int) -> None:
            """Each row becomes `repeats` consecutive rows (k samples of one prefilled prompt), room included."""
            self._k = self._k[: self._rows].repeat_interleave(repeats, 0)
            self._v = self._v[: self._rows].repeat_interleave(repeats, 0)
            self._rows *= repeats
            self._views()

    return GrowingLayer


def _linear_with(module, weight, x):
    """A bitsandbytes Linear4bit's forward with its weight already dequantized (compute dtype in, input dtype out)."""
    import torch

    bias = None if module.bias is None else module.bias.to(weight.dtype)
    return torch.nn.functional.linear(x.to(weight.dtype), weight, bias).to(x.dtype)


def _fill_holes(keep):
    """Row indices for the batch after eviction, given a bool mask of the rows that stay: kept rows in
    the first `keep.sum()` slots stay where they are, and the kept rows beyond fill the freed slots.

    >>> import torch; _fill_holes(torch.tensor([True, False, True, False, True, True])).tolist()
    [0, 4, 2, 5]
    """
    import torch

    n = int(keep.sum())
    idx = torch.arange(n, device=keep.device)
    idx[(~keep[:n]).nonzero().squeeze(1)] = keep[n:].nonzero().squeeze(1) + n
    return idx


def _uniforms(seed: int, j: int, prompt: str, n: int):
    """n numbers in [0, 1) from a generator of its own for sample j of `prompt` (seeded by a hash of all three)."""
    import hashlib

    import torch

    key = hashlib.sha256(f"{seed}|{j}|{prompt}".encode()).digest()
    return torch.rand(n, generator=torch.Generator().manual_seed(int.from_bytes(key[:8], "little") >> 1))


def _inverse_cdf(probs, u):
    """For each row, the first token whose cumulative probability exceeds u * the row's total (so a token of
    probability 0, such as an end token masked by min_new_tokens, is never drawn).

    >>> import torch; _inverse_cdf(torch.tensor([[0.0, 0.5, 0.5], [0.2, 0.0, 0.8]]), torch.tensor([0.0, 0.3])).tolist()
    [1, 2]
    """
    import torch

    cdf = probs.cumsum(-1)
    nxt = torch.searchsorted(cdf, (u.to(cdf.dtype)[:, None] * cdf[:, -1:]).contiguous(), right=True).squeeze(1)
    return nxt.clamp_(max=probs.shape[-1] - 1)


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n
