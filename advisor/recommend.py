"""The advice: a transparent weighted utility over measured criteria and stated situation facts.

Options map to arms: rag -> `rag`, fine-tune -> `tuned`, both -> `tuned_rag`. Each criterion is
scored in [0, 1] per option (table below), the utility is the weighted mean, and the verdict is the
best utility, unless the best option is not the cheapest and neither accuracy nor the
hallucination rate differs significantly (paired bootstrap CI includes 0): then the cheaper option
wins and the advice says so. Sensitivity: the smallest change of each weight that flips the verdict,
and each option's win share under 10,000 random weight vectors (Dirichlet(1, ..., 1)).

| criterion     | score per option                                                                 |
|---------------|----------------------------------------------------------------------------------|
| accuracy      | share of answerable questions answered correctly (evalsuite.metrics.is_correct)   |
| hallucination | 1 - hallucination rate - false-abstention rate, clipped to [0, 1]: an option      |
|               | that buys abstention on unanswerable questions by refusing answerable ones is     |
|               | not rewarded (false abstention: "I don't know" to a question the corpus answers;  |
|               | 0 when the run did not measure it)                                                |
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

Fit for purpose comes before the utility: each option's accuracy and hallucination rate are checked
against the quality targets (`recommend.targets`) by their 95% CI: meets / misses / cannot tell
(`fit_for_purpose`). When some option meets every target, the verdict is the best utility among those
that do (`fit_first`: an option that misses a target the user set is not advised over one that meets it;
the flip points and win shares follow the same rule, and the first reason says when it overrode the
utility). When no option meets every target, the first reason says so and names what the
measurements point to (`evidence_points_to`: the retrieval recall against the retrieval options'
accuracy, fine-tuning's gain over the base model and on facts the base model does not know, a collapsed
arm, bare citations, abstention), never a fixed list.

How sure, in two separate senses: `stability` (stable under other priorities: the win share under random
weights and the nearest flip point) and `separation` (separated by the data: the paired accuracy CI of
the verdict against the runner-up, and the smallest difference this many questions can detect).
An option whose arm collapsed (metrics.json `collapse`: one answer string or empty answers for more than
a fifth of the questions) is named in `collapsed`, and the reasons say its scores measure a failed run.

    rec = recommend_run(Path("runs/x"), preset="balanced", weights={"accuracy": 0.5})
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist

import numpy as np

from advisor.core.advice import BUDGETS, CHANGE_RATES, CRITERIA, resolve_weights, validate_facts
from advisor.core.arms import ARM, ARM_OF_OPTION, BASE, OPTION, OPTIONS, RAG, TUNED, uses_adapter, uses_index
from advisor.core.arms import option_label as _name  # sentences name options as the arm table does
from advisor.core.artifacts import read_jsonl
from advisor.core.config import validate_targets
from advisor.core.errors import AdvisorError
from advisor.core.textio import read_json
from advisor.seeds import collapsed_seeds

# What an option can do follows from its arm (the arm table, advisor/core/arms.py): it cites its sources when it
# answers with retrieved passages, it learns a style and holds trained-in data when it answers with the adapter;
# its stated freshness per knowledge-change rate is there too.
RETRIEVAL_ONLY = ARM[RAG].option  # the option without training ('retrieval vs training' on unknown facts)
FINE_TUNE = ARM[TUNED].option  # the option without retrieval (what training alone added to the base model)
UPDATES_PER_YEAR = {"static": 0, "yearly": 1, "monthly": 12, "weekly": 52, "daily": 365}
# Thresholds of the advice's measurement-driven lines (stated here so a reader can check each line's rule).
RECALL_HIGH = 0.8  # retrieval finds the gold source this often or more: a low accuracy is the generator's
TUNED_GAIN_LOW = 0.10  # fine-tune within 10 points of the base model: it added little knowledge
UNKNOWN_MAJORITY = 0.5  # the base model does not know at least half the facts asked
GROUP_MIN_N = 5  # a known/maybe_known/unknown group smaller than this is too small to talk about
GROUP_GAP = 0.10  # 10 points between groups or options within a group is worth a reason
FALSE_ABSTENTION_NOTABLE = 0.10  # refusing 10% of answerable questions or more is worth a reason
BARE_CITATION_NOTABLE = 0.10  # a tenth of the answers a bare citation marker: the model does not follow the prompt
ABSTAINS_RARELY = 0.10  # every option abstains on fewer unanswerable questions than this
# the adapter answers fewer than half of its own training questions (the learning curve's last point): it has not
# learnt them yet, so the tuned options measure too little training (advisor/curve.py)
TRAINING_LEARNT = 0.5
Z_ALPHA, Z_POWER = NormalDist().inv_cdf(0.975), NormalDist().inv_cdf(0.80)  # two-sided 5%, 80% power


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
    # Optional measurements (empty for runs made before they existed, which still load):
    base_accuracy: dict | None = None  # the base arm (closed book, no adapter): {"value", "ci95", "n"}
    abstention: dict[str, dict] = field(default_factory=dict)  # option -> abstention_rate (unanswerable)
    false_abstention: dict[str, dict] = field(default_factory=dict)  # option -> false_abstention_rate (answerable)
    bare_citation: dict[str, dict] = field(default_factory=dict)  # option -> bare_citation_rate
    retrieval: dict[str, dict] = field(default_factory=dict)  # option -> {"recall_at_k": m, "mrr": m}
    retrieval_k: int | None = None  # chunks in the prompt (retrieval.top_k), the k of recall@k
    by_knowledge: dict[str, dict] = field(default_factory=dict)  # option or BASE -> {group: {"n", "accuracy", ...}}
    knowledge: dict | None = None  # metrics.json knowledge: counts per group and how they were decided
    by_wording: dict[str, dict] = field(default_factory=dict)  # option or BASE -> {"close" | "new": {"n", ...}}
    wording: dict | None = None  # metrics.json wording: counts per group and the rule
    collapse: dict[str, dict] = field(default_factory=dict)  # option -> metrics.json collapse.<arm>
    # option -> [(seed, top answer, its share)] for the extra training seeds whose answers collapsed (seed_spread)
    seed_collapse: dict[str, list] = field(default_factory=dict)
    base_per_question: dict[str, float] = field(default_factory=dict)  # question id -> the base arm's accuracy
    training_fit: dict | None = None  # the adapter on its own training questions (training_fit; eval/curve.json)
    # metrics.json's bootstrap (resamples, seed): the advice's paired differences resample as its table's do, so a
    # difference the report shows twice has one CI
    bootstrap: tuple[int, int] = (2000, 0)

    def paired(self, a: list[float], b: list[float]) -> dict:
        """evalsuite.stats.paired_difference of a − b with this run's bootstrap."""
        from evalsuite.stats import paired_difference

        return paired_difference(a, b, *self.bootstrap)


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


