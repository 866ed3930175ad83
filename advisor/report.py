"""report.md and a self-contained report.html. First, "In short": the verdict, whether any option is good enough
and the three main reasons, in plain words and rounded numbers (advisor/plain.py, the dashboard's words), so the
first screen is what a decision-maker acts on. Then the evidence: fit for purpose against the quality targets,
collapsed arms, the verdict and how sure it is (stable under other priorities; separated by the data), the
evidence with CIs (abstention beside false abstention, known vs unknown facts), the flip points, the
knowledge-update drill, costs, stage times, plots and example answers of one run.

    write_report(Path("runs/x"))     # reads the run directory only; writes report.md, report_files/*.png, report.html
    advisor recommend RUN_DIR        # recomputes recommendation.json and rewrites the report

The report shows what exists in the run directory. Every artifact it would draw from and does not find
gets a visible line 'not measured in this run: ...' (never a silent gap), so a report on a run made
before a stage existed still says what is missing and how to get it. Plots are PNGs drawn with
matplotlib from the data files; report.html inlines them as base64, so the one file can be mailed.
"""

from __future__ import annotations

import base64
import html
import io
import re
from pathlib import Path

from advisor import plain
from advisor.core.advice import CRITERION_LABEL
from advisor.core.arms import (
    ARM_COLOUR,
    ARM_LABEL,
    BOTH,
    OPTION_COLOUR,
    OPTION_LABEL,
    OPTIONS,
    TUNED,
    arm_label,
    option_label,
)
from advisor.core.artifacts import atomic_write_bytes, atomic_write_text, read_jsonl
from advisor.core.config import ARMS
from advisor.core.errors import AdvisorError
from advisor.core.textio import read_json
from advisor.curve import CURVE_NEEDS, TRAINING_LINE_MEANING, curve_series, read_curve
from advisor.metrics import METRIC_INFO, METRIC_LABEL, METRIC_ORDER
from advisor.plain import duration
from advisor.seeds import collapsed_seeds

NEUTRAL = "#9c755f"  # bars that are not an arm (question counts): a brown no arm uses
FIG_DIR = "report_files"
MISSING = "not measured in this run:"


def _ci(m: dict | None, pct: bool = True, fmt: str = ".3f") -> str:
    """A measurement with its 95% CI: as percentages with one decimal, else numbers in `fmt`."""
    if not m or m.get("value") is None:
        return "–"
    if pct:
        return f"{100 * m['value']:.1f} [{100 * m['ci95'][0]:.1f}, {100 * m['ci95'][1]:.1f}]"
    return f"{m['value']:{fmt}} [{m['ci95'][0]:{fmt}}, {m['ci95'][1]:{fmt}}]"


def _read(run_dir: Path, rel: str, what: str):
    """The JSON object at run_dir/rel, or None when the run has not written it (the report then says it is
    missing). A file that is there but broken stops the report with its path and what to do, as a broken
    curve.json does: the report does not call a damaged file missing."""
    p = run_dir / rel
    if not p.exists():
        return None
    if rel == "manifest.json":  # as `advisor run` itself says of it (advisor/core/artifacts.py)
        fix = "fix or delete it to rebuild the run's bookkeeping"
    else:
        again = f"advisor drill {run_dir}" if rel.startswith("drill/") else f"advisor run --out {run_dir}"
        fix = f"delete it and run `{again}` again to rewrite it (finished stages are kept)"
    data = read_json(p, what, fix)
    if not isinstance(data, dict):
        raise AdvisorError(f"{what} {p} is not a JSON object; {fix}")
    return data


# ---------------------------------------------------------------- plots


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    _plt().close(fig)
    return buf.getvalue()


def _err(m: dict, scale: float = 100.0) -> tuple[float, list[float]]:
    v = m["value"] * scale
    return v, [max(0.0, v - m["ci95"][0] * scale), max(0.0, m["ci95"][1] * scale - v)]


def _plain_log(axis, set_scale) -> None:
    """A log axis labelled 10, 100, 1000 rather than 10^1 or 2x10^1."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    set_scale("log")
    axis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    axis.set_minor_formatter(NullFormatter())


def plot_arm_bars(metrics: dict, arms: list[str]) -> bytes:
    """Accuracy and hallucination rate per arm, 95% CI whiskers."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, key, title in [
        (axes[0], "accuracy", "Accuracy (answerable), %"),
        (axes[1], "hallucination_rate", "Hallucination rate, % (lower is better)"),
    ]:
        xs = [a for a in arms if key in metrics["arms"][a]]
        vals = [_err(metrics["arms"][a][key]) for a in xs]
        ax.bar(
            range(len(xs)),
            [v for v, _ in vals],
            color=[ARM_COLOUR[a] for a in xs],
            yerr=[[e[0] for _, e in vals], [e[1] for _, e in vals]],
            capsize=5,
        )
        ax.set_xticks(range(len(xs)), [ARM_LABEL[a] for a in xs], rotation=15)
        ax.set_title(title, fontsize=10)
        ax.set_ylim(0, 100)
        n = metrics["arms"][xs[0]][key]["n"] if xs else 0
        ax.text(0.99, 0.97, f"n={n}", transform=ax.transAxes, ha="right", va="top", fontsize=8)
    return _png(fig)


