"""Evidence: first the paired differences between RAG, fine-tune and both on the same questions (percentage
points, plain names), then four tabs (ui.common.EVIDENCE_TABS): per-arm accuracy, hallucination and answer
quality (semantic similarity, faithfulness); known vs unknown facts and the training questions' wording; the
knowledge-update drill, latency and retrieval; forgetting, the validation-loss curve (adapter/training.json), the
training seeds, the learning curve (eval/curve.json) and the leakage report (sft/leakage.json). Every chart
carries one caption saying what it shows; bars have 95% CI error bars and a bar of 0 a visible marker."""

import pandas as pd
import streamlit as st

from advisor.core.arms import ARM_LABEL, ARM_OF_OPTION, ARMS, INDEX_ARMS, OPTION_LABEL, RAG, TUNED
from advisor.curve import CURVE_NEEDS, TRAINING_LINE_MEANING
from advisor.plain import generator_words
from ui import charts
from ui.common import EVIDENCE_TABS, not_finished_message, require_run, run_header, show_data_error
from ui.rundata import RunDataError, load_config_dict, load_curve, load_metrics, read_json

# Streamlit wraps cell text only in rows taller than 64 px; 66 px holds two lines.
WRAP_ROW_PX = 66
GROUP_LABEL = {"known": "known to the base model", "maybe_known": "maybe known", "unknown": "unknown to it"}
WORDING_LABEL = {"close": "worded like a training question", "new": "worded otherwise"}


def chart(c, caption: str) -> None:
    """A chart and, right under it, the one plain-language sentence that says what it shows."""
    st.altair_chart(c, width="stretch")
    st.caption(caption)


