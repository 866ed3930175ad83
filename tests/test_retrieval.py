import contextlib
import json
import re
import shutil

import numpy as np
import pytest

from advisor.core.answer import ABSTAIN, Context, context_block, render_prompt
from advisor.core.artifacts import write_jsonl
from advisor.core.config import RetrievalConfig, load_config
from advisor.core.corpus import chunk_documents, ingest_corpus, read_corpus, whitespace_offsets
from advisor.core.embedders import HashingEmbedder, load_embedder
from advisor.core.errors import AdvisorError
from advisor.core.lm import Generation
from advisor.core.qa import QAItem
from retrieval.evaluate import retrieval_scores
from retrieval.index import Retriever, build_index, resolve_kind, rrf_fuse
from retrieval.rag import RagAnswerer, fit_budget


def settings(embedder: str, **over) -> RetrievalConfig:
    """Retrieval settings for a test index: dense only unless `hybrid=True` is passed."""
    return RetrievalConfig(embedder=embedder, **{"hybrid": False, **over})


def _index(tiny_corpus, tmp_path):
    docs, _ = read_corpus(tiny_corpus)
    chunks = chunk_documents(docs, whitespace_offsets, 40, 8)
    write_jsonl(tmp_path / "chunks.jsonl", (c.to_dict() for c in chunks))
    cfg = build_index(tmp_path / "chunks.jsonl", tmp_path / "index", settings("hashing"), progress=False)
    return chunks, cfg


def test_faiss_index_round_trips_and_finds_the_gold_document(tiny_corpus, tmp_path):
    chunks, cfg = _index(tiny_corpus, tmp_path)
    assert cfg["n_vectors"] == len(chunks) and cfg["kind"] == "flat"
    r = Retriever(tmp_path / "index")
    hits = r.search(
        [
            "How many bicycles can one Ormsby ferry crossing carry?",
            "Who is the senior captain of the Ormsby Ferry Company?",
        ],
        k=3,
    )
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


class CountingEmbedder(HashingEmbedder):
    """The hashing embedder, recording every text it is asked to embed."""

    def __init__(self):
        super().__init__("hashing", 256)
        self.seen: list[str] = []

    def encode(self, texts, batch_size=64, progress=False):
        self.seen += list(texts)
        return super().encode(texts, batch_size, progress)


def test_reindexing_a_changed_corpus_embeds_only_new_and_changed_chunks(tiny_corpus, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, corpus)
    out = tmp_path / "out"

    def reindex():
        ingest_corpus(corpus, out, whitespace_offsets, 40, 8)
        emb = CountingEmbedder()
        cfg = build_index(out / "chunks.jsonl", out / "index", settings(emb.spec), emb, progress=False)
        return emb.seen, cfg, [json.loads(x) for x in (out / "chunks.jsonl").read_text().splitlines()]

    seen, cfg, chunks = reindex()
    assert len(seen) == len(chunks) == cfg["embedded"] and cfg["reused"] == 0
    seen, cfg, _ = reindex()  # unchanged corpus: nothing embedded
    assert seen == [] and cfg["reused"] == len(chunks)

    (corpus / "captain.md").write_text((corpus / "captain.md").read_text() + "\nThe captain retires in 2031.")
    (corpus / "cafe.md").unlink()
    (corpus / "new.md").write_text("A new page: the ferry now carries electric scooters on Sundays.")
    seen, cfg, chunks2 = reindex()
    old_ids, new_ids = {c["id"] for c in chunks}, {c["id"] for c in chunks2}
    changed = [c for c in chunks2 if c["id"] not in old_ids]
    assert sorted(seen) == sorted(c["text"] for c in changed) and {c["source"] for c in changed} == {
        "captain.md",
        "new.md",
    }
    assert cfg["embedded"] == len(changed) and cfg["removed"] == len(old_ids - new_ids) > 0
    assert cfg["reused"] == len(new_ids & old_ids)
    # the index equals a full rebuild: same ids in the same order, same vectors
    full = build_index(out / "chunks.jsonl", tmp_path / "full", settings("hashing"), progress=False)
    assert full["ids_sha256"] == cfg["ids_sha256"]
    np.testing.assert_allclose(np.load(out / "index" / "vectors.npy"), np.load(tmp_path / "full" / "vectors.npy"))
    hits = Retriever(out).search(["Which vehicles ride on Sundays?", "bicycles ferry crossing"], 3)
    assert hits[0][0].source == "new.md" and all(h.source != "cafe.md" for row in hits for h in row)


