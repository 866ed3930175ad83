"""advisor plan and --time-budget (advisor/plan.py): the plan follows the pipeline's own stage list, the calibration
is measured once per machine and model, a budget cuts by its stated rule, a long plan needs a yes, and the
training-token cap keeps every instruction pair and every document."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from conftest import TINY_RUN

from advisor.cli import main
from advisor.core.config import MAX_TRAIN_TOKENS, load_config
from advisor.core.errors import AdvisorError
from advisor.pipeline import SAMPLE_CORPUS, SAMPLE_EVAL, SAMPLE_TRAIN, planned_stages, resolve_inputs

DATA = Path(__file__).parent / "data"

# A slow made-up machine, so that budgets bite on the tiny fakes: seconds per token of each kind of work.
FAKE_CAL = {
    "device": "cpu",
    "calibration_s": 1.0,
    "import_s": 2.0,
    "base_rss_mb": 300.0,
    "embed_load_s": 1.0,
    "embed_s_per_token": 1e-4,
    "embed_rss_mb": 100.0,
    "load_s": 3.0,
    "load_rss_mb": 500.0,
    "load_peak_mb": 600.0,
    "prefill_s_per_token": 1e-3,
    "prefill_batch": 4,
    "prefill_tokens": 1200,
    "decode_s_per_token": 0.02,
    "decode_batch": 16,
    "new_tokens_per_answer": 4.0,
    "adapter_factor": 1.2,
    "gen_rss_mb": 200.0,
    "kv_mb_per_token": 0.01,
    "gen_kv_tokens": 800.0,
    "train_s_per_token": 0.01,  # text rows: the model's pass and a loss on every position
    "train_body_s_per_token": 0.006,  # the pass alone (a question row's loss positions are few)
    "train_label_s": 0.004,
    "train_tokens_per_step": 512.0,
    "train_rss_mb": 1000.0,
    "key": {"machine": {"cores": 2, "gpu": None}},
    "measured": "2026-12-01T00:00:00Z",
    "cached": True,
}


def tiny_cfg(model_dir, *over: str):
    return resolve_inputs(
        load_config(
            "smoke",
            [
                f"corpus.path={DATA / 'corpus'}",
                f"corpus.qa={DATA / 'qa.jsonl'}",
                f"corpus.train_qa={DATA / 'train.jsonl'}",
                f"model.spec={model_dir}",
                *TINY_RUN,
                *over,
            ],
        )
    )


def tiny_args(model_dir, *extra: str) -> list[str]:
    return [
        "--corpus",
        str(DATA / "corpus"),
        "--qa",
        str(DATA / "qa.jsonl"),
        "--train-qa",
        str(DATA / "train.jsonl"),
        "--model",
        str(model_dir),
        "--embedder",
        "hashing",
        "--config",
        "smoke",
        *[o for o in TINY_RUN if not o.startswith("retrieval.embedder")],
        *extra,
    ]


@pytest.mark.parametrize("overlap", [True, False])
@pytest.mark.parametrize("over", [(), ("tuning.both_adapter=separate", "tuning.seeds=2"), ("eval.arms=base,rag",)])
def test_the_plan_has_one_row_per_stage_the_pipeline_plans(tiny_model_dir, over, overlap, monkeypatch):
    from advisor.plan import estimate, measure_work

    monkeypatch.setattr("advisor.pipeline.tracks_overlap", lambda cfg: overlap)  # what run_tracks will do
    cfg = tiny_cfg(tiny_model_dir, *over)
    plan = estimate(cfg, measure_work(cfg), FAKE_CAL)
    assert [s.name for s in plan.stages] == planned_stages(cfg)
    assert all(s.seconds >= 0 for s in plan.stages) and plan.total_s > 0
    parallel = [s for s in plan.stages if s.track]
    if overlap and "index" in planned_stages(cfg) and "tune" in planned_stages(cfg):  # the two tracks overlap
        assert plan.total_s < sum(s.seconds for s in plan.stages)
        assert {s.track for s in parallel} == {"index", "tune"}
    else:
        assert not parallel and math.isclose(plan.total_s, sum(s.seconds for s in plan.stages))


def test_a_retrieval_arm_is_planned_to_hold_the_kv_cache_of_its_longer_prompts(tiny_model_dir):
    """An eval stage's peak: the model, the embedder, the calibration's generation overhead, and a batch cache
    for this arm's prompts (the retrieval arms' were planned at half their real peak when the cache was not)."""
    from advisor.plan import estimate, eval_questions, measure_work

    cfg = tiny_cfg(tiny_model_dir)
    work = measure_work(cfg)
    qs = eval_questions(cfg, work)
    cal = {**FAKE_CAL, "gen_kv_tokens": 0.0}  # a calibration whose own batch cache was negligible
    plan = {s.name: s for s in estimate(cfg, work, cal).stages}
    per_row = cal["kv_mb_per_token"] * min(cfg.eval.batch_size, len(qs)) / len(qs)
    closed = per_row * (sum(c for _, c, _ in qs) + len(qs) * cfg.model.max_new_tokens)
    longer = per_row * (sum(r for _, _, r in qs) - sum(c for _, c, _ in qs))
    model = cal["base_rss_mb"] + cal["load_rss_mb"] + cal["embed_rss_mb"]
    assert math.isclose(plan["eval_base"].peak_mb, model + cal["gen_rss_mb"] + closed)
    assert math.isclose(plan["eval_rag"].peak_mb - plan["eval_base"].peak_mb, longer)
    # a calibration whose own batch cache was at least the arm's: its measured overhead stands as it was
    base = {s.name: s for s in estimate(cfg, work, FAKE_CAL).stages}["eval_base"]
    assert FAKE_CAL["kv_mb_per_token"] * FAKE_CAL["gen_kv_tokens"] >= closed
    assert math.isclose(base.peak_mb, model + FAKE_CAL["gen_rss_mb"])


def test_the_work_is_counted_from_the_inputs(tiny_model_dir):
    from advisor.core.qa import load_qa, stratified_limit
    from advisor.plan import eval_questions, measure_work

    cfg = tiny_cfg(tiny_model_dir)
    work = measure_work(cfg)
    items = load_qa(DATA / "qa.jsonl")
    assert len(work.questions) == len(items)
    kept = eval_questions(cfg, work)
    assert len(kept) == len(stratified_limit(items, cfg.eval.limit))
    assert all(rag > closed for _, closed, rag in kept)  # retrieval prompts carry their passages
    assert work.n_documents == len(list((DATA / "corpus").iterdir())) and work.n_chunks >= work.n_documents
    assert work.train_kinds["qa"] == sum(1 for it in load_qa(DATA / "train.jsonl") if not it.unanswerable)
    assert len(work.probes["arc_easy"]) == cfg.eval.probe_limit
    # what the eval runs: a probe item's context once for all its choices, the closed-book prompts' head once a batch
    from advisor.core.answer import render_prompt
    from advisor.core.decoding import common_prefix
    from advisor.core.models import load_tokenizer
    from evalsuite.probes import load_probe

    tok = load_tokenizer(cfg.model.spec, "causal")

    def ids(text: str) -> list[int]:
        return tok(text, add_special_tokens=False)["input_ids"]

    item = load_probe("arc_easy", 1)[0]
    whole = [len(ids(item.context + c)) for c in item.choices]
    assert work.probes["arc_easy"][0] == sum(whole) - (len(whole) - 1) * len(ids(item.context)) < sum(whole)
    prompts = [ids(render_prompt(tok, it.question)) for it in items]
    assert work.closed_head == min(common_prefix(prompts[0], p) for p in prompts) >= 8


def test_the_curve_is_planned_to_answer_its_training_questions_at_every_point(tiny_model_dir):
    from advisor.plan import estimate, measure_work

    def curve(*over):
        cfg = tiny_cfg(tiny_model_dir, "tuning.curve_points=2", *over)
        return {s.name: s for s in estimate(cfg, measure_work(cfg), FAKE_CAL).stages}["curve"]

    n = measure_work(tiny_cfg(tiny_model_dir)).train_kinds["qa"]
    with_them, without = curve(), curve("eval.curve_train_questions=0")
    # the two snapshots and the final adapter answer them
    assert with_them.work.endswith(f"; {min(40, n)} training questions x 3 points") and n > 0
    assert "training questions" not in without.work and with_them.seconds > without.seconds


def test_the_thorough_preset_is_the_quickstart_with_four_times_its_training_at_a_higher_learning_rate():
    """The same evaluation as the quickstart (so their numbers compare), 8 epochs at lr 1e-3, and the plan prices its
    tune at four times the quickstart's steps."""
    from advisor.core.config import load_config
    from advisor.plan import estimate, measure_work

    quick, thorough = resolve_inputs(load_config("quickstart", [])), resolve_inputs(load_config("thorough", []))
    assert (thorough.tuning.epochs, thorough.tuning.lr) == (8, 1e-3) and quick.tuning.lr == 2e-4
    for section in ("corpus", "chunking", "retrieval", "eval", "model", "recommend"):
        assert thorough.to_dict()[section] == quick.to_dict()[section], section
    assert {k: v for k, v in thorough.to_dict()["tuning"].items() if k not in ("epochs", "lr")} == {
        k: v for k, v in quick.to_dict()["tuning"].items() if k not in ("epochs", "lr")
    }
    work = measure_work(quick)
    tune = [{s.name: s for s in estimate(c, work, FAKE_CAL).stages}["tune"] for c in (quick, thorough)]
    assert tune[0].work.startswith("2 epochs = ") and tune[1].work.startswith("8 epochs = ")
    steps = [int(t.work.split(" = ")[1].split(" steps")[0]) for t in tune]
    assert steps[1] == 4 * steps[0] > 0 and tune[1].seconds > 3 * tune[0].seconds


