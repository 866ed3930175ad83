import pytest
import yaml

from advisor.core.config import Config, dump_config, from_dict, load_config, parse_override, preset_names
from advisor.core.errors import AdvisorError


def test_every_preset_loads_and_validates():
    names = preset_names()
    assert {"quickstart", "smoke"} <= set(names)
    for name in names:
        cfg = load_config(name)
        assert isinstance(cfg, Config)


def test_presets_are_headed_by_the_command_that_runs_them():
    from advisor.core.config import PRESETS_DIR

    for name in preset_names():
        head = (PRESETS_DIR / f"{name}.yaml").read_text().splitlines()[:3]
        assert any(line.startswith("# advisor run") for line in head), name


def test_dotted_overrides_are_typed_and_nested():
    cfg = load_config(
        "quickstart",
        [
            "tuning.lora.r=4",
            "eval.limit=10",
            "model.quantization=none",
            "eval.arms=base,rag",
            "tuning.use_corpus_text=false",
        ],
    )
    assert cfg.tuning.lora.r == 4 and cfg.eval.limit == 10 and cfg.model.quantization == "none"
    assert cfg.eval.arms == ["base", "rag"] and cfg.tuning.use_corpus_text is False
    assert parse_override("a.b.c=1.5") == {"a": {"b": {"c": 1.5}}}


def test_unknown_key_suggests_the_closest():
    with pytest.raises(AdvisorError, match=r"unknown config key 'tuning.lora.rank'.*did you mean 'r'"):
        load_config(None, ["tuning.lora.rank=8"])
    with pytest.raises(AdvisorError, match=r"'chunkng'.*did you mean 'chunking'"):
        load_config(None, ["chunkng.size=10"])


@pytest.mark.parametrize(
    "override, message",
    [
        ("chunking.overlap=300", "overlap"),
        ("tuning.lora.r=0", "lora.r=0"),
        ("model.quantization=nf8", "did you mean 'nf4'"),
        ("eval.arms=base,ragg", "unknown arm 'ragg'"),
        ("tuning.lr=-1", "tuning.lr"),
        ("retrieval.top_k=abc", "must be an integer"),
        ("tuning.schedule=constant", "cosine or linear"),
        ("run.time_budget=soon", "run.time_budget='soon' is not a duration"),
        ("run.time_budget=-10m", "not a duration"),
        ("run.confirm_over=0", "must be a positive duration"),
        ("tuning.max_train_tokens=-5", "tuning.max_train_tokens=-5"),
        ("tuning.val_limit=-1", "tuning.val_limit must be >= 0"),
        ("eval.curve_train_questions=-1", "eval.curve_train_questions=-1 must be >= 0"),
        ("retrieval.embed_dtype=fp16", "retrieval.embed_dtype='fp16' is not one of auto, float32 or bfloat16"),
    ],
)
def test_bad_values_are_rejected_with_the_field_named(override, message):
    with pytest.raises(AdvisorError, match=message):
        load_config(None, [override])


def test_override_without_equals_is_an_error():
    with pytest.raises(AdvisorError, match="section.key=value"):
        load_config(None, ["tuning.lora.r"])


def test_dump_round_trips_with_every_default_spelled_out():
    cfg = load_config("smoke", ["seed=3"])
    text = dump_config(cfg)
    data = yaml.safe_load(text)
    assert data["tuning"]["lora"]["alpha"] == cfg.tuning.lora.alpha
    assert from_dict(Config, data) == cfg


