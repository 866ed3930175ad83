"""Benchmark: the extractive evaluation-set generator on the bundled sample and on corpora 10x and 30x its size.

    .venv/bin/python benchmarks/bench_qagen.py [--scales 1,10,30] [--embedder all-minilm-l6-v2] [--n 150]

A larger corpus is the sample repeated, each copy with its proper names renamed (every capitalised word that the
corpus never writes in lower case gets a made-up replacement per copy) and its numbers shifted, so copies are
different organisations with different facts, not duplicates. Prints, per scale: documents, words, candidate
facts, questions made, seconds (reading + chunking + generation, the embedder's load excluded) and the ratio to
the 1x time measured in the same run. The target is under 120 s at 30x on 2 cores.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from advisor.pipeline import SAMPLE_CORPUS  # noqa: E402
from evalsuite.embed import TextEmbedder  # noqa: E402
from evalsuite.qagen.build import GenSettings, generate_qa_set  # noqa: E402
from evalsuite.qagen.stage import corpus_view  # noqa: E402

SYL = ["ka", "lo", "mer", "tan", "vi", "dra", "sel", "ron", "bel", "quin", "fa", "nor", "ost", "ul", "zem", "ha"]


def scaled_corpus(out: Path, copies: int, seed: int = 0) -> Path:
    """The sample corpus `copies` times, proper names renamed and numbers shifted in every copy but the first."""
    docs = {p.name: p.read_text(encoding="utf-8") for p in sorted(SAMPLE_CORPUS.glob("*.md"))}
    text = "\n".join(docs.values())
    names = sorted({w for w in re.findall(r"\b[A-Z][a-z]{2,}\b", text) if not re.search(rf"\b{w.lower()}\b", text)})
    rng = random.Random(seed)
    for k in range(copies):
        sub = {w: "".join(rng.choice(SYL) for _ in range(3)).capitalize() for w in names} if k else {}
        shift = k
        for name, body in docs.items():
            if sub:
                # The lambdas run inside re.sub, within this iteration: the loop variables are the current ones.
                body = re.sub(r"\b[A-Z][a-z]{2,}\b", lambda m: sub.get(m.group(0), m.group(0)), body)  # noqa: B023
                body = re.sub(r"(?<![\d.,])(\d{2,3})(?![\d.,:])", lambda m: str(int(m.group(1)) + shift), body)  # noqa: B023
            (out / f"copy{k:02d}-{name}").write_text(body, encoding="utf-8")
    return out


def scaled_qa(src: Path, out: Path) -> Path:
    """A QA file of the sample for its scaled corpus: each item's `source` names the first copy, which keeps the
    sample's own names and numbers (copy00-<file>), so the questions still hold for it."""
    import json

    lines = []
    for line in src.read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            if item.get("source"):
                item["source"] = f"copy00-{item['source']}"
            lines.append(json.dumps(item))
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def measure(corpus: Path, n: int, embedder: TextEmbedder | None) -> dict:
    """Reading, chunking and generating, timed together (the embedder is loaded before)."""
    t0 = time.perf_counter()
    view = corpus_view(corpus)
    qs = generate_qa_set(view.documents, view.chunks, GenSettings(n=n), "extractive", None, embedder)
    s = time.perf_counter() - t0
    cand = sum(c["candidate_facts"] for c in qs.report["documents"]["per_document"].values())
    return {
        "docs": len(view.documents),
        "words": sum(len(t.split()) for t in view.documents.values()),
        "candidates": cand,
        "eval": len(qs.eval),
        "train": len(qs.train),
        "seconds": s,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scales", default="1,10,30")
    ap.add_argument("--embedder", default="all-minilm-l6-v2", help="'none' to skip near-duplicate removal")
    ap.add_argument("--n", type=int, default=150)
    args = ap.parse_args(argv)
    embedder = None
    if args.embedder != "none":
        embedder = TextEmbedder(args.embedder)
        embedder.encode(["warm up"])
    print("| scale | documents | words | candidate facts | eval questions | train questions | seconds | vs 1x |")
    print("|---|---|---|---|---|---|---|---|")
    base = None
    for scale in (int(s) for s in args.scales.split(",")):
        with tempfile.TemporaryDirectory() as d:
            r = measure(scaled_corpus(Path(d), scale), args.n, embedder)
        base = base or r["seconds"]
        print(
            f"| {scale}x | {r['docs']} | {r['words']:,} | {r['candidates']:,} | {r['eval']} | {r['train']} | "
            f"{r['seconds']:.1f} | {r['seconds'] / base:.1f}x |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
