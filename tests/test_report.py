"""report.md + self-contained report.html on the fixture run: plots drawn from the data files, inlined as
base64 PNGs, and a visible 'not measured in this run' line for every artifact that is missing."""

import base64
import io
import json
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from advisor.core.arms import ARM_OF_OPTION, OPTION_COLOUR, OPTION_LABEL
from advisor.core.config import QUALITY_TARGETS
from advisor.core.errors import AdvisorError
from advisor.plain import best_option, fit_line
from advisor.recommend import fit_for_purpose, load_evidence
from advisor.report import MISSING, build_report, write_report

FIXTURE = Path(__file__).parent / "fixtures" / "rundirs" / "sample-fixture"


@pytest.fixture
def run(tmp_path) -> Path:
    d = tmp_path / FIXTURE.name
    shutil.copytree(FIXTURE, d)
    return d


def as_older_run(run: Path) -> None:
    """Make the copy look like a run made before the newer measurements: no fit for purpose, no split of how
    sure, no known-vs-unknown breakdown, bare citations or collapse check, no note on the both adapter."""
    rec = json.loads((run / "recommendation.json").read_text())
    for key in ("fit_for_purpose", "stability", "separation", "collapsed"):
        rec.pop(key, None)
    (run / "recommendation.json").write_text(json.dumps(rec))
    metrics = json.loads((run / "eval/metrics.json").read_text())
    for key in ("knowledge", "collapse"):
        metrics.pop(key, None)
    for arm in metrics["arms"].values():
        arm.pop("by_knowledge", None)
        arm.pop("bare_citation_rate", None)
    (run / "eval/metrics.json").write_text(json.dumps(metrics))
    training = json.loads((run / "adapter/training.json").read_text())
    training.pop("both_adapter", None)
    (run / "adapter/training.json").write_text(json.dumps(training))


def inlined_images(html: str) -> list[Image.Image]:
    return [
        Image.open(io.BytesIO(base64.b64decode(b)))
        for b in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)
    ]


def test_full_run_report_has_every_plot_inlined_and_no_external_reference(run):
    write_report(run)
    md = (run / "report.md").read_text()
    html = (run / "report.html").read_text()
    for name in ("sensitivity", "arms", "forgetting", "curve", "paired", "cost", "val_loss"):
        assert f"report_files/{name}.png" in md and (run / "report_files" / f"{name}.png").exists(), name
    images = inlined_images(html)
    assert len(images) == 7
    for im in images:  # a drawn plot, not an empty canvas: many distinct colours, a real size
        assert im.width >= 550 and im.height >= 250  # the narrowest, the learning curve, is 560 px
        assert len(im.convert("RGB").getcolors(maxcolors=1 << 20)) > 20
    assert "src='http" not in html and 'src="http' not in html and "<script" not in html
    rec = json.loads((run / "recommendation.json").read_text())
    assert f"<h2>Verdict: <b>{OPTION_LABEL[rec['verdict']]}</b></h2>" in html
    # the fixture run predates the drill: the report says so instead of leaving a gap
    assert f"- {MISSING} knowledge-update drill (run `advisor drill" in md
    assert "<li class='missing'>not measured in this run: knowledge-update drill" in html


def test_missing_artifacts_are_named_not_silently_skipped(run):
    for rel in ("adapter/training.json", "sft/leakage.json", "ingest_report.json", "recommendation.json"):
        (run / rel).unlink()
    metrics = json.loads((run / "eval/metrics.json").read_text())
    del metrics["paired"]
    for arm in metrics["arms"].values():
        arm.pop("forgetting", None)
    (run / "eval/metrics.json").write_text(json.dumps(metrics))
    write_report(run)
    md = (run / "report.md").read_text()
    for what in (
        "recommendation",
        "forgetting",
        "paired differences",
        "ingestion report",
        "adapter training",
        "leakage check",
        "validation-loss curve",
        "knowledge-update drill",
    ):
        assert f"{MISSING} {what}" in md, what
    assert "report_files/arms.png" in md  # what exists is still drawn
    assert not (run / "report_files" / "sensitivity.png").exists()


