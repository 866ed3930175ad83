"""Retrieval metrics against the gold source document: recall@k and MRR (their definitions: advisor/core/ranking.py,
shared with the retrieval track).

>>> s = Sample("q", ["x"], source="b.md", context_sources=["a.md", "b.md"])
>>> RecallAtK().score(s).value, MRR().score(s).value
(1.0, 0.5)
"""

from __future__ import annotations

from advisor.core.ranking import gold_rank, recall_hit
from evalsuite.metrics.base import Metric, Sample, Score, register_metric  # noqa: F401 - the >>> examples use Sample


@register_metric
class RecallAtK(Metric):
    """Retrieval: 1 when the gold source is among the retrieved chunks' sources."""

    name, label, needs = "recall_at_k", "recall@k", "retrieval"
    applies_to = "gold_source"

    def score(self, sample):
        hit = recall_hit(sample.context_sources, sample.source)
        return Score(hit, "gold source retrieved" if hit else "gold source missing")


@register_metric
class MRR(Metric):
    """Retrieval: 1 / rank of the first chunk from the gold source (0 when absent)."""

    name, label, unit, needs = "mrr", "MRR", "score", "retrieval"
    applies_to = "gold_source"

    def score(self, sample):
        rank = gold_rank(sample.context_sources, sample.source)
        return Score(1.0 / rank, f"gold source at rank {rank}") if rank else Score(0.0, "gold source missing")
