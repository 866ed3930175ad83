"""Projected monthly cost per option from a run's measured build times and serving latencies.

    monthly_costs({"rag": 18, ...}, {"rag": 1.9, ...}, price_per_hour=2.0, queries_per_day=1000, rebuilds_per_month=1)

Model (stated on the Cost page): the hardware the run was measured on costs `price_per_hour`;
- serving: each query keeps one machine busy for its p50 latency, so busy hours per month =
  queries per day x DAYS_PER_MONTH x p50 seconds / 3600;
- building: each rebuild repeats the option's measured build (rag: the index; fine-tune: training data +
  training; both: both), `rebuilds_per_month` times a month, plus nothing for a corpus that never changes.
"""

from __future__ import annotations

import pandas as pd

from advisor.core.arms import OPTION_LABEL

DAYS_PER_MONTH = 30.4
HOURS_PER_MONTH = 24 * DAYS_PER_MONTH
# Rebuilds a month implied by how often the knowledge changes (the recommendation's `knowledge_change` fact).
REBUILDS_PER_MONTH = {"static": 0.0, "yearly": 1 / 12, "monthly": 1.0, "weekly": 52 / 12, "daily": DAYS_PER_MONTH}


def monthly_costs(build_s: dict[str, float], latency_s: dict[str, float], price_per_hour: float,
                  queries_per_day: float, rebuilds_per_month: float) -> pd.DataFrame:
    """One row per option: inputs, busy hours, cost of building and serving per month, cost per 1,000 queries."""
    if price_per_hour < 0 or queries_per_day < 0 or rebuilds_per_month < 0:
        raise ValueError("price, queries per day and rebuilds per month must not be negative")
    rows = []
    for opt in build_s:
        serve_h = queries_per_day * DAYS_PER_MONTH * latency_s[opt] / 3600
        build_h = rebuilds_per_month * build_s[opt] / 3600
        rows.append({
            "option": OPTION_LABEL.get(opt, opt),
            "build time (s)": round(build_s[opt], 1),
            "latency p50 (s)": round(latency_s[opt], 3),
            "busy machine share": serve_h / HOURS_PER_MONTH,
            "build per month": build_h * price_per_hour,
            "serving per month": serve_h * price_per_hour,
            "total per month": (build_h + serve_h) * price_per_hour,
            "per 1,000 queries": 1000 * latency_s[opt] / 3600 * price_per_hour,
        })
    return pd.DataFrame(rows)