def _value(m: dict | None, default: float = 0.0) -> float:
    """The value of a {"value", "ci95", "n"} measurement, or `default` when it is absent."""
    return default if not m or m.get("value") is None else float(m["value"])


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
        spec = OPTION[o]
        citations = 0.0 if (facts["citations_required"] and not spec.needs_index) else 1.0
        out[o] = {
            "accuracy": ev.accuracy[o]["value"],
            "hallucination": float(
                np.clip(1 - ev.hallucination[o]["value"] - _value(ev.false_abstention.get(o)), 0, 1)
            ),
            "forgetting": float(np.clip(1 + 5 * min(0.0, ev.forgetting.get(o, 0.0)), 0, 1)),
            # A build is paid once: log scale, so 10x the build time costs `slope` of the score.
            "build_cost": float(np.clip(1 - slope * np.log10(max(ev.build_s[o], 1e-3) / max(min_build, 1e-3)), 0, 1)),
            "serve_cost": 0.0 if (target and ev.latency_s[o] > target) else min_lat / max(ev.latency_s[o], 1e-9),
            "freshness": fresh[o] if fresh else dict(zip(CHANGE_RATES, spec.freshness))[facts["knowledge_change"]],
            "citations": citations * (0.5 if facts["data_privacy"] and spec.needs_adapter else 1.0),
            "style": 0.0 if (facts["style_learning"] and not spec.needs_adapter) else 1.0,
        }
    return out


def utilities(scores: dict[str, dict[str, float]], w: dict[str, float]) -> dict[str, float]:
    """Weighted sum of the criterion scores per option (weights sum to 1)."""
    return {o: sum(w[c] * s[c] for c in CRITERIA) for o, s in scores.items()}


def _significant(ev: Evidence, a: str, b: str, metric: str) -> tuple[bool, dict | None]:
    qa, qb = ev.per_question.get(a, {}).get(metric), ev.per_question.get(b, {}).get(metric)
    if not qa or not qb:
        return True, None  # no per-question data: do not claim equivalence
    ids = [i for i in qa if i in qb]
    d = ev.paired([qa[i] for i in ids], [qb[i] for i in ids])
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
        out[o] = {
            "equivalent": not sig_acc and not sig_h,
            "cheaper": cheap,
            "accuracy_difference": d_acc,
            "hallucination_difference": d_h,
        }
    return out


def decide(scores: dict, w: dict, equiv: dict[str, dict], eligible: list[str] | None = None) -> tuple[str, dict, dict]:
    """(verdict, utilities, equivalence info): the best utility among the `eligible` options (fit for purpose
    first: those that meet every quality target; None or empty = all options), or the cheapest option when the
    best is not significantly different from it and the cheapest is eligible too."""
    u = utilities(scores, w)
    pool = eligible or list(u)
    best = max(pool, key=u.get)
    e = equiv.get(best)
    if e and e["equivalent"] and e["cheaper"] in pool:
        info = {
            "applied": True,
            "best_by_utility": best,
            "cheaper": e["cheaper"],
            "accuracy_difference": e["accuracy_difference"],
            "hallucination_difference": e["hallucination_difference"],
        }
        return e["cheaper"], u, info
    return best, u, {"applied": False}


def flip_points(scores: dict, w: dict, verdict: str, equiv: dict[str, dict], eligible: list[str] | None = None) -> dict:
    """For each criterion: the smallest weight (scanned from 0 to 1, others rescaled to keep the sum)
    that gives another verdict among the `eligible` options (as `decide`), if any."""
    out = {}
    grid = np.round(np.linspace(0, 1, 201), 4)
    for c in CRITERIA:
        best = None
        for target in sorted(grid, key=lambda t: abs(t - w[c])):
            rest = 1 - w[c]
            w2 = {
                k: (target if k == c else (v * (1 - target) / rest if rest > 0 else (1 - target) / (len(w) - 1)))
                for k, v in w.items()
            }
            v2, _, _ = decide(scores, w2, equiv, eligible)
            if v2 != verdict:
                best = {
                    "weight_now": round(w[c], 4),
                    "flips_at": float(target),
                    "new_verdict": v2,
                    "change": round(float(target - w[c]), 4),
                }
                break
        out[c] = best
    return out


def win_shares(
    scores: dict, equiv: dict[str, dict], eligible: list[str] | None = None, draws: int = 10_000, seed: int = 0
) -> dict[str, float]:
    """Share of Dirichlet(1,..,1) weight vectors under which each option is the verdict (the same rule
    as `decide`: only `eligible` options win, equivalence to an eligible cheapest option included)."""
    rng = np.random.default_rng(seed)
    W = rng.dirichlet(np.ones(len(CRITERIA)), size=draws)
    opts = list(scores)
    pool = eligible or opts
    S = np.array([[scores[o][c] for c in CRITERIA] for o in opts])
    U = np.where([o in pool for o in opts], W @ S.T, -np.inf)
    verdicts = [opts[i] for i in np.argmax(U, axis=1)]
    verdicts = [
        equiv[v]["cheaper"] if v in equiv and equiv[v]["equivalent"] and equiv[v]["cheaper"] in pool else v
        for v in verdicts
    ]
    return {o: round(verdicts.count(o) / draws, 4) for o in opts}


# ---------------------------------------------------------------- fit for purpose


def _status(m: dict, target: float, at_least: bool) -> str:
    """meets / misses / cannot tell, by the 95% CI: a target met only by the point estimate is not met."""
    if not m or m.get("value") is None or None in (m.get("ci95") or [None]):
        return "cannot tell"
    lo, hi = m["ci95"]
    if at_least:
        return "meets" if lo >= target else "misses" if hi < target else "cannot tell"
    return "meets" if hi <= target else "misses" if lo > target else "cannot tell"


def collapsed_options(ev: Evidence) -> list[str]:
    """Options whose arm collapsed (metrics.json `collapse`), in option order."""
    return [o for o in ev.accuracy if (ev.collapse.get(o) or {}).get("collapsed")]


def fit_options(ev: Evidence, targets: dict[str, float]) -> dict[str, dict]:
    """Per option: each target's value, CI, target and status, and the option's fit (meets when every
    target is met, misses when any is missed, else cannot tell)."""
    out = {}
    for o in ev.accuracy:
        row = {}
        for name, m, at_least in (
            ("accuracy", ev.accuracy[o], True),
            ("hallucination_rate", ev.hallucination[o], False),
        ):
            row[name] = {
                "value": m.get("value"),
                "ci95": m.get("ci95"),
                "target": targets[name],
                "status": _status(m, targets[name], at_least),
            }
        statuses = [row[t]["status"] for t in targets]
        row["fit"] = (
            "meets" if all(x == "meets" for x in statuses) else "misses" if "misses" in statuses else "cannot tell"
        )
        out[o] = row
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _pct_ci(m: dict) -> str:
    return f"{_pct(m['value'])} [{100 * m['ci95'][0]:.1f}, {100 * m['ci95'][1]:.1f}]"


def _target(x: float) -> str:
    return f"{100 * x:g}%"


