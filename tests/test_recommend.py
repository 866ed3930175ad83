"""Known-answer scenarios built from synthetic measurements."""

import re

import pytest

from advisor.core.errors import AdvisorError
from advisor.plain import cautions
from advisor.recommend import Evidence, recommend


def _m(v, half=0.05, n=100):
    return {"value": v, "ci95": [max(0, v - half), min(1, v + half)], "n": n}


def evidence(acc, hall, forgetting=None, build=None, lat=None, per_question=None):
    opts = list(acc)
    return Evidence(
        accuracy={o: _m(acc[o]) for o in opts},
        hallucination={o: _m(hall[o]) for o in opts},
        forgetting=forgetting or {o: 0.0 for o in opts},
        build_s=build or {"rag": 5.0, "fine-tune": 600.0, "both": 605.0},
        latency_s=lat or {"rag": 1.0, "fine-tune": 0.5, "both": 1.0},
        per_question=per_question or {},
    )


def per_q(values_by_opt):
    return {
        o: {
            "accuracy": {str(i): v for i, v in enumerate(vals)},
            "hallucination_rate": {str(i): 0.0 for i in range(len(vals))},
        }
        for o, vals in values_by_opt.items()
    }


def test_novel_changing_facts_favour_rag():
    # Ovadia et al. 2023: retrieval beats fine-tuning on new knowledge; the facts change weekly.
    ev = evidence(
        {"rag": 0.70, "fine-tune": 0.20, "both": 0.68},
        {"rag": 0.10, "fine-tune": 0.60, "both": 0.12},
        forgetting={"rag": 0.0, "fine-tune": -0.04, "both": -0.04},
    )
    rec = recommend(ev, facts={"knowledge_change": "weekly"})
    assert rec["verdict"] == "rag"
    assert rec["reasons"] and all(any(ch.isdigit() for ch in r) for r in rec["reasons"])
    assert rec["sensitivity"]["win_share"]["rag"] > 0.5


def test_a_style_only_training_teaches_favours_fine_tune_or_both():
    ev = evidence({"rag": 0.50, "fine-tune": 0.52, "both": 0.60}, {"rag": 0.2, "fine-tune": 0.2, "both": 0.15})
    rec = recommend(ev, facts={"style_learning": True, "knowledge_change": "static"})
    assert rec["verdict"] in ("fine-tune", "both")


def test_no_significant_difference_picks_the_cheaper_option():
    # 'both' is slightly better on paper, but per question it is indistinguishable from rag.
    vals = [1.0, 0.0] * 20
    ev = evidence(
        {"rag": 0.50, "fine-tune": 0.10, "both": 0.60},
        {"rag": 0.20, "fine-tune": 0.6, "both": 0.18},
        build={"rag": 5.0, "fine-tune": 6.0, "both": 11.0},
        lat={"rag": 1.0, "fine-tune": 1.0, "both": 1.0},
        per_question=per_q({"rag": vals, "fine-tune": [0.0] * 40, "both": vals[1:] + vals[:1]}),
    )
    # targets both options meet, so the first reason is the equivalence, not 'no option is fit for purpose'
    rec = recommend(ev, preset="accuracy-first", targets={"accuracy": 0.4, "hallucination_rate": 0.3})
    assert rec["fit_for_purpose"]["any_fit"]
    assert rec["utilities"]["both"] > rec["utilities"]["rag"]
    assert rec["verdict"] == "rag"
    assert rec["no_significant_difference"]["applied"] is True
    assert "No significant difference" in rec["reasons"][0]
    # the win shares apply the same rule: 'both' never wins over an equivalent cheaper rag
    assert rec["sensitivity"]["win_share"]["both"] == 0 and rec["sensitivity"]["win_share"]["rag"] > 0.5


def test_citations_required_rule_out_fine_tune():
    ev = evidence(
        {"rag": 0.40, "fine-tune": 0.45, "both": 0.30},
        {"rag": 0.2, "fine-tune": 0.2, "both": 0.3},
        build={"rag": 5, "fine-tune": 5, "both": 10},
        lat={"rag": 1, "fine-tune": 1, "both": 1},
    )
    free = recommend(ev, facts={"knowledge_change": "static"})
    cited = recommend(ev, facts={"knowledge_change": "static", "citations_required": True}, weights={"citations": 0.3})
    assert free["verdict"] == "fine-tune" and cited["verdict"] != "fine-tune"


def test_flip_points_really_flip_the_verdict():
    ev = evidence(
        {"rag": 0.55, "fine-tune": 0.50, "both": 0.45},
        {"rag": 0.2, "fine-tune": 0.2, "both": 0.2},
        build={"rag": 100, "fine-tune": 60, "both": 160},
        lat={"rag": 1, "fine-tune": 1, "both": 1},
    )
    rec = recommend(ev, facts={"knowledge_change": "static"})
    flips = {c: f for c, f in rec["sensitivity"]["flip_points"].items() if f}
    assert flips, "a close call must have a flip point"
    c, f = next(iter(flips.items()))
    w = {k: v for k, v in rec["weights"].items()}
    rest = 1 - w[c]
    w2 = {k: (f["flips_at"] if k == c else v * (1 - f["flips_at"]) / rest) for k, v in w.items()}
    assert recommend(ev, weights=w2, facts={"knowledge_change": "static"})["verdict"] == f["new_verdict"]
    assert abs(sum(rec["sensitivity"]["win_share"].values()) - 1) < 1e-6


