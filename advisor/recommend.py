"""The advice: a transparent weighted utility over measured criteria and stated situation facts.

Options map to arms: rag -> `rag`, fine-tune -> `tuned`, both -> `tuned_rag`. Each criterion is
scored in [0, 1] per option (table below), the utility is the weighted mean, and the verdict is the
best utility, unless the best option is not the cheapest and neither accuracy nor the
hallucination rate differs significantly (paired bootstrap CI includes 0): then the cheaper option
wins and the advice says so. Sensitivity: the smallest change of each weight that flips the verdict,
and each option's win share under 10,000 random weight vectors (Dirichlet(1, ..., 1)).

| criterion     | score per option                                                                 |
|---------------|----------------------------------------------------------------------------------|
| accuracy      | share of answerable questions answered correctly (gold answer contained or F1>=.5)|
| hallucination | 1 - hallucination rate                                                           |
| forgetting    | 1 + 5 x (probe-accuracy drop, tuned - base), clipped to [0, 1]; rag scores 1      |
| build_cost    | 1 - log10(build time / cheapest build time) / 3, clipped: each 10x costs 1/3      |
| serve_cost    | lowest p50 latency / this option's p50 latency                                   |
| freshness     | how well the option absorbs changing knowledge, from fact `knowledge_change`      |
| citations     | 0 for fine-tune when fact `citations_required`, else 1; x 0.5 for the tuned       |
|               | options when fact `data_privacy` (trained-in data cannot be deleted or access-     |
|               | controlled without retraining; an index document can)                             |
| style         | 0 for rag when fact `style_learning` (a format only training teaches), else 1     |

Facts that sharpen measured criteria: `budget` (low | medium | high) sets how hard a 10x longer build
bites (1/2, 1/3, 1/6 of the score); `latency_target_s` (0 = none) scores an option whose measured p50
latency misses the target 0 on serve_cost. When the run holds a knowledge-update drill
(drill/drill.json, `advisor drill RUN_DIR`), freshness is measured instead of looked up: half from the
accuracy on the changed facts after the update (relative to the best option), half from the yearly
compute spent on updates (updates per year from `knowledge_change` x measured update time; each 10x
more hours per year costs 1/3, from 1 hour per year).

    rec = recommend_run(Path("runs/x"), preset="balanced", weights={"accuracy": 0.5})
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from advisor.arms import ARM_OF_OPTION as OPTIONS  # option -> the arm that implements it
from advisor.core.artifacts import read_jsonl
from advisor.core.errors import AdvisorError, did_you_mean

CRITERIA = ["accuracy", "hallucination", "forgetting", "build_cost", "serve_cost", "freshness", "citations", "style"]
PRESETS: dict[str, dict[str, float]] = {
    "balanced": dict(accuracy=.25, hallucination=.20, forgetting=.10, build_cost=.10, serve_cost=.10,
                     freshness=.10, citations=.075, style=.075),
    "accuracy-first": dict(accuracy=.45, hallucination=.25, forgetting=.05, build_cost=.05, serve_cost=.05,
                           freshness=.05, citations=.05, style=.05),
    "cost-first": dict(accuracy=.20, hallucination=.10, forgetting=.05, build_cost=.225, serve_cost=.225,
                       freshness=.10, citations=.05, style=.05),
    "compliance": dict(accuracy=.20, hallucination=.35, forgetting=.10, build_cost=.05, serve_cost=.05,
                       freshness=.10, citations=.10, style=.05),
}
CHANGE_RATES = ("static", "yearly", "monthly", "weekly", "daily")
# Freshness score per knowledge-change rate: RAG re-indexes in seconds; a tuned model must be retrained
# for every change; 'both' keeps new facts reachable through retrieval while the adapter ages.
FRESHNESS = {
    "rag": dict(static=1.0, yearly=1.0, monthly=1.0, weekly=1.0, daily=1.0),
    "fine-tune": dict(static=1.0, yearly=0.8, monthly=0.4, weekly=0.15, daily=0.05),
    "both": dict(static=1.0, yearly=0.95, monthly=0.8, weekly=0.7, daily=0.65),
}
DEFAULT_FACTS = {"knowledge_change": "monthly", "citations_required": False, "style_learning": False,
                 "budget": "medium", "latency_target_s": 0.0, "data_privacy": False}
BUDGETS = {"low": 1 / 2, "medium": 1 / 3, "high": 1 / 6}  # build_cost score lost per 10x build time
UPDATES_PER_YEAR = {"static": 0, "yearly": 1, "monthly": 12, "weekly": 52, "daily": 365}


@dataclass
class Evidence:
    """What the engine needs from a run: per-option measurements and per-question scores."""

    accuracy: dict[str, dict]  # option -> {"value", "ci95", "n"}
    hallucination: dict[str, dict]
    forgetting: dict[str, float]  # option -> probe-accuracy change (tuned - base); 0 for rag
    build_s: dict[str, float]
    latency_s: dict[str, float]
    per_question: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # option -> metric -> id -> v
    # knowledge-update drill, option -> {"update_s": seconds to absorb the change, "accuracy": {"value", "ci95", "n"}}
    drill: dict[str, dict] = field(default_factory=dict)
    eval_set: dict | None = None  # metrics.json's eval_set: generated (synthetic) or not, reviewed share


def validate_facts(facts: dict) -> dict:
    """The situation facts with defaults filled in; unknown keys and bad values raise AdvisorError."""
    out = dict(DEFAULT_FACTS)
    for k, v in facts.items():
        if k not in DEFAULT_FACTS:
            raise AdvisorError(f"unknown fact '{k}'{did_you_mean(k, DEFAULT_FACTS)}; facts: {', '.join(DEFAULT_FACTS)}")
        if k == "knowledge_change":
            if v not in CHANGE_RATES:
                raise AdvisorError(f"fact knowledge_change='{v}' must be one of {', '.join(CHANGE_RATES)}")
        elif k == "budget":
            if v not in BUDGETS:
                raise AdvisorError(f"fact budget='{v}' must be one of {', '.join(BUDGETS)}")
        elif k == "latency_target_s":
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise AdvisorError(f"fact latency_target_s={v!r} must be a number of seconds (0 = no target)") from None
            if not 0 <= v < float("inf"):
                raise AdvisorError(f"fact latency_target_s={v} must be >= 0 seconds (0 = no target)")
        elif not isinstance(v, bool):
            if str(v).lower() not in ("true", "false"):
                raise AdvisorError(f"fact {k}={v!r} must be true or false")
            v = str(v).lower() == "true"
        out[k] = v
    return out


def resolve_weights(preset: str, weights: dict[str, float]) -> dict[str, float]:
    """The preset's weights with the user's overrides, normalized to sum to 1."""
    if preset not in PRESETS:
        raise AdvisorError(f"unknown weight preset '{preset}'{did_you_mean(preset, PRESETS)}; presets: {', '.join(PRESETS)}")
    w = dict(PRESETS[preset])
    for k, v in weights.items():
        if k not in CRITERIA:
            raise AdvisorError(f"unknown weight '{k}'{did_you_mean(k, CRITERIA)}; criteria: {', '.join(CRITERIA)}")
        try:
            v = float(v)
        except (TypeError, ValueError):
            raise AdvisorError(f"weight {k}={v!r} is not a number") from None
        if not v >= 0 or v == float("inf"):
            raise AdvisorError(f"weight {k}={v} must be a finite number >= 0")
        w[k] = v
    total = sum(w.values())
    if total <= 1e-9:
        raise AdvisorError("all weights are zero (they must sum to more than 0): give at least one criterion a positive weight, e.g. accuracy=1")
    return {k: v / total for k, v in w.items()}


def measured_freshness(ev: Evidence, facts: dict) -> dict[str, float] | None:
    """Freshness from the knowledge-update drill (module doc), or None when the run has no drill."""
    if not ev.drill or not all(o in ev.drill for o in ev.accuracy):
        return None
    best = max(ev.drill[o]["accuracy"]["value"] for o in ev.accuracy)
    out = {}
    for o in ev.accuracy:
        acc = ev.drill[o]["accuracy"]["value"] / best if best > 0 else 1.0
        hours = UPDATES_PER_YEAR[facts["knowledge_change"]] * ev.drill[o]["update_s"] / 3600
        # 1 h of update compute per year or less costs nothing; each 10x more costs a third.
        cost = float(np.clip(1 - np.log10(max(hours, 1.0)) / 3, 0, 1))
        out[o] = 0.5 * acc + 0.5 * cost
    return out


def criterion_scores(ev: Evidence, facts: dict) -> dict[str, dict[str, float]]:
    """Each option's score in [0, 1] on every criterion (table in the module doc)."""
    opts = list(ev.accuracy)
    min_build = min(ev.build_s[o] for o in opts)
    min_lat = min(ev.latency_s[o] for o in opts)
    fresh = measured_freshness(ev, facts)
    slope = BUDGETS[facts["budget"]]
    target = facts["latency_target_s"]
    out = {}
    for o in opts:
        citations = 0.0 if (facts["citations_required"] and o == "fine-tune") else 1.0
        out[o] = {
            "accuracy": ev.accuracy[o]["value"],
            "hallucination": 1 - ev.hallucination[o]["value"],
            "forgetting": float(np.clip(1 + 5 * min(0.0, ev.forgetting.get(o, 0.0)), 0, 1)),
            # A build is paid once: log scale, so 10x the build time costs `slope` of the score.
            "build_cost": float(np.clip(1 - slope * np.log10(max(ev.build_s[o], 1e-3) / max(min_build, 1e-3)), 0, 1)),
            "serve_cost": 0.0 if (target and ev.latency_s[o] > target) else min_lat / max(ev.latency_s[o], 1e-9),
            "freshness": fresh[o] if fresh else FRESHNESS[o][facts["knowledge_change"]],
            "citations": citations * (0.5 if facts["data_privacy"] and o != "rag" else 1.0),
            "style": 0.0 if (facts["style_learning"] and o == "rag") else 1.0,
        }
    return out


