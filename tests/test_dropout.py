"""tuning/dropout.py: the LoRA dropout drawn four elements per 64-bit word is the same dropout as nn.Dropout."""

import pytest

from advisor.core.config import load_config
from advisor.core.errors import AdvisorError


def test_keep_mask_keeps_each_element_with_probability_one_minus_p_independently():
    import torch

    from tuning.dropout import keep_mask, keep_threshold

    assert keep_threshold(0.0) == -32768 and keep_threshold(0.5) == 0 and keep_threshold(0.05) == -32768 + 3277
    torch.manual_seed(0)
    for p in (0.05, 0.3):
        m = keep_mask(torch.Size([400, 1000]), p)
        assert m.dtype == torch.bool and m.shape == (400, 1000)
        # 400k Bernoulli draws: the share dropped is p within 5 standard errors
        assert abs((1 - m.float().mean().item()) - p) < 5 * (p * (1 - p) / m.numel()) ** 0.5
        # each of the four 16-bit lanes of a word drops its own share, and neighbours are not correlated
        lanes = (~m).flatten().view(-1, 4).float()
        assert all(abs(lanes[:, k].mean().item() - p) < 0.01 for k in range(4))
        both = (lanes[:, 0] * lanes[:, 1]).mean().item()
        assert abs(both - p * p) < 0.01
    assert keep_mask(torch.Size([3, 5]), 0.0).all()  # an odd element count: the last word is partly used


def test_fast_dropout_scales_kept_elements_is_seeded_and_is_the_identity_in_eval():
    import torch

    from tuning.dropout import FastDropout

    d = FastDropout(0.25)
    x = torch.randn(64, 48, requires_grad=True)
    torch.manual_seed(1)
    y = d(x)
    kept = y != 0
    assert torch.allclose(y[kept], x[kept] / 0.75)
    assert 0.15 < 1 - kept.float().mean().item() < 0.35
    y.sum().backward()  # the gradient passes only where the element was kept, scaled alike
    assert torch.allclose(x.grad, kept.float() / 0.75)
    torch.manual_seed(1)
    assert torch.equal(d(x), y)  # the same seed, the same mask
    assert not torch.equal(d(x), y)  # the next draw, another mask
    d.eval()
    assert d(x) is x
    assert FastDropout(0.0)(x) is x
    with pytest.raises(ValueError, match=r"dropout probability 1.0 must be in \[0, 1\)"):
        FastDropout(1.0)


def test_the_lora_layers_get_fast_dropout_on_a_cpu_unless_turned_off(tiny_model_dir):
    import torch

    from tuning.dropout import FastDropout
    from tuning.train import build_trainable_model

    def drops(*over):
        cfg = load_config(None, [f"model.spec={tiny_model_dir}", "model.quantization=none", *over])
        model, _ = build_trainable_model(cfg, "cpu")
        return [d for m in model.modules() if isinstance(m, torch.nn.ModuleDict) for d in m.values()]

    fast = [d for d in drops() if isinstance(d, FastDropout)]
    assert fast and all(d.p == 0.05 for d in fast)
    assert not any(isinstance(d, torch.nn.Dropout) for d in drops())
    assert not any(isinstance(d, FastDropout) for d in drops("tuning.lora.fast_dropout=false"))
    assert any(isinstance(d, torch.nn.Dropout) and d.p == 0.05 for d in drops("tuning.lora.fast_dropout=false"))


def test_fast_dropout_setting_auto_is_on_for_a_cpu_only_and_bad_values_are_named():
    lc = load_config("quickstart").tuning.lora
    assert lc.fast_dropout == "auto" and lc.uses_fast_dropout("cpu") and not lc.uses_fast_dropout("cuda:0")
    assert load_config("quickstart", ["tuning.lora.fast_dropout=true"]).tuning.lora.uses_fast_dropout("cuda")
    assert not load_config("quickstart", ["tuning.lora.fast_dropout=false"]).tuning.lora.uses_fast_dropout("cpu")
    assert not load_config("quickstart", ["tuning.lora.dropout=0"]).tuning.lora.uses_fast_dropout("cpu")
    with pytest.raises(AdvisorError, match="tuning.lora.fast_dropout=sometimes must be 'auto', true or false"):
        load_config("quickstart", ["tuning.lora.fast_dropout=sometimes"])


def test_lora_layers_reading_one_tensor_share_its_dropped_copy_and_train_alike(tiny_model_dir, monkeypatch):
    import torch

    from tuning import dropout
    from tuning.train import build_trainable_model

    def forward(*over):
        cfg = load_config(None, [f"model.spec={tiny_model_dir}", "model.quantization=none", *over])
        model, params = build_trainable_model(cfg, "cpu")
        seen: dict[str, torch.Tensor] = {}

        def keep(name):  # a forward hook returning None leaves the output alone
            return lambda mod, inp, out: seen.update({name: inp[0]}) if name not in seen else None

        for name, m in model.named_modules():
            if name.endswith("lora_A.default"):
                m.register_forward_hook(keep(name))
        draws = []
        real = dropout.keep_mask
        monkeypatch.setattr(dropout, "keep_mask", lambda *a, **k: draws.append(a[0]) or real(*a, **k))
        ids = torch.tensor([[1, 5, 9, 4, 7, 3]])
        model(input_ids=ids, labels=ids).loss.backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in params)
        return seen, draws

    seen, draws = forward()
    layer = next(k.split(".self_attn")[0] for k in seen if ".self_attn.q_proj" in k)
    q, k, v = (seen[f"{layer}.self_attn.{p}_proj.lora_A.default"] for p in "qkv")
    gate, up = (seen[f"{layer}.mlp.{p}_proj.lora_A.default"] for p in ("gate", "up"))
    assert q is k is v and gate is up  # one dropped copy per input tensor
    assert not torch.equal(q, seen[f"{layer}.self_attn.o_proj.lora_A.default"][..., : q.shape[-1]])
    per_layer = sum(1 for k in seen if k.startswith(layer + "."))
    assert per_layer == 7 and len(draws) == len(seen) * 4 // 7  # 4 distinct inputs of 7 LoRA layers a block

    own, own_draws = forward("tuning.lora.shared_dropout=false")
    assert len(own_draws) == len(own)  # one mask per LoRA layer
    assert not torch.equal(*(own[f"{layer}.self_attn.{p}_proj.lora_A.default"] for p in "qk"))
    with pytest.raises(AdvisorError, match="tuning.lora.shared_dropout must be true or false, got 'maybe'"):
        load_config("quickstart", ["tuning.lora.shared_dropout=maybe"])