def test_no_metrics_at_all_still_writes_a_report_that_says_so(run):
    shutil.rmtree(run / "eval")
    (run / "recommendation.json").unlink()
    write_report(run)
    md = (run / "report.md").read_text()
    assert f"{MISSING} evaluation" in md and f"{MISSING} example answers" in md
    assert (run / "report.html").exists()


def test_optional_metrics_and_a_separate_validation_history_are_used_when_present(run):
    metrics = json.loads((run / "eval/metrics.json").read_text())
    metrics["arms"]["rag"]["faithfulness"] = {"value": 0.8, "ci95": [0.7, 0.9], "n": 20}
    (run / "eval/metrics.json").write_text(json.dumps(metrics))
    training = json.loads((run / "adapter/training.json").read_text())
    for h in training["history"]:
        h.pop("val_loss", None)
    training["val_history"] = [{"step": 10, "val_loss": 3.0}, {"step": 20, "val_loss": 2.5}]
    (run / "adapter/training.json").write_text(json.dumps(training))
    ingest = json.loads((run / "ingest_report.json").read_text())
    ingest["skipped"] = [{"path": "scan.pdf", "why": "no text layer"}]
    (run / "ingest_report.json").write_text(json.dumps(ingest))
    write_report(run)
    md = (run / "report.md").read_text()
    assert "1 files skipped (scan.pdf: no text layer)" in md
    assert "| faithfulness to the passages % |" in md and "80.0 [70.0, 90.0]" in md
    assert "report_files/val_loss.png" in md


# ---------------------------------------------------------------- fit for purpose, how sure, abstention, collapse


def _advise(run: Path, **kw) -> dict:
    from advisor.commands.recommend import refresh_advice

    return refresh_advice(run, **kw)  # recommendation.json and the report, from the saved evaluation


def test_the_report_opens_with_fit_for_purpose_and_splits_how_sure_in_two(run):
    rec = _advise(run)
    md = (run / "report.md").read_text()
    assert md.index("## In short") < md.index("## Fit for purpose") < md.index("## Verdict")
    assert "Targets: accuracy at least 80%, hallucination rate at most 10%" in md
    assert "| Fine-tune + RAG | 40.0 [20.0, 60.0] | misses | 48.0 [28.0, 68.0] | misses | **misses** |" in md
    assert f"**{rec['fit_for_purpose']['statement'].split(' What the evidence points to:')[0]}**" in md
    assert "What the evidence points to:" in md
    for p in rec["fit_for_purpose"]["points_to"]:
        assert f"- {p}" in md
    assert md.count(rec["fit_for_purpose"]["statement"]) == 0  # shown once, in its section, not again under Why
    assert "**How sure — stable under other priorities: low.** Fine-tune + RAG wins under" in md
    assert "**How sure — separated by the data: no.** accuracy Fine-tune + RAG − RAG: +20.0 pts" in md
    assert "Smallest accuracy difference these questions can detect: 39.6 points" in md
    # 20 points is not significant on these 20 questions, and below the 39.6 they detect with 80% power
    assert (
        "**The verdict rests on a difference smaller than the detectable one:** accuracy Fine-tune + RAG − RAG "
        "is +20.0 points against 39.6 detectable; so on accuracy these questions cannot tell the two apart"
    ) in md
    html = (run / "report.html").read_text()
    assert "<h2>Fit for purpose</h2>" in html and "<td><b>misses</b></td>" in html


