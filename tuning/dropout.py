"""LoRA dropout whose keep mask costs a quarter of the random draws: `tuning.lora.fast_dropout` (on a CPU by default).

PEFT puts an `nn.Dropout` on the input of every LoRA layer (210 of them in SmolLM2-135M with all-linear
targets), and on a CPU `torch.nn.functional.dropout` draws one 32-bit Mersenne Twister number per element, on one
thread: 3.1 ms for a 594 x 576 input, 7.9 ms for 594 x 1,536, which made dropout 15-20% of the quickstart's tune
stage (its passes at 104 tokens/s with dropout 0.05, 122 with none; docs/fine-tuning-measured.md, 'LoRA dropout on
a CPU'). Here one 64-bit draw gives four 16-bit lanes, one per element, and an element is kept when its lane is at
or above the drop threshold: the same inverted dropout (kept elements scaled by 1 / (1 - p), the rest zero, each
element independently), with p rounded to a multiple of 1/65,536 (0.05 -> 0.049988). The same seed gives the same
masks; they are not the masks `nn.Dropout` would draw, so the trained weights differ from those of PEFT's own
dropout as two seeds' do. Only the boolean mask is kept for the backward pass, as `nn.Dropout` keeps it.

One dropped copy per input tensor (`tuning.lora.shared_dropout`, on by default): the q, k and v projections of a
block read one tensor, gate and up another, and PEFT gives each of their LoRA layers its own mask and its own
dropped copy, which each keeps for its backward pass (5 of a block's 7 LoRA inputs are such repeats). With the
setting the LoRA layers of a model share one `LastInput`: a layer called with the tensor the previous one was
called with (the same object, unmodified) reuses its dropped copy. Each element of an input is still dropped with
probability p, independently of the other elements; the LoRA layers reading the same input now see the same mask.

    replace_lora_dropout(peft_model, shared=True)      # -> how many nn.Dropout modules were replaced
"""

from __future__ import annotations

import weakref

import torch

LANES = 1 << 16  # a 16-bit lane takes this many values


def keep_threshold(p: float) -> int:
    """The smallest signed 16-bit lane value that keeps an element: a share round(p * 65536) / 65536 is dropped."""
    return -(LANES // 2) + round(p * LANES)


def keep_mask(shape: torch.Size, p: float, device=None) -> torch.Tensor:
    """A boolean mask of `shape`, each element True with probability 1 - p (p to 1/65,536), from the default
    generator of `device`: four elements per 64-bit draw."""
    n = 1
    for s in shape:
        n *= s
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_(torch.iinfo(torch.int64).min, None)
    return words.view(torch.int16)[:n].view(shape) >= keep_threshold(p)


class _MaskedScale(torch.autograd.Function):
    """x * mask * scale, keeping only the boolean mask for the backward pass. `torch.where` then an in-place
    scale: on a CPU (594 x 1,536, 2 threads) 0.5 ms, where multiplying by the boolean mask (a conversion to float
    first) took 3.4 ms and torch's fused dropout backward 3.1 ms."""

    @staticmethod
    def forward(ctx, x, mask, scale: float):
        ctx.save_for_backward(mask)
        ctx.scale = scale
        return torch.where(mask, x, 0).mul_(scale)

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return torch.where(mask, grad, 0).mul_(ctx.scale), None, None


class LastInput:
    """The dropped copy of the last input a group of FastDropout modules saw: a weak reference to the input (and
    its version counter, bumped by in-place changes), the copy held until the input is freed or another comes."""

    def __init__(self):
        self._x: weakref.ref | None = None
        self._key: tuple = ()
        self._out: torch.Tensor | None = None

    def get(self, x: torch.Tensor, p: float) -> torch.Tensor | None:
        if self._x is not None and self._x() is x and self._key == (x._version, p):
            return self._out
        return None

    def put(self, x: torch.Tensor, p: float, out: torch.Tensor) -> None:
        self._x, self._key, self._out = weakref.ref(x, self._gone), (x._version, p), out

    def _gone(self, ref: weakref.ref) -> None:
        if self._x is ref:
            self._x, self._out = None, None


class FastDropout(torch.nn.Module):
    """Inverted dropout with masks from `keep_mask`; the identity in eval mode or at p = 0. With a `LastInput`
    shared by several modules, a call with the input of the group's previous call returns that call's output."""

    def __init__(self, p: float, shared: LastInput | None = None):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability {p} must be in [0, 1)")
        self.p = p
        self.shared = shared

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        out = self.shared.get(x, self.p) if self.shared is not None else None
        if out is None:
            out = _MaskedScale.apply(x, keep_mask(x.shape, self.p, x.device), 1.0 / (1.0 - self.p))
            if self.shared is not None:
                self.shared.put(x, self.p, out)
        return out

    def extra_repr(self) -> str:
        return f"p={self.p}"


def replace_lora_dropout(model: torch.nn.Module, shared: bool = False) -> int:
    """Put a FastDropout in place of every `nn.Dropout` of the LoRA layers' `lora_dropout` dicts, all of them
    sharing one `LastInput` when `shared`; returns how many."""
    group = LastInput() if shared else None
    n = 0
    for module in model.modules():
        drops = getattr(module, "lora_dropout", None)
        if not isinstance(drops, torch.nn.ModuleDict):
            continue
        for name, d in list(drops.items()):
            if isinstance(d, torch.nn.Dropout):
                drops[name] = FastDropout(d.p, group)
                n += 1
    return n