@pytest.mark.parametrize(
    "kwargs, msg",
    [
        ({"preset": "fast"}, "unknown weight preset 'fast'"),
        ({"weights": {"acuracy": 1}}, "did you mean 'accuracy'"),
        (
            {
                "weights": {
                    k: 0
                    for k in [
                        "accuracy",
                        "hallucination",
                        "forgetting",
                        "build_cost",
                        "serve_cost",
                        "freshness",
                        "citations",
                        "style",
                    ]
                }
            },
            "all weights are zero",
        ),
        ({"weights": {"accuracy": -1}}, ">= 0"),
        ({"facts": {"knowledge_chnage": "daily"}}, "did you mean 'knowledge_change'"),
        ({"facts": {"knowledge_change": "hourly"}}, "must be one of"),
    ],
)
def test_bad_weights_and_facts(kwargs, msg):
    ev = evidence(
        {"rag": 0.5, "fine-tune": 0.4},
        {"rag": 0.1, "fine-tune": 0.2},
        build={"rag": 1, "fine-tune": 2},
        lat={"rag": 1, "fine-tune": 1},
    )
    with pytest.raises(AdvisorError, match=msg):
        recommend(ev, **kwargs)


# ---------------------------------------------------------------- fit for purpose against quality targets


def _rag_ahead():
    """rag 20% accurate and 83% hallucinating, fine-tune 10% / 90%, both 15% / 85%: nothing near the defaults."""
    return evidence({"rag": 0.20, "fine-tune": 0.10, "both": 0.15}, {"rag": 0.83, "fine-tune": 0.90, "both": 0.85})


def test_fit_for_purpose_reads_each_target_by_its_ci_as_meets_misses_or_cannot_tell():
    ev = evidence({"rag": 0.70, "fine-tune": 0.20, "both": 0.62}, {"rag": 0.10, "fine-tune": 0.15, "both": 0.12})
    fit = recommend(ev, targets={"accuracy": 0.6, "hallucination_rate": 0.2})["fit_for_purpose"]
    assert fit["targets"] == {"accuracy": 0.6, "hallucination_rate": 0.2}
    rag, ft, both = fit["options"]["rag"], fit["options"]["fine-tune"], fit["options"]["both"]
    assert rag["accuracy"] == {"value": 0.70, "ci95": pytest.approx([0.65, 0.75]), "target": 0.6, "status": "meets"}
    assert rag["hallucination_rate"]["status"] == "meets" and rag["fit"] == "meets"
    assert ft["accuracy"]["status"] == "misses" and ft["fit"] == "misses"
    # both: 62% [57, 67] straddles 60%; hallucination 12% [7, 17] is below 20%
    assert both["accuracy"]["status"] == "cannot tell" and both["fit"] == "cannot tell"
    assert fit["any_fit"] is True and fit["statement"].startswith("Fit for purpose: RAG meets the targets")
    assert fit["points_to"] == []
    assert fit["best"] == "rag"  # the option the dashboard holds against the targets


def _rag_cheap_but_short_of_the_targets():
    """Measured shape (records corpus, a 270M model, one record in the prompt): RAG 79% accurate and 20%
    hallucinating, Fine-tune + RAG 94% and 4.8% but 40x longer to build, so the balanced utility prefers RAG."""
    return evidence(
        {"rag": 0.79, "fine-tune": 0.09, "both": 0.94},
        {"rag": 0.20, "fine-tune": 0.93, "both": 0.048},
        build={"rag": 60.0, "fine-tune": 2446.0, "both": 2506.0},
        lat={"rag": 1.0, "fine-tune": 0.5, "both": 1.1},
    )


def test_an_option_that_misses_a_target_is_not_advised_over_one_that_meets_them():
    rec = recommend(_rag_cheap_but_short_of_the_targets())  # default targets: accuracy >= 80%, hallucination <= 10%
    assert rec["utilities"]["rag"] > rec["utilities"]["both"]
    assert rec["verdict"] == "both"
    assert rec["fit_first"] == {
        "applied": True,
        "best_by_utility": "rag",
        "fit": ["both"],
        "short_of": {"accuracy": "cannot tell", "hallucination_rate": "misses"},
    }
    assert rec["margin"] < 0  # the verdict's utility lead over the best other option
    assert rec["reasons"][0].startswith(
        "Fit for purpose first: RAG has the highest utility (0.858 vs 0.847) but does not meet the quality targets "
        "(accuracy 79.0% [74.0, 84.0] against at least 80%, too close to tell; hallucination 20.0% [15.0, 25.0] "
        "against at most 10%); Fine-tune + RAG meets every target (accuracy 94.0% [89.0, 99.0], hallucination "
        "4.8% [0.0, 9.8]), so Fine-tune + RAG is advised."
    )
    # other weights choose among the options that meet the targets only, so nothing flips it to RAG
    assert rec["sensitivity"]["win_share"] == {"rag": 0.0, "fine-tune": 0.0, "both": 1.0}
    assert all(f is None for f in rec["sensitivity"]["flip_points"].values())
    assert rec["stability"]["why"].endswith(
        "the weights choose among the options that meet the quality targets (Fine-tune + RAG)"
    )


