"""New run: pick a corpus and a QA file (or upload them, in any format the corpus reader takes), a preset and a
model, say the situation (every fact the advice engine takes), the weight preset and the quality targets, and
start `advisor run` in the background with them as dotted overrides (recommend.*). Progress comes from the run
directories (manifest stages and run.log), so it survives a browser refresh and even a restart of the
dashboard."""

import shlex
from pathlib import Path

import streamlit as st

from advisor.core.advice import DEFAULT_FACTS, PRESETS
from advisor.core.config import PRESETS_DIR, QUALITY_TARGETS, load_config, preset_names
from advisor.core.errors import AdvisorError
from advisor.core.models import BUNDLED
from advisor.pipeline import SAMPLE_CORPUS, SAMPLE_EVAL, SAMPLE_TRAIN
from ui.common import STATUS_ICON, fact_widget, runs, runs_dir, stage_progress
from ui.launcher import (
    FORMATS,
    UPLOAD_SUFFIXES,
    advice_overrides,
    is_active,
    merge_overrides,
    plan_estimate,
    plan_run,
    save_uploads,
    start_run,
    stop_run,
)
from ui.rundata import LAUNCH, TARGET_LABEL

OTHER = "other (Hub id or local folder)"

st.title("Start a new run")


def preset_about(name: str) -> str:
    lines = (PRESETS_DIR / f"{name}.yaml").read_text().splitlines()
    return next((x.lstrip("# ").strip() for x in lines if x.startswith("# ") and "advisor" not in x), "")


ACTIVE = ("running", "starting")


# Re-read every 3 seconds while something runs (a launch reruns the whole page, which re-arms this).
@st.fragment(run_every=3 if any(r.status in ACTIVE for r in runs()) else None)
def progress_panel() -> None:
    """Runs going on now, and the runs started from this dashboard."""
    everything = runs()
    active = [r for r in everything if r.status in ACTIVE]
    launched = [r for r in everything if (r.path / LAUNCH).exists() and r not in active]
    if not active and not launched:
        st.caption("No run is going on in this runs folder.")
        return
    for r in active:
        with st.container(border=True):
            st.markdown(f"{STATUS_ICON[r.status]} **{r.name}** — {r.status}: {r.detail}")
            stage_progress(r)
            if is_active(r.path) and st.button(
                "Stop this run",
                key=f"stop_{r.name}",
                help="Interrupts it; finished stages are kept and a new launch with the same settings resumes it.",
            ):
                stop_run(r.path)
    for r in launched[:5]:
        with st.expander(f"{STATUS_ICON.get(r.status, '')} {r.name} — {r.status}", expanded=r.status == "failed"):
            if r.detail:
                st.markdown(r.detail)
            stage_progress(r)


st.subheader("Runs in progress")
progress_panel()

st.subheader("Start one")
if msg := st.session_state.pop("_launched", None):
    st.success(msg)
st.caption(
    f"The run goes into a new directory under `{runs_dir()}`, named after the corpus, the model and a hash "
    "of the settings; the same settings resume the same directory."
)
sample = st.toggle(
    "Use the bundled sample domain (a fictional utility cooperative: 35 documents, 150 questions)",
    value=True,
    key="nr_sample",
)
corpus = qa = train_qa = ""
upload_error = None
if sample:
    corpus, qa, train_qa = str(SAMPLE_CORPUS), str(SAMPLE_EVAL), str(SAMPLE_TRAIN)
