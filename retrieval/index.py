"""The FAISS index over chunk embeddings, saved with its config and chunk metadata beside it;
incremental (only new or changed chunks are embedded) and optionally hybrid (BM25 + dense, fused
by reciprocal rank).

    index/
      index.faiss         faiss.write_index output (inner product on L2-normalized vectors = cosine)
      index_config.json   embedder, dim, kind and its search parameters, counts, what was re-embedded
      meta.jsonl          one line per vector, in index order: chunk id, source, offsets, text
      vectors.npy         the embeddings in index order (float32), reused by the next incremental build
      bm25/               the bm25s index over the same chunks (only with hybrid)

Incremental means embedding: vectors of unchanged chunk ids are read back from vectors.npy and the FAISS
structure is rebuilt from all vectors (instant for flat; HNSW over 100k vectors takes a minute or two on 2 cores,
still far less than embedding them; HNSW cannot delete vectors, so it is never patched in place).

Run the stage alone:  python -m retrieval.index RUN_DIR   (after ingest wrote RUN_DIR/chunks.jsonl)
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from advisor.core.answer import Context
from advisor.core.artifacts import atomic_write_bytes, atomic_write_json, read_jsonl, sha256_file, write_jsonl
from advisor.core.config import INDEX_KINDS, RetrievalConfig
from advisor.core.embedders import Embedder, load_embedder, resolve_embed_dtype
from advisor.core.errors import AdvisorError

log = logging.getLogger(__name__)

# INDEX_KINDS: retrieval.index_kind's choices (checked by RetrievalConfig). 'auto': exact search while it is fast
# enough (flat: ~30 single queries/s at 100k x 384 on 2 cores), HNSW beyond that, IVF-PQ when raw vectors no longer fit comfortably in memory (~1.5 GB at 1M x 384).
AUTO_HNSW_FROM = 20_000
AUTO_IVFPQ_FROM = 1_000_000
IVFPQ_MIN = 1_000  # PQ training needs enough vectors (256 centroids per sub-quantizer)
RRF_K = 60  # reciprocal rank fusion constant of an index whose index_config.json names none (Cormack et al. 2009)
GATE_SETTINGS = ("retrieval.abstain_gate",)  # retrieval settings applied at answer time (retrieval/gate.py)


def resolve_kind(kind: str, n: int) -> str:
    """The index kind to build for `n` vectors ('auto' picks by size)."""
    if kind != "auto":
        return kind
    return "flat" if n < AUTO_HNSW_FROM else "hnsw" if n < AUTO_IVFPQ_FROM else "ivfpq"


def make_faiss_index(
    vecs: np.ndarray,
    kind: str,
    hnsw_m: int = 32,
    hnsw_ef_construction: int = 80,
    hnsw_ef_search: int = 128,
    ivf_nprobe: int = 16,
):
    """A FAISS index of `kind` (flat | hnsw | ivfpq) holding `vecs` (inner product). Returns (index, params)."""
    import faiss

    n, d = vecs.shape
    if kind == "flat":
        index = faiss.IndexFlatIP(d)
        params: dict = {}
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = hnsw_ef_construction
        index.hnsw.efSearch = hnsw_ef_search
        params = {"M": hnsw_m, "efConstruction": hnsw_ef_construction, "efSearch": hnsw_ef_search}
    elif kind == "ivfpq":
        if n < IVFPQ_MIN:
            raise AdvisorError(
                f"retrieval.index_kind=ivfpq needs at least {IVFPQ_MIN} chunks to train (have {n}); use flat or auto"
            )
        # FAISS k-means wants >= 39 training points per centroid: for the coarse lists and for the 2^nbits
        # codes of each PQ sub-quantizer (fewer makes training crawl: 1,200 points at 8 bits took ~100 s).
        nlist = max(1, min(int(4 * np.sqrt(n)), n // 39))
        nbits = int(min(8, np.log2(n / 39)))
        m = next(
            m for m in (48, 32, 24, 16, 12, 8, 6, 4, 3, 2, 1) if d % m == 0 and d // m >= 8 or m == 1
        )  # >= 8 dims per code
        index = faiss.index_factory(d, f"IVF{nlist},PQ{m}x{nbits}", faiss.METRIC_INNER_PRODUCT)
        index.train(vecs)
        faiss.extract_index_ivf(index).nprobe = min(ivf_nprobe, nlist)
        params = {"nlist": nlist, "pq_m": m, "pq_nbits": nbits, "nprobe": min(ivf_nprobe, nlist)}
    else:
        raise AdvisorError(f"unknown index kind '{kind}'; kinds: {', '.join(INDEX_KINDS[1:])}")
    if n:
        index.add(vecs)
    return index, params


def _ids_hash(ids: list[str]) -> str:
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]


def _previous_vectors(out_dir: Path, embedder_spec: str, dim: int, dtype: str) -> dict[str, np.ndarray]:
    """Chunk id -> vector from the index already in out_dir, when it was built with the same embedder in the
    same compute dtype (an index never mixes float32 and bfloat16 vectors) and its files agree with each other (an interrupted write means a full re-embed, never a wrong vector)."""
    cfg_path, meta_path, vec_path = out_dir / "index_config.json", out_dir / "meta.jsonl", out_dir / "vectors.npy"
    if not (cfg_path.exists() and meta_path.exists() and vec_path.exists()):
        return {}
    try:
        cfg = json.loads(cfg_path.read_text())
        ids = [m["id"] for m in read_jsonl(meta_path)]
        vecs = np.load(vec_path, mmap_mode="r")
    except (OSError, ValueError, KeyError, AdvisorError) as e:
        log.warning("previous index in %s unreadable (%s); embedding everything", out_dir, e)
        return {}
    if (
        cfg.get("embedder") != embedder_spec
        or cfg.get("embed_dtype", "float32") != dtype
        or cfg.get("dim") != dim
        or vecs.shape != (len(ids), dim)
        or cfg.get("ids_sha256") != _ids_hash(ids)
    ):
        return {}
    return {cid: vecs[i] for i, cid in enumerate(ids)}


def build_index(
    chunks_path: Path, out_dir: Path, r: RetrievalConfig, embedder: Embedder | None = None, progress: bool = True
) -> dict:
    """Embed the chunks not already in out_dir's index (by chunk id), drop removed ones, and write
    index/ (see module doc) as the retrieval settings `r` say: embedder, index kind and its parameters,
    hybrid, fusion constant. `embedder` is one already loaded (default: load r.embedder). Returns index_config."""
    import faiss

    chunks_path, out_dir = Path(chunks_path), Path(out_dir)
    chunks = read_jsonl(chunks_path, "chunk list")
    if not chunks:
        raise AdvisorError(f"{chunks_path} holds no chunks; nothing to index")
    t0 = time.perf_counter()
    emb = embedder or load_embedder(r.embedder, resolve_embed_dtype(r.embed_dtype))
    kind, hybrid = r.index_kind, r.hybrid
    kind_built = resolve_kind(kind, len(chunks))
    old = _previous_vectors(out_dir, emb.spec, emb.dim, emb.dtype)
    vecs = np.empty((len(chunks), emb.dim), dtype=np.float32)
    todo = [i for i, c in enumerate(chunks) if c["id"] not in old]
    for i, c in enumerate(chunks):
        if c["id"] in old:
            vecs[i] = old[c["id"]]
    if todo:
        vecs[todo] = emb.encode([chunks[i]["text"] for i in todo], batch_size=r.batch_size, progress=progress)
    n_removed = len(set(old) - {c["id"] for c in chunks})
    t_embed = time.perf_counter() - t0
    index, params = make_faiss_index(vecs, kind_built, r.hnsw_m, r.hnsw_ef_construction, r.hnsw_ef_search, r.ivf_nprobe)

    out_dir.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.save(buf, vecs)
    atomic_write_bytes(out_dir / "vectors.npy", buf.getvalue())
    write_jsonl(
        out_dir / "meta.jsonl", ({k: c[k] for k in ("id", "source", "start", "end", "text") if k in c} for c in chunks)
    )
    atomic_write_bytes(out_dir / "index.faiss", faiss.serialize_index(index).tobytes())
    if hybrid:
        _build_bm25([c["text"] for c in chunks], out_dir / "bm25")
    elif (out_dir / "bm25").exists():
        shutil.rmtree(out_dir / "bm25")
    config = {  # written last: a build interrupted before this point is never mistaken for a finished one
        "embedder": emb.spec,
        "embed_dtype": emb.dtype,
        "dim": emb.dim,
        "kind": kind_built,
        "kind_requested": kind,
        "params": params,
        "hybrid": hybrid,
        "rrf_k": r.rrf_k,
        "metric": "inner_product (cosine on normalized vectors)",
        "n_vectors": int(index.ntotal),
        "ids_sha256": _ids_hash([c["id"] for c in chunks]),
        "chunks_sha256": sha256_file(chunks_path),
        "embedded": len(todo),
        "reused": len(chunks) - len(todo),
        "removed": n_removed,
        "embed_s": round(t_embed, 3),
        "build_s": round(time.perf_counter() - t0, 3),
        "size_bytes": (out_dir / "index.faiss").stat().st_size,
    }
    atomic_write_json(out_dir / "index_config.json", config)
    return config


def _build_bm25(texts: list[str], out: Path) -> None:
    import bm25s

    bm = bm25s.BM25()
    bm.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    bm.save(str(tmp))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)


def rrf_fuse(rankings: list[list[int]], k: int, rrf_k: int = RRF_K) -> list[tuple[int, float]]:
    """Reciprocal rank fusion (Cormack et al. 2009): score(d) = sum over rankings of 1 / (rrf_k + rank).

    >>> rrf_fuse([[1, 2, 3], [3, 1]], k=2)
    [(1, 0.03252247488101534), (3, 0.032266458495966696)]
    """
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, doc in enumerate(ranking, 1):
            scores[doc] = scores.get(doc, 0.0) + 1.0 / (rrf_k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]


def query_dtype(index_config: dict) -> str:
    """The compute dtype questions are embedded in: the index's own, except a bfloat16 index searched on a machine
    where bfloat16 is slow (no AVX512-BF16, no CUDA), whose questions are embedded in float32 (the two agree to a
    cosine of 0.9999; the index's vectors stay as built)."""
    built = index_config.get("embed_dtype", "float32")
    return built if built == "float32" or resolve_embed_dtype("auto") == built else "float32"


GATE_MARGIN_RANK = 5  # the gate's second signal: the best chunk's cosine less this rank's (retrieval/gate.py)


def gate_signals(scores: np.ndarray) -> np.ndarray:
    """(n, 2) from dense search scores sorted best first (n queries x depth): the best cosine, and the best less
    the GATE_MARGIN_RANK-th (the last one found when the index holds fewer chunks, or an approximate index's
    probed lists hold fewer: faiss pads those with -FLT_MAX, never a cosine)."""
    found = np.maximum((scores >= -1.5).sum(axis=1), 1)  # cosines of unit vectors lie in [-1, 1]
    rank = np.minimum(GATE_MARGIN_RANK, found) - 1
    kth = scores[np.arange(len(scores)), rank]
    return np.stack([scores[:, 0], scores[:, 0] - kth], axis=1).astype(np.float32)


class Retriever:
    """Loads index/ and answers top-k queries with chunk text and sources (dense, or hybrid when the
    index was built with BM25 and `hybrid` is not turned off)."""

    def __init__(
        self, index_dir: Path, embedder: Embedder | None = None, hybrid: bool | None = None, rrf_k: int | None = None
    ):
        import faiss

        index_dir = Path(index_dir)
        if (index_dir / "index" / "index.faiss").exists():  # a run directory or `advisor index --out` folder
            index_dir = index_dir / "index"
        if not (index_dir / "index.faiss").exists() or not (index_dir / "index_config.json").exists():
            raise AdvisorError(f"no FAISS index in {index_dir}; build it first (advisor index CORPUS --out DIR)")
        from advisor.core.textio import read_json

        rebuild = "rebuild it (advisor index CORPUS --out DIR, or rerun the run)"
        self.config = read_json(index_dir / "index_config.json", "index config", rebuild)
        if not isinstance(self.config, dict) or not isinstance(self.config.get("embedder"), str):
            raise AdvisorError(f"{index_dir / 'index_config.json'} is not an index config (no embedder); {rebuild}")
        try:
            self.index = faiss.read_index(str(index_dir / "index.faiss"))
        except RuntimeError as e:  # a truncated or foreign file: faiss reports a C++ read error
            why = str(e).strip().splitlines()[-1][:120] if str(e).strip() else "unreadable"
            raise AdvisorError(f"{index_dir / 'index.faiss'} is damaged ({why}); {rebuild}") from None
        params = self.config.get("params", {})
        if "efSearch" in params:  # search-time settings are applied on load, whatever the file kept
            self.index.hnsw.efSearch = params["efSearch"]
        if "nprobe" in params:
            faiss.extract_index_ivf(self.index).nprobe = params["nprobe"]
        self.meta = read_jsonl(index_dir / "meta.jsonl", "index chunk list", rebuild)
        if len(self.meta) != self.index.ntotal:
            raise AdvisorError(
                f"{index_dir} is inconsistent: {self.index.ntotal} vectors but {len(self.meta)} chunks in "
                f"meta.jsonl; {rebuild}"
            )
        self.embedder = embedder or load_embedder(self.config["embedder"], query_dtype(self.config))
        if self.embedder.dim != self.index.d:
            raise AdvisorError(
                f"embedder '{self.embedder.spec}' gives {self.embedder.dim}-d vectors but {index_dir} holds {self.index.d}-d"
            )
        self.hybrid = self.config.get("hybrid", False) if hybrid is None else hybrid
        if self.hybrid and not (index_dir / "bm25").is_dir():
            raise AdvisorError(
                f"{index_dir} was built without BM25; rebuild with retrieval.hybrid=true for hybrid search"
            )
        self.rrf_k = rrf_k or self.config.get("rrf_k", RRF_K)  # retrieval.rrf_k of the build
        self.bm25 = None
        if self.hybrid:
            import bm25s

            self.bm25 = bm25s.BM25.load(str(index_dir / "bm25"))

    def _dense(self, queries: list[str], depth: int) -> tuple[np.ndarray, np.ndarray]:
        q = self.embedder.encode(queries)
        return self.index.search(q, min(depth, self.index.ntotal))

    def gate_signals(self, queries: list[str]) -> np.ndarray:
        """Per query, the abstention gate's two signals (retrieval/gate.py): column 0 the dense cosine of its most
        similar chunk, column 1 how far that chunk stands out: its cosine less the GATE_MARGIN_RANK-th best's."""
        if not queries:
            return np.zeros((0, 2), dtype=np.float32)
        return gate_signals(self._dense(queries, GATE_MARGIN_RANK)[0])

    def _context(self, i: int, score: float, rank: int) -> Context:
        m = self.meta[i]
        return Context(m["id"], m["source"], m["text"], float(score), rank)

    def search(self, queries: list[str], k: int) -> list[list[Context]]:
        """Top-k chunks per query, best first; score is cosine (dense) or the RRF score (hybrid)."""
        return self.search_scored(queries, k)[0]

    def search_scored(self, queries: list[str], k: int) -> tuple[list[list[Context]], np.ndarray]:
        """`search`, and each query's gate_signals from the same embedding (the questions are embedded once)."""
        if not queries:
            return [], np.zeros((0, 2), dtype=np.float32)
        if not self.hybrid:
            scores, ids = self._dense(queries, max(k, GATE_MARGIN_RANK))
            hits = [
                [self._context(i, s, r) for r, (s, i) in enumerate(((s, i) for s, i in zip(srow, irow) if i >= 0), 1)]
                for srow, irow in zip(scores[:, :k], ids[:, :k])
            ]
            return hits, gate_signals(scores)
        import bm25s

        depth = min(max(4 * k, 20), self.index.ntotal)  # candidates from each ranker before fusion
        dense_scores, dense_ids = self._dense(queries, depth)
        sparse_ids, sparse_scores = self.bm25.retrieve(
            bm25s.tokenize(queries, stopwords="en", show_progress=False), k=depth, show_progress=False, n_threads=1
        )
        out = []
        for drow, srow, sscore in zip(dense_ids, sparse_ids, sparse_scores):
            dense = [int(i) for i in drow if i >= 0]
            sparse = [int(i) for i, s in zip(srow, sscore) if s > 0]  # a zero BM25 score is no match at all
            fused = rrf_fuse([dense, sparse], k, self.rrf_k)
            out.append([self._context(i, s, r) for r, (i, s) in enumerate(fused, 1)])
        return out, gate_signals(dense_scores)


def run_index_stage(run_dir: Path) -> None:
    """The retrieval track of one run directory (skipped when chunks and config are unchanged;
    otherwise incremental: only new or changed chunks are embedded)."""
    import torch

    from advisor.core.artifacts import RunDir, combine_hashes
    from advisor.core.config import load_run_config

    run = RunDir(run_dir)
    cfg = load_run_config(run.path)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    r = cfg.retrieval
    # the gate is applied when the arms answer: changing it keeps the index; the dtype 'auto' resolves to on
    # this machine is part of the hash, so a run directory moved to another kind of machine re-embeds
    h = combine_hashes(
        cfg.section_hash("retrieval", without=GATE_SETTINGS),
        sha256_file(run / "chunks.jsonl"),
        resolve_embed_dtype(r.embed_dtype),
    )
    with run.stage("index", h, ["index/index.faiss", "index/index_config.json", "index/meta.jsonl"]) as st:
        if not st.skipped:
            c = build_index(run / "chunks.jsonl", run / "index", r)
            print(
                f"  index: {c['kind']} over {c['n_vectors']} chunks ({c['embedded']} embedded, "
                f"{c['reused']} reused, {c['removed']} removed)",
                file=sys.stderr,
                flush=True,
            )


def main(argv: list[str] | None = None) -> int:
    from advisor.core.logs import stage_main

    return stage_main(run_index_stage, sys.argv[1:] if argv is None else argv, "retrieval.index")


if __name__ == "__main__":
    raise SystemExit(main())