def test_closed_book_batches_are_planned_to_prefill_their_common_head_once():
    from advisor.plan import closed_prefill_tokens

    lengths = [10, 12, 14, 9, 11]  # batches of 2: (10, 12), (14, 9), (11)
    assert closed_prefill_tokens(lengths, 8, 2, {}) == 56 - 8 * 2
    assert closed_prefill_tokens(lengths, 8, 48, {"plain_cache": True}) == 56 - 8 * 4
    assert closed_prefill_tokens(lengths, 7, 2, {}) == 56  # too short a head to share
    assert closed_prefill_tokens(lengths, 8, 2, {"plain_cache": False}) == 56  # sliding windows: every row whole


def test_the_plan_counts_a_raft_example_for_each_unanswerable_question_with_raft_unanswerable(tiny_model_dir):
    from advisor.plan import generated_training_counts, measure_work
    from tuning.data import abstain_cap

    off = measure_work(tiny_cfg(tiny_model_dir, "tuning.raft=true"))
    cfg = tiny_cfg(tiny_model_dir, "tuning.raft=true", "tuning.raft_unanswerable=true")
    on = measure_work(cfg)
    # the tiny training set has no unanswerable items: the qa stage's are used, capped like abstention questions
    expected = min(abstain_cap(off.train_kinds["qa"], cfg.tuning.abstain_share), generated_training_counts(cfg)[1])
    assert expected > 0 and on.train_kinds["raft"] == off.train_kinds["raft"] + expected
    assert on.train_kinds["abstain"] == off.train_kinds["abstain"] == 0