def test_a_recommendation_made_before_targets_gets_fit_for_purpose_computed_from_its_measurements(run):
    as_older_run(run)  # a recommendation.json that predates fit for purpose and the split of how sure
    rec = json.loads((run / "recommendation.json").read_text())
    write_report(run)
    md = (run / "report.md").read_text()
    fit = fit_for_purpose(load_evidence(run), QUALITY_TARGETS)  # what the dashboard computes for such a run
    assert "(Computed now from the run's measurements: its recommendation predates quality targets.)" in md
    assert f"**{fit['statement'].split(' What the evidence points to:')[0]}**" in md
    assert f"**Good enough?** {fit_line(fit, rec)[1]}" in md
    assert f"**How sure:** {OPTION_LABEL[rec['verdict']]} wins under" in md and "separated by the data" not in md
    (run / "eval" / "rag.jsonl").unlink()  # ... and when its measurements cannot be read, the report says so
    write_report(run)
    md = (run / "report.md").read_text()
    assert (
        f"- {MISSING} fit for purpose (the recommendation predates quality targets and the run's measurements "
        "cannot be read: "
    ) in md and "**Good enough?**" not in md


def test_no_separation_below_the_detectable_difference_says_the_questions_cannot_tell(run):
    from advisor.report import how_sure_lines

    rec = json.loads((run / "recommendation.json").read_text())
    rec["verdict"] = "rag"
    rec["stability"] = {"level": "medium", "why": "x"}
    rec["separation"] = {
        "separated": False,
        "why": "the CI includes 0",
        "detectable_difference_pts": 12.1,
        "difference_pts": -7.5,
        "below_detectable": True,
        "runner_up": "both",
    }
    lines = "\n".join(how_sure_lines(rec))
    assert "**How sure — separated by the data: no.** the CI includes 0." in lines
    assert (
        "accuracy RAG − Fine-tune + RAG is -7.5 points against 12.1 detectable; so on accuracy these questions "
        "cannot tell "
        "the two apart."
    ) in lines
    # significant on these questions, yet smaller than what they detect with 80% power
    rec["separation"] |= {"separated": True, "why": "the CI excludes 0", "difference_pts": 10.0}
    lines = "\n".join(how_sure_lines(rec))
    assert "**How sure — separated by the data: yes.** the CI excludes 0." in lines
    assert "accuracy RAG − Fine-tune + RAG is +10.0 points against 12.1 detectable; it passed the test here" in lines


def test_the_nearest_flip_names_a_weight_that_differs_from_the_one_now(run):
    from advisor.report import stability_detail

    rec = json.loads((run / "recommendation.json").read_text())
    # a flip half a point away (a quickstart's build cost: 10.5% against 10%) must not read "10% instead of 10%"
    rec["sensitivity"]["flip_points"] = {
        "build_cost": {"weight_now": 0.1, "flips_at": 0.105, "new_verdict": "rag", "change": 0.005},
        "accuracy": {"weight_now": 0.25, "flips_at": 0.235, "new_verdict": "rag", "change": -0.015},
    }
    rec["verdict"] = "both"
    assert "weighed 10.5% of the decision instead of 10.0%, the advice would be RAG" in stability_detail(rec)


