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
from evalsuite.metrics.base import METRICS, Metric, MetricInfo, Sample, Score, register_metric
from evalsuite.metrics.citation import BareCitation, is_bare_citation, row_scored_answer, scored_answer
from evalsuite.metrics.hallucination import (
    Abstention,
    Fabrication,
    Faithfulness,
    FalseAbstention,
    Hallucination,
    WrongAndConfident,
    is_abstention,
)
from evalsuite.metrics.measurements import MEASUREMENTS
from evalsuite.metrics.retrieval import MRR, RecallAtK
from evalsuite.normalize import normalize_answer

# Every metric and measurement, by name: what the report and the dashboard show (label, unit, direction).
METRIC_INFO: dict[str, MetricInfo] = {
    **{n: METRICS.get(n).info() for n in METRICS.names()},
    **{m.name: m for m in MEASUREMENTS},
}
# The order every table and metrics.json lists them in: what the decision turns on first
# (tests/test_metrics.py checks it names each of METRIC_INFO once).
METRIC_ORDER = [
    "accuracy",
    "hallucination_rate",
    "abstention_rate",
    "false_abstention_rate",
    "wrong_and_confident_rate",
    "fabrication_rate",
    "bare_citation_rate",
    "f1",
    "exact_match",
    "containment",
    "semantic_similarity",
    "recall_at_k",
    "mrr",
    "faithfulness",
    "probe_accuracy",
    "probe_accuracy_norm",
    "forgetting",
    "perplexity",
    "perplexity_change",
    "latency_p50_s",
    "latency_p95_s",
    "prompt_tokens",
    "peak_memory_mb",
    "judge_accuracy",
    "judge_kappa",
]
SCORED = [n for n in METRIC_ORDER if n in METRICS]  # scored per answer by a metric class
ANSWER_METRICS = [n for n in SCORED if METRIC_INFO[n].needs == "answer"]
EMBEDDING_METRICS = [n for n in SCORED if METRIC_INFO[n].needs == "embedder"]  # need a sentence embedder
RETRIEVAL_METRICS = [n for n in SCORED if METRIC_INFO[n].needs == "retrieval"]
PAIRED_METRICS = [n for n in SCORED if METRIC_INFO[n].paired]  # compared arm against arm, same questions
# `evaluate` metric modules kept in the project: evaluate.load(str(HF_METRICS_DIR / "advisor_qa")).
HF_METRICS_DIR = Path(__file__).resolve().parent.parent / "hf_metrics"

__all__ = [
    "ANSWER_METRICS",
    "EMBEDDING_METRICS",
    "HF_METRICS_DIR",
    "METRICS",
    "METRIC_INFO",
    "METRIC_ORDER",
    "MetricInfo",
    "PAIRED_METRICS",
    "SCORED",
    "register_metric",
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
    "row_scored_answer",
    "scored_answer",
]
