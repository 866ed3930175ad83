"""What a person is shown about each metric (label, unit, direction, order), for the report and the dashboard:
the metrics' own declarations in evalsuite/metrics (METRIC_INFO), passed up to the ui layer, which talks to
advisor only (docs/architecture.md, 'Layers')."""

from evalsuite.metrics import METRIC_INFO, METRIC_ORDER, MetricInfo

# Labels a person reads, never the metrics.json keys: 'median latency (s)'.
METRIC_LABEL = {n: info.display for n, info in METRIC_INFO.items()}
LOWER_IS_BETTER = {n for n, info in METRIC_INFO.items() if not info.higher_is_better}

__all__ = ["LOWER_IS_BETTER", "METRIC_INFO", "METRIC_LABEL", "METRIC_ORDER", "MetricInfo"]