def test_collapse_abstention_bare_citations_known_vs_unknown_and_the_both_adapter_are_reported(run):
    metrics = json.loads((run / "eval/metrics.json").read_text())
    m = lambda v, n=20: {"value": v, "ci95": [max(0, v - 0.1), min(1, v + 0.1)], "n": n}  # noqa: E731
    metrics["collapse"] = {
        "tuned": {
            "collapsed": True,
            "top_answer": "1.",
            "top_share": 0.45,
            "empty_share": 0.0,
            "n": 25,
            "reason": "45% of its answers are the same string '1.'",
        },
        "rag": {"collapsed": False, "top_answer": "x", "top_share": 0.04, "empty_share": 0.0, "n": 25, "reason": ""},
    }
    metrics["knowledge"] = {
        "samples": 4,
        "temperature": 0.7,
        "counts": {"known": 2, "maybe_known": 6, "unknown": 12},
        "method": "base model, closed book: greedy correct = known; any of k samples correct = "
        "maybe_known; else unknown",
    }
    for arm, a in metrics["arms"].items():
        a["bare_citation_rate"] = m(0.38 if arm == "rag" else 0.0, 25)
        a["by_knowledge"] = {
            "maybe_known": {"n": 6, "accuracy": m(0.5, 6), "hallucination_rate": m(0.4, 6), "f1": m(0.45, 6)},
            "unknown": {"n": 12, "accuracy": m(0.25, 12), "hallucination_rate": m(0.7, 12), "f1": m(0.3, 12)},
        }
        if arm == "tuned":
            a["by_wording"] = {
                "close": {"n": 15, "accuracy": m(0.6, 15), "hallucination_rate": m(0.3, 15), "f1": m(0.6, 15)},
                "new": {"n": 5, "accuracy": m(0.2, 5), "hallucination_rate": m(0.8, 5), "f1": m(0.2, 5)},
            }
    metrics["wording"] = {"threshold": 0.5, "ngram": 4, "training_questions": 40, "counts": {"close": 15, "new": 5}}
    metrics["wording"]["method"] = "close = at least half its word 4-grams in one training question"
    metrics["wording"]["examples"] = [
        {"id": "q3", "question": "When did the bridge open?", "training_question": "When did the bridge open?",
         "overlap": 1.0}
    ]  # fmt: skip
    (run / "eval/metrics.json").write_text(json.dumps(metrics))
    training = json.loads((run / "adapter/training.json").read_text())
    training["both_adapter"] = "one adapter on a mixture of closed-book and in-context (RAFT) examples"
    (run / "adapter/training.json").write_text(json.dumps(training))
    rec = _advise(run)
    assert rec["collapsed"] == ["fine-tune"]
    md = (run / "report.md").read_text()
    assert md.index("## Collapsed arms") < md.index("## Verdict")
    assert "- **Fine-tune**: 45% of its answers are the same string '1.' (top answer '1.' 45%, empty 0%, n=25)" in md
    assert "| Fine-tune (collapsed) |" in md  # the evidence table marks the column
    assert "| bare citation answers % | 0.0 [0.0, 10.0] | 38.0 [28.0, 48.0] |" in md
    assert "### Abstention" in md and "| RAG | 0.0 [0.0, 0.0] | 0.0 [0.0, 0.0] | 84.0 [68.0, 96.0] |" in md
    assert "### Known vs unknown facts" in md and "Answerable questions: known 2, maybe known 6, unknown 12." in md
    assert "| RAG | unknown | 12 | 25.0 [15.0, 35.0] | 70.0 [60.0, 80.0] | 30.0 [20.0, 40.0] |" in md
    wording = md[md.index("### Eval questions worded like the training questions") : md.index("### Forgetting")]
    assert "(40 training questions). Answerable questions: close 15, new 5." in wording
    assert "| Fine-tune | new | 5 | 20.0 [10.0, 30.0] | 80.0 [70.0, 90.0] | 20.0 [10.0, 30.0] |" in wording
    assert "| RAG |" not in wording  # only arms split by wording have rows
    assert '- 100%: eval "When did the bridge open?" / trained "When did the bridge open?"' in wording
    # no eval question worded like a training question (the sample's hand-written questions): a line, no table
    metrics["wording"]["counts"] = {"close": 0, "new": 20}
    metrics["arms"]["tuned"]["by_wording"] = {"new": metrics["arms"]["tuned"]["by_wording"]["new"] | {"n": 20}}
    (run / "eval/metrics.json").write_text(json.dumps(metrics))
    _advise(run)
    md = (run / "report.md").read_text()
    wording = md[md.index("### Eval questions worded like the training questions") : md.index("### Forgetting")]
    assert "Answerable questions: close 0, new 20.\nNone is worded like a training question" in wording
    assert "| arm | wording |" not in wording
    assert (
        "- How the Fine-tune + RAG adapter was trained: one adapter on a mixture of closed-book and "
        "in-context (RAFT) examples"
    ) in md
    assert "RAG answers 38.0% of questions with a bare citation marker" in md
    html = (run / "report.html").read_text()
    assert "<h2>Collapsed arms</h2>" in html and "<h3>Known vs unknown facts</h3>" in html


