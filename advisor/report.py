"""report.md: the verdict, the evidence with CIs, the flip points, costs and stage times of one run.

    write_report(Path("runs/x"))     # reads the run directory only
"""

from __future__ import annotations

import json
from pathlib import Path

from advisor.core.artifacts import atomic_write_text, read_jsonl
from advisor.core.config import ARMS

ARM_LABEL = {"base": "base (closed book)", "rag": "RAG", "tuned": "tuned (QLoRA)", "tuned_rag": "tuned + RAG"}


def _ci(m: dict | None, pct: bool = True) -> str:
    if not m or m.get("value") is None:
        return "–"
    if pct:
        return f"{100 * m['value']:.1f} [{100 * m['ci95'][0]:.1f}, {100 * m['ci95'][1]:.1f}]"
    return f"{m['value']:.3f} [{m['ci95'][0]:.3f}, {m['ci95'][1]:.3f}]"


def _read(p: Path):
    return json.loads(p.read_text()) if p.exists() else None


def build_report(run_dir: Path) -> str:
    run_dir = Path(run_dir)
    metrics = _read(run_dir / "eval" / "metrics.json") or {"arms": {}, "paired": {}}
    rec = _read(run_dir / "recommendation.json")
    manifest = _read(run_dir / "manifest.json") or {}
    leak = _read(run_dir / "sft" / "leakage.json")
    training = _read(run_dir / "adapter" / "training.json")
    index_cfg = _read(run_dir / "index" / "index_config.json")
    arms = [a for a in ARMS if a in metrics["arms"]]
    L: list[str] = [f"# RAG vs fine-tune report: `{run_dir.name}`", ""]

    if rec:
        L += [f"## Verdict: **{rec['verdict']}**", ""]
        L += [f"Weights preset `{rec['preset']}`; facts: " + ", ".join(f"{k}={v}" for k, v in rec["facts"].items()), ""]
        L += ["Why:", ""] + [f"- {r}" for r in rec["reasons"]] + [""]
        L += ["| option | utility | " + " | ".join(rec["weights"]) + " |",
              "|---|---|" + "---|" * len(rec["weights"])]
        for o, u in sorted(rec["utilities"].items(), key=lambda kv: -kv[1]):
            L.append(f"| {o} | {u:.3f} | " + " | ".join(f"{rec['scores'][o][c]:.2f}" for c in rec["weights"]) + " |")
        L += ["", "Criterion scores are in [0, 1], higher is better: accuracy = share correct, hallucination = "
              "1 − hallucination rate, forgetting = 1 + 5 × probe-accuracy change (capped), costs relative to the "
              "cheapest option; see advisor/recommend.py.", "",
              "Weights: " + ", ".join(f"{k} {v:.2f}" for k, v in rec["weights"].items()), ""]
        sens = rec["sensitivity"]
        L += ["### What would flip the advice", ""]
        flips = [(c, f) for c, f in sens["flip_points"].items() if f]
        if flips:
            for c, f in sorted(flips, key=lambda cf: abs(cf[1]["change"])):
                L.append(f"- weight of **{c}** from {f['weight_now']:.2f} to {f['flips_at']:.2f} "
                         f"(others rescaled) → **{f['new_verdict']}**")
        else:
            L.append("- no single weight change flips the verdict")
        L += ["", f"Win share under {sens['draws']:,} random weight vectors ({sens['weight_distribution']}): "
              + ", ".join(f"{o} {100 * s:.1f}%" for o, s in sens["win_share"].items()), ""]

    L += ["## Evidence (95% bootstrap CI, n questions)", ""]
    rows = [("accuracy (correct answers) %", "accuracy", True), ("exact match %", "exact_match", True), ("token F1 %", "f1", True), ("answer contained %", "containment", True),
            ("hallucination rate %", "hallucination_rate", True), ("abstention on unanswerable %", "abstention_rate", True),
            ("false abstention %", "false_abstention_rate", True), ("recall@k %", "recall_at_k", True),
            ("MRR", "mrr", False), ("probe accuracy %", "probe_accuracy", True), ("forgetting (pts)", "forgetting", True),
            ("latency p50 s", "latency_p50_s", False), ("latency p95 s", "latency_p95_s", False),
            ("prompt tokens", "prompt_tokens", False)]
    L += ["| metric | " + " | ".join(ARM_LABEL[a] for a in arms) + " |", "|---|" + "---|" * len(arms)]
    for label, key, pct in rows:
        if any(key in metrics["arms"][a] for a in arms):
            L.append(f"| {label} | " + " | ".join(_ci(metrics["arms"][a].get(key), pct) for a in arms) + " |")
    ns = {a: metrics["arms"][a].get("accuracy", {}).get("n") for a in arms}
    nu = {a: metrics["arms"][a].get("abstention_rate", {}).get("n") for a in arms}
    L += ["", f"Answerable questions: {next(iter(ns.values()), 0)}; unanswerable: {next(iter(nu.values()), 0)}.", ""]
    if metrics.get("paired"):
        L += ["### Paired differences (same questions)", "", "| comparison | metric | difference (pts) | 95% CI | p |",
              "|---|---|---|---|---|"]
        for pair, diffs in metrics["paired"].items():
            for m, d in diffs.items():
                L.append(f"| {pair} | {m} | {100 * d['value']:+.1f} | [{100 * d['ci95'][0]:+.1f}, "
                         f"{100 * d['ci95'][1]:+.1f}] | {d['p_value']:.3f} |")
        L.append("")

    L += ["## Build and cost", ""]
    stages = manifest.get("stages", {})
    L += ["| stage | status | wall s | peak RSS MB |", "|---|---|---|---|"]
    for name, st in stages.items():
        L.append(f"| {name} | {st.get('status')} | {st.get('wall_s', '–')} | {st.get('peak_rss_mb', '–')} |")
    if manifest.get("wall_s") is not None:
        L.append(f"\nTotal wall time of the last `advisor run`: {manifest['wall_s']:.0f} s.")
    L.append("")
    if index_cfg:
        L.append(f"- Index: FAISS {index_cfg['kind']}, {index_cfg['n_vectors']} chunks, embedder `{index_cfg['embedder']}`, "
                 f"{index_cfg['size_bytes'] / 1e6:.2f} MB, built in {index_cfg['build_s']:.1f} s.")
    if training:
        L.append(f"- Adapter: {training['method']} on `{training['base_model']}` ({training['quantization']}), "
                 f"r={training['lora']['r']}, {training['steps']} steps, {training['tokens_seen']:,} tokens at "
                 f"{training['tokens_per_s']:.0f} tokens/s, final train loss {training['final_train_loss']}, "
                 f"val loss {training['final_val_loss']}, {training['trainable_params']:,} trainable parameters.")
    if leak:
        L.append(f"- Leakage: no eval question is trained on; highest word-4-gram overlap of an eval question with a "
                 f"training question {100 * leak['max_overlap_with_training_questions']:.0f}% (with corpus text, "
                 f"expected since the facts are there: {100 * leak['max_overlap_with_corpus_text']:.0f}%).")
    L.append("")

    L += ["## Example answers", ""]
    examples = {a: read_jsonl(run_dir / "eval" / f"{a}.jsonl") for a in arms if (run_dir / "eval" / f"{a}.jsonl").exists()}
    if examples:
        first = next(iter(examples.values()))
        picks = [r for r in first if not r["unanswerable"]][:3] + [r for r in first if r["unanswerable"]][:1]
        for p in picks:
            gold = "(unanswerable)" if p["unanswerable"] else " / ".join(p["answers"])
            L += [f"**{p['question']}** — gold: {gold}", ""]
            for a, rs in examples.items():
                r = next((x for x in rs if x["id"] == p["id"]), None)
                if r:
                    L.append(f"- {ARM_LABEL[a]}: {r['answer'] or '(empty)'}")
            L.append("")
    return "\n".join(L) + "\n"


def write_report(run_dir: Path) -> Path:
    out = Path(run_dir) / "report.md"
    atomic_write_text(out, build_report(run_dir))
    return out