def test_the_tuned_arms_are_planned_to_answer_as_long_as_their_training_answers_once_trained_on_them(
    tiny_model_dir,
):
    from advisor.core.qa import load_qa
    from advisor.plan import _epochs_seen, estimate, eval_questions, measure_work

    cfg = tiny_cfg(tiny_model_dir, "eval.known_samples=0", "model.max_new_tokens=64", "tuning.max_steps=0")
    work = measure_work(cfg)
    answers = [it.answers[0] for it in load_qa(DATA / "train.jsonl") if not it.unanswerable]
    assert work.answer_tokens and 1 < work.answer_tokens < 2 + max(len(a) for a in answers)
    cal = {**FAKE_CAL, "new_tokens_per_answer": work.answer_tokens + 10, "adapter_factor": 1.0}
    plan = estimate(cfg, work, cal)
    assert _epochs_seen(cfg, work, plan.sizes["steps"]) >= 1
    secs = {s.name: s.seconds for s in plan.stages}
    # same prompts, no load in eval_tuned: the difference is the 10 fewer tokens decoded per answer
    saved = len(eval_questions(cfg, work)) * 10 * cal["decode_s_per_token"]
    first = cal["import_s"] + cal["load_s"] + cal["embed_load_s"]
    assert secs["eval_base"] - first - secs["eval_tuned"] == pytest.approx(saved, rel=1e-6)
    # a few steps, a fraction of an epoch: the adapter has not learned the short answers yet
    few = tiny_cfg(tiny_model_dir, "eval.known_samples=0", "model.max_new_tokens=64", "tuning.max_steps=1")
    plan = estimate(few, work, cal)
    part = _epochs_seen(few, work, plan.sizes["steps"])
    assert 0 < part < 1
    secs = {s.name: s.seconds for s in plan.stages}
    assert secs["eval_base"] - first - secs["eval_tuned"] == pytest.approx(saved * part, rel=1e-6)


@pytest.fixture(scope="module")
def home_seen_by_a_module_fixture() -> Path:
    from advisor.core.models import advisor_home

    return advisor_home()


def test_calibrations_made_by_fixtures_of_any_scope_stay_out_of_the_users_cache(
    home_seen_by_a_module_fixture, tmp_path_factory
):
    # module and session fixtures run whole pipelines and plans (which calibrate) before any function fixture runs
    assert home_seen_by_a_module_fixture == tmp_path_factory.getbasetemp() / "advisor-home"


