"""Overview: fit for purpose first (is any option good enough against the targets?), then the verdict card
(RAG / fine-tune / both) with how sure it is in two separate senses, the reasons that decided it, the flip
points, the cost the verdict weighed in money, and the criteria table — all read from the run's
recommendation.json (blocks an older run lacks are computed the same way by advisor.recommend). The report
(report.html) can be downloaded from the top of the page to share."""

import streamlit as st

from advisor.core.arms import OPTION_LABEL
from advisor.core.errors import AdvisorError
from advisor.plain import facts_line
from ui import charts
from ui.advice import fit_of, separation_of
from ui.common import (
    cost_settings,
    cost_table,
    criteria_section,
    fit_block,
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


def share_row(run) -> None:
    """Download report.html (self-contained: its plots are inlined, so the one file can be mailed), or how to make
    it when the run has none, or a note when it is older than the recommendation."""
    report = run.path / "report.html"
    make = f"`advisor recommend {run.path}` writes it from the finished evaluation in seconds"
    if not report.is_file():
        st.caption(
            f":material/description: This run has no report to download yet: {make} (and rewrites the "
            "recommendation with the run's own settings)."
        )
        return
    left, right = st.columns([1, 3], vertical_alignment="center")
    with left:
        st.download_button(
            "Download report",
            report.read_bytes(),
            file_name=f"{run.name}-report.html",
            mime="text/html",
            icon=":material/download:",
            key="ov_download",
            help="report.html: one self-contained page (plots included) to mail or archive; its "
            "first screen says the advice, whether it is good enough and why.",
        )
    rec_file = run.path / "recommendation.json"
    if rec_file.is_file() and rec_file.stat().st_mtime > report.stat().st_mtime + 1:
        right.caption(f"The report is older than the recommendation shown here; {make.replace('writes', 'rewrites')}.")


share_row(run)
if run.status != "done":
    st.warning(
        f"This run's status is **{run.status}** ({run.detail}); the recommendation below is from its last "
        "finished recommend stage."
    )
try:
    fit, sep = fit_of(rec, run.path), separation_of(rec, run.path)
except AdvisorError as e:  # an older recommendation whose evidence cannot be read: say so, show the rest
    fit = sep = None
    st.info(f"**Fit for purpose cannot be computed for this run:** {e}")
if fit:
    fit_block(fit, rec)
verdict_card(rec, sep=sep)
eval_set = rec.get("eval_set") or {}
if eval_set.get("synthetic") and not eval_set.get("reviewed"):
    from advisor.qa_review import plain_words

    st.warning(
        f"**{plain_words(eval_set).capitalize()}.** The questions were generated from the corpus; check "
        "them on the **Review** page, then re-evaluate on the reviewed set, before relying on this advice."
    )
left, right = st.columns([3, 2])
with left:
    reasons_block(rec)
    flips_block(rec)
with right:
    st.markdown("**Utility of each option**")
    st.altair_chart(charts.utility_bars(rec["utilities"], rec["verdict"]), width="stretch")
    st.caption(facts_line(rec) + " Try other priorities, facts and targets on the **What-if** page.")

# The cost the verdict weighed (measured build time and latency), in money with this session's Cost settings,
# through the Cost page's own function (ui/common.cost_table), so the two pages agree.
st.subheader("Cost")
s = cost_settings(run)
try:
    table = cost_table(run, s).set_index("option")
except (AdvisorError, ValueError) as e:
    st.info(f"**No cost projection for this run:** {e}")
else:
    cols = st.columns(len(table))
    for col, (label, row) in zip(cols, table.iterrows()):
        col.metric(
            f"{label} per month",
            s.money(row["total per month"]),
            help=f"building {s.money(row['build per month'])} + serving {s.money(row['serving per month'])}",
        )
        col.caption(f"build {row['build time (s)']:,.0f} s · median latency {1000 * row['latency p50 (s)']:,.0f} ms")
    advised = OPTION_LABEL.get(rec["verdict"], rec["verdict"])
    cheapest = table["total per month"].idxmin()
    share = sum((rec.get("weights") or {}).get(c, 0.0) for c in ("build_cost", "serve_cost"))
    other = (
        ""
        if cheapest == advised
        else f" At these settings {cheapest} costs least ({s.money(table.loc[cheapest, 'total per month'])} a "
        "month): the verdict's cost criteria compare build times and latencies in relative terms (each 10x "
        "longer build loses a share of the build-cost score), not money at your prices."
    )
    st.caption(
        f"The verdict weighed these measured build times and latencies against each other (the criteria "
        f"*build cost* and *serving cost*, {100 * share:.0f}% of the decision). In money, {advised} costs "
        f"**{s.money(table.loc[advised, 'total per month'])} a month** at {s.describe()}; change these on "
        f"the **Cost** page.{other}"
    )
if rec.get("scores") and rec.get("weights"):
    criteria_section(rec)
