"""Cost: hardware price per hour and expected queries per day in, projected monthly cost per option out,
from the run's measured p50 latencies (eval/metrics.json) and build times (manifest stages)."""

import streamlit as st

from advisor.core.errors import AdvisorError
from advisor.recommend import load_evidence
from ui import charts
from ui.common import not_finished_message, require_run, run_header
from ui.costs import DAYS_PER_MONTH, REBUILDS_PER_MONTH, monthly_costs
from ui.rundata import RunDataError, load_config_dict, read_json

st.title("What would each option cost?")
run = require_run()
run_header(run)

if not (run.path / "eval" / "metrics.json").exists():
    not_finished_message(run, "The cost projection")
    st.stop()
try:
    evidence = load_evidence(run.path)
except AdvisorError as e:
    st.error(f"**Cannot project costs for this run:** {e}")
    st.stop()

facts = (load_config_dict(run.path).get("recommend") or {}).get("facts") or {}
change = facts.get("knowledge_change", "monthly")
c1, c2, c3 = st.columns(3)
price = c1.number_input("Hardware price per hour", min_value=0.0, value=1.0, step=0.1, format="%.2f",
                        key="cost_price", help="What one machine like the one the run was measured on costs per "
                        "hour, in your currency.")
qpd = c2.number_input("Expected queries per day", min_value=0, value=1000, step=100, key="cost_qpd")
rebuilds = c3.number_input("Rebuilds per month", min_value=0.0, value=round(REBUILDS_PER_MONTH.get(change, 1.0), 2),
                           step=0.5, format="%.2f", key="cost_rebuilds",
                           help=f"How often the index is rebuilt and the adapter retrained as the knowledge changes "
                           f"(default from the run's situation: knowledge changes {change}; "
                           + ", ".join(f"{k} {v:.2f}" for k, v in REBUILDS_PER_MONTH.items()) + ").")

try:
    table = monthly_costs(evidence.build_s, evidence.latency_s, price, qpd, rebuilds)
except ValueError as e:
    st.warning(str(e))
    st.stop()

cheapest = table.loc[table["total per month"].idxmin(), "option"]
cols = st.columns(len(table))
for col, (_, row) in zip(cols, table.iterrows()):
    col.metric(f"{row['option']} per month", f"{row['total per month']:,.2f}",
               help=f"building {row['build per month']:,.2f} + serving {row['serving per month']:,.2f}")
st.altair_chart(charts.cost_bars(table), width="stretch")
st.dataframe(table, hide_index=True, width="stretch", column_config={
    "busy machine share": st.column_config.NumberColumn(format="percent"),
    **{c: st.column_config.NumberColumn(format="%.2f") for c in
       ("build per month", "serving per month", "total per month", "per 1,000 queries")}})
try:
    cpus = (read_json(run.path / "manifest.json", "run bookkeeping").get("host") or {}).get("cpus")
except RunDataError:
    cpus = None
host = f" (measured on a machine with {cpus} CPU cores)" if cpus else ""
st.caption(
    f"Cheapest at these inputs: **{cheapest}**. Serving: queries per day × {DAYS_PER_MONTH} days × the measured "
    f"median (p50) latency per question = busy machine-hours, times the price{host}. Building: rebuilds per month × "
    "the measured build time (RAG: the index; fine-tune: training data + QLoRA training; both: both) × the price. "
    "One query at a time per machine; batching and faster hardware lower both.")
