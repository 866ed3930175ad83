"""The one metric API (docs/architecture.md, 'Extension points'): a metric scores one `Sample` and returns `Score(value, reason)`.

A metric declares, once, as class attributes: its `name`, the `label` a person reads, its `unit`, whether
`higher_is_better`, which questions it `applies_to` and its `aggregation` over questions. They are READ by the
evaluation (`score_rows`, through `score`; `aggregate` summarises by `aggregation`), the
report and the dashboard (`METRIC_INFO`: label, unit, direction), so each is written in one place; `score` returns
None for a sample outside `applies_to` (the base class checks it, no metric repeats the check). Register a
metric with `@register_metric` (it files the class under its own `name`).

>>> class Shouty(Metric):
...     name, label = "shouty", "answers in capitals"
...     def score(self, sample):
...         loud = sample.prediction.isupper()
...         return Score(float(loud), "all capitals" if loud else "normal case")
>>> Shouty().score(Sample("q", ["x"], prediction="PARIS"))
Score(value=1.0, reason='all capitals')
>>> Shouty().score(Sample("q", [], prediction="I DON'T KNOW", unanswerable=True))  # applies_to "answerable"
Score(value=None, reason='applies to answerable questions only')
>>> Shouty().aggregate([1.0, 0.0, 1.0, 1.0])
0.75
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

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


# Which questions a metric scores; `score` is called only on those (Metric.applies).
APPLIES_TO: dict[str, Callable[[Sample], bool]] = {
    "answerable": lambda s: not s.unanswerable,
    "unanswerable": lambda s: s.unanswerable,
    "all": lambda s: True,
    "retrieved": lambda s: bool(s.contexts),  # answered with retrieved passages in the prompt
    "gold_source": lambda s: not s.unanswerable and bool(s.source) and bool(s.context_sources),
    "probes": lambda s: False,  # general-knowledge probe items, scored by evalsuite.probes, not per answer
    "run": lambda s: False,  # one value per arm or per run (latency, memory), not per answer
}
AppliesTo = Literal["answerable", "unanswerable", "all", "retrieved", "gold_source", "probes", "run"]
# How per-question values combine into an arm's value (its 95% CI: bootstrap over questions, evalsuite.stats).
Aggregation = Literal["mean", "p50", "p95", "max"]
# How a value reads: a share of questions (shown as %), a difference of shares (percentage points), a score,
# seconds, tokens or megabytes.
Unit = Literal["share", "points", "score", "seconds", "tokens", "MB"]
UNIT_SUFFIX = {"points": " (pts)", "seconds": " (s)", "tokens": "", "MB": " (MB)", "share": "", "score": ""}


@dataclass(frozen=True)
class MetricInfo:
    """What the report and the dashboard need to show a metric: a metric class's declaration, or one of the
    run-level measurements (evalsuite/metrics/measurements.py)."""

    name: str
    label: str
    unit: Unit = "share"
    higher_is_better: bool = True
    applies_to: AppliesTo = "answerable"
    aggregation: Aggregation = "mean"
    paired: bool = False  # compared arm against arm on the same questions (metrics.json "paired")
    needs: Literal["answer", "embedder", "retrieval", "run"] = "answer"

    @property
    def display(self) -> str:
        """The label with its unit where the unit is not a share: 'median latency (s)'."""
        return self.label + UNIT_SUFFIX[self.unit]

    @property
    def percent(self) -> bool:
        """Shown as a percentage (shares) or in percentage points (differences of shares)."""
        return self.unit in ("share", "points")


class Metric:
    """Base class: subclasses set the declaration below and implement `score`. The base class guards every
    subclass's `score` with `applies`: a sample outside `applies_to` scores None without reaching the subclass's
    code, so no metric repeats that check."""

    name: str = ""
    label: str = ""
    unit: Unit = "share"
    higher_is_better: bool = True
    applies_to: AppliesTo = "answerable"
    aggregation: Aggregation = "mean"
    paired: bool = False
    needs: Literal["answer", "embedder", "retrieval"] = "answer"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("score")
        if own is not None:

            @functools.wraps(own)
            def score(self, sample: Sample) -> Score:
                if not self.applies(sample):
                    return Score(None, f"applies to {self.applies_to} questions only")
                return own(self, sample)

            cls.score = score

    def applies(self, sample: Sample) -> bool:
        return APPLIES_TO[self.applies_to](sample)

    def score(self, sample: Sample) -> Score:
        raise NotImplementedError

    def aggregate(self, values: list[float]) -> float | None:
        """The arm's value from its per-question values (None ones skipped) by `aggregation`."""
        from evalsuite.stats import aggregate_values

        return aggregate_values([v for v in values if v is not None], self.aggregation)

    @classmethod
    def info(cls) -> MetricInfo:
        return MetricInfo(
            cls.name,
            cls.label,
            cls.unit,
            cls.higher_is_better,
            cls.applies_to,
            cls.aggregation,
            cls.paired,
            cls.needs,
        )


METRICS: Registry[type[Metric]] = Registry("metric")


def register_metric(cls: type[Metric]) -> type[Metric]:
    """File a Metric subclass in METRICS under its own `name` (declared once, on the class)."""
    if not cls.name or not cls.label:
        raise ValueError(f"{cls.__name__} must declare a name and a label")
    return METRICS.register(cls.name)(cls)
