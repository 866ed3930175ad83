"""Answer the eval questions with an arm, score every answer, and aggregate metrics with CIs.

    rows = answer_and_score(arm, items)              # one dict per question
    write_jsonl(run / "eval" / f"{arm.name}.jsonl", rows)
    metrics = aggregate(run / "eval", cfg.eval.arms, probes, n_boot=1000, seed=0)

metrics.json (docs/architecture.md, 'Contracts'):
    {"arms": {"<arm>": {"<metric>": {"value": float, "ci95": [lo, hi], "n": int},
                        "by_knowledge": {"known" | "maybe_known" | "unknown": {"n", "accuracy", ...}},
                        "by_wording": {"close" | "new": {"n", "accuracy", ...}}}},
     "paired": {"rag - base": {"<metric>": {"value", "ci95", "n", "p_value"}}},
     "collapse": {"<arm>": {"collapsed", "top_answer", "top_share", "empty_share", "n", "reason"}},
     "knowledge": {"samples", "temperature", "counts", "method"},
     "wording": {"threshold", "ngram", "training_questions", "counts", "method", "examples"},
     "probes": {...}, "judge": {...}, "bootstrap": {"resamples", "seed", "method"}, "seeds": {...}}
"""

from __future__ import annotations

import time
from pathlib import Path

from advisor.core.answer import Answerer, cited_ranks
from advisor.core.arms import ARM, BASE_WEIGHTS, PAIRS, TUNED_WEIGHTS
from advisor.core.artifacts import peak_rss_mb, read_jsonl, reset_peak_rss
from advisor.core.qa import QAItem
from evalsuite.collapse import detect_collapse
from evalsuite.knowledge import by_knowledge, knowledge_summary
from evalsuite.metrics import (
    ANSWER_METRICS,
    METRIC_INFO,
    METRICS,
    PAIRED_METRICS,
    RETRIEVAL_METRICS,
    SCORED,
    Sample,
    row_scored_answer,
)
from evalsuite.stats import cohen_kappa, paired_difference, summarize, summarize_by
from evalsuite.wording import by_wording, wording_summary

# Differences reported with paired tests: the metrics declared `paired`, for the arm table's PAIRS (each arm against
# the arms in its compared_with: what retrieval adds, what tuning adds, what tuning adds to RAG, what retrieval adds
# to the tuned model).


def answer_and_score(arm: Answerer, items: list[QAItem], embedder=None, confidence: float = 0.5) -> list[dict]:
    """Answer every question with `arm` and score the answers; one dict per question."""
    _peak_memory_mb(reset=True)
    t0 = time.perf_counter()
    answers = arm.answer([it.question for it in items])
    wall = time.perf_counter() - t0
    # This arm's peak (resident memory of the process on CPU, allocated GPU memory on CUDA) while it answered.
    peak = _peak_memory_mb()
    rows = [
        {
            "id": it.id,
            "question": it.question,
            "answers": it.answers,
            "unanswerable": it.unanswerable,
            "source": it.source,
            "answer": a.text,
            "cited": cited_ranks(a.text),
            "contexts": [c.__dict__ for c in a.contexts],
            "latency_s": round(a.latency_s, 4),
            "prompt_tokens": a.prompt_tokens,
            "new_tokens": a.new_tokens,
            "confidence": None if getattr(a, "confidence", None) is None else round(a.confidence, 6),
            "gated": bool(getattr(a, "gated", False)),  # the retrieval gate's abstention (retrieval/gate.py)
            "arm_wall_s": round(wall, 3),
            "arm_peak_memory_mb": round(peak, 1),
        }
        for it, a in zip(items, answers)
    ]
    return score_rows(rows, embedder, confidence)


def _peak_memory_mb(reset: bool = False) -> float:
    try:
        import torch

        if torch.cuda.is_available():
            if reset:
                torch.cuda.reset_peak_memory_stats()
            return torch.cuda.max_memory_allocated() / 2**20
    except ImportError:
        pass
    if reset:
        reset_peak_rss()
    return peak_rss_mb()


def score_rows(rows: list[dict], embedder=None, confidence: float = 0.5) -> list[dict]:
    """(Re)compute every metric of every row from its stored answer, so a metric change needs no new
    generation: the metrics stage rescores the saved answers each time it runs. `embedder` (an
    evalsuite.embed.TextEmbedder) enables semantic similarity; `confidence` is the token probability from
    which a wrong answer counts as wrong-and-confident."""
    from evalsuite.metrics import WrongAndConfident

    metrics = {name: METRICS.get(name)() for name in ANSWER_METRICS + RETRIEVAL_METRICS}
    metrics["wrong_and_confident_rate"] = WrongAndConfident(confidence)
    scored = [row_scored_answer(r) for r in rows]  # the answer text each row's metrics score
    if embedder is not None:
        from evalsuite.metrics import SemanticSimilarity

        metrics["semantic_similarity"] = SemanticSimilarity(embedder)
        # One batched encode for every text the metric will look at; later calls hit the cache.
        embedder.encode([t for r, a in zip(rows, scored) if not r["unanswerable"] for t in [a, *r["answers"]]])
    for r, answer in zip(rows, scored):
        sample = Sample(
            r["question"],
            r["answers"],
            answer,
            r["unanswerable"],
            r["source"],
            [c["source"] for c in r["contexts"]],
            [c["text"] for c in r["contexts"]],
            r.get("confidence"),
            r["answer"],
        )
        r["answer_scored"] = sample.prediction
        r["scores"], r["reasons"] = {}, {}
        for name, m in metrics.items():
            s = m.score(sample)  # None where the metric does not apply (its applies_to)
            if s.value is not None:
                r["scores"][name] = s.value
                r["reasons"][name] = s.reason
    return rows


