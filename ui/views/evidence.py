"""Evidence: per-arm accuracy, hallucination and forgetting with 95% CI error bars, retrieval recall, the
validation-loss curve (adapter/training.json) and the leakage report (sft/leakage.json)."""

import pandas as pd
import streamlit as st

from advisor.core.arms import ARM_LABEL
from ui import charts
from ui.common import not_finished_message, require_run, run_header, show_data_error
from ui.rundata import RunDataError, load_metrics, read_json

st.title("Evidence")
run = require_run()
run_header(run)

if not (run.path / "eval" / "metrics.json").exists():
    not_finished_message(run, "The evidence")
    st.stop()
try:
    metrics = load_metrics(run.path)
except RunDataError as e:
    show_data_error(e)
    st.stop()

arms = metrics["arms"]
n_ans = next((m["accuracy"]["n"] for m in arms.values() if "accuracy" in m), 0)
n_una = next((m["abstention_rate"]["n"] for m in arms.values() if "abstention_rate" in m), 0)
st.caption(f"Bars are the measured value on this run's questions ({n_ans} answerable, {n_una} unanswerable); "
           f"error bars are 95% bootstrap confidence intervals ({metrics.get('bootstrap', {}).get('resamples', '?')} "
           "resamples). Overlapping intervals mean the difference may be chance.")

left, right = st.columns(2)
with left:
    st.subheader("Accuracy")
    df = charts.metric_frame(metrics, ["accuracy", "f1", "exact_match"])
    if df.empty:
        st.info("No accuracy metrics in this run.")
    else:
        st.altair_chart(charts.ci_bars(df, "share correct"), width="stretch")
        st.caption("Accuracy counts an answer correct when it contains a gold answer or has token F1 ≥ 0.5; "
                   "exact match and token F1 are the SQuAD definitions.")
with right:
    st.subheader("Hallucination")
    df = charts.metric_frame(metrics, ["hallucination_rate", "abstention_rate"])
    if df.empty:
        st.info("No hallucination metrics in this run.")
    else:
        st.altair_chart(charts.ci_bars(df, "share of questions"), width="stretch")
        st.caption("Hallucination rate: a wrong answer given instead of abstaining, over all questions (lower is "
                   "better). Abstention: declining on questions the corpus does not answer (higher is better).")

left, right = st.columns(2)
with left:
    st.subheader("Forgetting (general knowledge)")
    df = charts.metric_frame(metrics, ["probe_accuracy"])
    fg = charts.metric_frame(metrics, ["forgetting"])
    if df.empty:
        st.info("This run measured no general-knowledge probes (eval.probes is empty).")
    else:
        probes = ", ".join(metrics.get("probes", {})) or "probe set"
        st.altair_chart(charts.ci_bars(df, "probe accuracy", height=220), width="stretch")
        if not fg.empty:
            st.altair_chart(charts.diverging_ci(fg, "probe accuracy change, tuned − base"), width="stretch")
        st.caption(f"Multiple-choice probes ({probes}) scored by log-likelihood; the RAG arms use the base weights, so only "
                   "tuned weights can forget. A change below zero is forgetting.")
with right:
    st.subheader("Retrieval")
    df = charts.metric_frame(metrics, ["recall_at_k", "mrr"], ["rag", "tuned_rag"])
    if df.empty:
        st.info("No retrieval arm was evaluated in this run.")
    else:
        st.altair_chart(charts.ci_bars(df, "score", height=220), width="stretch")
        cols = st.columns(2)
        r = arms.get("rag", {}).get("recall_at_k")
        if r:
            cols[0].metric("RAG recall@k", f"{100 * r['value']:.0f}%",
                           help=f"95% CI {100 * r['ci95'][0]:.0f}–{100 * r['ci95'][1]:.0f}%, n={r['n']}")
        m = arms.get("rag", {}).get("mrr")
        if m:
            cols[1].metric("RAG MRR", f"{m['value']:.2f}", help=f"95% CI {m['ci95'][0]:.2f}–{m['ci95'][1]:.2f}")
        st.caption("Recall@k: the gold document is among the retrieved chunks. MRR: 1 / rank of the first chunk "
                   "from the gold document.")

left, right = st.columns(2)
with left:
    st.subheader("Training: validation loss")
    try:
        training = read_json(run.path / "adapter" / "training.json", "training record")
        st.altair_chart(charts.loss_curve(training), width="stretch")
        st.caption(f"{training.get('method', '?')} on {training.get('base_model', '?')} "
                   f"({training.get('quantization', '?')}), {training.get('steps', '?')} steps, "
                   f"{training.get('n_train', '?')} training / {training.get('n_val', '?')} validation examples, "
                   f"final validation loss {training.get('final_val_loss', float('nan')):.3f}.")
    except RunDataError as e:
        st.info(f"No training record: {e}")
with right:
    st.subheader("Leakage check")
    try:
        leak = read_json(run.path / "sft" / "leakage.json", "leakage report")
        cols = st.columns(2)
        cols[0].metric("max overlap with training questions", f"{100 * leak['max_overlap_with_training_questions']:.0f}%")
        cols[1].metric("max overlap with corpus text", f"{100 * leak['max_overlap_with_corpus_text']:.0f}%")
        dropped = leak.get("dropped_training_questions_equal_to_eval") or []
        st.caption(f"{leak.get('measure', 'n-gram overlap')}. No eval question is trained on "
                   f"({len(dropped)} training questions equal to an eval question were dropped). Overlap with the "
                   "corpus text is expected: the facts are there for both tracks.")
        pairs = leak.get("top_pairs_training_questions") or []
        if pairs:
            st.dataframe(pd.DataFrame(pairs)[["eval_id", "overlap", "eval_question", "training_example"]],
                         hide_index=True, height=180,
                         column_config={"overlap": st.column_config.NumberColumn(format="percent")})
    except (RunDataError, KeyError) as e:
        st.info(f"No leakage report: {e}")

paired = metrics.get("paired") or {}
if paired:
    st.subheader("Paired differences (same questions)")
    rows = [{"comparison": pair, "metric": charts.METRIC_LABEL.get(m, m), "difference": d["value"],
             "CI low": d["ci95"][0], "CI high": d["ci95"][1], "p": d.get("p_value"), "n": d["n"],
             "significant": not (d["ci95"][0] <= 0 <= d["ci95"][1])}
            for pair, diffs in paired.items() for m, d in diffs.items()]
    st.dataframe(pd.DataFrame(rows), hide_index=True, column_config={
        c: st.column_config.NumberColumn(format="%+.3f") for c in ("difference", "CI low", "CI high")})
    st.caption("Arm A − arm B on the questions both answered; significant when the 95% CI excludes 0. "
               f"Arms: {', '.join(f'{a} = {label}' for a, label in ARM_LABEL.items())}.")
