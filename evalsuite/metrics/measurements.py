"""Run-level measurements: values an arm gets that are not a score of one answer (latency, prompt length, memory,
the forgetting probes, perplexity, the judge's agreement). Declared like the metric classes so the evaluation, the
report and the dashboard read their label, unit, direction and aggregation from one place (METRIC_INFO)."""

from __future__ import annotations

from evalsuite.metrics.base import MetricInfo

MEASUREMENTS = [
    MetricInfo("probe_accuracy", "probe accuracy", applies_to="probes", needs="run"),
    MetricInfo("probe_accuracy_norm", "probe accuracy (length-normalised)", applies_to="probes", needs="run"),
    # tuned − base probe accuracy on the same items: 0 is no forgetting, below 0 is knowledge lost.
    MetricInfo("forgetting", "forgetting, tuned − base", "points", applies_to="probes", needs="run"),
    MetricInfo("perplexity", "perplexity on general text", "score", False, "probes", needs="run"),
    MetricInfo("perplexity_change", "perplexity change, tuned − base", "score", False, "probes", needs="run"),
    MetricInfo("latency_p50_s", "median latency", "seconds", False, "all", "p50", needs="run"),
    MetricInfo("latency_p95_s", "95th-percentile latency", "seconds", False, "all", "p95", needs="run"),
    MetricInfo("prompt_tokens", "prompt tokens", "tokens", False, "all", needs="run"),
    MetricInfo("peak_memory_mb", "peak memory", "MB", False, "run", "max", needs="run"),
    MetricInfo("judge_accuracy", "accuracy by the LLM judge", applies_to="answerable", needs="run"),
    MetricInfo("judge_kappa", "judge agreement (Cohen's kappa)", "score", applies_to="answerable", needs="run"),
]
