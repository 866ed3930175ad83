"""Review: a person checks a generated evaluation set item by item — the question, its answer and the evidence
highlighted in the source passage — and accepts, rejects or edits it. Decisions go to RUN_DIR/qa/review.json and
RUN_DIR/qa/reviewed.jsonl (rebuilt atomically on every save; the generated eval.jsonl is never touched). A button
re-evaluates the run on the reviewed set (advisor eval RUN_DIR --qa RUN_DIR/qa/reviewed.jsonl)."""

import re
import sys

import streamlit as st

from advisor.core.artifacts import read_jsonl
from advisor.core.errors import AdvisorError
from advisor.qa_review import load_decisions, run_documents, save_decision
from ui.common import require_run, run_header
from ui.launcher import is_active, start_run

CONTEXT_CHARS = 400  # characters of the source shown on each side of the evidence

st.title("Review the generated questions")
run = require_run()
run_header(run)
qa_dir = run.path / "qa"
if not (qa_dir / "eval.jsonl").is_file():
    st.info(
        "This run was evaluated on a QA file given to it, not on generated questions: there is nothing to "
        "review here. Runs started without a QA file (`advisor run --corpus DIR`) generate their questions "
        "and can be reviewed on this page."
    )
    st.stop()

try:
    items = read_jsonl(qa_dir / "eval.jsonl")
    decisions = load_decisions(qa_dir)
except (AdvisorError, ValueError) as e:
    st.error(f"**The generated set cannot be read:** {e}")
    st.stop()

done = sum(1 for it in items if it["id"] in decisions)
counts = {d: sum(1 for x in decisions.values() if x["decision"] == d) for d in ("accept", "edit", "reject")}
st.progress(
    done / max(1, len(items)),
    text=f"{done} of {len(items)} reviewed: {counts['accept']} accepted, "
    f"{counts['edit']} edited, {counts['reject']} rejected",
)
st.caption(
    "Accept a question that is clear, answered by its evidence and has the right answer; edit one that is "
    "nearly right; reject the rest. Unanswerable questions name something the corpus never mentions: accept "
    "them when no document answers them."
)

show = st.radio("Show", ["not reviewed yet", "all", "accepted", "edited", "rejected"], horizontal=True, key="rv_show")
want = {"accepted": "accept", "edited": "edit", "rejected": "reject"}.get(show)
pool = [
    it
    for it in items
    if (
        it["id"] not in decisions
        if show == "not reviewed yet"
        else show == "all" or decisions.get(it["id"], {}).get("decision") == want
    )
]
if not pool:
    st.success("Nothing left in this view." + (" Every question has been reviewed." if done == len(items) else ""))
else:
    labels = {it["id"]: f"{it['id']} · {it['question'][:90]}" for it in pool}
    pick = st.selectbox("Question", list(labels), format_func=labels.get, key="rv_pick")
    it = next(x for x in pool if x["id"] == pick)
    d = decisions.get(it["id"])
    st.markdown(f"#### {it['question']}")
    if it.get("unanswerable"):
        swap = it.get("swap", {})
        ver = it.get("verification", {})
        st.markdown(
            f"**Unanswerable.** Made from a real question by swapping *{swap.get('from', '?')}* for "
            f"*{swap.get('to', '?')}*, a name no chunk of the corpus holds. The {len(ver.get('bm25_top_k', []))} "
            "chunks a keyword search finds for it "
            + ("include" if ver.get("original_answer_in_top_k") else "do not include")
            + " the original question's answer."
        )
    else:
        st.markdown(
            f"**Answer:** {', '.join(it['answers'])}  ·  type *{it.get('answer_type', '?')}*  ·  source "
            f"`{it['source']}`"
        )
        ev = it.get("evidence") or {}
        docs = st.session_state.setdefault("_rv_docs", {})  # read once per session and run
        if str(run.path) not in docs:
            docs[str(run.path)] = run_documents(run.path)
        src = docs[str(run.path)].get(ev.get("source", ""))
        if src and src[ev["start"] : ev["end"]] == ev["text"]:
            before = src[max(0, ev["start"] - CONTEXT_CHARS) : ev["start"]]
            after = src[ev["end"] : ev["end"] + CONTEXT_CHARS]
            text = ev["text"]
            a = text.find(it["answers"][0]) if it["answers"] else -1

            def esc(s: str) -> str:
                return re.sub(r"([\\`*_{}\[\]<>()#+!|$~:-])", r"\\\1", s).replace("\n", "  \n")

            marked = (
                esc(text)
                if a < 0
                else esc(text[:a])
                + ":orange-background[**"
                + esc(text[a : a + len(it["answers"][0])])
                + "**]"
                + esc(text[a + len(it["answers"][0]) :])
            )
            st.markdown("**Evidence in its source passage** (evidence on a blue background, answer in orange):")
            st.markdown("> …" + esc(before) + ":blue-background[" + marked + "]" + esc(after) + "…")
        else:
            st.markdown(f"**Evidence:** {ev.get('text', '(none)')}")
            st.caption("The source document is not readable any more, so the evidence is shown on its own.")
    if d:
        st.caption(f"Your decision so far: **{d['decision']}**.")
    c1, c2, _ = st.columns([1, 1, 4])
    if c1.button("Accept", type="primary", key=f"rv_ok_{it['id']}"):
        save_decision(qa_dir, it["id"], "accept")
        st.rerun()
    if c2.button("Reject", key=f"rv_no_{it['id']}"):
        save_decision(qa_dir, it["id"], "reject")
        st.rerun()
    with st.form(f"rv_edit_{it['id']}"):
        q = st.text_input("Question", value=(d or {}).get("question") or it["question"])
        ans = st.text_input(
            "Answers (separate several with |)",
            value=" | ".join((d or {}).get("answers") or it["answers"]),
            disabled=bool(it.get("unanswerable")),
        )
        if st.form_submit_button("Save the edit"):
            try:
                save_decision(
                    qa_dir,
                    it["id"],
                    "edit",
                    question=q,
                    answers=None if it.get("unanswerable") else [a.strip() for a in ans.split("|") if a.strip()],
                )
            except AdvisorError as e:
                st.error(str(e))
            else:
                st.rerun()

st.divider()
reviewed = qa_dir / "reviewed.jsonl"
st.markdown(
    "**Re-evaluate on the reviewed set** — every arm answers the kept questions again (rejected ones left "
    "out, edits applied) and the report states the reviewed share."
)
if st.button("Re-evaluate now", disabled=not reviewed.is_file() or is_active(run.path), key="rv_eval"):
    try:
        start_run(
            [sys.executable, "-m", "advisor", "eval", str(run.path), "--qa", str(reviewed)],
            run.path,
            {"what": "re-evaluation on the reviewed set"},
        )
    except AdvisorError as e:
        st.error(str(e))
    else:
        st.success("Started in the background; the Overview shows the new advice when it ends.")
if not reviewed.is_file():
    st.caption("Review at least one question first.")
