"""The one metric API (docs/architecture.md, 'Extension points'): a metric scores one `Sample` and returns `Score(value, reason)`.

`value` is None when the metric does not apply to the sample (abstention on an answerable question,
faithfulness of a closed-book answer ...). A metric declares `higher_is_better`, which questions it
`applies_to`, and its `aggregation` over samples (the mean; its bootstrap CI comes from evalsuite.stats).

>>> class Shouty(Metric):
...     name = "shouty"
...     def score(self, sample):
...         loud = sample.prediction.isupper()
...         return Score(float(loud), "all capitals" if loud else "normal case")
>>> Shouty().score(Sample("q", ["x"], prediction="PARIS"))
Score(value=1.0, reason='all capitals')
>>> Shouty().aggregate([1.0, 0.0, 1.0, 1.0])
0.75
"""

from __future__ import annotations

from dataclasses import dataclass, field

from advisor.core.registry import Registry


@dataclass
class Sample:
    """One answered question as every metric sees it."""

    question: str
    answers: list[str]  # gold answers (empty for unanswerable questions)
    prediction: str = ""  # the arm's answer, citation markers removed
    unanswerable: bool = False
    source: str | None = None  # gold document id
    context_sources: list[str] = field(default_factory=list)  # sources of retrieved chunks, in rank order
    contexts: list[str] = field(default_factory=list)  # texts of the retrieved chunks (retrieval arms only)
    confidence: float | None = None  # geometric-mean probability of the answer's tokens under the model, 0..1
    raw_prediction: str | None = None  # the answer as the arm gave it, citation markers kept (None: `prediction`)


@dataclass
class Score:
    value: float | None
    reason: str = ""


class Metric:
    """Base class: subclasses set `name` and implement `score`."""

    name: str = ""
    higher_is_better: bool = True
    applies_to: str = "answerable"  # answerable | unanswerable | all | retrieval
    aggregation: str = "mean"  # how per-question values combine; CIs by bootstrap over questions

    def score(self, sample: Sample) -> Score:
        raise NotImplementedError

    def aggregate(self, values: list[float]) -> float | None:
        vals = [v for v in values if v is not None]
        return sum(vals) / len(vals) if vals else None


METRICS: Registry[type[Metric]] = Registry("metric")
