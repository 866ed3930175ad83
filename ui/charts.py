"""Altair charts for the dashboard, built from what a run wrote (metrics.json, training.json) or from a
recommendation dict. Each function returns an `alt.Chart`; Streamlit renders it with st.altair_chart.

    st.altair_chart(ci_bars(metric_frame(metrics, ["accuracy", "f1"]), "share of answerable questions"))
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from advisor.core.arms import ARM, ARM_LABEL, ARM_TABLE, ARMS, OPTION_LABEL, TUNED
from advisor.curve import curve_series
from advisor.metrics import LOWER_IS_BETTER, METRIC_LABEL, METRIC_ORDER

# Every arm and option in the colour of the arm table (docs/architecture.md, 'The arm table'), on every page.
ARM_ORDER = [a.label for a in ARM_TABLE]
ARM_COLOR = alt.Scale(domain=ARM_ORDER, range=[a.colour for a in ARM_TABLE])
OPTION_ORDER = [a.label for a in ARM_TABLE if a.option]
OPTION_COLOR = alt.Scale(domain=OPTION_ORDER, range=[a.colour for a in ARM_TABLE if a.option])
SHADES = [1.0, 0.55, 0.3, 0.15]  # opacity of the 1st, 2nd, ... metric (or cost part) drawn in one arm's colour
ZERO_MARK = "#222222"  # the marker of a bar whose value is 0, which draws no bar at all


def metric_frame(
    metrics: dict, names: list[str], arms: list[str] | None = None, labels: dict[str, str] | None = None
) -> pd.DataFrame:
    """Long table: arm, metric, value, lo, hi, n for the named metrics of every arm that has them (`labels`
    overrides METRIC_LABEL, e.g. recall@k with the run's k)."""
    labels = {**METRIC_LABEL, **(labels or {})}
    rows = []
    for arm in arms or ARMS:
        for name in names:
            m = metrics["arms"].get(arm, {}).get(name)
            if m is None:
                continue
            rows.append(
                {
                    "arm": ARM_LABEL[arm],
                    "metric": labels.get(name, name),
                    "value": m["value"],
                    "lo": m["ci95"][0],
                    "hi": m["ci95"][1],
                    "n": m["n"],
                }
            )
    return pd.DataFrame(rows, columns=["arm", "metric", "value", "lo", "hi", "n"])


def pair_rank(a: str, b: str) -> tuple:
    """Where the paired difference 'a - b' goes: the comparisons between options first (the most built-on option
    first), then what each option adds to the base model, in arm-table order; a pair of unknown arms last."""
    if a not in ARM or b not in ARM:
        return (2, 0, 0)
    ia, ib = ARMS.index(a), ARMS.index(b)
    return (0, -ia, ib) if ARM[b].option else (1, ia, ib)


def pair_meaning(a: str, b: str) -> str:
    """What the paired difference 'a - b' shows, from what each arm is built with (the arm table)."""
    if a not in ARM or b not in ARM:
        return ""
    A, B = ARM[a], ARM[b]
    parts = (("fine-tuning", A.needs_adapter, B.needs_adapter), ("retrieval", A.needs_index, B.needs_index))
    added = [w for w, in_a, in_b in parts if in_a and not in_b]
    removed = [w for w, in_a, in_b in parts if in_b and not in_a]
    if added and removed:
        return f"{' and '.join(added)} against {' and '.join(removed)}"
    if added:
        onto = B.label if B.option else "the base model"
        return f"what {' and '.join(added)} {'adds' if len(added) == 1 else 'add'} to {onto}"
    return f"{A.label} against {B.label}"


def p_text(p: float | None, resamples: int | None) -> str:
    """A bootstrap p-value as a person reads it: 'p = 0.160', or 'p < 0.001' when no resample crossed zero
    (the bootstrap cannot resolve a smaller p than 1 / resamples)."""
    if p is None:
        return "–"
    floor = 1 / resamples if resamples else 0.001
    return f"p < {floor:g}" if p < floor else f"p = {p:.3f}"


def paired_frame(paired: dict, resamples: int | None = None) -> pd.DataFrame:
    """One row per comparison and metric, in pair_rank and METRIC_ORDER order, with plain labels: the
    difference and its 95% CI in percentage points (x 100; for token F1 and semantic similarity, points on their
    0–100 scale), p, n and which option the data favour. Columns lo, hi (the CI in points), arm (the first
    option's label, its colour in charts) and key (the metric's name) are for charts, not for reading."""

    def pair_of(key: str) -> tuple[str, str]:
        a, _, b = key.partition(" - ")
        return a.strip(), b.strip()

    keys = sorted(paired, key=lambda k: pair_rank(*pair_of(k)))
    rows = []
    for key in keys:
        a, b = pair_of(key)
        la, lb = ARM_LABEL.get(a, a), ARM_LABEL.get(b, b)
        metrics = sorted(paired[key], key=lambda m: METRIC_ORDER.index(m) if m in METRIC_ORDER else 99)
        for m in metrics:
            d = paired[key][m]
            if d.get("value") is None:
                continue
            lo, hi = 100 * d["ci95"][0], 100 * d["ci95"][1]
            better = la if (d["value"] > 0) != (m in LOWER_IS_BETTER) else lb
            rows.append(
                {
                    "comparison": f"{la} vs {lb}",
                    "metric": METRIC_LABEL.get(m, m.replace("_", " ")),
                    "difference (pts)": 100 * d["value"],
                    "95% CI (pts)": f"[{lo:+.1f}, {hi:+.1f}]",
                    "p": p_text(d.get("p_value"), resamples),
                    "n": d["n"],
                    "the data favour": better if not lo <= 0 <= hi else "neither (CI includes 0)",
                    "what it shows": pair_meaning(a, b) or f"{la} against {lb}",
                    "lo": lo,
                    "hi": hi,
                    "arm": la,
                    "key": m,
                }
            )
    cols = [
        "comparison",
        "metric",
        "difference (pts)",
        "95% CI (pts)",
        "p",
        "n",
        "the data favour",
        "what it shows",
        "lo",
        "hi",
        "arm",
        "key",
    ]
    return pd.DataFrame(rows, columns=cols)


def zero_marks(base: alt.Chart, text: str, vertical: bool = True) -> list[alt.Chart]:
    """A bar of value 0 has no length, so it would look like a measurement that is missing: a diamond on the
    zero line and the label `text` beside it. `base` carries the encodings that place a bar (x, xOffset or y)."""
    zero = base.transform_filter(alt.datum.value == 0)
    at = {"y": "value:Q"} if vertical else {"x": "value:Q"}
    point = zero.mark_point(shape="diamond", filled=True, size=70, color=ZERO_MARK, opacity=1).encode(**at)
    label = zero.mark_text(
        fontSize=11, fontWeight="bold", color=ZERO_MARK, **({"dy": -11} if vertical else {"dx": 9, "align": "left"})
    ).encode(**at, text=alt.value(text))
    return [point, label]


# An arm's label on two lines ("Base" / "model", "Fine-tune" / "+ RAG"): on one line the four did not fit under a
# chart half a 1024 px window wide, and Vega dropped every other one.
TWO_LINES = (
    "indexof(datum.label, ' + ') > 0 ? [slice(datum.label, 0, indexof(datum.label, ' + ')), "
    "slice(datum.label, indexof(datum.label, ' + ') + 1)] : split(datum.label, ' ')"
)


def ci_bars(df: pd.DataFrame, y_title: str, pct: bool = True, height: int = 260, by_metric: bool = False) -> alt.Chart:
    """Bars per arm (grouped by metric when there are several) with 95% CI error bars (rule from lo to hi);
    a value of 0 gets a marker and a label (zero_marks). `by_metric`: the metric (e.g. a group of questions)
    on the x axis, the arms side by side within it."""
    fmt = ".0%" if pct else ".2f"
    order = list(dict.fromkeys(df["metric"]))
    enc = {
        "x": alt.X("arm:N", sort=ARM_ORDER, title=None, axis=alt.Axis(labelAngle=0, labelExpr=TWO_LINES)),
        "tooltip": [
            "arm",
            "metric",
            alt.Tooltip("value:Q", format=fmt),
            alt.Tooltip("lo:Q", format=fmt, title="CI low"),
            alt.Tooltip("hi:Q", format=fmt, title="CI high"),
            "n",
        ],
    }
    color = alt.Color("arm:N", scale=ARM_COLOR, legend=None)  # the arm's own colour, whatever the metric
    shade = {}
    if by_metric:
        enc["x"] = alt.X("metric:N", sort=order, title=None, axis=alt.Axis(labelAngle=0, labelLimit=200))
        enc["xOffset"] = alt.XOffset("arm:N", sort=ARM_ORDER)
        color = alt.Color("arm:N", scale=ARM_COLOR, legend=alt.Legend(orient="top", title=None))
    elif len(order) > 1:  # metrics side by side within an arm, told apart by shade (colour means arm everywhere)
        enc["xOffset"] = alt.XOffset("metric:N", sort=order)
        shade = {
            "opacity": alt.Opacity(
                "metric:N",
                sort=order,
                scale=alt.Scale(range=SHADES[: len(order)]),
                # one a line: in a row they ran past a narrow chart; no length limit (Vega cuts at 160 px)
                legend=alt.Legend(orient="top", title=None, columns=1, labelLimit=0),
            )
        }
    base = alt.Chart(df).encode(**enc)
    bars = base.mark_bar().encode(y=alt.Y("value:Q", title=y_title, axis=alt.Axis(format=fmt)), color=color, **shade)
    ci = base.mark_rule(color="black", strokeWidth=1.5).encode(y="lo:Q", y2="hi:Q")
    caps = [
        base.mark_tick(color="black", thickness=1.5, size=8, orient="horizontal").encode(y=f"{end}:Q")
        for end in ("lo", "hi")
    ]
    return alt.layer(bars, ci, *caps, *zero_marks(base, "0%" if pct else "0")).properties(height=height)


def diverging_ci(
    df: pd.DataFrame, x_title: str, y: str = "arm", fmt: str = "+.0%", unit: str = "", labels: bool = False
) -> alt.Chart:
    """Horizontal bars around zero with CI (for differences such as forgetting = tuned − base, or the paired
    differences between options), coloured by the `arm` column; `y` names the rows (in the frame's order
    unless it is the arm). `labels`: each bar's value written past its CI; a 0 always gets a marker and label."""
    sort = ARM_ORDER if y == "arm" else list(dict.fromkeys(df[y]))
    tip = fmt.replace(".0", ".1")
    base = alt.Chart(df).encode(y=alt.Y(f"{y}:N", sort=sort, title=None, axis=alt.Axis(labelLimit=260)))
    bars = base.mark_bar().encode(
        x=alt.X("value:Q", title=x_title, axis=alt.Axis(format=fmt)),
        color=alt.Color("arm:N", scale=ARM_COLOR, legend=None),
        tooltip=[
            y,
            alt.Tooltip("value:Q", format=tip),
            alt.Tooltip("lo:Q", format=tip, title="CI low"),
            alt.Tooltip("hi:Q", format=tip, title="CI high"),
            "n",
        ],
    )
    errors = base.mark_rule(color="black", strokeWidth=1.5).encode(x="lo:Q", x2="hi:Q")
    caps = [
        base.mark_tick(color="black", thickness=1.5, size=10, orient="vertical").encode(x=f"{end}:Q")
        for end in ("lo", "hi")
    ]
    zero = alt.Chart(pd.DataFrame({"x": [0]})).mark_rule(strokeDash=[4, 3]).encode(x="x:Q")
    layers = [bars, errors, *caps, zero, *zero_marks(base, f"0{unit}", vertical=False)]
    if labels:  # past the CI's upper end, where no bar or whisker is drawn
        layers.append(
            base.transform_filter(alt.datum.value != 0)
            .mark_text(align="left", dx=6, fontSize=11)
            .encode(x="hi:Q", text=alt.Text("value:Q", format=tip))
        )
    return alt.layer(*layers).properties(height=70 + 35 * len(df))


def value_bars(df: pd.DataFrame, x_title: str, unit: str = "", fmt: str = ",.1f") -> alt.Chart:
    """Horizontal bars per arm for a single measurement without a CI (a drill's update time), each labelled
    with its value; a 0 gets a marker and a label."""
    df = df.assign(label=[f"{v:{fmt}}{unit}" for v in df["value"]])
    base = alt.Chart(df).encode(y=alt.Y("arm:N", sort=ARM_ORDER, title=None))
    bars = base.mark_bar().encode(
        x=alt.X("value:Q", title=x_title),
        color=alt.Color("arm:N", scale=ARM_COLOR, legend=None),
        tooltip=["arm", alt.Tooltip("value:Q", format=fmt)],
    )
    text = (
        base.transform_filter(alt.datum.value != 0)
        .mark_text(align="left", dx=4, fontSize=11)
        .encode(x="value:Q", text=alt.Text("label:N"))
    )
    return alt.layer(bars, text, *zero_marks(base, f"0{unit}", vertical=False)).properties(height=40 + 35 * len(df))


def loss_curve(training: dict) -> alt.Chart:
    """Training loss per step (thin) and validation loss where it was measured (points and line)."""
    hist = training.get("history") or []
    rows = [{"step": h["step"], "loss": h["loss"], "kind": "train loss"} for h in hist if "loss" in h]
    rows += [{"step": h["step"], "loss": h["val_loss"], "kind": "validation loss"} for h in hist if "val_loss" in h]
    df = pd.DataFrame(rows, columns=["step", "loss", "kind"])
    color = alt.Color(
        "kind:N",
        scale=alt.Scale(domain=["train loss", "validation loss"], range=["#bbbbbb", "#d62728"]),
        legend=alt.Legend(orient="top", title=None),
    )
    base = alt.Chart(df).encode(
        x=alt.X("step:Q", title="optimizer step"),
        y=alt.Y("loss:Q", title="cross-entropy loss", scale=alt.Scale(zero=False)),
        color=color,
        tooltip=["kind", "step", alt.Tooltip("loss:Q", format=".3f")],
    )
    train = base.transform_filter(alt.datum.kind == "train loss").mark_line(strokeWidth=1)
    val = base.transform_filter(alt.datum.kind == "validation loss").mark_line(point=True, strokeWidth=3)
    return (train + val).properties(height=260)


def learning_curve(curve: dict) -> alt.Chart:
    """Accuracy % along the training steps (eval/curve.json): the eval questions closed book, the adapter's own
    training questions (when measured) and the general-knowledge probe, with a grey rule at the adapter the
    tuned arms use. The report's curve.png draws the same points (advisor/report.py `plot_curve`)."""
    pts = curve["points"]
    names = curve_series(curve)
    eval_label, train_label, probe_label = names["eval"], names["train"], names["probe"]
    rows = []
    for p in pts:
        rows.append({"step": p["step"], "accuracy": p["domain_accuracy"], "series": eval_label})
        rows.append({"step": p["step"], "accuracy": p["probe_accuracy"], "series": probe_label})
    trained = [p for p in pts if "train_accuracy" in p]
    rows += [{"step": p["step"], "accuracy": p["train_accuracy"], "series": train_label} for p in trained]
    df = pd.DataFrame(rows, columns=["step", "accuracy", "series"])
    domain = [eval_label] + ([train_label] if trained else []) + [probe_label]
    # the adapter's lines in the tuned arm's colour; the probe in a darker grey than the base arm's
    colours = [ARM[TUNED].colour] * (2 if trained else 1) + ["#595959"]
    dashes = [[1, 0]] + ([[6, 3]] if trained else []) + [[2, 2]]  # as curve.png: solid, dashed, dotted
    legend = alt.Legend(orient="top", title=None, labelLimit=320)
    lines = (
        alt.Chart(df)
        .mark_line(point=True, strokeWidth=2)
        .encode(
            x=alt.X("step:Q", title="optimizer step (grey rule: the adapter the tuned arms use)"),
            y=alt.Y("accuracy:Q", title="accuracy", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("series:N", scale=alt.Scale(domain=domain, range=colours), legend=legend),
            strokeDash=alt.StrokeDash("series:N", scale=alt.Scale(domain=domain, range=dashes), legend=legend),
            tooltip=["series", "step", alt.Tooltip("accuracy:Q", format=".1%")],
        )
    )
    used = alt.Chart(pd.DataFrame({"step": [curve["used"]["step"]]})).mark_rule(color="#aaaaaa").encode(x="step:Q")
    return (used + lines).properties(height=280)


def utility_bars(utilities: dict[str, float], verdict: str) -> alt.Chart:
    """One bar per option in its own colour; the advised option solid, the others faded."""
    df = pd.DataFrame(
        [{"option": OPTION_LABEL.get(o, o), "utility": u, "advised": o == verdict} for o, u in utilities.items()]
    )
    return (
        alt.Chart(df)
        .mark_bar()
        .encode(
            x=alt.X("utility:Q", title="utility (0–1, higher is better)", scale=alt.Scale(domain=[0, 1])),
            y=alt.Y("option:N", title=None, sort="-x"),
            color=alt.Color("option:N", scale=OPTION_COLOR, legend=None),
            opacity=alt.Opacity("advised:N", scale=alt.Scale(domain=[True, False], range=[1.0, 0.45]), legend=None),
            tooltip=["option", alt.Tooltip("utility:Q", format=".3f"), "advised"],
        )
        .properties(height=40 + 35 * len(df))
    )


def cost_bars(df: pd.DataFrame, currency: str = "") -> alt.Chart:
    """Stacked monthly cost per option in its own colour: building (re-indexing / retraining) solid, serving
    shaded."""
    parts = ["build per month", "serving per month"]
    long = df.melt(id_vars=["option"], value_vars=parts, var_name="part", value_name="cost")
    unit = f" ({currency})" if currency else ""
    return (
        alt.Chart(long)
        .mark_bar()
        .encode(
            x=alt.X("cost:Q", title=f"projected cost per month{unit}", axis=alt.Axis(format=",.2f")),
            y=alt.Y("option:N", title=None, sort=list(df["option"])),
            color=alt.Color("option:N", scale=OPTION_COLOR, legend=None),
            opacity=alt.Opacity(
                "part:N",
                sort=parts,
                scale=alt.Scale(domain=parts, range=SHADES[:2]),
                legend=alt.Legend(orient="top", title=None),
            ),
            tooltip=["option", "part", alt.Tooltip("cost:Q", format=",.2f", title=f"cost{unit}")],
        )
        .properties(height=110 + 40 * df["option"].nunique())
    )  # Streamlit fits axes and legend inside the height
