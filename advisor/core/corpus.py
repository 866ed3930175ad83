"""Corpus reading and token-based chunking with overlap.

Reads a folder or a file: .txt/.md/.markdown/.rst, .html/.htm (text only; scripts and styles dropped,
BeautifulSoup), .pdf (pypdf), .jsonl and .csv (one document per record, text in a configurable field).
Encodings are detected (UTF-8, else charset-normalizer). Binary, empty, corrupt and unreadable files,
symlink loops and links that lead outside the corpus root are skipped with a warning and listed in the
ingestion report (read / skipped / why). Plain-text files are streamed in segments of at most
SEGMENT_CHARS characters, so a 100 MB file is chunked in bounded memory.

A chunk id is a hash of its source and text (docs/architecture.md), so re-chunking an unchanged document
gives the same ids and later stages can embed only what changed.

    docs, report = read_corpus(Path("advisor/sample/corpus"))
    chunks = chunk_documents(docs, whitespace_offsets, size=200, overlap=40)
    report = ingest_corpus(Path("docs/"), Path("out/"), whitespace_offsets, 200, 40)   # streams to out/chunks.jsonl
"""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import logging
import os
import re
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from advisor.core.artifacts import atomic_write_json, sha256_bytes
from advisor.core.errors import AdvisorError
from advisor.core.textio import HEAD_BYTES
from advisor.core.textio import detect_encoding as _detect_encoding  # one decoder for corpus and user files

log = logging.getLogger(__name__)

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst"}
HTML_SUFFIXES = {".html", ".htm"}
PDF_SUFFIXES = {".pdf"}
JSONL_SUFFIXES = {".jsonl"}
CSV_SUFFIXES = {".csv"}
SUPPORTED = TEXT_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES | JSONL_SUFFIXES | CSV_SUFFIXES
# The formats as help texts list them: '.csv, .htm, .html, .jsonl, .markdown, .md, .pdf, .rst, .txt'.
SUPPORTED_LIST = ", ".join(sorted(SUPPORTED))

SEGMENT_CHARS = 1_000_000  # plain text is read and chunked in segments of at most this many characters

# A function from text to the (start, end) character offsets of its tokens.
OffsetsFn = Callable[[str], list[tuple[int, int]]]


@dataclass
class Document:
    doc_id: str  # path relative to the corpus root (plus '#n' for the n-th record of a JSONL/CSV file)
    text: str
    offset: int = 0  # character offset of `text` in the source (non-zero for later segments of a streamed file)


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
    read: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why)

    quiet: bool = False  # collect without logging warnings

    def skip(self, rel: str, why: str) -> None:
        if not self.quiet:
            log.warning("skipped %s: %s", rel, why)
        self.skipped.append((rel, why))


# ---------------------------------------------------------------- walking the corpus safely


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def corpus_files(root: Path) -> list[tuple[Path, str]]:
    """(path, relative path) of the files ingestion would look at (for hashing the corpus)."""
    return list(_iter_files(Path(root), CorpusReport(quiet=True)))


def _iter_files(root: Path, report: CorpusReport) -> Iterator[tuple[Path, str]]:
    """(path, path relative to the corpus root) of every non-hidden file in name order, depth first.
    Symlinks are followed only while they stay inside the root; loops and escapes are reported."""
    if root.is_file():
        yield root, root.name
        return
    root_real = os.path.realpath(root)
    visited = {root_real: "."}

    def walk(folder: str, prefix: str) -> Iterator[tuple[Path, str]]:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as e:
            report.skip(prefix or ".", f"unreadable folder: {e.strerror}")
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            rel = prefix + entry.name
            real = os.path.realpath(entry.path)
            if entry.is_symlink():
                try:
                    os.stat(entry.path)
                except OSError as e:
                    report.skip(rel, "symlink loop" if e.errno == errno.ELOOP else "broken symlink")
                    continue
                if not _within(real, root_real):
                    report.skip(rel, f"symlink leads outside the corpus root (to {real}); copy the file in instead")
                    continue
            try:
                is_dir, is_file = entry.is_dir(), entry.is_file()
            except OSError as e:
                report.skip(rel, f"unreadable: {e.strerror}")
                continue
            if not (is_dir or is_file):  # a FIFO or device would block or never end
                report.skip(rel, "not a regular file")
                continue
            if is_dir:
                if real in visited:
                    report.skip(rel, f"symlink loop (folder already read as '{visited[real]}')")
                    continue
                visited[real] = rel
                yield from walk(entry.path, rel + "/")
            else:
                yield Path(entry.path), rel

    yield from walk(str(root), "")