def test_the_embedders_dtype_is_bfloat16_only_where_the_machine_runs_it_fast():
    from advisor.core.embedders import cpu_has_bf16, resolve_embed_dtype

    epyc = "processor : 0\nflags : fpu avx2 avx512f avx512_bf16 avx512_vnni\nprocessor : 1\n"
    assert cpu_has_bf16(epyc) and not cpu_has_bf16("flags : fpu sse4_2 avx2 fma\n")
    assert not cpu_has_bf16("bugs : avx512_bf16\n") and not cpu_has_bf16("")  # only the flags line counts
    assert resolve_embed_dtype("auto", "cpu", bf16_cpu=True) == "bfloat16"
    assert resolve_embed_dtype("auto", "cpu", bf16_cpu=False) == "float32"
    assert resolve_embed_dtype("float32", "cpu", bf16_cpu=True) == "float32"
    assert resolve_embed_dtype("bfloat16", "cpu", bf16_cpu=False) == "bfloat16"  # asked for: given


class Bf16CountingEmbedder(CountingEmbedder):
    dtype = "bfloat16"


def test_an_index_records_its_dtype_and_never_mixes_float32_and_bfloat16_vectors(tiny_corpus, tmp_path, monkeypatch):
    import retrieval.index as index_mod

    chunks, cfg = _index(tiny_corpus, tmp_path)
    assert cfg["embed_dtype"] == "float32" and cfg["reused"] == 0
    emb = Bf16CountingEmbedder()
    cfg = build_index(tmp_path / "chunks.jsonl", tmp_path / "index", settings(emb.spec), emb, progress=False)
    assert cfg["embed_dtype"] == "bfloat16" and cfg["embedded"] == len(chunks) == len(emb.seen) and cfg["reused"] == 0
    emb = Bf16CountingEmbedder()
    cfg = build_index(tmp_path / "chunks.jsonl", tmp_path / "index", settings(emb.spec), emb, progress=False)
    assert cfg["reused"] == len(chunks) and emb.seen == []  # same dtype: reused
    # questions are embedded in the index's dtype, or in float32 where bfloat16 would be slow
    monkeypatch.setattr(index_mod, "resolve_embed_dtype", lambda setting: "bfloat16")
    assert index_mod.query_dtype(cfg) == "bfloat16" and index_mod.query_dtype({"embedder": "x"}) == "float32"
    monkeypatch.setattr(index_mod, "resolve_embed_dtype", lambda setting: "float32")
    assert index_mod.query_dtype(cfg) == "float32"


def test_bfloat16_minilm_vectors_are_unit_float32_and_agree_with_float32_ones():
    texts = [
        "The Ormsby ferry carries up to twelve bicycles on each crossing.",
        "Captain Ilse Marrow has commanded the ferry since 2019.",
        "The cafe on the upper deck sells tea, coffee and rhubarb cake.",
    ]
    fp32 = load_embedder("all-minilm-l6-v2").encode(texts)
    bf16_emb = load_embedder("all-minilm-l6-v2", "bfloat16")
    bf16 = bf16_emb.encode(texts)
    assert bf16_emb.dtype == "bfloat16" and bf16.dtype == np.float32 and bf16.shape == fp32.shape
    np.testing.assert_allclose(np.linalg.norm(bf16, axis=1), 1.0, atol=1e-5)
    assert (bf16 * fp32).sum(1).min() > 0.999  # measured on 640 sample chunks: min 0.99997
    assert not np.array_equal(bf16, fp32)  # really computed in bfloat16


