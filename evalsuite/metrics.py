"""Judge-free metrics as small classes with one scoring method (STYLE.md 8).

Each metric scores one `Sample` and returns `Score(value, reason)`; `value` is None when the
metric does not apply to that sample (e.g. abstention on an answerable question). Aggregation
is the mean over the samples it applies to, with a bootstrap CI (evalsuite.stats).

EM and F1 follow the SQuAD v1.1 evaluation script: lower-case, drop punctuation, drop the
articles a/an/the, collapse whitespace; max over the gold answers.

>>> s = Sample("q", ["The Paris"], prediction="paris")
>>> ExactMatch().score(s).value, round(TokenF1().score(Sample("q", ["red big car"], prediction="big car")).value, 3)
(1.0, 0.8)
"""

from __future__ import annotations

import re
import string
from collections import Counter
from dataclasses import dataclass, field

from advisor.core.registry import Registry


@dataclass
class Sample:
    question: str
    answers: list[str]
    prediction: str = ""
    unanswerable: bool = False
    source: str | None = None  # gold document id
    context_sources: list[str] = field(default_factory=list)  # sources of retrieved chunks, in rank order


@dataclass
class Score:
    value: float | None
    reason: str = ""


class Metric:
    name: str = ""
    higher_is_better: bool = True
    applies_to: str = "answerable"  # answerable | unanswerable | all | retrieval

    def score(self, sample: Sample) -> Score:
        raise NotImplementedError


METRICS: Registry[type[Metric]] = Registry("metric")


def normalize_answer(s: str) -> str:
    """SQuAD v1.1 normalisation: lower, remove punctuation, articles and extra whitespace."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def f1_score(prediction: str, ground_truth: str) -> float:
    p, g = normalize_answer(prediction).split(), normalize_answer(ground_truth).split()
    common = Counter(p) & Counter(g)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


_ABSTAIN = re.compile(
    r"\b(i\s*(do\s*not|don'?t|dont)\s*know|not\s+sure|no\s+information|cannot\s+(answer|find|determine|say)"
    r"|can'?t\s+(answer|find|determine|say)|unable\s+to\s+(answer|find|determine)|unknown"
    r"|(is|are)\s+not\s+(mentioned|provided|stated|specified|given|available|included)"
    r"|does\s+not\s+(say|mention|contain|specify|state|provide)|doesn'?t\s+(say|mention|contain|specify)"
    r"|no\s+(mention|answer|record|data))\b",
    re.I,
)


def is_abstention(prediction: str) -> bool:
    """An empty answer or a refusal phrase ('I don't know', 'not mentioned in the context' ...).

    >>> is_abstention("I don't know."), is_abstention("14 days")
    (True, False)
    """
    return not prediction.strip() or bool(_ABSTAIN.search(prediction))


@METRICS.register("exact_match")
class ExactMatch(Metric):
    name = "exact_match"

    def score(self, sample):
        if sample.unanswerable:
            return Score(None)
        v = float(max(normalize_answer(sample.prediction) == normalize_answer(a) for a in sample.answers))
        return Score(v, "matches a gold answer" if v else "no gold answer matches exactly")


@METRICS.register("f1")
class TokenF1(Metric):
    name = "f1"

    def score(self, sample):
        if sample.unanswerable:
            return Score(None)
        return Score(max(f1_score(sample.prediction, a) for a in sample.answers), "max token F1 over gold answers")


def contains_answer(prediction: str, answers: list[str]) -> bool:
    p = f" {normalize_answer(prediction)} "
    return any(f" {normalize_answer(a)} " in p for a in answers if normalize_answer(a))


def is_correct(prediction: str, answers: list[str]) -> bool:
    """Correct = a gold answer is contained in the answer, or token F1 >= 0.5. Generative models often
    wrap a right answer in a sentence ('The fee is £25.'), which EM and F1 alone count as wrong."""
    return contains_answer(prediction, answers) or max(f1_score(prediction, a) for a in answers) >= 0.5


@METRICS.register("accuracy")
class Accuracy(Metric):
    """Share of answerable questions answered correctly (gold answer contained, or token F1 >= 0.5)."""

    name = "accuracy"

    def score(self, sample):
        if sample.unanswerable:
            return Score(None)
        ok = is_correct(sample.prediction, sample.answers)
        return Score(float(ok), "correct" if ok else "wrong")


@METRICS.register("containment")
class Containment(Metric):
    """1 when a normalised gold answer appears inside the normalised prediction."""

    name = "containment"

    def score(self, sample):
        if sample.unanswerable:
            return Score(None)
        v = float(contains_answer(sample.prediction, sample.answers))
        return Score(v, "gold answer contained" if v else "no gold answer contained")


@METRICS.register("abstention_rate")
class Abstention(Metric):
    """On unanswerable questions: 1 when the model declines instead of inventing an answer."""

    name = "abstention_rate"
    applies_to = "unanswerable"

    def score(self, sample):
        if not sample.unanswerable:
            return Score(None)
        a = is_abstention(sample.prediction)
        return Score(float(a), "abstained" if a else "fabricated an answer")


@METRICS.register("false_abstention_rate")
class FalseAbstention(Metric):
    """On answerable questions: 1 when the model declined although the answer exists."""

    name = "false_abstention_rate"
    higher_is_better = False

    def score(self, sample):
        if sample.unanswerable:
            return Score(None)
        a = is_abstention(sample.prediction)
        return Score(float(a), "declined an answerable question" if a else "answered")


@METRICS.register("hallucination_rate")
class Hallucination(Metric):
    """Over all questions: 1 when the model gives an answer that is wrong (not correct in the sense of
    `is_correct` on an answerable question, or any non-abstaining answer on an unanswerable one)."""

    name = "hallucination_rate"
    higher_is_better = False
    applies_to = "all"

    def score(self, sample):
        if is_abstention(sample.prediction):
            return Score(0.0, "abstained")
        if sample.unanswerable:
            return Score(1.0, "answered an unanswerable question")
        ok = is_correct(sample.prediction, sample.answers)
        return Score(float(not ok), "answered correctly" if ok else "answered wrongly")


@METRICS.register("recall_at_k")
class RecallAtK(Metric):
    """Retrieval: 1 when the gold source is among the retrieved chunks' sources."""

    name = "recall_at_k"
    applies_to = "retrieval"

    def score(self, sample):
        if sample.unanswerable or not sample.source or not sample.context_sources:
            return Score(None)
        hit = sample.source in sample.context_sources
        return Score(float(hit), "gold source retrieved" if hit else "gold source missing")


@METRICS.register("mrr")
class MRR(Metric):
    """Retrieval: 1 / rank of the first chunk from the gold source (0 when absent)."""

    name = "mrr"
    applies_to = "retrieval"

    def score(self, sample):
        if sample.unanswerable or not sample.source or not sample.context_sources:
            return Score(None)
        for rank, s in enumerate(sample.context_sources, 1):
            if s == sample.source:
                return Score(1.0 / rank, f"gold source at rank {rank}")
        return Score(0.0, "gold source missing")


ANSWER_METRICS = ["accuracy", "exact_match", "f1", "containment", "abstention_rate", "false_abstention_rate", "hallucination_rate"]
RETRIEVAL_METRICS = ["recall_at_k", "mrr"]
