"""Questions: every eval question with its gold answer and each arm's answer, verdict and sources; filters
for wrong answers, unanswerable questions and disagreement between arms; one question opened shows the
chunks its retrieval arms were given, with what their retrieval score means in this run.

Two views of the same questions. "Full answers" (the default) is a plain table, ten questions a page, with every
answer in full, wrapped in its column: what a person reads. "Sortable table" is one interactive table of all of
them, sized so the four arms' answers fit side by side in a 1024 px window with the sidebar open (an answer
wraps over five lines there and a click on a cell shows the rest), with each retrieval option's sources as
columns hidden at first (its "Show/hide columns" shows them; one question opened lists its chunks)."""

import streamlit as st

from advisor.core.arms import ARM_LABEL, ARMS, INDEX_ARMS
from advisor.metrics import METRIC_INFO
from ui.common import not_finished_message, require_run, run_header, show_data_error
from ui.rundata import RunDataError, filter_questions, is_right, load_config_dict, load_rows, question_table, read_json

GATED = "abstained by the retrieval gate: its best chunk was too far from the question, nothing was generated"
SCORE_LABEL = {n: METRIC_INFO[n].label for n in ("f1", "exact_match", "recall_at_k", "mrr")}  # shown under an answer
# Column widths in px are the narrowest the columns get: id, question, gold and four arms add up to 656 px, for
# a 1024 px window with the sidebar open, where the table is 674 px wide (measured in Chromium, Streamlit 1.67,
# wide layout; ui/screens.py reports a table wider than its place). In a wider window every column but the
# pinned id grows by the same amount: at 1400 px (a 938 px table) an answer column is about 145 px wide.
# Streamlit wraps cell text only in rows taller than 64 px: 116 px shows five lines.
COLUMN_PX = {"id": 44, "question": 144, "gold": 68, "arm": 100, "sources": 180}
TABLE_PX = 656
ROW_PX = 116
VIEWS = ("Full answers", "Sortable table")
PAGE_ROWS = 10  # questions per page of the full view: a page of base-model answers (up to ~180 characters) fits
# in about two screens at 1024 px


def score_meaning(run_dir) -> tuple[str, str]:
    """(label, explanation) of a retrieved chunk's score in this run: the fused rank score of reciprocal rank
    fusion when the index is hybrid (dense + BM25), else the cosine similarity of the dense search."""
    try:
        hybrid = read_json(run_dir / "index" / "index_config.json", "index settings").get("hybrid")
    except RunDataError:
        hybrid = None
    if hybrid:
        k = (load_config_dict(run_dir).get("retrieval") or {}).get("rrf_k") or 60
        return "rank score", (
            f"Rank score: reciprocal rank fusion of the embedding and BM25 rankings, the sum of 1 / ({k} + rank) "
            f"over both (at most {2 / (k + 1):.4f}, when both rank a chunk first). It orders the chunks; it is not "
            "a similarity, so compare ranks, not scores."
        )
    if hybrid is False:
        return "cosine similarity", "Cosine similarity of the question's and the chunk's embeddings (dense search)."
    return "retrieval score", "The retriever's score (this run's index settings are missing, so its kind is unknown)."


st.title("Questions")
run = require_run()
run_header(run)

try:
    rows = load_rows(run.path)
except RunDataError as e:
    show_data_error(e)
    st.stop()
if not rows:
    not_finished_message(run, "The per-question answers")
    st.stop()

arms = [a for a in ARMS if a in rows]
table = question_table(rows)

# The filters in a row, each label on one line in a 1024 px window; the arms' names under them, at full width
# (beside the filters the fourth was cut off)
c1, c2, c3 = st.columns(3, vertical_alignment="bottom")
wrong = c1.selectbox(
    "Wrong answers",
    ["all questions", "wrong in any arm", *(f"wrong in {a}" for a in arms)],
    format_func=lambda o: f"wrong in {ARM_LABEL[o[9:]]}" if o[9:] in ARM_LABEL else o,
    key="q_wrong",
    help="Wrong = not counted correct on an answerable question, or not abstaining on an unanswerable one.",
)
una = c2.toggle(
    "Unanswerable only", key="q_una", help="Questions the corpus does not answer: the right response is to abstain."
)
dis = c3.toggle("Arms disagree", key="q_dis", help="Some arms right and others wrong on the same question.")
shown_arms = st.multiselect("Arms shown", arms, default=arms, format_func=ARM_LABEL.get, key="q_arms")

wrong_in = (
    None if wrong == "all questions" else "any" if wrong == "wrong in any arm" else wrong.removeprefix("wrong in ")
)
view = filter_questions(table, wrong_in, una, dis)
view_mode = st.radio(
    "View",
    VIEWS,
    horizontal=True,
    key="q_view",
    help="Full answers: every answer in full, ten questions a page. Sortable table: all questions in one "
    "table you can sort, with each retrieval option's sources as columns; an answer longer than five lines is "
    "cut in its cell until you click it.",
)
st.caption(
    f"{len(view)} of {len(table)} questions shown. ✓ right · ✗ wrong (answerable: the gold answer is "
    "contained, or a shorter form that keeps its numbers and replaces none of its words; unanswerable: the arm "
    "abstained). "
    + (
        "Each retrieval option's sources (the retrieved chunks' documents by rank) are hidden columns: the "
        "table's Show/hide columns shows them. "
        if view_mode == VIEWS[1]
        else ""
    )
    + "Open a question below for its scores and chunks."
)


