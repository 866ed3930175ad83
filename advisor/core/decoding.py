"""The decoding engine behind advisor.core.lm.LM: prefill (long prompts one at a time, sharing the keys and values
of common prefixes), greedy or seeded-sampling decoding that evicts finished rows from the batch and its KV cache,
the reference path through `model.generate`, stop strings, and one dequantized copy of 4-bit weights while
decoding. Each function takes the LM (its model, tokenizer and device, and the tuning constants below, which a
test or a benchmark may set on one LM) and leaves the batching, the Generation records and the scoring to it.

    logits, cache, mask, pos = prefill(lm, rows, max_new_tokens)
    rows = decode(lm, logits, cache, mask, pos, max_new_tokens, stop)      # [(new token ids, log-probs)]
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator


def hf_generate(lm, batch, max_new_tokens: int, stop: tuple[str, ...], min_new_tokens: int):
    """(new token ids, their log-probabilities) per row from `model.generate`."""
    import torch

    pad = lm.tokenizer.pad_token_id
    res = lm.model.generate(
        **batch,
        max_new_tokens=max_new_tokens,
        min_new_tokens=min_new_tokens,
        do_sample=False,
        num_beams=1,
        pad_token_id=pad,
        stopping_criteria=stop_criteria(lm, stop),
        output_scores=True,
        return_dict_in_generate=True,
    )
    new = res.sequences[:, batch["input_ids"].shape[1] :]
    lp = torch.stack(
        [torch.log_softmax(sc.float(), -1).gather(1, new[:, k : k + 1]).squeeze(1) for k, sc in enumerate(res.scores)],
        1,
    )
    rows = []
    for r in range(new.shape[0]):
        toks = new[r].tolist()
        # Rows that finished early are padded by generate; cut at the first stop or end token.
        end = next((k + 1 for k, t in enumerate(toks) if t in end_ids(lm, stop)), len(toks))
        rows.append((toks[:end], lp[r, :end].tolist()))
    return rows


def end_ids(lm, stop: tuple[str, ...]) -> set[int]:
    eos = lm.model.generation_config.eos_token_id
    eos = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
    stop_criteria(lm, stop)
    return set(eos) | set(getattr(lm, "_stop_ids", []).tolist() if stop else [])


# Prompts at least this long (mean over the batch) are prefilled one at a time: on CPU one 530-token
# prompt already runs the matmuls at full speed, and a padded batch of 32 such prompts was 25% slower
# per prompt (0.86 vs 0.67 s, SmolLM2-135M, 2 cores); shorter prompts gain from one batched forward.
ROWWISE_PREFILL_TOKENS = 256
MIN_SHARED_PREFIX = 8  # shorter common prefixes are recomputed rather than copied
# LM.generate and LM.sample (prefill and every decoding step) multiply by one dequantized copy of each 4-bit weight,
# made once per call, when all the copies fit in this many bytes (430 MB for SmolLM2-135M in float32, half in
# bfloat16); else each forward dequantizes.
DEQUANT_ONCE_BYTES = 2 << 30


def batch_order(lm, rows: list[list[int]]) -> list[int]:
    """The order in which `prefill` batches take the prompts: by length, so that a batched forward pads little;
    when the prompts are long enough to be prefilled one at a time, in lexicographic order instead, so that prompts
    that begin alike (the same top-ranked passage) fall into one batch and share their keys and values (the
    quickstart's retrieval arms: 44,266 of 53,556 prompt tokens run in batches of 48 by length, 42,184 so)."""
    by_length = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    if not rows or sum(map(len, rows)) < lm.ROWWISE_PREFILL_TOKENS * len(rows) or not plain_cache(lm):
        return by_length
    return sorted(range(len(rows)), key=lambda i: rows[i])


def prefill(lm, rows: list[list[int]], max_new_tokens: int):
    """Run the prompts of one batch through the model. Returns (logits at each prompt's last position,
    KV cache, attention mask, each row's last position) for `decode`, rows in input order.

    Long prompts (RAG contexts) are prefilled one at a time, without padding, in lexicographic order;
    each reuses the cached keys and values of the longest prefix it shares with the prompt before it
    (the chat template and instruction always; the same top-ranked passage often), which is exactly
    the attention state a full forward would compute. Each prompt's keys and values go left-padded into
    one batch cache with room for `max_new_tokens` as soon as its forward returns. Short prompts, and
    models whose cache is not plain full attention in every layer (sliding windows), get one left-padded
    batched forward; short prompts that begin with the same tokens (a chat template and its instruction) run
    those once (`prefill_after_head`)."""
    import torch

    if sum(map(len, rows)) < lm.ROWWISE_PREFILL_TOKENS * len(rows) or not plain_cache(lm):
        head = min(min(common_prefix(rows[0], r) for r in rows), min(map(len, rows)) - 1)
        if len(rows) > 1 and head >= lm.MIN_SHARED_PREFIX and plain_cache(lm):
            return prefill_after_head(lm, rows, head)
        batch = lm.tokenizer.pad({"input_ids": rows}, return_tensors="pt").to(lm.device)
        mask = batch["attention_mask"]
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        out = lm.model(
            input_ids=batch["input_ids"], attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1
        )
        lm.prefill_tokens += sum(map(len, rows))
        return out.logits[:, -1], out.past_key_values, mask, pos[:, -1:]
    from transformers import DynamicCache

    n, width = len(rows), max(map(len, rows))
    logits: list = [None] * n
    layers = prefill_rows(lm, rows, width, max_new_tokens, logits)  # inside LM.generate's dequantized_once
    mask = torch.zeros((n, width), dtype=torch.long, device=lm.device)
    for i, r in enumerate(rows):
        mask[i, width - len(r) :] = 1
    last = torch.tensor([[len(r) - 1] for r in rows], device=lm.device)
    cache = DynamicCache()
    cache.layers = layers
    return torch.stack(logits), cache, mask, last


def prefill_after_head(lm, rows: list[list[int]], head: int):
    """`prefill` for a batch of short prompts whose first `head` tokens are the same (the chat template and the
    instruction of closed-book prompts: 33 of SmolLM2's ~58 tokens): one forward over those tokens, its keys and
    values copied into every row, then one forward over the rest of each prompt, left-padded between the two
    parts (the mask hides the padding; positions continue from `head`). The same attention state as the batched
    forward over whole prompts, without running the common tokens once per row."""
    import torch

    n, dev = len(rows), lm.device
    first = lm.model(input_ids=torch.tensor([rows[0][:head]], device=dev), use_cache=True, logits_to_keep=1)
    cache = first.past_key_values
    cache.batch_repeat_interleave(n)
    width = max(len(r) for r in rows) - head
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0
    ids = torch.full((n, width), pad, dtype=torch.long)
    rest = torch.zeros((n, width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r) + head :] = torch.tensor(r[head:])
        rest[i, width - len(r) + head :] = 1
    mask = torch.cat([torch.ones((n, head), dtype=torch.long), rest], 1).to(dev)
    pos = (head + rest.cumsum(-1) - 1).clamp(min=head).to(dev)
    out = lm.model(
        input_ids=ids.to(dev),
        attention_mask=mask,
        position_ids=pos,
        past_key_values=cache,
        use_cache=True,
        logits_to_keep=1,
    )
    lm.prefill_tokens += head + sum(len(r) - head for r in rows)
    return out.logits[:, -1], out.past_key_values, mask, pos[:, -1:]


def prefill_rows(lm, rows: list[list[int]], width: int, room: int, logits: list) -> list:
    """Fill logits[i] for every prompt and return the batch cache's layers (`growing_layer_class`), one forward
    per prompt, in lexicographic order so that a prompt's longest shared prefix is with its predecessor, whose
    keys and values it starts from. Each prompt's keys and values are written left-padded into the batch cache
    as soon as its forward returns, so one prompt's own cache is alive at a time, not the whole batch's twice
    (docs/evaluation-results.md, 'Keys and values straight into the batch cache')."""
    import torch
    from transformers import DynamicCache

    layers, prev, growing = None, None, growing_layer_class()
    for i in sorted(range(len(rows)), key=lambda i: rows[i]):
        r = rows[i]
        shared = 0 if prev is None else min(common_prefix(rows[prev], r), len(r) - 1)
        if shared < lm.MIN_SHARED_PREFIX:
            shared = 0
        start = width - len(rows[prev]) if shared else 0
        cache = (
            DynamicCache(ddp_cache_data=[layer.row(prev, start, start + shared) for layer in layers])
            if shared
            else DynamicCache()
        )
        out = lm.model(
            input_ids=torch.tensor([r[shared:]], device=lm.device),
            position_ids=torch.arange(shared, len(r), device=lm.device)[None],
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        logits[i] = out.logits[0, -1]
        kv = [(layer.keys, layer.values) for layer in out.past_key_values.layers]
        if layers is None:
            layers = [growing(k, len(rows), width, room) for k, _ in kv]
        for layer, (k, v) in zip(layers, kv):
            layer.put(i, k, v)
        del out, cache, kv, k, v  # this prompt's own cache (k, v: the loop's last pair)
        lm.prefill_tokens += len(r) - shared
        prev = i
    return layers


@contextlib.contextmanager
def dequantized_once(lm) -> Iterator[None]:
    """Within the block every bitsandbytes 4-bit layer multiplies by one dequantized copy of its weight, made on
    entry. In float32 it is the tensor bitsandbytes rebuilds on every call, so outputs are bitwise identical and
    only the repeated dequantization goes (with a LoRA adapter on, equal up to rounding: see below); in bfloat16
    (lm.matmul_dtype, model.cpu_matmul_dtype) those products are rounded to bfloat16. A block inside another
    uses the outer block's copies. A no-op off CPU, without 4-bit layers, or when the copies would exceed
    DEQUANT_ONCE_BYTES. When the block starts with a LoRA adapter on, its weights are added into the copies
    (`merge_lora_into_copies`)."""
    layers = dequantize_4bit_layers(lm.model, lm.device, lm.DEQUANT_ONCE_BYTES, lm.matmul_dtype)
    merged = merge_lora_into_copies(lm.model, layers)
    try:
        yield
    finally:
        for m in merged + layers:
            del m.forward


def merge_lora_into_copies(model, layers: list) -> list:
    """Add each LoRA layer's update (scaling x B @ A) into the fp32 copy of its 4-bit base weight that
    `dequantize_4bit_layers` just made for `layers`, and make the LoRA layer multiply by that copy alone: one
    matrix product per layer instead of the base's, A's, B's and a copy of the result (the quickstart's tuned
    + RAG prompts prefilled 7-20% slower with the adapter on than off, unmerged). Returns the LoRA layers changed
    (`del layer.forward` undoes it; the copies go with the block). Only adapters in evaluation mode, plain
    LoRA (no DoRA or other variant), whose adapter is on now; a layer switched off inside the block raises
    (its copy carries the adapter)."""
    if not layers:
        return []
    import torch

    try:
        from peft.tuners.lora import LoraLayer
    except ImportError:
        return []
    copies = {id(m): m.forward.args[1] for m in layers}  # functools.partial(linear_with, m, w)
    out = []
    for mod in model.modules():
        if not isinstance(mod, LoraLayer) or mod.training or mod.disable_adapters or mod.merged:
            continue
        base, active = mod.get_base_layer(), [a for a in mod.active_adapters if a in mod.lora_A]
        w = copies.get(id(base))
        variant = any(a in mod.lora_variant for a in active) or getattr(mod, "fan_in_fan_out", False)
        # a bfloat16 copy would round the update coarsely (8 significant bits: steps of up to 1/128 of each weight):
        # those layers run their LoRA product in float32 beside the copy's, unmerged
        if w is None or not active or variant or w.dtype != torch.float32:
            continue
        with torch.no_grad():
            for a in active:
                w += (mod.lora_B[a].weight @ mod.lora_A[a].weight).to(w.dtype) * mod.scaling[a]
        mod.forward = functools.partial(merged_forward, mod, base, w)
        out.append(mod)
    return out


def merged_forward(lora, base, weight, x, *args, **kwargs):
    """A LoRA layer's forward whose update is already in its base layer's dequantized copy."""
    if lora.disable_adapters:
        raise RuntimeError("a LoRA adapter was switched off inside a block whose weights carry it (dequantized_once)")
    return linear_with(base, weight, x)


def dequantize_4bit_layers(model, device: str, max_bytes: int, dtype: str = "float32") -> list:
    """Make every bitsandbytes 4-bit layer of `model` multiply by one dequantized copy of its weight in `dtype`
    (float32, or bfloat16: model.cpu_matmul_dtype), made now (an instance `forward`; `del layer.forward` undoes
    it), and return the layers changed: none off CPU, without 4-bit layers, when the copies would exceed
    max_bytes, or when the layers already have copies (made by an outer caller, whose copies stand). The tune
    stage keeps them for the whole training (tuning.dequantize_once): the weights are frozen, and the float32 copy
    is the tensor bitsandbytes would rebuild in each forward and again in each backward. A bfloat16 copy takes
    half the memory and rounds the layer's input and output to bfloat16 (`linear_with`); nothing else changes
    dtype."""
    import bitsandbytes as bnb
    import bitsandbytes.functional as bnbf
    import torch

    # isinstance, not the class name: peft's LoRA wrapper around a 4-bit layer is also called Linear4bit
    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)] if device == "cpu" else []
    tdtype = getattr(torch, dtype)
    size = torch.tensor([], dtype=tdtype).element_size()
    too_big = layers and sum(m.weight.quant_state.shape.numel() * size for m in layers) > max_bytes
    if not layers or too_big or dequantized_copies(model):  # copies made by an outer caller stand
        return []
    for m in layers:
        w = bnbf.dequantize_4bit(m.weight.data, m.weight.quant_state).to(tdtype)
        m.forward = functools.partial(linear_with, m, w)  # an instance attribute shadows the class's forward
    return layers