def evidence_points_to(ev: Evidence, options: dict[str, dict]) -> list[str]:
    """What the measurements point to when an option falls short, each line from a rule on this run's
    numbers (thresholds at the top of the module); a rule whose measurement the run lacks says nothing:

    - an option whose arm collapsed: fix its training data (an adapter) or try a larger base model (retrieval);
    - a retrieval option answering with bare citation markers for >= BARE_CITATION_NOTABLE: a larger base model;
    - retrieval recall@k >= RECALL_HIGH while a retrieval option misses the accuracy target: the generator
      is the bottleneck (a larger base model); recall below it: better retrieval first;
    - fine-tune within TUNED_GAIN_LOW of the base model, or answering under GROUP_GAP of the facts the base
      model does not know when those are at least UNKNOWN_MAJORITY of the facts: fine-tuning does not add
      knowledge the base model lacks (more or better training data, or a larger model);
    - every option abstaining on fewer than ABSTAINS_RARELY of the unanswerable questions while one misses
      the hallucination target: abstention has to be taught;
    - an option that cannot be told from its targets: more evaluation questions.
    """
    collapsed = collapsed_options(ev)
    short = {o for o, r in options.items() if r["accuracy"]["status"] != "meets"}
    out = _collapse_lines(ev, collapsed) + _retrieval_lines(ev, short, collapsed)
    if FINE_TUNE in short and FINE_TUNE not in collapsed:
        out += _fine_tune_lines(ev)
    if ev.abstention and any(r["hallucination_rate"]["status"] != "meets" for r in options.values()):
        most = max(_value(m) for m in ev.abstention.values())
        if most < ABSTAINS_RARELY:
            out.append(
                f"no option abstains on unanswerable questions (at most {_pct(most)}), so a wrong answer stands "
                'in for "I don\'t know": teach abstention (training data and prompts with unanswerable '
                "questions)"
            )
    if not out and any(r["fit"] == "cannot tell" for r in options.values()):
        n = next(iter(ev.accuracy.values()))["n"]
        out.append(f"the 95% CIs are too wide to tell with {n} questions: more evaluation questions")
    return out


def _collapse_lines(ev: Evidence, collapsed: list[str]) -> list[str]:
    """evidence_points_to's lines for collapsed arms and for bare-citation answers."""
    out: list[str] = []
    tuned = [o for o in collapsed if OPTION[o].needs_adapter]
    if tuned:
        said = "; ".join(f"{_name(o)}: {ev.collapse[o].get('reason') or 'degenerate answers'}" for o in tuned)
        out.append(f"the fine-tuning run collapsed ({said}); fix the training data before judging fine-tuning")
    for o in (o for o in collapsed if not OPTION[o].needs_adapter):
        said = ev.collapse[o].get("reason") or "degenerate answers"
        out.append(
            f"{_name(o)}'s answers are degenerate ({said}): the base model does not follow the retrieval prompt; "
            "judge retrieval with a larger base model (--model)"
        )
    for o, m in ev.bare_citation.items():
        if o in ev.accuracy and _value(m) >= BARE_CITATION_NOTABLE:
            out.append(
                f"{_name(o)} answers {_pct(m['value'])} of questions with a bare citation marker instead of an "
                "answer, so its accuracy understates what retrieval can do: the base model does not follow the "
                "retrieval prompt's answer-then-citation form; judge retrieval with a larger base model (--model)"
            )
    return out


def _retrieval_lines(ev: Evidence, short: set[str], collapsed: list[str]) -> list[str]:
    """evidence_points_to's line on retrieval: the generator or the retriever is the bottleneck (recall@k)."""
    retrieving = [o for o in OPTIONS if OPTION[o].needs_index]
    rec_opt = next((o for o in retrieving if (ev.retrieval.get(o) or {}).get("recall_at_k")), None)
    ropts = [o for o in retrieving if o in short and o not in collapsed]
    if not rec_opt or not ropts:
        return []
    recall = ev.retrieval[rec_opt]["recall_at_k"]
    k = f"top {ev.retrieval_k}" if ev.retrieval_k else "retrieved chunks"
    if recall["value"] >= RECALL_HIGH:
        o = max(ropts, key=lambda x: ev.accuracy[x]["value"])
        return [
            f"retrieval puts the right source in the {k} for {_pct(recall['value'])} of questions, yet "
            f"{_name(o)} "
            f"answers only {_pct(ev.accuracy[o]['value'])} correctly, so the generator is the bottleneck: "
            "a larger base model"
        ]
    return [
        f"retrieval puts the right source in the {k} for only {_pct(recall['value'])} of questions: "
        "better retrieval (chunking, embedder, hybrid search) comes first"
    ]


def _fine_tune_lines(ev: Evidence) -> list[str]:
    """evidence_points_to's line when fine-tuning misses the target: it adds little over the base model, or
    fails on the facts the base model does not know."""
    ft = ev.accuracy[FINE_TUNE]["value"]
    counts = (ev.knowledge or {}).get("counts") or {}
    total = sum(counts.values())
    unknown_share = counts.get("unknown", 0) / total if total else None
    unk = (ev.by_knowledge.get(FINE_TUNE) or {}).get("unknown") or {}
    why = []
    if ev.base_accuracy and ft - ev.base_accuracy["value"] < TUNED_GAIN_LOW:
        why.append(
            f"{_name(FINE_TUNE)} answers {_pct(ft)}, the base model closed book "
            f"{_pct(ev.base_accuracy['value'])}: {100 * (ft - ev.base_accuracy['value']):+.1f} pts"
        )
    if (
        unknown_share is not None
        and unknown_share >= UNKNOWN_MAJORITY
        and unk.get("n", 0) >= GROUP_MIN_N
        and _value(unk.get("accuracy"), 1.0) < GROUP_GAP
    ):
        why.append(
            f"the base model does not know {_pct(unknown_share)} of the facts asked and "
            f"{_name(FINE_TUNE)} answers "
            f"{_pct(unk['accuracy']['value'])} of those (n={unk['n']})"
        )
    if not why:
        return []
    fit = ev.training_fit
    if fit and not fit["learnt"]:
        then = (
            f"its adapter answers only {_pct(fit['train_accuracy'])} of the questions it was trained on "
            f"(n={fit['n']}), so it has not learnt them yet: train longer or at a higher learning rate "
            "(tuning.epochs, tuning.lr) before judging fine-tuning"
        )
    elif fit:
        then = (
            f"its adapter answers {_pct(fit['train_accuracy'])} of the questions it was trained on (n={fit['n']}) "
            f"but {_pct(ft)} of the evaluation's (n={ev.accuracy[FINE_TUNE]['n']}), so it learnt "
            "them without generalising to new wording: more varied training data (several phrasings of each "
            "fact), or a larger base model"
        )
    else:
        then = "more or better training data, or a larger base model"
    return ["fine-tuning adds little of the knowledge the base model lacks (" + "; ".join(why) + "): " + then]


