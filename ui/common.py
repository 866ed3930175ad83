"""Pieces every page shares: the runs folder, the selected run, the verdict card, plain-language flip
points, stage progress, and turning a missing or broken artifact into a message instead of a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from advisor.core.arms import OPTION, OPTION_COLOUR, OPTION_LABEL
from advisor.plain import fit_line, flip_sentences, training_sentence
from ui.rundata import (
    CRITERION_LABEL,
    FACT_HELP,
    FACT_LABEL,
    RunDataError,
    RunInfo,
    list_runs,
    load_config_dict,
    log_tail,
    read_json,
)

RUNS_DIR_ENV = "ADVISOR_RUNS_DIR"  # set by `advisor dashboard --runs-dir`
# Material icons (Streamlit ships their font, so they render without emoji fonts), for markdown only.
STATUS_ICON = {
    "done": ":green[:material/check_circle:]",
    "running": ":blue[:material/progress_activity:]",
    "starting": ":blue[:material/progress_activity:]",
    "interrupted": ":orange[:material/pause_circle:]",
    "failed": ":red[:material/error:]",
    "incomplete": ":orange[:material/pending:]",
    "unreadable": ":red[:material/warning:]",
}
STAGE_ICON = {
    "done": ":green[:material/check:]",
    "running": ":blue[:material/progress_activity:]",
    "failed": ":red[:material/close:]",
    "pending": ":gray[:material/radio_button_unchecked:]",
}
UTILITY_LINE = (
    "**Utility** is each option's weighted average score (0–1, higher is better) over the criteria, "
    "with the weights of the priorities in use: it ranks the options, it does not say whether any is "
    "good enough (fit for purpose does). [The criteria and their weights](#criteria)"
)


# A fit-for-purpose metric's width: its longest label, "Fine-tune + RAG hallucination rate" and its help icon.
FIT_METRIC_PX = 250
# The Evidence page's tabs below its lead (the paired differences), in order (ui/views/evidence.py, ui/screens.py)
EVIDENCE_TABS = {
    "Accuracy and hallucination": "Hallucination",
    "Known facts and wording": "Known vs unknown facts",
    "Updates, latency and retrieval": "Knowledge-update drill",
    "Training and forgetting": "Leakage check",
}  # tab label -> a heading on it once it is drawn


def metric_row():
    """A row for metrics that wraps onto a second line where the place is too narrow for all of them, so that
    no label is cut short with "…" (st.columns would squeeze each metric to a fixed share of the width)."""
    return st.container(horizontal=True, gap="medium")


def coloured(option: str) -> str:
    """An option's label in its colour from the arm table, as Streamlit markdown."""
    colour = OPTION_COLOUR.get(option)
    label = OPTION_LABEL.get(option, option)
    return f':color[{label}]{{foreground="{colour}"}}' if colour else label


def runs_dir() -> Path:
    return Path(os.environ.get(RUNS_DIR_ENV, "runs")).expanduser().resolve()


def runs() -> list[RunInfo]:
    """Read fresh on every rerun: the run directories are the state, not the session."""
    return list_runs(runs_dir())


def selected_run() -> RunInfo | None:
    """The run picked in the sidebar (ui/app.py puts it in session state before the page runs)."""
    return st.session_state.get("_run_info")


def no_runs_message() -> None:
    d = runs_dir()
    where = f"`{d}` does not exist yet" if not d.exists() else f"`{d}` holds no run directories yet"
    st.info(
        f"**No runs to show:** {where}. Start one on the **New run** page, or from a shell with "
        f"`advisor run --out {d}/<name>`, or open another folder with `advisor dashboard --runs-dir DIR`."
    )


def require_run() -> RunInfo:
    """The selected run, or a message and the end of the page when there is none."""
    run = selected_run()
    if run is None:
        no_runs_message()
        st.stop()
    return run


def run_header(run: RunInfo) -> None:
    st.caption(
        f"Run **{run.name}** · corpus **{run.corpus}** · model **{run.model}** · {run.date} · "
        f"{STATUS_ICON.get(run.status, '')} {run.status}"
    )


def not_finished_message(run: RunInfo, what: str) -> None:
    """Explain why `what` cannot be shown yet for a run that is not done."""
    if run.status in ("running", "starting"):
        st.info(
            f"**This run is still going** ({run.detail}). {what} appears when it has finished; "
            "progress is on the **New run** page."
        )
    elif run.status == "failed":
        st.error(
            f"**This run failed** — {run.detail}. {what} is not available. Fix the cause and start it again "
            f"(finished stages are kept)."
        )
    elif run.status == "done":
        st.info(f"{what} is not available for this run: {run.detail or 'it did not write the file this page reads'}.")
    elif run.status == "unreadable":
        st.error(f"**This run cannot be read** — {run.detail}")
    else:
        st.warning(f"**This run is not finished** ({run.status}) — {run.detail}. {what} is not available yet.")