def utilities(scores: dict[str, dict[str, float]], w: dict[str, float]) -> dict[str, float]:
    """Weighted sum of the criterion scores per option (weights sum to 1)."""
    return {o: sum(w[c] * s[c] for c in CRITERIA) for o, s in scores.items()}


def _significant(ev: Evidence, a: str, b: str, metric: str) -> tuple[bool, dict | None]:
    from evalsuite.stats import paired_difference

    qa, qb = ev.per_question.get(a, {}).get(metric), ev.per_question.get(b, {}).get(metric)
    if not qa or not qb:
        return True, None  # no per-question data: do not claim equivalence
    ids = [i for i in qa if i in qb]
    d = paired_difference([qa[i] for i in ids], [qb[i] for i in ids], n_boot=2000, seed=0)
    return not (d["ci95"][0] <= 0 <= d["ci95"][1]), d


def cheapest_option(ev: Evidence) -> str:
    """The option with the shortest build time (ties: the lowest latency)."""
    return min(ev.build_s, key=lambda o: (ev.build_s[o], ev.latency_s[o]))


def equivalences(ev: Evidence) -> dict[str, dict]:
    """For each option other than the cheapest: whether neither its accuracy nor its hallucination rate
    differs significantly from the cheapest option's (paired bootstrap). Independent of the weights, so
    computed once and shared by the verdict, the flip points and the win shares."""
    cheap = cheapest_option(ev)
    out = {}
    for o in ev.accuracy:
        if o == cheap:
            continue
        sig_acc, d_acc = _significant(ev, o, cheap, "accuracy")
        sig_h, d_h = _significant(ev, o, cheap, "hallucination_rate")
        out[o] = {"equivalent": not sig_acc and not sig_h, "cheaper": cheap, "accuracy_difference": d_acc,
                  "hallucination_difference": d_h}
    return out