def test_calibration_runs_once_on_the_tiny_model_and_is_then_read_from_the_cache(tiny_model_dir):
    from advisor.plan import calibrate, calibration_key, calibration_path

    cfg = tiny_cfg(tiny_model_dir)
    first = calibrate(cfg, progress=False)
    path = calibration_path(calibration_key(cfg))
    assert path.is_file() and path.parent.name == "calibration"
    for k in (
        "train_s_per_token",
        "train_body_s_per_token",
        "prefill_s_per_token",
        "score_s_per_token",
        "decode_s_per_token",
        "embed_s_per_token",
        "load_s",
        "adapter_factor",
        "kv_mb_per_token",
    ):
        assert first[k] > 0, k
    assert first["train_label_s"] >= 0  # the tiny model's vocabulary projection costs next to nothing
    c = __import__("transformers").AutoConfig.from_pretrained(tiny_model_dir)  # fp32 keys and values per token
    kv = c.num_hidden_layers * 2 * c.num_key_value_heads * (c.hidden_size // c.num_attention_heads) * 4 / 2**20
    assert math.isclose(first["kv_mb_per_token"], kv)
    assert first["plain_cache"] is True  # a Llama: the tune runs a prompt's passages without gradients
    assert first["train_detached_s_per_token"] > 0  # and the calibration timed such positions
    # the training step in a second process, started under the tune's malloc (mimalloc), the rest under this one's
    assert set(first["calibration_parts_s"]) == {
        "imports",
        "embedder",
        "load model",
        "generate",
        "train",
        "train process",
    }
    # measured in a process of its own, started under the tune stage's malloc (tuning.allocator auto: mimalloc,
    # preloaded), where glibc's mmap threshold is left alone
    assert first["train_allocator"] == "libmimalloc.so" and first["train_heap_mmap_threshold"] == 0
    assert first["import_s"] > 0
    again = calibrate(cfg, progress=False)
    assert again["cached"] and again["measured"] == first["measured"]
    other = calibration_key(tiny_cfg(tiny_model_dir, "tuning.batch_size=2"))  # another shape is measured anew
    assert calibration_path(other) != path and not calibration_path(other).exists()
    # the tune stage's speed recorded under one heap setting is not another's (1 MB mmap threshold: 111 tokens/s, none
    # 143, mimalloc 1.3x the 1 MB threshold's)
    glibc = calibration_key(tiny_cfg(tiny_model_dir, "tuning.allocator=glibc"))
    assert (glibc["tune_allocator"], glibc["heap_mmap_threshold"]) == ("glibc", 1 << 20)
    assert (
        calibration_key(tiny_cfg(tiny_model_dir, "tuning.allocator=glibc", "tuning.low_memory_heap=false"))[
            "heap_mmap_threshold"
        ]
        == 0
    )
    assert (calibration_key(cfg)["tune_allocator"], calibration_key(cfg)["heap_mmap_threshold"]) == (
        "libmimalloc.so",
        0,
    )
    # nor under another LoRA dropout (torch's own draws were 15-20% of a CPU tune)
    assert calibration_key(cfg)["fast_dropout"] is True
    assert calibration_key(tiny_cfg(tiny_model_dir, "tuning.lora.fast_dropout=false"))["fast_dropout"] is False


def test_products_in_bfloat16_are_calibrated_apart_and_said_in_the_plan(tiny_model_dir, tmp_path, monkeypatch, capsys):
    """model.cpu_matmul_dtype: a calibration in float32 keeps the key it had before the setting; one in bfloat16 is
    its own, and the plan's first line says the products run in bfloat16."""
    from advisor.plan import calibration_key

    nf4 = "model.quantization=nf4"  # the products of 4-bit layers (the smoke preset's tiny runs load none)
    f32 = calibration_key(tiny_cfg(tiny_model_dir, nf4, "model.cpu_matmul_dtype=float32"))
    bf16 = calibration_key(tiny_cfg(tiny_model_dir, nf4, "model.cpu_matmul_dtype=bfloat16"))
    assert "cpu_matmul_dtype" not in f32 and bf16 == f32 | {"cpu_matmul_dtype": "bfloat16"}
    none = calibration_key(tiny_cfg(tiny_model_dir, "model.quantization=none", "model.cpu_matmul_dtype=bfloat16"))
    assert "cpu_matmul_dtype" not in none  # no 4-bit layers, no products for it to change
    monkeypatch.chdir(tmp_path)
    for dtype, said in (("float32", False), ("bfloat16", True)):
        assert main(["plan", *tiny_args(tiny_model_dir, nf4, f"model.cpu_matmul_dtype={dtype}")]) == 0
        first = capsys.readouterr().out.splitlines()[0]
        assert first.startswith("plan: ") and ("4-bit products in bfloat16" in first) == said, first


def test_a_calibration_whose_model_cannot_be_had_says_so_in_one_line_and_caches_nothing(tmp_path):
    from advisor.plan import calibrate, calibration_key, calibration_path

    cfg = tiny_cfg(tmp_path / "gone")  # the model folder is gone by the time the calibration's process loads it
    with pytest.raises(AdvisorError, match=r"unknown causal model '.*gone'"):
        calibrate(cfg, progress=False)
    assert not calibration_path(calibration_key(cfg)).exists()


def test_advisor_plan_prints_every_stage_and_builds_nothing(tiny_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["plan", *tiny_args(tiny_model_dir), "--device", "a100", "--price-per-hour", "2"]) == 0
    out = capsys.readouterr().out
    cfg = tiny_cfg(tiny_model_dir)
    for stage in planned_stages(cfg):
        assert f"  {stage} " in out, stage
    assert "total" in out and "calibration" in out and "assumed: a100 runs every stage 16x faster" in out
    assert "cost:" in out and list(tmp_path.iterdir()) == []  # no run directory, no runs/ folder
    assert "as the time budget" not in out
    assert main(["plan", *tiny_args(tiny_model_dir), "--speedup", "4", "--time-budget", "2h"]) == 0
    other = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("on the other machine"))
    assert "as the time budget 2h sized it on this machine" in other and "4x faster" in other
    assert main(["run", "--dry-run", *tiny_args(tiny_model_dir)]) == 0
    assert "total" in capsys.readouterr().out and list(tmp_path.iterdir()) == []


