"""Hallucination metrics: abstention on unanswerable questions (abstention vs fabrication), false
abstention and wrong-and-confident answers on answerable ones, the overall hallucination rate, and
faithfulness of retrieval-arm answers to their retrieved contexts.

>>> Abstention().score(Sample("q", [], prediction="I don't know.", unanswerable=True)).value
1.0
>>> Fabrication().score(Sample("q", [], prediction="42 pounds", unanswerable=True)).value
1.0
"""

from __future__ import annotations

import re

from evalsuite.metrics.accuracy import is_correct
from evalsuite.metrics.base import Metric, Sample, Score, register_metric  # noqa: F401 - the >>> examples use Sample
from evalsuite.normalize import normalize_answer

_ABSTAIN = re.compile(
    r"\b(i\s*(do\s*not|don'?t|dont)\s*know|not\s+sure|no\s+information|cannot\s+(answer|find|determine|say)"
    r"|can'?t\s+(answer|find|determine|say)|unable\s+to\s+(answer|find|determine)|unknown"
    r"|(is|are)\s+not\s+(mentioned|provided|stated|specified|given|available|included)"
    r"|does\s+not\s+(say|mention|contain|specify|state|provide)|doesn'?t\s+(say|mention|contain|specify)"
    r"|no\s+(mention|answer|record|data))\b",
    re.I,
)
# Words that mark an answer as a guess; used for confidence when the arm recorded no token probabilities.
_HEDGE = re.compile(r"\b(maybe|perhaps|possibly|probably|might|i\s+think|i\s+believe|not\s+certain|likely)\b", re.I)
# Function words ignored by faithfulness: they are supported by any text and say nothing about the claim.
_STOPWORDS = frozenset(
    "is are was were be been being of in on at to for from by with as and or but if then than that this these those "
    "it its it's he she they them his her their we you i me my our your do does did not no yes so very can will "
    "would should could has have had there here which who whom what when where why how about into over under".split()
)


def is_abstention(prediction: str) -> bool:
    """An empty answer or a refusal phrase ('I don't know', 'not mentioned in the context' ...).

    >>> is_abstention("I don't know."), is_abstention("14 days")
    (True, False)
    """
    return not prediction.strip() or bool(_ABSTAIN.search(prediction))


@register_metric
class Abstention(Metric):
    """On unanswerable questions: 1 when the model declines instead of inventing an answer."""

    name, label, paired = "abstention_rate", "abstention on unanswerable", True
    applies_to = "unanswerable"

    def score(self, sample):
        a = is_abstention(sample.prediction)
        return Score(float(a), "abstained" if a else "fabricated an answer")


@register_metric
class Fabrication(Metric):
    """On unanswerable questions: 1 when the model invents an answer (1 − abstention rate)."""

    name, label = "fabrication_rate", "fabricated answer (unanswerable)"
    higher_is_better = False
    applies_to = "unanswerable"

    def score(self, sample):
        a = is_abstention(sample.prediction)
        return Score(float(not a), "abstained" if a else "fabricated an answer")


@register_metric
class FalseAbstention(Metric):
    """On answerable questions: 1 when the model declined although the answer exists."""

    name, label = "false_abstention_rate", "false abstention (declines answerable)"
    higher_is_better = False

    def score(self, sample):
        a = is_abstention(sample.prediction)
        return Score(float(a), "declined an answerable question" if a else "answered")


@register_metric
class Hallucination(Metric):
    """Over all questions: 1 when the model gives an answer that is wrong (not correct in the sense of
    `is_correct` on an answerable question, or any non-abstaining answer on an unanswerable one)."""

    name, label, paired = "hallucination_rate", "hallucination rate", True
    higher_is_better = False
    applies_to = "all"

    def score(self, sample):
        if is_abstention(sample.prediction):
            return Score(0.0, "abstained")
        if sample.unanswerable:
            return Score(1.0, "answered an unanswerable question")
        ok = is_correct(sample.prediction, sample.answers)
        return Score(float(not ok), "answered correctly" if ok else "answered wrongly")


@register_metric
class WrongAndConfident(Metric):
    """On answerable questions: 1 when the answer is wrong, not an abstention, and confident — the
    model gave its answer tokens a geometric-mean probability >= `threshold` (or, when the arm recorded
    no probabilities, the answer carries no hedge word such as 'maybe').

    >>> m = WrongAndConfident(threshold=0.5)
    >>> m.score(Sample("q", ["Oslo"], prediction="Paris", confidence=0.9)).value
    1.0
    >>> m.score(Sample("q", ["Oslo"], prediction="Paris", confidence=0.2)).value
    0.0
    """

    name, label, paired = "wrong_and_confident_rate", "wrong and confident", True
    higher_is_better = False

    def __init__(self, threshold: float = 0.5):
        self.threshold = threshold

    def score(self, sample):
        if is_abstention(sample.prediction) or is_correct(sample.prediction, sample.answers):
            return Score(0.0, "abstained or correct")
        if sample.confidence is None:
            hedged = bool(_HEDGE.search(sample.prediction))
            return Score(float(not hedged), "wrong, hedged" if hedged else "wrong, stated without hedging")
        sure = sample.confidence >= self.threshold
        return Score(float(sure), f"wrong at token probability {sample.confidence:.2f}")


def content_tokens(text: str) -> list[str]:
    return [w for w in normalize_answer(text).split() if w not in _STOPWORDS]


@register_metric
class Faithfulness(Metric):
    """Retrieval arms: share of the answer's content words (SQuAD-normalised, function words dropped)
    found in the retrieved contexts; 1 = every word of the answer is backed by a passage.

    >>> Faithfulness().score(Sample("q", ["x"], prediction="14 days", contexts=["Refunds within 14 days."])).value
    1.0
    >>> Faithfulness().score(Sample("q", ["x"], prediction="30 days by post", contexts=["Refunds within 14 days."])).value
    0.333333
    """

    name, label, needs = "faithfulness", "faithfulness to the passages", "retrieval"
    applies_to = "retrieved"

    def score(self, sample):
        if is_abstention(sample.prediction):
            return Score(None)
        words = content_tokens(sample.prediction)
        if not words:
            return Score(None)
        ctx = set(normalize_answer(" ".join(sample.contexts)).split())
        missing = [w for w in words if w not in ctx]
        v = 1 - len(missing) / len(words)
        return Score(
            round(v, 6),
            "every content word is in the contexts"
            if not missing
            else f"not in the contexts: {', '.join(missing[:5])}",
        )
