"""Corpus reading and token-based chunking with overlap.

A chunk id is a hash of its source and text (STYLE.md 5), so re-chunking an unchanged document
gives the same ids and later stages can embed only what changed.

    docs = read_corpus(Path("advisor/sample/corpus"))
    chunks = chunk_documents(docs, whitespace_offsets, size=200, overlap=40)
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from advisor.core.artifacts import sha256_bytes
from advisor.core.errors import AdvisorError

log = logging.getLogger(__name__)

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst"}
JSONL_SUFFIXES = {".jsonl"}
SUPPORTED = TEXT_SUFFIXES | JSONL_SUFFIXES

# A function from text to the (start, end) character offsets of its tokens.
OffsetsFn = Callable[[str], list[tuple[int, int]]]


@dataclass
class Document:
    doc_id: str  # path relative to the corpus root (plus '#n' for the n-th record of a JSONL file)
    text: str


@dataclass
class Chunk:
    id: str  # sha256(source + text)[:16]
    source: str  # document id
    text: str
    start: int  # character offsets of the chunk in the document text
    end: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class CorpusReport:
    read: list[str]
    skipped: list[tuple[str, str]]  # (path, why)


def _iter_files(root: Path) -> Iterable[Path]:
    if root.is_file():
        yield root
        return
    for p in sorted(root.rglob("*")):
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts):
            yield p


def read_corpus(root: Path, text_field: str = "text") -> tuple[list[Document], CorpusReport]:
    """Read every supported file under `root`; unsupported or unreadable files are skipped and reported."""
    root = Path(root)
    if not root.exists():
        raise AdvisorError(f"corpus path {root} does not exist; pass --corpus with a folder or file of documents")
    docs: list[Document] = []
    report = CorpusReport(read=[], skipped=[])
    base = root if root.is_dir() else root.parent
    for path in _iter_files(root):
        rel = path.relative_to(base).as_posix()
        suffix = path.suffix.lower()
        if suffix not in SUPPORTED:
            report.skipped.append((rel, f"unsupported file type '{suffix or 'none'}'"))
            continue
        try:
            raw = path.read_bytes()
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
        except OSError as e:
            report.skipped.append((rel, f"unreadable: {e.strerror}"))
            continue
        if "\x00" in text:
            report.skipped.append((rel, "binary content"))
            continue
        if suffix in JSONL_SUFFIXES:
            n_before = len(docs)
            for lineno, line in enumerate(text.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    raise AdvisorError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
                if not isinstance(rec, dict) or not isinstance(rec.get(text_field), str):
                    raise AdvisorError(
                        f"{path}:{lineno}: record has no string field '{text_field}' (set corpus.text_field)"
                    )
                if rec[text_field].strip():
                    docs.append(Document(f"{rel}#{rec.get('id', lineno)}", rec[text_field]))
            if len(docs) > n_before:
                report.read.append(rel)
            else:
                report.skipped.append((rel, "no non-empty records"))
            continue
        if not text.strip():
            report.skipped.append((rel, "empty file"))
            continue
        docs.append(Document(rel, text))
        report.read.append(rel)
    for rel, why in report.skipped:
        log.warning("skipped %s: %s", rel, why)
    if not docs:
        what = f"{len(report.skipped)} file(s) skipped" if report.skipped else "no files"
        raise AdvisorError(
            f"corpus {root} has no readable documents ({what}); supported: {', '.join(sorted(SUPPORTED))}"
        )
    return docs, report


def whitespace_offsets(text: str) -> list[tuple[int, int]]:
    """Offsets of whitespace-separated words: the tokenizer of the hashing test embedder."""
    return [m.span() for m in re.finditer(r"\S+", text)]


def _is_boundary(text: str, prev_end: int, next_start: int) -> bool:
    """A sentence or paragraph ends between two tokens."""
    gap = text[prev_end:next_start]
    return "\n" in gap or (prev_end > 0 and text[prev_end - 1] in ".!?:;" and gap != "")


def chunk_text(text: str, offsets: list[tuple[int, int]], size: int, overlap: int) -> list[tuple[int, int]]:
    """Token windows of at most `size` tokens, consecutive windows sharing about `overlap` tokens.

    A window ends at the last sentence or paragraph boundary in its second half, when there is
    one, so chunks rarely cut a sentence. Returns character spans.

    >>> t = "One two. Three four. Five six."
    >>> [t[a:b] for a, b in chunk_text(t, whitespace_offsets(t), size=4, overlap=1)]
    ['One two. Three four.', 'four. Five six.']
    """
    n = len(offsets)
    spans: list[tuple[int, int]] = []
    i = 0
    while i < n:
        j = min(i + size, n)
        if j < n:
            for k in range(j, i + size // 2, -1):
                if _is_boundary(text, offsets[k - 1][1], offsets[k][0]):
                    j = k
                    break
        spans.append((offsets[i][0], offsets[j - 1][1]))
        if j >= n:
            break
        i = max(j - overlap, i + 1)
    return spans


def chunk_documents(docs: Iterable[Document], offsets_fn: OffsetsFn, size: int, overlap: int) -> list[Chunk]:
    chunks: list[Chunk] = []
    seen: set[str] = set()
    for doc in docs:
        for start, end in chunk_text(doc.text, offsets_fn(doc.text), size, overlap):
            text = doc.text[start:end]
            cid = sha256_bytes(f"{doc.doc_id}\n{text}".encode())[:16]
            if cid in seen:  # identical text twice in one document: keep the first
                continue
            seen.add(cid)
            chunks.append(Chunk(cid, doc.doc_id, text, start, end))
    return chunks
