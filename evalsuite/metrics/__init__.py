"""Judge-free metrics as small classes with one scoring method (docs/architecture.md, 'Extension points'); see base.py for the API.

    from evalsuite.metrics import METRICS, Sample
    METRICS.get("f1")().score(Sample("q", ["Paris"], prediction="Paris, France"))

The same metrics ship as `evaluate` modules under evalsuite/hf_metrics/ (loaded by path).
"""

from pathlib import Path

from evalsuite.metrics.accuracy import (
    Accuracy,
    Containment,
    ExactMatch,
    SemanticSimilarity,
    TokenF1,
    contains_answer,
    f1_score,
    is_correct,
)
from evalsuite.metrics.base import METRICS, Metric, Sample, Score
from evalsuite.metrics.citation import BareCitation, is_bare_citation
from evalsuite.metrics.hallucination import (
    Abstention,
    Fabrication,
    Faithfulness,
    FalseAbstention,
    Hallucination,
    WrongAndConfident,
    is_abstention,
)
from evalsuite.metrics.retrieval import MRR, RecallAtK
from evalsuite.normalize import normalize_answer

# The order metrics.json and the per-question rows list them in.
ANSWER_METRICS = [
    "accuracy",
    "exact_match",
    "f1",
    "containment",
    "abstention_rate",
    "false_abstention_rate",
    "hallucination_rate",
    "fabrication_rate",
    "wrong_and_confident_rate",
    "bare_citation_rate",
]
EMBEDDING_METRICS = ["semantic_similarity"]  # need a sentence embedder
RETRIEVAL_METRICS = ["recall_at_k", "mrr", "faithfulness"]
# `evaluate` metric modules kept in the project: evaluate.load(str(HF_METRICS_DIR / "advisor_qa")).
HF_METRICS_DIR = Path(__file__).resolve().parent.parent / "hf_metrics"

__all__ = [
    "ANSWER_METRICS",
    "EMBEDDING_METRICS",
    "HF_METRICS_DIR",
    "METRICS",
    "MRR",
    "RETRIEVAL_METRICS",
    "Abstention",
    "Accuracy",
    "BareCitation",
    "Containment",
    "ExactMatch",
    "Fabrication",
    "Faithfulness",
    "FalseAbstention",
    "Hallucination",
    "Metric",
    "RecallAtK",
    "Sample",
    "Score",
    "SemanticSimilarity",
    "TokenF1",
    "WrongAndConfident",
    "contains_answer",
    "f1_score",
    "is_abstention",
    "is_bare_citation",
    "is_correct",
    "normalize_answer",
]