def show_data_error(e: RunDataError) -> None:
    st.error(f"**Cannot show this:** {e}")


def confidence(rec: dict) -> tuple[str, str]:
    """(high | medium | low | unknown, why): how stable the verdict is under other priorities. Newer
    recommendations record it (rec["stability"]); for older ones it is computed the same way from their
    sensitivity analysis (advisor.recommend.stability_of)."""
    from advisor.recommend import stability_of

    s = rec.get("stability") or stability_of(rec)
    return s["level"], s["why"]


def verdict_card(rec: dict, note: str = "", compact: bool = False, sep: dict | None = None) -> None:
    """The verdict, what it means, how sure in two separate senses (stable under other priorities; separated by
    the data, when `sep` or the recommendation has it), and each option's utility (compact: stacked, for a
    narrow column)."""
    from ui.advice import STABILITY_BADGE, separation_badge

    verdict = rec["verdict"]
    level, why = confidence(rec)
    sep = sep or rec.get("separation")
    with st.container(border=True):
        left, right = (st.container(), st.container()) if compact else st.columns([2, 3])
        with left:
            st.markdown("Recommendation")
            st.markdown(f"## {coloured(verdict)}")
            st.markdown(OPTION[verdict].advice if verdict in OPTION else "")
            st.markdown(STABILITY_BADGE[level] + (f" {separation_badge(sep)}" if sep else ""))
            st.caption(
                f"Stable under other priorities: {why}." + (f" Separated by the data: {sep['why']}." if sep else "")
            )
        with right:
            row = metric_row()
            for opt, u in sorted(rec["utilities"].items(), key=lambda kv: -kv[1]):
                row.metric(
                    f"{OPTION_LABEL.get(opt, opt)} utility",
                    f"{u:.3f}",
                    delta=None if opt == verdict else f"{u - rec['utilities'][verdict]:+.3f}",
                    width="content",
                )
            st.caption(UTILITY_LINE)
            if note:
                st.caption(note)


def reasons_block(rec: dict) -> None:
    """The recommendation's reasons: up to three deciding criteria (largest weighted lead over the runner-up
    first), plus the note on equivalence when it applies. The fit-for-purpose statement the engine puts first
    is left out: the fit block above says it."""
    fit = (rec.get("fit_for_purpose") or {}).get("statement")
    st.markdown("**Why** — what separated it from the runner-up:")
    for r in [r for r in rec.get("reasons") or [] if r != fit] or ["The options are tied on every weighted criterion."]:
        st.markdown(f"- {r}")


def flips_block(rec: dict) -> None:
    said, steady = flip_sentences(rec)
    st.markdown("**What would change the advice**")
    for s in said:
        st.markdown(f"- {s}")
    if not said:
        st.markdown("- No change to a single weight flips the advice.")
    if steady and said:
        st.markdown(f"- No change to the weight of {', '.join(steady)} alone flips it.")
    if trained := training_sentence(rec):
        st.markdown(f"- {trained}")
    share = (rec.get("sensitivity") or {}).get("win_share") or {}
    if share:
        st.caption(
            "Share of random weightings under which each option wins: "
            + ", ".join(f"{OPTION_LABEL.get(o, o)} {100 * s:.0f}%" for o, s in share.items())
        )


def fact_widget(k: str, key: str) -> None:
    """The control for situation fact `k` (session-state key `key`), chosen by the kind of value the engine takes
    (advisor.core.advice): one of FACT_CHOICES, true/false, or a number (seconds). The What-if and New run pages
    both offer every fact through it, so a fact the engine gains appears on both."""
    from advisor.core.advice import DEFAULT_FACTS, FACT_CHOICES

    label, help_ = FACT_LABEL.get(k, k.replace("_", " ")), FACT_HELP.get(k)
    if k in FACT_CHOICES:
        st.select_slider(label, FACT_CHOICES[k], key=key, help=help_)
    elif isinstance(DEFAULT_FACTS[k], bool):
        st.toggle(label, key=key, help=help_)
    elif isinstance(DEFAULT_FACTS[k], (int, float)):
        st.number_input(label, min_value=0.0, step=0.1, format="%.2f", key=key, help=help_)
    else:
        st.text_input(label, key=key, help=help_)