@pytest.mark.parametrize(
    "targets",
    [{"accuracy": 0.99}, {"accuracy": 0.5, "hallucination_rate": 0.3}],
    ids=["none-meets", "both-retrieval-options-meet"],
)
def test_when_the_utilitys_choice_meets_the_targets_or_nothing_does_the_utility_decides(targets):
    rec = recommend(_rag_cheap_but_short_of_the_targets(), targets=targets)
    assert rec["verdict"] == "rag" and rec["fit_first"] == {"applied": False}
    assert rec["margin"] > 0 and not rec["reasons"][0].startswith("Fit for purpose first")


def test_the_plain_reasons_and_the_report_say_when_the_targets_overrode_the_utility():
    from advisor.plain import main_reasons
    from advisor.report import stability_detail

    rec = recommend(_rag_cheap_but_short_of_the_targets())
    assert main_reasons(rec)[0] == (
        "RAG scored higher on the weighted criteria, but it does not meet the quality targets and "
        "Fine-tune + RAG does, so Fine-tune + RAG is advised."
    )
    assert "; by utility RAG leads Fine-tune + RAG by 0.011, but it does not meet the quality targets and " in (
        stability_detail(rec)
    )


def test_hallucination_target_is_met_only_when_the_whole_ci_is_below_it():
    ev = evidence(
        {"rag": 0.9, "fine-tune": 0.9},
        {"rag": 0.08, "fine-tune": 0.30},
        build={"rag": 1, "fine-tune": 2},
        lat={"rag": 1, "fine-tune": 1},
    )
    opts = recommend(ev, targets={"accuracy": 0.5})["fit_for_purpose"]["options"]
    assert opts["rag"]["hallucination_rate"]["status"] == "cannot tell"  # 8% [3, 13] against 10%
    assert opts["fine-tune"]["hallucination_rate"]["status"] == "misses"  # 30% [25, 35]


def test_when_no_option_is_fit_the_first_reason_says_so_with_the_numbers_and_the_verdict_stays():
    rec = recommend(_rag_ahead(), facts={"knowledge_change": "weekly"})
    fit = rec["fit_for_purpose"]
    assert fit["any_fit"] is False and fit["options"]["rag"]["fit"] == "misses"
    assert rec["reasons"][0] == fit["statement"]
    assert fit["statement"].startswith(
        "No option is fit for purpose: the most accurate, RAG, answers 20.0% [15.0, 25.0] of questions correctly "
        "against a target of 80% (misses), and hallucinates on 83.0% [78.0, 88.0] against at most 10% (misses)."
    )
    assert rec["verdict"] == "rag" and fit["best"] == "rag"


def test_an_option_that_may_meet_the_targets_is_not_called_unfit():
    ev = evidence(
        {"rag": 0.80, "fine-tune": 0.30},
        {"rag": 0.08, "fine-tune": 0.5},
        build={"rag": 1, "fine-tune": 2},
        lat={"rag": 1, "fine-tune": 1},
    )
    fit = recommend(ev)["fit_for_purpose"]
    assert fit["options"]["rag"]["fit"] == "cannot tell"
    assert fit["statement"].startswith("No option is shown to be fit for purpose")
    assert "too wide to tell with 100 questions: more evaluation questions" in fit["statement"]


@pytest.mark.parametrize(
    "recall, said, not_said",
    [
        (
            1.0,
            "retrieval puts the right source in the top 3 for 100.0% of questions, yet RAG answers only 20.0% "
            "correctly, so the generator is the bottleneck: a larger base model",
            "better retrieval",
        ),
        (
            0.4,
            "retrieval puts the right source in the top 3 for only 40.0% of questions: better retrieval (chunking, "
            "embedder, hybrid search) comes first",
            "generator is the bottleneck",
        ),
    ],
)
def test_retrieval_recall_decides_whether_the_evidence_points_to_the_generator_or_to_retrieval(recall, said, not_said):
    ev = _rag_ahead()
    ev.retrieval = {"rag": {"recall_at_k": _m(recall)}, "both": {"recall_at_k": _m(recall)}}
    ev.retrieval_k = 3
    fit = recommend(ev)["fit_for_purpose"]
    assert said in fit["points_to"]
    assert not any(not_said in p for p in fit["points_to"])
    assert said in fit["statement"]


def test_fine_tuning_barely_above_the_base_model_points_to_data_or_a_larger_model():
    ev = _rag_ahead()
    ev.base_accuracy = _m(0.05)
    points = recommend(ev)["fit_for_purpose"]["points_to"]
    assert (
        "fine-tuning adds little of the knowledge the base model lacks (Fine-tune answers 10.0%, the base model closed "
        "book 5.0%: +5.0 pts): more or better training data, or a larger base model"
    ) in points
    ev.base_accuracy = _m(0.0)
    ev.accuracy["fine-tune"] = _m(0.45)  # a real gain of 45 points: that line would be false
    assert not any("adds little of the knowledge" in p for p in recommend(ev)["fit_for_purpose"]["points_to"])


