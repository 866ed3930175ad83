"""Eval questions worded like a training question vs worded otherwise. When the evaluation questions and the
adapter's training questions come from the same sentences (the evaluation-set generator writes both for a corpus
without questions), many eval questions repeat a training question's wording nearly word for word. A tuned arm
then answers them by recalling trained wording, which users' own questions will not repeat. Each answerable eval
question is `close` when at least CLOSE_OVERLAP of its word 4-grams occur in one training question
(advisor/core/overlap.py, the measure of the tune stage's leakage report), else `new`; every arm's accuracy,
hallucination rate and F1 are also reported per group, so a tuned arm's gain that holds only on `close`
questions shows.

>>> rows = wording_rows([("q1", "When did the Rhine bridge at Basel open to traffic?"), ("q2", "Who built it?")],
...                     ["When did the Rhine bridge at Basel open?", "Which river runs through Basel?"])
>>> [(r["id"], r["group"], r["overlap"]) for r in rows]
[('q1', 'close', 0.7143), ('q2', 'new', 0.0)]
>>> wording_summary(rows, 2)["counts"]
{'close': 1, 'new': 1}
"""

from __future__ import annotations

from advisor.core.overlap import NGRAM, closest, ngrams
from evalsuite.knowledge import by_group

GROUPS = ("close", "new")
CLOSE_OVERLAP = 0.5  # at least half an eval question's word 4-grams in one training question: worded like it
EXAMPLES = 3  # close questions metrics.json and the report show beside their training question
METHOD = (
    f"close = at least {CLOSE_OVERLAP:.0%} of the eval question's word {NGRAM}-grams occur in one question the "
    "adapter was trained on; new = fewer"
)


def wording_rows(questions: list[tuple[str, str]], training_questions: list[str]) -> list[dict]:
    """One row per eval question, given as (id, question): {"id", "question", "group", "overlap",
    "training_question"} (the training question holding the largest share of its word 4-grams, or None when none
    holds any)."""
    grams = [ngrams(t) for t in training_questions]
    out = []
    for qid, question in questions:
        share, j = closest(question, grams)
        out.append(
            {
                "id": qid,
                "question": question,
                "group": "close" if share >= CLOSE_OVERLAP else "new",
                "overlap": round(share, 4),
                "training_question": training_questions[j] if j >= 0 else None,
            }
        )
    return out


def wording_summary(rows: list[dict], n_training_questions: int) -> dict:
    """metrics.json's top-level `wording` block: the rule, how many training questions it compared against, how
    many answerable eval questions each group holds and, as `examples`, the EXAMPLES close questions with the
    largest overlap beside the training question that holds it (what 'worded like' means on this run)."""
    close = sorted((r for r in rows if r["group"] == "close"), key=lambda r: -r["overlap"])[:EXAMPLES]
    return {
        "threshold": CLOSE_OVERLAP,
        "ngram": NGRAM,
        "training_questions": n_training_questions,
        "counts": {g: sum(r["group"] == g for r in rows) for g in GROUPS},
        "method": METHOD,
        "examples": [{k: r[k] for k in ("id", "question", "training_question", "overlap")} for r in close],
    }


def by_wording(arm_rows: list[dict], rows: list[dict], n_boot: int, seed: int) -> dict:
    """metrics.json's arms.<arm>.by_wording: per group, {"n", "accuracy", "hallucination_rate", "f1"} over the
    arm's answers to that group's answerable questions (evalsuite.knowledge.by_group)."""
    return by_group(arm_rows, {r["id"]: r["group"] for r in rows}, GROUPS, n_boot, seed)
