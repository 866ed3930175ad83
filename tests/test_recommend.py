"""Known-answer scenarios built from synthetic measurements."""

import pytest

from advisor.core.errors import AdvisorError
from advisor.recommend import Evidence, recommend


def _m(v, half=0.05, n=100):
    return {"value": v, "ci95": [max(0, v - half), min(1, v + half)], "n": n}


def evidence(acc, hall, forgetting=None, build=None, lat=None, per_question=None):
    opts = list(acc)
    return Evidence(
        accuracy={o: _m(acc[o]) for o in opts}, hallucination={o: _m(hall[o]) for o in opts},
        forgetting=forgetting or {o: 0.0 for o in opts},
        build_s=build or {"rag": 5.0, "fine-tune": 600.0, "both": 605.0},
        latency_s=lat or {"rag": 1.0, "fine-tune": 0.5, "both": 1.0},
        per_question=per_question or {},
    )


def per_q(values_by_opt):
    return {o: {"accuracy": {str(i): v for i, v in enumerate(vals)}, "hallucination_rate": {str(i): 0.0 for i in range(len(vals))}}
            for o, vals in values_by_opt.items()}


def test_novel_changing_facts_favour_rag():
    # Ovadia et al. 2023: retrieval beats fine-tuning on new knowledge; the facts change weekly.
    ev = evidence({"rag": 0.70, "fine-tune": 0.20, "both": 0.68}, {"rag": 0.10, "fine-tune": 0.60, "both": 0.12},
                  forgetting={"rag": 0.0, "fine-tune": -0.04, "both": -0.04})
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
    ev = evidence({"rag": 0.50, "fine-tune": 0.10, "both": 0.60}, {"rag": 0.20, "fine-tune": 0.6, "both": 0.18},
                  build={"rag": 5.0, "fine-tune": 6.0, "both": 11.0}, lat={"rag": 1.0, "fine-tune": 1.0, "both": 1.0},
                  per_question=per_q({"rag": vals, "fine-tune": [0.0] * 40, "both": vals[1:] + vals[:1]}))
    rec = recommend(ev, preset="accuracy-first")
    assert rec["utilities"]["both"] > rec["utilities"]["rag"]
    assert rec["verdict"] == "rag"
    assert rec["no_significant_difference"]["applied"] is True
    assert "No significant difference" in rec["reasons"][0]
    # the win shares apply the same rule: 'both' never wins over an equivalent cheaper rag
    assert rec["sensitivity"]["win_share"]["both"] == 0 and rec["sensitivity"]["win_share"]["rag"] > 0.5


def test_citations_required_rule_out_fine_tune():
    ev = evidence({"rag": 0.40, "fine-tune": 0.45, "both": 0.30}, {"rag": 0.2, "fine-tune": 0.2, "both": 0.3},
                  build={"rag": 5, "fine-tune": 5, "both": 10}, lat={"rag": 1, "fine-tune": 1, "both": 1})
    free = recommend(ev, facts={"knowledge_change": "static"})
    cited = recommend(ev, facts={"knowledge_change": "static", "citations_required": True}, weights={"citations": 0.3})
    assert free["verdict"] == "fine-tune" and cited["verdict"] != "fine-tune"


def test_flip_points_really_flip_the_verdict():
    ev = evidence({"rag": 0.55, "fine-tune": 0.50, "both": 0.45}, {"rag": 0.2, "fine-tune": 0.2, "both": 0.2},
                  build={"rag": 100, "fine-tune": 60, "both": 160}, lat={"rag": 1, "fine-tune": 1, "both": 1})
    rec = recommend(ev, facts={"knowledge_change": "static"})
    flips = {c: f for c, f in rec["sensitivity"]["flip_points"].items() if f}
    assert flips, "a close call must have a flip point"
    c, f = next(iter(flips.items()))
    w = {k: v for k, v in rec["weights"].items()}
    rest = 1 - w[c]
    w2 = {k: (f["flips_at"] if k == c else v * (1 - f["flips_at"]) / rest) for k, v in w.items()}
    assert recommend(ev, weights=w2, facts={"knowledge_change": "static"})["verdict"] == f["new_verdict"]
    assert abs(sum(rec["sensitivity"]["win_share"].values()) - 1) < 1e-6


@pytest.mark.parametrize("kwargs, msg", [
    ({"preset": "fast"}, "unknown weight preset 'fast'"),
    ({"weights": {"acuracy": 1}}, "did you mean 'accuracy'"),
    ({"weights": {k: 0 for k in ["accuracy", "hallucination", "forgetting", "build_cost", "serve_cost", "freshness",
                                  "citations", "style"]}}, "all weights are zero"),
    ({"weights": {"accuracy": -1}}, ">= 0"),
    ({"facts": {"knowledge_chnage": "daily"}}, "did you mean 'knowledge_change'"),
    ({"facts": {"knowledge_change": "hourly"}}, "must be one of"),
])
def test_bad_weights_and_facts(kwargs, msg):
    ev = evidence({"rag": 0.5, "fine-tune": 0.4}, {"rag": 0.1, "fine-tune": 0.2},
                  build={"rag": 1, "fine-tune": 2}, lat={"rag": 1, "fine-tune": 1})
    with pytest.raises(AdvisorError, match=msg):
        recommend(ev, **kwargs)