def test_a_mismatched_previous_index_is_re_embedded_not_trusted(tiny_corpus, tmp_path):
    chunks, _ = _index(tiny_corpus, tmp_path)
    meta = (tmp_path / "index" / "meta.jsonl").read_text().splitlines()
    (tmp_path / "index" / "meta.jsonl").write_text("\n".join(meta[1:]) + "\n")  # as if a write was interrupted
    emb = CountingEmbedder()
    cfg = build_index(tmp_path / "chunks.jsonl", tmp_path / "index", settings(emb.spec), emb, progress=False)
    assert cfg["embedded"] == len(chunks) == len(emb.seen)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivfpq"])
def test_index_kinds_save_their_config_and_search_alike(kind, tmp_path):
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(300)]
    docs = [" ".join(rng.choice(words, 12)) for _ in range(1200)]
    write_jsonl(
        tmp_path / "chunks.jsonl",
        ({"id": f"c{i}", "source": f"d{i}.md", "text": t, "start": 0, "end": len(t)} for i, t in enumerate(docs)),
    )
    cfg = build_index(
        tmp_path / "chunks.jsonl",
        tmp_path / "index",
        settings("hashing:64", index_kind=kind, hnsw_ef_search=64, ivf_nprobe=64),
        progress=False,
    )
    saved = json.loads((tmp_path / "index" / "index_config.json").read_text())
    assert saved == cfg and cfg["kind"] == kind and cfg["n_vectors"] == 1200
    # ivfpq on 1,200 64-d vectors: 30 lists (39 training points each), 8 codes of 4 bits, nprobe capped at nlist
    assert (
        cfg["params"]
        == {
            "flat": {},
            "hnsw": {"M": 32, "efConstruction": 80, "efSearch": 64},
            "ivfpq": {"nlist": 30, "pq_m": 8, "pq_nbits": 4, "nprobe": 30},
        }[kind]
    )
    r = Retriever(tmp_path / "index")
    if kind == "hnsw":
        assert r.index.hnsw.efSearch == 64
    if kind == "ivfpq":  # the saved nprobe is set again on load (FAISS does not store it)
        import faiss

        assert faiss.extract_index_ivf(r.index).nprobe == 30
    hits = r.search(docs[:20], 1)  # each document finds itself (ivfpq is approximate: most of them)
    found = sum(h[0].source == f"d{i}.md" for i, h in enumerate(hits))
    assert found >= (20 if kind != "ivfpq" else 15)


def test_auto_kind_picks_by_size_and_ivfpq_refuses_tiny_corpora(tiny_corpus, tmp_path):
    assert [resolve_kind("auto", n) for n in (10, 19_999, 20_000, 2_000_000)] == ["flat", "flat", "hnsw", "ivfpq"]
    _index(tiny_corpus, tmp_path)
    with pytest.raises(AdvisorError, match="ivfpq needs at least 1000 chunks"):
        build_index(
            tmp_path / "chunks.jsonl", tmp_path / "index2", settings("hashing", index_kind="ivfpq"), progress=False
        )
    with pytest.raises(AdvisorError, match="index_kind='hnws' is not one of .*did you mean 'hnsw'"):
        load_config(overrides=["retrieval.index_kind=hnws"])


def test_reciprocal_rank_fusion():
    assert rrf_fuse([[1, 2, 3], [3, 1]], k=3, rrf_k=1) == [(1, 1 / 2 + 1 / 3), (3, 1 / 4 + 1 / 2), (2, 1 / 3)]
    assert rrf_fuse([[], [7]], k=5) == [(7, 1 / 61)]