# ---------------------------------------------------------------- decoding and parsing


def _read_head(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(HEAD_BYTES)


def _text_segments(path: Path, encoding: str) -> Iterator[tuple[int, str]]:
    """(character offset, text) segments of at most SEGMENT_CHARS, cut after a paragraph or line end
    when there is one in the second half, so memory stays bounded for any file size."""
    offset = 0
    carry = ""
    with open(path, encoding=encoding, errors="replace", newline="") as f:
        while True:
            block = f.read(SEGMENT_CHARS - len(carry))
            buf = carry + block
            if not block:
                if buf:
                    yield offset, buf
                return
            if len(buf) < SEGMENT_CHARS:
                carry = buf
                continue
            cut = buf.rfind("\n\n", SEGMENT_CHARS // 2)
            cut = cut + 2 if cut >= 0 else buf.rfind("\n", SEGMENT_CHARS // 2) + 1 or len(buf)
            yield offset, buf[:cut]
            offset += cut
            carry = buf[cut:]


def html_to_text(html: str) -> str:
    """Visible text of an HTML page: scripts, styles and other non-content elements dropped."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "svg", "head"]):
        tag.decompose()
    lines = (" ".join(line.split()) for line in soup.get_text("\n").splitlines())
    return "\n".join(line for line in lines if line)


def pdf_to_text(path: Path) -> str:
    """Text of every page of a PDF (pypdf), pages separated by a blank line. Raises ValueError with the
    reason when the file cannot be read."""
    import pypdf

    try:
        reader = pypdf.PdfReader(str(path), strict=False)
        if reader.is_encrypted:
            raise ValueError("encrypted PDF; decrypt it first")
        return "\n\n".join((page.extract_text() or "").strip() for page in reader.pages).strip()
    except ValueError:
        raise
    except Exception as e:  # noqa: BLE001  a damaged file can fail anywhere inside the parser; skip it, never crash
        raise ValueError(f"corrupt or unreadable PDF ({type(e).__name__}: {str(e)[:80]})") from None


def _records(path: Path, suffix: str, encoding: str, text_field: str) -> Iterator[tuple[str, str]]:
    """(record id, text) of each JSONL line or CSV row; a record without the text field is an error."""
    with open(path, encoding=encoding, errors="replace", newline="") as f:
        if suffix in JSONL_SUFFIXES:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    raise AdvisorError(f"{path}:{lineno}: not valid JSON ({e.msg}); fix or remove the line") from None
                if not isinstance(rec, dict) or not isinstance(rec.get(text_field), str):
                    raise AdvisorError(
                        f"{path}:{lineno}: record has no string field '{text_field}' (set corpus.text_field)"
                    )
                yield str(rec.get("id", lineno)), rec[text_field]
            return
        csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
        reader = csv.DictReader(f)
        if reader.fieldnames is None or text_field not in reader.fieldnames:
            cols = ", ".join(reader.fieldnames or [])
            raise AdvisorError(f"{path}:1: no column '{text_field}' (columns: {cols or 'none'}); set corpus.text_field")
        for row in reader:
            yield str(row.get("id") or reader.line_num), row[text_field] or ""


# ---------------------------------------------------------------- reading


def iter_documents(root: Path, text_field: str = "text", report: CorpusReport | None = None) -> Iterator[Document]:
    """Documents of every readable file under `root`, streamed; what is skipped goes to `report`."""
    root = Path(root)
    if not root.exists():
        raise AdvisorError(f"corpus path {root} does not exist; pass --corpus with a folder or file of documents")
    report = report if report is not None else CorpusReport()
    for path, rel in _iter_files(root, report):
        suffix = path.suffix.lower()
        if suffix not in SUPPORTED:
            report.skip(rel, f"unsupported file type '{suffix or 'none'}'")
            continue
        try:
            if path.stat().st_size == 0:
                report.skip(rel, "empty file")
                continue
            if suffix in PDF_SUFFIXES:
                try:
                    text = pdf_to_text(path)
                except ValueError as e:
                    report.skip(rel, str(e))
                    continue
                if not text:
                    report.skip(rel, "no extractable text (a scanned PDF? run OCR first)")
                    continue
                report.read.append(rel)
                yield Document(rel, text)
                continue
            encoding = _detect_encoding(_read_head(path))
            if encoding is None:
                report.skip(rel, "binary content")
                continue
            if suffix in HTML_SUFFIXES:
                text = html_to_text(path.read_text(encoding=encoding, errors="replace"))
                if not text:
                    report.skip(rel, "no visible text")
                    continue
                report.read.append(rel)
                yield Document(rel, text)
            elif suffix in TEXT_SUFFIXES:
                n = 0
                for offset, text in _text_segments(path, encoding):
                    if text.strip():
                        n += 1
                        yield Document(rel, text, offset)
                if n:
                    report.read.append(rel)
                else:
                    report.skip(rel, "empty file")
            else:
                n = 0
                for rid, text in _records(path, suffix, encoding, text_field):
                    if text.strip():
                        n += 1
                        yield Document(f"{rel}#{rid}", text)
                if n:
                    report.read.append(rel)
                else:
                    report.skip(rel, "no non-empty records")
        except OSError as e:
            report.skip(rel, f"unreadable: {e.strerror or e}")


def _nothing_readable(root: Path, report: CorpusReport) -> AdvisorError:
    what = f"{len(report.skipped)} file(s) skipped" if report.skipped else "no files"
    first = "; ".join(f"{p}: {w}" for p, w in report.skipped[:3])
    return AdvisorError(
        f"corpus {root} has no readable documents ({what}{': ' + first if first else ''}); "
        f"supported: {', '.join(sorted(SUPPORTED))}"
    )


def _first_line(path: Path, encoding: str, limit: int = 8 << 20) -> str | None:
    """The first non-blank line (at most `limit` characters; None when it is longer)."""
    with open(path, encoding=encoding, errors="replace", newline="") as f:
        while True:
            line = f.readline(limit)
            if not line:
                return ""
            if len(line) >= limit and not line.endswith("\n"):
                return None
            if line.strip():
                return line


def _looks_readable(path: Path, suffix: str, text_field: str) -> str | None:
    """Why a file cannot be read (from its first bytes only), or None when it looks readable."""
    if suffix not in SUPPORTED:
        return f"unsupported file type '{suffix or 'none'}'"
    if path.stat().st_size == 0:
        return "empty file"
    if suffix in PDF_SUFFIXES:
        return None  # parsing is the only test; ingestion skips a corrupt PDF and says why
    head = _read_head(path)
    encoding = _detect_encoding(head)
    if encoding is None:
        return "binary content"
    if suffix in JSONL_SUFFIXES | CSV_SUFFIXES:
        first = _first_line(path, encoding)
        if first is None:
            return None  # a first record too long to sniff: ingestion checks it
        if not first.strip():
            return "no non-empty records"
        if suffix in JSONL_SUFFIXES:
            try:
                rec = json.loads(first)
            except json.JSONDecodeError as e:
                raise AdvisorError(f"{path}:1: not valid JSON ({e.msg}); fix or remove the line") from None
            if not isinstance(rec, dict) or not isinstance(rec.get(text_field), str):
                raise AdvisorError(f"{path}:1: record has no string field '{text_field}' (set corpus.text_field)")
        else:
            columns = next(csv.reader([first.rstrip("\r\n")]), [])
            if text_field not in columns:
                raise AdvisorError(
                    f"{path}:1: no column '{text_field}' (columns: {', '.join(columns)[:80]}); set corpus.text_field"
                )
    return None


def check_corpus(root: Path, text_field: str = "text") -> list[str]:
    """Preflight of a corpus, before anything is written: it exists and at least one file looks readable
    (supported type, not empty, not binary; a JSONL/CSV file's first record has the text field). Reads
    only file heads. Returns the relative paths of its files (QA sources are checked against them)."""
    root = Path(root)
    if not root.exists():
        raise AdvisorError(f"corpus path {root} does not exist; pass --corpus with a folder or file of documents")
    report = CorpusReport(quiet=True)
    files = list(_iter_files(root, report))
    readable = False
    for path, rel in files:
        try:
            why = _looks_readable(path, path.suffix.lower(), text_field)
        except OSError as e:
            why = f"unreadable: {e.strerror or e}"
        if why is None:
            readable = True
        else:
            report.skip(rel, why)
    if not files and not report.skipped:
        raise AdvisorError(f"corpus folder {root} is empty; put .md, .txt, .html, .pdf, .jsonl or .csv documents in it")
    if not readable:
        raise _nothing_readable(root, report)
    return [rel for _, rel in files]


def read_corpus(root: Path, text_field: str = "text") -> tuple[list[Document], CorpusReport]:
    """Read every supported file under `root` into memory; what is skipped is reported.
    Raises AdvisorError when nothing is readable. (ingest_corpus streams instead.)"""
    report = CorpusReport()
    docs = list(iter_documents(root, text_field, report))
    if not docs:
        raise _nothing_readable(root, report)
    return docs, report


# ---------------------------------------------------------------- chunking


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


def iter_chunks(docs: Iterable[Document], offsets_fn: OffsetsFn, size: int, overlap: int) -> Iterator[Chunk]:
    """Chunks of each document in order; offsets are in the source text (segment offset added)."""
    seen: set[str] = set()
    for doc in docs:
        for start, end in chunk_text(doc.text, offsets_fn(doc.text), size, overlap):
            text = doc.text[start:end]
            cid = sha256_bytes(f"{doc.doc_id}\n{text}".encode())[:16]
            if cid in seen:  # identical text twice in one document: keep the first
                continue
            seen.add(cid)
            yield Chunk(cid, doc.doc_id, text, doc.offset + start, doc.offset + end)


def chunk_documents(docs: Iterable[Document], offsets_fn: OffsetsFn, size: int, overlap: int) -> list[Chunk]:
    return list(iter_chunks(docs, offsets_fn, size, overlap))


def ingest_corpus(
    root: Path,
    out_dir: Path,
    offsets_fn: OffsetsFn,
    size: int,
    overlap: int,
    text_field: str = "text",
    tokenizer: str = "",
    progress: bool = False,
) -> dict:
    """Read, chunk and write out_dir/chunks.jsonl and out_dir/ingest_report.json, streaming (bounded
    memory for any corpus size). Raises AdvisorError when nothing is readable; then, as on any error,
    the chunks and report already in out_dir are left as they were. Returns the report."""
    root, out_dir = Path(root), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = CorpusReport()
    n_docs = n_chunks = 0
    sources: set[str] = set()
    fd, tmp = tempfile.mkstemp(prefix=".chunks.jsonl.", suffix=".tmp", dir=out_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            docs = iter_documents(root, text_field, report)
            for chunk in tqdm(
                iter_chunks(docs, offsets_fn, size, overlap),
                desc="ingest",
                unit=" chunks",
                disable=not progress,
                mininterval=1.0,
            ):
                f.write(json.dumps(chunk.to_dict(), ensure_ascii=False) + "\n")
                n_chunks += 1
                if chunk.source not in sources:
                    sources.add(chunk.source)
                    n_docs += 1
            f.flush()
            os.fsync(f.fileno())
        if not n_chunks:
            raise _nothing_readable(root, report)
        os.replace(tmp, out_dir / "chunks.jsonl")
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    result = {
        "read": report.read,
        "skipped": [{"path": p, "why": w} for p, w in report.skipped],
        "n_documents": n_docs,
        "n_chunks": n_chunks,
        "chunking": {"size": size, "overlap": overlap, "tokenizer": tokenizer},
    }
    atomic_write_json(out_dir / "ingest_report.json", result)
    return result


def ingest_configured(root: Path, out_dir: Path, cfg, progress: bool = False) -> dict:
    """ingest_corpus with a run's settings (`cfg`: an advisor.core.config.Config): chunked by the retrieval
    embedder's tokens at chunking.size/overlap, records' text in corpus.text_field."""
    from advisor.core.embedders import chunk_offsets_fn  # embedders imports this module

    r = cfg.retrieval
    return ingest_corpus(
        root,
        out_dir,
        chunk_offsets_fn(r.embedder),
        cfg.chunking.size,
        cfg.chunking.overlap,
        cfg.corpus.text_field,
        r.embedder,
        progress=progress,
    )


def documents_from_chunks(chunks: list[dict]) -> dict[str, str]:
    """Rebuild each document's text from its overlapping chunks (by character offsets)."""
    by_src: dict[str, list[dict]] = defaultdict(list)
    for c in chunks:
        by_src[c["source"]].append(c)
    docs = {}
    for src, cs in by_src.items():
        cs.sort(key=lambda c: c["start"])
        parts, end = [], None
        for c in cs:
            if end is None or c["start"] >= end:
                parts.append(("\n" if parts else "") + c["text"])
            elif c["end"] > end:
                parts.append(c["text"][end - c["start"] :])
            end = max(end or 0, c["end"])
        docs[src] = "".join(parts)
    return docs
