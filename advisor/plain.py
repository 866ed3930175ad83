"""The recommendation in plain words, for the people who act on it: what the verdict means, whether any
option is good enough, the main reasons, what would change the advice and the situation it assumed. The
report (advisor/report.py) and the dashboard (ui/) both say it with these functions, so they say it the
same way, with the arm table's names (advisor/core/arms.py) and rounded numbers.

    fit = fit_of(rec, run_dir)            # the fit_for_purpose block (computed for runs that predate it)
    best, line = fit_line(fit, rec)       # the option held against the targets, and one sentence
    main_reasons(rec)                     # up to three sentences: why the verdict beat the runner-up

>>> duration(548.3), duration(17.9), duration(9000), milliseconds(0.2402), milliseconds(2.1)
('9 min', '18 s', '2.5 h', '240 ms', '2.1 s')
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from advisor.core.advice import CRITERION_LABEL, DEFAULT_FACTS, FACT_LABEL
from advisor.core.arms import OPTION, option_label


def verdict_line(option: str) -> str:
    """What choosing the option means, one sentence (the arm table's advice)."""
    return OPTION[option].advice if option in OPTION else ""


def pct(x: float) -> str:
    """A share as a whole percentage: 0.4 -> '40%'."""
    return f"{100 * x:.0f}%"


def duration(s: float) -> str:
    """Seconds as a person says them: '18 s', '9 min', '2.5 h'."""
    if s < 0.5:
        return "under 1 s"
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def milliseconds(s: float) -> str:
    """A latency: '240 ms' under a second, else '2.1 s'."""
    return f"{1000 * s:.0f} ms" if s < 1 else f"{s:.1f} s"


def fact_value(v) -> str:
    """A fact's value in words: yes / no, 0.5, monthly."""
    return ("yes" if v else "no") if isinstance(v, bool) else f"{v:g}" if isinstance(v, float) else str(v)


def facts_line(rec: dict) -> str:
    """The preset and every situation fact the engine takes (those a recommendation predates: their defaults),
    as markdown."""
    f = {**DEFAULT_FACTS, **(rec.get("facts") or {})}
    parts = [f"{FACT_LABEL.get(k, k.replace('_', ' '))}: **{fact_value(v)}**" for k, v in f.items()]
    return f"Weights preset **{rec.get('preset', '?')}**; situation — " + "; ".join(parts) + "."


# ---------------------------------------------------------------- is any option good enough?


def config_targets(run_dir: Path) -> dict[str, float]:
    """The quality targets in a run's config.yaml (recommend.targets), defaults filled in."""
    from advisor.core.config import read_yaml, validate_targets

    p = Path(run_dir) / "config.yaml"
    data = read_yaml(p) if p.is_file() else {}
    return validate_targets((data.get("recommend") or {}).get("targets") or {})


def fit_of(rec: dict, run_dir: Path, evidence: Callable | None = None, targets: Callable | None = None) -> dict:
    """The fit_for_purpose block: the recorded one, else advisor.recommend.fit_for_purpose on the run's evidence
    (`evidence(run_dir)`, default load_evidence) and targets (its own, else `targets(run_dir)`, default
    config_targets). A block recorded before it named its "best" option is computed again with its own
    targets. Raises AdvisorError when the evidence cannot be read."""
    from advisor.recommend import fit_for_purpose, load_evidence

    fit = rec.get("fit_for_purpose")
    if fit and fit.get("best"):
        return fit
    ev = (evidence or load_evidence)(run_dir)
    return fit_for_purpose(ev, fit["targets"] if fit else (targets or config_targets)(run_dir))


def best_option(fit: dict, rec: dict) -> str:
    """The option to hold against the targets: the advised one when it meets them, else fit_for_purpose's
    choice (the most accurate option that meets them, else the most accurate whose arm did not collapse)."""
    verdict = rec["verdict"]
    return verdict if fit["options"].get(verdict, {}).get("fit") == "meets" else fit["best"]


def fit_line(fit: dict, rec: dict) -> tuple[str, str]:
    """(the option held against the targets, one plain sentence on whether anything is good enough)."""
    best = best_option(fit, rec)
    r = fit["options"][best]
    acc, hal = r["accuracy"], r["hallucination_rate"]
    name = option_label(best)
    numbers = (
        f"answers {pct(acc['value'])} of questions correctly (target: at least {pct(acc['target'])}) "
        f"and hallucinates on {pct(hal['value'])} (target: at most {pct(hal['target'])})"
    )
    if fit["any_fit"]:
        if best == rec["verdict"]:
            return best, f"Good enough: {name} {numbers}, both shown by the 95% confidence intervals."
        return best, (
            f"{name} meets the targets: it {numbers}. The advice, {option_label(rec['verdict'])}, does "
            "not meet them: other priorities outweighed them."
        )
    if all(x["fit"] == "misses" for x in fit["options"].values()):
        return best, f"No option is good enough yet: the best, {name}, {numbers}."
    return best, (
        f"No option is shown to be good enough yet: the best, {name}, {numbers}; the 95% confidence "
        "intervals are too wide to tell."
    )


# ---------------------------------------------------------------- why, and what would change it


def runner_up(rec: dict) -> str | None:
    """The option with the highest utility after the verdict's (None when only one was evaluated)."""
    u = rec.get("utilities") or {}
    others = [o for o in u if o != rec["verdict"]]
    return max(others, key=u.get) if others else None


STABILITY_WORDS = {
    "high": "stable under other priorities",
    "medium": "fairly stable under other priorities",
    "low": "not stable under other priorities",
    "unknown": "of unknown stability under other priorities",
}


def how_sure(rec: dict) -> str:
    """How sure, in two plain sentences: stable under other priorities (the recorded stability, else
    advisor.recommend.stability_of), and separated by the data when the recommendation records it."""
    from advisor.recommend import stability_of

    st = rec.get("stability") or stability_of(rec)
    sens = rec.get("sensitivity") or {}
    share = (sens.get("win_share") or {}).get(rec["verdict"])
    line = f"The advice is {STABILITY_WORDS.get(st['level'], st['level'])}"
    if share is not None:
        line += (
            f": {option_label(rec['verdict'])} wins under {pct(share)} of {sens.get('draws', 10_000):,} "
            "random weightings of the criteria"
        )
    sep = rec.get("separation") or {}
    if sep.get("runner_up"):
        other, d = option_label(sep["runner_up"]), sep.get("difference_pts")
        lead = f" ({d:+.0f} points of accuracy)" if d is not None else ""
        if not sep["separated"]:
            line += f". The measurements do not separate it from {other}{lead}: the difference could be chance"
        elif d is not None and d < 0:
            line += (
                f". The measurements separate it from {other}, which answers {-d:.0f} points more questions "
                "correctly: the advice rests on the other criteria, not on accuracy"
            )
        else:
            line += f". The measurements separate it from {other}{lead}" + (
                ", but only just: these few questions often miss a difference this small, so a rerun on new "
                "questions may not"
                if sep.get("below_detectable")
                else ""
            )
    return line + "."


def main_reasons(rec: dict, n: int = 3) -> list[str]:
    """Up to `n` plain sentences on why the verdict beat the runner-up: the criteria with the largest weighted
    lead, in the order advisor.recommend.explain gives its reasons, each said with rounded measurements. When
    the quality targets overrode the utility (fit_first), or the engine advised the cheaper of two options the
    data cannot tell apart, that comes first."""
    verdict, runner = rec["verdict"], runner_up(rec)
    scores, w = rec.get("scores") or {}, rec.get("weights") or {}
    if runner is None or verdict not in scores or runner not in scores:
        return []
    out = []
    first = rec.get("fit_first") or {}
    if first.get("applied"):
        out.append(
            f"{option_label(first['best_by_utility'])} scored higher on the weighted criteria, but it does not "
            f"meet the quality targets and {option_label(verdict)} does, so {option_label(verdict)} is advised."
        )
    nsd = rec.get("no_significant_difference") or {}
    if nsd.get("applied"):
        out.append(
            f"{option_label(nsd['best_by_utility'])} scored higher on the weighted criteria, but the "
            f"measurements cannot tell it apart from {option_label(verdict)}, so the cheaper "
            f"{option_label(verdict)} is advised."
        )
    lead = sorted(w, key=lambda c: -w[c] * (scores[verdict][c] - scores[runner][c]))
    for c in lead[:n]:
        if w[c] * (scores[verdict][c] - scores[runner][c]) > 0 and (said := _reason(c, verdict, runner, rec)):
            out.append(said)
    return out[:n]


def _reason(c: str, v: str, r: str, rec: dict) -> str | None:
    """Criterion `c`'s reason that option `v` beat `r`, in words; None when the recommendation lacks the
    measurement it would quote."""
    ev, facts = rec.get("evidence") or {}, {**DEFAULT_FACTS, **(rec.get("facts") or {})}
    V, R = option_label(v), option_label(r)

    def both(key: str) -> tuple | None:
        m = ev.get(key) or {}
        return (m[v], m[r]) if v in m and r in m else None

    if c == "accuracy" and (a := both("accuracy")):
        return f"{V} answers more questions correctly: {pct(a[0]['value'])}, against {pct(a[1]['value'])} for {R}."
    if c == "hallucination" and (h := both("hallucination_rate")):
        if h[0]["value"] < h[1]["value"]:
            return (
                f"{V} makes up fewer answers: it answers {pct(h[0]['value'])} of questions wrongly with "
                f"confidence, against {pct(h[1]['value'])} for {R}."
            )
        if fa := both("false_abstention_rate"):
            return (
                f"{V} refuses fewer questions it could answer: {pct(fa[0]['value'])}, against "
                f"{pct(fa[1]['value'])} for {R}."
            )
    if c == "forgetting" and (f := both("forgetting")):
        return (
            f"{V} keeps more of the model's general knowledge: {R} changes its score on general-knowledge "
            f"questions by {100 * f[1]:+.1f} points, {V} by {100 * f[0]:+.1f}."
        )
    if c == "build_cost" and (b := both("build_s")):
        return f"{V} is quicker to build: {duration(b[0])}, against {duration(b[1])} for {R}."
    if c == "serve_cost" and (lat := both("latency_p50_s")):
        target = facts.get("latency_target_s") or 0
        miss = f", which misses the {milliseconds(target)} target" if target and lat[1] > target else ""
        return f"{V} answers faster: {milliseconds(lat[0])} a question, against {milliseconds(lat[1])} for {R}{miss}."
    if c == "freshness":
        if d := both("drill"):
            return (
                f"{V} took in changed facts in {duration(d[0]['update_s'])} and then answered "
                f"{pct(d[0]['accuracy']['value'])} of questions on them; {R} took {duration(d[1]['update_s'])} "
                f"and answered {pct(d[1]['accuracy']['value'])}."
            )
        how = {o: OPTION[o].updates if o in OPTION else "" for o in (v, r)}
        return f"The knowledge changes {facts['knowledge_change']}: {V} {how[v]}, {R} {how[r]}."
    if c == "citations":
        if facts.get("citations_required") and r in OPTION and not OPTION[r].needs_index:
            return f"Answers must cite their sources, and {R} alone cannot point to them."
        return (
            f"The data is private: {R} trains it into the model's weights, where it cannot be deleted or "
            "access-controlled without retraining."
        )
    if c == "style":
        return (
            f"A style or format must be learned, and {R} cannot teach it: retrieval does not change how the model "
            "writes."
        )
    return None


def not_above_base(rec: dict, option: str) -> str:
    """Words to add where the advice names `option` as what it would turn to, when that option is not more
    accurate than the base model by the paired CI (recommendation.json `over_base`); "" otherwise or when the
    run has no base arm.

    >>> rec = {"over_base": {"A": {"difference_pts": -1.2, "ci95_pts": [-3.8, 0.0], "n": 80, "above": False},
    ...     "B": {"difference_pts": 18.8, "ci95_pts": [10.0, 28.7], "n": 80, "above": True}}}
    >>> not_above_base(rec, "A")
    ', an option no more accurate than the base model alone (-1.2 pts [-3.8, +0.0], paired, n=80)'
    >>> not_above_base(rec, "B"), not_above_base(rec, "C")
    ('', '')
    """
    g = (rec.get("over_base") or {}).get(option)
    if not g or g["above"]:
        return ""
    lo, hi = g["ci95_pts"]
    return (
        f", an option no more accurate than the base model alone ({g['difference_pts']:+.1f} pts [{lo:+.1f}, "
        f"{hi:+.1f}], paired, n={g['n']})"
    )


def flip_sentences(rec: dict) -> tuple[list[str], list[str]]:
    """(sentences for weights whose change flips the verdict, closest first, as markdown; the criteria that
    cannot flip it)."""
    flips = (rec.get("sensitivity") or {}).get("flip_points") or {}
    said, steady = [], []
    for c, f in sorted(flips.items(), key=lambda cf: abs(cf[1]["change"]) if cf[1] else 9):
        label = CRITERION_LABEL.get(c, c)
        if not f:
            steady.append(label)
            continue
        more = "more" if f["change"] > 0 else "less"
        said.append(
            f"If **{label}** mattered {more} — {100 * f['flips_at']:.1f}% of the decision instead of "
            f"{100 * f['weight_now']:.1f}% (other weights scaled to fit) — the advice would become "
            f"**{option_label(f['new_verdict'])}**{not_above_base(rec, f['new_verdict'])}."
        )
    return said, steady


def training_sentence(rec: dict) -> str:
    """The flip the weights do not show: the options answered with an adapter that has not learnt its own
    training questions (recommendation.json training_fit) may change with more training; "" otherwise.

    >>> rec = {"utilities": {}, "training_fit": {"train_accuracy": 0.05, "n": 40, "learnt": False}}
    >>> training_sentence(rec)[:60]
    'The adapter answers only 5% of the questions it was trained '
    >>> training_sentence({"training_fit": {"train_accuracy": 0.9, "n": 40, "learnt": True}})
    ''
    """
    fit = rec.get("training_fit")
    if not fit or fit["learnt"]:
        return ""
    tuned = [option_label(o) for o in OPTION if OPTION[o].needs_adapter and o in (rec.get("utilities") or {})]
    whose = f" behind {' and '.join(tuned)}" if tuned else ""
    return (
        f"The adapter{whose} answers only {100 * fit['train_accuracy']:.0f}% of the questions it was trained on "
        f"(n={fit['n']}): it has not learnt them yet, so more training (tuning.epochs, tuning.lr) may change "
        "their numbers and the advice."
    )


def cautions(rec: dict) -> list[str]:
    """What a reader must know before acting on the numbers: collapsed arms (and training seeds), unreviewed
    generated questions."""
    from evalsuite.qagen.review import plain_words

    out = []
    for o in rec.get("collapsed") or []:
        what = "training run collapsed" if o in OPTION and OPTION[o].needs_adapter else "answers are degenerate"
        out.append(f"{option_label(o)}'s {what}: its numbers measure a failed run, not what the option can do.")
    for o, seeds in (rec.get("collapsed_seeds") or {}).items():
        out.append(
            f"{option_label(o)}'s training collapsed with seed {', '.join(map(str, seeds))}: another training run "
            "may fail the same way; its numbers are the first seed's."
        )
    info = rec.get("eval_set")
    if (words := plain_words(info)) and not info.get("reviewed"):
        out.append(
            f"The numbers were {words}: treat them as indicative until a person has reviewed the "
            "questions (the dashboard's Review page)."
        )
    return out


def generator_words(gen: dict | None) -> str:
    """Who answered, from eval/metrics.json "generator" (pipeline.generator_record), as a sentence with a leading
    space; '' for a run from before the record.

    >>> generator_words({"backend": "hf", "model": "m", "quantization": "nf4", "cpu_matmul_dtype": "bfloat16"})
    " The arms' answers come from m (nf4, its 4-bit layers multiplied in bfloat16)."
    >>> generator_words({"backend": "openai", "base_url": "http://h:8001/v1", "model": "m"})
    ' The arms generated on http://h:8001/v1 (model m).'
    """
    if not gen:
        return ""
    if gen.get("backend") != "hf":
        return f" The arms generated on {gen.get('base_url')} (model {gen.get('model')})."
    how = ", its 4-bit layers multiplied in bfloat16" if gen.get("cpu_matmul_dtype") == "bfloat16" else ""
    return f" The arms' answers come from {gen.get('model')} ({gen.get('quantization')}{how})."