def test_a_run_without_the_newer_measurements_says_which_are_missing(run):
    as_older_run(run)
    _advise(run)
    md = (run / "report.md").read_text()
    assert f"- {MISSING} known vs unknown facts" in md
    assert "## Collapsed arms" not in md and "bare citation" not in md and 'both" adapter' not in md


def test_learning_curve_and_seed_spread_are_shown_when_the_run_measured_them(run):
    curve = {
        "points": [
            {"step": 0, "domain_accuracy": 0.05, "probe_accuracy": 0.4, "n_questions": 40, "n_probe": 30},
            {"step": 30, "domain_accuracy": 0.2, "probe_accuracy": 0.4, "n_questions": 40, "n_probe": 30},
            {"step": 92, "domain_accuracy": 0.15, "probe_accuracy": 0.33, "n_questions": 40, "n_probe": 30},
        ],
        "probe_set": "arc_easy",
        "used": {"step": 92, "why": "the final adapter, fixed before any evaluation"},
    }
    (run / "eval" / "curve.json").write_text(json.dumps(curve))
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    metrics["arms"]["tuned"]["seed_spread"] = {"seeds": [0, 1], "accuracy": [0.125, 0.1], "mean": 0.1125, "sd": 0.0177}
    (run / "eval" / "metrics.json").write_text(json.dumps(metrics))
    write_report(run)
    md = (run / "report.md").read_text()
    assert "### Learning vs forgetting" in md and "| 30 | 20.0 | 40.0 |" in md and "use step 92" in md
    with Image.open(
        run / "report_files" / "curve.png"
    ) as im:  # two panels side by side: along the steps, and the plane
        assert im.size[0] >= 2 * im.size[1]
    assert "across 2 training seeds: accuracy 12.5%, 10.0% (mean 11.2%, sd 1.8 pts)" in md
    # each seed's commonest answer, and a seed that collapsed said in words
    guard = {"top_answer": ["1,000", "10"], "top_share": [0.11, 0.26], "collapsed": [False, True]}
    metrics["arms"]["tuned"]["seed_spread"].update(guard)
    (run / "eval" / "metrics.json").write_text(json.dumps(metrics))
    write_report(run)
    md = (run / "report.md").read_text()
    assert "Commonest answer per seed: '1,000' 11%, '10' 26%; **collapsed with seed 1**" in md
    assert load_evidence(run).seed_collapse == {"fine-tune": [(1, "10", 0.26)]}  # what the advice reads