def test_whether_the_adapter_learnt_its_own_training_questions_decides_what_fine_tunings_shortfall_points_to():
    from advisor.plain import training_sentence

    ev = _rag_ahead()
    ev.base_accuracy = _m(0.05)
    fit = {"step": 60, "train_accuracy": 0.075, "n": 40, "domain_accuracy": 0.0, "n_questions": 40, "learnt": False}
    ev.training_fit = fit
    rec = recommend(ev)
    said = next(p for p in rec["fit_for_purpose"]["points_to"] if "adds little of the knowledge" in p)
    assert said.endswith(
        "+5.0 pts): its adapter answers only 7.5% of the questions it was trained on (n=40), so it has not learnt "
        "them yet: train longer or at a higher learning rate (tuning.epochs, tuning.lr) before judging fine-tuning"
    )
    assert rec["training_fit"] == fit
    assert training_sentence(rec).startswith(
        "The adapter behind Fine-tune and Fine-tune + RAG answers only 8% of the questions it was trained on (n=40)"
    )
    # learnt by heart, not carried to the evaluation's wording: more varied data, and no flip from more training
    ev.training_fit = fit | {"train_accuracy": 0.95, "learnt": True}
    rec = recommend(ev)
    said = next(p for p in rec["fit_for_purpose"]["points_to"] if "adds little of the knowledge" in p)
    assert said.endswith(
        "its adapter answers 95.0% of the questions it was trained on (n=40) but 10.0% of the evaluation's (n=100), "
        "so it learnt them without generalising to new wording: more varied training data (several phrasings of "
        "each fact), or a larger base model"
    )
    assert training_sentence(rec) == ""


def test_facts_unknown_to_the_base_model_that_fine_tuning_does_not_learn_point_to_data():
    ev = _rag_ahead()
    ev.accuracy["fine-tune"] = _m(0.40)
    ev.base_accuracy = _m(0.05)  # +35 points overall, all of it on facts the base model partly knew
    ev.knowledge = {"counts": {"known": 10, "maybe_known": 20, "unknown": 70}}
    ev.by_knowledge = {"fine-tune": {"unknown": {"n": 70, "accuracy": _m(0.03)}}}
    points = recommend(ev)["fit_for_purpose"]["points_to"]
    assert any(
        p.startswith(
            "fine-tuning adds little of the knowledge the base model lacks (the base model does not know "
            "70.0% of the facts asked and Fine-tune answers 3.0% of those (n=70))"
        )
        for p in points
    )


def test_no_abstention_anywhere_points_to_teaching_it_and_bare_citations_point_to_the_prompt():
    ev = _rag_ahead()
    ev.abstention = {o: _m(0.0) for o in ev.accuracy}
    ev.bare_citation = {"rag": _m(0.38), "both": _m(0.01)}
    points = recommend(ev)["fit_for_purpose"]["points_to"]
    assert (
        "RAG answers 38.0% of questions with a bare citation marker instead of an answer, so its accuracy "
        "understates what retrieval can do: the base model does not follow the retrieval prompt's "
        "answer-then-citation form; judge retrieval with a larger base model (--model)"
    ) in points
    assert not any(p.startswith("Fine-tune + RAG answers") for p in points)
    assert any(p.startswith("no option abstains on unanswerable questions (at most 0.0%)") for p in points)
    ev.abstention["fine-tune"] = _m(0.4)
    assert not any("no option abstains" in p for p in recommend(ev)["fit_for_purpose"]["points_to"])


@pytest.mark.parametrize(
    "targets, msg",
    [
        ({"acuracy": 0.5}, "unknown quality target 'acuracy' (did you mean 'accuracy'?)"),
        ({"hallucination": 0.2}, "did you mean 'hallucination_rate'"),
        ({"accuracy": 80}, "quality target accuracy=80 must be a share between 0 and 1"),
        ({"hallucination_rate": "lots"}, "quality target hallucination_rate=lots must be a share between 0 and 1"),
        ({"accuracy": -0.1}, "must be a share between 0 and 1"),
    ],
)
def test_bad_targets_name_what_is_wrong(targets, msg):
    with pytest.raises(AdvisorError, match=re.escape(msg)):
        recommend(_rag_ahead(), targets=targets)


# ---------------------------------------------------------------- collapse, abstention, known vs unknown facts


def _collapsed_fine_tune(accuracy=0.05):
    ev = evidence({"rag": 0.40, "fine-tune": accuracy, "both": 0.30}, {"rag": 0.5, "fine-tune": 0.9, "both": 0.6})
    ev.collapse = {
        "fine-tune": {
            "collapsed": True,
            "top_answer": "1.",
            "top_share": 0.45,
            "empty_share": 0.0,
            "n": 100,
            "reason": "45% of its answers are the same string '1.'",
        },
        "rag": {"collapsed": False, "top_answer": "x", "top_share": 0.02, "empty_share": 0.0, "n": 100, "reason": ""},
    }
    return ev


