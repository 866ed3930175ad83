import numpy as np
import pytest

from evalsuite.metrics import (
    MRR,
    Abstention,
    Containment,
    ExactMatch,
    Hallucination,
    RecallAtK,
    Sample,
    TokenF1,
    is_abstention,
    normalize_answer,
)
from evalsuite.stats import paired_difference, summarize


def test_squad_normalisation_and_scores():
    assert normalize_answer("The  Cat, sat!") == "cat sat"
    s = Sample("q", ["14 days", "fourteen days"], prediction="Within 14 days.")
    assert ExactMatch().score(s).value == 0.0
    assert TokenF1().score(s).value == pytest.approx(0.8)  # p=2/3, r=1
    assert Containment().score(s).value == 1.0
    assert ExactMatch().score(Sample("q", ["14 days"], prediction="14 Days")).value == 1.0


@pytest.mark.parametrize(
    "text, expected",
    [
        ("I don't know.", True),
        ("I do not know", True),
        ("", True),
        ("The context does not mention it.", True),
        ("That information is not provided.", True),
        ("14 days", False),
        ("Ingrid Hallvard", False),
    ],
)
def test_abstention_detection(text, expected):
    assert is_abstention(text) is expected


def test_hallucination_and_abstention_apply_to_the_right_questions():
    una = Sample("q", [], prediction="42 pounds", unanswerable=True)
    assert Abstention().score(una).value == 0.0 and Hallucination().score(una).value == 1.0
    assert ExactMatch().score(una).value is None
    una_ok = Sample("q", [], prediction="I don't know.", unanswerable=True)
    assert Abstention().score(una_ok).value == 1.0 and Hallucination().score(una_ok).value == 0.0
    wrong = Sample("q", ["Oslo"], prediction="Paris")
    right = Sample("q", ["Oslo"], prediction="Oslo")
    assert Hallucination().score(wrong).value == 1.0 and Hallucination().score(right).value == 0.0
    assert Abstention().score(right).value is None


def test_retrieval_metrics():
    s = Sample("q", ["x"], source="b.md", context_sources=["a.md", "b.md", "b.md"])
    assert RecallAtK().score(s).value == 1.0 and MRR().score(s).value == 0.5
    miss = Sample("q", ["x"], source="z.md", context_sources=["a.md"])
    assert RecallAtK().score(miss).value == 0.0 and MRR().score(miss).value == 0.0
    assert MRR().score(Sample("q", ["x"], source="a.md")).value is None  # closed-book arm: not applicable


def test_bootstrap_ci_brackets_the_mean_and_narrows_with_n():
    rng = np.random.default_rng(1)
    small = summarize(list(rng.integers(0, 2, 20)), 1000, 0)
    big = summarize(list(rng.integers(0, 2, 2000)), 1000, 0)
    for m in (small, big):
        assert m["ci95"][0] <= m["value"] <= m["ci95"][1]
    assert big["ci95"][1] - big["ci95"][0] < small["ci95"][1] - small["ci95"][0]
    assert summarize([0.1, 0.2, 0.3, 0.9], 200, 0, q=50)["value"] == pytest.approx(0.25)


def test_paired_difference_detects_a_real_gap_and_not_a_null_one():
    a = [1.0] * 40 + [0.0] * 10
    b = [0.0] * 40 + [0.0] * 10
    d = paired_difference(a, b, 1000, 0)
    assert d["value"] == pytest.approx(0.8) and d["ci95"][0] > 0 and d["p_value"] < 0.01
    same = paired_difference([1, 0, 1, 0], [1, 0, 1, 0], 500, 0)
    assert same["value"] == 0 and same["p_value"] == 1.0


def test_a_right_answer_wrapped_in_a_sentence_is_correct_not_a_hallucination():
    from evalsuite.metrics import Accuracy

    s = Sample("q", ["212"], prediction="The answer to this question is: 212")
    assert ExactMatch().score(s).value == 0.0 and TokenF1().score(s).value < 0.5
    assert Accuracy().score(s).value == 1.0 and Hallucination().score(s).value == 0.0
    assert Accuracy().score(Sample("q", ["212"], prediction="213")).value == 0.0