def test_unknown_preset_and_missing_file(tmp_path):
    with pytest.raises(AdvisorError, match="did you mean 'quickstart'"):
        load_config("quikstart")
    with pytest.raises(AdvisorError, match="does not exist"):
        load_config(str(tmp_path / "nope.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("tuning: [1, 2\n")
    with pytest.raises(AdvisorError, match=r"bad.yaml:\d+: not valid YAML"):
        load_config(str(bad))


@pytest.mark.parametrize(
    "text, seconds", [("10m", 600), ("1h30m", 5400), ("90s", 90), ("1.5h", 5400), ("600", 600), ("2H 5M", 7500)]
)
def test_durations_read_as_people_write_them(text, seconds):
    from advisor.core.config import parse_duration

    assert parse_duration(text, "run.time_budget") == seconds


def test_settings_added_later_keep_the_run_folder_and_tuning_hashes_of_older_runs():
    cfg = load_config("quickstart")
    d = cfg.stable_dict()
    assert "run" not in d and "max_train_tokens" not in d["tuning"] and "val_limit" not in d["tuning"]
    assert "curve_train_questions" not in d["eval"]
    assert (
        load_config("quickstart", ["eval.curve_train_questions=8"]).stable_dict()["eval"]["curve_train_questions"] == 8
    )
    changed = load_config(
        "quickstart", ["tuning.max_train_tokens=1000", "run.time_budget=10m", "tuning.val_limit=8"]
    ).stable_dict()
    assert changed["tuning"]["max_train_tokens"] == 1000 and changed["run"]["time_budget"] == "10m"
    assert changed["tuning"]["val_limit"] == 8


def test_the_matmul_dtype_changes_the_run_folder_only_where_it_is_bfloat16(monkeypatch):
    """model.cpu_matmul_dtype as this machine runs it: runs in float32 keep the hashes runs had before the setting,
    runs in bfloat16 (auto on an AVX512-BF16 CPU, or asked) get their own."""
    import advisor.core.embedders as embedders

    for has_bf16, expected in ((False, None), (True, "bfloat16")):
        monkeypatch.setattr(embedders, "cpu_has_bf16", lambda has=has_bf16: has)
        assert load_config("quickstart").stable_dict()["model"].get("cpu_matmul_dtype") == expected
    for setting in ("model.cpu_matmul_dtype=float32", "model.quantization=none"):  # no bfloat16 products on it
        assert "cpu_matmul_dtype" not in load_config("quickstart", [setting]).stable_dict()["model"]
    with pytest.raises(AdvisorError, match="model.cpu_matmul_dtype='fp16' is not one of auto, float32 or bfloat16"):
        load_config("quickstart", ["model.cpu_matmul_dtype=fp16"])


def test_the_tune_memory_levers_are_the_cpu_ones_on_a_cpu_and_off_on_cuda_unless_set():
    tc = load_config("quickstart", ["tuning.allocator=glibc"]).tuning  # glibc's malloc: its low-memory heap
    assert (tc.max_batch_tokens, tc.low_memory_heap) == ("auto", "auto")
    assert tc.memory_levers("cpu") == (768, True)
    assert tc.memory_levers("cuda:0") == (0, False)  # no split passes, glibc's own heap: activations are on the GPU
    assert (tc.heap_mmap_threshold("cpu"), tc.heap_mmap_threshold("cuda:0")) == (1 << 20, 0)
    tc = load_config("quickstart", ["tuning.max_batch_tokens=1024", "tuning.low_memory_heap=false"]).tuning
    assert tc.memory_levers("cpu") == tc.memory_levers("cuda") == (1024, False)
    assert tc.heap_mmap_threshold("cpu") == 0  # glibc's own dynamic threshold
    tc = load_config("quickstart", ["tuning.max_batch_tokens=0", "tuning.allocator=glibc"]).tuning
    assert tc.memory_levers("cpu") == (0, True)
    # under another malloc (the default mimalloc where installed) glibc's threshold means nothing: it stays unset
    tc = load_config("quickstart").tuning
    assert tc.memory_levers("cpu", "libmimalloc.so") == (768, False) and tc.heap_mmap_threshold("cpu", "x.so") == 0
    assert tc.memory_levers("cpu", "glibc") == (768, True)  # a tune process that runs on glibc's after all
    for bad, says in (
        ("tuning.max_batch_tokens=-1", "tuning.max_batch_tokens=-1 must be 'auto' or an integer >= 0"),
        ("tuning.max_batch_tokens=lots", "tuning.max_batch_tokens=lots must be 'auto'"),
        ("tuning.low_memory_heap=maybe", "tuning.low_memory_heap=maybe must be 'auto', true or false"),
    ):
        with pytest.raises(AdvisorError, match=says):
            load_config("quickstart", [bad])


def test_negative_step_counts_of_the_tuning_section_are_refused():
    for key in ("eval_every", "early_stopping_patience", "save_every", "curve_points"):
        with pytest.raises(AdvisorError, match="tuning.curve_points must be >= 0"):
            load_config("quickstart", [f"tuning.{key}=-1"])