def test_the_curve_with_its_training_questions_shows_them_and_an_unlearnt_adapter_is_a_flip(run):
    from advisor.commands.recommend import refresh_advice

    def pt(step, dom, probe, train):
        return {"step": step, "domain_accuracy": dom, "probe_accuracy": probe, "n_questions": 40, "n_probe": 30} | {
            "train_accuracy": train,
            "n_train_questions": 40,
        }

    points = [pt(0, 0.05, 0.4, 0.0), pt(30, 0.05, 0.4, 0.1), pt(92, 0.0, 0.38, 0.2)]
    del points[0]["train_accuracy"], points[0]["n_train_questions"]  # the base model does not answer them
    curve = {"points": points, "probe_set": "arc_easy", "used": {"step": 92, "why": "the final adapter"}}
    (run / "eval" / "curve.json").write_text(json.dumps(curve))
    refresh_advice(run)  # recommendation.json reads the curve's last point, then the report is written
    rec = json.loads((run / "recommendation.json").read_text())
    assert rec["training_fit"] == {
        "step": 92, "train_accuracy": 0.2, "n": 40, "domain_accuracy": 0.0, "n_questions": 40, "learnt": False
    }  # fmt: skip
    md = (run / "report.md").read_text()
    assert "| step | domain accuracy % | probe accuracy % | its training questions % |" in md
    assert "| base model | 5.0 | 40.0 | – |" in md
    assert "| 30 | 5.0 | 40.0 | 10.0 |" in md and "| 92 | 0.0 | 38.0 | 20.0 |" in md
    flips = md.split("### What would flip the advice")[1].split("Share of")[0]
    assert "answers only 20% of the questions it was trained on (n=40): it has not learnt them yet" in flips
    # learnt (the last point at or above half): no such flip, and the table still shows the column
    points[-1]["train_accuracy"] = 0.9
    (run / "eval" / "curve.json").write_text(json.dumps(curve))
    refresh_advice(run)
    md = (run / "report.md").read_text()
    assert "| 92 | 0.0 | 38.0 | 90.0 |" in md and "it was trained on" not in md.split("### What would flip")[1]
    # a broken curve file stops the advice with its path and what to do, and leaves the last advice in place
    (run / "eval" / "curve.json").write_text('{"points": [')
    with pytest.raises(AdvisorError, match=r"curve\.json.*delete it and run the pipeline again"):
        refresh_advice(run)
    assert json.loads((run / "recommendation.json").read_text())["training_fit"]["train_accuracy"] == 0.9
    with pytest.raises(AdvisorError, match=r"learning curve.*curve\.json"):  # the report reads it the same way
        write_report(run)
    del points[1]["probe_accuracy"]  # a point without its numbers: the dashboard's check, here too (read_curve)
    (run / "eval" / "curve.json").write_text(json.dumps(curve))
    with pytest.raises(AdvisorError, match=r"curve\.json: points\[1\] lacks a number for probe_accuracy"):
        write_report(run)


def test_a_run_without_a_curve_says_so(run):
    (run / "eval" / "curve.json").unlink()
    write_report(run)
    assert f"{MISSING} learning-vs-forgetting curve" in (run / "report.md").read_text()


# ---------------------------------------------------------------- the first screen speaks to people

REPRS = ("=True", "=False", "{'", "['", "None", "': ")


def section(md: str, heading: str) -> str:
    """The markdown from `## heading` to the next `## ` heading."""
    start = md.index(f"## {heading}\n")
    end = md.find("\n## ", start + 1)
    return md[start : end if end > 0 else len(md)]


def test_the_report_opens_with_the_verdict_fit_and_three_main_reasons_in_plain_words(run):
    from advisor.plain import main_reasons, verdict_line

    rec = _advise(run)
    md = (run / "report.md").read_text()
    first = section(md, "In short")
    assert md.index("## In short") < md.index("## Fit for purpose"), "the summary is the first section"
    assert f"### Advice: {OPTION_LABEL[rec['verdict']]}" in first and verdict_line(rec["verdict"]) in first
    assert f"**Good enough?** {fit_line(rec['fit_for_purpose'], rec)[1]}" in first
    bullets = [line[2:] for line in first.splitlines() if line.startswith("- ")]
    assert len(bullets) == 3 and bullets == main_reasons(rec)
    # the numbers a person reads are the run's own, rounded: the accuracy of the option held against the targets,
    # from metrics.json, in whole percent
    best = best_option(rec["fit_for_purpose"], rec)
    acc = json.loads((run / "eval" / "metrics.json").read_text())["arms"][ARM_OF_OPTION[best]]["accuracy"]["value"]
    assert f"answers {100 * acc:.0f}% of questions correctly (target: at least " in first
    assert not re.search(r"\d\.\d\d", first), "no number with more than one decimal on the first screen"
    assert not re.search(r"(?<![\w-])(rag|fine-tune)(?![\w-])", first), "options are named by their labels"
    assert not re.search(r"\b[a-z]+_[a-z_]+\b", first), "no config keys on the first screen"
    assert not any(r in first for r in REPRS), first
    assert "How sure:" in first and rec["separation"]["runner_up"] and "The measurements" in first
    html = (run / "report.html").read_text()
    panel = html[html.index("<section class='summary'>") : html.index("</section>")]
    assert html.index("<section class='summary'>") < html.index("<h2>Fit for purpose</h2>")
    assert f"color:{OPTION_COLOUR[rec['verdict']]}" in panel and "Good enough?" in panel
    assert panel.count("<li>") == 3