def dequantized_copies(model) -> bool:
    """Whether the model's 4-bit layers already multiply by dequantized copies (`dequantize_4bit_layers`)."""
    try:
        import bitsandbytes as bnb
    except ImportError:
        return False
    return any("forward" in vars(m) for m in model.modules() if isinstance(m, bnb.nn.Linear4bit))


def copies_dtype(model) -> str | None:
    """The dtype of the model's dequantized copies ('float32' or 'bfloat16'), None without them."""
    try:
        import bitsandbytes as bnb
    except ImportError:
        return None

    for m in model.modules():
        if isinstance(m, bnb.nn.Linear4bit) and "forward" in vars(m):
            return str(m.forward.args[1].dtype).removeprefix("torch.")
    return None


def plain_cache(lm) -> bool:
    """True when the model's KV cache is a plain growing tensor per layer (no sliding windows,
    no recurrent state): what `prefill` may reuse, slice and pad."""
    if not hasattr(lm, "_plain"):
        lm._plain = plain_cache_layout(lm.model.config)
    return lm._plain


def plain_cache_layout(config) -> bool:
    """Whether a model of this config caches plain growing keys and values in every layer (`plain_cache`)."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    try:
        layers = DynamicCache(config=config).layers
        return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)
    except Exception:  # noqa: BLE001 - an unknown cache layout is not plain
        return False


def decode(
    lm,
    logits,
    cache,
    attention_mask,
    pos,
    max_new_tokens: int,
    stop: tuple[str, ...],
    min_new_tokens: int = 0,
    temperature: float = 0.0,
    uniforms=None,
):
    """Greedy decoding of a prefilled, left-padded batch that evicts finished rows: after each step the
    rows that emitted an end-of-sequence or stop token leave the batch, the KV cache (`reorder_cache`),
    the mask and the positions; rows from the end of the batch move into their slots (`fill_holes`),
    so the batch cache copies only the moved rows. Returns (new token ids, their log-probabilities) per row.

    With `uniforms` ([rows, max_new_tokens] numbers in [0, 1)) the token of row r at step s is sampled
    from softmax(logits / temperature) by inverse CDF with uniforms[r, s]; the log-probability recorded
    is still the model's own (temperature 1)."""
    import torch

    end = torch.tensor(sorted(end_ids(lm, stop)), dtype=torch.long, device=attention_mask.device)
    n = attention_mask.shape[0]
    toks: list[list[int]] = [[] for _ in range(n)]
    lps: list[list[float]] = [[] for _ in range(n)]
    alive = torch.arange(n)
    eos = lm.model.generation_config.eos_token_id
    eos = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
    for step in range(max_new_tokens):
        logits = logits.float()
        if step < min_new_tokens and eos:  # as transformers' MinNewTokensLengthLogitsProcessor
            logits[:, eos] = -float("inf")
        logp = torch.log_softmax(logits, -1)
        if uniforms is None:
            nxt = logp.argmax(-1)
        else:
            nxt = inverse_cdf(torch.softmax(logits / temperature, -1), uniforms[alive.to(uniforms.device), step])
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
            keep = fill_holes(~done)
            cache.reorder_cache(keep)
            alive, nxt, attention_mask, pos = alive[keep.cpu()], nxt[keep], attention_mask[keep], pos[keep]
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones((len(nxt), 1))], 1)
        pos = pos[:, -1:] + 1
        logits = lm.model(
            input_ids=nxt[:, None],
            attention_mask=attention_mask,
            position_ids=pos,
            past_key_values=cache,
            use_cache=True,
        ).logits[:, -1]
    return list(zip(toks, lps))


