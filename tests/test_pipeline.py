"""The pipeline wiring end to end on tiny fakes: a random 2-layer Llama (real PEFT LoRA training,
real generation), the hashing embedder (real FAISS index), the 20-document test corpus."""

import json

import pytest

from advisor.core.arms import OPTION_LABEL
from advisor.core.config import load_config
from advisor.pipeline import run_pipeline, tracks_overlap
from evalsuite.collapse import detect_collapse


def tiny_config(tiny_model_dir, tiny_corpus, tiny_qa, tiny_train_qa, *extra):
    return load_config(
        "smoke",
        [
            f"corpus.path={tiny_corpus}",
            f"corpus.qa={tiny_qa}",
            f"corpus.train_qa={tiny_train_qa}",
            f"model.spec={tiny_model_dir}",
            "model.quantization=none",
            "model.max_new_tokens=4",
            "retrieval.embedder=hashing",
            "chunking.size=40",
            "chunking.overlap=8",
            "retrieval.context_tokens=200",
            "tuning.max_steps=2",
            "eval.limit=8",
            "eval.probe_limit=3",
            "eval.batch_size=8",
            *extra,
        ],
    )


@pytest.fixture
def finished_run(tmp_path, tiny_model_dir, tiny_corpus, tiny_qa, tiny_train_qa):
    cfg = tiny_config(tiny_model_dir, tiny_corpus, tiny_qa, tiny_train_qa)
    return run_pipeline(cfg, tmp_path / "run"), cfg


