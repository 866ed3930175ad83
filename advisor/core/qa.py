"""QA sets (JSONL): `question`, `answers` (list), optional `id`, `source`, `unanswerable: true`.

    items = load_qa(Path("advisor/sample/qa/eval.jsonl"))
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from advisor.core.errors import AdvisorError


@dataclass
class QAItem:
    id: str
    question: str
    answers: list[str] = field(default_factory=list)
    source: str | None = None  # gold document id (path relative to the corpus root)
    unanswerable: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def load_qa(path: Path, require_answers: bool = True) -> list[QAItem]:
    """Read and validate a QA JSONL file; errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise AdvisorError(f"QA file {path} does not exist; pass --qa with a JSONL file of questions")
    items: list[QAItem] = []
    ids: set[str] = set()
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise AdvisorError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(rec, dict):
                raise AdvisorError(f"{where}: each line must be a JSON object")
            q = rec.get("question")
            if not isinstance(q, str) or not q.strip():
                raise AdvisorError(f"{where}: field 'question' must be a non-empty string")
            answers = rec.get("answers", [])
            if isinstance(answers, str):
                answers = [answers]
            if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
                raise AdvisorError(f"{where}: field 'answers' must be a list of strings")
            unanswerable = bool(rec.get("unanswerable", False))
            if require_answers and not unanswerable and not any(a.strip() for a in answers):
                raise AdvisorError(f"{where}: answerable question has no answers (or mark it \"unanswerable\": true)")
            source = rec.get("source")
            if source is not None and not isinstance(source, str):
                raise AdvisorError(f"{where}: field 'source' must be a string (a document path)")
            qid = str(rec.get("id", f"{path.stem}-{lineno}"))
            if qid in ids:
                raise AdvisorError(f"{where}: duplicate id '{qid}'")
            ids.add(qid)
            items.append(QAItem(qid, q.strip(), [a for a in answers if a.strip()], source, unanswerable))
    if not items:
        raise AdvisorError(f"QA file {path} holds no questions")
    return items


def stratified_limit(items: list[QAItem], limit: int) -> list[QAItem]:
    """At most `limit` items, answerable and unanswerable kept in proportion, spread evenly (deterministic)."""
    if limit <= 0 or limit >= len(items):
        return list(items)
    ans = [it for it in items if not it.unanswerable]
    una = [it for it in items if it.unanswerable]
    n_una = round(limit * len(una) / len(items)) if una else 0
    if una and n_una == 0:
        n_una = 1
    n_ans = limit - n_una

    def spread(xs: list[QAItem], k: int) -> list[QAItem]:
        if k >= len(xs):
            return xs
        return [xs[int(i * len(xs) / k)] for i in range(k)]

    return spread(ans, n_ans) + spread(una, n_una)