def test_a_collapsed_arm_is_named_in_plain_words_and_its_scores_are_not_its_capability():
    ev = _collapsed_fine_tune()
    for d in (ev.accuracy, ev.hallucination, ev.forgetting, ev.build_s, ev.latency_s):
        d.pop("both")  # rag against the collapsed fine-tune alone
    rec = recommend(
        ev, preset="accuracy-first", facts={"knowledge_change": "static"}, weights={"build_cost": 0, "serve_cost": 0}
    )
    assert rec["collapsed"] == ["fine-tune"] and rec["verdict"] == "rag"
    assert (
        "Fine-tune: 45% of its answers are the same string '1.' — the training run collapsed, so its scores "
        "measure a failed run, not what fine-tuning can do."
    ) in rec["reasons"]
    assert rec["fit_for_purpose"]["points_to"][0] == (
        "the fine-tuning run collapsed (Fine-tune: 45% of its answers are the same string '1.'); fix the training "
        "data before judging fine-tuning"
    )
    # every reason that quotes fine-tune's accuracy or hallucination says it measures a failed run
    quoted = [r for r in rec["reasons"] if "Fine-tune 5.0%" in r or "Fine-tune 90.0%" in r]
    assert quoted and all("Fine-tune collapsed: its score measures a failed run" in r for r in quoted)
    assert "collapsed" in rec["separation"]["why"]


def test_a_collapsed_retrieval_arm_points_to_a_larger_base_model_not_to_its_training_data():
    ev = _collapsed_fine_tune(accuracy=0.2)
    ev.collapse["rag"] = {**ev.collapse.pop("fine-tune"), "reason": "45% of its answers are the same string '[1]'"}
    points = recommend(ev)["fit_for_purpose"]["points_to"]
    assert points[0] == (
        "RAG's answers are degenerate (45% of its answers are the same string '[1]'): the base model does not "
        "follow the retrieval prompt; judge retrieval with a larger base model (--model)"
    )
    assert not any("training data" in p for p in points)


def test_the_option_held_against_the_targets_is_the_most_accurate_that_did_not_collapse():
    fit = recommend(_collapsed_fine_tune(accuracy=0.55))["fit_for_purpose"]
    assert "the most accurate, RAG, answers 40.0%" in fit["statement"]


def test_a_run_without_collapse_data_names_no_collapsed_option():
    rec = recommend(_rag_ahead())
    assert rec["collapsed"] == [] and not any("collapsed" in r for r in rec["reasons"])
    assert rec["collapsed_seeds"] == {} and not any("seed" in c for c in cautions(rec))


def test_a_training_seed_that_collapsed_is_said_though_the_first_seed_did_not():
    ev = _rag_ahead()
    ev.seed_collapse = {"fine-tune": [(2, "10", 0.26)]}
    rec = recommend(ev)
    assert rec["collapsed"] == [] and rec["collapsed_seeds"] == {"fine-tune": [2]}
    assert (
        "Fine-tune: trained again with another seed, its answers collapsed (seed 2: 26% of them are '10') — the "
        "training recipe fails on some draws; the scores above are the first seed's."
    ) in rec["reasons"]
    assert "Fine-tune's training collapsed with seed 2: another training run may fail the same way" in " ".join(
        cautions(rec)
    )


def test_buying_abstention_with_false_abstention_is_not_rewarded():
    # fine-tune hallucinates less (30% vs 50%) only because it refuses 40% of the answerable questions
    ev = evidence(
        {"rag": 0.5, "fine-tune": 0.3},
        {"rag": 0.5, "fine-tune": 0.3},
        build={"rag": 1, "fine-tune": 1},
        lat={"rag": 1, "fine-tune": 1},
    )
    ev.false_abstention = {"rag": _m(0.02), "fine-tune": _m(0.40)}
    ev.abstention = {"rag": _m(0.0), "fine-tune": _m(0.60)}
    rec = recommend(ev)
    assert rec["scores"]["fine-tune"]["hallucination"] == pytest.approx(1 - 0.3 - 0.4)
    assert rec["scores"]["rag"]["hallucination"] == pytest.approx(1 - 0.5 - 0.02)
    assert rec["scores"]["fine-tune"]["hallucination"] < rec["scores"]["rag"]["hallucination"]
    said = [r for r in rec["reasons"] if r.startswith("Abstention:")]
    assert (
        len(said) == 1
        and "Fine-tune abstains on 60.0% [55.0, 65.0] of unanswerable questions but also refuses "
        "40.0% [35.0, 45.0] of answerable ones"
        in said[0]
    )
    assert "RAG abstains" not in said[0] and "RAG refuses" not in said[0]  # 2% false abstention is not worth a line
    ev.false_abstention = {}
    assert not any(r.startswith("Abstention:") for r in recommend(ev)["reasons"])


def _by_knowledge(acc: dict[str, float], n: dict[str, int]) -> dict:
    return {
        g: {"n": n[g], "accuracy": _m(v, n=n[g]), "hallucination_rate": _m(1 - v, n=n[g]), "f1": _m(v, n=n[g])}
        for g, v in acc.items()
    }


N_GROUPS = {"known": 10, "maybe_known": 30, "unknown": 40}


