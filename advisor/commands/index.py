"""advisor index: ingest a corpus and build (or incrementally update) its FAISS index in one folder.

advisor index docs/ --out my-index            # DIR/chunks.jsonl, DIR/ingest_report.json, DIR/index/
advisor index docs/ retrieval.index_kind=hnsw chunking.size=128 --out my-index --hybrid
"""

from __future__ import annotations

import argparse
from pathlib import Path

from advisor.core.corpus import SUPPORTED_LIST


def add_parser(sub) -> None:
    p = sub.add_parser(
        "index",
        help="ingest a corpus and build its FAISS index (incremental: only changed chunks are embedded)",
        description=f"Read a folder or file of documents ({SUPPORTED_LIST}; encodings detected; "
        "binary, empty, corrupt and unreadable files skipped and listed in DIR/ingest_report.json), chunk it by the "
        "embedder's tokens, and build the FAISS index in DIR/index. Run it again on a changed corpus: only new or "
        "changed chunks are embedded and removed ones are dropped.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  advisor index docs/ --out my-index\n"
        "  advisor index notes.jsonl corpus.text_field=body chunking.size=128 --out my-index --hybrid\n"
        '  advisor search my-index "how many bicycles fit on the ferry?" -k 5',
    )
    p.add_argument("corpus", metavar="CORPUS", help="folder or file of documents")
    p.add_argument(
        "--out",
        metavar="DIR",
        required=True,
        help="folder for chunks, report and index/ (new, empty, or one made by advisor index or run)",
    )
    p.add_argument(
        "--force", action="store_true", help="write into an --out folder holding other files (never overwriting them)"
    )
    p.add_argument(
        "--embedder", metavar="SPEC", help="sentence embedder: bundled name (all-minilm-l6-v2), folder or Hub id"
    )
    p.add_argument(
        "--kind", choices=["auto", "flat", "hnsw", "ivfpq"], help="FAISS index kind (default: auto, by size)"
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--hybrid",
        dest="hybrid",
        action="store_true",
        default=None,
        help="also build a BM25 index; search fuses both by reciprocal rank (the default)",
    )
    mode.add_argument("--dense", dest="hybrid", action="store_false", help="dense index only, no BM25")
    p.add_argument(
        "--config", metavar="FILE", help="a preset name or YAML file (its corpus/chunking/retrieval sections)"
    )
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="dotted config overrides, right after CORPUS, e.g. chunking.size=128 retrieval.hnsw_m=48",
    )
    p.set_defaults(func=cmd_index)


def cmd_index(args) -> int:
    from advisor.core.config import load_config, warn_ignored_settings
    from advisor.core.corpus import check_corpus
    from advisor.core.errors import AdvisorError
    from advisor.core.rundirs import check_out, run_lock
    from advisor.pipeline import absolute_path, check_spec, command_line

    extra: dict = {}
    if args.embedder:
        extra.setdefault("retrieval", {})["embedder"] = args.embedder
    if args.kind:
        extra.setdefault("retrieval", {})["index_kind"] = args.kind
    if args.hybrid is not None:
        extra.setdefault("retrieval", {})["hybrid"] = args.hybrid
    if not args.corpus.strip() or not args.out.strip():
        raise AdvisorError(
            "CORPUS and --out must not be empty; pass a folder or file of documents and an output folder"
        )
    cfg = load_config(args.config, args.overrides, extra)
    r, out = cfg.retrieval, Path(args.out)
    # Preflight: every input before anything is written.
    corpus = Path(absolute_path(args.corpus, "corpus path"))
    check_corpus(corpus, cfg.corpus.text_field)
    check_spec("retrieval.embedder", r.embedder, "embedder")
    check_out(out, args.force, kind="index")
    with run_lock(out, command_line()):
        warn_ignored_settings(cfg)
        return _build(corpus, out, cfg)


def _build(corpus: Path, out: Path, cfg) -> int:
    from advisor.core.corpus import ingest_configured
    from advisor.pipeline import say
    from retrieval.index import build_index

    r = cfg.retrieval
    rep = ingest_configured(corpus, out, cfg, progress=True)
    say(
        f"ingest: {len(rep['read'])} files read -> {rep['n_chunks']} chunks; {len(rep['skipped'])} skipped"
        + (" (see ingest_report.json)" if rep["skipped"] else "")
    )
    for s in rep["skipped"][:10]:
        say(f"  skipped {s['path']}: {s['why']}")
    c = build_index(out / "chunks.jsonl", out / "index", r)
    say(
        f"index: {c['kind']}{' + bm25' if c['hybrid'] else ''} over {c['n_vectors']} chunks; {c['embedded']} embedded, "
        f"{c['reused']} reused, {c['removed']} removed, {c['build_s']} s"
    )
    print(out)
    return 0
