"""Rank metrics of a retrieval result against the gold source, one definition for the retrieval track
(retrieval/evaluate.py, the index alone at any k) and the evaluation (evalsuite/metrics/retrieval.py, the
contexts an arm put in its prompts).

>>> gold_rank(["a.md", "b.md", "b.md"], "b.md"), reciprocal_rank(["a.md", "b.md"], "b.md")
(2, 0.5)
>>> gold_rank(["a.md"], "b.md"), reciprocal_rank(["a.md"], "b.md")
(None, 0.0)
"""

from collections.abc import Sequence


def gold_rank(retrieved: Sequence[str], gold: str) -> int | None:
    """1-based rank of the first retrieved source equal to `gold`; None when it is not retrieved."""
    return next((rank for rank, s in enumerate(retrieved, 1) if s == gold), None)


def recall_hit(retrieved: Sequence[str], gold: str) -> float:
    """Recall@k of one question: 1.0 when the gold source is among the k retrieved sources, else 0.0."""
    return float(gold_rank(retrieved, gold) is not None)


def reciprocal_rank(retrieved: Sequence[str], gold: str) -> float:
    """1 / rank of the first retrieved chunk from the gold source (0.0 when absent); MRR is its mean."""
    rank = gold_rank(retrieved, gold)
    return 1.0 / rank if rank else 0.0