def paired_section(metrics: dict) -> None:
    """RAG vs fine-tune vs both on the same questions: a chart of the accuracy and hallucination differences and
    the table of every paired difference, option comparisons first."""
    st.subheader("RAG vs fine-tune vs both, question by question")
    paired = metrics.get("paired") or {}
    if not paired:
        st.info(
            "This run's metrics.json holds no paired differences; re-run the metrics stage "
            "(`advisor eval RUN_DIR`) to compute them."
        )
        return
    table = charts.paired_frame(paired, (metrics.get("bootstrap") or {}).get("resamples"))
    # one chart under the other: side by side, a 1024 px window squeezed their bars into a sliver
    for key, what in (("accuracy", "accuracy"), ("hallucination_rate", "hallucination rate")):
        rows = table[table["key"] == key]
        if rows.empty:
            st.info(f"No paired difference in {what} in this run.")
            continue
        df = rows.rename(columns={"difference (pts)": "value"})[["comparison", "arm", "value", "lo", "hi", "n"]]
        chart(
            charts.diverging_ci(
                df,
                f"{what}: first − second, percentage points",
                y="comparison",
                fmt="+.0f",
                unit=" pts",
                labels=True,
            ),
            f"How many percentage points the first option's {what} is above (right) or below (left) the "
            f"second's on the same questions; the black line is the 95% CI, and a line that crosses the "
            f"dashed zero is no clear difference."
            + (" Lower is better." if key == "hallucination_rate" else " Higher is better."),
        )
    # What each comparison shows is said once, above the table, not on each of its rows (a column that long was cut
    # off at the table's right edge)
    meanings = dict(zip(table["comparison"], table["what it shows"]))
    st.markdown("\n".join(f"- **{c}**: {m}" for c, m in meanings.items()))
    shown = table.drop(columns=["lo", "hi", "arm", "key", "what it shows"])
    # Seven columns fit a 1024 px window (a 674 px table) only on two lines a row: the text columns wrap (rows over
    # 64 px), and the headers are short (the caption says the unit). In a wider window the columns widen instead.
    st.dataframe(
        shown,
        hide_index=True,
        row_height=WRAP_ROW_PX,
        height=min(38 + WRAP_ROW_PX * 9 + WRAP_ROW_PX // 2, 38 + WRAP_ROW_PX * len(shown)),
        column_config={
            "comparison": st.column_config.TextColumn(width=118),
            "metric": st.column_config.TextColumn(width=118),
            "difference (pts)": st.column_config.NumberColumn("difference", format="%+.1f", width=82),
            "95% CI (pts)": st.column_config.TextColumn("95% CI", width=100),
            "p": st.column_config.TextColumn(width=74),
            "n": st.column_config.NumberColumn(width=40),
            "the data favour": st.column_config.TextColumn("favours", width=106),
        },
    )
    missing = (
        ""
        if any(k in paired for k in ("rag - tuned", "tuned - rag"))
        else (
            f" {ARM_LABEL[RAG]} and {ARM_LABEL[TUNED]} are not paired directly in this run's metrics.json: "
            "compare their bars below."
        )
    )
    st.caption(
        "Each row: the first option minus the second on the questions both answered, in percentage points "
        "(token F1 and semantic similarity: points on their 0–100 scale), with its 95% bootstrap CI and p-value, "
        "and n, the questions compared; “favours” names the option the data favour only when the CI excludes 0."
        + missing
    )


def arm_bars(
    metrics: dict,
    names: list[str],
    y_title: str,
    caption: str,
    empty: str,
    pct: bool = True,
    arms: list[str] | None = None,
    labels: dict | None = None,
    height: int = 260,
) -> None:
    df = charts.metric_frame(metrics, names, arms, labels)
    if df.empty:
        st.info(empty)
    else:
        chart(charts.ci_bars(df, y_title, pct=pct, height=height), caption)


def group_rows(metrics: dict, key: str, labels: dict) -> list[dict]:
    """One chart row per arm and group of metrics.json arms.<arm>.<key> (by_knowledge, by_wording): its accuracy."""
    rows = []
    for arm, m in metrics["arms"].items():
        for g, gm in (m.get(key) or {}).items():
            acc = gm.get("accuracy")
            if acc:
                rows.append(
                    {
                        "arm": ARM_LABEL.get(arm, arm),
                        "metric": f"{labels.get(g, g)} (n={gm['n']})",
                        "value": acc["value"],
                        "lo": acc["ci95"][0],
                        "hi": acc["ci95"][1],
                        "n": acc["n"],
                    }
                )
    return rows


def knowledge_section(metrics: dict) -> None:
    """Accuracy on facts the base model already knew vs did not (eval/metrics.json knowledge, by_knowledge)."""
    st.subheader("Known vs unknown facts")
    know = metrics.get("knowledge") or {}
    rows = group_rows(metrics, "by_knowledge", GROUP_LABEL)
    if not rows:
        st.info(
            "Not measured in this run: set eval.known_samples above 0 and re-run the evaluation "
            "(`advisor eval RUN_DIR`) to sort the questions into facts the base model knew and did not."
        )
        return
    how = (
        (
            f" How a fact was classed: {know['method']} ({know.get('samples', '?')} samples at temperature "
            f"{know.get('temperature', '?')})."
        )
        if know.get("method")
        else ""
    )
    chart(
        charts.ci_bars(pd.DataFrame(rows), "share correct", by_metric=True),
        "Accuracy of each option on the facts the base model already knew, maybe knew, and did not know: "
        "retrieval can supply a fact the model lacks; fine-tuning rarely teaches one (Gekhman et al. 2024)." + how,
    )


def wording_section(metrics: dict) -> None:
    """Accuracy on eval questions worded like a training question vs otherwise (metrics.json wording, by_wording);
    nothing when no option answers with an adapter."""
    rows = group_rows(metrics, "by_wording", WORDING_LABEL)
    if not rows:
        return
    w = metrics.get("wording") or {}
    st.subheader("Questions worded like the training questions")
    if not (w.get("counts") or {}).get("close", 1):
        st.caption(
            "None of the eval questions is worded like a question the adapter was trained on, so the accuracies above "
            f"measure new wording. How a question was classed: {w.get('method', '?')}."
        )
        return
    chart(
        charts.ci_bars(pd.DataFrame(rows), "share correct", by_metric=True),
        "Accuracy of each option on the eval questions worded like a question the adapter was trained on and on "
        "the others: a tuned option far better on the first partly recalls trained wording, and users' questions "
        f"are worded their own way. How a question was classed: {w.get('method', '?')}.",
    )
    examples = w.get("examples") or []
    if examples:
        st.markdown("The close questions with the largest overlap, each beside the training question that holds it:")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "overlap": f"{100 * e['overlap']:.0f}%",
                        "eval question": e["question"],
                        "training question": e["training_question"],
                    }
                    for e in examples
                ]
            ),
            hide_index=True,
        )


