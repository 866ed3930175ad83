import json

import pytest

from advisor.core.corpus import chunk_documents, chunk_text, read_corpus, whitespace_offsets
from advisor.core.errors import AdvisorError
from advisor.core.qa import load_qa, stratified_limit


def test_reads_the_tiny_corpus(tiny_corpus):
    docs, report = read_corpus(tiny_corpus)
    assert len(docs) == 20 and not report.skipped
    assert all(d.doc_id.endswith(".md") for d in docs)


def test_chunks_respect_size_and_overlap_and_cover_the_text():
    text = " ".join(f"w{i}." if i % 7 == 6 else f"w{i}" for i in range(500))
    offs = whitespace_offsets(text)
    spans = chunk_text(text, offs, size=50, overlap=10)
    words = [len(whitespace_offsets(text[a:b])) for a, b in spans]
    assert max(words) <= 50
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    for (_, b0), (a1, _) in zip(spans, spans[1:]):
        assert a1 < b0, "consecutive chunks overlap"
        shared = len(whitespace_offsets(text[a1:b0]))
        assert 1 <= shared <= 10
    # ends snap to sentence boundaries ('.') when one is in the second half of the window
    assert all(text[b - 1] == "." for a, b in spans[:-1])


def test_chunk_ids_are_content_hashes(tiny_corpus):
    docs, _ = read_corpus(tiny_corpus)
    a = chunk_documents(docs, whitespace_offsets, 20, 5)
    b = chunk_documents(docs, whitespace_offsets, 20, 5)
    assert [c.id for c in a] == [c.id for c in b]
    assert len({c.id for c in a}) == len(a)
    doc = next(d for d in docs if d.doc_id == a[0].source)
    assert doc.text[a[0].start : a[0].end] == a[0].text
    docs[0].text += " changed"
    c = chunk_documents(docs, whitespace_offsets, 20, 5)
    changed = {x.id for x in c} ^ {x.id for x in a}
    assert changed and all(x.source == docs[0].doc_id for x in c + a if x.id in changed)


def test_unsupported_binary_and_empty_files_are_skipped_with_reasons(tmp_path):
    (tmp_path / "a.md").write_text("# A\nreal text")
    (tmp_path / "b.bin").write_bytes(b"\x00\x01")
    (tmp_path / "c.txt").write_bytes(b"abc\x00def")
    (tmp_path / "d.txt").write_text("   ")
    (tmp_path / "e.jsonl").write_text(json.dumps({"body": "from jsonl"}) + "\n")
    docs, report = read_corpus(tmp_path, text_field="body")
    assert sorted(d.doc_id for d in docs) == ["a.md", "e.jsonl#1"]
    why = dict(report.skipped)
    assert "unsupported" in why["b.bin"] and why["c.txt"] == "binary content" and why["d.txt"] == "empty file"


def test_corpus_errors(tmp_path):
    with pytest.raises(AdvisorError, match="does not exist"):
        read_corpus(tmp_path / "missing")
    with pytest.raises(AdvisorError, match="no readable documents"):
        read_corpus(tmp_path)
    (tmp_path / "x.jsonl").write_text('{"text": "ok"}\n{"oops": 1}\n')
    with pytest.raises(AdvisorError, match=r"x.jsonl:2: record has no string field 'text'"):
        read_corpus(tmp_path)


def test_qa_loads_and_validates(tiny_qa, tmp_path):
    items = load_qa(tiny_qa)
    assert len(items) == 24 and sum(it.unanswerable for it in items) == 4
    bad = tmp_path / "qa.jsonl"
    bad.write_text('{"question": "ok?", "answers": ["x"]}\n{"question": "broken", \n')
    with pytest.raises(AdvisorError, match=r"qa.jsonl:2: not valid JSON"):
        load_qa(bad)
    bad.write_text('{"question": "no answers?"}\n')
    with pytest.raises(AdvisorError, match=r"qa.jsonl:1: answerable question has no answers"):
        load_qa(bad)
    bad.write_text('{"id": "a", "question": "q1", "answers": ["x"]}\n{"id": "a", "question": "q2", "answers": ["y"]}\n')
    with pytest.raises(AdvisorError, match=r"qa.jsonl:2: duplicate id 'a'"):
        load_qa(bad)


def test_stratified_limit_keeps_unanswerable_in_proportion(tiny_qa):
    items = load_qa(tiny_qa)
    sub = stratified_limit(items, 12)
    assert len(sub) == 12 and sum(it.unanswerable for it in sub) == 2
    assert stratified_limit(items, 0) == items


def test_sample_domain_is_consistent():
    """The bundled sample: every gold source exists and holds one of its answers."""
    from advisor.pipeline import SAMPLE_CORPUS, SAMPLE_EVAL, SAMPLE_TRAIN

    docs = {p.name: p.read_text().lower() for p in SAMPLE_CORPUS.glob("*.md")}
    assert 30 <= len(docs) <= 40
    ev = load_qa(SAMPLE_EVAL)
    assert sum(not i.unanswerable for i in ev) >= 120 and sum(i.unanswerable for i in ev) >= 30
    for it in ev + load_qa(SAMPLE_TRAIN):
        if it.unanswerable:
            continue
        assert it.source in docs, it.id
        assert any(a.lower() in docs[it.source] for a in it.answers), it.id
    assert not {i.question for i in ev} & {i.question for i in load_qa(SAMPLE_TRAIN)}