def _metric_values(rows: list[dict], name: str) -> dict[str, float]:
    return {r["id"]: r["scores"][name] for r in rows if name in r["scores"]}


def _has_confidence(rows: list[dict]) -> bool:
    return all(r.get("confidence") is not None for r in rows if not r["unanswerable"] and r["new_tokens"])


def _probe_values(probes: dict, weights: str, key: str = "acc") -> list[float]:
    return [v for s in probes["sets"].values() for v in s[weights][key]]


def _arm_metrics(
    arm: str,
    rows: list[dict],
    probes: dict | None,
    n_boot: int,
    seed: int,
    knowledge: dict | None,
    wording: dict | None,
) -> dict:
    """metrics.json's arms.<arm>: every scored metric, latency, prompt tokens, peak memory, the judge's agreement,
    the probes and forgetting of the weights it answers with, and the knowledge and wording breakdowns."""
    m = {}
    for name in SCORED:
        vals = list(_metric_values(rows, name).values())
        if vals:
            m[name] = summarize_by(vals, METRICS.get(name).aggregation, n_boot, seed)
    lat = [r["latency_s"] for r in rows]
    for name in ("latency_p50_s", "latency_p95_s"):
        m[name] = summarize_by(lat, METRIC_INFO[name].aggregation, n_boot, seed)
    m["prompt_tokens"] = summarize_by([r["prompt_tokens"] for r in rows], "mean", n_boot, seed)
    peaks = [r["arm_peak_memory_mb"] for r in rows if r.get("arm_peak_memory_mb") is not None]
    if peaks:  # one measurement per arm (aggregation "max"): the CI is the point
        m["peak_memory_mb"] = summarize_by(peaks, METRIC_INFO["peak_memory_mb"].aggregation)
    judged = [r for r in rows if "judge_correct" in r]
    if judged:
        m["judge_accuracy"] = summarize([r["judge_correct"] for r in judged], n_boot, seed)
        pairs = [(r["judge_correct"], r["scores"]["accuracy"]) for r in judged if "accuracy" in r["scores"]]
        m["judge_kappa"] = cohen_kappa([p[0] for p in pairs], [p[1] for p in pairs], n_boot, seed)
    w = ARM[arm].weights  # the probes scored the weights it answers with
    if probes and probes["sets"] and all(w in s for s in probes["sets"].values()):
        m["probe_accuracy"] = summarize(_probe_values(probes, w), n_boot, seed)
        m["probe_accuracy_norm"] = summarize(_probe_values(probes, w, "acc_norm"), n_boot, seed)
        if w == TUNED_WEIGHTS:
            d = paired_difference(
                _probe_values(probes, TUNED_WEIGHTS), _probe_values(probes, BASE_WEIGHTS), n_boot, seed
            )
            m["forgetting"] = {k: d[k] for k in ("value", "ci95", "n", "p_value")}
    ppl = (probes or {}).get("perplexity") or {}
    if w in ppl:
        m["perplexity"] = summarize(ppl[w], n_boot, seed)
        if w == TUNED_WEIGHTS and BASE_WEIGHTS in ppl:
            m["perplexity_change"] = paired_difference(ppl[TUNED_WEIGHTS], ppl[BASE_WEIGHTS], n_boot, seed)
    if knowledge:
        m["by_knowledge"] = by_knowledge(rows, knowledge["rows"], n_boot, seed)
    if wording:
        m["by_wording"] = by_wording(rows, wording["rows"], n_boot, seed)
    return m


def aggregate(
    eval_dir: Path,
    arms: list[str],
    probes: dict | None,
    n_boot: int,
    seed: int,
    knowledge: dict | None = None,
    wording: dict | None = None,
) -> dict:
    """metrics.json from eval/<arm>.jsonl, the probe results and the judge's verdicts (when present).
    `knowledge` ({"samples", "temperature", "seed", "rows"}: the rows of eval/knowledge.jsonl and how they were
    sampled) adds the known / maybe_known / unknown breakdown of every arm; `wording` ({"rows",
    "training_questions"}: evalsuite.wording.wording_rows and how many training questions they were compared
    with) the close / new breakdown."""
    per_arm = {a: read_jsonl(eval_dir / f"{a}.jsonl") for a in arms}
    out: dict = {
        "arms": {},
        "paired": {},
        "bootstrap": {"resamples": n_boot, "seed": seed, "method": "percentile"},
        "seeds": {"bootstrap": seed, "generation": "greedy decoding (deterministic, no sampling seed)"},
    }
    out["collapse"] = {arm: detect_collapse([r["answer"] for r in rows]) for arm, rows in per_arm.items()}
    if knowledge:
        out["knowledge"] = knowledge_summary(knowledge["rows"], knowledge["samples"], knowledge["temperature"])
        out["seeds"]["known_samples"] = knowledge["seed"]
    if wording:
        out["wording"] = wording_summary(wording["rows"], wording["training_questions"])
    for arm, rows in per_arm.items():
        out["arms"][arm] = _arm_metrics(arm, rows, probes, n_boot, seed, knowledge, wording)
    for a, b in PAIRS:
        if a in per_arm and b in per_arm:
            diffs = {}
            for name in PAIRED_METRICS:
                if name == "wrong_and_confident_rate" and not (
                    _has_confidence(per_arm[a]) == _has_confidence(per_arm[b])
                ):
                    continue  # token probability on one side, hedge words on the other: not the same measurement
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
        if probes.get("perplexity"):
            out["perplexity"] = {w: summarize(v, n_boot, seed) for w, v in probes["perplexity"].items()}
            out["perplexity_text"] = probes.get("perplexity_text", "")
    return out
