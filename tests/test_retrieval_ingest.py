"""Ingestion of real-world folders: every file type, and every kind of bad input, with fixtures made here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from advisor.core import corpus as corpus_mod
from advisor.core.config import RetrievalConfig
from advisor.core.corpus import ingest_corpus, read_corpus, whitespace_offsets
from advisor.core.errors import AdvisorError
from retrieval.index import Retriever, build_index


def make_pdf(text: str) -> bytes:
    """A one-page PDF showing `text` in Helvetica (a fixture; parsing is pypdf's job)."""
    stream = f"BT /F1 12 Tf 72 712 Td ({text}) Tj ET".encode()
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1) + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def test_every_file_type_is_read(tmp_path):
    (tmp_path / "a.md").write_text("# Bicycles\nThe ferry carries twelve bicycles.")
    (tmp_path / "b.txt").write_text("Dogs travel free on a lead.")
    (tmp_path / "c.html").write_text(
        "<html><head><title>T</title><style>body{color:red}</style><script>var secret = 1;</script></head>"
        "<body><h1>Timetable</h1><p>The first ferry leaves at <b>06:40</b>.</p><noscript>enable js</noscript></body></html>"
    )
    (tmp_path / "d.pdf").write_bytes(make_pdf("The cafe sells hot soup."))
    (tmp_path / "e.jsonl").write_text(
        json.dumps({"id": "x1", "body": "Captain Ada Brune."}) + "\n\n" + json.dumps({"body": "Second record."}) + "\n"
    )
    (tmp_path / "f.csv").write_text('id,body\nr1,"Fares rose, by 5%, in 2024."\nr2,Tickets are sold on board.\n')
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "g.rst").write_text("Lifejackets are under the seats.")
    docs, report = read_corpus(tmp_path, text_field="body")
    by_id = {d.doc_id: d.text for d in docs}
    assert sorted(by_id) == [
        "a.md",
        "b.txt",
        "c.html",
        "d.pdf",
        "e.jsonl#3",
        "e.jsonl#x1",
        "f.csv#r1",
        "f.csv#r2",
        "sub/g.rst",
    ]
    html = by_id["c.html"]
    assert "Timetable" in html and "06:40" in html and "secret" not in html and "color" not in html
    assert "enable js" not in html
    assert by_id["d.pdf"] == "The cafe sells hot soup."
    assert by_id["f.csv#r1"] == "Fares rose, by 5%, in 2024."
    assert report.skipped == [] and len(report.read) == 7


def test_non_utf8_text_is_decoded_by_detection(tmp_path):
    text = "Le café coûte trois euros. Der Fahrschein für Kinder ist günstiger, sagt die Fähre. " * 4
    (tmp_path / "latin1.txt").write_bytes(text.encode("cp1252"))
    (tmp_path / "utf16.txt").write_bytes(text.encode("utf-16"))
    docs, report = read_corpus(tmp_path)
    assert [d.text for d in docs] == [text, text]
    assert report.skipped == []


def test_bad_files_are_skipped_with_reasons(tmp_path):
    (tmp_path / "good.md").write_text("Real text about ferries.")
    (tmp_path / "corrupt.pdf").write_bytes(make_pdf("never read")[:150])
    (tmp_path / "garbage.pdf").write_bytes(b"not a pdf at all" * 10)
    (tmp_path / "binary.txt").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blank.md").write_text("  \n\n ")
    (tmp_path / "scripts-only.html").write_text("<script>alert(1)</script><style>p{}</style>")
    docs, report = read_corpus(tmp_path)
    assert [d.doc_id for d in docs] == ["good.md"]
    why = dict(report.skipped)
    assert set(why) == {
        "corrupt.pdf",
        "garbage.pdf",
        "binary.txt",
        "image.png",
        "empty.txt",
        "blank.md",
        "scripts-only.html",
    }
    assert why["corrupt.pdf"].startswith("corrupt or unreadable PDF") and why["garbage.pdf"].startswith("corrupt")
    assert why["binary.txt"] == "binary content" and "unsupported file type '.png'" in why["image.png"]
    assert why["empty.txt"] == why["blank.md"] == "empty file" and why["scripts-only.html"] == "no visible text"
    assert report.read == ["good.md"]


def test_symlink_loops_and_escapes_are_not_followed(tmp_path):
    root = tmp_path / "corpus"
    (root / "a").mkdir(parents=True)
    (root / "a" / "doc.md").write_text("Inside the corpus.")
    (root / "a" / "up").symlink_to("..")  # a folder loop
    (root / "self").symlink_to("self")  # a link to itself (ELOOP)
    (tmp_path / "secret.txt").write_text("Outside the corpus root.")
    (root / "escape.txt").symlink_to(tmp_path / "secret.txt")
    (root / "escape-dir").symlink_to(tmp_path)
    (root / "inside-link.md").symlink_to(root / "a" / "doc.md")  # stays inside: followed
    os.mkfifo(root / "pipe.txt")  # reading it would block forever
    docs, report = read_corpus(root)
    assert sorted(d.doc_id for d in docs) == ["a/doc.md", "inside-link.md"]
    assert all("Outside" not in d.text for d in docs)
    why = dict(report.skipped)
    assert why["self"] == "symlink loop" and why["a/up"].startswith("symlink loop")
    assert "outside the corpus root" in why["escape.txt"] and "outside the corpus root" in why["escape-dir"]
    assert why["pipe.txt"] == "not a regular file"


