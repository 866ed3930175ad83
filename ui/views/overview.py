"""Overview: the verdict card (RAG / fine-tune / both), its confidence, the reasons that decided it, and the
flip points in plain language — all read from the run's recommendation.json."""

import streamlit as st

from ui import charts
from ui.common import (
    facts_line,
    flips_block,
    not_finished_message,
    reasons_block,
    require_run,
    run_header,
    show_data_error,
    stage_progress,
    verdict_card,
)
from ui.rundata import RunDataError, load_recommendation

st.title("Should the knowledge go in RAG, fine-tuning, or both?")
run = require_run()
run_header(run)

if not (run.path / "recommendation.json").exists():
    not_finished_message(run, "The recommendation")
    if run.stages or run.status in ("running", "starting"):
        stage_progress(run)
    st.stop()

try:
    rec = load_recommendation(run.path)
except RunDataError as e:
    show_data_error(e)
    st.stop()

if run.status != "done":
    st.warning(f"This run's status is **{run.status}** ({run.detail}); the recommendation below is from its last "
               "finished recommend stage.")
verdict_card(rec)
eval_set = rec.get("eval_set") or {}
if eval_set.get("synthetic") and not eval_set.get("reviewed"):
    from advisor.qa_review import plain_words

    st.warning(f"**{plain_words(eval_set).capitalize()}.** The questions were generated from the corpus; check "
               "them on the **Review** page, then re-evaluate on the reviewed set, before relying on this advice.")
left, right = st.columns([3, 2])
with left:
    reasons_block(rec)
    flips_block(rec)
with right:
    st.markdown("**Utility of each option**")
    st.altair_chart(charts.utility_bars(rec["utilities"], rec["verdict"]), width="stretch")
    st.caption(facts_line(rec) + " Try other priorities on the **What-if** page.")