def training_fit(run_dir: Path) -> dict | None:
    """The adapter on its own training questions, from the learning curve's last point (eval/curve.json; the
    final adapter the tuned arms use): {"step", "train_accuracy", "n", "domain_accuracy", "n_questions",
    "learnt"}, `learnt` when it answers at least TRAINING_LEARNT of them. None when the run did not measure it
    (no curve, or eval.curve_train_questions=0)."""
    from advisor.curve import read_curve

    curve = read_curve(run_dir)
    if curve is None:
        return None
    last = (curve.get("points") or [{}])[-1]
    if "train_accuracy" not in last:
        return None
    return {
        "step": last["step"],
        "train_accuracy": last["train_accuracy"],
        "n": last["n_train_questions"],
        "domain_accuracy": last["domain_accuracy"],
        "n_questions": last["n_questions"],
        "learnt": last["train_accuracy"] >= TRAINING_LEARNT,
    }


def meeting_every_target(fit: dict) -> list[str]:
    """The options whose fit is "meets" (every target met by its 95% CI), in the fit_for_purpose block's
    order: the one place the fit-first rule, its reason and the stability line read them from."""
    return [o for o, r in (fit.get("options") or {}).items() if r.get("fit") == "meets"]


def fit_for_purpose(ev: Evidence, targets: dict[str, float]) -> dict:
    """The fit_for_purpose block of recommendation.json: targets, per-option statuses, whether any option
    meets every target, a one-line statement and what the measurements point to (evidence_points_to)."""
    options = fit_options(ev, targets)
    fit = meeting_every_target({"options": options})
    acc_t, hal_t = targets["accuracy"], targets["hallucination_rate"]
    goal = f"accuracy at least {_target(acc_t)}, hallucination at most {_target(hal_t)}"
    points = [] if fit else evidence_points_to(ev, options)
    # "best": the option held against the targets (the dashboard shows it): the most accurate of those that
    # meet them, else the most accurate whose arm did not collapse
    pool = fit or [o for o in ev.accuracy if o not in collapsed_options(ev)] or list(ev.accuracy)
    best = max(pool, key=lambda o: (ev.accuracy[o]["value"], -ev.hallucination[o]["value"]))
    if fit:
        statement = (
            f"Fit for purpose: {', '.join(map(_name, fit))} {'meets' if len(fit) == 1 else 'meet'} the "
            f"targets ({goal}) by the 95% CI."
        )
    else:
        r = options[best]
        lead = (
            "No option is fit for purpose"
            if all(x["fit"] == "misses" for x in options.values())
            else "No option is shown to be fit for purpose"
        )
        statement = (
            f"{lead}: the most accurate, {_name(best)}, answers {_pct_ci(ev.accuracy[best])} of questions "
            f"correctly against a target of {_target(acc_t)} ({r['accuracy']['status']}), and hallucinates on "
            f"{_pct_ci(ev.hallucination[best])} against at most {_target(hal_t)} "
            f"({r['hallucination_rate']['status']})."
        )
        if points:
            statement += " What the evidence points to: " + "; ".join(points) + "."
    return {
        "targets": dict(targets),
        "options": options,
        "any_fit": bool(fit),
        "best": best,
        "statement": statement,
        "points_to": points,
    }


def fit_first(fit: dict, u: dict[str, float], verdict: str) -> dict:
    """The fit_first block of recommendation.json: whether the targets overrode the utility. Applied when some
    option meets every target and the option with the highest utility does not (so the verdict is the best
    utility among those that meet them); then `best_by_utility`, the options that meet them (`fit`), and the
    targets the utility's choice does not meet with their status."""
    best = max(u, key=u.get)
    if not fit["any_fit"] or best == verdict or fit["options"][best]["fit"] == "meets":
        return {"applied": False}
    row = fit["options"][best]
    return {
        "applied": True,
        "best_by_utility": best,
        "fit": meeting_every_target(fit),
        "short_of": {t: row[t]["status"] for t in fit["targets"] if row[t]["status"] != "meets"},
    }


def _fit_first_reason(ev: Evidence, fit: dict, first: dict, u: dict[str, float], verdict: str) -> list[str]:
    """First reason when the targets overrode the utility: what the utility's choice falls short of, with
    its numbers, and the advised option's numbers against the same targets."""
    if not first["applied"]:
        return []
    best, V = first["best_by_utility"], _name(verdict)
    m = {"accuracy": ev.accuracy, "hallucination_rate": ev.hallucination}
    word = {"accuracy": "accuracy", "hallucination_rate": "hallucination"}
    bound = {"accuracy": "at least", "hallucination_rate": "at most"}
    t = fit["targets"]
    short = "; ".join(
        f"{word[k]} {_pct_ci(m[k][best])} against {bound[k]} {_target(t[k])}"
        + (", too close to tell" if status == "cannot tell" else "")
        for k, status in first["short_of"].items()
    )
    meets = ", ".join(f"{word[k]} {_pct_ci(m[k][verdict])}" for k in t)
    return [
        f"Fit for purpose first: {_name(best)} has the highest utility ({u[best]:.3f} vs {u[verdict]:.3f}) but "
        f"does not meet the quality targets ({short}); {V} meets every target ({meets}), so {V} is advised. "
        "To weigh these targets against the other criteria instead, lower them "
        "(`advisor recommend RUN_DIR --targets ...`)."
    ]


# ---------------------------------------------------------------- how sure: stability and separation


def detectable_difference(a: list[float], b: list[float]) -> tuple[float, float, bool]:
    """(smallest detectable accuracy difference as a share, discordant share, floored) for paired binary
    outcomes a, b over the same questions: a McNemar-style approximation at two-sided alpha 0.05 and 80%
    power, MDE = (z_0.975 + z_0.80) * sqrt(p_disc / n), where p_disc is the share of questions exactly one
    of the two answers correctly (scores >= 0.5 count as correct). When no question is discordant,
    p_disc = 1/n stands in as a floor (floored = True), since 0 would claim any difference is detectable.

    >>> mde, disc, floored = detectable_difference([1, 0] * 50, [0, 0] * 50)
    >>> round(mde, 3), disc, floored
    (0.198, 0.5, False)
    >>> round(detectable_difference([1] * 40, [1] * 40)[0], 3)
    0.07
    """
    n = len(a)
    disc = sum((x >= 0.5) != (y >= 0.5) for x, y in zip(a, b)) / n
    p = disc if disc > 0 else 1 / n
    return (Z_ALPHA + Z_POWER) * math.sqrt(p / n), disc, disc == 0