def test_run_directory_holds_every_artifact_per_the_contracts(finished_run):
    run, cfg = finished_run
    for rel in [
        "config.yaml",
        "manifest.json",
        "chunks.jsonl",
        "index/index.faiss",
        "index/index_config.json",
        "sft/train.jsonl",
        "sft/val.jsonl",
        "sft/leakage.json",
        "adapter/adapter_config.json",
        "adapter/adapter_model.safetensors",
        "adapter/training.json",
        "eval/metrics.json",
        "recommendation.json",
        "report.md",
    ] + [f"eval/{a}.jsonl" for a in ("base", "rag", "tuned", "tuned_rag")]:
        assert (run / rel).exists(), rel
    metrics = json.loads((run / "eval/metrics.json").read_text())
    for arm in ("base", "rag", "tuned", "tuned_rag"):
        for m in ("exact_match", "f1", "abstention_rate", "hallucination_rate"):
            v = metrics["arms"][arm][m]
            assert set(v) == {"value", "ci95", "n"} and v["ci95"][0] <= v["value"] <= v["ci95"][1] and v["n"] > 0
    for arm in ("tuned", "tuned_rag"):
        assert "forgetting" in metrics["arms"][arm]
    assert "recall_at_k" in metrics["arms"]["rag"] and "recall_at_k" not in metrics["arms"]["base"]
    assert metrics["arms"]["base"]["f1"]["n"] == 7 and metrics["arms"]["base"]["abstention_rate"]["n"] == 1
    rec = json.loads((run / "recommendation.json").read_text())
    assert rec["verdict"] in ("rag", "fine-tune", "both")
    assert (
        set(rec["utilities"]) == {"rag", "fine-tune", "both"} and rec["reasons"] and "flip_points" in rec["sensitivity"]
    )
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["wall_s"] > 0 and manifest["versions"]["torch"]
    # a training set is given: no qa stage (generated unanswerable questions are trained only with
    # tuning.abstain_questions=any)
    assert "qa" not in manifest["stages"]
    for name in (
        "ingest",
        "index",
        "sft",
        "tune",
        "eval_base",
        "eval_rag",
        "eval_tuned",
        "eval_tuned_rag",
        "known",
        "probes",
        "curve",
        "metrics",
        "recommend",
    ):
        st = manifest["stages"][name]
        assert st["status"] == "done" and st["wall_s"] >= 0 and st["peak_rss_mb"] > 0, name
    if not tracks_overlap(cfg):  # a CPU with no core to spare (threads=0): the index ended before the tune track began
        assert manifest["stages"]["index"]["ended"] <= manifest["stages"]["sft"]["started"]
    report = (run / "report.md").read_text()
    assert f"Verdict: **{OPTION_LABEL[rec['verdict']]}**" in report and "What would flip the advice" in report
    rows = [json.loads(x) for x in (run / "eval/rag.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and all(r["contexts"] for r in rows) and all("latency_s" in r for r in rows)
    # the retrieval gate is calibrated on the training questions; ten are too few, so it is off and says why
    gate = json.loads((run / "eval/gate.json").read_text())
    assert gate["threshold"] is None and "10 answerable training questions" in gate["why"]
    assert gate["source"].endswith("train.jsonl") and not any(r["gated"] for r in rows)
    for arm in ("base", "rag", "tuned", "tuned_rag"):
        c = metrics["collapse"][arm]
        assert c["n"] == 8 and isinstance(c["collapsed"], bool) and c["reason"]
        assert metrics["arms"][arm]["bare_citation_rate"]["n"] == 8


def test_known_stage_sorts_answerable_questions_by_what_the_base_model_knows(
    finished_run, tiny_model_dir, tiny_corpus, tiny_qa, tiny_train_qa
):
    """eval/knowledge.jsonl: one row per answerable question, greedy = the base arm's saved answer, 4 samples;
    metrics.json splits every arm by it. Its own settings rerun only it, never the arms."""
    run, _ = finished_run
    base = {r["id"]: r for r in map(json.loads, (run / "eval/base.jsonl").read_text().splitlines())}
    rows = [json.loads(x) for x in (run / "eval/knowledge.jsonl").read_text().splitlines()]
    assert len(rows) == 7 and {r["id"] for r in rows} == {i for i, r in base.items() if not r["unanswerable"]}
    for r in rows:
        assert set(r) == {"id", "group", "greedy", "greedy_correct", "samples", "samples_correct"}
        assert len(r["samples"]) == 4 and r["greedy"] == base[r["id"]]["answer"]  # the base arm's answer, reused
        assert r["greedy_correct"] == (base[r["id"]]["scores"]["accuracy"] == 1.0)
        assert r["group"] == ("known" if r["greedy_correct"] else "maybe_known" if r["samples_correct"] else "unknown")
    metrics = json.loads((run / "eval/metrics.json").read_text())
    k = metrics["knowledge"]
    assert (k["samples"], k["temperature"]) == (4, 0.7) and sum(k["counts"].values()) == 7 and k["method"]
    for arm in ("base", "rag", "tuned", "tuned_rag"):
        bk = metrics["arms"][arm]["by_knowledge"]
        assert sum(g["n"] for g in bk.values()) == 7 and all(g["accuracy"]["n"] == g["n"] for g in bk.values())
    before = json.loads((run / "manifest.json").read_text())["stages"]
    # rows written before they kept the greedy answer, grouped by another correctness rule: the next run groups
    # them again from the base arm's answer and the kept samples, without sampling again
    stale = [{k: v for k, v in r.items() if k != "greedy"} | {"group": "known", "greedy_correct": True} for r in rows]
    (run / "eval/knowledge.jsonl").write_text("".join(json.dumps(r) + "\n" for r in stale))
    run_pipeline(finished_run[1], run)
    assert [json.loads(x) for x in (run / "eval/knowledge.jsonl").read_text().splitlines()] == rows
    assert json.loads((run / "manifest.json").read_text())["stages"]["known"]["ended"] == before["known"]["ended"]
    run_pipeline(tiny_config(tiny_model_dir, tiny_corpus, tiny_qa, tiny_train_qa, "eval.known_samples=2"), run)
    after = json.loads((run / "manifest.json").read_text())["stages"]
    assert after["known"]["ended"] != before["known"]["ended"]
    assert all(
        after[f"eval_{a}"]["ended"] == before[f"eval_{a}"]["ended"] for a in ("base", "rag", "tuned", "tuned_rag")
    )
    assert all(len(json.loads(x)["samples"]) == 2 for x in (run / "eval/knowledge.jsonl").read_text().splitlines())
    run_pipeline(tiny_config(tiny_model_dir, tiny_corpus, tiny_qa, tiny_train_qa, "eval.known_samples=0"), run)
    metrics = json.loads((run / "eval/metrics.json").read_text())
    assert "knowledge" not in metrics and "by_knowledge" not in metrics["arms"]["base"]


def test_metrics_split_every_arm_by_whether_its_questions_are_worded_like_a_training_question(finished_run):
    """metrics.json `wording`: the answerable eval questions against every question in the adapters' training files;
    a question copied into the training file counts as close, and only runs with a tuned arm are split."""
    from advisor.core.qa import load_qa
    from advisor.pipeline import eval_wording

    run, cfg = finished_run
    items = load_qa(cfg.corpus.eval_file(run))
    metrics = json.loads((run / "eval/metrics.json").read_text())
    trained = {
        r["question"] for r in map(json.loads, (run / "sft/train.jsonl").read_text().splitlines()) if "question" in r
    }
    w = metrics["wording"]
    assert w["training_questions"] == len(trained) and sum(w["counts"].values()) == 7 and w["threshold"] == 0.5
    for arm in ("base", "rag", "tuned", "tuned_rag"):
        assert sum(g["n"] for g in metrics["arms"][arm]["by_wording"].values()) == 7
    answerable = [it for it in items if not it.unanswerable]
    got = eval_wording(run, ["base", "tuned"], items)
    assert [r["id"] for r in got["rows"]] == [it.id for it in answerable]
    with (run / "sft/train.jsonl").open("a") as f:  # an eval question's wording, trained on
        f.write(json.dumps({"kind": "qa", "question": answerable[0].question + " Say it briefly."}) + "\n")
    rows = eval_wording(run, ["base", "tuned"], items)["rows"]
    assert rows[0]["group"] == "close" and rows[0]["overlap"] == 1.0
    assert eval_wording(run, ["base", "rag"], items) is None  # no arm answers with the adapter


def test_rerun_skips_finished_stages_and_a_changed_setting_reruns_only_what_depends_on_it(
    finished_run, tiny_model_dir, tiny_corpus, tiny_qa, tiny_train_qa
):
    run, cfg = finished_run
    before = json.loads((run / "manifest.json").read_text())["stages"]
    run_pipeline(cfg, run)
    after = json.loads((run / "manifest.json").read_text())["stages"]
    for name in ("ingest", "index", "tune", "eval_base", "eval_rag", "known", "probes"):
        assert after[name]["ended"] == before[name]["ended"], f"{name} ran again"
    cfg2 = tiny_config(tiny_model_dir, tiny_corpus, tiny_qa, tiny_train_qa, "retrieval.top_k=2")
    run_pipeline(cfg2, run)
    again = json.loads((run / "manifest.json").read_text())["stages"]
    assert again["tune"]["ended"] == before["tune"]["ended"]  # tuning does not depend on retrieval
    assert again["eval_base"]["ended"] == before["eval_base"]["ended"]
    assert again["known"]["ended"] == before["known"]["ended"]  # the base model's knowledge needs no index
    assert again["eval_rag"]["ended"] != before["eval_rag"]["ended"]
    run_pipeline(
        tiny_config(
            tiny_model_dir, tiny_corpus, tiny_qa, tiny_train_qa, "retrieval.top_k=2", "retrieval.abstain_gate=0.1"
        ),
        run,
    )
    gated = json.loads((run / "manifest.json").read_text())["stages"]
    assert gated["index"]["ended"] == again["index"]["ended"]  # the gate is applied at answer time: same index
    assert (
        gated["eval_rag"]["ended"] != again["eval_rag"]["ended"]
        and gated["eval_base"]["ended"] == before["eval_base"]["ended"]
    )
    assert json.loads((run / "eval/gate.json").read_text())["share"] == 0.1
    # settings no answer depends on (the metrics stage's bootstrap and confidence) answer no question again
    extra = ("retrieval.top_k=2", "retrieval.abstain_gate=0.1", "eval.bootstrap=200", "eval.confidence=0.7")
    run_pipeline(tiny_config(tiny_model_dir, tiny_corpus, tiny_qa, tiny_train_qa, *extra), run)
    rescored = json.loads((run / "manifest.json").read_text())["stages"]
    answered = [k for k in gated if k.startswith("eval_") or k == "known"]
    assert len(answered) >= 4 and all(rescored[k]["ended"] == gated[k]["ended"] for k in answered)
    assert json.loads((run / "eval/metrics.json").read_text())["bootstrap"]["resamples"] == 200


def test_the_arms_answer_hash_follows_the_products_dtype_and_ignores_what_no_answer_depends_on(monkeypatch):
    """pipeline._answers_hash: on a float32 machine the quickstart's arms keep the hash they had before
    model.cpu_matmul_dtype existed (ed1669e71fd0c4d5, computed by main a03955f); where it resolves to bfloat16 the
    arms answer again. Settings only other stages use leave it as it is; the answers' own settings change it."""
    import advisor.core.embedders as embedders
    from advisor.pipeline import _answers_hash

    monkeypatch.setattr(embedders, "cpu_has_bf16", lambda: False)
    f32 = _answers_hash(load_config("quickstart"))
    assert f32 == "ed1669e71fd0c4d5" == _answers_hash(load_config("quickstart", ["model.cpu_matmul_dtype=float32"]))
    monkeypatch.setattr(embedders, "cpu_has_bf16", lambda: True)
    assert _answers_hash(load_config("quickstart")) != f32
    assert _answers_hash(load_config("quickstart", ["model.cpu_matmul_dtype=float32"])) == f32
    for other in (
        "eval.bootstrap=200",
        "eval.confidence=0.9",
        "eval.curve_questions=10",
        "eval.curve_probe_items=5",
        "eval.probe_limit=20",
        "eval.perplexity_texts=0",
        "eval.embedder=none",
        "eval.arms=[base,rag]",
        "eval.known_samples=0",
        "eval.curve_train_questions=0",
    ):
        assert _answers_hash(load_config("quickstart", ["model.cpu_matmul_dtype=float32", other])) == f32, other
    for own in ("eval.limit=10", "eval.batch_size=8", "model.max_new_tokens=16"):
        assert _answers_hash(load_config("quickstart", ["model.cpu_matmul_dtype=float32", own])) != f32, own


def test_a_stage_a_stopped_attempt_left_running_is_dropped_when_the_run_no_longer_needs_it(finished_run):
    """Stopped in tune_seed2 of a tuning.seeds=3 run, resumed with the default single seed: the finished run is
    finished, not 'interrupted' in tune_seed2; a drill's record (another command's stage) is kept."""
    from ui.rundata import run_info

    run, cfg = finished_run
    manifest = json.loads((run / "manifest.json").read_text())
    dead = {"status": "running", "started": "2026-01-01T00:00:00+00:00", "inputs_hash": "x", "pid": 2**22 + 7}
    manifest["stages"]["tune_seed2"] = dead
    (run / "manifest.json").write_text(json.dumps(manifest))
    assert run_info(run).status == "interrupted"  # as it showed before the rerun dropped it
    manifest["stages"]["drill"] = dict(dead, status="failed")
    (run / "manifest.json").write_text(json.dumps(manifest))
    run_pipeline(cfg, run)
    stages = json.loads((run / "manifest.json").read_text())["stages"]
    assert "tune_seed2" not in stages and stages["drill"]["status"] == "failed"
    assert "(seed 2)" not in (run / "report.md").read_text()  # nor does the report list it as running
    assert run_info(run).status == "failed" and "drill" in run_info(run).detail  # the drill's failure still shows
    del stages["drill"]
    (run / "manifest.json").write_text(
        json.dumps({**json.loads((run / "manifest.json").read_text()), "stages": stages})
    )
    assert run_info(run).status == "done"


def test_a_second_seed_and_the_learning_curve_are_measured(
    tmp_path, tiny_model_dir, tiny_corpus, tiny_qa, tiny_train_qa
):
    import torch

    from advisor.core.lm import LM
    from advisor.curve import adapter_weights, snapshots

    cfg = tiny_config(tiny_model_dir, tiny_corpus, tiny_qa, tiny_train_qa, "tuning.seeds=2")
    run = run_pipeline(cfg, tmp_path / "run")
    stages = json.loads((run / "manifest.json").read_text())["stages"]
    for name in ("tune_seed1", "eval_tuned_seed1", "eval_tuned_rag_seed1", "curve"):
        assert stages[name]["status"] == "done", name
    # the second seed: its own adapter, every eval question answered again, the spread next to the CI
    metrics = json.loads((run / "eval/metrics.json").read_text())
    for arm in ("tuned", "tuned_rag"):
        spread = metrics["arms"][arm]["seed_spread"]
        assert spread["seeds"] == [0, 1] and len(spread["accuracy"]) == 2
        assert spread["accuracy"][0] == round(metrics["arms"][arm]["accuracy"]["value"], 4)
        assert abs(spread["mean"] - sum(spread["accuracy"]) / 2) < 1e-4
        # every seed's answers go through the collapse guard; the first seed's finding is the arm's own
        guard = metrics["collapse"][arm]
        assert [spread["top_share"][0], spread["collapsed"][0]] == [guard["top_share"], guard["collapsed"]]
        seed1 = [json.loads(x)["answer"] for x in (run / f"eval/seeds/{arm}.seed-1.jsonl").read_text().splitlines()]
        assert spread["top_share"][1] == detect_collapse(seed1)["top_share"] and len(spread["collapsed"]) == 2
        assert len((run / f"eval/seeds/{arm}.seed-1.jsonl").read_text().splitlines()) == 8
    # an extra seed's saved answers are rescored with the arms' on every run (here: scores of another rule)
    path = run / "eval/seeds/tuned.seed-1.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    wrong = [r | {"scores": {k: 1.0 - v if k == "accuracy" else v for k, v in r["scores"].items()}} for r in rows]
    path.write_text("".join(json.dumps(r) + "\n" for r in wrong))
    run_pipeline(cfg, run)
    assert [json.loads(x)["scores"] for x in path.read_text().splitlines()] == [r["scores"] for r in rows]
    again = json.loads((run / "eval/metrics.json").read_text())["arms"]["tuned"]["seed_spread"]
    assert again["accuracy"] == metrics["arms"]["tuned"]["seed_spread"]["accuracy"]
    a0 = (run / "adapter/adapter_model.safetensors").read_bytes()
    assert a0 != (run / "adapter_seeds/seed-1/adapter_model.safetensors").read_bytes()
    # the curve: base model (step 0), the snapshot at step 1, the final adapter (the tuned arm's own answers)
    training = json.loads((run / "adapter/training.json").read_text())
    curve = json.loads((run / "eval/curve.json").read_text())
    assert training["curve_snapshots"] == [1] and [p["step"] for p in curve["points"]] == [0, 1, training["steps"]]
    assert all(0 <= p["domain_accuracy"] <= 1 and 0 <= p["probe_accuracy"] <= 1 for p in curve["points"])
    assert curve["points"][0]["n_questions"] == 7 and curve["points"][0]["n_probe"] == 3  # 7 answerable of eval.limit=8
    assert curve["used"]["step"] == training["steps"] and "fixed before any evaluation" in curve["used"]["why"]
    # every point answers the adapter's own closed-book training questions; the advice reads the last one
    trained = [
        r["id"] for r in map(json.loads, (run / "sft/train.jsonl").read_text().splitlines()) if r["kind"] == "qa"
    ]
    assert trained and all(p["n_train_questions"] == min(40, len(trained)) for p in curve["points"][1:])
    assert all(0 <= p["train_accuracy"] <= 1 for p in curve["points"][1:])
    assert "train_accuracy" not in curve["points"][0]  # the base model: its closed-book accuracy is the base arm's
    fit = json.loads((run / "recommendation.json").read_text())["training_fit"]
    last = curve["points"][-1]
    assert [fit["step"], fit["train_accuracy"], fit["n"]] == [last["step"], last["train_accuracy"], len(trained)]
    assert fit["learnt"] == (last["train_accuracy"] >= 0.5)
    # fewer training questions: the curve measures again, every arm keeps its answers
    before = json.loads((run / "manifest.json").read_text())["stages"]
    run_pipeline(tiny_config(tiny_model_dir, tiny_corpus, tiny_qa, tiny_train_qa, "tuning.seeds=2",
                             "eval.curve_train_questions=2"), run)  # fmt: skip
    after = json.loads((run / "manifest.json").read_text())["stages"]
    assert all(after[f"eval_{a}"]["ended"] == before[f"eval_{a}"]["ended"] for a in ("base", "rag", "tuned"))
    assert after["curve"]["ended"] != before["curve"]["ended"]
    assert [p.get("n_train_questions") for p in json.loads((run / "eval/curve.json").read_text())["points"]] == [
        None,
        2,
        2,
    ]
    run_pipeline(cfg, run)  # back to the default, measured again for what follows
    # the validation loss of the points where training measured it (tiny_config: at the end only)
    assert curve["points"][-1]["val_loss"] == round(training["final_val_loss"], 4)
    assert "val_loss" not in curve["points"][1]
    base = [json.loads(x) for x in (run / "eval/base.jsonl").read_text().splitlines()]
    ids = [r["id"] for r in base if not r["unanswerable"]][:7]
    by_id = {r["id"]: r for r in base}
    assert curve["points"][0]["domain_accuracy"] == round(sum(by_id[i]["scores"]["accuracy"] for i in ids) / 7, 4)
    # measured again over saved answers whose scores are of another rule: its ends score the answers afresh
    for arm in ("base", "tuned"):
        rows = [json.loads(x) for x in (run / f"eval/{arm}.jsonl").read_text().splitlines()]
        flip = [r | {"scores": {k: 1.0 - v if k == "accuracy" else v for k, v in r["scores"].items()}} for r in rows]
        (run / f"eval/{arm}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in flip))
    (run / "eval/curve.json").unlink()
    run_pipeline(cfg, run)
    again = json.loads((run / "eval/curve.json").read_text())["points"]
    assert [again[0]["domain_accuracy"], again[-1]["domain_accuracy"]] == [
        curve["points"][0]["domain_accuracy"],
        curve["points"][-1]["domain_accuracy"],
    ]
    # a snapshot's weights are swapped into the evaluation model and the final ones put back
    lm = LM.load(cfg.model.spec, "none", adapter=str(run / "adapter"))
    x = torch.tensor([[5, 17, 42, 99]])
    with torch.no_grad():
        final = lm.model(x).logits
        [(step, folder)] = snapshots(run / "adapter")
        with adapter_weights(lm, folder):
            mid = lm.model(x).logits
        again = lm.model(x).logits
    assert not torch.allclose(final, mid) and torch.equal(final, again)


def test_the_curves_training_questions_are_the_trained_closed_book_ones_in_training_order(tmp_path):
    from advisor.core.qa import QAItem
    from advisor.curve import training_slice

    def item(i, unanswerable=False):
        return QAItem(id=i, question=f"q {i}?", answers=[] if unanswerable else [f"a {i}"], unanswerable=unanswerable)

    rows = [
        {"kind": "text", "id": "doc.md#0"},
        {"kind": "qa", "id": "t3"},
        {"kind": "raft", "id": "t1"},  # in context: not a closed-book training question
        {"kind": "qa", "id": "t1"},
        {"kind": "qa", "id": "t3"},  # twice in the data, once in the slice
        {"kind": "abstain", "id": "t9"},
        {"kind": "qa", "id": "t7"},  # not in the training file: nothing to score it against
        {"kind": "qa", "id": "t2"},
    ]
    (tmp_path / "sft").mkdir()
    (tmp_path / "sft/train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "sft/val.jsonl").write_text(json.dumps({"kind": "qa", "id": "t4"}) + "\n")  # held out
    items = [item("t1"), item("t2"), item("t3"), item("t4"), item("t9", unanswerable=True)]
    assert [it.id for it in training_slice(tmp_path, items, 10)] == ["t3", "t1", "t2"]
    assert [it.id for it in training_slice(tmp_path, items, 2)] == ["t3", "t1"]
    assert training_slice(tmp_path / "elsewhere", items, 10) == []  # no training data: nothing to answer


def test_a_separate_adapter_for_both_is_trained_on_passages_and_used_by_the_tuned_rag_arm(
    tmp_path, tiny_model_dir, tiny_corpus, tiny_qa, tiny_train_qa
):
    from advisor.arms import WithAdapterWeights, make_arm

    cfg = tiny_config(
        tiny_model_dir, tiny_corpus, tiny_qa, tiny_train_qa, "tuning.both_adapter=separate", "tuning.curve_points=0"
    )
    run = run_pipeline(cfg, tmp_path / "run")
    stages = json.loads((run / "manifest.json").read_text())["stages"]
    assert stages["tune_both"]["status"] == "done" and (run / "adapter_both/adapter_model.safetensors").is_file()
    kinds = {json.loads(x)["kind"] for x in (run / "sft/both/train.jsonl").read_text().splitlines()}
    main_kinds = {json.loads(x)["kind"] for x in (run / "sft/train.jsonl").read_text().splitlines()}
    assert kinds <= {"text", "raft"} and "raft" in kinds and "raft" not in main_kinds
    assert isinstance(make_arm("tuned_rag", cfg, object(), object(), run_dir=run), WithAdapterWeights)
    assert not isinstance(make_arm("tuned_rag", cfg, object(), object()), WithAdapterWeights)
    rec = json.loads((run / "recommendation.json").read_text())
    both = stages["index"]["wall_s"] + stages["tune_both"]["wall_s"] + stages["sft"]["wall_s"]
    assert abs(rec["evidence"]["build_s"]["both"] - both) < 1e-6  # both's build counts its own adapter
    assert "Two adapters" in json.loads((run / "adapter/training.json").read_text())["both_adapter"]


def test_the_adapter_loads_with_peft(finished_run, tiny_model_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    run, _ = finished_run
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), run / "adapter")
    assert any("lora_A" in n for n, _ in model.named_parameters())
    info = json.loads((run / "adapter/training.json").read_text())
    assert info["steps"] == 2 and info["tokens_seen"] > 0 and info["history"][-1]["val_loss"] is not None
    # the validation pass is timed, for the plans after this run (advisor/plan.py val_s_per_token)
    assert info["history"][-1]["val_s"] > 0 and info["history"][-1]["val_tokens"] > 0
    # the tune's process was started under mimalloc (tuning.allocator auto on a CPU), so glibc's threshold is unset
    assert info["allocator"] == "libmimalloc.so"
    assert (info["low_memory_heap"], info["heap_mmap_threshold"]) == (False, 0)


@pytest.mark.parametrize(
    "cores, threads, device, overlap",
    [(2, 0, "cpu", False), (16, 0, "cpu", False), (2, 1, "cpu", True), (8, 8, "cpu", False), (2, 0, "cuda", True)],
)
def test_the_two_tracks_overlap_only_with_a_gpu_or_a_core_left_for_the_index(
    monkeypatch, cores, threads, device, overlap
):
    import advisor.core.models

    monkeypatch.setattr("os.cpu_count", lambda: cores)
    monkeypatch.setattr(advisor.core.models, "default_device", lambda: device)
    assert tracks_overlap(load_config("smoke", [f"threads={threads}"])) is overlap