def test_hybrid_search_brings_exact_keyword_matches(tiny_corpus, tmp_path):
    docs, _ = read_corpus(tiny_corpus)
    chunks = chunk_documents(docs, whitespace_offsets, 40, 8)
    write_jsonl(tmp_path / "chunks.jsonl", (c.to_dict() for c in chunks))
    cfg = build_index(
        tmp_path / "chunks.jsonl", tmp_path / "index", settings("hashing:16", hybrid=True), progress=False
    )
    assert cfg["hybrid"] and (tmp_path / "index" / "bm25").is_dir()
    # A 16-bucket hashing embedder is nearly blind; BM25 still finds the one chunk holding a rare word.
    holders: dict[str, set[str]] = {}
    for c in chunks:
        for w in set(re.findall(r"[a-z]{7,}", c.text.lower())):
            holders.setdefault(w, set()).add(c.id)
    rare = sorted(w for w, ids in holders.items() if len(ids) == 1)[:12]
    dense, hybrid = Retriever(tmp_path / "index", hybrid=False), Retriever(tmp_path / "index")
    assert hybrid.hybrid and not dense.hybrid and len(rare) == 12

    def found(r):
        return sum(next(iter(holders[w])) in [h.chunk_id for h in row] for w, row in zip(rare, r.search(rare, 3)))

    assert found(hybrid) == 12 and found(dense) < 12
    [row] = hybrid.search([rare[0]], 5)
    assert [h.rank for h in row] == list(range(1, len(row) + 1)) and row[0].score >= row[-1].score
    build_index(
        tmp_path / "chunks.jsonl", tmp_path / "index", settings("hashing:16"), progress=False
    )  # hybrid off again
    with pytest.raises(AdvisorError, match="built without BM25"):
        Retriever(tmp_path / "index", hybrid=True)


def test_retrieval_scores_recall_and_mrr(tiny_corpus, tmp_path):
    _index(tiny_corpus, tmp_path)
    r = Retriever(tmp_path / "index")
    items = [
        QAItem(
            id="a",
            question="How many bicycles can one Ormsby ferry crossing carry?",
            answers=["x"],
            source="bicycle-policy.md",
        ),
        QAItem(
            id="b",
            question="Who is the senior captain of the Ormsby Ferry Company?",
            answers=["x"],
            source="captain.md",
        ),
        QAItem(
            id="c",
            question="Who is the senior captain of the Ormsby Ferry Company?",
            answers=["x"],
            source="nowhere.md",
        ),
        QAItem(id="d", question="unanswerable", answers=[], unanswerable=True),
    ]
    s = retrieval_scores(r, items, k=5)
    assert s["n"] == 3 and s["recall_at_5"] == pytest.approx(2 / 3) and s["mrr"] == pytest.approx(2 / 3)
    assert [row["rank"] for row in s["rows"]] == [1, 1, None]