def separation(ev: Evidence, verdict: str, runner: str | None) -> dict:
    """'Separated by the data': the paired accuracy difference verdict − runner-up with its bootstrap CI,
    separated when the CI excludes 0 (in either direction: a verdict less accurate than the runner-up says so); the
    smallest difference these questions can detect (detectable_difference); below_detectable when |difference| is
    smaller than that."""
    if runner is None:
        return {
            "separated": False,
            "why": "only one option was evaluated",
            "detectable_difference_pts": None,
            "difference_pts": None,
            "below_detectable": False,
            "runner_up": None,
        }
    collapsed = [o for o in (verdict, runner) if o in collapsed_options(ev)]
    failed = (
        f"; {' and '.join(map(_name, collapsed))} collapsed, so this compares against a failed run" if collapsed else ""
    )
    qa = ev.per_question.get(verdict, {}).get("accuracy") or {}
    qb = ev.per_question.get(runner, {}).get("accuracy") or {}
    ids = [i for i in qa if i in qb]
    if not ids:
        d = 100 * (ev.accuracy[verdict]["value"] - ev.accuracy[runner]["value"])
        return {
            "separated": False,
            "difference_pts": round(d, 1),
            "detectable_difference_pts": None,
            "below_detectable": False,
            "runner_up": runner,
            "why": f"no per-question scores, so the paired difference of {_name(verdict)} and {_name(runner)} "
            "cannot be "
            f"tested{failed}",
        }
    a, b = [qa[i] for i in ids], [qb[i] for i in ids]
    d = ev.paired(a, b)
    mde, disc, floored = detectable_difference(a, b)
    lo, hi = d["ci95"]
    separated = not (lo <= 0 <= hi)
    diff_pts, mde_pts = 100 * d["value"], 100 * mde
    why = (
        f"accuracy {_name(verdict)} − {_name(runner)}: {diff_pts:+.1f} pts (95% CI [{100 * lo:+.1f}, "
        f"{100 * hi:+.1f}], paired, n={len(ids)}); the CI "
        + ("excludes 0" if separated else "includes 0, so the data do not separate them")
        + f"; {len(ids)} questions can detect a difference of {mde_pts:.1f} pts (80% power, two-sided 5%), "
        + (
            "with no question answered correctly by only one of them (1/n stands in for the discordant share)"
            if floored
            else f"given that {_pct(disc)} of them are answered correctly by only one of the two"
        )
    )
    if separated and diff_pts < 0:
        # the quickstart of 2026-12-05: rag by 0.004 in utility on build cost, 18.8 points less accurate
        why += (
            f"; the data favour {_name(runner)} on accuracy, so the advice rests on the other criteria, not on accuracy"
        )
    return {
        "separated": separated,
        "why": why + failed,
        "detectable_difference_pts": round(mde_pts, 1),
        "difference_pts": round(diff_pts, 1),
        "below_detectable": abs(diff_pts) < mde_pts,
        "runner_up": runner,
    }


def stability_of(rec: dict) -> dict:
    """'Stable under other priorities': {"level": high | medium | low | unknown, "why"} from a recommendation's
    win share under random weights and nearest flip point. Win share >= 75% high, >= 50% medium, else low;
    a flip within 0.05 of a weight, or advice made on 'no significant difference', lowers it by one."""
    sens = rec.get("sensitivity") or {}
    share = (sens.get("win_share") or {}).get(rec["verdict"])
    flips = [abs(f["change"]) for f in (sens.get("flip_points") or {}).values() if f]
    if share is None:
        return {"level": "unknown", "why": "the recommendation has no sensitivity analysis"}
    level = 2 if share >= 0.75 else 1 if share >= 0.5 else 0
    closest = min(flips) if flips else None
    equivalent = bool((rec.get("no_significant_difference") or {}).get("applied"))
    if (closest is not None and closest <= 0.05) or equivalent:
        level = max(0, level - 1)
    why = f"wins under {100 * share:.0f}% of {sens.get('draws', 10_000):,} random weightings"
    why += (
        f"; the smallest single weight change that flips it is {closest:.2f}"
        if closest is not None
        else "; no single weight change flips it"
    )
    if equivalent:
        why += "; the measured differences are not significant, so the cheaper option is advised"
    fit = rec.get("fit_for_purpose") or {}
    meets = meeting_every_target(fit)
    if fit.get("any_fit") and len(meets) < len(fit["options"]):
        names = " and ".join(map(_name, meets))
        why += f"; the weights choose among the options that meet the quality targets ({names})"
    return {"level": ["low", "medium", "high"][level], "why": why}


def _fmt(m: dict, pct: bool = True) -> str:
    f = (lambda x: f"{100 * x:.1f}%") if pct else (lambda x: f"{x:.3f}")
    return f"{f(m['value'])} [{f(m['ci95'][0])}, {f(m['ci95'][1])}] (n={m['n']})"


def explain(ev: Evidence, scores: dict, w: dict, u: dict, verdict: str, equiv: dict, facts: dict) -> list[str]:
    """Plain-language reasons, each tied to a number."""
    reasons = []
    V = _name(verdict)
    if equiv.get("applied"):
        d = equiv["accuracy_difference"]
        reasons.append(
            f"No significant difference: {_name(equiv['best_by_utility'])} scored the higher utility, but its accuracy "
            f"differs from {V}'s by {100 * d['value']:+.1f} points (95% CI [{100 * d['ci95'][0]:+.1f}, "
            f"{100 * d['ci95'][1]:+.1f}], n={d['n']}) and hallucination does not differ significantly either, "
            f"so the cheaper option, {V}, is advised."
        )
    others = [o for o in u if o != verdict]
    if others:
        runner = max(others, key=u.get)
        R = _name(runner)
        # a collapsed arm's scores measure a failed run: a comparison with them says so
        failed = [o for o in (verdict, runner) if o in collapsed_options(ev)]
        measure = "these scores measure" if len(failed) > 1 else "its score measures"
        mark = (
            f" ({' and '.join(map(_name, failed))} collapsed: {measure} a failed run, not what the option can do)"
            if failed
            else ""
        )
        contrib = sorted(CRITERIA, key=lambda c: -w[c] * (scores[verdict][c] - scores[runner][c]))
        for c in contrib[:3]:
            gain = w[c] * (scores[verdict][c] - scores[runner][c])
            if gain <= 0:
                continue
            if c == "accuracy":
                reasons.append(
                    f"Accuracy: {V} answers {_fmt(ev.accuracy[verdict])} of questions correctly vs "
                    f"{R} {_fmt(ev.accuracy[runner])}{mark}."
                )
            elif c == "hallucination":
                reasons.append(
                    f"Hallucination: {V} {_fmt(ev.hallucination[verdict])} of answers are wrong and "
                    f"confident vs {R} {_fmt(ev.hallucination[runner])}{mark}."
                )
            elif c == "forgetting":
                reasons.append(
                    f"Forgetting: general-knowledge probe accuracy changes by "
                    f"{100 * ev.forgetting.get(runner, 0):+.1f} points with {R} vs "
                    f"{100 * ev.forgetting.get(verdict, 0):+.1f} with {V}."
                )
            elif c == "build_cost":
                reasons.append(
                    f"Build cost: {V} takes {ev.build_s[verdict]:.0f} s to build vs {ev.build_s[runner]:.0f} s for {R}."
                )
            elif c == "serve_cost":
                target = facts["latency_target_s"]
                miss = f" (target {1000 * target:.0f} ms)" if target and ev.latency_s[runner] > target else ""
                reasons.append(
                    f"Serving: p50 latency {1000 * ev.latency_s[verdict]:.0f} ms per question for "
                    f"{V} vs {1000 * ev.latency_s[runner]:.0f} ms for {R}{miss}."
                )
            elif c == "freshness" and ev.drill.get(verdict) and ev.drill.get(runner):
                dv, dr = ev.drill[verdict], ev.drill[runner]
                reasons.append(
                    f"Freshness (knowledge-update drill, knowledge changes {facts['knowledge_change']}): "
                    f"{V} absorbed the changed facts in {dv['update_s']:.0f} s and then answered "
                    f"{_fmt(dv['accuracy'])} of questions on them vs {R} {dr['update_s']:.0f} s and "
                    f"{_fmt(dr['accuracy'])}."
                )
            elif c == "freshness":
                reasons.append(
                    f"Freshness: the knowledge changes {facts['knowledge_change']}; {R} would need "
                    f"retraining (freshness score {scores[runner][c]:.2f} vs {scores[verdict][c]:.2f})."
                )
            elif c == "citations" and not (facts["citations_required"] and not OPTION[runner].needs_index):
                reasons.append(
                    f"Data privacy: {R} trains the private data into its weights, where it cannot "
                    f"be deleted or access-controlled without retraining (score {scores[runner][c]:.2f} "
                    f"vs {scores[verdict][c]:.2f})."
                )
            elif c == "citations":
                reasons.append(f"Citations are required; {R} cannot cite its sources.")
            elif c == "style":
                reasons.append(f"A style or format must be learned, which {R} cannot teach the model.")
    return reasons