def test_nothing_readable_exits_2_and_keeps_what_was_built(tmp_path):
    good, bad, out = tmp_path / "good", tmp_path / "bad", tmp_path / "out"
    good.mkdir()
    bad.mkdir()
    (good / "a.md").write_text("The ferry carries twelve bicycles. Dogs travel free.")
    ingest_corpus(good, out, whitespace_offsets, 32, 4)
    build_index(out / "chunks.jsonl", out / "index", RetrievalConfig(embedder="hashing", hybrid=False), progress=False)
    before = {
        p.name: p.read_bytes()
        for p in [
            out / "chunks.jsonl",
            out / "ingest_report.json",
            out / "index" / "index.faiss",
            out / "index" / "meta.jsonl",
        ]
    }
    (bad / "x.bin").write_bytes(b"\x00\x01")
    (bad / "y.txt").write_bytes(b"")
    with pytest.raises(AdvisorError, match=r"has no readable documents \(2 file\(s\) skipped: x.bin: unsupported") as e:
        ingest_corpus(bad, out, whitespace_offsets, 32, 4)
    assert e.value.exit_code == 2
    after = {
        p.name: p.read_bytes()
        for p in [
            out / "chunks.jsonl",
            out / "ingest_report.json",
            out / "index" / "index.faiss",
            out / "index" / "meta.jsonl",
        ]
    }
    assert after == before and not list(out.glob(".chunks*"))  # no temp file left behind
    assert Retriever(out).search(["bicycles"], 1)[0][0].source == "a.md"
    # the CLI says the same in one line and exits 2
    r = subprocess.run(
        [sys.executable, "-m", "advisor", "index", str(bad), "--out", str(out), "--embedder", "hashing"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path.cwd())},
    )
    last = r.stderr.strip().splitlines()[-1]  # after one warning line per skipped file
    assert r.returncode == 2 and last.startswith("advisor: error: corpus") and "no readable documents" in last


def test_large_text_is_streamed_in_segments_with_file_offsets(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus_mod, "SEGMENT_CHARS", 1000)
    paras = [f"Paragraph {i} says the ferry number {i} leaves at dawn." for i in range(200)]
    text = "\n\n".join(paras)
    (tmp_path / "big.txt").write_text(text)
    out = tmp_path / "out"
    rep = ingest_corpus(tmp_path, out, whitespace_offsets, 24, 4)
    rows = [json.loads(line) for line in (out / "chunks.jsonl").read_text().splitlines()]
    assert rep["read"] == ["big.txt"] and rep["n_documents"] == 1 and rep["n_chunks"] == len(rows) > 10
    assert all(text[r["start"] : r["end"]] == r["text"] for r in rows)  # offsets point into the whole file
    assert max(r["end"] for r in rows) == len(text)
    assert all(p in " ".join(r["text"] for r in rows) for p in paras[::37])


@pytest.mark.slow
def test_a_100_mb_text_file_is_ingested_in_bounded_memory(tmp_path):
    """Peak memory of a process ingesting a 100 MB file stays far below what holding it would cost."""
    big = tmp_path / "corpus" / "big.txt"
    big.parent.mkdir()
    para = (
        "Crossing {i} leaves the north pier at dawn and returns before noon; bicycles ride free on "
        "weekdays and dogs travel on a lead. "
    ) * 3 + "\n\n"  # numbered: identical chunks would be deduplicated
    with open(big, "w") as f:
        i = 0
        while f.tell() < 100 * 2**20:
            f.writelines(para.format(i=i + j) for j in range(1000))
            i += 1000
    assert big.stat().st_size >= 100 * 2**20
    code = (
        "import resource, sys; from pathlib import Path\n"
        "from advisor.core.corpus import ingest_corpus, whitespace_offsets\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "rep = ingest_corpus(Path(sys.argv[1]), Path(sys.argv[2]), whitespace_offsets, 200, 40)\n"
        "print(rep['n_chunks'], (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(big.parent), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path.cwd())},
        check=True,
    )
    n_chunks, extra_mb = map(int, r.stdout.split())
    assert n_chunks > 100_000
    # Holding the text alone would cost 100 MB, its word offsets over 1 GB; one 1M-character segment ~100 MB.
    assert extra_mb < 150, f"ingesting 100 MB grew memory by {extra_mb} MB"