# Answers the arms gave in real runs (the sample, the short records, SQuAD articles), with their gold answers.
@pytest.mark.parametrize(
    "prediction, gold, right",
    [
        ("12 days", ["27 days", "27"], False),  # the right unit, the wrong number: token F1 0.5
        ("10 working days", ["2 working days", "2"], False),
        ("1880 years.", ["6000 years", "6000"], False),
        ("Director of Finance", ["Director of People"], False),  # F1 0.67, a word of the answer replaced
        ("Kenya National Schools", ["Kenya National Library Service"], False),
        ("2016.", ["20 November 2016"], False),  # the year of a date: its day left out
        ("10:00", ["10:00 to 15:00"], False),
        ("£150", ["£1.50"], False),  # a decimal point is not punctuation to drop
        ("£1.50 a month", ["£1.50"], True),
        ("1842 complaints", ["1,842"], True),  # a thousands separator is
        ("27", ["27 days"], True),  # shortened, the number kept
        ("26 weeks", ["26 weeks at full pay"], True),
        ("10:00 - 15:00", ["10:00 to 15:00"], True),
        ("three days", ["3 days"], True),  # number words read as digits
        ("It was delayed by 10 minutes.", ["ten minutes"], True),
        ("30 calendar days", ["30 days"], True),  # a word added, nothing of the answer replaced
        ("People Director", ["Director of People"], True),
        ("The answer is 1873.", ["three years", "three"], False),  # '3' is not a token of '1873'
    ],
)
def test_correct_means_the_answer_not_a_shared_unit_or_frame(prediction, gold, right):
    from evalsuite.metrics import Accuracy

    s = Sample("q", gold, prediction=prediction)
    assert Accuracy().score(s).value == float(right)
    assert Hallucination().score(s).value == float(not right)


@pytest.mark.parametrize(
    "module",
    [
        "evalsuite.metrics.base",
        "evalsuite.metrics.accuracy",
        "evalsuite.metrics.hallucination",
        "evalsuite.metrics.retrieval",
        "evalsuite.metrics.citation",
        "evalsuite.stats",
        "evalsuite.collapse",
        "evalsuite.knowledge",
        "evalsuite.wording",
        "advisor.core.overlap",
    ],
)
def test_docstring_examples_run(module):
    """Every metric documents itself with a runnable >>> example (docs/architecture.md, 'Extension points'); they must stay true."""
    import doctest
    import importlib

    res = doctest.testmod(importlib.import_module(module))
    assert res.attempted > 0 and res.failed == 0


def test_every_metric_is_declared_once_with_a_label_a_direction_a_scope_and_an_aggregation():
    from typing import get_args

    from evalsuite.metrics import (
        ANSWER_METRICS,
        EMBEDDING_METRICS,
        METRIC_INFO,
        METRIC_ORDER,
        METRICS,
        RETRIEVAL_METRICS,
    )
    from evalsuite.metrics.base import APPLIES_TO, Aggregation

    assert sorted(METRICS.names()) == sorted(ANSWER_METRICS + EMBEDDING_METRICS + RETRIEVAL_METRICS)
    assert sorted(METRIC_ORDER) == sorted(METRIC_INFO) and len(set(METRIC_ORDER)) == len(METRIC_ORDER)
    for name, info in METRIC_INFO.items():
        assert info.name == name and info.label and info.applies_to in APPLIES_TO
        assert isinstance(info.higher_is_better, bool) and info.aggregation in get_args(Aggregation)
    for name in METRICS.names():
        assert METRICS.get(name).info() == METRIC_INFO[name]


def test_a_metrics_declared_scope_and_aggregation_are_what_the_evaluation_uses(monkeypatch, tmp_path):
    """Change a declaration on the class and the per-question scores and the arm's value follow it: nothing
    else holds a copy."""
    from advisor.core.artifacts import write_jsonl
    from evalsuite.evaluate import aggregate, score_rows
    from evalsuite.metrics import Containment

    def row(i, answer, answers, unanswerable=False):
        return {
            "id": f"q{i}",
            "question": "q",
            "answers": answers,
            "unanswerable": unanswerable,
            "source": None,
            "answer": answer,
            "contexts": [],
            "confidence": None,
            "latency_s": 0.1,
            "prompt_tokens": 5,
            "new_tokens": 2,
        }

    rows = [row(0, "Oslo", ["Oslo"]), row(1, "Rome", ["Oslo"]), row(2, "Bergen", [], True)]
    scored = score_rows([dict(r) for r in rows])
    assert [("containment" in r["scores"]) for r in scored] == [True, True, False]  # answerable only
    monkeypatch.setattr(Containment, "applies_to", "unanswerable")
    scored = score_rows([dict(r) for r in rows])
    assert [("containment" in r["scores"]) for r in scored] == [False, False, True]
    monkeypatch.setattr(Containment, "applies_to", "answerable")
    write_jsonl(tmp_path / "base.jsonl", score_rows([dict(r) for r in rows]))
    assert aggregate(tmp_path, ["base"], None, 50, 0)["arms"]["base"]["containment"]["value"] == 0.5  # mean
    monkeypatch.setattr(Containment, "aggregation", "max")
    assert aggregate(tmp_path, ["base"], None, 50, 0)["arms"]["base"]["containment"]["value"] == 1.0  # max