def seeds_section(metrics: dict) -> None:
    """The tuned options' accuracy and commonest answer with each training seed (arms.<arm>.seed_spread)."""
    st.subheader("Training seeds")
    rows, spreads = [], []
    for arm, m in metrics["arms"].items():
        sp = m.get("seed_spread")
        if not sp:
            continue
        n = len(sp["seeds"])
        spreads.append(
            f"{ARM_LABEL.get(arm, arm)}: mean {100 * sp['mean']:.1f}%, sd {100 * sp['sd']:.1f} pts over {n} seeds"
        )
        tops, shares = sp.get("top_answer") or [""] * n, sp.get("top_share") or [None] * n
        for k, seed in enumerate(sp["seeds"]):
            rows.append(
                {
                    "option": ARM_LABEL.get(arm, arm),
                    "seed": seed,
                    "accuracy %": round(100 * sp["accuracy"][k], 1),
                    "commonest answer": tops[k] or "",
                    "its share %": None if shares[k] is None else round(100 * shares[k]),
                    "collapsed": "yes" if (sp.get("collapsed") or [False] * n)[k] else "",
                }
            )
    if not rows:
        st.info(
            "Trained with one seed: how far the fine-tuned options' accuracy moves from one training draw to the "
            "next is not measured in this run. `tuning.seeds=3` trains two more adapters on the same data."
        )
        return
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    st.caption(
        "; ".join(spreads) + ". The confidence intervals elsewhere on this page are the first seed's. A seed "
        "whose answers collapsed (one answer for more than 20% of the questions) does not measure the option."
    )


def drill_section(run_dir) -> None:
    """The knowledge-update drill (drill/drill.json): time to absorb changed facts and accuracy on them after."""
    st.subheader("Knowledge-update drill")
    path = run_dir / "drill" / "drill.json"
    if not path.exists():
        st.info(
            f"Not measured — run `advisor drill {run_dir}` to measure how fast each option absorbs changed "
            "facts and how well it answers them afterwards; until then the advice's freshness criterion uses "
            "the stated knowledge_change fact."
        )
        return
    try:
        drill = read_json(path, "knowledge-update drill")
        options = {o: d for o, d in drill["options"].items() if o in ARM_OF_OPTION}
        times = pd.DataFrame([{"arm": OPTION_LABEL[o], "value": float(d["update_s"])} for o, d in options.items()])
        acc = pd.DataFrame(
            [
                {
                    "arm": OPTION_LABEL[o],
                    "metric": "accuracy on the changed facts",
                    "value": d["accuracy"]["value"],
                    "lo": d["accuracy"]["ci95"][0],
                    "hi": d["accuracy"]["ci95"][1],
                    "n": d["accuracy"]["n"],
                }
                for o, d in options.items()
            ]
        )
    except (RunDataError, KeyError, TypeError, ValueError) as e:
        show_data_error(
            RunDataError(f"{path} cannot be read as a drill result ({e}); re-run `advisor drill {run_dir}`")
        )
        return
    left, right = st.columns(2)
    with left:
        chart(
            charts.value_bars(times, "seconds to absorb the change", unit=" s"),
            f"Wall time each option needed to take in {drill.get('n_changed_documents', '?')} changed or new "
            "documents: RAG and Fine-tune + RAG re-index, Fine-tune trains an adapter on them.",
        )
    with right:
        before = (drill.get("before") or {}).get("accuracy")
        chart(
            charts.ci_bars(acc, "share correct"),
            f"Accuracy on {drill.get('n_questions', '?')} questions about the changed facts, after the update"
            + (f"; before it, RAG answered {100 * before['value']:.0f}% with the old index." if before else "."),
        )
    if drill.get("note"):
        st.caption(drill["note"])