def test_a_time_budget_cuts_steps_questions_and_probes_by_one_rule_and_keeps_every_arm(tiny_model_dir, monkeypatch):
    from advisor import plan
    from advisor.plan import BUDGET_SHARE, cut_lines, estimate, measure_work, size_to_budget
    from tuning.data import val_count

    monkeypatch.setattr(plan, "BUDGET_VAL_LIMIT", 2)  # the tiny set holds out 4 examples

    # the sample's 150 questions (the tiny set's 24 are all needed for 20 answerable ones)
    cfg = tiny_cfg(
        tiny_model_dir,
        "tuning.max_steps=200",
        "eval.limit=0",
        "eval.probe_limit=60",
        "tuning.curve_points=2",
        "tuning.eval_every=0",  # validations at the curve's snapshots (the smoke preset sets one)
        "tuning.use_corpus_text=true",  # the tiny corpus's text makes enough held-out examples to cut
        f"corpus.qa={SAMPLE_EVAL}",
    )
    work = measure_work(cfg)
    before = estimate(cfg, work, FAKE_CAL)
    sized, rec = size_to_budget(cfg, work, FAKE_CAL, before.total_s / 2, "half")
    assert sized.eval.arms == cfg.eval.arms
    assert rec["estimate_after_s"] <= rec["target_s"] == round(BUDGET_SHARE * before.total_s / 2, 1)
    assert before.total_s / 2 < rec["estimate_before_s"]  # the rest of the budget is room for the plan's error
    cut = {c["setting"]: c for c in rec["cuts"]}
    assert cut["tuning.curve_points"]["to"] == 0  # the extras go first
    assert sized.tuning.eval_every == cut["tuning.eval_every"]["to"] > sized.tuning.max_steps  # validation at the end
    assert cfg.tuning.eval_every == 0  # the config given is left as it was
    n_val = val_count(len(work.train), cfg.tuning.val_fraction)
    assert n_val > plan.BUDGET_VAL_LIMIT == 2  # so the held-out examples scored are cut to the limit
    assert cut["tuning.val_limit"]["from"] == n_val and sized.tuning.val_limit == 2
    assert cut["tuning.max_steps"]["to"] == sized.tuning.max_steps < 200
    q = cut["eval.limit"]
    (a0, a1), (u0, u1) = q["answerable"], q["unanswerable"]
    assert a1 < a0 and abs(u1 / (a1 + u1) - u0 / (a0 + u0)) < 0.1  # answerable : unanswerable kept in proportion
    assert rec["ci_widening"]["accuracy"] == pytest.approx(math.sqrt(a0 / a1), abs=0.01)
    assert rec["ci_widening"]["accuracy"] > 1
    # the steps, questions and probe items are cut by about the same fraction
    fractions = [
        c["to"] / c["from"] for s, c in cut.items() if s in ("tuning.max_steps", "eval.limit", "eval.probe_limit")
    ]
    assert max(fractions) - min(fractions) < 0.25
    assert any("CIs about" in line for line in cut_lines(rec))
    fits, rec2 = size_to_budget(cfg, work, FAKE_CAL, before.total_s * 2)
    assert fits is cfg and rec2["cuts"] == []


def test_a_budget_below_the_minimum_is_refused_with_the_minimum_it_needs(tiny_model_dir):
    from advisor.plan import estimate, measure_work, size_to_budget

    cfg = tiny_cfg(tiny_model_dir, "tuning.max_steps=200")
    work = measure_work(cfg)
    with pytest.raises(
        AdvisorError, match=r"too small for this run: .* needs about .*give at least --time-budget \d+m"
    ):
        size_to_budget(cfg, work, FAKE_CAL, 1.0, "1s")
    assert estimate(cfg, work, FAKE_CAL).total_s > 1.0


def test_floors_over_the_budgets_share_but_within_the_budget_run_and_say_how_little_room_is_left(tiny_model_dir):
    from advisor.plan import BUDGET_SHARE, cut_lines, measure_work, size_to_budget

    cfg = tiny_cfg(tiny_model_dir, "tuning.max_steps=200")
    work = measure_work(cfg)

    def accepted(budget: float) -> bool:
        try:
            size_to_budget(cfg, work, FAKE_CAL, budget)
        except AdvisorError:
            return False
        return True

    lo, hi = 1.0, 10_000.0  # refused, accepted: the least budget the floors fit is between
    assert not accepted(lo) and accepted(hi)
    for _ in range(30):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if accepted(mid) else (mid, hi)
    floors, rec = size_to_budget(cfg, work, FAKE_CAL, hi)
    assert floors.tuning.max_steps == 10 and rec["room_share"] < 0.01
    assert "leaves 0% of the budget for its own error, not 15%: the run may end past the budget" in cut_lines(rec)[-1]
    _, roomy = size_to_budget(cfg, work, FAKE_CAL, hi / BUDGET_SHARE * 1.01)  # the floors within the 85% share
    assert "room_share" not in roomy and not any("past the budget" in line for line in cut_lines(roomy))
    with pytest.raises(AdvisorError, match=r"give at least --time-budget \d+m \(\d+m leaves the plan its 15% of room"):
        size_to_budget(cfg, work, FAKE_CAL, lo)


def test_a_long_plan_needs_yes_off_a_terminal_and_is_asked_about_on_one(tiny_model_dir):
    from advisor.plan import Plan, gate

    cfg = tiny_cfg(tiny_model_dir)
    long = Plan([], 2 * 3600.0, 0.0, {}, [], FAKE_CAL)
    with pytest.raises(AdvisorError, match="over run.confirm_over=1h; nothing was started: rerun with --yes"):
        gate(long, cfg, yes=False, interactive=False)
    gate(long, cfg, yes=True, interactive=False)
    gate(long, cfg, yes=False, interactive=True, ask=lambda prompt: "y\n")
    with pytest.raises(AdvisorError) as no:
        gate(long, cfg, yes=False, interactive=True, ask=lambda prompt: "\n")
    assert no.value.exit_code == 1 and "not started" in str(no.value)
    gate(Plan([], 60.0, 0.0, {}, [], FAKE_CAL), cfg, yes=False, interactive=False)  # short: never asked
    budgeted = tiny_cfg(tiny_model_dir, "run.time_budget=10m")
    gate(long, budgeted, yes=False, interactive=False)  # a budget was given: the run is sized, not asked about


