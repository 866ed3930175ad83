"""Accuracy metrics: exact match and token F1 (SQuAD v1.1 definitions), containment, the judge-free
`accuracy` (containment or F1 >= 0.5), and semantic similarity (embedder cosine).

EM and F1 follow the SQuAD v1.1 evaluation script: lower-case, drop punctuation, drop the articles
a/an/the, collapse whitespace; F1 over the bag of tokens; the max over the gold answers.
tests/test_metrics_parity.py checks them against an independent reference on SQuAD's 1,000 questions.

>>> ExactMatch().score(Sample("q", ["The Paris"], prediction="paris")).value
1.0
>>> round(TokenF1().score(Sample("q", ["red big car"], prediction="big car")).value, 3)
0.8
"""

from __future__ import annotations

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


def is_correct(prediction: str, answers: list[str]) -> bool:
    """Correct = a gold answer is contained in the answer, or token F1 >= 0.5. Generative models often
    wrap a right answer in a sentence ('The fee is £25.'), which EM and F1 alone count as wrong."""
    return contains_answer(prediction, answers) or max(f1_score(prediction, a) for a in answers) >= 0.5


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
    """Share of answerable questions answered correctly (gold answer contained, or token F1 >= 0.5).

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
