"""Cost: currency, hardware prices per hour for building and serving, an always-on serving machine, queries
per day and rebuilds per month in; projected monthly cost per option out, from the run's measured p50
latencies (eval/metrics.json) and build times (manifest stages). The settings hold for the whole session:
the Overview shows its cost with them, through the same function (ui/common.cost_table)."""

import streamlit as st

from advisor.core.errors import AdvisorError
from ui import charts
from ui.common import (
    COST_REBUILDS,
    COST_STATE,
    cost_settings,
    cost_table,
    knowledge_change_of,
    not_finished_message,
    require_run,
    run_header,
)
from ui.costs import CURRENCIES, DAYS_PER_MONTH, REBUILDS_PER_MONTH
from ui.rundata import RunDataError, read_json

st.title("What would each option cost?")
run = require_run()
run_header(run)

if not (run.path / "eval" / "metrics.json").exists():
    not_finished_message(run, "The cost projection")
    st.stop()

now = cost_settings(run)  # this session's settings (the defaults on a first visit)
change = knowledge_change_of(run)
c1, c2, c3 = st.columns(3)
currency = c1.selectbox(
    "Currency",
    list(dict.fromkeys([now.currency, *CURRENCIES])),
    key="cost_currency",
    accept_new_options=True,
    help="Pick one or type another; prices below are in it.",
)
build_price = c2.number_input(
    "Build machine price per hour",
    min_value=0.0,
    value=now.build_price_per_hour,
    step=0.1,
    format="%.2f",
    key="cost_build_price",
    help="What the machine that builds the index and trains the adapter costs per hour, "
    "like the one the run was measured on.",
)
serve_price = c3.number_input(
    "Serving machine price per hour",
    min_value=0.0,
    value=now.serve_price_per_hour,
    step=0.1,
    format="%.2f",
    key="cost_serve_price",
    help="What the machine that answers questions costs per hour.",
)
c1, c2, c3 = st.columns(3)
qpd = c1.number_input("Expected queries per day", min_value=0, value=int(now.queries_per_day), step=100, key="cost_qpd")
rebuilds = c2.number_input(
    "Rebuilds per month",
    min_value=0.0,
    value=round(now.rebuilds_per_month, 2),
    step=0.5,
    format="%.2f",
    key="cost_rebuilds",
    help=f"How often the index is rebuilt and the adapter retrained as the knowledge changes "
    f"(default from the run's situation: knowledge changes {change}; "
    + ", ".join(f"{k} {v:.2f}" for k, v in REBUILDS_PER_MONTH.items())
    + ").",
)
always_on = c3.toggle(
    "Server always on",
    value=now.always_on,
    key="cost_always_on",
    help="The serving machine is always on: pay for every hour of the month, busy or not (a dedicated server), "
    "instead of only for the hours it spends answering.",
)
st.session_state[COST_STATE] = {
    "currency": currency or "USD",
    "build_price_per_hour": build_price,
    "serve_price_per_hour": serve_price,
    "queries_per_day": float(qpd),
    "always_on": always_on,
}
st.session_state.setdefault(COST_REBUILDS, {})[run.name] = rebuilds
s = cost_settings(run)

try:
    table = cost_table(run, s)
except AdvisorError as e:
    st.error(f"**Cannot project costs for this run:** {e}")
    st.stop()
except ValueError as e:
    st.warning(str(e))
    st.stop()

cheapest = table.loc[table["total per month"].idxmin(), "option"]
cols = st.columns(len(table))
for col, (_, row) in zip(cols, table.iterrows()):
    col.metric(
        f"{row['option']} per month",
        s.money(row["total per month"]),
        help=f"building {s.money(row['build per month'])} + serving {s.money(row['serving per month'])}",
    )
st.altair_chart(charts.cost_bars(table, s.currency), width="stretch")
# Two tables, each narrow enough for a 1024 px window (a 674 px table): the money first, then what it is
# computed from. The money columns keep the currency in their names; their headers are short.
money = {
    "first build": "first build",
    "build per month": "build / month",
    "serving per month": "serving / month",
    "total per month": "total / month",
    "per 1,000 queries": "per 1,000 queries",
}
st.markdown(f"**Cost of each option**, in {s.currency}")
st.dataframe(
    table[["option", *money]].rename(columns={c: f"{c} ({s.currency})" for c in money}),
    hide_index=True,
    column_config={
        f"{c} ({s.currency})": st.column_config.NumberColumn(label, format="%.2f") for c, label in money.items()
    },
)
measured = ["option", "build time (s)", "latency p50 (s)", "busy machine share"]
st.markdown("**What it is computed from**: the run's measured build times and latencies, and the queries per day")
st.dataframe(
    table[measured + (["machines paid for"] if s.always_on else [])],  # else it repeats the busy share
    hide_index=True,
    column_config={
        "busy machine share": st.column_config.NumberColumn(format="percent"),
        "machines paid for": st.column_config.NumberColumn(format="%.3g"),
    },
)
try:
    cpus = (read_json(run.path / "manifest.json", "run bookkeeping").get("host") or {}).get("cpus")
except RunDataError:
    cpus = None
host = f" (measured on a machine with {cpus} CPU cores)" if cpus else ""
serving = (
    "an always-on serving machine: every hour of the month for each machine the busy hours need (at least "
    "one), times the serving price"
    if s.always_on
    else "busy machine-hours times the serving price"
)
st.caption(
    f"Cheapest at these inputs: **{cheapest}**. Serving: queries per day × {DAYS_PER_MONTH} days × the measured "
    f"median (p50) latency per question = busy machine-hours{host}; paid as {serving}. Building: rebuilds per month × "
    "the measured build time (RAG: the index; Fine-tune: training data + QLoRA training; Fine-tune + RAG: both) × "
    "the build "
    "price; the first build is a one-off. One query at a time per machine; batching and faster hardware lower "
    "both. The **Overview** shows the advised option's cost with these settings."
)