def plot_forgetting(metrics: dict, arms: list[str]) -> bytes:
    """Probe accuracy per arm and the paired change tuned − base, 95% CI."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    xs = [a for a in arms if "probe_accuracy" in metrics["arms"][a]]
    vals = [_err(metrics["arms"][a]["probe_accuracy"]) for a in xs]
    axes[0].bar(
        range(len(xs)),
        [v for v, _ in vals],
        color=[ARM_COLOUR[a] for a in xs],
        yerr=[[e[0] for _, e in vals], [e[1] for _, e in vals]],
        capsize=5,
    )
    axes[0].set_xticks(range(len(xs)), [ARM_LABEL[a] for a in xs], rotation=15)
    axes[0].set_title("General-knowledge probe accuracy, %", fontsize=10)
    axes[0].set_ylim(0, 100)
    fx = [a for a in arms if "forgetting" in metrics["arms"][a]]
    for i, a in enumerate(fx):
        m = metrics["arms"][a]["forgetting"]
        v = 100 * m["value"]
        axes[1].errorbar(
            [v], [i], xerr=[[v - 100 * m["ci95"][0]], [100 * m["ci95"][1] - v]], fmt="o", color=ARM_COLOUR[a], capsize=5
        )
    axes[1].axvline(0, color="k", lw=0.8)
    axes[1].set_yticks(range(len(fx)), [ARM_LABEL[a] for a in fx])
    axes[1].set_ylim(-0.7, len(fx) - 0.3)
    axes[1].set_title("Forgetting: probe accuracy, tuned − base (pts)", fontsize=10)
    return _png(fig)


def plot_cost_accuracy(rec: dict) -> bytes:
    """Accuracy (95% CI) against build time and against p50 latency, one point per option."""
    plt = _plt()
    ev = rec["evidence"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, key, label in [
        (axes[0], "build_s", "build time, s (log)"),
        (axes[1], "latency_p50_s", "latency p50 per question, s"),
    ]:
        for i, (o, acc) in enumerate(ev["accuracy"].items()):
            v, e = _err(acc)
            x = max(ev[key][o], 1e-3)
            ax.errorbar([x], [v], yerr=[[e[0]], [e[1]]], fmt="o", capsize=5, color=OPTION_COLOUR[o])
            # labels stacked by option so options at the same point stay readable
            ax.annotate(
                OPTION_LABEL[o],
                (x, v),
                textcoords="offset points",
                xytext=(6, 4 + 12 * i),
                fontsize=9,
                color=OPTION_COLOUR[o],
            )
        if key == "build_s":
            _plain_log(ax.xaxis, ax.set_xscale)
            lo, hi = min(ev[key].values()), max(ev[key].values())
            ax.set_xlim(max(lo, 1e-3) / 2, max(hi, 1e-3) * 2)
        ax.set_xlabel(label)
        ax.set_ylabel("accuracy, %")
        ax.set_ylim(0, 100)
    fig.suptitle("Cost vs accuracy (up and to the left is better)", fontsize=10)
    return _png(fig)


def val_loss_history(training: dict) -> tuple[list, list, list, list]:
    """(train steps, train losses, val steps, val losses) from training.json: its 'history' (per step
    'loss', some steps 'val_loss') and, when the tuning stage writes one, a separate 'val_history'."""
    hist = training.get("history") or []
    ts = [h["step"] for h in hist if h.get("loss") is not None]
    tl = [h["loss"] for h in hist if h.get("loss") is not None]
    vh = training.get("val_history") or [h for h in hist if h.get("val_loss") is not None]
    vs = [h["step"] for h in vh if h.get("val_loss") is not None]
    vl = [h["val_loss"] for h in vh if h.get("val_loss") is not None]
    return ts, tl, vs, vl


def plot_loss(training: dict) -> bytes:
    plt = _plt()
    ts, tl, vs, vl = val_loss_history(training)
    fig, ax = plt.subplots(figsize=(9, 3.2))
    ax.plot(ts, tl, color="#bbbbbb", lw=1, label="train loss (per step)")
    if len(tl) >= 5:  # a running mean shows the trend through the per-batch noise
        k = max(2, len(tl) // 10)
        sm = [sum(tl[max(0, i - k + 1) : i + 1]) / len(tl[max(0, i - k + 1) : i + 1]) for i in range(len(tl))]
        ax.plot(ts, sm, color="#555555", lw=1.5, label=f"train loss (mean of {k})")
    ax.plot(vs, vl, "o-", color="#d62728", lw=2, label="validation loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title("Training and validation loss of the adapter", fontsize=10)
    ax.legend(fontsize=8)
    return _png(fig)


def plot_sensitivity(rec: dict) -> bytes:
    """Win share under random weights, and for each criterion its weight now and where the verdict flips."""
    plt = _plt()
    sens = rec["sensitivity"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), gridspec_kw={"width_ratios": [1, 1.6]})
    opts = list(sens["win_share"])
    axes[0].bar(range(len(opts)), [100 * sens["win_share"][o] for o in opts], color=[OPTION_COLOUR[o] for o in opts])
    # 'Fine-tune + RAG' on two lines, so the labels of three narrow bars do not run into each other
    axes[0].set_xticks(range(len(opts)), [OPTION_LABEL[o].replace(" + ", "\n+ ") for o in opts])
    axes[0].set_ylim(0, 100)
    axes[0].set_title(f"Win share, % of {sens['draws']:,} random weightings", fontsize=10)
    crit = list(rec["weights"])
    ax = axes[1]
    for i, c in enumerate(crit):
        now = rec["weights"][c]
        f = sens["flip_points"].get(c)
        ax.plot([now], [i], "o", color="k")
        if f:
            ax.annotate(
                "",
                xy=(f["flips_at"], i),
                xytext=(now, i),
                arrowprops=dict(arrowstyle="->", color=OPTION_COLOUR[f["new_verdict"]], lw=2),
            )
            ax.text(f["flips_at"], i + 0.2, OPTION_LABEL[f["new_verdict"]], fontsize=8, ha="center")
    ax.set_yticks(range(len(crit)), [CRITERION_LABEL.get(c, c) for c in crit])
    ax.set_xlim(-0.02, 1.02)
    ax.set_xlabel("weight (others rescaled); arrow = where the verdict flips")
    ax.set_title(f"Flip points (verdict now: {OPTION_LABEL[rec['verdict']]})", fontsize=10)
    return _png(fig)


def plot_drill(drill: dict) -> bytes:
    plt = _plt()
    opts = [o for o in OPTIONS if o in drill["options"]]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    d = [drill["options"][o] for o in opts]
    colors = [OPTION_COLOUR[o] for o in opts]
    bars = axes[0].bar(range(len(opts)), [x["update_s"] for x in d], color=colors)
    axes[0].bar_label(bars, [f"{x['update_s']:.1f} s" for x in d], fontsize=8)
    _plain_log(axes[0].yaxis, axes[0].set_yscale)
    axes[0].set_ylim(top=max(x["update_s"] for x in d) * 3)
    axes[0].set_xticks(range(len(opts)), [OPTION_LABEL[o] for o in opts])
    axes[0].set_title("Time to absorb the changed facts, s (log)", fontsize=10)
    vals = [_err(x["accuracy"]) for x in d]
    bars = axes[1].bar(
        range(len(opts)),
        [v for v, _ in vals],
        color=colors,
        yerr=[[e[0] for _, e in vals], [e[1] for _, e in vals]],
        capsize=5,
    )
    axes[1].bar_label(bars, [f"{v:.0f}%" for v, _ in vals], fontsize=8, padding=2)
    if drill.get("before"):
        before = 100 * drill["before"]["accuracy"]["value"]
        axes[1].axhline(before, color="k", ls="--", lw=1.5, label=f"RAG before the update: {before:.0f}%")
        axes[1].legend(fontsize=8)
    axes[1].set_xticks(range(len(opts)), [OPTION_LABEL[o] for o in opts])
    axes[1].set_ylim(0, 100)
    axes[1].set_title(f"Accuracy on the changed facts, % (n={d[0]['accuracy']['n']})", fontsize=10)
    return _png(fig)


def plot_paired(paired: dict) -> bytes:
    plt = _plt()
    rows = [
        (f"{pair_label(pair)}: {METRIC_LABEL.get(m, m)}", d)
        for pair, diffs in paired.items()
        for m, d in diffs.items()
        if m in ("accuracy", "hallucination_rate")
    ]
    fig, ax = plt.subplots(figsize=(9, 0.4 * len(rows) + 1.2))
    for i, (_, d) in enumerate(rows):
        v = 100 * d["value"]
        ax.errorbar(
            [v],
            [i],
            xerr=[[v - 100 * d["ci95"][0]], [100 * d["ci95"][1] - v]],
            fmt="o",
            capsize=4,
            color="#d62728" if d.get("p_value", 1) < 0.05 else "#555555",
        )
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(range(len(rows)), [r for r, _ in rows], fontsize=8)
    ax.set_xlabel("paired difference, points (95% CI; red: p < 0.05)")
    return _png(fig)


# ---------------------------------------------------------------- the report


def plot_qa_set(qa_report: dict) -> bytes:
    """A generated evaluation set: eval questions per document, answer types, and rejections by reason."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    per_doc = qa_report["documents"]["per_document"]
    counts = sorted((c["eval"] for c in per_doc.values()), reverse=True)
    axes[0].bar(range(len(counts)), counts, color=NEUTRAL)
    axes[0].set_title(
        f"Eval questions per document ({qa_report['documents']['covered']} of "
        f"{qa_report['documents']['total']} covered)",
        fontsize=9,
    )
    axes[0].set_xlabel("documents, most questions first", fontsize=8)
    for ax, data, title in [
        (axes[1], qa_report["answer_types"]["eval"], "Eval questions by answer type"),
        (axes[2], qa_report["rejections"], "Candidates rejected, by reason"),
    ]:
        items = sorted(data.items(), key=lambda kv: kv[1])
        ax.barh([k.replace("_", " ") for k, _ in items], [v for _, v in items], color=NEUTRAL)
        for i, (_, v) in enumerate(items):
            ax.text(v, i, f" {v}", va="center", fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return _png(fig)


def curve_labels(points: list[dict], used_step: int) -> list[tuple[float, float, str]]:
    """(probe %, domain %, label) for the learning-vs-forgetting plane, one label per place: points that land on
    the same place (a flat curve) share one label, 'steps 20, 40, 60 (used)', instead of printing over each other.

    >>> pts = [{"step": s, "probe_accuracy": 0.4, "domain_accuracy": d} for s, d in ((0, 0.1), (20, 0.0), (40, 0.0))]
    >>> curve_labels(pts, 40)
    [(40.0, 10.0, 'step 0'), (40.0, 0.0, 'steps 20, 40 (used)')]
    """
    places: dict[tuple[float, float], list[int]] = {}
    for p in points:
        places.setdefault((round(100 * p["probe_accuracy"], 6), round(100 * p["domain_accuracy"], 6)), []).append(
            p["step"]
        )
    out = []
    for (x, y), steps in places.items():
        label = ("step " if len(steps) == 1 else "steps ") + ", ".join(str(s) for s in steps)
        out.append((x, y, label + (" (used)" if used_step in steps and used_step else "")))
    return out


def plot_curve(curve: dict) -> bytes:
    """The learning curve in two panels. Left: accuracy % against the training step, for the eval questions
    (closed book), the adapter's own training questions (dashed, when measured) and the general-knowledge probe
    (dotted). Right: domain accuracy against probe accuracy, each place labelled with its steps."""
    plt = _plt()
    pts = curve["points"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    steps = [p["step"] for p in pts]
    y = [100 * p["domain_accuracy"] for p in pts]
    x = [100 * p["probe_accuracy"] for p in pts]
    colour = ARM_COLOUR[TUNED]  # the adapter along its training: the tuned arm
    names = curve_series(curve)
    left.plot(steps, y, "-o", color=colour, label=names["eval"])
    trained = [p for p in pts if "train_accuracy" in p]
    if trained:
        left.plot(
            [p["step"] for p in trained],
            [100 * p["train_accuracy"] for p in trained],
            "--s",
            color=colour,
            alpha=0.55,
            label=names["train"],
        )
    left.plot(steps, x, ":^", color="0.45", label=names["probe"])
    left.axvline(curve["used"]["step"], color="0.7", lw=1)
    left.set_xlabel("training step (the grey line: the adapter the tuned arms use)")
    left.set_ylabel("accuracy %")
    left.set_ylim(-3, 103)
    left.set_title("Accuracy along the training run")
    left.legend(fontsize=8)
    left.grid(alpha=0.3)
    right.plot(x, y, "-o", color=colour)
    for xi, yi, label in curve_labels(pts, curve["used"]["step"]):
        right.annotate(label, (xi, yi), textcoords="offset points", xytext=(6, 4), fontsize=8)
    right.set_xlabel(f"general-knowledge probe accuracy % ({curve['probe_set']}, {pts[0]['n_probe']} items)")
    right.set_ylabel("domain accuracy %, closed book")
    right.set_title("Learning vs forgetting")
    right.grid(alpha=0.3)
    return _png(fig)


def curve_section(curve: dict | None, fig) -> list[str]:
    L = ["### Learning vs forgetting", ""]
    if not curve:
        return L + [
            f"- {MISSING} learning-vs-forgetting curve (needs {CURVE_NEEDS})",
            "",
        ]
    trained = [p for p in curve["points"] if "train_accuracy" in p]
    L += [
        "| step | domain accuracy % | probe accuracy % |" + (" its training questions % |" if trained else ""),
        "|---|---|---|" + ("---|" if trained else ""),
    ]
    L += [
        f"| {'base model' if p['step'] == 0 else p['step']} | {100 * p['domain_accuracy']:.1f} | "
        f"{100 * p['probe_accuracy']:.1f} |"
        + ((f" {100 * p['train_accuracy']:.1f} |" if "train_accuracy" in p else " – |") if trained else "")
        for p in curve["points"]
    ]
    L += [
        "",
        f"The tuned arms use step {curve['used']['step']}: {curve['used']['why']}. Domain accuracy is measured on "
        f"the first {curve['points'][0]['n_questions']} answerable eval questions, closed book; a small slice, so "
        "read the shape, not single points.",
    ]
    if trained:
        L += [
            f"Training accuracy is measured on {trained[0]['n_train_questions']} of the closed-book "
            f"questions the adapter was trained on, in their trained wording: {TRAINING_LINE_MEANING}",
        ]
    L += [""]
    L += fig(
        "curve.png",
        "Left: accuracy on the eval questions, the adapter's own training questions and the probe along the "
        "training run; right: domain accuracy against probe accuracy per training step",
        plot_curve,
        curve,
    )
    return L


def seeds_lines(metrics: dict, arms: list[str]) -> list[str]:
    out = []
    for a in arms:
        sp = metrics["arms"][a].get("seed_spread")
        if sp:
            out.append(
                f"- {ARM_LABEL[a]} across {len(sp['seeds'])} training seeds: accuracy "
                + ", ".join(f"{100 * v:.1f}%" for v in sp["accuracy"])
                + f" (mean {100 * sp['mean']:.1f}%, sd {100 * sp['sd']:.1f} pts); the CI above is for the first seed."
                + seed_guard_words(sp)
            )
    return out + ([""] if out else [])


def seed_guard_words(sp: dict) -> str:
    """Each seed's commonest answer and its share, and which seeds the collapse guard flagged (runs measured before
    the spread carried them: nothing)."""
    if "top_share" not in sp:
        return ""
    words = " Commonest answer per seed: " + ", ".join(
        f"{a!r} {100 * v:.0f}%" if a else "none" for a, v in zip(sp["top_answer"], sp["top_share"])
    )
    flagged = [str(seed) for seed, _, _ in collapsed_seeds(sp, first=True)]
    if flagged:
        return words + f"; **collapsed with seed {', '.join(flagged)}**: those answers do not measure the option."
    return words + "."


GENERATOR_WORDS = {
    "extractive": "by rules from sentences of the corpus (no language model)",
    "llm": "by a language model from passages of the corpus",
}


def eval_set_section(run_dir: Path, metrics: dict | None, fig) -> list[str]:
    """What the numbers were measured on: a hand-written set, or a generated one (how, how many, reviewed)."""
    from evalsuite.qagen.review import plain_words

    info = (metrics or {}).get("eval_set")
    qa_report = _read(run_dir, "qa/qa_report.json", "the QA generation report")
    L = ["## Evaluation set", ""]
    if not info or not info.get("synthetic"):
        n = f"{info['n']} " if info else ""
        return L + [f"The {n}questions came from a QA file given to the run (written or checked by people).", ""]
    how = GENERATOR_WORDS.get(info["generator"], f"by the {info['generator']} generator")
    L += [
        f"**{plain_words(info).capitalize()}.** The questions were generated {how}; {info['n_unanswerable']} of "
        f"the {info['n']} are unanswerable (their key name swapped for one the corpus never mentions, "
        "verified against the whole corpus). "
        + (
            ""
            if info["reviewed"]
            else "Until a person reviews them (`advisor dashboard`, Review page; then `advisor eval RUN_DIR --qa "
            "RUN_DIR/qa/reviewed.jsonl`), treat the numbers as indicative."
        ),
        "",
    ]
    if qa_report:
        m, c = qa_report["made"], qa_report["checks"]
        without = qa_report["documents"]["without_eval_questions"]
        L += [
            f"- made: {m['eval']} eval questions ({m['eval_answerable']} answerable, {m['eval_unanswerable']} "
            f"unanswerable) and {m['train']} training questions about the same facts (split "
            f"{str(qa_report['split']).replace('_', ' ')}: no eval question is trained on; "
            f"{c.get('eval_questions_equal_to_training', 0)} equal a training question)",
            f"- checks: answer verbatim in its evidence {100 * c['answer_in_evidence']:.0f}%, evidence verbatim "
            f"in its source {100 * c['evidence_in_source']:.0f}% ({c['answerable_items']} answerable items)",
            f"- documents covered: {qa_report['documents']['covered']} of {qa_report['documents']['total']}"
            + (
                "; without questions: " + ", ".join(f"{d} ({why})" for d, why in list(without.items())[:5])
                if without
                else ""
            ),
            f"- generated in {duration(qa_report['seconds'])}"
            + (f"; {qa_report['shortfall']}" if qa_report["shortfall"] else ""),
            "",
        ]
        L += fig("qa_set.png", "Generated evaluation set: coverage, answer types, rejections", plot_qa_set, qa_report)
    return L


# ---------------------------------------------------------------- the first screen: the advice in plain words

SUMMARY = "In short"  # the heading of the report's first section; report.html draws it as a panel


def header_lines(run_dir: Path, manifest: dict) -> list[str]:
    """The title and one line naming the run: its corpus, model and when it finished."""
    from advisor.core.config import read_yaml

    try:
        cfg = read_yaml(run_dir / "config.yaml") if (run_dir / "config.yaml").is_file() else {}
    except AdvisorError:
        cfg = {}
    path = Path(str((cfg.get("corpus") or {}).get("path") or ""))
    corpus = "the bundled sample" if path.parts[-3:] == ("advisor", "sample", "corpus") else path.name
    model = Path(str((cfg.get("model") or {}).get("spec") or "")).name
    when = str(manifest.get("finished") or manifest.get("updated") or "")[:10]
    about = [f"run `{run_dir.name}`"] + [
        x for x in (corpus and f"corpus {corpus}", model and f"model {model}", when and f"finished {when}") if x
    ]
    return ["# Should the knowledge go in RAG, fine-tuning, or both?", "", "Report on " + ", ".join(about) + ".", ""]


def summary_section(rec: dict | None, fit: dict | None) -> list[str]:
    """The report's first screen: the verdict, whether any option is good enough, the three main reasons and how
    sure, in plain words and rounded numbers (advisor/plain.py, as the dashboard's Overview says them)."""
    L = [f"## {SUMMARY}", ""]
    if not rec:
        return L + [
            "There is no advice yet: the run has not finished its evaluation and recommendation. "
            "What it has measured so far is below.",
            "",
        ]
    v = rec["verdict"]
    L += [f"### Advice: {option_label(v)}", "", plain.verdict_line(v), ""]
    if fit:
        L += [f"**Good enough?** {plain.fit_line(fit, rec)[1]}", ""]
    runner = plain.runner_up(rec)
    reasons = plain.main_reasons(rec) or ["The options tie on every weighted criterion."]
    L += [f"**Why {option_label(v)}**" + (f" rather than {option_label(runner)}:" if runner else ":"), ""]
    L += [f"- {r}" for r in reasons] + [""]
    L += [f"**How sure:** {plain.how_sure(rec)}", ""]
    for c in plain.cautions(rec):
        L += [f"**Before acting on it:** {c}", ""]
    return L


def how_sure(rec: dict) -> str:
    """One line: the utility margin, the win share under random weights, and the nearest flip point."""
    return "**How sure:** " + stability_detail(rec)


def stability_detail(rec: dict) -> str:
    """The win share under random weights, the utility margin and the nearest flip point, as one sentence."""
    u = sorted(rec["utilities"].items(), key=lambda kv: -kv[1])
    sens = rec["sensitivity"]
    v = option_label(rec["verdict"])
    line = f"{v} wins under {100 * sens['win_share'][rec['verdict']]:.0f}% of {sens['draws']:,} random weightings"
    nsd = rec.get("no_significant_difference") or {}
    if nsd.get("applied"):
        best = nsd["best_by_utility"]
        line += (
            f"; by utility {option_label(best)} leads {v} by "
            f"{rec['utilities'][best] - rec['utilities'][rec['verdict']]:.3f}, but not significantly, so the "
            f"cheaper {v} is advised"
        )
    elif (first := rec.get("fit_first") or {}).get("applied"):
        best = first["best_by_utility"]
        line += (
            f"; by utility {option_label(best)} leads {v} by "
            f"{rec['utilities'][best] - rec['utilities'][rec['verdict']]:.3f}, but it does not meet the quality "
            f"targets and {v} does"
        )
    elif len(u) > 1:
        line += f"; it leads {option_label(u[1][0])} by {u[0][1] - u[1][1]:.3f} in utility"
    flips = [(c, f) for c, f in sens["flip_points"].items() if f]
    if flips:
        c, f = min(flips, key=lambda cf: abs(cf[1]["change"]))
        line += (
            f"; the nearest flip: if {CRITERION_LABEL.get(c, c)} weighed {100 * f['flips_at']:.1f}% of the "
            f"decision instead of {100 * f['weight_now']:.1f}%, the advice would be "
            f"{option_label(f['new_verdict'])}{plain.not_above_base(rec, f['new_verdict'])}"
        )
    else:
        line += "; no single weight change flips it"
    return line + "."


def how_sure_lines(rec: dict) -> list[str]:
    """How sure, in two senses: stable under other priorities, and separated by the data (with the smallest
    difference the questions can detect, and a line when the verdict rests on a smaller one). A
    recommendation made before the split gets the one older line."""
    if not rec.get("stability") or not rec.get("separation"):
        return [how_sure(rec), ""]
    st, sep = rec["stability"], rec["separation"]
    L = [
        f"**How sure — stable under other priorities: {st['level']}.** {stability_detail(rec)}",
        "",
        f"**How sure — separated by the data: {'yes' if sep['separated'] else 'no'}.** {sep['why']}.",
        "",
    ]
    if sep.get("detectable_difference_pts") is not None:
        L += [
            f"Smallest accuracy difference these questions can detect: {sep['detectable_difference_pts']:.1f} points "
            "(paired, two-sided 5%, 80% power, from the observed share of questions only one option answers "
            "correctly).",
            "",
        ]
    if sep.get("below_detectable"):
        runner = sep.get("runner_up")
        pair = f"{option_label(rec['verdict'])} − {option_label(runner)}" if runner else "verdict − runner-up"
        then = (
            "it passed the test here, but this many questions find a true difference that small less than 80% "
            "of the time, so a rerun on new questions may well not"
            if sep["separated"]
            else "so on accuracy these questions cannot tell the two apart"
        )
        L += [
            f"**The verdict rests on a difference smaller than the detectable one:** accuracy {pair} is "
            f"{sep['difference_pts']:+.1f} points against {sep['detectable_difference_pts']:.1f} detectable; "
            f"{then}.",
            "",
        ]
    return L


def report_fit(rec: dict | None, run_dir: Path) -> tuple[dict | None, str]:
    """(the fit_for_purpose block, why it is missing): the recorded one, else computed from the run's measurements
    and its config's targets (advisor/plain.py, as the dashboard does) for a recommendation that predates it."""
    if not rec:
        return None, "the run has not been advised yet"
    try:
        return plain.fit_of(rec, run_dir), ""
    except AdvisorError as e:
        return None, f"the recommendation predates quality targets and the run's measurements cannot be read: {e}"


def fit_section(rec: dict | None, fit: dict | None, missing: str = "") -> list[str]:
    """Fit for purpose: each option against the quality targets by its 95% CI, the statement, and what the
    evidence points to."""
    L = ["## Fit for purpose", ""]
    if not fit:
        return L + [
            f"- {MISSING} fit for purpose ({missing or 'no recommendation'}; `advisor recommend RUN_DIR` "
            "computes it against recommend.targets)",
            "",
        ]
    t = fit["targets"]
    recorded = bool((rec or {}).get("fit_for_purpose"))
    L += [
        f"Targets: accuracy at least {100 * t['accuracy']:g}%, hallucination rate at most "
        f"{100 * t['hallucination_rate']:g}%. An option meets a target when its whole 95% confidence interval "
        "does. To hold the options to other targets, use the dashboard's What-if page or `advisor recommend "
        "RUN_DIR --targets accuracy=0.6`."
        + (
            ""
            if recorded
            else " (Computed now from the run's measurements: its recommendation predates quality targets.)"
        ),
        "",
        "| option | accuracy % [95% CI] | accuracy | hallucination % [95% CI] | hallucination | fit for purpose |",
        "|---|---|---|---|---|---|",
    ]
    for o, r in fit["options"].items():
        L.append(
            f"| {option_label(o)} | {_ci(r['accuracy'])} | {r['accuracy']['status']} | "
            f"{_ci(r['hallucination_rate'])} | {r['hallucination_rate']['status']} | **{r['fit']}** |"
        )
    L += ["", f"**{fit['statement'].split(' What the evidence points to:')[0]}**", ""]
    if fit.get("points_to"):
        L += ["What the evidence points to:", ""] + [f"- {p}" for p in fit["points_to"]] + [""]
    return L


def collapse_section(metrics: dict | None) -> list[str]:
    """A warning for every arm whose answers collapsed to one string or to empty answers."""
    bad = {a: c for a, c in ((metrics or {}).get("collapse") or {}).items() if c.get("collapsed")}
    if not bad:
        return []
    L = [
        "## Collapsed arms",
        "",
        "**Warning:** these arms gave degenerate answers, so their scores measure a failed run, not what the "
        "option can do:",
        "",
    ]
    for a, c in bad.items():
        L.append(
            f"- **{ARM_LABEL.get(a, a)}**: {c.get('reason') or 'degenerate answers'} "
            f"(top answer '{c.get('top_answer', '')}' {100 * c.get('top_share', 0):.0f}%, empty "
            f"{100 * c.get('empty_share', 0):.0f}%, n={c.get('n', '?')})"
        )
    return L + [""]


def abstention_section(metrics: dict, arms: list[str]) -> list[str]:
    """Abstention on unanswerable questions beside false abstention on answerable ones, per arm."""
    if not any(k in metrics["arms"][a] for a in arms for k in ("abstention_rate", "false_abstention_rate")):
        return []
    L = [
        "### Abstention",
        "",
        "| arm | abstains on unanswerable % | false abstention on answerable % | hallucination rate % |",
        "|---|---|---|---|",
    ]
    for a in arms:
        m = metrics["arms"][a]
        L.append(
            f"| {ARM_LABEL[a]} | {_ci(m.get('abstention_rate'))} | {_ci(m.get('false_abstention_rate'))} | "
            f"{_ci(m.get('hallucination_rate'))} |"
        )
    return L + [
        "",
        "An arm that abstains more must not buy it with refusing answerable questions: the advice scores "
        "hallucination as 1 − hallucination rate − false-abstention rate.",
        "",
        *gate_lines(metrics.get("gate")),
    ]


def gate_lines(gate: dict | None) -> list[str]:
    """What the retrieval arms' abstention gate did (eval/metrics.json "gate", retrieval/gate.py)."""
    if not gate:
        return []
    if gate.get("threshold") is None:
        return [f"The retrieval arms' abstention gate is off: {gate.get('why', 'not calibrated')}.", ""]
    did = "; ".join(
        f"{ARM_LABEL.get(a, a)} {g['gated_unanswerable']} of {g['n_unanswerable']} unanswerable and "
        f"{g['gated_answerable']} of {g['n_answerable']} answerable questions"
        for a, g in gate.get("arms", {}).items()
    )
    if gate.get("margin_threshold") is None:  # a gate file from before the margin: the cosine alone
        rule = f"whose best chunk's cosine is below {gate['threshold']:.3f}"
        turned = f"{100 * gate['share']:.0f}% of"
    else:
        rule = (
            f"whose best chunk's cosine is below {gate['threshold']:.3f} and which stands out from the 5th best "
            f"by less than {gate['margin_threshold']:.3f}"
        )
        turned = f"{gate.get('calibration_declined', '?')} of"
    return [
        f"The retrieval arms' abstention gate: a question {rule} gets the abstention answer without generating; "
        f"the thresholds turn away {turned} the {gate['n_questions']} answerable training questions they were "
        f"calibrated on (each at the {100 * gate['share']:.0f}% quantile of its signal), never evaluation "
        f"questions (retrieval.abstain_gate). It answered {did or 'no question'}.",
        "",
    ]


KNOWLEDGE_GROUPS = ("known", "maybe_known", "unknown")


def knowledge_section(metrics: dict, arms: list[str]) -> list[str]:
    """Known vs unknown facts: per arm and group (what the base model already knows), n and CIs."""
    L = ["### Known vs unknown facts", ""]
    if not any(metrics["arms"][a].get("by_knowledge") for a in arms):
        return L + [
            f"- {MISSING} known vs unknown facts (the evaluation did not class the facts by what the base "
            "model knows; set eval.known_samples > 0 and re-run it)",
            "",
        ]
    k = metrics.get("knowledge") or {}
    if k:
        counts = k.get("counts") or {}
        L += [
            f"How a fact was classed: {k.get('method', '?')} ({k.get('samples', '?')} samples at temperature "
            f"{k.get('temperature', '?')}). Answerable questions: "
            + ", ".join(f"{g.replace('_', ' ')} {counts.get(g, 0)}" for g in KNOWLEDGE_GROUPS)
            + ".",
            "",
        ]
    return L + group_table(metrics, arms, "by_knowledge", KNOWLEDGE_GROUPS, "facts")


WORDING_GROUPS = ("close", "new")  # evalsuite/wording.py GROUPS


def wording_section(metrics: dict, arms: list[str]) -> list[str]:
    """Eval questions worded like a training question vs otherwise (metrics.json wording, by_wording): per arm and
    group, n and CIs; absent when no arm answers with an adapter."""
    w = metrics.get("wording") or {}
    if not any(metrics["arms"][a].get("by_wording") for a in arms):
        return []
    counts = w.get("counts") or {}
    L = [
        "### Eval questions worded like the training questions",
        "",
        f"How a question was classed: {w.get('method', '?')} ({w.get('training_questions', '?')} training "
        f"questions). Answerable questions: close {counts.get('close', 0)}, new {counts.get('new', 0)}.",
    ]
    if not counts.get("close"):
        return L + ["None is worded like a training question, so the accuracies above measure new wording.", ""]
    L += [
        "A tuned arm that does much better on close questions than on new ones partly recalls trained wording; "
        "users' questions are new ones.",
        "",
    ]
    L += group_table(metrics, arms, "by_wording", WORDING_GROUPS, "wording")
    examples = w.get("examples") or []
    if examples:
        L += ["The close questions with the largest overlap, each beside the training question that holds it:", ""]
        L += [
            f'- {100 * e["overlap"]:.0f}%: eval "{e["question"]}" / trained "{e["training_question"]}"'
            for e in examples
        ]
        L += [""]
    return L


def group_table(metrics: dict, arms: list[str], key: str, groups: tuple[str, ...], column: str) -> list[str]:
    """Per arm and group of metrics.json arms.<arm>.<key>: n, accuracy, hallucination rate and F1 with CIs."""
    L = [f"| arm | {column} | n | accuracy % | hallucination rate % | token F1 % |", "|---|---|---|---|---|---|"]
    for a in arms:
        for g in groups:
            x = (metrics["arms"][a].get(key) or {}).get(g)
            if x:
                L.append(
                    f"| {ARM_LABEL[a]} | {g.replace('_', ' ')} | {x.get('n', '–')} | {_ci(x.get('accuracy'))} | "
                    f"{_ci(x.get('hallucination_rate'))} | {_ci(x.get('f1'))} |"
                )
    return L + [""]


def verdict_section(rec: dict, fig) -> list[str]:
    """The verdict in detail: the situation it assumed, every reason with its measurements, how sure, the
    criteria table, the weights and what would flip it."""
    v = option_label(rec["verdict"])
    L = [f"## Verdict: **{v}**", "", plain.facts_line(rec), ""]
    nsd = rec.get("no_significant_difference") or {}
    if nsd.get("applied"):
        L += [
            f"**No significant difference**: {option_label(nsd['best_by_utility'])} had the higher utility but is "
            f"not significantly better than the cheaper {option_label(nsd['cheaper'])}, so "
            f"{option_label(nsd['cheaper'])} is advised.",
            "",
        ]
    fit = rec.get("fit_for_purpose") or {}
    # the fit-for-purpose statement is the first reason when no option fits; its section above shows it
    reasons = [r for r in rec["reasons"] if r != fit.get("statement")]
    L += ["Every reason, with its measurements (95% confidence intervals, n questions):", ""]
    L += [f"- {r}" for r in reasons or ["the options tie on every weighted criterion"]] + [""]
    L += how_sure_lines(rec)
    crit = list(rec["weights"])
    L += [
        "| option | utility | " + " | ".join(CRITERION_LABEL.get(c, c) for c in crit) + " |",
        "|---|---|" + "---|" * len(crit),
    ]
    for o, u in sorted(rec["utilities"].items(), key=lambda kv: -kv[1]):
        L.append(f"| {option_label(o)} | {u:.3f} | " + " | ".join(f"{rec['scores'][o][c]:.2f}" for c in crit) + " |")
    L += [
        "",
        "Each criterion is scored from 0 to 1, higher is better: accuracy is the share answered correctly; "
        "avoiding hallucination is 1 − hallucination rate − false-abstention rate; keeping general knowledge is "
        "1 + 5 × the change in probe accuracy (capped); the costs are relative to the cheapest option. The "
        "utility is their weighted sum.",
        "",
        "Weights in use: "
        + ", ".join(f"{CRITERION_LABEL.get(k, k)} {100 * w:.1f}%" for k, w in rec["weights"].items())
        + ".",
        "",
    ]
    sens = rec["sensitivity"]
    said, steady = plain.flip_sentences(rec)
    L += ["### What would flip the advice", ""]
    L += [f"- {s}" for s in said] or ["- No change to a single weight flips the advice."]
    if said and steady:
        L.append(f"- No change to the weight of {', '.join(steady)} alone flips it.")
    if trained := plain.training_sentence(rec):
        L.append(f"- {trained}")
    L += [
        "",
        f"Share of {sens['draws']:,} random weightings of the criteria under which each option wins: "
        + ", ".join(f"{option_label(o)} {100 * s:.0f}%" for o, s in sens["win_share"].items())
        + ".",
        "",
    ]
    L += fig("sensitivity.png", "Sensitivity: win shares and flip points", plot_sensitivity, rec)
    return L


def pair_label(pair: str) -> str:
    """'rag - base' (metrics.json's paired key) as 'RAG − Base model'."""
    return " − ".join(arm_label(a.strip()) for a in pair.split(" - "))


def paired_section(metrics: dict, fig) -> list[str]:
    """Paired differences between arms on the same questions, with CIs and p-values."""
    if not metrics.get("paired"):
        return [
            f"- {MISSING} paired differences between arms (the evaluation did not compare the arms question "
            "by question)",
            "",
        ]
    L = [
        "### Paired differences (same questions)",
        "",
        "| comparison | metric | difference (pts) | 95% CI | p |",
        "|---|---|---|---|---|",
    ]
    for pair, diffs in metrics["paired"].items():
        for m, d in diffs.items():
            p = f"{d['p_value']:.3f}" if d.get("p_value") is not None else "–"
            L.append(
                f"| {pair_label(pair)} | {METRIC_LABEL.get(m, m.replace('_', ' '))} | {100 * d['value']:+.1f} | "
                f"[{100 * d['ci95'][0]:+.1f}, {100 * d['ci95'][1]:+.1f}] | {p} |"
            )
    L.append("")
    if any(m in ("accuracy", "hallucination_rate") for diffs in metrics["paired"].values() for m in diffs):
        L += fig("paired.png", "Paired differences in accuracy and hallucination", plot_paired, metrics["paired"])
    return L


def evidence_section(run_dir: Path, metrics: dict | None, arms: list[str], fig) -> list[str]:
    """Every metric per arm with its CI, then abstention, known vs unknown facts, forgetting, the learning curve
    and the paired differences."""
    L = ["## Evidence (95% bootstrap CI, n questions)", ""]
    if not arms:
        return L + [
            f"- {MISSING} evaluation (the run has no readable evaluation results; run `advisor run` to "
            "finish the eval stage)",
            "",
        ]
    failed = {a for a, c in (metrics.get("collapse") or {}).items() if c.get("collapsed")}
    L += [
        "| metric | " + " | ".join(ARM_LABEL[a] + (" (collapsed)" if a in failed else "") for a in arms) + " |",
        "|---|" + "---|" * len(arms),
    ]
    for key in METRIC_ORDER:  # every metric any arm has, as a percentage where it is a share
        if any(key in metrics["arms"][a] for a in arms):
            info = METRIC_INFO[key]
            label = info.display + (" %" if info.unit == "share" else "")
            fmt = ".0f" if info.unit in ("tokens", "MB") else ".3f"
            L.append(
                f"| {label} | " + " | ".join(_ci(metrics["arms"][a].get(key), info.percent, fmt) for a in arms) + " |"
            )
    ns = {a: metrics["arms"][a].get("accuracy", {}).get("n") for a in arms}
    nu = {a: metrics["arms"][a].get("abstention_rate", {}).get("n") for a in arms}
    L += [
        "",
        f"Answerable questions: {next(iter(ns.values()), 0)}; unanswerable: {next(iter(nu.values()), 0) or 0}."
        + plain.generator_words(metrics.get("generator")),
        "",
    ]
    if any("accuracy" in metrics["arms"][a] for a in arms):
        L += fig("arms.png", "Accuracy and hallucination per arm (95% CI)", plot_arm_bars, metrics, arms)
    L += seeds_lines(metrics, arms)
    L += abstention_section(metrics, arms)
    L += knowledge_section(metrics, arms)
    L += wording_section(metrics, arms)
    L += ["### Forgetting", ""]
    if any("forgetting" in metrics["arms"][a] for a in arms):
        L += fig("forgetting.png", "Forgetting: probe accuracy and tuned − base", plot_forgetting, metrics, arms)
    else:
        L += [
            f"- {MISSING} forgetting (no probe results: set eval.probes, e.g. eval.probes=arc_easy, and "
            "evaluate a tuned arm)",
            "",
        ]
    L += curve_section(read_curve(run_dir), fig)  # a broken curve.json stops the report with its path
    return L + paired_section(metrics, fig)


def drill_section(run_dir: Path, drill: dict | None, fig) -> list[str]:
    """The knowledge-update drill: how long each option took to absorb changed facts, and its accuracy on them."""
    L = ["## Knowledge-update drill", ""]
    if not drill:
        return L + [
            f"- {MISSING} knowledge-update drill (run `advisor drill {run_dir}`; until then the freshness "
            "criterion uses the stated knowledge_change fact only)",
            "",
        ]
    L += [
        f"{drill['n_changed_documents']} documents changed or added, {drill['n_questions']} questions on the "
        f"changed facts (from {Path(str(drill['source'])).name}).",
        "",
        "| option | how it absorbs the change | time | accuracy on changed facts % |",
        "|---|---|---|---|",
    ]
    for o, d in drill["options"].items():
        L.append(f"| {option_label(o)} | {d['how']} | {duration(d['update_s'])} | {_ci(d['accuracy'])} |")
    if drill.get("before"):
        L += [
            "",
            f"Before the update, RAG answered {_ci(drill['before']['accuracy'])} % of these questions "
            "with the old index (the facts had changed under it).",
        ]
    if drill.get("note"):
        L += ["", drill["note"]]
    L.append("")
    L += fig("drill.png", "Knowledge-update drill: time to absorb and accuracy on the changed facts", plot_drill, drill)
    return L


TUNING_METHOD = {"qlora": "QLoRA", "lora": "LoRA", "full": "full fine-tuning"}
STAGE_WORDS = {
    "ingest": "read and chunk the corpus",
    "qa": "generate questions",
    "index": "build the index",
    "sft": "build the training data",
    "tune": "train the adapter",
    "tune_both": f"train the {ARM_LABEL[BOTH]} adapter",
    "probes": "general-knowledge probes",
    "known": "class the facts the base model knows",
    "curve": "learning vs forgetting curve",
    "metrics": "score the answers",
    "recommend": "advise",
}


def stage_words(name: str) -> str:
    """A pipeline stage (advisor.pipeline.planned_stages) as a person reads it: 'eval_tuned_rag' -> 'answer
    with Fine-tune + RAG', 'tune_seed1' -> 'train the adapter (seed 1)'."""
    m = re.fullmatch(r"(eval_(\w+?)|tune)(?:_seed(\d+))?", name)
    if m and (m.group(2) is None or m.group(2) in ARM_LABEL):
        what = f"answer with {ARM_LABEL[m.group(2)]}" if m.group(2) else STAGE_WORDS["tune"]
        return what + (f" (seed {m.group(3)})" if m.group(3) else "")
    return STAGE_WORDS.get(name, name.replace("_", " "))


def _number(x, fmt: str = ".2f") -> str:
    """A recorded number, rounded; '–' when it was not recorded."""
    return format(x, fmt) if isinstance(x, (int, float)) else "–"


def budget_section(budget: dict | None) -> list[str]:
    """What `advisor run --time-budget` cut to fit (manifest.json 'plan' -> 'budget'), and how it widens the CIs."""
    if not budget:
        return []
    from advisor.plan import cut_lines

    head = (
        f"Time budget {budget['time_budget']}: planned at {duration(budget['estimate_before_s'])}, "
        f"sized to {duration(budget['estimate_after_s'])}."
    )
    if not cut_lines(budget):
        return ["### Time budget", "", head + " The plan fitted; nothing was cut.", ""]
    return (
        ["### What the time budget cut", "", head + f" Rule: {budget['rule']}.", ""]
        + [f"- {line}" for line in cut_lines(budget)]
        + [""]
    )


def build_lines(
    manifest: dict, ingest: dict | None, index_cfg: dict | None, training: dict | None, leak: dict | None
) -> list[str]:
    """Stage times, ingestion, the index, the adapter's training and the leakage check, in sentences."""
    plan = manifest.get("plan") or {}  # advisor plan's estimate, recorded by advisor run
    L = _stage_table(manifest) + [""] + budget_section(plan.get("budget"))
    L += _ingest_index_lines(ingest, index_cfg)
    L += _training_lines(training, leak)
    return L + [""]


def _stage_table(manifest: dict) -> list[str]:
    """Each stage's status, wall time, planned time and peak memory, and the run's total."""
    stages = manifest.get("stages", {})
    plan = manifest.get("plan") or {}  # advisor plan's estimate, recorded by advisor run
    estimate = plan.get("estimate") or {}
    planned = estimate.get("stages", {})
    resumed = set(estimate.get("done_earlier") or [])  # not planned: an earlier attempt's
    L = []
    if stages:
        L += ["| stage | status | wall time | planned | peak memory |", "|---|---|---|---|---|"]
        for name, st in stages.items():
            wall = duration(st["wall_s"]) if isinstance(st.get("wall_s"), (int, float)) else "–"
            est = planned.get(name, {}).get("seconds")
            est = "done earlier" if name in resumed else duration(est) if isinstance(est, (int, float)) else "–"
            rss = f"{st['peak_rss_mb'] / 1024:.1f} GB" if isinstance(st.get("peak_rss_mb"), (int, float)) else "–"
            L.append(f"| {stage_words(name)} | {st.get('status', '–')} | {wall} | {est} | {rss} |")
    else:
        L.append(f"- {MISSING} stage times (the run has no manifest)")
    if manifest.get("wall_s") is not None:
        L.append(
            f"\nTotal wall time of the last `advisor run`: {duration(manifest['wall_s'])}"
            + (f" (planned: {duration(estimate['total_s'])})." if estimate else ".")
        )
    return L


def _ingest_index_lines(ingest: dict | None, index_cfg: dict | None) -> list[str]:
    """What ingestion read and skipped, and the index it built."""
    L = []
    if ingest:
        skipped = ingest.get("skipped") or []
        L.append(
            f"- Ingest: {ingest.get('n_documents')} documents → {ingest.get('n_chunks')} chunks"
            + (
                f", {len(skipped)} files skipped ("
                + "; ".join(f"{x.get('path')}: {x.get('why')}" for x in skipped[:3])
                + ")"
                if skipped
                else ", no file skipped"
            )
            + "."
        )
    else:
        L.append(f"- {MISSING} ingestion report (the ingest stage left no report)")
    if index_cfg:
        L.append(
            f"- Index: FAISS {index_cfg.get('kind')}, {index_cfg.get('n_vectors')} chunks, embedder "
            f"`{index_cfg.get('embedder')}` ({index_cfg.get('embed_dtype', 'float32')}), "
            f"{index_cfg.get('size_bytes', 0) / 1e6:.2f} MB, built in "
            f"{duration(index_cfg.get('build_s', 0))}."
        )
    else:
        L.append(f"- {MISSING} index (the run has no index)")
    return L


def _training_lines(training: dict | None, leak: dict | None) -> list[str]:
    """The adapter's training, the leakage check and the training-token cap."""
    L = []
    if training:
        method = TUNING_METHOD.get(training["method"], training["method"])
        L.append(
            f"- Adapter: {method} on `{training['base_model']}` "
            f"({training['quantization']} weights"
            + (", multiplied in bfloat16" if training.get("cpu_matmul_dtype") == "bfloat16" else "")
            + f"), LoRA rank {training['lora']['r']}, {training['steps']} steps "
            f"over {training['tokens_seen']:,} tokens at {training['tokens_per_s']:.0f} tokens/s; final training "
            f"loss {_number(training.get('final_train_loss'))}, validation loss "
            f"{_number(training.get('final_val_loss'))}; {training['trainable_params']:,} trainable parameters."
        )
        if training.get("both_adapter"):
            L.append(f"- How the {ARM_LABEL[BOTH]} adapter was trained: {training['both_adapter']}")
    else:
        L.append(f"- {MISSING} adapter training (the run has no trained adapter)")
    if leak:
        L.append(
            f"- Leakage: no eval question is trained on; highest word-4-gram overlap of an eval question with a "
            f"training question {100 * leak['max_overlap_with_training_questions']:.0f}% (with corpus text, "
            f"expected since the facts are there: {100 * leak['max_overlap_with_corpus_text']:.0f}%)."
        )
    else:
        L.append(f"- {MISSING} leakage check (the run did not check its training data for evaluation questions)")
    cap = (leak or {}).get("token_cap") or {}
    if cap.get("capped"):
        L.append(
            f"- Training data capped at {cap['max_train_tokens']:,} tokens per pass (tuning.max_train_tokens): "
            f"every training question and {cap['n_text_segments_kept']:,} of {cap['n_text_segments_all']:,} "
            f"corpus-text segments ({cap['text_tokens_kept']:,} of {cap['text_tokens_all']:,} tokens, at least one "
            "from every document). Facts only in the segments left out reach the adapter through the training "
            "questions alone, which counts against the fine-tuned options."
        )
    elif cap.get("max_train_tokens"):
        L.append(
            f"- Training data: {cap['train_tokens']:,} tokens per pass, within the cap of "
            f"{cap['max_train_tokens']:,} (nothing left out)."
        )
    return L


def examples_section(run_dir: Path) -> list[str]:
    """Three answerable questions and one unanswerable one, with every arm's answer."""
    L = ["## Example answers", ""]
    examples = {
        a: read_jsonl(run_dir / "eval" / f"{a}.jsonl") for a in ARMS if (run_dir / "eval" / f"{a}.jsonl").exists()
    }
    if not examples:
        return L + [f"- {MISSING} example answers (the run has no answers per arm)", ""]
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
    return L


def build_report(run_dir: Path) -> tuple[str, dict[str, bytes]]:
    """(report markdown, {figure file name: PNG bytes}); the markdown links figures as report_files/<name>.
    The first section says the advice in plain words; the evidence behind it follows."""
    run_dir = Path(run_dir)
    metrics = _read(run_dir, "eval/metrics.json", "evaluation metrics")
    rec = _read(run_dir, "recommendation.json", "recommendation")
    manifest = _read(run_dir, "manifest.json", "run manifest") or {}
    training = _read(run_dir, "adapter/training.json", "adapter training record")
    figs: dict[str, bytes] = {}
    arms = [a for a in ARMS if metrics and a in metrics.get("arms", {})]
    L: list[str] = header_lines(run_dir, manifest)

    def fig(name: str, title: str, draw, *args) -> list[str]:
        """Draw a figure into `figs`; the lines that show it where the section puts them."""
        try:
            figs[name] = draw(*args)
        except ImportError:
            return [f"- {MISSING} plot '{title}' (matplotlib is not installed; make setup installs it)", ""]
        return [f"![{title}]({FIG_DIR}/{name})", ""]

    fit, why_no_fit = report_fit(rec, run_dir)
    L += summary_section(rec, fit)
    L += fit_section(rec, fit, why_no_fit)
    L += collapse_section(metrics)
    if rec:
        L += verdict_section(rec, fig)
    else:
        L += [
            f"- {MISSING} recommendation (the run has not been advised yet; `advisor recommend {run_dir}` "
            "advises it once the evaluation has finished)",
            "",
        ]
    L += eval_set_section(run_dir, metrics, fig)
    L += evidence_section(run_dir, metrics, arms, fig)
    L += drill_section(run_dir, _read(run_dir, "drill/drill.json", "knowledge-update drill"), fig)
    L += ["## Build and cost", ""]
    if rec and rec.get("evidence"):
        L += fig("cost.png", "Cost vs accuracy per option", plot_cost_accuracy, rec)
    L += build_lines(
        manifest,
        _read(run_dir, "ingest_report.json", "ingestion report"),
        _read(run_dir, "index/index_config.json", "index settings"),
        training,
        _read(run_dir, "sft/leakage.json", "leakage check"),
    )
    L += ["### Validation loss", ""]
    if training and val_loss_history(training)[2]:
        L += fig("val_loss.png", "Training and validation loss", plot_loss, training)
    else:
        L += [
            f"- {MISSING} validation-loss curve (training recorded no validation loss"
            + ("; set tuning.val_fraction > 0" if training else "")
            + ")",
            "",
        ]
    L += examples_section(run_dir)
    return "\n".join(L) + "\n", figs


# ---------------------------------------------------------------- markdown -> self-contained HTML

CSS = """body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left}
th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee;margin:.5em 0}code{background:#f3f3f3;padding:0 .2em}
li.missing{color:#a33}h1{margin-bottom:.2em}h1+p{color:#555;margin-top:0}td:first-child{white-space:nowrap}
section.summary{background:#f6f8fa;border:1px solid #d0d7de;border-radius:8px;padding:.1em 1.4em .6em;margin:1em 0 2em}
section.summary h2{font-size:1em;letter-spacing:.03em;color:#555}
section.summary h3{font-size:1.7em;margin:.2em 0}section.summary p,section.summary li{font-size:1.05em}"""


ADVICE_COLOUR = {f"Advice: {OPTION_LABEL[o]}": c for o, c in OPTION_COLOUR.items()}  # summary_section's heading


def _inline(s: str) -> str:
    s = html.escape(s, quote=False)
    s = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", s)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", s)


def to_html(md: str, figs: dict[str, bytes], title: str) -> str:
    """The report's own markdown subset (headings, lists, tables, images, bold, code) as one HTML page
    with every figure inlined as a base64 PNG."""
    out = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{CSS}</style></head><body>"
    ]
    lines = md.splitlines()
    i, in_summary = 0, False
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            text = line[level:].strip()
            if level <= 2 and in_summary:
                out.append("</section>")
                in_summary = False
            if level == 2 and text == SUMMARY:  # the first screen: a panel that reads apart from the evidence
                out.append("<section class='summary'>")
                in_summary = True
            colour = ADVICE_COLOUR.get(text) if in_summary else None  # the verdict in its arm-table colour
            style = f" style='color:{colour}'" if colour else ""
            out.append(f"<h{level}{style}>{_inline(text)}</h{level}>")
        elif line.startswith("!["):
            m = re.match(r"!\[(.*)\]\((.*)\)", line)
            name = m.group(2).split("/")[-1]
            data = base64.b64encode(figs[name]).decode()
            out.append(
                f"<figure><img alt='{html.escape(m.group(1))}' src='data:image/png;base64,{data}'>"
                f"<figcaption>{html.escape(m.group(1))}</figcaption></figure>"
            )
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append([c.strip() for c in lines[i].strip("|").split("|")])
                i += 1
            out.append("<table><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in rows[0]) + "</tr>")
            for r in rows[2:]:
                out.append("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>")
            out.append("</table>")
            continue
        elif line.startswith("- "):
            out.append("<ul>")
            while i < len(lines) and lines[i].startswith("- "):
                item = lines[i][2:]
                cls = " class='missing'" if item.startswith(MISSING) else ""
                out.append(f"<li{cls}>{_inline(item)}</li>")
                i += 1
            out.append("</ul>")
            continue
        elif line.strip():
            out.append(f"<p>{_inline(line)}</p>")
        i += 1
    out.append(("</section>" if in_summary else "") + "</body></html>")
    return "\n".join(out)


def write_report(run_dir: Path) -> Path:
    """Write report.md (+ report_files/*.png) and the self-contained report.html; returns report.md's path."""
    run_dir = Path(run_dir)
    md, figs = build_report(run_dir)
    for name, data in figs.items():
        atomic_write_bytes(run_dir / FIG_DIR / name, data)
    atomic_write_text(run_dir / "report.html", to_html(md, figs, f"RAG vs fine-tune report: {run_dir.name}"))
    out = run_dir / "report.md"
    atomic_write_text(out, md)
    return out
