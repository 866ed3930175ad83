"""Retrieval quality against gold sources: recall@k and MRR of an index on a QA set.

The eval stage scores the contexts each retrieval arm actually put in its prompts (evalsuite's
recall_at_k / mrr); this scores the index alone at any k, for tuning chunking and index settings.

    python -m retrieval.evaluate RUN_OR_INDEX_DIR QA.jsonl [-k 5] [--hybrid|--dense]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from advisor.core.qa import QAItem
from advisor.core.ranking import gold_rank, recall_hit, reciprocal_rank


def retrieval_scores(retriever, items: list[QAItem], k: int = 5) -> dict:
    """recall@k (share of questions whose gold source is among the top-k chunks' sources) and MRR
    (mean of 1 / rank of the first chunk from the gold source, 0 when absent from the top k), over the
    answerable questions that name a source; per-question ranks in 'rows'."""
    scored = [it for it in items if it.source and not it.unanswerable]
    hits = retriever.search([it.question for it in scored], k) if scored else []
    rows = []
    for it, row in zip(scored, hits):
        retrieved = [h.source for h in row]
        rows.append({"id": it.id, "source": it.source, "rank": gold_rank(retrieved, it.source), "retrieved": retrieved})
    n = len(rows)
    return {
        "k": k,
        "n": n,
        f"recall_at_{k}": sum(recall_hit(r["retrieved"], r["source"]) for r in rows) / n if n else 0.0,
        "mrr": sum(reciprocal_rank(r["retrieved"], r["source"]) for r in rows) / n if n else 0.0,
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    from advisor.core.errors import AdvisorError
    from advisor.core.qa import load_qa
    from retrieval.index import Retriever

    p = argparse.ArgumentParser(prog="python -m retrieval.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("index_dir", type=Path)
    p.add_argument("qa", type=Path)
    p.add_argument("-k", type=int, default=5)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--hybrid", dest="hybrid", action="store_true", default=None)
    mode.add_argument("--dense", dest="hybrid", action="store_false")
    args = p.parse_args(argv)
    try:
        s = retrieval_scores(Retriever(args.index_dir, hybrid=args.hybrid), load_qa(args.qa), args.k)
    except AdvisorError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({key: v for key, v in s.items() if key != "rows"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
