"""QA sets (JSONL): `question`, `answers` (list), optional `id`, `source`, `unanswerable: true`.

items = load_qa(Path("advisor/sample/qa/eval.jsonl"))
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from advisor.core.errors import AdvisorError
from advisor.core.textio import get_bool, get_str, get_str_list, iter_jsonl


@dataclass
class QAItem:
    id: str
    question: str
    answers: list[str] = field(default_factory=list)
    source: str | None = None  # gold document id (path relative to the corpus root)
    unanswerable: bool = False
    line: int = field(default=0, compare=False)  # line in the QA file (for error messages), 0 = made here

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("line")
        return d


def load_qa(path: Path, require_answers: bool = True) -> list[QAItem]:
    """Read and validate a QA JSONL file (decoded like corpus files: BOM, detected encoding); errors name
    the file, line and field. `unanswerable` must be JSON true or false: a quoted "false" is an error,
    never read as true."""
    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise AdvisorError(f"QA file {path} {what}; pass --qa with a JSONL file of questions")
    items: list[QAItem] = []
    ids: set[str] = set()
    for where, rec in iter_jsonl(path, "QA file"):
        q = get_str(rec, "question", where, required=True)
        answers = get_str_list(rec, "answers", where)
        unanswerable = get_bool(rec, "unanswerable", where, default=False)
        if require_answers and not unanswerable and not any(a.strip() for a in answers):
            raise AdvisorError(f'{where}: answerable question has no answers (or mark it "unanswerable": true)')
        source = rec.get("source")
        if source is not None and not isinstance(source, str):
            raise AdvisorError(f"{where}: field 'source' must be a string (a document path)")
        lineno = int(where.rsplit(":", 1)[1])
        qid = rec.get("id", f"{path.stem}-{lineno}")
        if not isinstance(qid, (str, int)) or isinstance(qid, bool):
            raise AdvisorError(f"{where}: field 'id' must be a string or a number")
        qid = str(qid)
        if qid in ids:
            raise AdvisorError(f"{where}: duplicate id '{qid}'")
        ids.add(qid)
        items.append(QAItem(qid, q.strip(), [a for a in answers if a.strip()], source, unanswerable, line=lineno))
    if not items:
        raise AdvisorError(f"QA file {path} holds no questions")
    return items


def require_answerable(items: list[QAItem], path: Path) -> None:
    """An evaluation set needs an answerable question: accuracy is measured on those."""
    if not any(not it.unanswerable for it in items):
        raise AdvisorError(f"QA file {path} has no answerable questions; accuracy cannot be measured")


def check_sources(items: list[QAItem], qa_path: Path, corpus_root: Path, doc_files: list[str]) -> None:
    """Every `source` must name a corpus file (path relative to the corpus root; 'file#record' for a
    JSONL/CSV corpus): a typo would silently score recall@k as a miss. The error names the line and the
    nearest file name."""
    import difflib

    known = set(doc_files)
    for it in items:
        if not it.source or it.source in known or it.source.split("#", 1)[0] in known:
            continue
        close = difflib.get_close_matches(it.source, doc_files, n=1, cutoff=0.0)
        hint = f" (nearest: '{close[0]}')" if close else ""
        raise AdvisorError(
            f"{qa_path}:{it.line}: source '{it.source}' is not a file of the corpus {corpus_root}{hint}; "
            "give the path relative to the corpus root, or drop the field"
        )


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