def _eval_set_reason(ev: Evidence) -> list[str]:
    """First reason when the questions were generated: how much a person has checked them."""
    from evalsuite.qagen.review import plain_words

    words = plain_words(ev.eval_set)
    if not words:
        return []
    todo = "" if ev.eval_set.get("reviewed") else "; review them (advisor dashboard, Review page) before relying on it"
    return [f"Evidence: {words}{todo}."]


def collapse_what(option: str) -> str:
    """What a collapsed arm's scores mean for its option (the reasons say it in these words)."""
    spec = OPTION[option]
    if spec.needs_adapter:
        return f"the training run collapsed, so its scores measure a failed run, not what {spec.does} can do"
    return f"the arm's answers are degenerate, so its scores measure a broken setup, not what {spec.does} can do"


def _collapse_reasons(ev: Evidence) -> list[str]:
    """One plain line per option whose arm collapsed, and one per option whose arm collapsed with another training
    seed (tuning.seeds > 1): the recipe then fails on some draws, whatever the first seed's scores say."""
    return [
        f"{_name(o)}: {ev.collapse[o].get('reason') or 'its answers are degenerate'} — {collapse_what(o)}."
        for o in collapsed_options(ev)
    ] + [
        f"{_name(o)}: trained again with another seed, its answers collapsed ("
        + "; ".join(f"seed {seed}: {share:.0%} of them are {top!r}" for seed, top, share in bad)
        + ") — the training recipe fails on some draws; the scores above are the first seed's."
        for o, bad in ev.seed_collapse.items()
    ]


def _abstention_reason(ev: Evidence, scores: dict) -> list[str]:
    """A line when an option refuses FALSE_ABSTENTION_NOTABLE or more of the answerable questions: the
    hallucination criterion counts that against it (module doc)."""
    notable = [o for o in ev.accuracy if _value(ev.false_abstention.get(o)) >= FALSE_ABSTENTION_NOTABLE]
    if not notable:
        return []
    parts = []
    for o in notable:
        ab = ev.abstention.get(o)
        parts.append(
            (f"{_name(o)} abstains on {_pct_ci(ab)} of unanswerable questions but also " if ab else f"{_name(o)} ")
            + f"refuses {_pct_ci(ev.false_abstention[o])} of answerable ones"
        )
    return [
        "Abstention: " + "; ".join(parts) + ". The hallucination score counts both (1 − hallucination rate − "
        "false-abstention rate: "
        + ", ".join(f"{_name(o)} {scores[o]['hallucination']:.2f}" for o in notable)
        + "), so refusing answerable questions is not rewarded as honesty."
    ]


def _knowledge_reasons(ev: Evidence) -> list[str]:
    """Known vs unknown facts (metrics.json by_knowledge), when it matters. Two rules, groups of at least
    GROUP_MIN_N questions only:
    - fine-tune's gain over the base model is at least GROUP_GAP on maybe_known facts and under half of
      GROUP_GAP on unknown ones: fine-tuning helped only on facts the base model already partly knew;
    - on unknown facts rag and fine-tune differ by GROUP_GAP or more: the better one brings the knowledge."""

    def group(who: str, g: str) -> dict | None:
        x = (ev.by_knowledge.get(who) or {}).get(g)
        return x if x and x.get("n", 0) >= GROUP_MIN_N and x.get("accuracy") else None

    out = []
    mk, unk = group(FINE_TUNE, "maybe_known"), group(FINE_TUNE, "unknown")
    bmk, bunk = group(BASE, "maybe_known"), group(BASE, "unknown")
    if mk and unk and bmk and bunk and FINE_TUNE not in collapsed_options(ev):
        g_mk = mk["accuracy"]["value"] - bmk["accuracy"]["value"]
        g_unk = unk["accuracy"]["value"] - bunk["accuracy"]["value"]
        if g_mk >= GROUP_GAP and g_unk < GROUP_GAP / 2:
            out.append(
                f"Known vs unknown facts: fine-tuning helped only on facts the base model already partly knew "
                f"(maybe_known {100 * g_mk:+.1f} pts over the base model, n={mk['n']}; unknown "
                f"{100 * g_unk:+.1f} pts, n={unk['n']}): it did not teach the facts the base model lacks."
            )
    r_unk = group(RETRIEVAL_ONLY, "unknown")
    if r_unk and unk and not {RETRIEVAL_ONLY, FINE_TUNE} & set(collapsed_options(ev)):
        gap = r_unk["accuracy"]["value"] - unk["accuracy"]["value"]
        if abs(gap) >= GROUP_GAP:
            r, f = (RETRIEVAL_ONLY, r_unk), (FINE_TUNE, unk)
            hi, lo = (r, f) if gap > 0 else (f, r)
            how = (
                "retrieval supplies what the model does not know"
                if gap > 0
                else "training taught facts the base model lacked"
            )
            out.append(
                f"On the {unk['n']} facts the base model does not know, {_name(hi[0])} answers "
                f"{_pct_ci(hi[1]['accuracy'])} correctly vs {_name(lo[0])} {_pct_ci(lo[1]['accuracy'])}: {how}."
            )
    return out