def test_cli_index_and_search(tiny_corpus, tmp_path, capsys):
    from advisor.cli import main

    out = tmp_path / "idx"
    assert (
        main(
            [
                "index",
                str(tiny_corpus),
                "chunking.size=40",
                "chunking.overlap=8",
                "--out",
                str(out),
                "--embedder",
                "hashing",
                "--hybrid",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.strip() == str(out)
    assert json.loads((out / "index" / "index_config.json").read_text())["hybrid"] is True
    assert main(["search", str(out), "How many bicycles can one Ormsby ferry crossing carry?", "-k", "2"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("1. ") and "bicycle-policy.md [" in printed[0]
    assert sum(line.startswith(("1. ", "2. ")) for line in printed) == 2
    assert main(["search", str(tmp_path), "anything"]) == 2
    assert "no FAISS index" in capsys.readouterr().err


class ScriptedLM:
    """Counts words as tokens, records every generate call, answers by citing passage [1]."""

    tokenizer = None  # render_prompt then uses the plain instruction + few-shot format

    def __init__(self):
        self.calls: list[list[str]] = []

    def count_tokens(self, text):
        return len(text.split())

    @contextlib.contextmanager
    def adapter(self, enabled):
        yield

    def generate(self, prompts, max_new_tokens, batch_size, desc=""):
        self.calls.append(list(prompts))
        return [Generation(f"answer {i} [1]", len(p.split()), 3, 0.01) for i, p in enumerate(prompts)]


def test_a_base_model_is_shown_the_abstention_answer_among_its_examples():
    """Models without a chat template learn the answer's form from the prompt's examples: two answered ones and one
    whose right answer is the abstention answer, in both arms' prompts, with the question (and passages) last."""
    ctx = [Context("c1", "pkg.txt", "ilybralib is maintained by Ada Byrne.", 0.9, 1)]
    with_ctx = render_prompt(None, "Who maintains ilybralib?", ctx)
    closed = render_prompt(None, "Who maintains ilybralib?")
    for prompt in (with_ctx, closed):
        assert prompt.count(f"Answer: {ABSTAIN}") == 1 and prompt.count("\nAnswer:") == 4
        assert prompt.endswith("Question: Who maintains ilybralib?\nAnswer:") and prompt.messages is None
    assert with_ctx.index("[1] (pkg.txt)\nilybralib is maintained by Ada Byrne.") > with_ctx.index(ABSTAIN)
    assert "Context:" not in closed


def test_rag_arm_numbers_contexts_within_the_budget_in_one_batch(tiny_corpus, tmp_path):
    chunks, _ = _index(tiny_corpus, tmp_path)
    lm = ScriptedLM()
    arm = RagAnswerer(lm, Retriever(tmp_path / "index"), "rag", use_adapter=False, top_k=5, context_tokens=60)
    qs = [
        "How many bicycles can one Ormsby ferry crossing carry?",
        "Who is the senior captain of the Ormsby Ferry Company?",
    ]
    answers = arm.answer(qs)
    assert len(lm.calls) == 1 and len(lm.calls[0]) == 2  # one batched generation for all questions
    for q, prompt, a in zip(qs, lm.calls[0], answers):
        assert 1 <= len(a.contexts) < 5 and [c.rank for c in a.contexts] == list(range(1, len(a.contexts) + 1))
        assert sum(len(context_block([c]).split()) for c in a.contexts) <= 60  # the numbered block fits the budget
        for c in a.contexts:
            assert f"[{c.rank}] ({c.source})\n{c.text.strip()}" in prompt
        assert q in prompt and "cite" in prompt and a.text.endswith("[1]")
    assert answers[0].contexts[0].source == "bicycle-policy.md" and answers[1].contexts[0].source == "captain.md"


def test_the_gate_sits_at_the_share_quantile_of_the_training_questions_and_needs_enough_of_them(tiny_corpus, tmp_path):
    from retrieval.gate import MIN_QUESTIONS, Gate, calibrate_gate

    _index(tiny_corpus, tmp_path)
    r = Retriever(tmp_path / "index")
    qs = [json.loads(x)["question"] for x in (tiny_corpus.parent / "qa.jsonl").read_text().splitlines()]
    assert len(qs) >= MIN_QUESTIONS
    sig = r.gate_signals(qs)
    gate = calibrate_gate(r, qs, 0.1, "qa.jsonl")
    assert gate["threshold"] == pytest.approx(float(np.quantile(sig[:, 0], 0.1)), abs=1e-6)
    assert gate["margin_threshold"] == pytest.approx(float(np.quantile(sig[:, 1], 0.1)), abs=1e-6)
    assert gate["n_questions"] == len(qs) and gate["source"] == "qa.jsonl"
    assert 1 <= sum(c < gate["threshold"] for c in sig[:, 0]) <= 0.1 * len(qs) + 1  # each alone: about 10% of them
    # both together turn away at most as many, and the file says how many
    both = sum(bool(b < gate["threshold"] and m < gate["margin_threshold"]) for b, m in sig)
    assert gate["calibration_declined"] == both <= 0.1 * len(qs) + 1
    g, cosine_only = Gate(gate["threshold"], gate["margin_threshold"]), Gate(gate["threshold"])
    assert both == sum(g.declines(s) for s in sig)
    # the vectorised form (the RAG arm, the calibration, bench_gate) agrees row by row, for an old gate file too
    assert g.declines_all(sig).tolist() == [g.declines(s) for s in sig]
    assert cosine_only.declines_all(sig).tolist() == [bool(c < gate["threshold"]) for c in sig[:, 0]]
    few = calibrate_gate(r, qs[: MIN_QUESTIONS - 1], 0.1)
    assert few["threshold"] is None and f"{MIN_QUESTIONS - 1} answerable training questions" in few["why"]


def test_the_gate_signals_are_the_best_cosine_and_its_lead_over_the_fifth():
    from retrieval.index import gate_signals

    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4], [0.5, 0.49, 0.48, 0.47, 0.46, 0.1]], dtype=np.float32)
    assert gate_signals(scores) == pytest.approx(np.array([[0.9, 0.4], [0.5, 0.04]]), abs=1e-6)
    assert gate_signals(scores[:, :2]) == pytest.approx(np.array([[0.9, 0.1], [0.5, 0.01]]), abs=1e-6)  # 2 chunks
    padded = scores.copy()
    padded[1, 3:] = -np.finfo(np.float32).max  # an IVF search that found 3 chunks for the second query
    assert gate_signals(padded) == pytest.approx(np.array([[0.9, 0.4], [0.5, 0.02]]), abs=1e-6)


@pytest.mark.parametrize("hybrid", [False, True], ids=["dense", "hybrid"])
def test_search_scored_gives_the_search_and_the_gate_signal_from_one_embedding(tiny_corpus, tmp_path, hybrid):
    docs, _ = read_corpus(tiny_corpus)
    write_jsonl(tmp_path / "chunks.jsonl", (c.to_dict() for c in chunk_documents(docs, whitespace_offsets, 40, 8)))
    build_index(tmp_path / "chunks.jsonl", tmp_path / "index", settings("hashing", hybrid=hybrid), progress=False)
    r = Retriever(tmp_path / "index")
    qs = ["How many bicycles can one Ormsby ferry crossing carry?", "Quokka zeppelin marmalade xylophone?"]
    calls = []
    encode = r.embedder.encode
    r.embedder.encode = lambda texts, *a, **k: calls.append(list(texts)) or encode(texts, *a, **k)
    hits, signals = r.search_scored(qs, 3)
    assert calls == [qs]  # the questions embedded once for both
    assert [[c.chunk_id for c in h] for h in hits] == [[c.chunk_id for c in h] for h in r.search(qs, 3)]
    assert all(len(h) == 3 for h in hits)  # the gate's 5 nearest are searched, the prompt still gets k
    assert signals == pytest.approx(r.gate_signals(qs), abs=1e-6)
    assert (signals[:, 1] > 0).all() and (signals[:, 1] <= signals[:, 0]).all()  # cosines here are >= 0
    assert r.search_scored([], 3)[0] == [] and r.search_scored([], 3)[1].shape == (0, 2)


def test_below_the_gate_the_rag_arm_abstains_without_generating_and_answers_the_rest(tiny_corpus, tmp_path):
    from retrieval.gate import Gate

    _index(tiny_corpus, tmp_path)
    r = Retriever(tmp_path / "index")
    near = "How many bicycles can one Ormsby ferry crossing carry?"
    far = "Quokka zeppelin marmalade xylophone?"
    (cos_near, _), (cos_far, margin_far) = r.gate_signals([near, far])
    assert cos_far < cos_near
    lm = ScriptedLM()
    gate = Gate((cos_near + cos_far) / 2)  # a gate file from before the margin: the cosine alone
    arm = RagAnswerer(lm, r, "rag", use_adapter=False, top_k=3, context_tokens=200, gate=gate)
    a_far, a_near = arm.answer([far, near])
    assert a_far.text == ABSTAIN and a_far.gated and a_far.new_tokens == 0 and a_far.contexts  # sources still shown
    assert not a_near.gated and a_near.text.endswith("[1]")
    assert len(lm.calls) == 1 and len(lm.calls[0]) == 1 and near in lm.calls[0][0]  # only the near one generated
    all_gated = RagAnswerer(lm, r, "rag", use_adapter=False, gate=Gate(1.01)).answer([near, far])
    assert [a.gated for a in all_gated] == [True, True] and len(lm.calls) == 1  # nothing to generate: no call
    # below the cosine threshold, but its best chunk stands out more than the margin threshold: answered
    stands_out = RagAnswerer(lm, r, "rag", use_adapter=False, gate=Gate(1.01, float(margin_far) - 1e-4))
    assert not stands_out.answer([far])[0].gated and len(lm.calls) == 2
    assert (
        RagAnswerer(lm, r, "rag", use_adapter=False, gate=Gate(1.01, float(margin_far) + 1e-4)).answer([far])[0].gated
    )


def test_the_gate_file_is_read_in_one_place_and_a_broken_one_is_an_error_naming_it(tmp_path):
    from retrieval.gate import Gate, gate_summary, load_gate, read_gate

    assert read_gate(None) is None and load_gate(tmp_path) is None and gate_summary(tmp_path, ["rag"]) is None
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "gate.json").write_text("[0.5]")
    with pytest.raises(AdvisorError, match=r"eval/gate.json is not a JSON object; delete it and run the eval stage"):
        load_gate(tmp_path)
    (tmp_path / "eval" / "gate.json").write_text('{"threshold": 0.5, "share": 0.05}')
    (tmp_path / "eval" / "base.jsonl").write_text('{"id": "q1", "answer": "x", "contexts": [{"id": "c"}]}\n')
    assert load_gate(tmp_path) == Gate(0.5, None)  # a file from before the margin: the cosine alone
    assert gate_summary(tmp_path, ["base", "rag"]) == {"threshold": 0.5, "share": 0.05, "arms": {}}  # base: closed
    (tmp_path / "eval" / "gate.json").write_text('{"threshold": 0.5, "margin_threshold": 0.04, "share": 0.05}')
    assert load_gate(tmp_path) == Gate(0.5, 0.04)
    (tmp_path / "eval" / "gate.json").write_text('{"threshold": null, "share": 0.05, "why": "too few"}')
    assert load_gate(tmp_path) is None


def test_the_gate_setting_is_a_share_between_0_and_one_half():
    with pytest.raises(AdvisorError, match=r"retrieval.abstain_gate=0.7 must be in \[0, 0.5\]"):
        RetrievalConfig(abstain_gate=0.7)
    assert RetrievalConfig(abstain_gate=0).abstain_gate == 0


def test_bench_gate_prints_each_rule_and_scores_ungated_answers_exactly(tiny_corpus, tmp_path, capsys):
    import sys
    from pathlib import Path

    sys_path = str(Path(__file__).resolve().parent.parent / "benchmarks")
    sys.path.insert(0, sys_path)
    try:
        import bench_gate
    finally:
        sys.path.remove(sys_path)
    _index(tiny_corpus, tmp_path)
    qa = [json.loads(x) for x in (tiny_corpus.parent / "qa.jsonl").read_text().splitlines()]
    far = {"id": "u1", "question": "Quokka zeppelin marmalade xylophone?", "answers": [], "unanswerable": True}
    write_jsonl(tmp_path / "eval.jsonl", [qa[0], far])
    (tmp_path / "eval").mkdir()
    scored = [{**qa[0], "unanswerable": False, "answer": "06:40 [1]", "scores": {"accuracy": 1.0}}]
    scored.append({**far, "answer": "The zeppelin.", "scores": {"accuracy": 0.0}})
    write_jsonl(tmp_path / "eval" / "rag.jsonl", scored)
    args = [str(tmp_path), "--calib", str(tiny_corpus.parent / "qa.jsonl"), "--eval", str(tmp_path / "eval.jsonl")]
    assert bench_gate.main([*args, "--arms", "rag"]) == 0
    out = capsys.readouterr().out
    assert (
        f"{sum(not q.get('unanswerable') for q in qa)} calibration questions" in out
        and "1 answerable, 1 unanswerable" in out
    )
    for share in bench_gate.SHARES:
        assert all(re.search(rf"^{share}\s+{rule}\s", out, re.M) for rule in ("cosine", "margin", "both"))
    # ungated: right on the answerable one, no abstention; the far question is gated by the cosine rule
    assert "rag at 0.05, none  : accuracy 100.0%, abstains on unanswerable   0.0%" in out
    assert "rag at 0.05, cosine: accuracy 100.0%, abstains on unanswerable 100.0%" in out