def test_fine_tuning_that_helped_only_on_partly_known_facts_is_said_so():
    ev = _rag_ahead()
    ev.by_knowledge = {
        "base": _by_knowledge({"known": 0.9, "maybe_known": 0.1, "unknown": 0.0}, N_GROUPS),
        "fine-tune": _by_knowledge({"known": 0.9, "maybe_known": 0.4, "unknown": 0.02}, N_GROUPS),
    }
    said = [r for r in recommend(ev)["reasons"] if r.startswith("Known vs unknown facts:")]
    assert said == [
        "Known vs unknown facts: fine-tuning helped only on facts the base model already partly knew "
        "(maybe_known +30.0 pts over the base model, n=30; unknown +2.0 pts, n=40): it did not teach the "
        "facts the base model lacks."
    ]
    # an even gain on both groups is not 'only on partly known facts'
    ev.by_knowledge["fine-tune"] = _by_knowledge({"known": 0.9, "maybe_known": 0.4, "unknown": 0.3}, N_GROUPS)
    assert not any(r.startswith("Known vs unknown facts:") for r in recommend(ev)["reasons"])
    # nor is a gap measured on a handful of questions
    tiny = {"known": 2, "maybe_known": 3, "unknown": 4}
    ev.by_knowledge = {
        "base": _by_knowledge({"known": 0.9, "maybe_known": 0.0, "unknown": 0.0}, tiny),
        "fine-tune": _by_knowledge({"known": 0.9, "maybe_known": 0.67, "unknown": 0.0}, tiny),
    }
    assert not any(r.startswith("Known vs unknown facts:") for r in recommend(ev)["reasons"])


def test_a_tuned_gain_that_rests_on_eval_questions_worded_like_training_questions_is_said_so():
    """Measured shape (SQuAD's articles, generated eval and training questions from the same sentences, 8 epochs):
    the tuned arm answers 72% of the 64 eval questions worded like a training question and 37.5% of the 16 others."""
    ev = _rag_ahead()
    ev.by_wording = {
        "base": _by_knowledge({"close": 0.02, "new": 0.0}, {"close": 64, "new": 16}),
        "fine-tune": _by_knowledge({"close": 0.72, "new": 0.375}, {"close": 64, "new": 16}),
        "both": _by_knowledge({"close": 0.30, "new": 0.25}, {"close": 64, "new": 16}),
    }
    said = [r for r in recommend(ev)["reasons"] if r.startswith("Wording:")]
    assert said == [
        "Wording: on the 64 eval questions worded like a question its adapter was trained on (at least half their "
        "word 4-grams in one) Fine-tune gains +70.0 pts over the base model, on the 16 worded otherwise +37.5 pts: "
        "part of its gain is recall of trained wording; questions worded the users' own way should expect the "
        "smaller figure."
    ]  # both gains +28 and +25: no gap worth a reason
    # no worded-otherwise questions to measure: said so, with what would tell
    ev.wording = {"counts": {"close": 78, "new": 2}}
    ev.by_wording = {o: {"close": g["close"]} | ({"new": {**g["new"], "n": 2}}) for o, g in ev.by_wording.items()}
    said = [r for r in recommend(ev)["reasons"] if r.startswith("Wording:")]
    assert len(said) == 2 and "only 2 are worded otherwise, too few to measure" in said[0]
    assert said[0].endswith("add eval questions worded unlike the training questions (written by a person) to tell.")
    # an even gain, a collapsed arm or the base model's own groups give no reason
    ev.by_wording["fine-tune"] = _by_knowledge({"close": 0.05, "new": 0.05}, {"close": 64, "new": 16})
    ev.by_wording["both"] = _by_knowledge({"close": 0.40, "new": 0.35}, {"close": 64, "new": 16})
    ev.collapse = {"both": {"collapsed": True, "reason": "45% of its answers are the same string '1.'"}}
    assert not any(r.startswith("Wording:") for r in recommend(ev)["reasons"])


def test_rag_answering_the_facts_the_base_model_does_not_know_is_said_so():
    ev = _rag_ahead()
    ev.by_knowledge = {
        "rag": _by_knowledge({"unknown": 0.5}, N_GROUPS),
        "fine-tune": _by_knowledge({"unknown": 0.05}, N_GROUPS),
    }
    said = [r for r in recommend(ev)["reasons"] if r.startswith("On the 40 facts the base model does not know")]
    assert said and "RAG answers 50.0% [45.0, 55.0] correctly vs Fine-tune 5.0%" in said[0]
    assert said[0].endswith("retrieval supplies what the model does not know.")


# ---------------------------------------------------------------- how sure: stability and separation


def test_detectable_difference_is_the_paired_mcnemar_approximation():
    from advisor.recommend import detectable_difference

    a = [1.0] * 10 + [0.0] * 10 + [1.0] * 80  # 20 of 100 questions answered correctly by only one
    b = [0.0] * 10 + [1.0] * 10 + [1.0] * 80
    mde, disc, floored = detectable_difference(a, b)
    assert disc == 0.2 and not floored
    assert mde == pytest.approx((1.959964 + 0.841621) * (0.2 / 100) ** 0.5, rel=1e-5)
    mde, disc, floored = detectable_difference([1.0] * 50, [1.0] * 50)  # no discordance: 1/n stands in
    assert disc == 0 and floored and mde == pytest.approx(2.801585 / 50, rel=1e-5)