def mark(v) -> str:
    return "" if v is None or v != v else "✓" if v else "✗"


shown = view[["id", "question", "gold"]].copy()
for a in shown_arms:  # every arm's answer, side by side
    shown[ARM_LABEL[a]] = view[f"{a} right"].map(mark) + " " + view[f"{a} answer"].fillna("")

if view_mode == VIEWS[0]:
    pages = max(1, -(-len(view) // PAGE_ROWS))
    page = 0
    if pages > 1:  # the key names the count, so a page past the end of a narrower filter is never kept
        page = st.selectbox(
            "Questions",
            range(pages),
            format_func=lambda p: f"{p * PAGE_ROWS + 1}–{min(len(view), (p + 1) * PAGE_ROWS)} of {len(view)}",
            key=f"q_page_{len(view)}",
        )
    if not view.empty:
        st.table(shown.iloc[page * PAGE_ROWS : (page + 1) * PAGE_ROWS], hide_index=True)
else:
    config = {c: st.column_config.TextColumn(width=COLUMN_PX[c]) for c in ("question", "gold")}
    config["id"] = st.column_config.TextColumn(width=COLUMN_PX["id"], pinned=True)
    for a in shown_arms:
        config[ARM_LABEL[a]] = st.column_config.TextColumn(width=COLUMN_PX["arm"])
    for a in shown_arms:  # the sources after every answer, hidden at first
        if f"{a} sources" in view:
            shown[f"{ARM_LABEL[a]} sources"] = view[f"{a} sources"]
            # hidden is a ColumnConfig key that TextColumn() does not take
            config[f"{ARM_LABEL[a]} sources"] = st.column_config.TextColumn(width=COLUMN_PX["sources"]) | {
                "hidden": True
            }
    st.dataframe(
        shown,
        hide_index=True,
        column_config=config,
        row_height=ROW_PX,
        height=min(38 + 4 * ROW_PX + ROW_PX // 2, 38 + ROW_PX * max(1, len(view))),
    )

if view.empty:
    st.info("No question matches these filters.")
    st.stop()

st.subheader("One question in detail")
labels = {r["id"]: f"{r['id']} — {r['question']}" for _, r in view.iterrows()}
qid = st.selectbox("Question", list(labels), format_func=labels.get, key="q_open")
first = next(r for a in arms for r in rows[a] if r["id"] == qid)
st.markdown(f"**{first['question']}**")
gold = "unanswerable (the corpus does not say)" if first.get("unanswerable") else " / ".join(first.get("answers") or [])
st.markdown(f"Gold answer: **{gold}**" + (f" · gold source: `{first['source']}`" if first.get("source") else ""))

top_k = (load_config_dict(run.path).get("retrieval") or {}).get("top_k")
score_names = SCORE_LABEL | ({"recall_at_k": f"recall@{top_k}"} if top_k else {})  # the run's k, not a bare k
cols = st.columns(len(arms))
for col, a in zip(cols, arms):
    r = next((x for x in rows[a] if x["id"] == qid), None)
    with col:
        right = is_right(r) if r else None
        st.markdown(f"**{ARM_LABEL[a]}** " + ("" if right is None else ":green[✓ right]" if right else ":red[✗ wrong]"))
        if r is None:
            st.caption("not answered by this arm")
            continue
        st.write(r.get("answer") or "(empty answer)")
        if r.get("gated"):
            st.caption(GATED)
        scores = r.get("scores") or {}
        st.caption(
            " · ".join(f"{score_names[k]} {scores[k]:.2f}" for k in score_names if k in scores)
            + f" · {1000 * r.get('latency_s', 0):.0f} ms"
        )

shown_chunks: list[str] = []
score_label, score_help = score_meaning(run.path)
for a in (a for a in ARMS if a in INDEX_ARMS):
    r = next((x for x in rows.get(a, []) if x["id"] == qid), None)
    if not r or not r.get("contexts"):
        continue
    ids = [c.get("chunk_id") for c in r["contexts"]]
    if ids == shown_chunks:
        st.caption(f"{ARM_LABEL[a]} was given the same chunks.")
        continue
    shown_chunks = ids
    st.markdown(
        f"**Chunks retrieved for {ARM_LABEL[a]}**, best first" + (f" (cited: {r['cited']})" if r.get("cited") else "")
    )
    for i, c in enumerate(r["contexts"], 1):
        gold_mark = (
            " · :material/star: gold source" if first.get("source") and c.get("source") == first["source"] else ""
        )
        with st.expander(
            f"rank {c.get('rank', i)} of {len(r['contexts'])} · {c.get('source', '?')} · "
            f"{score_label} {c.get('score', 0):.4f}{gold_mark}"
        ):
            st.text(c.get("text", ""))
    st.caption(score_help)
