"""What-if: move the weights and the situation facts and watch the verdict and the utilities recompute,
through advisor.recommend — the same engine `advisor run` used to write recommendation.json."""

import pandas as pd
import streamlit as st

from advisor.core.advice import CHANGE_RATES, CRITERIA, DEFAULT_FACTS, PRESETS
from advisor.core.errors import AdvisorError
from advisor.recommend import load_evidence, recommend
from ui import charts
from ui.common import flips_block, not_finished_message, reasons_block, require_run, run_header, verdict_card
from ui.rundata import CRITERION_LABEL, OPTION_LABEL, RunDataError, load_recommendation

STEP = 0.005

st.title("What if the priorities were different?")
run = require_run()
run_header(run)

if not (run.path / "eval" / "metrics.json").exists():
    not_finished_message(run, "What-if")
    st.stop()
try:
    evidence = load_evidence(run.path)
except AdvisorError as e:
    st.error(f"**Cannot recompute the advice for this run:** {e}")
    st.stop()
try:
    saved = load_recommendation(run.path)
except RunDataError:
    saved = None
start = {
    "preset": saved["preset"] if saved and saved.get("preset") in PRESETS else "balanced",
    "weights": saved["weights"] if saved else PRESETS["balanced"],
    "facts": {**DEFAULT_FACTS, **(saved.get("facts") or {})} if saved else dict(DEFAULT_FACTS),
}


def set_weights(w: dict) -> None:
    for c in CRITERIA:
        st.session_state[f"w_{c}"] = round(round(w.get(c, 0.0) / STEP) * STEP, 4)


def reset() -> None:
    """Back to the settings this run's recommendation was made with."""
    st.session_state["wi_preset"] = start["preset"]
    set_weights(start["weights"])
    st.session_state["f_change"] = start["facts"]["knowledge_change"]
    st.session_state["f_citations"] = bool(start["facts"]["citations_required"])
    st.session_state["f_style"] = bool(start["facts"]["style_learning"])
    st.session_state["wi_run"] = run.name


if st.session_state.get("wi_run") != run.name or "w_accuracy" not in st.session_state:
    reset()

left, right = st.columns([2, 3], gap="large")
with left:
    st.markdown("**How much each criterion matters**")
    st.selectbox("Start from a preset", list(PRESETS), key="wi_preset",
                 on_change=lambda: set_weights(PRESETS[st.session_state["wi_preset"]]),
                 help="Sets every slider to the preset's weights; then move them as you like.")
    for c in CRITERIA:
        st.slider(CRITERION_LABEL[c], 0.0, 1.0, step=STEP, key=f"w_{c}", format="%.3f")
    st.caption("Weights are relative: they are divided by their sum before use.")
    st.markdown("**The situation**")
    st.select_slider("How often the knowledge changes", CHANGE_RATES, key="f_change")
    st.toggle("Answers must cite their sources", key="f_citations")
    st.toggle("A style or format must be learned", key="f_style")
    st.button("Reset to this run's settings", on_click=reset)

weights = {c: st.session_state[f"w_{c}"] for c in CRITERIA}
facts = {"knowledge_change": st.session_state["f_change"], "citations_required": st.session_state["f_citations"],
         "style_learning": st.session_state["f_style"]}
with right:
    try:
        rec = recommend(evidence, st.session_state["wi_preset"], weights, facts)
    except AdvisorError as e:
        st.warning(f"**No verdict with these settings:** {e}")
        st.stop()
    note = ""
    if saved:
        same = rec["verdict"] == saved["verdict"]
        note = (f"Same as the run's own verdict ({OPTION_LABEL.get(saved['verdict'])})." if same else
                f"Changed: the run's own settings gave {OPTION_LABEL.get(saved['verdict'], saved['verdict'])}.")
    verdict_card(rec, note, compact=True)
    st.altair_chart(charts.utility_bars(rec["utilities"], rec["verdict"]), width="stretch")
    reasons_block(rec)
    flips_block(rec)
    st.markdown("**Score of each option per criterion** (0–1, higher is better) and the weights in use")
    table = pd.DataFrame(rec["scores"]).T.rename(index=OPTION_LABEL)[CRITERIA]
    table.loc["weight in use"] = [rec["weights"][c] for c in CRITERIA]
    st.dataframe(table.rename(columns=CRITERION_LABEL).style.format("{:.3f}"), width="stretch")
