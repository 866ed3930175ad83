"""Bootstrap confidence intervals and paired bootstrap tests (seeded, percentile method).

>>> m = summarize([1, 0, 1, 1], n_boot=200, seed=0)
>>> m["value"], m["n"], 0 <= m["ci95"][0] <= m["value"] <= m["ci95"][1] <= 1
(0.75, 4, True)
"""

from __future__ import annotations

import numpy as np

# An aggregation's percentile (None: the mean; "max": the largest value, one measurement per arm).
PERCENTILE = {"mean": None, "p50": 50, "p95": 95, "max": 100}


def aggregate_values(values: list[float], aggregation: str = "mean") -> float | None:
    """The point value of `summarize` without its CI.

    >>> aggregate_values([1, 0, 1, 1]), aggregate_values([0.2, 0.4, 0.9], "max")
    (0.75, 0.9)
    """
    if not values:
        return None
    q = PERCENTILE[aggregation]
    return float(np.mean(values)) if q is None else float(np.percentile(values, q))


def summarize_by(values: list[float], aggregation: str, n_boot: int = 1000, seed: int = 0) -> dict:
    """`summarize` with a metric's declared aggregation (mean, p50, p95, max). "max" is one measurement per arm
    (every row of the arm carries it): its CI is the point and n is 1."""
    if aggregation == "max":
        top = round(float(max(values)), 6)
        return {"value": top, "ci95": [top, top], "n": 1}
    return summarize(values, n_boot, seed, q=PERCENTILE[aggregation])


def summarize(values: list[float], n_boot: int = 1000, seed: int = 0, q: float | None = None) -> dict:
    """{'value': statistic, 'ci95': [lo, hi], 'n': count} with a percentile bootstrap CI.
    The statistic is the mean, or the q-th percentile when q is given (latency p50/p95)."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0:
        return {"value": None, "ci95": [None, None], "n": 0}
    rng = np.random.default_rng(seed)
    resampled = x[rng.integers(0, n, size=(n_boot, n))]
    if q is None:
        value, stats = x.mean(), resampled.mean(axis=1)
    else:
        value, stats = np.percentile(x, q), np.percentile(resampled, q, axis=1)
    lo, hi = np.percentile(stats, [2.5, 97.5])
    return {"value": round(float(value), 6), "ci95": [round(float(lo), 6), round(float(hi), 6)], "n": n}


def paired_difference(a: list[float], b: list[float], n_boot: int = 1000, seed: int = 0) -> dict:
    """Mean of a − b over paired items, its bootstrap CI, and a two-sided bootstrap p-value
    (twice the share of resampled differences on the other side of zero)."""
    x = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n = len(x)
    if n == 0:
        return {"value": None, "ci95": [None, None], "n": 0, "p_value": None}
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    d = float(x.mean())
    if np.all(x == 0):
        p = 1.0
    else:
        p = float(min(1.0, 2 * min((means <= 0).mean(), (means >= 0).mean())))
    return {"value": round(d, 6), "ci95": [round(float(lo), 6), round(float(hi), 6)], "n": n, "p_value": round(p, 4)}


def _kappa(a: np.ndarray, b: np.ndarray) -> float:
    po = float((a == b).mean())
    pe = float(a.mean() * b.mean() + (1 - a.mean()) * (1 - b.mean()))
    return 1.0 if pe == 1 else (po - pe) / (1 - pe)


def cohen_kappa(a: list[float], b: list[float], n_boot: int = 1000, seed: int = 0) -> dict:
    """Cohen's kappa between two binary raters (e.g. the LLM judge and the judge-free accuracy) over the
    same items, with a percentile bootstrap CI over items.

    >>> cohen_kappa([1, 1, 0, 0], [1, 1, 0, 0], 200)["value"], cohen_kappa([1, 0, 1, 0], [1, 1, 0, 0], 200)["value"]
    (1.0, 0.0)
    """
    x, y = np.asarray(a, dtype=float) > 0.5, np.asarray(b, dtype=float) > 0.5
    n = len(x)
    if n == 0:
        return {"value": None, "ci95": [None, None], "n": 0}
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    stats = [_kappa(x[i], y[i]) for i in idx]
    lo, hi = np.percentile(stats, [2.5, 97.5])
    return {"value": round(_kappa(x, y), 6), "ci95": [round(float(lo), 6), round(float(hi), 6)], "n": n}
