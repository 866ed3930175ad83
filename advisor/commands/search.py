"""advisor search: ranked chunks with their sources from an index built by `advisor index` or a run.

advisor search my-index "how many bicycles fit on the ferry?" -k 5
"""

from __future__ import annotations

import textwrap
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser(
        "search",
        help="print the top-k chunks for a query, with sources (from advisor index or a run directory)",
        description="Search the FAISS index in DIR (an `advisor index --out` folder, a run directory, or an index/ "
        "folder) and print the ranked chunks with their source, character offsets and score.",
    )
    p.add_argument("dir", metavar="DIR", type=Path, help="folder holding index/ (or the index folder itself)")
    p.add_argument("query", metavar="QUERY", help="the question or keywords")
    p.add_argument("-k", type=int, default=5, help="number of chunks to print (default 5)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--hybrid",
        dest="hybrid",
        action="store_true",
        default=None,
        help="fuse BM25 and dense results (the index must be built with --hybrid)",
    )
    mode.add_argument("--dense", dest="hybrid", action="store_false", help="dense results only")
    p.add_argument("--width", type=int, default=300, help="characters of each chunk to print (0 = all)")
    p.set_defaults(func=cmd_search)


def cmd_search(args) -> int:
    from advisor.core.errors import AdvisorError
    from retrieval.index import Retriever

    if args.k < 1:
        raise AdvisorError(f"-k {args.k}: ask for at least 1 chunk")
    if not args.query.strip():
        raise AdvisorError("the query is empty; pass the question in quotes")
    retriever = Retriever(args.dir, hybrid=args.hybrid)
    [hits] = retriever.search([args.query], args.k)
    by_id = {m["id"]: m for m in retriever.meta}
    for h in hits:
        m = by_id[h.chunk_id]
        where = f"{h.source} [{m['start']}:{m['end']}]" if "start" in m else h.source
        text = " ".join(h.text.split())
        if args.width and len(text) > args.width:
            text = text[: args.width - 3] + "..."
        print(f"{h.rank}. {h.score:.4f}  {where}")
        print(textwrap.indent(textwrap.fill(text, 100), "   "))
    return 0