def stop_criteria(lm, stop: tuple[str, ...]):
    """A sequence is done once it emits a token whose text contains a stop string. The token set is
    computed once per LM (transformers' stop_strings rebuilds its tables on every generate call,
    about 2 s for a 49k vocabulary); text after the stop string is cut after decoding."""
    if not stop:
        return None
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    key = tuple(stop)
    if getattr(lm, "_stop_key", None) != key:
        vocab = lm.tokenizer.convert_ids_to_tokens(list(range(len(lm.tokenizer))))
        ids = [
            i
            for i, t in enumerate(vocab)
            if t is not None and any(s in lm.tokenizer.convert_tokens_to_string([t]) for s in stop)
        ]
        lm._stop_key, lm._stop_ids = key, torch.tensor(ids, dtype=torch.long)
    stop_ids = lm._stop_ids
    if len(stop_ids) == 0:  # the tokenizer cannot spell the stop string (WordPiece has no newline)
        return None

    class StopOnTokens(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return torch.isin(input_ids[:, -1], stop_ids.to(input_ids.device))

    return StoppingCriteriaList([StopOnTokens()])


@functools.cache
def growing_layer_class():
    """A DynamicLayer that writes new keys and values into preallocated room instead of concatenating:
    transformers' DynamicLayer copies the whole cache on every decoding step (about 0.8 GB per step for 32
    RAG prompts of SmolLM2-135M). Defined on first use: transformers is imported lazily."""
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):
        def __init__(self, like, rows: int, width: int, room: int):
            """Room for `rows` prompts left-padded to `width` plus `room` new positions, zero-filled; `put` writes
            a prompt's keys and values. like: a [1, heads, len, dim] tensor (the heads, dim, dtype and device)."""
            super().__init__()
            shape = (rows, like.shape[1], width + room, like.shape[3])
            self._k, self._v = like.new_zeros(shape), like.new_zeros(shape)
            self._rows, self._len = rows, width
            self.dtype, self.device, self.is_initialized = like.dtype, like.device, True
            self._views()

        def put(self, i: int, k, v) -> None:
            """Row i's prompt keys and values ([1, heads, len, dim]), right-aligned at the prompt width."""
            self._k[i, :, self._len - k.shape[2] : self._len] = k[0]
            self._v[i, :, self._len - v.shape[2] : self._len] = v[0]

        def row(self, i: int, start: int, stop: int):
            """Views of row i's keys and values at positions [start, stop), each [1, heads, stop - start, dim]."""
            return self._k[i : i + 1, :, start:stop], self._v[i : i + 1, :, start:stop]

        def _views(self) -> None:
            self.keys = self._k[: self._rows, :, : self._len]
            self.values = self._v[: self._rows, :, : self._len]

        def update(self, key_states, value_states, *args, **kwargs):
            t = key_states.shape[-2]  # `decode` adds one position per step, at most `room` in all
            self._k[: self._rows, :, self._len : self._len + t] = key_states
            self._v[: self._rows, :, self._len : self._len + t] = value_states
            self._len += t
            self._views()
            return self.keys, self.values

        def reorder_cache(self, beam_idx) -> None:
            """Row i becomes old row beam_idx[i]. Only rows whose index changes are copied (the right side of
            the assignment is gathered first, so any index list is safe); after `fill_holes` those are
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


def linear_with(module, weight, x):
    """A bitsandbytes Linear4bit's forward with its weight already dequantized (compute dtype in, input dtype out)."""
    import torch

    bias = None if module.bias is None else module.bias.to(weight.dtype)
    return torch.nn.functional.linear(x.to(weight.dtype), weight, bias).to(x.dtype)