else:
    c1, c2 = st.columns(2)
    with c1:
        st.markdown("**Corpus**")
        how = st.radio(
            "Corpus from",
            ["a folder or file on the server", "uploaded files"],
            key="nr_corpus_how",
            horizontal=True,
            label_visibility="collapsed",
        )
        if how == "uploaded files":
            name = st.text_input("Corpus name", value="uploaded", key="nr_corpus_name")
            files = st.file_uploader(
                f"Documents ({FORMATS})",
                type=[x.lstrip(".") for x in UPLOAD_SUFFIXES],
                accept_multiple_files=True,
                key="nr_corpus_files",
                help="JSONL and CSV files hold one document per record, its text in the field "
                "corpus.text_field names (default: text; set it in the extra settings).",
            )
            if files:
                try:
                    corpus = str(save_uploads(runs_dir(), name, [(f.name, f.getvalue()) for f in files], "corpus"))
                except AdvisorError as e:
                    upload_error = str(e)
        else:
            corpus = st.text_input("Corpus folder or file", key="nr_corpus_path", placeholder="/path/to/docs")
    with c2:
        st.markdown("**Questions**")
        how = st.radio(
            "Questions from",
            ["generated from the corpus", "a file on the server", "an uploaded file"],
            key="nr_qa_how",
            horizontal=True,
            label_visibility="collapsed",
            help="Without a QA file the run generates evaluation questions (with verified unanswerable "
            "ones) and training questions about the same facts from the corpus; review them on the "
            "Review page before trusting the numbers.",
        )
        if how == "an uploaded file":
            up = st.file_uploader("Evaluation questions (JSONL)", type=["jsonl"], key="nr_qa_file")
            if up:
                qa = str(save_uploads(runs_dir(), up.name, [(up.name, up.getvalue())], "qa"))
            up = st.file_uploader("Training questions (JSONL, optional)", type=["jsonl"], key="nr_train_file")
            if up:
                train_qa = str(save_uploads(runs_dir(), up.name, [(up.name, up.getvalue())], "train_qa"))
        elif how == "a file on the server":
            qa = st.text_input("Evaluation questions (JSONL)", key="nr_qa_path", placeholder="/path/to/qa.jsonl")
            train_qa = st.text_input(
                "Training questions (JSONL, optional)",
                key="nr_train_path",
                help="Other questions about the same facts; never the evaluation questions.",
            )
        else:
            st.caption(
                "150 questions (a fifth unanswerable) are generated from the corpus by rules, each with its "
                "evidence; set qa.n=..., qa.generator=llm in the extra settings below to change that."
            )
        st.caption("One JSON object a line: question, answers (list)[, id, source, unanswerable].")

c1, c2, c3 = st.columns(3)
presets = preset_names()
preset = c1.selectbox(
    "Preset",
    presets,
    index=presets.index("quickstart") if "quickstart" in presets else 0,
    key="nr_preset",
    help="Config presets in advisor/presets/ (advisor ls lists them).",
)
c1.caption(preset_about(preset))
models = [n for n, b in BUNDLED.items() if b.kind == "causal"] + [OTHER]
model = c2.selectbox("Model", models, key="nr_model", help="The base causal LM every arm uses.")
if model == OTHER:
    model = c2.text_input("Model spec", key="nr_model_spec", placeholder="org/model or /path/to/model")
overrides = c3.text_input(
    "Extra settings (optional)",
    key="nr_overrides",
    placeholder="eval.limit=40 tuning.lora.r=8",
    help="Dotted config overrides separated by spaces, as on the command line.",
)


def reset_advice(preset: str) -> None:
    """The situation, weight preset and targets as config preset `preset` sets them (its recommend section,
    defaults filled in): the page starts from them and returns to them when another preset is chosen."""
    rc = load_config(preset).recommend
    st.session_state["nr_weights"] = rc.preset
    for k, v in {**DEFAULT_FACTS, **rc.facts}.items():
        st.session_state[f"nr_f_{k}"] = float(v) if isinstance(DEFAULT_FACTS[k], float) else v
    for k, v in rc.targets.items():
        st.session_state[f"nr_t_{k}"] = round(100 * v, 1)
    st.session_state["nr_advice_from"] = preset