def test_a_sized_run_records_its_cuts_in_the_manifest_and_the_report(
    tiny_model_dir, finished_tiny_run, tmp_path, monkeypatch
):
    import shutil

    from advisor import plan as plan_mod
    from advisor.report import build_report

    monkeypatch.setattr(plan_mod, "calibrate", lambda cfg, refresh=False, progress=True: dict(FAKE_CAL))
    cfg = tiny_cfg(tiny_model_dir, "tuning.max_steps=200", "eval.limit=0", "eval.probe_limit=60")
    full = plan_mod.make_plan(cfg)[0].total_s
    budgeted = tiny_cfg(
        tiny_model_dir,
        "tuning.max_steps=200",
        "eval.limit=0",
        "eval.probe_limit=60",
        f"run.time_budget={int(full / 2)}s",
    )
    sized, record = plan_mod.prepare_run(budgeted, None, False, yes=False, interactive=False)
    assert record["budget"]["cuts"] and sized.tuning.max_steps < 200 and sized.eval.limit > 0
    assert record["estimate"]["total_s"] <= full / 2
    run = tmp_path / "run"
    shutil.copytree(finished_tiny_run, run)
    manifest = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps({**manifest, "plan": record}))
    md, _ = build_report(run)
    assert "### What the time budget cut" in md and "training steps: 200 ->" in md and "CIs about" in md
    assert "| planned |" in md  # the stage table gives each stage's planned time beside its wall time


def test_the_training_cap_keeps_every_instruction_pair_and_a_segment_of_every_document():
    from tuning.data import cap_training_set

    class Words:  # one token per word
        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": text.split()}

    text = [{"kind": "text", "source": f"doc{d}.md", "text": "w " * 99} for d in range(5) for _ in range(4)]
    pairs = [{"kind": "qa", "prompt": "q " * 20, "completion": "a"} for _ in range(10)]
    kept, info = cap_training_set(text + pairs, Words(), 1000, seed=0)
    assert info["capped"] and sum(ex["kind"] == "qa" for ex in kept) == 10
    assert {ex["source"] for ex in kept if ex["kind"] == "text"} == {f"doc{d}.md" for d in range(5)}
    assert info["train_tokens"] <= 1000 and info["n_text_segments_kept"] == 7  # 210 + 7 x 100 tokens
    whole, info = cap_training_set(text + pairs, Words(), 10**6, seed=0)
    assert whole == text + pairs and not info["capped"]
    tight, info = cap_training_set(text + pairs, Words(), 10, seed=0)  # every document still seen, past the cap
    assert {ex["source"] for ex in tight if ex["kind"] == "text"} == {f"doc{d}.md" for d in range(5)}


def test_the_default_cap_leaves_the_sample_training_set_whole(tiny_model_dir):
    """Counted with the tiny model's WordPiece tokenizer (SmolLM2's BPE gives a similar count for English prose)."""
    from advisor.plan import measure_work

    cfg = resolve_inputs(load_config("quickstart", [f"model.spec={tiny_model_dir}", "retrieval.embedder=hashing"]))
    work = measure_work(cfg)
    assert Path(cfg.corpus.path) == SAMPLE_CORPUS and Path(cfg.corpus.train_qa) == SAMPLE_TRAIN
    assert cfg.tuning.max_train_tokens == MAX_TRAIN_TOKENS
    assert not work.train_cap["capped"] and work.train_cap["train_tokens"] < MAX_TRAIN_TOKENS / 2


