"""Known vs unknown facts, SliCK-style and light (Gekhman et al. 2024, 'Does fine-tuning LLMs on new knowledge
encourage hallucinations?'): the base model answers each answerable eval question closed-book, once greedily and
k times sampled. A question is `known` when the greedy answer is correct, `maybe_known` when only some sample is,
`unknown` when none is. Every arm's accuracy, hallucination rate and F1 are then also reported per group: whether
fine-tuning or retrieval helps on facts the base model already partly knows or on new ones is the hinge between them.

>>> rows = knowledge_rows([("q1", ["Oslo"]), ("q2", ["Paris"]), ("q3", ["Rome"])],
...                       greedy={"q1": "Oslo", "q2": "Lyon", "q3": "Milan"},
...                       samples={"q1": ["Oslo", "Bergen"], "q2": ["Nice", "Paris, France"], "q3": ["Turin", "Pisa"]})
>>> [(r["id"], r["group"], r["samples_correct"]) for r in rows]
[('q1', 'known', 1), ('q2', 'maybe_known', 1), ('q3', 'unknown', 0)]
>>> knowledge_summary(rows, samples=2, temperature=0.7)["counts"]
{'known': 1, 'maybe_known': 1, 'unknown': 1}
"""

from __future__ import annotations

from advisor.core.answer import strip_citations
from evalsuite.metrics import is_correct
from evalsuite.stats import summarize

GROUPS = ("known", "maybe_known", "unknown")
METHOD = "base model, closed book: greedy correct = known; any of k samples correct = maybe_known; else unknown"
# The metrics metrics.json reports per group, for every arm.
GROUP_METRICS = ("accuracy", "hallucination_rate", "f1")


def group_of(greedy_correct: bool, samples_correct: int) -> str:
    """known (greedy correct), maybe_known (greedy wrong, some sample correct) or unknown (none correct)."""
    if greedy_correct:
        return "known"
    return "maybe_known" if samples_correct else "unknown"


def knowledge_rows(
    questions: list[tuple[str, list[str]]], greedy: dict[str, str], samples: dict[str, list[str]]
) -> list[dict]:
    """One eval/knowledge.jsonl row per answerable question, given as (id, gold answers): {"id", "group",
    "greedy", "greedy_correct", "samples", "samples_correct"}. `greedy` and `samples` map the id to the base
    model's closed-book answers; correct = evalsuite.metrics.is_correct on the answer without citation markers."""
    rows = []
    for qid, gold in questions:
        ok = is_correct(strip_citations(greedy[qid]), gold)
        right = sum(is_correct(strip_citations(s), gold) for s in samples[qid])
        rows.append(
            {
                "id": qid,
                "group": group_of(ok, right),
                "greedy": greedy[qid],
                "greedy_correct": ok,
                "samples": samples[qid],
                "samples_correct": right,
            }
        )
    return rows


def rescored_rows(rows: list[dict], questions: list[tuple[str, list[str]]], base_answers: dict[str, str]) -> list[dict]:
    """The rows grouped again from the answers they hold, so a change of `is_correct` reaches them without
    sampling again. The greedy answer is the row's own, or for a row written before rows kept it, the base
    arm's answer (`base_answers`: id -> answer; the known stage takes it from there when it can); a row with
    neither, or whose question is not in `questions`, stays as it is."""
    gold = dict(questions)
    out = []
    for r in rows:
        greedy = r.get("greedy", base_answers.get(r["id"]))
        if greedy is None or r["id"] not in gold:
            out.append(r)
        else:
            out += knowledge_rows([(r["id"], gold[r["id"]])], {r["id"]: greedy}, {r["id"]: r["samples"]})
    return out


def knowledge_summary(rows: list[dict], samples: int, temperature: float) -> dict:
    """metrics.json's top-level `knowledge` block: how the groups were made and how many questions each holds."""
    return {
        "samples": samples,
        "temperature": temperature,
        "counts": {g: sum(r["group"] == g for r in rows) for g in GROUPS},
        "method": METHOD,
    }


def by_knowledge(arm_rows: list[dict], rows: list[dict], n_boot: int, seed: int) -> dict:
    """metrics.json's arms.<arm>.by_knowledge: per group, {"n", "accuracy", "hallucination_rate", "f1"} (each a
    summarize() block with its bootstrap CI) over the arm's answers to that group's questions; a group with no
    question is left out."""
    return by_group(arm_rows, {r["id"]: r["group"] for r in rows}, GROUPS, n_boot, seed)


def by_group(arm_rows: list[dict], group: dict[str, str], groups: tuple[str, ...], n_boot: int, seed: int) -> dict:
    """Per group of `groups` (`group`: question id -> its group), {"n", <each GROUP_METRICS>} over the arm's
    answers to that group's answerable questions; a group with no question is left out."""
    out = {}
    for g in groups:
        mine = [r for r in arm_rows if group.get(r["id"]) == g and not r["unanswerable"]]
        if mine:
            out[g] = {
                "n": len(mine),
                **{
                    m: summarize([r["scores"][m] for r in mine if m in r["scores"]], n_boot, seed)
                    for m in GROUP_METRICS
                },
            }
    return out