def fill_holes(keep):
    """Row indices for the batch after eviction, given a bool mask of the rows that stay: kept rows in
    the first `keep.sum()` slots stay where they are, and the kept rows beyond fill the freed slots.

    >>> import torch; fill_holes(torch.tensor([True, False, True, False, True, True])).tolist()
    [0, 4, 2, 5]
    """
    import torch

    n = int(keep.sum())
    idx = torch.arange(n, device=keep.device)
    idx[(~keep[:n]).nonzero().squeeze(1)] = keep[n:].nonzero().squeeze(1) + n
    return idx


def sample_uniforms(seed: int, j: int, prompt: str, n: int):
    """n numbers in [0, 1) from a generator of its own for sample j of `prompt` (seeded by a hash of all three)."""
    import hashlib

    import torch

    key = hashlib.sha256(f"{seed}|{j}|{prompt}".encode()).digest()
    return torch.rand(n, generator=torch.Generator().manual_seed(int.from_bytes(key[:8], "little") >> 1))


def inverse_cdf(probs, u):
    """For each row, the first token whose cumulative probability exceeds u * the row's total (so a token of
    probability 0, such as an end token masked by min_new_tokens, is never drawn).

    >>> import torch; inverse_cdf(torch.tensor([[0.0, 0.5, 0.5], [0.2, 0.0, 0.8]]), torch.tensor([0.0, 0.3])).tolist()
    [1, 2]
    """
    import torch

    cdf = probs.cumsum(-1)
    nxt = torch.searchsorted(cdf, (u.to(cdf.dtype)[:, None] * cdf[:, -1:]).contiguous(), right=True).squeeze(1)
    return nxt.clamp_(max=probs.shape[-1] - 1)


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n
