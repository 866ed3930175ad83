"""Sentence embeddings for the semantic-similarity metric, cached per text.

    emb = TextEmbedder("all-minilm-l6-v2")     # bundled MiniLM via sentence-transformers
    emb = TextEmbedder("hashing")              # deterministic token hashing, no model (tests)
    vecs = emb.encode(["14 days", "two weeks"])   # (2, d) float32, rows L2-normalised
"""

from __future__ import annotations

import hashlib

import numpy as np

HASH_DIM = 256  # dimensions of the hashing embedder


class TextEmbedder:
    """A model spec ('hashing', a bundled name, a local folder or a Hub id) turned into `encode(texts)`."""

    def __init__(self, spec: str = "all-minilm-l6-v2", batch_size: int = 64):
        self.spec = spec
        self.batch_size = batch_size
        self._model = None
        self._cache: dict[str, np.ndarray] = {}

    def _load(self):
        if self._model is None and self.spec != "hashing":
            from sentence_transformers import SentenceTransformer

            from advisor.core.models import default_device, resolve_model

            self._model = SentenceTransformer(resolve_model(self.spec, "embedder").path, device=default_device())
        return self._model

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-length embeddings, one row per text; texts seen before come from the cache."""
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if todo:
            if self.spec == "hashing":
                vecs = np.stack([_hash_vector(t) for t in todo])
            else:
                vecs = self._load().encode(todo, batch_size=self.batch_size, normalize_embeddings=True,
                                           convert_to_numpy=True, show_progress_bar=False)
            self._cache.update(zip(todo, np.asarray(vecs, dtype=np.float32)))
        return np.stack([self._cache[t] for t in texts])


def _hash_vector(text: str) -> np.ndarray:
    """Bag of normalised words hashed into HASH_DIM signed buckets, L2-normalised (zero for empty text)."""
    from evalsuite.metrics.accuracy import normalize_answer

    v = np.zeros(HASH_DIM, dtype=np.float32)
    for w in normalize_answer(text).split():
        h = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little")
        v[h % HASH_DIM] += 1.0 if (h >> 32) & 1 else -1.0
    n = np.linalg.norm(v)
    return v / n if n else v
