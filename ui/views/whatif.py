"""What-if: move the weights, every situation fact and the quality targets, and watch fit for purpose, the
verdict and the utilities recompute through advisor.recommend — the same engine `advisor run` and
`advisor recommend` use. The facts offered are the engine's own (advisor.core.advice.DEFAULT_FACTS and
FACT_CHOICES, through ui.common.fact_widget), the targets advisor.core.config.QUALITY_TARGETS: a fact the engine
gains appears here."""

import streamlit as st

from advisor.core.advice import CRITERIA, DEFAULT_FACTS, PRESETS
from advisor.core.arms import OPTION_LABEL
from advisor.core.config import QUALITY_TARGETS
from advisor.core.errors import AdvisorError
from advisor.recommend import load_evidence, recommend
from ui import charts
from ui.advice import run_targets
from ui.common import (
    criteria_section,
    fact_widget,
    fit_block,
    flips_block,
    not_finished_message,
    reasons_block,
    require_run,
    run_header,
    verdict_card,
)
from ui.rundata import CRITERION_LABEL, TARGET_LABEL, RunDataError, load_config_dict, load_recommendation

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
# The run's own settings: what its recommendation was made with, else its config's recommend section.
own = load_config_dict(run.path).get("recommend") or {}
preset = (saved or own).get("preset")
preset = preset if preset in PRESETS else "balanced"
start = {
    "preset": preset,
    "weights": saved["weights"] if saved else {**PRESETS[preset], **(own.get("weights") or {})},
    "facts": {**DEFAULT_FACTS, **(own.get("facts") or {}), **((saved or {}).get("facts") or {})},
    "targets": ((saved or {}).get("fit_for_purpose") or {}).get("targets") or run_targets(run.path),
}


def set_weights(w: dict) -> None:
    for c in CRITERIA:
        st.session_state[f"w_{c}"] = round(round(w.get(c, 0.0) / STEP) * STEP, 4)


def reset() -> None:
    """Back to the settings this run's recommendation was made with: weights, every fact, the targets."""
    st.session_state["wi_preset"] = start["preset"]
    set_weights(start["weights"])
    for k in DEFAULT_FACTS:
        v = start["facts"][k]
        st.session_state[f"f_{k}"] = float(v) if isinstance(DEFAULT_FACTS[k], float) else v
    for k in QUALITY_TARGETS:
        st.session_state[f"t_{k}"] = round(100 * float(start["targets"][k]), 1)
    st.session_state["wi_run"] = run.name


if st.session_state.get("wi_run") != run.name or "w_accuracy" not in st.session_state:
    reset()


# The controls' column is wide enough for every fact's toggle label in a 1024 px window (about 290 px).
left, right = st.columns([9, 11], gap="medium")
with left:
    st.markdown("**How much each criterion matters**")
    st.selectbox(
        "Start from a preset",
        list(PRESETS),
        key="wi_preset",
        on_change=lambda: set_weights(PRESETS[st.session_state["wi_preset"]]),
        help="Sets every slider to the preset's weights; then move them as you like.",
    )
    for c in CRITERIA:
        st.slider(CRITERION_LABEL[c], 0.0, 1.0, step=STEP, key=f"w_{c}", format="%.3f")
    st.caption("Weights are relative: they are divided by their sum before use.")
    st.markdown("**The situation**")
    for k in DEFAULT_FACTS:
        fact_widget(k, f"f_{k}")
    st.markdown("**Good enough means**")
    for k in QUALITY_TARGETS:
        st.number_input(
            TARGET_LABEL.get(k, k.replace("_", " ")),
            min_value=0.0,
            max_value=100.0,
            step=5.0,
            format="%.1f",
            key=f"t_{k}",
        )
    st.button("Reset to this run's settings", on_click=reset, key="wi_reset")

weights = {c: st.session_state[f"w_{c}"] for c in CRITERIA}
facts = {k: st.session_state[f"f_{k}"] for k in DEFAULT_FACTS}
targets = {k: st.session_state[f"t_{k}"] / 100 for k in QUALITY_TARGETS}
with right:
    try:
        rec = recommend(evidence, st.session_state["wi_preset"], weights, facts, targets)
    except AdvisorError as e:
        st.warning(f"**No verdict with these settings:** {e}")
        st.stop()
    note = ""
    if saved:
        same = rec["verdict"] == saved["verdict"]
        note = (
            f"Same as the run's own verdict ({OPTION_LABEL.get(saved['verdict'])})."
            if same
            else f"Changed: the run's own settings gave {OPTION_LABEL.get(saved['verdict'], saved['verdict'])}."
        )
    fit_block(rec["fit_for_purpose"], rec, hint="")
    verdict_card(rec, note, compact=True)
    st.altair_chart(charts.utility_bars(rec["utilities"], rec["verdict"]), width="stretch")
    reasons_block(rec)
    flips_block(rec)
criteria_section(rec)  # under both columns: the table's five columns need the page's width
