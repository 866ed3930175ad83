"""Altair charts for the dashboard, built from what a run wrote (metrics.json, training.json) or from a
recommendation dict. Each function returns an `alt.Chart`; Streamlit renders it with st.altair_chart.

    st.altair_chart(ci_bars(metric_frame(metrics, ["accuracy", "f1"]), "share of answerable questions"))
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from advisor.core.arms import ARM_LABEL, ARM_TABLE, OPTION_LABEL
from advisor.core.config import ARMS

# Every arm and option in the colour of the arm table (docs/architecture.md, 'The arm table'), on every page.
ARM_ORDER = [a.label for a in ARM_TABLE]
ARM_COLOR = alt.Scale(domain=ARM_ORDER, range=[a.colour for a in ARM_TABLE])
OPTION_ORDER = [a.label for a in ARM_TABLE if a.option]
OPTION_COLOR = alt.Scale(domain=OPTION_ORDER, range=[a.colour for a in ARM_TABLE if a.option])
SHADES = [1.0, 0.55, 0.3, 0.15]  # opacity of the 1st, 2nd, ... metric (or cost part) drawn in one arm's colour
METRIC_LABEL = {
    "accuracy": "accuracy (correct)", "exact_match": "exact match", "f1": "token F1", "containment": "answer contained",
    "hallucination_rate": "hallucination rate", "abstention_rate": "abstains on unanswerable",
    "false_abstention_rate": "declines answerable", "recall_at_k": "recall@k", "mrr": "MRR",
    "probe_accuracy": "probe accuracy", "forgetting": "forgetting (tuned − base)",
    "latency_p50_s": "latency p50 (s)", "latency_p95_s": "latency p95 (s)",
}


def metric_frame(metrics: dict, names: list[str], arms: list[str] | None = None) -> pd.DataFrame:
    """Long table: arm, metric, value, lo, hi, n for the named metrics of every arm that has them."""
    rows = []
    for arm in arms or ARMS:
        for name in names:
            m = metrics["arms"].get(arm, {}).get(name)
            if m is None:
                continue
            rows.append({"arm": ARM_LABEL[arm], "metric": METRIC_LABEL.get(name, name), "value": m["value"],
                         "lo": m["ci95"][0], "hi": m["ci95"][1], "n": m["n"]})
    return pd.DataFrame(rows, columns=["arm", "metric", "value", "lo", "hi", "n"])


def ci_bars(df: pd.DataFrame, y_title: str, pct: bool = True, height: int = 260) -> alt.Chart:
    """Bars per arm (grouped by metric when there are several) with 95% CI error bars (rule from lo to hi)."""
    fmt = ".0%" if pct else ".2f"
    order = list(dict.fromkeys(df["metric"]))
    enc = {"x": alt.X("arm:N", sort=ARM_ORDER, title=None, axis=alt.Axis(labelAngle=0)),
           "tooltip": ["arm", "metric", alt.Tooltip("value:Q", format=fmt), alt.Tooltip("lo:Q", format=fmt, title="CI low"),
                       alt.Tooltip("hi:Q", format=fmt, title="CI high"), "n"]}
    color = alt.Color("arm:N", scale=ARM_COLOR, legend=None)  # the arm's own colour, whatever the metric
    shade = {}
    if len(order) > 1:  # metrics side by side within an arm, told apart by shade (colour means arm everywhere)
        enc["xOffset"] = alt.XOffset("metric:N", sort=order)
        shade = {"opacity": alt.Opacity("metric:N", sort=order, scale=alt.Scale(range=SHADES[:len(order)]),
                                        legend=alt.Legend(orient="top", title=None))}
    base = alt.Chart(df).encode(**enc)
    bars = base.mark_bar().encode(y=alt.Y("value:Q", title=y_title, axis=alt.Axis(format=fmt)), color=color,
                                  **shade)
    ci = base.mark_rule(color="black", strokeWidth=1.5).encode(y="lo:Q", y2="hi:Q")
    caps = [base.mark_tick(color="black", thickness=1.5, size=8, orient="horizontal").encode(y=f"{end}:Q")
            for end in ("lo", "hi")]
    return alt.layer(bars, ci, *caps).properties(height=height)


def diverging_ci(df: pd.DataFrame, x_title: str) -> alt.Chart:
    """Horizontal bars around zero with CI (for differences such as forgetting = tuned − base)."""
    base = alt.Chart(df).encode(y=alt.Y("arm:N", sort=ARM_ORDER, title=None))
    bars = base.mark_bar().encode(
        x=alt.X("value:Q", title=x_title, axis=alt.Axis(format="+.0%")),
        color=alt.Color("arm:N", scale=ARM_COLOR, legend=None),
        tooltip=["arm", alt.Tooltip("value:Q", format="+.1%"), alt.Tooltip("lo:Q", format="+.1%"),
                 alt.Tooltip("hi:Q", format="+.1%"), "n"])
    errors = base.mark_rule(color="black", strokeWidth=1.5).encode(x="lo:Q", x2="hi:Q")
    caps = [base.mark_tick(color="black", thickness=1.5, size=10, orient="vertical").encode(x=f"{end}:Q")
            for end in ("lo", "hi")]
    zero = alt.Chart(pd.DataFrame({"x": [0]})).mark_rule(strokeDash=[4, 3]).encode(x="x:Q")
    return alt.layer(bars, errors, *caps, zero).properties(height=70 + 35 * len(df))


def loss_curve(training: dict) -> alt.Chart:
    """Training loss per step (thin) and validation loss where it was measured (points and line)."""
    hist = training.get("history") or []
    rows = [{"step": h["step"], "loss": h["loss"], "kind": "train loss"} for h in hist if "loss" in h]
    rows += [{"step": h["step"], "loss": h["val_loss"], "kind": "validation loss"} for h in hist if "val_loss" in h]
    df = pd.DataFrame(rows, columns=["step", "loss", "kind"])
    color = alt.Color("kind:N", scale=alt.Scale(domain=["train loss", "validation loss"], range=["#bbbbbb", "#d62728"]),
                      legend=alt.Legend(orient="top", title=None))
    base = alt.Chart(df).encode(x=alt.X("step:Q", title="optimizer step"),
                                y=alt.Y("loss:Q", title="cross-entropy loss", scale=alt.Scale(zero=False)),
                                color=color, tooltip=["kind", "step", alt.Tooltip("loss:Q", format=".3f")])
    train = base.transform_filter(alt.datum.kind == "train loss").mark_line(strokeWidth=1)
    val = base.transform_filter(alt.datum.kind == "validation loss").mark_line(point=True, strokeWidth=3)
    return (train + val).properties(height=260)


def utility_bars(utilities: dict[str, float], verdict: str) -> alt.Chart:
    """One bar per option in its own colour; the advised option solid, the others faded."""
    df = pd.DataFrame([{"option": OPTION_LABEL.get(o, o), "utility": u, "advised": o == verdict}
                       for o, u in utilities.items()])
    return alt.Chart(df).mark_bar().encode(
        x=alt.X("utility:Q", title="weighted utility (0–1, higher is better)", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("option:N", title=None, sort="-x"),
        color=alt.Color("option:N", scale=OPTION_COLOR, legend=None),
        opacity=alt.Opacity("advised:N", scale=alt.Scale(domain=[True, False], range=[1.0, 0.45]), legend=None),
        tooltip=["option", alt.Tooltip("utility:Q", format=".3f"), "advised"],
    ).properties(height=40 + 35 * len(df))


def cost_bars(df: pd.DataFrame, currency: str = "") -> alt.Chart:
    """Stacked monthly cost per option in its own colour: building (re-indexing / retraining) solid, serving
    shaded."""
    parts = ["build per month", "serving per month"]
    long = df.melt(id_vars=["option"], value_vars=parts, var_name="part", value_name="cost")
    unit = f" ({currency})" if currency else ""
    return alt.Chart(long).mark_bar().encode(
        x=alt.X("cost:Q", title=f"projected cost per month{unit}", axis=alt.Axis(format=",.2f")),
        y=alt.Y("option:N", title=None, sort=list(df["option"])),
        color=alt.Color("option:N", scale=OPTION_COLOR, legend=None),
        opacity=alt.Opacity("part:N", sort=parts, scale=alt.Scale(domain=parts, range=SHADES[:2]),
                            legend=alt.Legend(orient="top", title=None)),
        tooltip=["option", "part", alt.Tooltip("cost:Q", format=",.2f", title=f"cost{unit}")],
    ).properties(height=110 + 40 * df["option"].nunique())  # Streamlit fits axes and legend inside the height