def test_the_report_and_the_dashboard_read_labels_and_directions_from_the_declarations():
    from advisor import report
    from evalsuite.metrics import METRIC_INFO
    from ui import charts

    assert report.METRIC_LABEL == charts.METRIC_LABEL == {n: i.display for n, i in METRIC_INFO.items()}
    assert charts.LOWER_IS_BETTER == {n for n, i in METRIC_INFO.items() if not i.higher_is_better}
    assert METRIC_INFO["latency_p50_s"].display == "median latency (s)" and METRIC_INFO["accuracy"].percent


def test_semantic_similarity_ranks_a_paraphrase_above_an_unrelated_answer():
    from evalsuite.embed import TextEmbedder
    from evalsuite.metrics import SemanticSimilarity

    m = SemanticSimilarity(TextEmbedder("hashing"))
    close = m.score(Sample("q", ["the late fee is 25 pounds"], prediction="late fee: 25 pounds")).value
    far = m.score(Sample("q", ["the late fee is 25 pounds"], prediction="Oslo harbour at dawn")).value
    assert close > 0.8 > 0.2 > far and m.score(Sample("q", [], prediction="x", unanswerable=True)).value is None


def test_wrong_and_confident_and_faithfulness():
    from evalsuite.metrics import Faithfulness, WrongAndConfident

    m = WrongAndConfident(0.5)
    assert m.score(Sample("q", ["Oslo"], prediction="Oslo", confidence=0.99)).value == 0.0  # right
    assert m.score(Sample("q", ["Oslo"], prediction="I don't know.", confidence=0.99)).value == 0.0  # abstained
    assert m.score(Sample("q", ["Oslo"], prediction="maybe Paris")).value == 0.0  # hedged, no probabilities
    assert m.score(Sample("q", ["Oslo"], prediction="Paris")).value == 1.0
    f = Faithfulness()
    assert f.score(Sample("q", ["x"], prediction="14 days")).value is None  # closed book: no contexts
    assert f.score(Sample("q", ["x"], prediction="I don't know.", contexts=["a"])).value is None
    assert f.score(Sample("q", ["x"], prediction="It is 30 days", contexts=["Refunds within 14 days."])).value == 0.5


# ---------------------------------------------------------------- bare citations, collapse, known facts


@pytest.mark.parametrize(
    "raw, bare",
    [
        ("[4] (tk.txt)", True),
        ("[1].", True),
        ("[2]", True),
        ("[1, 3]", True),
        ("Source: [3]", True),
        ("See passage [2] (docs/refunds.md).", True),
        ("According to [1], (policy.md#4)", True),
        ("14 days [2]", False),
        ("[2] 14 days (refunds.md)", False),
        ("Node.js [2]", False),
        ("(tk.txt)", False),  # no citation marker: not a bare citation (a closed-book answer never is)
        ("", False),
        ("I don't know.", False),
        ("1.", False),
        # the passage header's number in another bracket form, before a document name
        ("(1) (packages.jsonl#107)", True),
        ("1. (Warsaw.md)", True),
        ("1) (Warsaw.md).", True),
        ("(3) (guides/a.md#2) source", True),
        ("(1)", False),
        ("1. (about one)", False),
        ("3. (three days)", False),
        ("12 days (refunds.md)", False),
        ("(1) 14 days (refunds.md)", False),
    ],
)
def test_bare_citation_is_a_marker_with_no_answer_beside_it(raw, bare):
    from evalsuite.metrics import BareCitation, is_bare_citation

    assert is_bare_citation(raw) is bare
    s = BareCitation().score(Sample("q", ["14 days"], prediction="", raw_prediction=raw))
    assert s.value == float(bare) and s.reason


def test_bare_citation_strips_the_retrieved_sources_names_and_applies_to_every_question():
    from evalsuite.metrics import METRICS, is_bare_citation

    assert is_bare_citation("[3] (pkg-17 record)", ["pkg-17 record"]) and not is_bare_citation("[3] (pkg-17 record)")
    assert is_bare_citation("(3) (pkg-17 record)", ["pkg-17 record"]) and not is_bare_citation("(3) (pkg-17 record)")
    m = METRICS.get("bare_citation_rate")()
    assert m.higher_is_better is False and m.applies_to == "all"
    una = Sample("q", [], prediction="", unanswerable=True, raw_prediction="[1]")
    assert m.score(una).value == 1.0


