"""Retrieval metrics against the gold source document: recall@k and MRR (their definitions: advisor/core/ranking.py,
shared with the retrieval track).

>>> s = Sample("q", ["x"], source="b.md", context_sources=["a.md", "b.md"])
>>> RecallAtK().score(s).value, MRR().score(s).value
(1.0, 0.5)
"""

from __future__ import annotations

from advisor.core.ranking import gold_rank, recall_hit
from evalsuite.metrics.base import METRICS, Metric, Sample, Score  # noqa: F401 - the >>> examples use Sample


@METRICS.register("recall_at_k")
class RecallAtK(Metric):
    """Retrieval: 1 when the gold source is among the retrieved chunks' sources."""

    name = "recall_at_k"
    applies_to = "retrieval"

    def score(self, sample):
        if sample.unanswerable or not sample.source or not sample.context_sources:
            return Score(None)
        hit = recall_hit(sample.context_sources, sample.source)
        return Score(hit, "gold source retrieved" if hit else "gold source missing")


@METRICS.register("mrr")
class MRR(Metric):
    """Retrieval: 1 / rank of the first chunk from the gold source (0 when absent)."""

    name = "mrr"
    applies_to = "retrieval"

    def score(self, sample):
        if sample.unanswerable or not sample.source or not sample.context_sources:
            return Score(None)
        rank = gold_rank(sample.context_sources, sample.source)
        return Score(1.0 / rank, f"gold source at rank {rank}") if rank else Score(0.0, "gold source missing")