def decide(scores: dict, w: dict, equiv: dict[str, dict]) -> tuple[str, dict, dict]:
    """(verdict, utilities, equivalence info): the best utility, or the cheapest option when the best is
    not significantly different from it."""
    u = utilities(scores, w)
    best = max(u, key=u.get)
    e = equiv.get(best)
    if e and e["equivalent"]:
        info = {"applied": True, "best_by_utility": best, "cheaper": e["cheaper"],
                "accuracy_difference": e["accuracy_difference"], "hallucination_difference": e["hallucination_difference"]}
        return e["cheaper"], u, info
    return best, u, {"applied": False}


def flip_points(scores: dict, w: dict, verdict: str, equiv: dict[str, dict]) -> dict:
    """For each criterion: the smallest weight (scanned from 0 to 1, others rescaled to keep the sum)
    that gives another verdict, if any."""
    out = {}
    grid = np.round(np.linspace(0, 1, 201), 4)
    for c in CRITERIA:
        best = None
        for target in sorted(grid, key=lambda t: abs(t - w[c])):
            rest = 1 - w[c]
            w2 = {k: (target if k == c else (v * (1 - target) / rest if rest > 0 else (1 - target) / (len(w) - 1)))
                  for k, v in w.items()}
            v2, _, _ = decide(scores, w2, equiv)
            if v2 != verdict:
                best = {"weight_now": round(w[c], 4), "flips_at": float(target), "new_verdict": v2,
                        "change": round(float(target - w[c]), 4)}
                break
        out[c] = best
    return out