def curve_section(run_dir) -> None:
    """The learning curve (eval/curve.json): accuracy on the eval questions, the adapter's own training questions
    and the probe along the training steps, as the report's curve.png draws it."""
    st.subheader("Training: what the adapter learnt along the way")
    try:
        curve = load_curve(run_dir)
    except RunDataError as e:
        show_data_error(e)
        return
    if not curve:
        st.info(f"This run measured no learning curve: it needs {CURVE_NEEDS}.")
        return
    pts = curve["points"]
    trained = [p for p in pts if "train_accuracy" in p]
    caption = (
        f"Accuracy of the base model (before training) and of the adapter at each saved step on the first "
        f"{pts[0]['n_questions']} answerable eval questions, closed book, and on {pts[0]['n_probe']} "
        "general-knowledge probe items "
        f"({curve.get('probe_set', '?')}): falling probe accuracy is forgetting. The tuned arms use step "
        f"{curve['used']['step']}: {curve['used']['why']}. A small slice: read the shape, not single points."
    )
    if trained:
        last = trained[-1]
        caption += (
            f" The dashed line is {last['n_train_questions']} of the questions the adapter was trained on, in their "
            f"trained wording ({100 * last['train_accuracy']:.0f}% at step {last['step']}): {TRAINING_LINE_MEANING}"
        )
    chart(charts.learning_curve(curve), caption)


def leakage_section(run_dir) -> None:
    st.subheader("Leakage check")
    try:
        leak = read_json(run_dir / "sft" / "leakage.json", "leakage report")
        cols = st.columns(2)
        cols[0].metric(
            "max overlap with training questions", f"{100 * leak['max_overlap_with_training_questions']:.0f}%"
        )
        cols[1].metric("max overlap with corpus text", f"{100 * leak['max_overlap_with_corpus_text']:.0f}%")
        dropped = leak.get("dropped_training_questions_equal_to_eval") or []
        st.caption(
            f"{leak.get('measure', 'n-gram overlap')}. No eval question is trained on "
            f"({len(dropped)} training questions equal to an eval question were dropped). Overlap with the "
            "corpus text is expected: the facts are there for both tracks."
        )
        pairs = leak.get("top_pairs_training_questions") or []
        if pairs:
            # four wrapped lines a row keep the two texts side by side in a 1024 px window (a 674 px table)
            st.dataframe(
                pd.DataFrame(pairs)[["eval_id", "overlap", "eval_question", "training_example"]],
                hide_index=True,
                row_height=96,
                height=38 + 96 * min(len(pairs), 4),
                column_config={
                    "eval_id": st.column_config.TextColumn("id", width=56),
                    "overlap": st.column_config.NumberColumn(format="percent", width=70),
                    "eval_question": st.column_config.TextColumn("eval question", width=240),
                    "training_example": st.column_config.TextColumn("training example", width=300),
                },
            )
    except (RunDataError, KeyError) as e:
        st.info(f"No leakage report: {e}")


def answers_section(metrics: dict) -> None:
    """Accuracy and hallucination (with abstention), then the meaning of the answers and their faithfulness."""
    left, right = st.columns(2)
    with left:
        st.subheader("Accuracy")
        arm_bars(
            metrics,
            ["accuracy", "f1", "exact_match"],
            "share correct",
            "Share of answerable questions each option answers correctly (gold answer contained, or a shorter "
            "form that keeps its numbers and replaces none of its words: '26 weeks' for '26 weeks at full pay' counts, "
            "'12 days' for '27 days' does not), "
            "with the SQuAD exact match and token F1 beside it.",
            "No accuracy metrics in this run.",
        )
    with right:
        st.subheader("Hallucination")
        arm_bars(
            metrics,
            ["hallucination_rate", "abstention_rate"],
            "share of questions",
            "Hallucination: a wrong answer given instead of abstaining, over all questions (lower is better). "
            "Abstention: declining on questions the corpus does not answer (higher is better).",
            "No hallucination metrics in this run.",
        )

    left, right = st.columns(2)
    with left:
        st.subheader("Meaning of the answers")
        arm_bars(
            metrics,
            ["semantic_similarity"],
            "similarity (0–1)",
            "How close each answer's meaning is to the gold answer (sentence-embedding similarity, 0–1): credit for "
            "a right answer in other words, which accuracy misses.",
            "Not measured in this run (eval.embedder is none).",
            pct=False,
            height=220,
        )
    with right:
        st.subheader("Faithfulness to the retrieved passages")
        arm_bars(
            metrics,
            ["faithfulness"],
            "words found in the passages",
            "Share of each answer's content words found in the passages it was given (retrieval options only): low "
            "means it answered from the model's weights, not from the passages.",
            "No retrieval option was evaluated in this run.",
            arms=[a for a in ARMS if a in INDEX_ARMS],
            height=220,
        )