def test_the_plan_trains_at_the_speed_the_last_tune_stage_on_this_machine_ran_at(
    tiny_model_dir, tmp_path, monkeypatch, capsys
):
    from advisor.plan import (
        _train_estimate,
        calibration_key,
        calibration_path,
        measure_work,
        record_training_speed,
        train_s_per_token,
    )

    monkeypatch.setenv("ADVISOR_HOME", str(tmp_path / "home"))  # no calibration yet
    cfg = tiny_cfg(tiny_model_dir)
    examples = measure_work(cfg).train
    ran = {"tokens_seen": 10_000, "history": [{"step_s": 150.0}, {"step_s": 150.0, "val_loss": 2.0}]}  # 0.03 s a token
    assert record_training_speed(cfg, ran, "run-x") is None  # no calibration of this machine and shape yet
    path = calibration_path(calibration_key(cfg))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**FAKE_CAL, "key": calibration_key(cfg)}))
    assert record_training_speed(cfg, {"tokens_seen": 900, "history": [{"step_s": 9.0}]}, "short") is None  # too few
    # a CPU stage that had half of its two threads' time shared its cores: not this machine's speed
    shared = {**ran, "device": "cpu", "cpu_threads": 2, "history": [{**r, "cpu_s": 150.0} for r in ran["history"]]}
    assert record_training_speed(cfg, shared, "run-shared") is None and "observed_train" not in json.loads(
        path.read_text()
    )
    own = {**shared, "history": [{**r, "cpu_s": 290.0} for r in ran["history"]]}
    assert record_training_speed(cfg, own, "run-x")["s_per_token"] == pytest.approx(0.03)
    cal = json.loads(path.read_text())
    assert cal["train_s_per_token"] == FAKE_CAL["train_s_per_token"] and train_s_per_token(cal) == pytest.approx(0.03)
    s0, _, tokens, _ = _train_estimate(cfg, examples, FAKE_CAL)
    s1, _, _, _ = _train_estimate(cfg, examples, cal)
    assert s1 - s0 == pytest.approx(tokens * (0.03 - FAKE_CAL["train_s_per_token"]))
    # the plan names both rates: tokens that take gradients, and every position as a tune's progress bar counts them
    cal["observed_train"]["detached_tokens"], cal["observed_train"]["s_per_token"] = 5_000, 0.05
    path.write_text(json.dumps(cal))
    monkeypatch.chdir(tmp_path)
    assert main(["plan", *tiny_args(tiny_model_dir)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("calibration ("))
    rate = "train 100 tokens/s with gradients on text rows, 167 on question rows (20 in the last tune stage"
    assert rate in line and ": used; 33 counting every position)" in line, line


def test_the_plan_prices_validation_passes_at_their_own_recorded_speed_and_a_skipped_tune_is_not_recorded_again(
    tiny_model_dir, tmp_path, monkeypatch
):
    from advisor.plan import (
        _train_estimate,
        calibration_key,
        calibration_path,
        measure_work,
        record_training_speed,
        val_s_per_token,
    )

    monkeypatch.setenv("ADVISOR_HOME", str(tmp_path / "home"))
    cfg = tiny_cfg(tiny_model_dir)
    examples = measure_work(cfg).train
    path = calibration_path(calibration_key(cfg))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**FAKE_CAL, "key": calibration_key(cfg)}))
    # two validation passes of 2,000 tokens each, 8 s in all: 0.002 s a token
    history = [
        {"step_s": 150.0, "val_loss": 2.5, "val_s": 3.0, "val_tokens": 2000},
        {"step_s": 150.0, "val_loss": 2.0, "val_s": 5.0, "val_tokens": 2000},
    ]
    first = record_training_speed(cfg, {"tokens_seen": 10_000, "history": history}, "run-v")
    assert first["val_s_per_token"] == pytest.approx(0.002)
    cal = json.loads(path.read_text())
    assert val_s_per_token(cal) == pytest.approx(0.002) and val_s_per_token(FAKE_CAL) == FAKE_CAL["prefill_s_per_token"]
    at_prefill, _, _, _ = _train_estimate(cfg, examples, {**cal, "observed_train": {"s_per_token": 0.03}})
    at_own, _, _, _ = _train_estimate(cfg, examples, cal)
    assert at_own > at_prefill  # the recorded passes ran slower than the calibration's prefill
    # the same run again with its tune stage skipped: the record (and its date) stays as it was
    path.write_text(json.dumps({**cal, "observed_train": {**first, "at": "then"}}))
    assert record_training_speed(cfg, {"tokens_seen": 10_000, "history": history}, "run-v")["at"] == "then"
    assert json.loads(path.read_text())["observed_train"]["at"] == "then"


def test_the_plan_prices_the_vocabulary_projection_only_where_a_loss_is_taken(tiny_model_dir):
    """Text rows take a loss on every position, a question row on its answer: the calibration's pass per position
    and projection per labelled position price them apart; a recorded tune speed already mixes the two."""
    from advisor.plan import _train_estimate, labelled_positions, measure_work

    # one text segment, then instruction pairs of 40 and 600 tokens whose answers are ~6 tokens
    assert labelled_positions([300, 40, 600], 1, 6.0) == [299, 6, 6]
    assert labelled_positions([40, 3], 0, None) == [40, 3] and labelled_positions([4], 0, 6.0) == [4]
    cfg = tiny_cfg(tiny_model_dir, "tuning.prompt_grad_tokens=0")
    examples = [100, 500, 500, 100]
    every, _, tokens, _ = _train_estimate(cfg, examples, FAKE_CAL)
    answers, _, _, _ = _train_estimate(cfg, examples, FAKE_CAL, None, [6, 6, 6, 6])
    assert every - answers == pytest.approx(tokens * (1 - 24 / 1200) * FAKE_CAL["train_label_s"])
    texts, _, _, _ = _train_estimate(cfg, examples, FAKE_CAL, None, [n - 1 for n in examples])
    assert texts == pytest.approx(every, rel=0.01) and answers < texts
    seen = {**FAKE_CAL, "observed_train": {"s_per_token": 0.03}}
    assert _train_estimate(cfg, examples, seen, None, [6, 6, 6, 6]) == _train_estimate(cfg, examples, seen)
    # the tiny config's training set with its corpus text: the text segments first, then its question pairs
    work = measure_work(tiny_cfg(tiny_model_dir, "tuning.use_corpus_text=true"))
    n_text, answer = work.train_kinds["text"], round(work.answer_tokens)
    assert n_text and len(work.train) > n_text and len(work.train_labelled) == len(work.train)
    assert work.train_labelled[:n_text] == [n - 1 for n in work.train[:n_text]]
    assert work.train_labelled[n_text:] == [min(n, answer) for n in work.train[n_text:]]