def advice_settings(preset: str) -> list[str]:
    """Every situation fact the advice engine takes, the weight preset and the quality targets, as the dotted
    overrides the run gets (ui.launcher.advice_overrides)."""
    if st.session_state.get("nr_advice_from") != preset:
        reset_advice(preset)
    st.markdown(
        "**Your situation and what good enough means** — the advice weighs the options with these; "
        "you can change them after the run on the **What-if** page without re-running anything."
    )
    left, right = st.columns([3, 1])
    with left:  # values two abreast, then the yes/no facts one a line: their labels are long sentences
        values = [k for k in DEFAULT_FACTS if not isinstance(DEFAULT_FACTS[k], bool)]
        cols = st.columns(2)
        for i, k in enumerate(values):
            with cols[i % 2]:
                fact_widget(k, f"nr_f_{k}")
        for k in DEFAULT_FACTS:
            if k not in values:
                fact_widget(k, f"nr_f_{k}")
    with right:
        st.selectbox(
            "Priorities (weight preset)",
            list(PRESETS),
            key="nr_weights",
            help="How much each criterion counts: "
            + "; ".join(
                f"{name}: accuracy {100 * w['accuracy']:.0f}%, hallucination {100 * w['hallucination']:.0f}%"
                for name, w in PRESETS.items()
            )
            + ". advisor ls lists every weight.",
        )
        for k in QUALITY_TARGETS:
            st.number_input(
                TARGET_LABEL.get(k, k.replace("_", " ")),
                min_value=0.0,
                max_value=100.0,
                step=5.0,
                format="%.1f",
                key=f"nr_t_{k}",
            )
    facts = {k: st.session_state[f"nr_f_{k}"] for k in DEFAULT_FACTS}
    targets = {k: st.session_state[f"nr_t_{k}"] / 100 for k in QUALITY_TARGETS}
    return advice_overrides(st.session_state["nr_weights"], facts, targets)


def plan(chosen: list[str]) -> tuple[list[str], Path]:
    """The command and run directory for the page's choices (`chosen`: the advice settings as overrides, then the
    extra settings typed in); AdvisorError or ValueError on bad input."""
    if upload_error:
        raise AdvisorError(upload_error)
    return plan_run(runs_dir(), corpus, qa, train_qa, preset, model, merge_overrides(chosen, shlex.split(overrides)))


chosen: list[str] = []
advice_error = None
with st.container(border=True):
    try:
        chosen = advice_settings(preset)
    except AdvisorError as e:  # said here, and again when Start is pressed
        advice_error = str(e)
        st.warning(f"**These settings cannot be used:** {e}")


def estimate_time(cmd: list[str], run_dir: Path) -> None:
    """The plan's time estimate (ui.launcher.plan_estimate), on request only: the first one for a model on this
    machine measures it for about a minute. Kept for the command it was made for; other settings hide it."""
    if st.button(
        "Estimate time",
        key="nr_estimate",
        help="Plans the run as `advisor plan` does: counts each stage's work and times it at this machine's "
        "measured speed. The first estimate for a model and training shape measures the machine (about a "
        "minute on 2 cores); later ones take seconds.",
    ):
        with st.spinner("Planning the run (the first time for this model, measuring this machine: about a minute)"):
            try:
                st.session_state["nr_estimate_of"] = (cmd, plan_estimate(cmd, run_dir), None)
            except (AdvisorError, ValueError, OSError) as e:
                st.session_state["nr_estimate_of"] = (cmd, None, str(e))
    got = st.session_state.get("nr_estimate_of")
    if got and got[0] == cmd:
        if got[2]:
            st.error(f"**Cannot plan this run:** {got[2]}")
        else:
            st.info(f"**Estimated time:** {got[1]}")
    elif got:
        st.caption("The settings changed since the last estimate; press **Estimate time** again.")


# Before launching: where the run goes, the command, and (on request) the plan's time estimate.
try:
    planned = None if advice_error else plan(chosen)
except (AdvisorError, ValueError):
    planned = None  # the reason is shown when Start is pressed
if planned:
    st.caption(f"Goes into **{planned[1].name}**; the command: `advisor {' '.join(planned[0][3:])}`")
    estimate_time(*planned)

if st.button("Start the run", type="primary", key="nr_start"):
    try:
        if advice_error:
            raise AdvisorError(advice_error)
        cmd, run_dir = plan(chosen)
        start_run(cmd, run_dir, {"corpus": "sample" if sample else corpus, "model": model, "preset": preset})
    except (AdvisorError, ValueError) as e:
        st.error(f"**Cannot start the run:** {e}")
    else:
        st.session_state["_launched"] = (
            f"Started **{run_dir.name}** in the background; its progress shows above. "
            "You can close this page; the run goes on."
        )
        st.session_state["_pick_run"] = run_dir.name
        st.rerun()