def test_score_rows_scores_bare_citations_on_the_raw_answer():
    from evalsuite.evaluate import score_rows

    rows = [
        {
            "id": f"q{i}",
            "question": "q?",
            "answers": ["8.6.12"],
            "unanswerable": False,
            "source": "tk.txt",
            "answer": a,
            "contexts": [{"source": "tk.txt", "text": "tk 8.6.12"}],
            "confidence": None,
        }
        for i, a in enumerate(["[4] (tk.txt)", "8.6.12 [4]", "8.6.12"])
    ]
    assert [r["scores"]["bare_citation_rate"] for r in score_rows(rows)] == [1.0, 0.0, 0.0]


@pytest.mark.parametrize(
    "answer, gold, right, bare",
    [
        ("(1) (packages.jsonl#7)", "1", False, True),  # the passage's number, not the answer '1'
        ("[1] (packages.jsonl#7)", "1", False, True),  # the same in square brackets
        ("1. (packages.jsonl#7)", "1", False, True),
        ("1) (packages.jsonl#7) 1", "1", True, False),  # the answer after the citation
        ("1 [1]", "1", True, False),
        ("1.", "1", True, False),  # no document name after the number: an answer
        ("3. (three days)", "3", True, False),
        ("(2) (policies.md) 14 days", "14 days", True, False),
    ],
)
def test_a_passage_number_before_a_document_name_is_never_scored_as_the_answer(answer, gold, right, bare):
    """scored_answer: every accuracy metric scores the answer without its citation, in any bracket form."""
    from evalsuite.evaluate import score_rows

    row = {
        "id": "q1",
        "question": "How many packages depend on it?",
        "answers": [gold],
        "unanswerable": False,
        "source": "packages.jsonl#7",
        "answer": answer,
        "contexts": [{"source": "packages.jsonl#7", "text": "x"}, {"source": "policies.md", "text": "y"}],
        "confidence": None,
    }
    (scored,) = score_rows([row])
    assert scored["scores"]["accuracy"] == float(right), scored["answer_scored"]
    assert scored["scores"]["bare_citation_rate"] == float(bare)


@pytest.mark.parametrize(
    "answers, collapsed, top, why",
    [
        (
            ["1."] * 3 + ["1"] * 2 + [f"answer {i}" for i in range(15)],
            True,
            "1.",
            "25% of its answers are the same string '1.'",
        ),
        (["[4] (tk.txt)"] * 5 + [f"answer {i}" for i in range(15)], True, "(tk.txt)", "25% of its answers"),
        (
            ["", "[2]", ".", "", "[1]."] + [f"answer {i}" for i in range(15)],
            True,
            "answer 0",
            "25% of its answers are empty",
        ),
        (
            ["I don't know."] * 12 + ["The context does not mention it."] * 4 + ["Oslo"] * 4,
            False,
            "Oslo",
            "no answer string is more than 20%",
        ),
        (["1"] * 4 + [f"answer {i}" for i in range(16)], False, "1", "the commonest, '1', is 20%"),  # 20% is not > 20%
        # a fee and a rate are two answers, though SQuAD normalisation makes both '000'
        (["$0.00"] * 4 + ["0.00%"] * 3 + [f"answer {i}" for i in range(13)], False, "$0.00", "'$0.00', is 20%"),
        # a lead-in is not the answer: with one after it the answer is what follows, alone it is an empty answer
        (
            ["The answer is: 1."] * 3 + ["1"] * 2 + [f"answer {i}" for i in range(15)],
            True,
            "The answer is: 1.",
            "25% of its answers are the same string 'The answer is: 1.'",
        ),
        (
            ["The answer to this question is:"] * 3
            + ["The answer to the question is:"] * 2
            + [f"{i}" for i in range(15)],
            True,
            "0",
            "25% of its answers are empty",
        ),
    ],
)
def test_collapse_flags_one_repeated_answer_or_empty_answers_but_not_abstentions(answers, collapsed, top, why):
    from evalsuite.collapse import detect_collapse

    c = detect_collapse(answers)
    assert set(c) == {"collapsed", "top_answer", "top_share", "empty_share", "n", "reason"}
    assert c["collapsed"] is collapsed and c["top_answer"] == top and c["n"] == 20 and why in c["reason"]