def test_separation_says_whether_the_paired_ci_excludes_zero():
    clear = per_q({"rag": [1.0] * 30 + [0.0] * 10, "fine-tune": [0.0] * 40})
    ev = evidence(
        {"rag": 0.75, "fine-tune": 0.0},
        {"rag": 0.2, "fine-tune": 0.9},
        build={"rag": 1, "fine-tune": 2},
        lat={"rag": 1, "fine-tune": 1},
        per_question=clear,
    )
    sep = recommend(ev)["separation"]
    assert set(sep) >= {"separated", "why", "detectable_difference_pts", "difference_pts", "below_detectable"}
    assert sep["separated"] is True and sep["difference_pts"] == 75.0 and sep["below_detectable"] is False
    assert sep["runner_up"] == "fine-tune"
    # 30 of 40 discordant: (1.96 + 0.84) * sqrt(0.75 / 40) = 38.4 pts
    assert sep["detectable_difference_pts"] == pytest.approx(38.4, abs=0.05)
    assert "the CI excludes 0" in sep["why"] and "40 questions can detect a difference of 38.4 pts" in sep["why"]


def test_a_verdict_the_data_show_less_accurate_than_the_runner_up_says_so_in_every_view():
    from advisor.plain import how_sure
    from advisor.recommend import separation
    from ui.advice import separation_badge

    # rag cheaper, fine-tune right on 15 more of 40 questions: separated, but against the verdict
    worse = per_q({"rag": [1.0] * 5 + [0.0] * 35, "fine-tune": [1.0] * 20 + [0.0] * 20})
    ev = evidence(
        {"rag": 0.125, "fine-tune": 0.5},
        {"rag": 0.5, "fine-tune": 0.5},
        build={"rag": 1, "fine-tune": 600},
        lat={"rag": 1, "fine-tune": 1},
        per_question=worse,
    )
    sep = separation(ev, "rag", "fine-tune")
    assert sep["separated"] is True and sep["difference_pts"] == -37.5
    assert sep["why"].endswith(
        "; the data favour Fine-tune on accuracy, so the advice rests on the other criteria, not on accuracy"
    )
    rec = {"verdict": "rag", "utilities": {"rag": 0.55, "fine-tune": 0.54}, "separation": sep}
    rec["stability"] = {"level": "medium", "why": "x"}
    line = how_sure(rec)
    assert "The measurements separate it from Fine-tune, which answers 38 points more questions correctly: the " in line
    assert "rests on the other criteria, not on accuracy." in line
    assert separation_badge(sep) == ":orange-badge[the data favour the runner-up on accuracy]"
    ahead = separation(ev, "fine-tune", "rag")  # the other way round: separated in the verdict's favour
    assert ahead["difference_pts"] == 37.5 and "the data favour" not in ahead["why"]
    assert separation_badge(ahead) == ":green-badge[separated by the data]"


def test_a_verdict_resting_on_a_difference_below_the_detectable_one_is_flagged():
    # rag wins on cost; its accuracy is one question in 40 ahead of fine-tune's
    close = per_q({"rag": [1.0] * 11 + [0.0] * 29, "fine-tune": [1.0] * 10 + [0.0] * 30})
    ev = evidence(
        {"rag": 0.275, "fine-tune": 0.25},
        {"rag": 0.5, "fine-tune": 0.5},
        build={"rag": 1, "fine-tune": 600},
        lat={"rag": 1, "fine-tune": 1},
        per_question=close,
    )
    rec = recommend(ev)
    sep = rec["separation"]
    assert rec["verdict"] == "rag"
    assert sep["separated"] is False and sep["below_detectable"] is True
    assert sep["difference_pts"] == 2.5 and sep["detectable_difference_pts"] == pytest.approx(7.0, abs=0.05)
    assert "the CI includes 0, so the data do not separate them" in sep["why"]
    assert "1/n stands in" not in sep["why"]


def test_stability_is_the_win_share_and_flip_point_rule_recorded_with_the_advice():
    rec = recommend(_rag_ahead(), facts={"knowledge_change": "weekly"})
    st = rec["stability"]
    assert set(st) == {"level", "why"} and st["level"] in ("high", "medium", "low")
    share = rec["sensitivity"]["win_share"]["rag"]
    assert st["why"].startswith(f"wins under {100 * share:.0f}% of 10,000 random weightings")
    from advisor.recommend import stability_of

    assert stability_of(rec) == st  # recomputable from the saved sensitivity analysis


