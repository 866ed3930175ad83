"""Projected monthly cost per option, in money, from a run's measured build times and serving latencies.
The Cost page and the Overview both reach it through ui/common.cost_table, so they show the same figure by
construction.

    s = CostSettings(currency="EUR", build_price_per_hour=3.0, serve_price_per_hour=1.2, queries_per_day=1000,
                     rebuilds_per_month=1.0)
    monthly_costs(build_s, latency_s, s)     # each {option: seconds}, e.g. a run's evidence build_s, latency_s

Model (stated on the Cost page):
- serving: each query keeps one machine busy for its p50 latency, so busy hours per month =
  queries per day x DAYS_PER_MONTH x p50 seconds / 3600, paid at the serving price; with an always-on
  serving machine, every hour of the month is paid for each machine the busy hours need (at least one);
- building: each rebuild repeats the option's measured build (rag: the index; fine-tune: training data +
  training; both: both) at the build price, `rebuilds_per_month` times a month (0 for a corpus that
  never changes); the first build is a one-off, shown apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from advisor.core.arms import OPTION_LABEL

DAYS_PER_MONTH = 30.4
HOURS_PER_MONTH = 24 * DAYS_PER_MONTH
# Rebuilds a month implied by how often the knowledge changes (the recommendation's `knowledge_change` fact).
REBUILDS_PER_MONTH = {"static": 0.0, "yearly": 1 / 12, "monthly": 1.0, "weekly": 52 / 12, "daily": DAYS_PER_MONTH}
CURRENCIES = ["USD", "EUR", "GBP", "JPY", "CNY", "INR", "CHF", "CAD", "AUD"]  # offered; any other may be typed


@dataclass(frozen=True)
class CostSettings:
    """The money side of a cost projection; one instance feeds the Cost page and the Overview."""

    currency: str = "USD"
    build_price_per_hour: float = 1.0  # the machine that builds the index and trains the adapter
    serve_price_per_hour: float = 1.0  # the machine that answers questions
    queries_per_day: float = 1000.0
    rebuilds_per_month: float = 1.0  # default: from the knowledge_change fact (REBUILDS_PER_MONTH)
    always_on: bool = False  # the serving machine is paid for every hour, busy or not

    def money(self, amount: float) -> str:
        return f"{amount:,.2f} {self.currency}"

    def describe(self) -> str:
        """The settings in one line, for a caption under a figure computed with them."""
        serving = "an always-on serving machine" if self.always_on else "serving paid per busy hour"
        return (
            f"build machine {self.money(self.build_price_per_hour)}/h, serving machine "
            f"{self.money(self.serve_price_per_hour)}/h, {self.queries_per_day:,.0f} queries a day, "
            f"{self.rebuilds_per_month:.2f} rebuilds a month, {serving}"
        )


def settings_for(knowledge_change: str, **given) -> CostSettings:
    """CostSettings with `given` fields; rebuilds per month default to what `knowledge_change` implies."""
    given.setdefault("rebuilds_per_month", REBUILDS_PER_MONTH.get(knowledge_change, 1.0))
    return CostSettings(**given)


def monthly_costs(build_s: dict[str, float], latency_s: dict[str, float], s: CostSettings) -> pd.DataFrame:
    """One row per option (column "option" holds its label from the arm table): inputs, busy share, machines
    paid for, first build, cost of building and serving per month, total, and serving cost per 1,000 queries."""
    if min(s.build_price_per_hour, s.serve_price_per_hour, s.queries_per_day, s.rebuilds_per_month) < 0:
        raise ValueError("prices, queries per day and rebuilds per month must not be negative")
    rows = []
    queries_per_month = s.queries_per_day * DAYS_PER_MONTH
    for opt in build_s:
        busy_h = queries_per_month * latency_s[opt] / 3600
        # machines paid for: whole machines when always on, else the busy share of one
        machines = max(1, math.ceil(busy_h / HOURS_PER_MONTH)) if s.always_on else busy_h / HOURS_PER_MONTH
        paid_h = machines * HOURS_PER_MONTH
        serving = paid_h * s.serve_price_per_hour
        build = s.rebuilds_per_month * build_s[opt] / 3600 * s.build_price_per_hour
        rows.append(
            {
                "option": OPTION_LABEL.get(opt, opt),
                "build time (s)": round(build_s[opt], 1),
                "latency p50 (s)": round(latency_s[opt], 3),
                "busy machine share": busy_h / HOURS_PER_MONTH,
                "machines paid for": machines,
                "first build": build_s[opt] / 3600 * s.build_price_per_hour,
                "build per month": build,
                "serving per month": serving,
                "total per month": build + serving,
                "per 1,000 queries": 1000 * serving / queries_per_month if queries_per_month else float("nan"),
            }
        )
    return pd.DataFrame(rows)
