"""One reader per format for the files a user hands in (QA sets, YAML configs, batch files, JSON) and for the
JSON and JSONL artifacts of a run directory (advisor.core.artifacts re-exports read_jsonl).

Text is decoded the way corpus files are: a byte-order mark wins, then UTF-8, then charset detection
(a cp1252 config or QA file reads, it does not crash). Every failure is an AdvisorError naming the file
(and the line, and the field for JSONL) and what to do, so the CLI prints one line and exits 2.

    text = read_text(Path("my.yaml"), "config file")
    for where, rec in iter_jsonl(Path("qa.jsonl"), "QA file"):
        flag = get_bool(rec, "unanswerable", where, default=False)
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from advisor.core.errors import AdvisorError

HEAD_BYTES = 64 * 1024  # bytes sniffed for binary content and encoding


def detect_encoding(head: bytes) -> str | None:
    """The encoding of a file from its first bytes; None for binary content."""
    for bom, enc in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if head.startswith(bom):
            return enc
    if b"\x00" in head:
        return None
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)  # a cut multi-byte tail is fine
        return "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    results = list(from_bytes(head))
    if not results:
        return None
    # Ties are common on short samples (cp1250 vs cp1252 read 'û' as 'ű'): prefer Windows-1252, the usual
    # legacy encoding of Western European text, when the detector rates it as good as its first choice.
    tied = [r.encoding for r in results if (r.chaos, r.coherence) == (results[0].chaos, results[0].coherence)]
    return "cp1252" if "cp1252" in tied else results[0].encoding


def read_bytes(path: Path, what: str) -> bytes:
    """The bytes of a user's file; a missing path, a folder, a link loop or no permission is one line."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise AdvisorError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise AdvisorError(f"{what} {path} is a folder; pass a file") from None
    except OSError as e:
        raise AdvisorError(f"cannot read {what} {path}: {e.strerror or e}") from None


def read_text(path: Path, what: str) -> str:
    """The decoded text of a user's file (BOM, UTF-8, else detected; binary content is an error)."""
    data = read_bytes(path, what)
    enc = detect_encoding(data[:HEAD_BYTES])
    if enc is None:
        raise AdvisorError(f"{what} {path} is binary, not text; pass a UTF-8 (or other text) file")
    try:
        return data.decode(enc)
    except UnicodeDecodeError:
        # The head decoded but a later byte does not: judge the whole file instead of the first 64 KiB.
        enc = detect_encoding(data)
        try:
            return data.decode(enc or "utf-8")
        except (UnicodeDecodeError, LookupError):
            raise AdvisorError(f"{what} {path} is not readable text in any known encoding; save it as UTF-8") from None


def iter_jsonl(path: Path, what: str, fix: str = "fix or remove the line") -> Iterator[tuple[str, dict]]:
    """('file:line', record) for each non-blank line; a line that is not a JSON object is an error naming the
    file and line, ending with `fix` (what to do)."""
    # Lines end at "\n" only: str.splitlines() would also cut at U+2028 or U+0085, which JSON written with
    # ensure_ascii=False keeps raw inside strings.
    for lineno, line in enumerate(read_text(path, what).split("\n"), 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise AdvisorError(f"{where}: not valid JSON ({e.msg} at column {e.colno}); {fix}") from None
        if not isinstance(rec, dict):
            raise AdvisorError(f"{where}: each line must be a JSON object, got {type(rec).__name__}; {fix}")
        yield where, rec


def read_jsonl(path: Path, what: str = "JSONL file", fix: str = "fix or remove the line") -> list[dict]:
    """Every record of a JSONL file (see iter_jsonl: a bad line is an error naming file:line and `fix`)."""
    return [rec for _, rec in iter_jsonl(path, what, fix)]


def read_json(path: Path, what: str, fix: str = "fix or delete it") -> Any:
    """A JSON document; a missing or broken one is an error naming `what`, the file (and line) and `fix`."""
    path = Path(path)
    if not path.exists():
        raise AdvisorError(f"{what} {path} is missing; {fix}")
    try:
        return json.loads(read_text(path, what))
    except json.JSONDecodeError as e:
        raise AdvisorError(f"{what} {path} is not valid JSON (line {e.lineno}: {e.msg}); {fix}") from None


def get_bool(rec: dict, key: str, where: str, default: bool = False) -> bool:
    """A boolean field: JSON true or false only. The string "false" would be truthy in Python, so
    strings, numbers and null are rejected rather than guessed at."""
    if key not in rec:
        return default
    v = rec[key]
    if isinstance(v, bool):
        return v
    quoted = isinstance(v, str) and v.strip().lower() in ("true", "false")
    hint = f" (write {v.strip().lower()} without quotes)" if quoted else ""
    raise AdvisorError(f"{where}: field '{key}' must be true or false, got {json.dumps(v)}{hint}")


def get_str(rec: dict, key: str, where: str, required: bool = False) -> str | None:
    """A string field (None when absent and not required)."""
    v = rec.get(key)
    if v is None and not required:
        return None
    if not isinstance(v, str) or (required and not v.strip()):
        raise AdvisorError(
            f"{where}: field '{key}' must be a non-empty string"
            if required
            else f"{where}: field '{key}' must be a string, got {json.dumps(v)}"
        )
    return v


def get_str_list(rec: dict, key: str, where: str) -> list[str]:
    """A list of strings; a lone string counts as a list of one."""
    v = rec.get(key, [])
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(a, str) for a in v):
        raise AdvisorError(f"{where}: field '{key}' must be a list of strings, got {json.dumps(v)[:60]}")
    return v