def win_shares(scores: dict, equiv: dict[str, dict], draws: int = 10_000, seed: int = 0) -> dict[str, float]:
    """Share of Dirichlet(1,..,1) weight vectors under which each option is the verdict (the same rule
    as `decide`, equivalence to the cheapest option included)."""
    rng = np.random.default_rng(seed)
    W = rng.dirichlet(np.ones(len(CRITERIA)), size=draws)
    opts = list(scores)
    S = np.array([[scores[o][c] for c in CRITERIA] for o in opts])
    verdicts = [opts[i] for i in np.argmax(W @ S.T, axis=1)]
    verdicts = [equiv[v]["cheaper"] if v in equiv and equiv[v]["equivalent"] else v for v in verdicts]
    return {o: round(verdicts.count(o) / draws, 4) for o in opts}


def _fmt(m: dict, pct: bool = True) -> str:
    f = (lambda x: f"{100 * x:.1f}%") if pct else (lambda x: f"{x:.3f}")
    return f"{f(m['value'])} [{f(m['ci95'][0])}, {f(m['ci95'][1])}] (n={m['n']})"


def explain(ev: Evidence, scores: dict, w: dict, u: dict, verdict: str, equiv: dict, facts: dict) -> list[str]:
    """Plain-language reasons, each tied to a number."""
    reasons = []
    if equiv.get("applied"):
        d = equiv["accuracy_difference"]
        reasons.append(
            f"No significant difference: {equiv['best_by_utility']} scored the higher utility, but its accuracy "
            f"differs from {verdict}'s by {100 * d['value']:+.1f} points (95% CI [{100 * d['ci95'][0]:+.1f}, "
            f"{100 * d['ci95'][1]:+.1f}], n={d['n']}) and hallucination does not differ significantly either, "
            f"so the cheaper option, {verdict}, is advised."
        )
    others = [o for o in u if o != verdict]
    if others:
        runner = max(others, key=u.get)
        contrib = sorted(CRITERIA, key=lambda c: -w[c] * (scores[verdict][c] - scores[runner][c]))
        for c in contrib[:3]:
            gain = w[c] * (scores[verdict][c] - scores[runner][c])
            if gain <= 0:
                continue
            if c == "accuracy":
                reasons.append(f"Accuracy: {verdict} answers {_fmt(ev.accuracy[verdict])} of questions correctly vs "
                               f"{runner} {_fmt(ev.accuracy[runner])}.")
            elif c == "hallucination":
                reasons.append(f"Hallucination: {verdict} {_fmt(ev.hallucination[verdict])} of answers are wrong and "
                               f"confident vs {runner} {_fmt(ev.hallucination[runner])}.")
            elif c == "forgetting":
                reasons.append(f"Forgetting: general-knowledge probe accuracy changes by "
                               f"{100 * ev.forgetting.get(runner, 0):+.1f} points with {runner} vs "
                               f"{100 * ev.forgetting.get(verdict, 0):+.1f} with {verdict}.")
            elif c == "build_cost":
                reasons.append(f"Build cost: {verdict} takes {ev.build_s[verdict]:.0f} s to build vs "
                               f"{ev.build_s[runner]:.0f} s for {runner}.")
            elif c == "serve_cost":
                target = facts["latency_target_s"]
                miss = f" (target {1000 * target:.0f} ms)" if target and ev.latency_s[runner] > target else ""
                reasons.append(f"Serving: p50 latency {1000 * ev.latency_s[verdict]:.0f} ms per question for "
                               f"{verdict} vs {1000 * ev.latency_s[runner]:.0f} ms for {runner}{miss}.")
            elif c == "freshness" and ev.drill.get(verdict) and ev.drill.get(runner):
                dv, dr = ev.drill[verdict], ev.drill[runner]
                reasons.append(f"Freshness (knowledge-update drill, knowledge changes {facts['knowledge_change']}): "
                               f"{verdict} absorbed the changed facts in {dv['update_s']:.0f} s and then answered "
                               f"{_fmt(dv['accuracy'])} of questions on them vs {runner} {dr['update_s']:.0f} s and "
                               f"{_fmt(dr['accuracy'])}.")
            elif c == "freshness":
                reasons.append(f"Freshness: the knowledge changes {facts['knowledge_change']}; {runner} would need "
                               f"retraining (freshness score {scores[runner][c]:.2f} vs {scores[verdict][c]:.2f}).")
            elif c == "citations" and not (facts["citations_required"] and runner == "fine-tune"):
                reasons.append(f"Data privacy: {runner} trains the private data into its weights, where it cannot "
                               f"be deleted or access-controlled without retraining (score {scores[runner][c]:.2f} "
                               f"vs {scores[verdict][c]:.2f}).")
            elif c == "citations":
                reasons.append(f"Citations are required; {runner} cannot cite its sources.")
            elif c == "style":
                reasons.append(f"A style or format must be learned, which {runner} cannot teach the model.")
    return reasons