def test_the_report_says_settings_and_facts_as_sentences_not_python_values(run):
    rec = _advise(run, facts={"citations_required": True, "latency_target_s": 0.5})
    md = (run / "report.md").read_text()
    body = md[: md.index("## Example answers")]  # the model's answers are quoted as they are
    for r in REPRS:
        assert r not in body, r
    assert "citations_required" not in body and "Answers must cite their sources: **yes**" in body
    assert "Latency target per question, seconds (0 = none): **0.5**" in body
    assert "see advisor/recommend.py" not in body and "(no manifest.json)" not in body
    assert "Weights in use: accuracy 25.0%, avoiding hallucination 20.0%" in body
    assert f"| {OPTION_LABEL[rec['verdict']]} | {rec['utilities'][rec['verdict']]:.3f} |" in body
    assert "| RAG − Base model | accuracy (correct answers) |" in body  # paired differences by label
    assert "| answer with Fine-tune + RAG | done |" in body and "eval_tuned_rag" not in body  # stages in words
    training = json.loads((run / "adapter" / "training.json").read_text())
    assert f"final training loss {training['final_train_loss']:.2f}" in body
    assert str(training["final_val_loss"]) not in body  # 3.3704440982286736 is said as 3.37


def test_plain_reasons_name_each_criterion_in_words():
    from advisor.plain import main_reasons

    ev = {
        "accuracy": {"rag": {"value": 0.5}, "fine-tune": {"value": 0.5}},
        "hallucination_rate": {"rag": {"value": 0.3}, "fine-tune": {"value": 0.3}},
        "latency_p50_s": {"rag": 2.0, "fine-tune": 0.25},
        "build_s": {"rag": 20, "fine-tune": 7200},
    }
    scores = {
        "rag": {"serve_cost": 0.1, "style": 0.0, "build_cost": 1.0},
        "fine-tune": {"serve_cost": 1.0, "style": 1.0, "build_cost": 0.4},
    }
    rec = {
        "verdict": "fine-tune",
        "utilities": {"fine-tune": 0.7, "rag": 0.5},
        "scores": scores,
        "evidence": ev,
        "weights": {"serve_cost": 0.5, "style": 0.3, "build_cost": 0.2},
        "facts": {"style_learning": True, "latency_target_s": 1.0},
    }
    assert main_reasons(rec) == [
        "Fine-tune answers faster: 250 ms a question, against 2.0 s for RAG, which misses the 1.0 s target.",
        "A style or format must be learned, and RAG cannot teach it: retrieval does not change how the model writes.",
    ]  # build cost favours RAG, so it is no reason for Fine-tune


@pytest.mark.parametrize("module", ["advisor.plain", "advisor.seeds", "advisor.report"])
def test_plain_words_and_seed_examples_run(module):
    import doctest
    import importlib

    res = doctest.testmod(importlib.import_module(module))
    assert res.attempted > 0 and res.failed == 0


def test_the_report_says_what_the_retrieval_gate_turned_away_by_which_rule():
    from advisor.report import gate_lines

    arms = {"rag": {"gated_unanswerable": 5, "n_unanswerable": 20, "gated_answerable": 1, "n_answerable": 80}}
    both = {"share": 0.05, "n_questions": 420, "threshold": 0.526, "margin_threshold": 0.058}
    text = gate_lines({**both, "calibration_declined": 4, "arms": arms})[0]
    assert "cosine is below 0.526 and which stands out from the 5th best by less than 0.058" in text
    assert "turn away 4 of the 420 answerable training questions" in text and "5% quantile" in text
    assert "RAG 5 of 20 unanswerable and 1 of 80 answerable questions" in text
    old = gate_lines({"share": 0.05, "n_questions": 300, "threshold": 0.6, "arms": {}})[0]  # a file before the margin
    assert "cosine is below 0.600 gets" in old and "5th" not in old and "turn away 5% of the 300" in old
    assert "gate is off: too few" in gate_lines({"threshold": None, "why": "too few"})[0]


