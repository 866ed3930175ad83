from advisor.core.answer import Context
from advisor.core.artifacts import write_jsonl
from advisor.core.corpus import chunk_documents, read_corpus, whitespace_offsets
from retrieval.embedders import load_embedder
from retrieval.index import Retriever, build_index
from retrieval.rag import fit_budget


def _index(tiny_corpus, tmp_path):
    docs, _ = read_corpus(tiny_corpus)
    chunks = chunk_documents(docs, whitespace_offsets, 40, 8)
    write_jsonl(tmp_path / "chunks.jsonl", (c.to_dict() for c in chunks))
    cfg = build_index(tmp_path / "chunks.jsonl", tmp_path / "index", "hashing", progress=False)
    return chunks, cfg


def test_faiss_index_round_trips_and_finds_the_gold_document(tiny_corpus, tmp_path):
    chunks, cfg = _index(tiny_corpus, tmp_path)
    assert cfg["n_vectors"] == len(chunks) and cfg["kind"] == "flat"
    r = Retriever(tmp_path / "index")
    hits = r.search(["How many bicycles can one Ormsby ferry crossing carry?",
                     "Who is the senior captain of the Ormsby Ferry Company?"], k=3)
    assert hits[0][0].source == "bicycle-policy.md" and hits[1][0].source == "captain.md"
    assert [h.rank for h in hits[0]] == [1, 2, 3] and hits[0][0].score >= hits[0][1].score


def test_hashing_embedder_is_normalized_and_deterministic():
    e = load_embedder("hashing:64")
    a, b = e.encode(["same text"]), e.encode(["same text"])
    assert a.shape == (1, 64) and abs(float((a * a).sum()) - 1) < 1e-5 and (a == b).all()


def test_context_budget_keeps_rank_order_and_always_one_chunk():
    ctx = [Context(str(i), f"d{i}", "word " * 50, 1.0, i + 1) for i in range(3)]
    count = lambda t: len(t.split())  # noqa: E731
    assert [c.rank for c in fit_budget(ctx, count, 120)] == [1, 2]
    [only] = fit_budget(ctx, count, 20)
    assert only.rank == 1 and count(only.text) <= 20