def test_positions_without_gradients_are_priced_and_recorded_as_forward_only_work(
    tiny_model_dir, tmp_path, monkeypatch
):
    """tuning.prompt_grad_tokens: a RAFT example's passages run forward only; the plan prices them at the
    calibration's rate for them (a validation pass's, for a calibration without one) and a tune stage's recorded
    speed is per position that took gradients."""
    from advisor.plan import (
        _train_estimate,
        calibration_key,
        calibration_path,
        detached_positions,
        record_training_speed,
    )

    monkeypatch.setenv("ADVISOR_HOME", str(tmp_path / "home"))
    cfg = tiny_cfg(tiny_model_dir)
    assert cfg.tuning.prompt_grad_tokens == 64
    # one text segment, then instruction pairs of 40 and 600 tokens whose answers are ~6 tokens
    assert detached_positions(cfg, [300, 40, 600], 1, 6.0) == [0, 0, 600 - 6 - 64]
    assert detached_positions(tiny_cfg(tiny_model_dir, "tuning.prompt_grad_tokens=0"), [300, 600], 0, 6.0) == [0, 0]
    examples = [100, 500, 500, 100]
    cal = {**FAKE_CAL, "observed_train": {"s_per_token": 0.03, "val_s_per_token": 0.002}}
    whole, _, tokens, _ = _train_estimate(cfg, examples, cal)
    half, _, _, _ = _train_estimate(cfg, examples, cal, [0, 300, 300, 0])
    assert whole - half == pytest.approx(tokens * 600 / 1200 * (0.03 - 0.002))
    # a model whose cache is not plain keys and values (Gemma 3's sliding windows) trains every position
    assert _train_estimate(cfg, examples, {**cal, "plain_cache": False}, [0, 300, 300, 0])[0] == pytest.approx(whole)
    path = calibration_path(calibration_key(cfg))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**FAKE_CAL, "key": calibration_key(cfg)}))
    history = [  # 10,000 positions in 300 s of steps, 4,000 of them forward only; validation at 0.002 s a token
        {"step_s": 150.0, "detached_tokens": 2000, "val_loss": 2.5, "val_s": 4.0, "val_tokens": 2000},
        {"step_s": 150.0, "detached_tokens": 2000},
    ]
    seen = record_training_speed(cfg, {"tokens_seen": 10_000, "history": history}, "run-d")
    assert seen["s_per_token"] == pytest.approx((300 - 4000 * 0.002) / 6000) and seen["detached_tokens"] == 4000
    # a calibration that timed such positions (_price_detached_row) prices them, and backs them out, at its rate
    timed = {**cal, "train_detached_s_per_token": 0.005}
    assert whole - _train_estimate(cfg, examples, timed, [0, 300, 300, 0])[0] == pytest.approx(
        tokens * 600 / 1200 * (0.03 - 0.005)
    )
    path.write_text(json.dumps({**FAKE_CAL, "key": calibration_key(cfg), "train_detached_s_per_token": 0.005}))
    seen = record_training_speed(cfg, {"tokens_seen": 10_000, "history": history}, "run-e")
    assert seen["s_per_token"] == pytest.approx((300 - 4000 * 0.005) / 6000)


def test_a_plan_on_a_run_directory_counts_only_the_stages_an_earlier_attempt_left(
    tiny_model_dir, finished_tiny_run, tmp_path, monkeypatch, capsys
):
    import shutil

    from advisor import plan as plan_mod
    from advisor.report import build_report

    monkeypatch.setattr(plan_mod, "calibrate", lambda cfg, refresh=False, progress=True: dict(FAKE_CAL))
    cfg = tiny_cfg(tiny_model_dir)
    stages = planned_stages(cfg)
    assert plan_mod.done_earlier(finished_tiny_run, cfg) == stages  # a finished run: a rerun skips every stage
    part = tmp_path / "part"  # as an interrupted run leaves it: eval_tuned failed, nothing after it began
    shutil.copytree(finished_tiny_run, part)
    m = json.loads((part / "manifest.json").read_text())
    cut = stages.index("eval_tuned")
    m["stages"]["eval_tuned"]["status"] = "failed"
    for s in stages[cut + 1 :]:
        del m["stages"][s]
    (part / "manifest.json").write_text(json.dumps(m))
    assert plan_mod.done_earlier(part, cfg) == stages[:cut]

    full = plan_mod.make_plan(cfg)[0]
    assert main(["plan", *tiny_args(tiny_model_dir), "--out", str(part)]) == 0
    out = capsys.readouterr().out
    # each row: name, then its time (right-aligned, may hold single spaces: '1 min 05 s'), then peak RSS, work
    rows = dict(re.findall(r"^  (\w+) +(\S+(?: \S+)*?)  ", out, re.M))
    assert all(rows[s] == "done" for s in stages[:cut]) and all(rows[s] != "done" for s in stages[cut:])
    left = sum(s.seconds for s in full.stages if s.name in stages[cut:])
    assert rows["total"] == plan_mod.fmt_s(left) != plan_mod.fmt_s(full.total_s)
    assert f"resumes: {cut} of {len(stages)} stages were done" in out
    assert main(["plan", *tiny_args(tiny_model_dir)]) == 0  # another run directory: the whole plan
    assert "resumes:" not in capsys.readouterr().out
    _, record = plan_mod.prepare_run(cfg, part, False, yes=False, interactive=False)  # what advisor run records
    assert record["estimate"]["done_earlier"] == stages[:cut] and record["estimate"]["total_s"] == round(left, 1)
    (part / "manifest.json").write_text(json.dumps({**m, "plan": record}))
    md, _ = build_report(part)
    assert md.count("| done earlier |") == cut

    # another config, or other input files under the same paths: the run starts afresh, so all is counted
    assert plan_mod.done_earlier(part, tiny_cfg(tiny_model_dir, "eval.limit=5")) == []
    m["inputs"]["corpus"] = "another corpus"
    (part / "manifest.json").write_text(json.dumps(m))
    assert plan_mod.done_earlier(part, cfg) == []
