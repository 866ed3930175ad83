"""A loaded causal LM with the two operations evaluation needs: batched greedy generation and
log-likelihood of continuations (multiple-choice probes), plus switching a LoRA adapter on/off.

    lm = LM.load("smollm2-135m-instruct", quantization="nf4", adapter="runs/x/adapter")
    with lm.adapter(False):          # the base arms reuse the same weights with the adapter off
        outs = lm.generate([prompt], max_new_tokens=32)
"""

from __future__ import annotations

import contextlib
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


class LM:
    def __init__(self, model, tokenizer, spec: str, device: str):
        self.model = model
        self.tokenizer = tokenizer
        self.spec = spec
        self.device = device
        # A chat template renders its own special tokens; plain prompts need the tokenizer's BOS.
        self.has_chat_template = bool(getattr(tokenizer, "chat_template", None))
        self._adapter_on = True

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
    ) -> list[Generation]:
        """Greedy answers for rendered prompts, in input order; batches are length-sorted, left-padded."""
        import torch

        tok = self.tokenizer
        tok.padding_side = "left"
        ids = [self.encode(p) for p in prompts]
        stopping = self._stop_criteria(stop)
        order = sorted(range(len(prompts)), key=lambda i: len(ids[i]))
        out: list[Generation | None] = [None] * len(prompts)
        bar = tqdm(total=len(prompts), desc=desc or "generate", unit="q", leave=False, disable=desc is None)
        for b in range(0, len(order), batch_size):
            idx = order[b : b + batch_size]
            batch = tok.pad({"input_ids": [ids[i] for i in idx]}, return_tensors="pt").to(self.device)
            t0 = time.perf_counter()
            with torch.inference_mode():
                gen = self.model.generate(
                    **batch,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    num_beams=1,
                    pad_token_id=tok.pad_token_id,
                    stopping_criteria=stopping,
                )
            dt = time.perf_counter() - t0
            new = gen[:, batch["input_ids"].shape[1] :]
            for row, i in enumerate(idx):
                n_new = int((new[row] != tok.pad_token_id).sum())
                text = tok.decode(new[row], skip_special_tokens=True)
                for s in stop:
                    text = text.split(s, 1)[0] if s in text else text
                out[i] = Generation(text.strip(), len(ids[i]), n_new, dt / len(idx))
            bar.update(len(idx))
        bar.close()
        return out  # type: ignore[return-value]

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
        method: a trailing space of the context moves to the continuation)."""
        import torch

        tok = self.tokenizer
        rows: list[tuple[list[int], int]] = []  # (full ids, number of continuation tokens)
        for ctx, cont in requests:
            n_sp = len(ctx) - len(ctx.rstrip(" "))
            if n_sp:
                ctx, cont = ctx[:-n_sp], ctx[-n_sp:] + cont
            whole = self.encode(ctx + cont)
            ctx_ids = self.encode(ctx)
            n_cont = max(1, len(whole) - len(ctx_ids))
            rows.append((whole, n_cont))
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i][0]))
        out = [0.0] * len(rows)
        pad = tok.pad_token_id
        for b in tqdm(range(0, len(order), batch_size), desc=desc or "score", leave=False, disable=desc is None):
            idx = order[b : b + batch_size]
            width = max(len(rows[i][0]) for i in idx)
            inp = torch.full((len(idx), width), pad, dtype=torch.long)
            att = torch.zeros((len(idx), width), dtype=torch.long)
            for r, i in enumerate(idx):
                seq = rows[i][0]
                inp[r, : len(seq)] = torch.tensor(seq)
                att[r, : len(seq)] = 1
            with torch.inference_mode():
                logits = self.model(input_ids=inp.to(self.device), attention_mask=att.to(self.device)).logits
            logp = torch.log_softmax(logits.float(), dim=-1).cpu()
            for r, i in enumerate(idx):
                seq, n_cont = rows[i]
                pos = torch.arange(len(seq) - n_cont, len(seq))
                target = torch.tensor(seq[len(seq) - n_cont :])
                out[i] = float(logp[r, pos - 1, target].sum())
        return out