def _wording_reasons(ev: Evidence) -> list[str]:
    """Eval questions worded like a training question (metrics.json by_wording, evalsuite/wording.py), for each
    option that answers with the adapter and did not collapse: its gain over the base model is GROUP_GAP or more
    on the `close` questions and at least GROUP_GAP less on the `new` ones; or the `new` group is too small to
    measure (under GROUP_MIN_N) while the gain on `close` ones is GROUP_GAP or more. Either way part of what the
    tuned arm shows is recall of trained wording, which users' own questions will not repeat."""
    counts = (ev.wording or {}).get("counts") or {}
    base = ev.by_wording.get(BASE) or {}
    out = []
    for o in ev.by_wording:
        groups = ev.by_wording[o]
        if o == BASE or not OPTION[o].needs_adapter or o in collapsed_options(ev):
            continue
        gain = {
            g: _value(groups[g].get("accuracy")) - _value(base[g].get("accuracy"))
            for g in ("close", "new")
            if groups.get(g, {}).get("n", 0) >= GROUP_MIN_N and g in base
        }
        if gain.get("close", 0) < GROUP_GAP:
            continue
        like = (
            f"on the {groups['close']['n']} eval questions worded like a question its adapter was trained on "
            f"(at least half their word 4-grams in one) {_name(o)} gains {100 * gain['close']:+.1f} pts over the "
            "base model"
        )
        if "new" in gain and gain["close"] - gain["new"] >= GROUP_GAP:
            out.append(
                f"Wording: {like}, on the {groups['new']['n']} worded otherwise {100 * gain['new']:+.1f} pts: "
                "part of its gain is recall of trained wording; questions worded the users' own way should expect "
                "the smaller figure."
            )
        elif "new" not in gain:
            out.append(
                f"Wording: {like}; only {counts.get('new', 0)} are worded otherwise, too few to measure, so its "
                "accuracy may be recall of trained wording more than knowledge: add eval questions worded "
                "unlike the training questions (written by a person) to tell."
            )
    return out


def recommend(
    ev: Evidence,
    preset: str = "balanced",
    weights: dict | None = None,
    facts: dict | None = None,
    targets: dict | None = None,
) -> dict:
    """The advice on evidence `ev` (recommendation.json, docs/architecture.md 'Contracts'): verdict, utilities, reasons,
    fit for purpose against the quality `targets` (defaults: advisor.core.config.QUALITY_TARGETS),
    stability, separation, collapsed options, scores, weights, facts, evidence and sensitivity. Bad
    weights, facts or targets raise AdvisorError."""
    w = resolve_weights(preset, weights or {})
    f = validate_facts(facts or {})
    t = validate_targets(targets or {})
    scores = criterion_scores(ev, f)
    eq = equivalences(ev)
    fit = fit_for_purpose(ev, t)
    # fit for purpose first: when some option meets every target, the verdict is one of them
    eligible = meeting_every_target(fit)
    verdict, u, equiv = decide(scores, w, eq, eligible)
    first = fit_first(fit, u, verdict)
    others = [o for o in u if o != verdict]
    runner = max(others, key=u.get) if others else None
    sensitivity = {
        "flip_points": flip_points(scores, w, verdict, eq, eligible),
        "win_share": win_shares(scores, eq, eligible),
        "draws": 10_000,
        "weight_distribution": "Dirichlet(1, ..., 1) over the criteria",
    }
    optional = {
        "abstention_rate": ev.abstention,
        "false_abstention_rate": ev.false_abstention,
        "bare_citation_rate": ev.bare_citation,
    }
    return {
        "verdict": verdict,
        "utilities": {o: round(v, 4) for o, v in u.items()},
        # the verdict's utility lead over the best other option (negative when fit for purpose overrode it)
        "margin": round(u[verdict] - u[runner], 4) if runner else None,
        "reasons": ([] if fit["any_fit"] else [fit["statement"]])
        + _fit_first_reason(ev, fit, first, u, verdict)
        + _eval_set_reason(ev)
        + _collapse_reasons(ev)
        + explain(ev, scores, w, u, verdict, equiv, f)
        + _abstention_reason(ev, scores)
        + _knowledge_reasons(ev)
        + _wording_reasons(ev),
        "fit_for_purpose": fit,
        "fit_first": first,
        "stability": stability_of(
            {"verdict": verdict, "sensitivity": sensitivity, "no_significant_difference": equiv, "fit_for_purpose": fit}
        ),
        "separation": separation(ev, verdict, runner),
        "collapsed": collapsed_options(ev),
        "collapsed_seeds": {o: [seed for seed, _, _ in bad] for o, bad in ev.seed_collapse.items()},
        "no_significant_difference": equiv,
        "scores": {o: {c: round(v, 4) for c, v in s.items()} for o, s in scores.items()},
        "weights": {k: round(v, 4) for k, v in w.items()},
        "preset": preset,
        "facts": f,
        "evidence": {
            "accuracy": ev.accuracy,
            "hallucination_rate": ev.hallucination,
            "forgetting": ev.forgetting,
            "build_s": ev.build_s,
            "latency_p50_s": ev.latency_s,
            **({"drill": ev.drill} if ev.drill else {}),
            **{k: v for k, v in optional.items() if v},
        },
        **({"eval_set": ev.eval_set} if ev.eval_set else {}),
        "freshness_source": "knowledge-update drill (drill/drill.json)"
        if measured_freshness(ev, f)
        else "stated knowledge_change fact (no drill in this run)",
        "sensitivity": sensitivity,
        "over_base": gains_over_base(ev),
        "training_fit": ev.training_fit,
    }


def gains_over_base(ev: Evidence) -> dict[str, dict]:
    """option -> its paired accuracy difference with the base model (closed book, no adapter) over the questions
    both answered: {"difference_pts", "ci95_pts", "n", "above"}, `above` when the bootstrap CI is above 0. An
    option that is not above the base model can still win under some weights (it is cheap to serve); the advice
    says so where it names it as what the verdict would flip to. Empty without the base arm's per-question scores
    (eval.arms without base)."""
    out = {}
    for o, per in ev.per_question.items():
        ids = [i for i in per.get("accuracy") or {} if i in ev.base_per_question]
        if not ids:
            continue
        d = ev.paired([per["accuracy"][i] for i in ids], [ev.base_per_question[i] for i in ids])
        out[o] = {
            "difference_pts": round(100 * d["value"], 1),
            "ci95_pts": [round(100 * x, 1) for x in d["ci95"]],
            "n": d["n"],
            "above": d["ci95"][0] > 0,
        }
    return out