def fit_block(fit: dict, rec: dict, hint: str = "Change the targets on the **What-if** page.") -> None:
    """Fit for purpose first: one plain sentence, the best option's accuracy and hallucination against the
    targets with their status, and what the evidence points to when nothing is good enough."""
    from ui.advice import STATUS_BADGE

    best, line = fit_line(fit, rec)
    r = fit["options"][best]
    with st.container(border=True):
        st.markdown("**Is any option good enough?**")
        st.markdown(line)
        row = metric_row()
        for key, what, bound in (
            ("accuracy", "accuracy", "at least"),
            ("hallucination_rate", "hallucination rate", "at most"),
        ):
            m = r[key]
            cell = row.container(width=FIT_METRIC_PX)
            cell.metric(
                f"{OPTION_LABEL.get(best, best)} {what}",
                f"{100 * m['value']:.0f}%",
                help=f"95% CI {100 * m['ci95'][0]:.0f}–{100 * m['ci95'][1]:.0f}%",
            )
            cell.markdown(f"target {bound} {100 * m['target']:g}% {STATUS_BADGE[m['status']]}")
        if fit.get("points_to"):
            st.markdown("What the evidence points to:\n" + "\n".join(f"- {p}" for p in fit["points_to"]))
        st.caption(f"An option meets a target only when its whole 95% confidence interval does. {hint}")


def criteria_table(rec: dict):
    """Each option's score per criterion (0–1) and the weights in use, with plain names: one row per criterion,
    so the table keeps its few columns in a narrow window."""
    import pandas as pd

    from advisor.core.advice import CRITERIA

    table = pd.DataFrame(rec["scores"]).rename(columns=OPTION_LABEL).loc[CRITERIA]
    table["weight in use"] = [rec["weights"][c] for c in CRITERIA]
    return table.rename(index=CRITERION_LABEL)


def criteria_section(rec: dict) -> None:
    """The criteria table under an anchor (#criteria) the utility line links to."""
    st.subheader("The criteria behind the utility", anchor="criteria")
    st.markdown("**Score of each option per criterion** (0–1, higher is better) and the weights in use")
    st.dataframe(criteria_table(rec).style.format("{:.3f}"), width="stretch")


# ---------------------------------------------------------------- money (Cost page and Overview)

COST_STATE = "cost_settings"  # this session's money settings (a plain dict; the Cost page writes it)
COST_REBUILDS = "cost_rebuilds_by_run"  # run name -> rebuilds per month chosen on the Cost page


def knowledge_change_of(run: RunInfo) -> str:
    """How often the run's knowledge changes: its recommendation's fact, else its config's, else monthly."""
    try:
        facts = read_json(run.path / "recommendation.json", "recommendation").get("facts") or {}
    except RunDataError:
        facts = (load_config_dict(run.path).get("recommend") or {}).get("facts") or {}
    return facts.get("knowledge_change", "monthly")


def cost_settings(run: RunInfo):
    """The money settings in force for `run`: what the Cost page set in this session, else the defaults, with
    the rebuild rate the run's knowledge_change implies unless one was chosen for this run."""
    from ui.costs import settings_for

    given = dict(st.session_state.get(COST_STATE) or {})
    rebuilds = (st.session_state.get(COST_REBUILDS) or {}).get(run.name)
    if rebuilds is not None:
        given["rebuilds_per_month"] = rebuilds
    return settings_for(knowledge_change_of(run), **given)


def stage_progress(run: RunInfo, log_lines: int = 8) -> None:
    """Per-stage status from the manifest, a progress bar, and the end of the run's log."""
    done, total = run.progress()
    st.progress(done / total if total else 0.0, text=f"{done} of {total or '?'} stages done")
    names = run.expected or list(run.stages)
    extra = [n for n in run.stages if n not in names]
    cells = []
    for n in names + extra:
        s = run.stages.get(n, {})
        status = s.get("status", "pending")
        wall = f" {s['wall_s']:.0f} s" if isinstance(s.get("wall_s"), (int, float)) else ""
        cells.append(f"{STAGE_ICON.get(status, STAGE_ICON['pending'])} {n}{wall}")
    st.markdown(" · ".join(cells))
    tail = log_tail(run.path, log_lines)
    if tail:
        st.code("\n".join(tail), language=None)


def cost_table(run: RunInfo, s):
    """Monthly cost per option of `run` with settings `s`: the one computation behind the Cost page and the
    Overview's cost (ui/costs.monthly_costs on the measured build times and p50 latencies the recommendation
    engine reads, advisor.recommend.load_evidence). Raises AdvisorError when the run's evidence is unreadable."""
    from ui.advice import evidence_of
    from ui.costs import monthly_costs

    ev = evidence_of(run.path)
    return monthly_costs(ev.build_s, ev.latency_s, s)