def serving_section(run_dir, metrics: dict) -> None:
    """Latency per question and, for the retrieval options, how often the gold document was retrieved."""
    arms = metrics["arms"]
    left, right = st.columns(2)
    with left:
        st.subheader("Latency")
        arm_bars(
            metrics,
            ["latency_p50_s", "latency_p95_s"],
            "seconds per question",
            "Time to answer one question on the machine that made this run, median and 95th percentile: what "
            "serving each option costs in waiting.",
            "No latency in this run.",
            pct=False,
            height=220,
        )
    with right:
        st.subheader("Retrieval")
        k = (load_config_dict(run_dir).get("retrieval") or {}).get("top_k")
        recall = f"recall@{k}" if k else "recall@k"
        arm_bars(
            metrics,
            ["recall_at_k", "mrr"],
            "score",
            f"{recall.capitalize()}: share of questions whose gold document is among the {k or 'k'} chunks put in "
            "the prompt. MRR: 1 / rank of the first chunk from the gold document.",
            "No retrieval arm was evaluated in this run.",
            arms=[a for a in ARMS if a in INDEX_ARMS],
            labels={"recall_at_k": recall},
            height=220,
        )
        cols = st.columns(2)
        r = arms.get(RAG, {}).get("recall_at_k")
        if r:
            cols[0].metric(
                f"RAG {recall}",
                f"{100 * r['value']:.0f}%",
                help=f"95% CI {100 * r['ci95'][0]:.0f}–{100 * r['ci95'][1]:.0f}%, n={r['n']}",
            )
        m = arms.get(RAG, {}).get("mrr")
        if m:
            cols[1].metric("RAG MRR", f"{m['value']:.2f}", help=f"95% CI {m['ci95'][0]:.2f}–{m['ci95'][1]:.2f}")


def forgetting_and_loss_section(run_dir, metrics: dict) -> None:
    """General-knowledge probes and their change from fine-tuning beside the adapter's loss curve."""
    left, right = st.columns(2)
    with left:
        st.subheader("Forgetting (general knowledge)")
        probes = ", ".join(metrics.get("probes", {})) or "probe set"
        arm_bars(
            metrics,
            ["probe_accuracy"],
            "probe accuracy",
            f"Accuracy on general-knowledge multiple-choice probes ({probes}, scored by log-likelihood): the RAG "
            "options use the base weights, so only tuned weights can forget.",
            "This run measured no general-knowledge probes (eval.probes is empty).",
            height=220,
        )
        fg = charts.metric_frame(metrics, ["forgetting"])
        if not fg.empty:
            chart(
                charts.diverging_ci(fg, "probe accuracy change, tuned − base"),
                "Change in probe accuracy from fine-tuning (tuned − base weights); below zero is forgetting.",
            )
    with right:
        st.subheader("Training: validation loss")
        try:
            training = read_json(run_dir / "adapter" / "training.json", "training record")
            chart(
                charts.loss_curve(training),
                f"Loss per optimizer step while training the adapter ({training.get('method', '?')} on "
                f"{training.get('base_model', '?')}, {training.get('quantization', '?')}, {training.get('steps', '?')} "
                f"steps, {training.get('n_train', '?')} training / {training.get('n_val', '?')} validation examples): "
                f"final validation loss {training.get('final_val_loss', float('nan')):.3f}.",
            )
        except RunDataError as e:
            st.info(f"No training record: {e}")


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
st.caption(
    f"Measured on this run's questions ({n_ans} answerable, {n_una} unanswerable); error bars and CIs are "
    f"95% bootstrap confidence intervals ({metrics.get('bootstrap', {}).get('resamples', '?')} resamples). "
    "Overlapping intervals mean the difference may be chance; a ◆ marks a value of exactly 0."
    + generator_words(metrics.get("generator"))
)

paired_section(metrics)

# The rest in tabs (ui.common.EVIDENCE_TABS): one long page was ~5,800 px tall at 1400 px wide
answers_tab, facts_tab, serving_tab, training_tab = st.tabs(list(EVIDENCE_TABS))
with answers_tab:
    answers_section(metrics)
with facts_tab:
    knowledge_section(metrics)
    wording_section(metrics)
with serving_tab:
    drill_section(run.path)
    serving_section(run.path, metrics)
with training_tab:
    forgetting_and_loss_section(run.path, metrics)
    seeds_section(metrics)
    curve_section(run.path)
    leakage_section(run.path)
