"""A person's review of a generated evaluation set, and what every report says about the set it measured on.

Decisions (accept / reject / edit) are kept in DIR/review.json; DIR/reviewed.jsonl is rebuilt from them on
every save (atomically; the generated eval.jsonl is never overwritten): every generated item except the
rejected ones, edits applied, each with `reviewed: true|false` and `review: accepted|edited|null`.

    decisions = load_decisions(qa_dir)
    save_decision(qa_dir, "e001", "edit", question="...", answers=["..."])
    info = eval_set_info(Path("runs/x/qa/eval.jsonl"), evaluated_ids)
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from advisor.core.artifacts import atomic_write_json, read_jsonl, write_jsonl
from advisor.core.errors import AdvisorError
from advisor.core.textio import read_json

DECISIONS = ("accept", "reject", "edit")


def load_decisions(qa_dir: Path) -> dict[str, dict]:
    p = Path(qa_dir) / "review.json"
    if not p.is_file():
        return {}
    return read_json(p, "review decisions", "restore it or delete it to start the review again")


def reviewed_items(generated: list[dict], decisions: dict[str, dict]) -> list[dict]:
    """The generated items a person did not reject, edits applied, each marked reviewed or not."""
    out = []
    for it in generated:
        d = decisions.get(it["id"])
        if d and d["decision"] == "reject":
            continue
        row = dict(it)
        row["reviewed"], row["review"] = bool(d), None
        if d:
            row["review"] = "edited" if d["decision"] == "edit" else "accepted"
            if d["decision"] == "edit":
                row["original"] = {"question": it["question"], "answers": it["answers"]}
                row["question"] = d.get("question") or it["question"]
                if not it.get("unanswerable"):
                    row["answers"] = [a for a in d.get("answers") or it["answers"] if a.strip()]
        out.append(row)
    return out


def save_decision(
    qa_dir: Path, item_id: str, decision: str, question: str | None = None, answers: list[str] | None = None
) -> Path:
    """Record one decision and rewrite reviewed.jsonl; returns its path."""
    if decision not in DECISIONS:
        raise AdvisorError(f"review decision '{decision}' must be one of {', '.join(DECISIONS)}")
    qa_dir = Path(qa_dir)
    generated = read_jsonl(qa_dir / "eval.jsonl")
    if item_id not in {it["id"] for it in generated}:
        raise AdvisorError(f"{qa_dir / 'eval.jsonl'} has no item '{item_id}'")
    if decision == "edit" and question is not None and not question.strip():
        raise AdvisorError("an edited question must not be empty")
    decisions = load_decisions(qa_dir)
    decisions[item_id] = {
        "decision": decision,
        **({"question": question.strip()} if question else {}),
        **({"answers": answers} if answers is not None else {}),
    }
    atomic_write_json(qa_dir / "review.json", decisions)
    write_jsonl(qa_dir / "reviewed.jsonl", reviewed_items(generated, decisions))
    return qa_dir / "reviewed.jsonl"


def eval_set_info(qa_path: Path, evaluated_ids: list[str] | None = None) -> dict:
    """What a report says about the questions behind its numbers: generated or not, by what, how many, and how
    much of it a person reviewed (a hand-written set is reviewed by definition)."""
    rows = read_jsonl(Path(qa_path), "QA file")
    if evaluated_ids is not None:
        keep = set(evaluated_ids)
        rows = [r for r in rows if str(r.get("id")) in keep] or rows
    synthetic = [r for r in rows if r.get("synthetic") is True]
    reviewed = sum(1 for r in synthetic if r.get("reviewed") is True)
    gens = Counter(str(r.get("generator", "")) for r in synthetic)
    return {
        "synthetic": bool(synthetic),
        "generator": gens.most_common(1)[0][0] if gens else None,
        "n": len(rows),
        "n_unanswerable": sum(1 for r in rows if r.get("unanswerable") is True),
        "reviewed": (reviewed == len(synthetic)) if synthetic else True,
        "reviewed_share": round(reviewed / len(synthetic), 4) if synthetic else 1.0,
        "edited": sum(1 for r in synthetic if r.get("review") == "edited"),
        "file": str(qa_path),
    }


def plain_words(info: dict | None) -> str | None:
    """One sentence for the verdict and the report; None for a hand-written set."""
    if not info or not info.get("synthetic"):
        return None
    n = info["n"]
    if info["reviewed"]:
        return f"measured on {n} generated questions, all reviewed by a person"
    if info["reviewed_share"] > 0:
        return (
            f"measured on {n} generated questions, {info['reviewed_share']:.0%} of them reviewed by a person "
            "(the rest not reviewed)"
        )
    return f"measured on {n} generated questions, not reviewed by a person"