def test_knowledge_groups_known_maybe_known_unknown_from_greedy_and_samples():
    from evalsuite.knowledge import by_knowledge, group_of, knowledge_rows, knowledge_summary

    assert [group_of(True, 0), group_of(True, 4), group_of(False, 1), group_of(False, 0)] == [
        "known",
        "known",
        "maybe_known",
        "unknown",
    ]
    qs = [(f"q{i}", [f"fact {i}"]) for i in range(6)]
    greedy = {"q0": "fact 0", "q1": "fact 1 [2]", "q2": "no", "q3": "no", "q4": "no", "q5": "I don't know."}
    samples = {q: ["x", "y"] for q, _ in qs} | {"q2": ["x", "It is fact 2."], "q3": ["fact 3", "fact 3"]}
    rows = knowledge_rows(qs, greedy, samples)
    assert [r["group"] for r in rows] == ["known", "known", "maybe_known", "maybe_known", "unknown", "unknown"]
    assert rows[3] == {
        "id": "q3",
        "group": "maybe_known",
        "greedy": "no",
        "greedy_correct": False,
        "samples": ["fact 3", "fact 3"],
        "samples_correct": 2,
    }
    k = knowledge_summary(rows, 2, 0.7)
    assert k["counts"] == {"known": 2, "maybe_known": 2, "unknown": 2} and k["samples"] == 2 and k["temperature"] == 0.7
    # an arm right on q0, q2 and q4; the unanswerable question and questions outside the split are not counted
    arm = [
        {
            "id": f"q{i}",
            "unanswerable": False,
            "scores": {"accuracy": float(i % 2 == 0), "f1": 0.5, "hallucination_rate": float(i % 2)},
        }
        for i in range(6)
    ]
    arm += [{"id": "u1", "unanswerable": True, "scores": {"hallucination_rate": 1.0}}]
    got = by_knowledge(arm, rows[:4], 200, 0)
    assert set(got) == {"known", "maybe_known"}  # no question of rows[:4] is unknown: the group is left out
    assert got["known"]["n"] == 2 and got["known"]["accuracy"]["value"] == 0.5
    assert got["maybe_known"]["hallucination_rate"]["value"] == 0.5 and got["maybe_known"]["f1"]["n"] == 2


def test_wording_groups_eval_questions_by_how_much_of_their_wording_one_training_question_holds():
    from evalsuite.wording import CLOSE_OVERLAP, by_wording, wording_rows, wording_summary

    trained = ["Which year did the Basel bridge open to traffic?", "Who designed the old Basel bridge?"]
    qs = [
        ("q0", "Which year did the Basel bridge open to traffic?"),  # word for word: 1.0
        ("q1", "In which year did the Basel bridge open to traffic?"),  # 6 of its 7 word 4-grams
        ("q2", "Which year did the Basel bridge first carry traffic?"),  # 3 of its 6: half is close
        ("q3", "The old bridge at Basel: when did it open?"),  # no shared 4-gram
        ("q4", "Why?"),  # under four words: nothing to compare
    ]
    rows = wording_rows(qs, trained)
    assert [(r["group"], r["overlap"]) for r in rows] == [
        ("close", 1.0),
        ("close", 0.8571),
        ("close", 0.5),
        ("new", 0.0),
        ("new", 0.0),
    ]
    assert rows[2]["training_question"] == trained[0] and rows[3]["training_question"] is None
    assert CLOSE_OVERLAP == 0.5 and wording_summary(rows, 2)["counts"] == {"close": 3, "new": 2}
    assert wording_summary(rows, 2)["training_questions"] == 2
    # the close questions with the most overlap, beside the training question that holds it
    assert [(e["id"], e["training_question"], e["overlap"]) for e in wording_summary(rows, 2)["examples"]] == [
        ("q0", trained[0], 1.0),
        ("q1", trained[0], 0.8571),
        ("q2", trained[0], 0.5),
    ]
    assert wording_summary(rows[3:], 2)["examples"] == []
    # an arm right on the close questions only; its unanswerable question is in neither group
    arm = [
        {
            "id": f"q{i}",
            "unanswerable": False,
            "scores": {"accuracy": float(i < 3), "f1": 0.5, "hallucination_rate": 0.0},
        }
        for i in range(5)
    ]
    arm += [{"id": "u1", "unanswerable": True, "scores": {"hallucination_rate": 1.0}}]
    got = by_wording(arm, rows, 200, 0)
    assert {g: (v["n"], v["accuracy"]["value"]) for g, v in got.items()} == {"close": (3, 1.0), "new": (2, 0.0)}