def _eval_set_reason(ev: Evidence) -> list[str]:
    """First reason when the questions were generated: how much a person has checked them."""
    from evalsuite.qagen.review import plain_words

    words = plain_words(ev.eval_set)
    if not words:
        return []
    todo = "" if ev.eval_set.get("reviewed") else "; review them (advisor dashboard, Review page) before relying on it"
    return [f"Evidence: {words}{todo}."]


def recommend(ev: Evidence, preset: str = "balanced", weights: dict | None = None, facts: dict | None = None) -> dict:
    """The advice on evidence `ev` (recommendation.json, DESIGN.md contract): verdict, utilities, reasons,
    scores, weights, facts, evidence and sensitivity. Bad weights or facts raise AdvisorError."""
    w = resolve_weights(preset, weights or {})
    f = validate_facts(facts or {})
    scores = criterion_scores(ev, f)
    eq = equivalences(ev)
    verdict, u, equiv = decide(scores, w, eq)
    ranked = sorted(u.values(), reverse=True)
    return {
        "verdict": verdict,
        "utilities": {o: round(v, 4) for o, v in u.items()},
        "margin": round(ranked[0] - ranked[1], 4) if len(ranked) > 1 else None,
        "reasons": _eval_set_reason(ev) + explain(ev, scores, w, u, verdict, equiv, f),
        "no_significant_difference": equiv,
        "scores": {o: {c: round(v, 4) for c, v in s.items()} for o, s in scores.items()},
        "weights": {k: round(v, 4) for k, v in w.items()},
        "preset": preset,
        "facts": f,
        "evidence": {
            "accuracy": ev.accuracy, "hallucination_rate": ev.hallucination, "forgetting": ev.forgetting,
            "build_s": ev.build_s, "latency_p50_s": ev.latency_s,
            **({"drill": ev.drill} if ev.drill else {}),
        },
        **({"eval_set": ev.eval_set} if ev.eval_set else {}),
        "freshness_source": "knowledge-update drill (drill/drill.json)" if measured_freshness(ev, f)
        else "stated knowledge_change fact (no drill in this run)",
        "sensitivity": {
            "flip_points": flip_points(scores, w, verdict, eq),
            "win_share": win_shares(scores, eq),
            "draws": 10_000,
            "weight_distribution": "Dirichlet(1, ..., 1) over the criteria",
        },
    }


