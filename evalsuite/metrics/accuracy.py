"""Accuracy metrics: exact match and token F1 (SQuAD v1.1 definitions), containment, the judge-free
`accuracy` (`is_correct`: the gold answer contained, or a shortened or reordered form of it), and semantic
similarity (embedder cosine).

EM and F1 follow the SQuAD v1.1 evaluation script: lower-case, drop punctuation, drop the articles
a/an/the, collapse whitespace; F1 over the bag of tokens; the max over the gold answers.
tests/test_metrics_parity.py checks them against an independent reference on SQuAD's 1,000 questions.

>>> ExactMatch().score(Sample("q", ["The Paris"], prediction="paris")).value
1.0
>>> round(TokenF1().score(Sample("q", ["red big car"], prediction="big car")).value, 3)
0.8
"""

from __future__ import annotations

import re
from collections import Counter

from evalsuite.embed import TextEmbedder
from evalsuite.metrics.base import Metric, Sample, Score, register_metric  # noqa: F401 - the >>> examples use Sample
from evalsuite.normalize import normalize_answer


def f1_score(prediction: str, ground_truth: str) -> float:
    p, g = normalize_answer(prediction).split(), normalize_answer(ground_truth).split()
    common = Counter(p) & Counter(g)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def contains_answer(prediction: str, answers: list[str]) -> bool:
    p = f" {normalize_answer(prediction)} "
    return any(f" {normalize_answer(a)} " in p for a in answers if normalize_answer(a))


# Names the rule of `is_correct`; a stage that keeps accuracies instead of answers (the learning curve) hashes
# it, so a change of the rule measures the stage again. Saved answers are rescored by the metrics stage.
CORRECTNESS_RULE = "answer_matches: contained, or shortened with its numbers kept and nothing replaced; decimals kept"

# Number words read as digits when answers are compared ("three days" is "3 days"); larger numbers are
# written in digits in the corpora and answers this project meets.
_NUMBER_WORDS = {
    w: str(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen twenty".split()
    )
}


# A decimal point is kept (as '·', which normalisation leaves alone): dropping it, as SQuAD's normalisation drops
# all punctuation, makes '£1.50' and '£150' one token. Thousands separators still go: '1,842' is '1842'.
_DECIMAL_POINT = re.compile(r"(?<=\d)\.(?=\d)")


def _answer_tokens(s: str) -> list[str]:
    return [_NUMBER_WORDS.get(t, t) for t in normalize_answer(_DECIMAL_POINT.sub("·", s)).split()]


def answer_matches(prediction: str, gold: str) -> bool:
    """One gold answer against a prediction: the gold answer is contained in the prediction (as whole tokens,
    number words read as digits, a decimal point kept), or the prediction is a shortened or reordered form of
    it: token F1 >= 0.5 with nothing of the gold answer replaced by something else and none of its numbers left
    out.

    Token overlap alone is not correctness: '12 days' shares half its tokens with '27 days' (F1 0.5), as does
    'Director of Finance' with 'Director of People'. A prediction that both leaves a gold token out and adds
    one of its own has replaced part of the answer, and a number left out is the fact itself left out.

    >>> answer_matches("26 weeks", "26 weeks at full pay"), answer_matches("12 days", "27 days")
    (True, False)
    """
    p, g = _answer_tokens(prediction), _answer_tokens(gold)
    if not g:
        return False
    if f" {' '.join(g)} " in f" {' '.join(p)} ":
        return True
    extra, missing = Counter(p) - Counter(g), Counter(g) - Counter(p)
    same = len(g) - sum(missing.values())
    if same == 0 or 2 * same / (len(p) + len(g)) < 0.5:  # token F1 = 2 * shared / (|p| + |g|)
        return False
    if extra and missing:
        return False
    return not any(ch.isdigit() for t in missing for ch in t)


def is_correct(prediction: str, answers: list[str]) -> bool:
    """Correct = `answer_matches` one of the gold answers. Generative models often wrap a right answer in a
    sentence ('The fee is £25.') or shorten it ('26 weeks' for '26 weeks at full pay'), which EM and F1 alone
    count as wrong; a wrong number or name in the right frame ('12 days' for '27 days') is wrong."""
    return any(answer_matches(prediction, a) for a in answers)


@register_metric
class ExactMatch(Metric):
    """1 when the normalised answer equals a normalised gold answer (SQuAD v1.1 EM)."""

    name, label, paired = "exact_match", "exact match", True

    def score(self, sample):
        v = float(max(normalize_answer(sample.prediction) == normalize_answer(a) for a in sample.answers))
        return Score(v, "matches a gold answer" if v else "no gold answer matches exactly")


@register_metric
class TokenF1(Metric):
    """Max token F1 over the gold answers (SQuAD v1.1 F1)."""

    name, label, unit, paired = "f1", "token F1", "score", True

    def score(self, sample):
        return Score(max(f1_score(sample.prediction, a) for a in sample.answers), "max token F1 over gold answers")


@register_metric
class Accuracy(Metric):
    """Share of answerable questions answered correctly (`is_correct`: the gold answer contained, or a shortened
    or reordered form of it).

    >>> Accuracy().score(Sample("q", ["212"], prediction="It boils at 212 degrees.")).value
    1.0
    """

    name, label, paired = "accuracy", "accuracy (correct answers)", True

    def score(self, sample):
        ok = is_correct(sample.prediction, sample.answers)
        return Score(float(ok), "correct" if ok else "wrong")


@register_metric
class Containment(Metric):
    """1 when a normalised gold answer appears inside the normalised prediction.

    >>> Containment().score(Sample("q", ["14 days"], prediction="Within 14 days.")).value
    1.0
    """

    name, label, paired = "containment", "answer contained", True

    def score(self, sample):
        v = float(contains_answer(sample.prediction, sample.answers))
        return Score(v, "gold answer contained" if v else "no gold answer contained")


@register_metric
class SemanticSimilarity(Metric):
    """Max cosine similarity between the answer's and the gold answers' sentence embeddings (-1..1).

    `embedder` is an evalsuite.embed.TextEmbedder (the bundled MiniLM by default; 'hashing' in tests).

    >>> from evalsuite.embed import TextEmbedder
    >>> m = SemanticSimilarity(TextEmbedder("hashing"))
    >>> m.score(Sample("q", ["fourteen days"], prediction="Fourteen days.")).value
    1.0
    """

    name, label, unit, paired, needs = "semantic_similarity", "semantic similarity", "score", True, "embedder"

    def __init__(self, embedder: TextEmbedder | None = None):
        self.embedder = embedder or TextEmbedder()

    def score(self, sample):
        vecs = self.embedder.encode([sample.prediction, *sample.answers])
        best = float(max(vecs[1:] @ vecs[0]))
        return Score(round(best, 6), f"best cosine to a gold answer {best:.2f}")