def test_the_evidence_says_what_answered_and_in_which_dtype_its_4bit_layers_multiplied(run, monkeypatch):
    """eval/metrics.json "generator" (pipeline.generator_record) is what the machine ran: bfloat16 products on an
    AVX512-BF16 CPU under auto, else float32; the report's evidence names the model and says bfloat16 only then, a
    server-backed run names the server, and a run from before the record gets no line."""
    import advisor.core.embedders as embedders
    from advisor.core.config import load_config
    from advisor.pipeline import generator_record

    metrics = json.loads((run / "eval/metrics.json").read_text())
    assert "generator" not in metrics  # the fixture is from before the record
    for has_bf16, dtype in ((True, "bfloat16"), (False, "float32")):
        monkeypatch.setattr(embedders, "cpu_has_bf16", lambda has=has_bf16: has)
        rec = generator_record(load_config("quickstart"))
        assert rec == {
            "backend": "hf",
            "model": "smollm2-135m-instruct",
            "quantization": "nf4",
            "cpu_matmul_dtype": dtype,
        }
        (run / "eval/metrics.json").write_text(json.dumps({**metrics, "generator": rec}))
        md = build_report(run)[0]
        said = "The arms' answers come from smollm2-135m-instruct (nf4, its 4-bit layers multiplied in bfloat16)."
        assert (said in md) == (dtype == "bfloat16")
        assert "The arms' answers come from smollm2-135m-instruct (nf4" in md
    served = load_config("quickstart", ["generation.backend=openai", "generation.base_url=http://127.0.0.1:8001/v1"])
    assert generator_record(served) == {
        "backend": "openai",
        "base_url": "http://127.0.0.1:8001/v1",
        "model": "smollm2-135m-instruct",
    }
    (run / "eval/metrics.json").write_text(json.dumps({**metrics, "generator": generator_record(served)}))
    assert "The arms generated on http://127.0.0.1:8001/v1 (model smollm2-135m-instruct)." in build_report(run)[0]
    (run / "eval/metrics.json").write_text(json.dumps(metrics))  # the fixture's own file: no record
    assert "answers come from" not in build_report(run)[0] and "arms generated on" not in build_report(run)[0]


@pytest.mark.parametrize(
    "rel, what, again",
    [
        ("eval/metrics.json", "evaluation metrics", "advisor run --out"),
        ("recommendation.json", "recommendation", "advisor run --out"),
        ("manifest.json", "run manifest", None),
        ("adapter/training.json", "adapter training record", "advisor run --out"),
        ("ingest_report.json", "ingestion report", "advisor run --out"),
        ("index/index_config.json", "index settings", "advisor run --out"),
        ("sft/leakage.json", "leakage check", "advisor run --out"),
        ("drill/drill.json", "knowledge-update drill", "advisor drill"),
        ("qa/qa_report.json", "the QA generation report", "advisor run --out"),
    ],
)
def test_a_broken_run_file_stops_the_report_with_its_path_not_called_missing(run, rel, what, again):
    """A file the run wrote that no longer parses (or is not an object) is named with what to do; the report in
    place is kept, as a broken curve.json already did."""
    write_report(run)
    before = (run / "report.md").read_text()
    (run / rel).parent.mkdir(parents=True, exist_ok=True)
    for broken, says in (('{"arms": ', "is not valid JSON (line 1"), ("[1, 2]", "is not a JSON object")):
        (run / rel).write_text(broken)
        with pytest.raises(AdvisorError) as e:
            write_report(run)
        assert f"{what} {run / rel} {says}" in str(e.value)
        if again:
            assert f"delete it and run `{again} {run}` again" in str(e.value)
        else:  # the manifest: as advisor run says of it
            assert "fix or delete it to rebuild the run's bookkeeping" in str(e.value)
        assert (run / "report.md").read_text() == before