def load_evidence(run_dir: Path) -> Evidence:
    """Read metrics.json, eval/<arm>.jsonl, the manifest's stage times and (when present) the drill
    from a run directory. A missing directory, stage or file raises AdvisorError naming it."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise AdvisorError(
            f"run directory {run_dir} does not exist; pass a folder made by `advisor run` (advisor dashboard lists them)"
        )
    resume = f"finish the run first: advisor run --out {run_dir} (finished stages are kept)"
    manifest = read_json(
        run_dir / "manifest.json", "run bookkeeping", f"{run_dir} is not a complete run directory; {resume}"
    )
    stages = manifest.get("stages", {})
    metrics = read_json(
        run_dir / "eval" / "metrics.json", "evaluation metrics", f"the evaluation has not finished; {resume}"
    )
    evaluated = [arm for arm in ARM_OF_OPTION.values() if arm in metrics.get("arms", {})]
    _check_finished(run_dir, stages, evaluated, resume)
    ev = Evidence({}, {}, {}, {}, {})
    build = _build_seconds(stages)
    for opt, arm in ARM_OF_OPTION.items():
        if metrics["arms"].get(arm):
            _read_option(ev, run_dir, opt, arm, metrics, build, resume)
    if len(ev.accuracy) < 2:
        raise AdvisorError(
            f"{run_dir}: at least two of the arms {', '.join(ARM_OF_OPTION.values())} must be evaluated to compare "
            f"options (found: {', '.join(evaluated) or 'none'}); set eval.arms and re-run"
        )
    _read_run_extras(ev, run_dir, metrics)
    return ev


def _check_finished(run_dir: Path, stages: dict, evaluated: list[str], resume: str) -> None:
    """AdvisorError naming the stages the evaluated arms need that the manifest does not record as done."""
    missing = [s for s in ("index", "tune") if stages.get(s, {}).get("status") != "done"]
    missing += [f"eval_{arm}" for arm in evaluated if stages.get(f"eval_{arm}", {}).get("status") != "done"]
    needed = {"index": uses_index(evaluated), "tune": uses_adapter(evaluated)}
    missing = [s for s in missing if needed.get(s, True)]
    if missing:
        raise AdvisorError(f"{run_dir}: stage(s) {', '.join(missing)} not finished (manifest.json); {resume}")


def _build_seconds(stages: dict) -> dict[str, float]:
    """Seconds each build artifact took: the index, the shared adapter, and an arm's own adapter (with
    tuning.both_adapter=separate; else the shared one)."""
    index_s = stages.get("index", {}).get("wall_s", 0.0)
    tune_s = stages.get("tune", {}).get("wall_s", 0.0) + stages.get("sft", {}).get("wall_s", 0.0)
    # Build cost counts what each option really trained: with tuning.both_adapter=separate, both's own adapter.
    both_s = (
        stages["tune_both"].get("wall_s", 0.0) + stages.get("sft", {}).get("wall_s", 0.0)
        if stages.get("tune_both", {}).get("status") == "done"
        else tune_s
    )
    return {"index": index_s, "adapter": tune_s, "own_adapter": both_s}


def _read_option(
    ev: Evidence, run_dir: Path, opt: str, arm: str, metrics: dict, build: dict[str, float], resume: str
) -> None:
    """One option's metrics, build cost and per-question scores into `ev`."""
    m = metrics["arms"][arm]
    lacking = [k for k in ("accuracy", "hallucination_rate", "latency_p50_s") if k not in m]
    if lacking:
        raise AdvisorError(
            f"{run_dir}/eval/metrics.json: arm '{arm}' lacks {', '.join(lacking)}; "
            f"re-run the evaluation: advisor run --out {run_dir}"
        )
    ev.accuracy[opt] = m["accuracy"]
    ev.hallucination[opt] = m["hallucination_rate"]
    ev.forgetting[opt] = m.get("forgetting", {}).get("value") or 0.0
    spec = ARM[arm]  # what the option builds: the index, an adapter (its own with tuning.both_adapter=separate)
    ev.build_s[opt] = sum(
        ([build["index"]] if spec.needs_index else [])
        + ([build["own_adapter"] if spec.own_adapter else build["adapter"]] if spec.needs_adapter else [])
    )
    ev.latency_s[opt] = m["latency_p50_s"]["value"]
    path = run_dir / "eval" / f"{arm}.jsonl"
    if not path.exists():
        raise AdvisorError(f"{path} is missing (metrics.json names arm '{arm}'); {resume}")
    rows = read_jsonl(path)
    ev.per_question[opt] = {
        k: {r["id"]: r["scores"][k] for r in rows if k in r["scores"]} for k in ("accuracy", "hallucination_rate")
    }
    _optional_measurements(ev, opt, arm, m, metrics)


def _read_run_extras(ev: Evidence, run_dir: Path, metrics: dict) -> None:
    """The run-wide facts into `ev`: the eval set, the base model's accuracy and knowledge split, top-k, the drill."""
    ev.eval_set = metrics.get("eval_set")
    boot = metrics.get("bootstrap") or {}
    if boot.get("resamples"):
        ev.bootstrap = (int(boot["resamples"]), int(boot.get("seed") or 0))
    base = metrics["arms"].get(BASE) or {}
    ev.base_accuracy = base.get("accuracy")
    if base and (run_dir / "eval" / f"{BASE}.jsonl").is_file():
        rows = read_jsonl(run_dir / "eval" / f"{BASE}.jsonl")
        ev.base_per_question = {r["id"]: r["scores"]["accuracy"] for r in rows if "accuracy" in r["scores"]}
    if base.get("by_knowledge"):
        ev.by_knowledge[BASE] = base["by_knowledge"]
    ev.knowledge = metrics.get("knowledge")
    if base.get("by_wording"):
        ev.by_wording[BASE] = base["by_wording"]
    ev.wording = metrics.get("wording")
    if any(OPTION[o].needs_adapter for o in ev.accuracy):
        ev.training_fit = training_fit(run_dir)
    if (run_dir / "config.yaml").is_file():
        from advisor.core.config import read_yaml

        ev.retrieval_k = (
            ((read_yaml(run_dir / "config.yaml").get("retrieval") or {}).get("top_k") or None) if ev.retrieval else None
        )
    drill_path = run_dir / "drill" / "drill.json"
    if drill_path.exists():
        drill = read_json(drill_path, "drill result", f"re-run the drill: advisor drill {run_dir}")
        ev.drill = {
            o: {"update_s": d["update_s"], "accuracy": d["accuracy"]}
            for o, d in drill["options"].items()
            if o in ev.accuracy
        }


def _optional_measurements(ev: Evidence, opt: str, arm: str, m: dict, metrics: dict) -> None:
    """The measurements newer runs add to metrics.json (absent ones stay empty)."""
    for key, into in (
        ("abstention_rate", ev.abstention),
        ("false_abstention_rate", ev.false_abstention),
        ("bare_citation_rate", ev.bare_citation),
    ):
        if (m.get(key) or {}).get("value") is not None:
            into[opt] = m[key]
    retrieval = {k: m[k] for k in ("recall_at_k", "mrr") if (m.get(k) or {}).get("value") is not None}
    if retrieval:
        ev.retrieval[opt] = retrieval
    if m.get("by_knowledge"):
        ev.by_knowledge[opt] = m["by_knowledge"]
    if m.get("by_wording"):
        ev.by_wording[opt] = m["by_wording"]
    if (metrics.get("collapse") or {}).get(arm):
        ev.collapse[opt] = metrics["collapse"][arm]
    if bad := collapsed_seeds(m.get("seed_spread")):
        ev.seed_collapse[opt] = bad


def recommend_run(
    run_dir: Path,
    preset: str = "balanced",
    weights: dict | None = None,
    facts: dict | None = None,
    targets: dict | None = None,
) -> dict:
    """recommend() on the evidence of a run directory. targets None: the run's own recommend.targets
    (config.yaml; the defaults when the run has none)."""
    if targets is None and (Path(run_dir) / "config.yaml").is_file():
        from advisor.core.config import load_run_config

        targets = load_run_config(run_dir).recommend.targets
    return recommend(load_evidence(run_dir), preset, weights, facts, targets)
