"""The dashboard for decision-makers: the verdict, the evidence, what-if, cost, and launching runs.

    advisor dashboard [--runs-dir runs] [--port 8501]
    ADVISOR_RUNS_DIR=runs streamlit run ui/app.py        (the same, by hand)

Every page reads the run directories under the runs folder (docs/architecture.md, 'The pipeline and the run directory') and
recomputes nothing a run already wrote; the what-if page calls advisor.recommend, the engine the CLI uses.
The selected run lives in the URL (?run=NAME), so a browser refresh keeps it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

from ui.common import STATUS_ICON, runs, runs_dir

VIEWS = Path(__file__).resolve().parent / "views"
log = logging.getLogger("ui")

st.set_page_config(page_title="RAG vs fine-tune advisor", page_icon=":material/balance:", layout="wide")
# In a window under 1280 px (a laptop at 1024) Streamlit keeps 5rem beside the page; 1.5rem gives tables and
# side-by-side charts the width they need (docs/screens/ shows every page at 1400 and 1024).
st.html(
    "<style>@media (max-width: 1280px) { [data-testid='stMainBlockContainer'] "
    "{ padding-left: 1.5rem; padding-right: 1.5rem; } }</style>"
)

pages = st.navigation(
    [
        st.Page(VIEWS / "overview.py", title="Overview", icon=":material/gavel:", url_path="overview", default=True),
        st.Page(VIEWS / "runs.py", title="Runs", icon=":material/folder_open:", url_path="runs"),
        st.Page(VIEWS / "evidence.py", title="Evidence", icon=":material/bar_chart:", url_path="evidence"),
        st.Page(VIEWS / "questions.py", title="Questions", icon=":material/quiz:", url_path="questions"),
        st.Page(VIEWS / "review.py", title="Review", icon=":material/fact_check:", url_path="review"),
        st.Page(VIEWS / "whatif.py", title="What-if", icon=":material/tune:", url_path="what-if"),
        st.Page(VIEWS / "cost.py", title="Cost", icon=":material/payments:", url_path="cost"),
        st.Page(VIEWS / "new_run.py", title="New run", icon=":material/play_circle:", url_path="new-run"),
    ]
)

all_runs = runs()
by_name = {r.name: r for r in all_runs}
with st.sidebar:
    st.markdown("### :material/balance: RAG vs fine-tune")
    if all_runs:
        # This session's last pick, else the URL (a refresh starts a new session), else the newest finished run.
        # (A run just launched on the New run page asks to be picked through "_pick_run".)
        wanted = (
            st.session_state.pop("_pick_run", None) or st.session_state.get("run_choice") or st.query_params.get("run")
        )
        if wanted not in by_name:
            wanted = next((r.name for r in all_runs if r.finished), all_runs[0].name)
        if st.session_state.get("run_choice") != wanted:
            st.session_state["run_choice"] = wanted
        choice = st.selectbox(
            "Run",
            list(by_name),
            key="run_choice",
            format_func=lambda n: f"{n} ({by_name[n].status})",
            help="Every run directory in the runs folder, newest first.",
        )
        st.query_params["run"] = choice
        st.session_state["_run_info"] = by_name[choice]
        r = by_name[choice]
        st.caption(f"{STATUS_ICON.get(r.status, '')} {r.status} · {r.corpus} · {r.model} · {r.date}")
    else:
        st.session_state["_run_info"] = None
    st.caption(f"Runs folder: `{runs_dir()}`")

try:
    pages.run()
except Exception as e:  # a bug, not bad input: say so in the page, keep the traceback for the server log
    log.exception("page %s failed", pages.title)
    st.error(
        f"**This page could not be shown** ({type(e).__name__}: {e}). The details are in the dashboard's "
        "log; other pages still work."
    )
