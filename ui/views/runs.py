"""Runs: every run in the runs folder with its corpus, model, date, status and verdict; compare two."""

import pandas as pd
import streamlit as st

from advisor.core.arms import ARM_LABEL, OPTION_LABEL
from advisor.core.config import ARMS
from ui import charts
from ui.common import confidence, no_runs_message, runs, selected_run
from ui.rundata import RunDataError, load_metrics, load_recommendation

st.title("Runs")
all_runs = runs()
if not all_runs:
    no_runs_message()
    st.stop()

st.dataframe(
    pd.DataFrame(
        [
            {
                "run": r.name,
                "corpus": r.corpus,
                "model": r.model,
                "date": r.date,
                "status": r.status,
                "verdict": OPTION_LABEL.get(r.verdict, "–") if r.verdict else "–",
                "details": r.detail,
            }
            for r in all_runs
        ]
    ),
    hide_index=True,
    width="stretch",
)
st.caption("Open a run with the **Run** picker in the sidebar; the other pages show the run picked there.")

st.subheader("Compare two runs")
comparable = [r for r in all_runs if (r.path / "eval" / "metrics.json").exists()]
if len(comparable) < 2:
    st.info(f"Comparing needs two runs with evaluation results; this folder has {len(comparable)}.")
    st.stop()
names = [r.name for r in comparable]
current = selected_run()
c1, c2 = st.columns(2)
a = c1.selectbox(
    "Run A", names, index=names.index(current.name) if current and current.name in names else 0, key="cmp_a"
)
b = c2.selectbox("Run B", names, index=1 if names[0] == a else 0, key="cmp_b")
if a == b:
    st.info("Pick two different runs.")
    st.stop()


def column(run) -> tuple[dict, pd.DataFrame]:
    """One column of the comparison table, and the run's accuracy frame for the chart."""
    col = {"corpus": run.corpus, "model": run.model, "date": run.date, "status": run.status}
    try:
        metrics = load_metrics(run.path)
    except RunDataError as e:
        col["problem"] = str(e)
        return col, pd.DataFrame()
    try:
        rec = load_recommendation(run.path)
        col["verdict"] = OPTION_LABEL.get(rec["verdict"], rec["verdict"])
        col["stable under other priorities"] = confidence(rec)[0]
        for o, u in rec["utilities"].items():
            col[f"utility: {OPTION_LABEL.get(o, o)}"] = f"{u:.3f}"
    except RunDataError as e:
        col["verdict"] = f"– ({e})"
    for key, label, pct in [
        ("accuracy", "accuracy", True),
        ("hallucination_rate", "hallucination", True),
        ("forgetting", "forgetting", True),
        ("latency_p50_s", "latency p50 s", False),
    ]:
        for arm in ARMS:
            m = metrics["arms"].get(arm, {}).get(key)
            if m:
                f = (lambda x: f"{100 * x:.1f}%") if pct else (lambda x: f"{x:.2f}")
                col[f"{label}: {ARM_LABEL[arm]}"] = f"{f(m['value'])} [{f(m['ci95'][0])}, {f(m['ci95'][1])}] n={m['n']}"
    for stage in ("index", "tune"):
        wall = run.stages.get(stage, {}).get("wall_s")
        if wall is not None:
            col[f"{stage} build s"] = f"{wall:.0f}"
    df = charts.metric_frame(metrics, ["accuracy"]).assign(metric=run.name)
    return col, df


by_name = {r.name: r for r in comparable}
(col_a, df_a), (col_b, df_b) = column(by_name[a]), column(by_name[b])
keys = list(dict.fromkeys([*col_a, *col_b]))
table = pd.DataFrame({a: [str(col_a.get(k, "–")) for k in keys], b: [str(col_b.get(k, "–")) for k in keys]}, index=keys)
st.dataframe(table, width="stretch")
both = pd.concat([df_a, df_b])
if not both.empty:
    st.altair_chart(charts.ci_bars(both, "accuracy (share of answerable questions)"), width="stretch")
    st.caption("Accuracy per arm in each run, with 95% CIs; runs on different question sets are not paired.")
