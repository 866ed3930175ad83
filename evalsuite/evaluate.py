"""Answer the eval questions with an arm, score every answer, and aggregate metrics with CIs.

    rows = answer_and_score(arm, items)              # one dict per question
    write_jsonl(run / "eval" / f"{arm.name}.jsonl", rows)
    metrics = aggregate(run / "eval", ["base", "rag"], probes, n_boot=1000, seed=0)

metrics.json (DESIGN.md contract):
    {"arms": {"<arm>": {"<metric>": {"value": float, "ci95": [lo, hi], "n": int}}},
     "paired": {"rag - base": {"<metric>": {"value", "ci95", "n", "p_value"}}}, ...}
"""

from __future__ import annotations

import time
from pathlib import Path

from advisor.core.answer import Answerer, cited_ranks, strip_citations
from advisor.core.artifacts import read_jsonl
from advisor.core.qa import QAItem
from evalsuite.metrics import ANSWER_METRICS, METRICS, RETRIEVAL_METRICS, Sample
from evalsuite.stats import paired_difference, summarize

# Differences reported with paired tests: what retrieval adds, what tuning adds, what tuning adds to RAG.
PAIRS = [("rag", "base"), ("tuned", "base"), ("tuned_rag", "rag"), ("tuned_rag", "tuned")]
PAIRED_METRICS = ["accuracy", "exact_match", "f1", "hallucination_rate", "abstention_rate"]
WEIGHTS_OF = {"base": "base", "rag": "base", "tuned": "tuned", "tuned_rag": "tuned"}


def answer_and_score(arm: Answerer, items: list[QAItem]) -> list[dict]:
    """Answer every question with `arm` and score the answers; one dict per question."""
    t0 = time.perf_counter()
    answers = arm.answer([it.question for it in items])
    wall = time.perf_counter() - t0
    rows = [{
        "id": it.id, "question": it.question, "answers": it.answers, "unanswerable": it.unanswerable,
        "source": it.source, "answer": a.text, "cited": cited_ranks(a.text),
        "contexts": [c.__dict__ for c in a.contexts], "latency_s": round(a.latency_s, 4),
        "prompt_tokens": a.prompt_tokens, "new_tokens": a.new_tokens, "arm_wall_s": round(wall, 3),
    } for it, a in zip(items, answers)]
    return score_rows(rows)


def score_rows(rows: list[dict]) -> list[dict]:
    """(Re)compute every metric of every row from its stored answer, so a metric change needs no new
    generation: the metrics stage rescores the saved answers each time it runs."""
    metrics = {name: METRICS.get(name)() for name in ANSWER_METRICS + RETRIEVAL_METRICS}
    for r in rows:
        sample = Sample(r["question"], r["answers"], strip_citations(r["answer"]), r["unanswerable"], r["source"],
                        [c["source"] for c in r["contexts"]])
        r["answer_scored"] = sample.prediction
        r["scores"] = {}
        for name, m in metrics.items():
            v = m.score(sample).value
            if v is not None:
                r["scores"][name] = v
    return rows


def _metric_values(rows: list[dict], name: str) -> dict[str, float]:
    return {r["id"]: r["scores"][name] for r in rows if name in r["scores"]}


def aggregate(eval_dir: Path, arms: list[str], probes: dict | None, n_boot: int, seed: int) -> dict:
    """metrics.json from eval/<arm>.jsonl and the probe results."""
    per_arm = {a: read_jsonl(eval_dir / f"{a}.jsonl") for a in arms}
    out: dict = {"arms": {}, "paired": {}, "bootstrap": {"resamples": n_boot, "seed": seed, "method": "percentile"}}
    for arm, rows in per_arm.items():
        m = {}
        for name in ANSWER_METRICS + RETRIEVAL_METRICS:
            vals = list(_metric_values(rows, name).values())
            if vals:
                m[name] = summarize(vals, n_boot, seed)
        lat = [r["latency_s"] for r in rows]
        m["latency_p50_s"] = summarize(lat, n_boot, seed, q=50)
        m["latency_p95_s"] = summarize(lat, n_boot, seed, q=95)
        m["prompt_tokens"] = summarize([r["prompt_tokens"] for r in rows], n_boot, seed)
        if probes:
            acc = [v for s in probes["sets"].values() for v in s[WEIGHTS_OF[arm]]["acc"]]
            m["probe_accuracy"] = summarize(acc, n_boot, seed)
            if WEIGHTS_OF[arm] == "tuned":
                base = [v for s in probes["sets"].values() for v in s["base"]["acc"]]
                d = paired_difference(acc, base, n_boot, seed)
                m["forgetting"] = {k: d[k] for k in ("value", "ci95", "n", "p_value")}
        out["arms"][arm] = m
    for a, b in PAIRS:
        if a in per_arm and b in per_arm:
            diffs = {}
            for name in PAIRED_METRICS:
                va, vb = _metric_values(per_arm[a], name), _metric_values(per_arm[b], name)
                ids = [i for i in va if i in vb]
                if ids:
                    diffs[name] = paired_difference([va[i] for i in ids], [vb[i] for i in ids], n_boot, seed)
            out["paired"][f"{a} - {b}"] = diffs
    if probes:
        out["probes"] = {
            name: {w: {k: summarize(v, n_boot, seed) for k, v in res.items()} for w, res in s.items()}
            for name, s in probes["sets"].items()
        }
    return out