def _read_json(path: Path, what_to_do: str):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise AdvisorError(f"{path} is missing; {what_to_do}") from None
    except json.JSONDecodeError:
        raise AdvisorError(f"{path} is not valid JSON; {what_to_do}") from None


def load_evidence(run_dir: Path) -> Evidence:
    """Read metrics.json, eval/<arm>.jsonl, the manifest's stage times and (when present) the drill
    from a run directory. A missing directory, stage or file raises AdvisorError naming it."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise AdvisorError(f"run directory {run_dir} does not exist; pass a folder made by `advisor run` (advisor dashboard lists them)")
    resume = f"finish the run first: advisor run --out {run_dir} (finished stages are kept)"
    manifest = _read_json(run_dir / "manifest.json", f"{run_dir} is not a complete run directory; {resume}")
    stages = manifest.get("stages", {})
    missing = [s for s in ("index", "tune") if stages.get(s, {}).get("status") != "done"]
    metrics = _read_json(run_dir / "eval" / "metrics.json", f"the evaluation has not finished; {resume}")
    evaluated = [arm for arm in OPTIONS.values() if arm in metrics.get("arms", {})]
    missing += [f"eval_{arm}" for arm in evaluated if stages.get(f"eval_{arm}", {}).get("status") != "done"]
    needed = {"index": any(a in evaluated for a in ("rag", "tuned_rag")), "tune": any(a in evaluated for a in ("tuned", "tuned_rag"))}
    missing = [s for s in missing if needed.get(s, True)]
    if missing:
        raise AdvisorError(f"{run_dir}: stage(s) {', '.join(missing)} not finished (manifest.json); {resume}")
    index_s = stages.get("index", {}).get("wall_s", 0.0)
    tune_s = stages.get("tune", {}).get("wall_s", 0.0) + stages.get("sft", {}).get("wall_s", 0.0)
    build = {"rag": index_s, "fine-tune": tune_s, "both": index_s + tune_s}
    ev = Evidence({}, {}, {}, {}, {})
    for opt, arm in OPTIONS.items():
        m = metrics["arms"].get(arm)
        if not m:
            continue
        lacking = [k for k in ("accuracy", "hallucination_rate", "latency_p50_s") if k not in m]
        if lacking:
            raise AdvisorError(f"{run_dir}/eval/metrics.json: arm '{arm}' lacks {', '.join(lacking)}; "
                               f"re-run the evaluation: advisor run --out {run_dir}")
        ev.accuracy[opt] = m["accuracy"]
        ev.hallucination[opt] = m["hallucination_rate"]
        ev.forgetting[opt] = m.get("forgetting", {}).get("value") or 0.0
        ev.build_s[opt] = build[opt]
        ev.latency_s[opt] = m["latency_p50_s"]["value"]
        path = run_dir / "eval" / f"{arm}.jsonl"
        if not path.exists():
            raise AdvisorError(f"{path} is missing (metrics.json names arm '{arm}'); {resume}")
        rows = read_jsonl(path)
        ev.per_question[opt] = {k: {r["id"]: r["scores"][k] for r in rows if k in r["scores"]}
                                for k in ("accuracy", "hallucination_rate")}
    if len(ev.accuracy) < 2:
        raise AdvisorError(f"{run_dir}: at least two of the arms rag, tuned, tuned_rag must be evaluated to compare "
                           f"options (found: {', '.join(evaluated) or 'none'}); set eval.arms and re-run")
    ev.eval_set = metrics.get("eval_set")
    drill_path = run_dir / "drill" / "drill.json"
    if drill_path.exists():
        drill = _read_json(drill_path, f"re-run the drill: advisor drill {run_dir}")
        ev.drill = {o: {"update_s": d["update_s"], "accuracy": d["accuracy"]}
                    for o, d in drill["options"].items() if o in ev.accuracy}
    return ev


def recommend_run(run_dir: Path, preset: str = "balanced", weights: dict | None = None, facts: dict | None = None) -> dict:
    """recommend() on the evidence of a run directory."""
    return recommend(load_evidence(run_dir), preset, weights, facts)
