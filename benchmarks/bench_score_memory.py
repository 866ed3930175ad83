"""Memory and time of the forgetting probe's perplexity scoring under the scoring passes' logits budget
(advisor.core.lm.SCORE_LOGITS_MB) against one pass per `batch_size` rows whatever the vocabulary (the rule before
2026-12-05), each in a fresh process, alone on the machine (docs/architecture.md, 'Peak memory'):

    .venv/bin/python benchmarks/bench_score_memory.py                      # SmolLM2-135M (bundled), ~1 min
    .venv/bin/python benchmarks/bench_score_memory.py gemma3-270m          # after `make gemma`, ~2 min

Printed per variant: the resident memory the scoring added to the loaded model, its wall time, the mean
perplexity (the same either way), and the ratios to the unbounded variant measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

CHILD = "--child"


def child(model: str, budget_mb: float, passages: int) -> None:
    from advisor.core import lm as lm_mod
    from advisor.core.artifacts import peak_rss_mb, reset_peak_rss, rss_mb
    from evalsuite.probes import general_text

    lm = lm_mod.LM.load(model, quantization="nf4")
    texts = general_text(passages)
    lm.perplexity(texts[:2])  # warm-up
    lm_mod.SCORE_LOGITS_MB = budget_mb
    reset_peak_rss()
    rss0 = rss_mb()
    t0 = time.perf_counter()
    ppl = lm.perplexity(texts)
    wall = time.perf_counter() - t0
    print(json.dumps({"added_mb": peak_rss_mb() - rss0, "wall_s": wall, "mean_ppl": sum(ppl) / len(ppl)}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?", default="smollm2-135m-instruct")
    ap.add_argument("--passages", type=int, default=40, help="perplexity passages (eval.perplexity_texts: 40)")
    args = ap.parse_args()
    from advisor.core.lm import SCORE_LOGITS_MB

    rows = []
    for name, budget in (("one pass per 8 rows (before)", 1e9), (f"{SCORE_LOGITS_MB} MB of logits a pass", None)):
        cmd = [sys.executable, __file__, CHILD, args.model, str(budget or SCORE_LOGITS_MB), str(args.passages)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        rows.append((name, json.loads(out)))
    base = rows[0][1]
    print(f"{args.model}, {args.passages} perplexity passages of up to 256 tokens")
    print(f"{'variant':<32} {'added MB':>9} {'x':>5} {'wall s':>7} {'x':>5} {'mean ppl':>9}")
    for name, r in rows:
        mb, s = r["added_mb"], r["wall_s"]
        print(
            f"{name:<32} {mb:>9.0f} {mb / base['added_mb']:>5.2f} {s:>7.1f} {s / base['wall_s']:>5.2f} {r['mean_ppl']:>9.4f}"
        )
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == CHILD:
        child(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit(main())
