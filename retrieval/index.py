"""The FAISS index over chunk embeddings, saved with its config and chunk metadata beside it.

    index/
      index.faiss         faiss.write_index output (inner product on L2-normalized vectors = cosine)
      index_config.json   embedder, dim, kind, number of vectors, chunks hash
      meta.jsonl          one line per vector, in index order: chunk id, source, text

Run the stage alone:  python -m retrieval.index RUN_DIR   (after ingest wrote RUN_DIR/chunks.jsonl)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from advisor.core.answer import Context
from advisor.core.artifacts import atomic_write_bytes, atomic_write_json, read_jsonl, sha256_file, write_jsonl
from advisor.core.errors import AdvisorError
from retrieval.embedders import Embedder, load_embedder

INDEX_KINDS = ("flat",)


def build_index(chunks_path: Path, out_dir: Path, embedder_spec: str, batch_size: int = 64,
                progress: bool = True) -> dict:
    """Embed every chunk and write index/ (see module doc). Returns index_config."""
    import faiss

    chunks = read_jsonl(chunks_path)
    if not chunks:
        raise AdvisorError(f"{chunks_path} holds no chunks; nothing to index")
    t0 = time.perf_counter()
    emb = load_embedder(embedder_spec)
    vecs = emb.encode([c["text"] for c in chunks], batch_size=batch_size, progress=progress)
    index = faiss.IndexFlatIP(emb.dim)
    index.add(vecs)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(out_dir / "meta.jsonl", ({"id": c["id"], "source": c["source"], "text": c["text"]} for c in chunks))
    atomic_write_bytes(out_dir / "index.faiss", faiss.serialize_index(index).tobytes())
    config = {
        "embedder": embedder_spec,
        "dim": emb.dim,
        "kind": "flat",
        "metric": "inner_product (cosine on normalized vectors)",
        "n_vectors": int(index.ntotal),
        "chunks_sha256": sha256_file(chunks_path),
        "build_s": round(time.perf_counter() - t0, 3),
        "size_bytes": (out_dir / "index.faiss").stat().st_size,
    }
    atomic_write_json(out_dir / "index_config.json", config)
    return config


class Retriever:
    """Loads index/ and answers top-k queries with chunk text and sources."""

    def __init__(self, index_dir: Path, embedder: Embedder | None = None):
        import faiss

        index_dir = Path(index_dir)
        if not (index_dir / "index.faiss").exists():
            raise AdvisorError(f"no FAISS index in {index_dir}; build it first (advisor run)")
        self.config = json.loads((index_dir / "index_config.json").read_text())
        self.index = faiss.read_index(str(index_dir / "index.faiss"))
        self.meta = read_jsonl(index_dir / "meta.jsonl")
        self.embedder = embedder or load_embedder(self.config["embedder"])
        if self.embedder.dim != self.index.d:
            raise AdvisorError(
                f"embedder '{self.embedder.spec}' gives {self.embedder.dim}-d vectors but {index_dir} holds {self.index.d}-d"
            )

    def search(self, queries: list[str], k: int) -> list[list[Context]]:
        q = self.embedder.encode(queries)
        scores, ids = self.index.search(q, min(k, self.index.ntotal))
        out = []
        for srow, irow in zip(scores, ids):
            hits = []
            for rank, (s, i) in enumerate(((s, i) for s, i in zip(srow, irow) if i >= 0), 1):
                m = self.meta[i]
                hits.append(Context(m["id"], m["source"], m["text"], float(s), rank))
            out.append(hits)
        return out


def run_index_stage(run_dir: Path) -> None:
    """The retrieval track of one run directory (skipped when chunks and config are unchanged)."""
    import torch

    from advisor.core.artifacts import RunDir, combine_hashes
    from advisor.core.config import load_run_config

    run = RunDir(run_dir)
    cfg = load_run_config(run.path)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    h = combine_hashes(cfg.section_hash("retrieval"), sha256_file(run / "chunks.jsonl"))
    with run.stage("index", h, ["index/index.faiss", "index/index_config.json", "index/meta.jsonl"]) as st:
        if not st.skipped:
            build_index(run / "chunks.jsonl", run / "index", cfg.retrieval.embedder, cfg.retrieval.batch_size)


def main(argv: list[str] | None = None) -> int:
    from advisor.core.logs import stage_main

    return stage_main(run_index_stage, sys.argv[1:] if argv is None else argv, "retrieval.index")


if __name__ == "__main__":
    raise SystemExit(main())