@pytest.mark.parametrize(
    "share, flip, equivalent, level",
    [
        (0.80, 0.30, False, "high"),
        (0.75, None, False, "high"),  # no single weight change flips it
        (0.80, 0.03, False, "medium"),  # a flip within 0.05 lowers it by one
        (0.80, 0.30, True, "medium"),  # so does advice made on 'no significant difference'
        (0.60, 0.30, False, "medium"),
        (0.50, 0.05, False, "low"),
        (0.30, 0.30, False, "low"),
        (0.30, 0.01, True, "low"),  # never below low
    ],
)
def test_stability_levels_follow_the_win_share_and_the_nearest_flip(share, flip, equivalent, level):
    from advisor.recommend import stability_of

    flips = {"accuracy": None, "build_cost": {"change": -flip} if flip is not None else None}
    rec = {
        "verdict": "rag",
        "sensitivity": {"win_share": {"rag": share, "both": 1 - share}, "flip_points": flips, "draws": 10_000},
        "no_significant_difference": {"applied": equivalent},
    }
    st = stability_of(rec)
    assert st["level"] == level
    assert st["why"].startswith(f"wins under {100 * share:.0f}% of 10,000 random weightings")
    assert (f"flips it is {flip:.2f}" in st["why"]) if flip is not None else ("no single weight" in st["why"])
    assert ("not significant" in st["why"]) is equivalent
    assert stability_of({"verdict": "rag"})["level"] == "unknown"


def test_a_flip_to_an_option_no_better_than_the_base_model_says_so():
    # The re-scored quickstart of 2026-12-06: fine-tune answers 0 of 80, the base model 1, rag 16; the advice
    # turns to fine-tune if serving cost weighs more (it is the fastest), which a reader must be told.
    from advisor.plain import flip_sentences

    n = 80
    base = [1.0] + [0.0] * (n - 1)
    vals = {"rag": [1.0] * 16 + [0.0] * (n - 16), "fine-tune": [0.0] * n, "both": [1.0] * 22 + [0.0] * (n - 22)}
    ev = evidence(
        {"rag": 0.20, "fine-tune": 0.0, "both": 0.275},
        {"rag": 0.83, "fine-tune": 0.99, "both": 0.77},
        build={"rag": 7.0, "fine-tune": 303.0, "both": 303.0},
        lat={"rag": 1.1, "fine-tune": 0.2, "both": 1.0},
        per_question=per_q(vals),
    )
    ev.base_per_question = {str(i): v for i, v in enumerate(base)}
    rec = recommend(ev, facts={"knowledge_change": "monthly"})
    gains = rec["over_base"]
    assert gains["fine-tune"]["above"] is False and gains["fine-tune"]["difference_pts"] == -1.2
    assert gains["rag"]["above"] and gains["both"]["above"] and gains["rag"]["n"] == n
    flips = [f for f in rec["sensitivity"]["flip_points"].values() if f]
    assert any(f["new_verdict"] == "fine-tune" for f in flips), flips
    said, _ = flip_sentences(rec)
    to_ft = [s for s in said if "**Fine-tune**" in s]
    assert to_ft and all("no more accurate than the base model alone (-1.2 pts" in s for s in to_ft)
    assert not any("base model" in s for s in said if s not in to_ft)
    # without the base arm's per-question scores nothing is claimed
    ev.base_per_question = {}
    rec = recommend(ev, facts={"knowledge_change": "monthly"})
    assert rec["over_base"] == {} and not any("base model" in s for s in flip_sentences(rec)[0])


def test_the_advice_resamples_its_paired_differences_as_the_metrics_table_does(tmp_path):
    """A difference the report shows twice (the paired table from metrics.json; 'separated by the data' and 'over
    the base model' in the advice) has one CI: the advice takes metrics.json's bootstrap resamples and seed."""
    import json
    import shutil
    from pathlib import Path

    from advisor.core.arms import ARM_OF_OPTION
    from advisor.recommend import load_evidence, separation

    fixture = Path(__file__).parent / "fixtures" / "rundirs" / "sample-fixture"
    metrics = json.loads((fixture / "eval" / "metrics.json").read_text())
    ev = load_evidence(fixture)
    assert ev.bootstrap == (metrics["bootstrap"]["resamples"], metrics["bootstrap"]["seed"]) == (1000, 0)
    over = recommend(ev, "balanced")["over_base"]
    for option in ("rag", "fine-tune"):
        table = metrics["paired"][f"{ARM_OF_OPTION[option]} - base"]["accuracy"]["ci95"]
        assert over[option]["ci95_pts"] == [round(100 * x, 1) for x in table], option
    mirrored = 0
    for a, b in [(a, b) for a in ev.accuracy for b in ev.accuracy if a != b]:
        key = f"{ARM_OF_OPTION[a]} - {ARM_OF_OPTION[b]}"
        if key in metrics["paired"]:  # the advice's b - a is the table's a - b, mirrored
            lo, hi = metrics["paired"][key]["accuracy"]["ci95"]
            why = separation(ev, b, a)["why"]
            assert f"(95% CI [{-100 * hi:+.1f}, {-100 * lo:+.1f}]" in why, (key, why)
            mirrored += 1
    assert mirrored == 3  # tuned - rag, tuned_rag - rag, tuned_rag - tuned (base is no option)
    # a run whose metrics.json resampled otherwise gives the advice that bootstrap
    run = Path(shutil.copytree(fixture, tmp_path / "run"))
    metrics["bootstrap"] = {"resamples": 200, "seed": 7, "method": "percentile"}
    (run / "eval" / "metrics.json").write_text(json.dumps(metrics))
    assert load_evidence(run).bootstrap == (200, 7)
