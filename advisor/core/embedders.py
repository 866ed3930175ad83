"""Sentence embedders through a small registry: sentence-transformers models (bundled MiniLM default, any
ST folder or Hub id) and a deterministic hashing embedder that keeps unit tests fast. The one embedder of the
project: the retrieval track indexes with it and the evaluation's semantic similarity (evalsuite/embed.py) scores
with it, so it lives below both (docs/architecture.md, 'Layers').

    emb = load_embedder("all-minilm-l6-v2")
    vecs = emb.encode(["a text"])            # float32, L2-normalized, shape (n, emb.dim)

A sentence-transformers embedder computes in float32, or in bfloat16 (`dtype="bfloat16"`: autocast, the vectors
returned as float32), which `retrieval.embed_dtype: auto` picks where it is fast: on CUDA, and on CPUs with
AVX512-BF16 (docs/architecture.md, 'The embedder's compute dtype').
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

import numpy as np

from advisor.core.corpus import OffsetsFn, whitespace_offsets
from advisor.core.errors import ModelUnavailable
from advisor.core.registry import Registry

EMBEDDERS: Registry[Callable[..., Embedder]] = Registry("embedder")
EMBED_DTYPES = ("float32", "bfloat16")


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU has the AVX512-BF16 instructions (the 'avx512_bf16' flag of /proc/cpuinfo), where
    bfloat16 matmul is fast; elsewhere it can be hundreds of times slower than float32."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as f:
                cpuinfo = f.read()
        except OSError:
            return False
    return any(
        line.startswith("flags") and "avx512_bf16" in line.split(":", 1)[-1].split() for line in cpuinfo.splitlines()
    )


def resolve_embed_dtype(setting: str, device: str | None = None, bf16_cpu: bool | None = None) -> str:
    """`retrieval.embed_dtype` as this machine runs it: 'auto' is bfloat16 on CUDA (with bf16 support) and on CPUs
    with AVX512-BF16, float32 elsewhere; 'float32' and 'bfloat16' are what they say."""
    if setting != "auto":
        return setting
    if device is None:
        from advisor.core.models import default_device

        device = default_device()
    if device.startswith("cuda"):
        import torch

        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    return "bfloat16" if (cpu_has_bf16() if bf16_cpu is None else bf16_cpu) else "float32"


class Embedder:
    spec: str
    dim: int
    dtype: str = "float32"  # the compute dtype of its vectors (they are returned as float32 either way)

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        raise NotImplementedError

    def offsets(self, text: str) -> list[tuple[int, int]]:
        """Token offsets in this embedder's tokenizer (chunk sizes are counted in these tokens)."""
        raise NotImplementedError


def lower_words(text: str) -> list[str]:
    """The hashing embedder's default words: lower-cased runs of word characters."""
    return re.findall(r"\w+", text.lower())


@EMBEDDERS.register("hashing")
class HashingEmbedder(Embedder):
    """Words (and, with `bigrams`, word bigrams) hashed into `dim` signed buckets, L2-normalized (zero for a text
    without words). Deterministic; no model. `words` splits a text into the words hashed."""

    def __init__(
        self,
        spec: str = "hashing",
        dim: int = 256,
        words: Callable[[str], list[str]] = lower_words,
        bigrams: bool = True,
    ):
        self.spec = spec
        self.dim = dim
        self.words = words
        self.bigrams = bigrams

    def _vec(self, text: str) -> np.ndarray:
        words = self.words(text)
        v = np.zeros(self.dim, dtype=np.float32)
        for tok in words + ([a + " " + b for a, b in zip(words, words[1:])] if self.bigrams else []):
            h = int.from_bytes(hashlib.blake2b(tok.encode(), digest_size=8).digest(), "little")
            v[h % self.dim] += 1.0 if (h >> 63) == 0 else -1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def encode(self, texts, batch_size=64, progress=False):
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def offsets(self, text):
        return whitespace_offsets(text)


@EMBEDDERS.register("sentence-transformers")
class SentenceTransformerEmbedder(Embedder):
    def __init__(self, spec: str, dtype: str = "float32"):
        from advisor.core.models import default_device, resolve_model

        if dtype not in EMBED_DTYPES:
            raise ValueError(f"embedder dtype '{dtype}' is not one of {', '.join(EMBED_DTYPES)}")

        r = resolve_model(spec, "embedder")
        from sentence_transformers import SentenceTransformer

        try:
            self.model = SentenceTransformer(r.path, device=default_device(), trust_remote_code=False)
        except OSError as e:
            raise ModelUnavailable(
                f"embedder '{spec}' could not be loaded ({type(e).__name__}); pass a local sentence-transformers "
                "folder or the bundled 'all-minilm-l6-v2'"
            ) from None
        self.spec = spec
        self.dtype = dtype
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.tokenizer = self.model.tokenizer
        self.tokenizer.model_max_length = 10**9  # offsets of whole documents; chunking bounds the length

    def encode(self, texts, batch_size=64, progress=False):
        import contextlib

        import torch

        autocast = (
            torch.autocast(self.model.device.type, dtype=torch.bfloat16)
            if self.dtype == "bfloat16"
            else contextlib.nullcontext()
        )
        with autocast:
            v = self.model.encode(
                list(texts),
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=progress,
            )
        v = np.asarray(v, dtype=np.float32).reshape(len(texts), self.dim)
        if self.dtype != "float32":  # normalized in bfloat16: make the float32 vectors unit length again
            n = np.linalg.norm(v, axis=1, keepdims=True)
            v = np.divide(v, n, out=np.zeros_like(v), where=n > 0)
        return v

    def offsets(self, text):
        return tokenizer_offsets(self.tokenizer, text)


def tokenizer_offsets(tok, text: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of `text`'s tokens in a Hugging Face tokenizer, special tokens left out."""
    return [tuple(o) for o in tok(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]]


def load_embedder(spec: str, dtype: str = "float32") -> Embedder:
    """'hashing' (or 'hashing:DIM') is the test embedder (no model, so no compute dtype); anything else is a
    sentence-transformers spec, computing in `dtype` (float32 or bfloat16)."""
    if spec == "hashing" or spec.startswith("hashing:"):
        dim = int(spec.split(":", 1)[1]) if ":" in spec else 256
        return EMBEDDERS.get("hashing")(spec, dim)
    return EMBEDDERS.get("sentence-transformers")(spec, dtype)


def chunk_offsets_fn(spec: str) -> OffsetsFn:
    """The tokenizer chunk sizes are counted in: the embedder's own (without loading ST weights)."""
    if spec == "hashing" or spec.startswith("hashing:"):
        return whitespace_offsets
    from advisor.core.models import load_tokenizer

    tok = load_tokenizer(spec, "embedder")
    tok.model_max_length = 10**9

    def offsets(text: str) -> list[tuple[int, int]]:
        return tokenizer_offsets(tok, text)

    return offsets
