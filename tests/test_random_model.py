"""benchmarks/random_model.py: the random-weight stand-in for a model that cannot reach a GPU machine."""


def test_a_random_model_has_the_asked_shape_and_the_given_tokenizer_and_loads_like_any_model(
    tmp_path, tiny_model_dir, bench_module
):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from advisor.core.models import resolve_model

    rm = bench_module("random_model")
    n = rm.build(tmp_path / "m", "tiny", tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "m")
    hidden, layers, inter, heads, kv = rm.SIZES["tiny"]
    c = model.config
    assert (c.hidden_size, c.num_hidden_layers, c.intermediate_size, c.num_key_value_heads) == (
        hidden,
        layers,
        inter,
        kv,
    )
    assert sum(p.numel() for p in model.parameters()) == n
    tok, ref = AutoTokenizer.from_pretrained(tmp_path / "m"), AutoTokenizer.from_pretrained(tiny_model_dir)
    assert c.vocab_size == len(ref) and tok("refund policy")["input_ids"] == ref("refund policy")["input_ids"]
    assert resolve_model(str(tmp_path / "m"), "causal").origin == "local"  # a model.spec the pipeline takes
