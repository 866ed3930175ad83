"""Sentence embeddings for the semantic-similarity metric, cached per text (the same answers and gold answers
come back arm after arm). The embedder itself is the project's one (advisor/core/embedders.py).

    emb = TextEmbedder("all-minilm-l6-v2")     # bundled MiniLM via sentence-transformers
    emb = TextEmbedder("hashing")              # deterministic word hashing, no model (tests)
    vecs = emb.encode(["14 days", "two weeks"])   # (2, d) float32, rows L2-normalised
"""

from __future__ import annotations

import numpy as np

from advisor.core.embedders import Embedder, HashingEmbedder, load_embedder
from evalsuite.normalize import normalize_answer

HASH_DIM = 256  # dimensions of the hashing embedder


def answer_words(text: str) -> list[str]:
    """The words an answer is compared on: SQuAD-normalised ('The fee: 25' and 'fee 25' are the same words)."""
    return normalize_answer(text).split()


class TextEmbedder:
    """A model spec ('hashing', a bundled name, a local folder or a Hub id) turned into `encode(texts)`.

    'hashing' hashes an answer's SQuAD-normalised words without bigrams: short answers are compared as bags of
    words, so that 'late fee: 25 pounds' stays close to 'the late fee is 25 pounds'."""

    def __init__(self, spec: str = "all-minilm-l6-v2", batch_size: int = 64):
        self.spec = spec
        self.batch_size = batch_size
        self._embedder: Embedder | None = None
        self._cache: dict[str, np.ndarray] = {}

    def _load(self) -> Embedder:  # on first use: a run that never scores similarity never loads the model
        if self._embedder is None:
            self._embedder = (
                HashingEmbedder(self.spec, HASH_DIM, words=answer_words, bigrams=False)
                if self.spec == "hashing"
                else load_embedder(self.spec)
            )
        return self._embedder

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-length embeddings, one row per text; texts seen before come from the cache."""
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if todo:
            vecs = self._load().encode(todo, batch_size=self.batch_size)
            self._cache.update(zip(todo, np.asarray(vecs, dtype=np.float32)))
        return np.stack([self._cache[t] for t in texts])
