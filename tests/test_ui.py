"""The dashboard, page by page, with streamlit.testing.v1.AppTest on the fixture run directory
(tests/fixtures/rundirs/sample-fixture: 25 questions of a real quickstart run; no model needed), plus the
broken cases a person meets: no runs, a half-finished run, a corrupt metrics.json, bad launch input."""

from __future__ import annotations

import ast
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from advisor.cli import main
from advisor.core.advice import CRITERIA, DEFAULT_FACTS, FACT_CHOICES, PRESETS
from advisor.core.arms import ARM_LABEL, ARM_TABLE, OPTION_COLOUR, OPTION_LABEL
from advisor.core.artifacts import read_jsonl
from advisor.core.config import ARMS, QUALITY_TARGETS
from advisor.recommend import fit_for_purpose, load_evidence, recommend, separation
from ui.costs import DAYS_PER_MONTH, HOURS_PER_MONTH
from ui.rundata import LAUNCH, LAUNCH_EXIT, is_right, list_runs, run_info

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "ui" / "app.py"
FIXTURE = Path(__file__).parent / "fixtures" / "rundirs" / "sample-fixture"
PAGES = ["overview", "runs", "evidence", "questions", "review", "whatif", "cost", "new_run"]


@pytest.fixture
def runs_dir(tmp_path) -> Path:
    """A runs folder holding a copy of the fixture run (pages never write to it, but a copy keeps it so)."""
    d = tmp_path / "runs"
    shutil.copytree(FIXTURE, d / FIXTURE.name)
    return d


def open_app(runs_dir: Path, monkeypatch, page: str = "overview", run: str | None = None) -> AppTest:
    monkeypatch.setenv("ADVISOR_RUNS_DIR", str(runs_dir))
    at = AppTest.from_file(str(APP), default_timeout=60)
    if run:
        at.query_params["run"] = run
    at.run()
    if page != "overview":
        at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def text(at: AppTest) -> str:
    """Everything the page says in markdown, captions, alerts and metrics, as one string."""
    parts = [
        e.value
        for kind in ("markdown", "caption", "info", "warning", "error", "success", "title", "subheader")
        for e in getattr(at, kind)
    ]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    return "\n".join(str(p) for p in parts)


def charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]


def chart_data(at: AppTest) -> str:
    """The data every chart draws (Streamlit sends it beside the spec), as one string of its records."""
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    frames = [
        convert_arrow_bytes_to_pandas_df(d.data.data) for c in at.get("vega_lite_chart") for d in c.proto.datasets
    ]
    return json.dumps([f.to_dict("records") for f in frames], ensure_ascii=False, default=str)


def rows(run_dir: Path, arm: str) -> list[dict]:
    return read_jsonl(run_dir / "eval" / f"{arm}.jsonl")


# ---------------------------------------------------------------- the pages on a finished run


def as_older_run(run: Path) -> None:
    """Make the copy's recommendation.json look like one made before fit for purpose, the split of how sure
    and the newer situation facts (budget, latency target, data privacy): the page must compute or default them."""
    rec = json.loads((run / "recommendation.json").read_text())
    for key in ("fit_for_purpose", "stability", "separation", "collapsed", "eval_set", "freshness_source"):
        rec.pop(key, None)
    rec["facts"] = {
        k: v for k, v in rec["facts"].items() if k in ("knowledge_change", "citations_required", "style_learning")
    }
    (run / "recommendation.json").write_text(json.dumps(rec))


def verdict_heading(option: str) -> str:
    """The verdict card's heading: the option's label in its colour from the arm table."""
    return f'## :color[{OPTION_LABEL[option]}]{{foreground="{OPTION_COLOUR[option]}"}}'


def test_overview_shows_the_verdict_how_sure_reasons_and_flip_points(runs_dir, monkeypatch):
    rec = json.loads((FIXTURE / "recommendation.json").read_text())
    at = open_app(runs_dir, monkeypatch)
    t = text(at)
    assert verdict_heading("both") in t and "retrieve from the index too" in t
    # the fixture's Fine-tune + RAG wins under 18% of random weightings
    assert ":red-badge[not stable under other priorities]" in t
    assert "Confidence" not in t  # a manager reads "confidence" as "this works"; the badges say what they measure
    assert "18% of 10,000 random weightings" in t
    for reason in [r for r in rec["reasons"] if r != rec["fit_for_purpose"]["statement"]][:3]:
        assert f"- {reason}" in t
    assert "If **serving cost (latency)** mattered more — 19.5% of the decision instead of 10.0%" in t
    assert "the advice would become **RAG**" in t
    assert "Fine-tune + RAG utility 0.555" in t and "RAG utility 0.549" in t
    assert not at.error and not at.warning


def test_overview_names_an_adapter_that_has_not_learnt_its_training_questions_among_what_would_change_it(
    runs_dir, monkeypatch
):
    run = runs_dir / FIXTURE.name
    rec = json.loads((run / "recommendation.json").read_text())
    rec["training_fit"] = {"step": 60, "train_accuracy": 0.05, "n": 40, "learnt": False}
    (run / "recommendation.json").write_text(json.dumps(rec))
    t = text(open_app(runs_dir, monkeypatch))
    said = (
        "- The adapter behind Fine-tune and Fine-tune + RAG answers only 5% of the questions it was trained on "
        "(n=40): it has not learnt them yet, so more training (tuning.epochs, tuning.lr) may change their numbers"
    )
    assert said in t and t.index("What would change the advice") < t.index(said)
    rec["training_fit"] |= {"train_accuracy": 0.9, "learnt": True}
    (run / "recommendation.json").write_text(json.dumps(rec))
    assert "questions it was trained on" not in text(open_app(runs_dir, monkeypatch))


def test_overview_leads_with_fit_for_purpose_computed_for_a_run_that_predates_it(runs_dir, monkeypatch):
    as_older_run(runs_dir / FIXTURE.name)
    at = open_app(runs_dir, monkeypatch)
    t = text(at)
    line = (
        "No option is good enough yet: the best, Fine-tune + RAG, answers 40% of questions correctly (target: at "
        "least 80%) and hallucinates on 48% (target: at most 10%)."
    )
    assert line in t
    assert t.index(line) < t.index(verdict_heading("both")), "fit for purpose comes before the verdict"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Fine-tune + RAG accuracy"] == "40%" and metrics["Fine-tune + RAG hallucination rate"] == "48%"
    assert "target at least 80% :red-badge[misses]" in t and "target at most 10% :red-badge[misses]" in t
    # the same block advisor.recommend computes for a new run: its statement's pointers are shown
    ev = load_evidence(FIXTURE)
    fit = fit_for_purpose(ev, QUALITY_TARGETS)
    for p in fit["points_to"]:
        assert f"- {p}" in t
    # two separate badges: stable under other priorities, separated by the data
    utilities = json.loads((FIXTURE / "recommendation.json").read_text())["utilities"]
    sep = separation(ev, "both", max((o for o in utilities if o != "both"), key=utilities.get))
    badge = ":green-badge[separated by the data]" if sep["separated"] else ":orange-badge[not separated by the data]"
    assert ":red-badge[not stable under other priorities] " + badge in t
    assert f"Separated by the data: {sep['why']}." in t
    # utility explained in a line, linked to the criteria table under its anchor
    assert "**Utility** is each option's weighted average score" in t and "(#criteria)" in t
    assert any(h.proto.anchor == "criteria" for h in at.subheader)
    assert "Budget for building: **medium**" in t  # every fact the engine takes, defaults for the older run
    # the cost the verdict weighed, in money, reconciled with the cheapest option at the default prices
    assert "In money, Fine-tune + RAG costs **" in t and "At these settings Fine-tune costs least (" in t


def test_overview_reads_the_recorded_fit_for_purpose_and_separation_of_a_newer_run(runs_dir, monkeypatch):
    run = runs_dir / FIXTURE.name
    # Fine-tune + RAG's accuracy CI is [20, 60]%: it meets "at least 20%" by the whole interval
    rec = recommend(load_evidence(run), "balanced", targets={"accuracy": 0.2, "hallucination_rate": 0.9})
    rec["separation"]["why"] = "recorded why"
    (run / "recommendation.json").write_text(json.dumps(rec))
    at = open_app(runs_dir, monkeypatch)
    t = text(at)
    assert (
        "Good enough: Fine-tune + RAG answers 40% of questions correctly (target: at least 20%) and hallucinates "
        "on 48% (target: at most 90%), both shown by the 95% confidence intervals."
    ) in t
    assert "target at least 20% :green-badge[meets]" in t
    assert "Separated by the data: recorded why." in t
    unfit = recommend(load_evidence(run), "balanced")  # nothing fits: the engine's first reason is the fit statement
    (run / "recommendation.json").write_text(json.dumps(unfit))
    t = text(open_app(runs_dir, monkeypatch))
    assert unfit["reasons"][0] == unfit["fit_for_purpose"]["statement"] and f"- {unfit['reasons'][0]}" not in t
    assert f"- {unfit['reasons'][1]}" in t  # said once, in the fit block, not again among the reasons


def test_the_fit_line_says_plainly_whether_any_option_is_good_enough():
    from advisor.plain import fit_line

    ev = load_evidence(FIXTURE)
    # Fine-tune + RAG: accuracy 40% [20, 60], hallucination 48% [28, 68]; RAG 20% and 84%, Fine-tune 5% and 88%
    unclear = fit_for_purpose(ev, {"accuracy": 0.3, "hallucination_rate": 0.9})
    assert fit_line(unclear, {"verdict": "both"}) == (
        "both",
        (
            "No option is shown to be good enough yet: the best, Fine-tune + RAG, answers 40% of questions correctly "
            "(target: at least 30%) and hallucinates on 48% (target: at most 90%); the 95% confidence intervals are too "
            "wide to tell."
        ),
    )
    met = fit_for_purpose(ev, {"accuracy": 0.2, "hallucination_rate": 0.9})
    best, line = fit_line(met, {"verdict": "fine-tune"})  # the advice is not the option that meets the targets
    assert best == "both" and line.startswith("Fine-tune + RAG meets the targets: it answers 40%")
    assert "The advice, Fine-tune, does not meet them" in line


def test_overview_downloads_the_runs_own_report_html(runs_dir, monkeypatch):
    import streamlit

    run = runs_dir / FIXTURE.name
    (run / "report.html").write_bytes(b"<!doctype html><title>the run's own report</title>\xc3\xa9")
    offered = []
    real = streamlit.download_button
    monkeypatch.setattr(streamlit, "download_button", lambda *a, **k: offered.append((a, k)) or real(*a, **k))
    at = open_app(runs_dir, monkeypatch)
    (label, data), kw = offered[0][0][:2], offered[0][1]
    assert label == "Download report" and data == (run / "report.html").read_bytes()
    assert kw["file_name"] == f"{run.name}-report.html" and kw["mime"] == "text/html"
    assert at.get("download_button")[0].proto.label == "Download report"
    assert "no report to download" not in text(at)


def test_overview_says_how_to_make_the_report_when_a_run_has_none(runs_dir, monkeypatch):
    run = runs_dir / FIXTURE.name
    (run / "report.html").unlink(missing_ok=True)
    at = open_app(runs_dir, monkeypatch)
    assert not at.get("download_button")
    assert f"This run has no report to download yet: `advisor recommend {run}` writes it" in text(at)
    assert not at.exception


def test_the_arm_table_names_and_colours_every_arm_once_for_every_page_and_the_report(runs_dir, monkeypatch):
    assert [a.name for a in ARM_TABLE] == list(ARMS)
    assert {a.option for a in ARM_TABLE} - {None} == {"rag", "fine-tune", "both"}
    assert len({a.label for a in ARM_TABLE}) == len({a.colour for a in ARM_TABLE}) == len(ARM_TABLE)
    # No page, chart module or the report keeps a label or colour map of its own.
    for f in [*(ROOT / "ui").rglob("*.py"), ROOT / "advisor" / "report.py"]:
        src = f.read_text()
        for a in ARM_TABLE:
            assert a.colour not in src, f"{f.relative_to(ROOT)} spells {a.name}'s colour; read advisor.core.arms"
        for old in ("tuned + RAG", "base (closed book)", "tuned (QLoRA)", '"Both"'):
            assert old not in src, f"{f.relative_to(ROOT)} names an arm its own way: {old}"
    # The charts draw each arm in its table colour, whatever the page.
    at = open_app(runs_dir, monkeypatch, "evidence")
    scales = [
        e["scale"]
        for spec in charts(at)
        for layer in spec.get("layer", [spec])
        for e in [layer.get("encoding", {}).get("color", {})]
        if e.get("field") == "arm"
    ]
    assert scales and all(sc["range"] == [a.colour for a in ARM_TABLE] for sc in scales)
    assert all(sc["domain"] == [a.label for a in ARM_TABLE] for sc in scales)


def test_confidence_is_the_recorded_stability_and_is_recomputed_for_older_runs():
    from ui.common import confidence

    old = json.loads((FIXTURE / "recommendation.json").read_text())
    del old["stability"]  # as a run made before it recorded stability: computed from its sensitivity analysis
    assert confidence(old) == (
        "low",
        "wins under 18% of 10,000 random weightings; the smallest single weight change that flips it is 0.01",
    )
    new = recommend(load_evidence(FIXTURE), "balanced")
    assert confidence(new) == (new["stability"]["level"], new["stability"]["why"]) == confidence(old)
    assert confidence({**new, "stability": {"level": "low", "why": "recorded"}}) == ("low", "recorded")


def test_runs_page_lists_every_run_and_compares_two(runs_dir, monkeypatch):
    other = runs_dir / "sample-copy"
    shutil.copytree(FIXTURE, other)
    half = runs_dir / "half-finished"
    _make_half_finished(half)
    at = open_app(runs_dir, monkeypatch, "runs")
    table = at.dataframe[0].value
    assert set(table["run"]) == {"sample-fixture", "sample-copy", "half-finished"}
    row = table.set_index("run").loc["sample-fixture"]
    assert (row["corpus"], row["model"], row["status"], row["verdict"]) == (
        "sample",
        "smollm2-135m-instruct",
        "done",
        "Fine-tune + RAG",
    )
    assert row["date"] == "2026-12-01 16:19 UTC"
    assert table.set_index("run").loc["half-finished", "status"] == "incomplete"

    at.selectbox(key="cmp_a").set_value("sample-fixture").run()
    at.selectbox(key="cmp_b").set_value("sample-copy").run()
    compared = at.dataframe[1].value
    assert list(compared.columns) == ["sample-fixture", "sample-copy"]
    assert compared.loc["verdict"].tolist() == ["Fine-tune + RAG", "Fine-tune + RAG"]
    assert compared.loc["accuracy: RAG", "sample-fixture"].startswith("20.0% [")
    assert charts(at), "the comparison chart is missing"


def test_evidence_page_charts_carry_ci_error_bars(runs_dir, monkeypatch):
    at = open_app(runs_dir, monkeypatch, "evidence")
    specs = charts(at)
    assert len(specs) >= 6  # accuracy, hallucination, probe accuracy, forgetting, retrieval, validation loss
    ci_charts = [
        s
        for s in specs
        if any(layer.get("encoding", {}).get("y2", layer.get("encoding", {}).get("x2")) for layer in s.get("layer", []))
    ]
    assert len(ci_charts) >= 5, "accuracy, hallucination, probe, forgetting and retrieval charts need CI bars"
    blob = json.dumps(specs, ensure_ascii=False)
    for label in (
        "share correct",
        "share of questions",
        "probe accuracy",
        "probe accuracy change, tuned − base",
        "validation loss",
        "optimizer step",
    ):
        assert label in blob, label
    t = text(at)
    recall = json.loads((FIXTURE / "eval" / "metrics.json").read_text())["arms"]["rag"]["recall_at_k"]["value"]
    assert f"RAG recall@3 {100 * recall:.0f}%" in t and "recall@3" in blob  # the k is the run's retrieval.top_k
    assert "among the 3 chunks put in the prompt" in t
    assert "max overlap with training questions 20%" in t and "max overlap with corpus text 38%" in t
    assert "20 answerable, 5 unanswerable" in t
    assert "final validation loss 3.249" in t
    assert not at.error


def walk(node):
    """Every element under `node`, in page order, with the list of its siblings and its place among them."""
    kids = list(getattr(node, "children", {}).values())
    for i, child in enumerate(kids):
        yield child, kids, i
        yield from walk(child)


def test_evidence_puts_everything_after_the_paired_differences_in_four_tabs(runs_dir, monkeypatch):
    """The lead (the options compared question by question) stays on top; the rest is in tabs, each holding its
    own sections, so the page is not one ~5,800 px column."""
    from ui.common import EVIDENCE_TABS

    at = open_app(runs_dir, monkeypatch, "evidence")
    tabs = at.tabs
    assert [t.label for t in tabs] == list(EVIDENCE_TABS)
    held = {t.label: [e.value for e, _, _ in walk(t) if e.type == "subheader"] for t in tabs}
    assert held == {
        "Accuracy and hallucination": [
            "Accuracy",
            "Hallucination",
            "Meaning of the answers",
            "Faithfulness to the retrieved passages",
        ],
        "Known facts and wording": ["Known vs unknown facts"],  # the fixture's adapter saw no eval wording
        "Updates, latency and retrieval": ["Knowledge-update drill", "Latency", "Retrieval"],
        "Training and forgetting": [
            "Forgetting (general knowledge)",
            "Training: validation loss",
            "Training seeds",
            "Training: what the adapter learnt along the way",
            "Leakage check",
        ],
    }
    for label, heading in EVIDENCE_TABS.items():  # the heading the screenshots wait for is on its tab
        assert heading in held[label]
    in_tabs = {id(e) for t in tabs for e, _, _ in walk(t)}
    lead = [e.value for e in at.subheader if id(e) not in in_tabs]
    assert lead == ["RAG vs fine-tune vs both, question by question"]


def test_evidence_says_what_answered_when_the_run_recorded_it(runs_dir, monkeypatch):
    """metrics.json "generator" (a run from before it has none, as the fixture): the caption under the title names
    the model and says when its 4-bit layers multiplied in bfloat16."""
    assert "answers come from" not in text(open_app(runs_dir, monkeypatch, "evidence"))
    path = runs_dir / FIXTURE.name / "eval" / "metrics.json"
    m = json.loads(path.read_text())
    m["generator"] = {
        "backend": "hf",
        "model": "smollm2-135m-instruct",
        "quantization": "nf4",
        "cpu_matmul_dtype": "bfloat16",
    }
    path.write_text(json.dumps(m))
    said = "The arms' answers come from smollm2-135m-instruct (nf4, its 4-bit layers multiplied in bfloat16)."
    assert said in open_app(runs_dir, monkeypatch, "evidence").caption[1].value  # under the run line


def test_evidence_shows_each_training_seed_and_names_a_collapsed_one(runs_dir, monkeypatch):
    assert "Trained with one seed" in text(open_app(runs_dir, monkeypatch, "evidence"))  # the fixture: one seed
    path = runs_dir / FIXTURE.name / "eval" / "metrics.json"
    m = json.loads(path.read_text())
    m["arms"]["tuned"]["seed_spread"] = {
        "seeds": [0, 1, 2],
        "accuracy": [0.1, 0.05, 0.0],
        "mean": 0.05,
        "sd": 0.05,
        "top_answer": ["12", "1,000", "10"],
        "top_share": [0.1, 0.26, 0.08],
        "collapsed": [False, True, False],
    }
    path.write_text(json.dumps(m))
    at = open_app(runs_dir, monkeypatch, "evidence")
    table = next(d.value for d in at.dataframe if "seed" in d.value.columns)
    assert list(table["seed"]) == [0, 1, 2] and list(table["accuracy %"]) == [10.0, 5.0, 0.0]
    assert list(table["commonest answer"]) == ["12", "1,000", "10"] and list(table["its share %"]) == [10, 26, 8]
    assert list(table["collapsed"]) == ["", "yes", ""] and set(table["option"]) == {ARM_LABEL["tuned"]}
    assert f"{ARM_LABEL['tuned']}: mean 5.0%, sd 5.0 pts over 3 seeds" in text(at)
    assert "Trained with one seed" not in text(at)


def test_evidence_leads_with_the_paired_differences_of_the_options_in_points_and_plain_words(runs_dir, monkeypatch):
    paired = json.loads((FIXTURE / "eval" / "metrics.json").read_text())["paired"]
    at = open_app(runs_dir, monkeypatch, "evidence")
    assert at.subheader[0].value == "RAG vs fine-tune vs both, question by question"  # first, before any arm bars
    table = at.dataframe[0].value
    first, second = table.iloc[0], table.iloc[1]
    assert (first["comparison"], first["metric"]) == ("Fine-tune + RAG vs RAG", "accuracy (correct answers)")
    assert first["difference (pts)"] == pytest.approx(100 * paired["tuned_rag - rag"]["accuracy"]["value"]) == 20.0
    assert (first["95% CI (pts)"], first["p"], first["the data favour"]) == (
        "[-5.0, +45.0]",
        "p = 0.160",
        "neither (CI includes 0)",
    )
    assert "what it shows" not in table.columns, "said once per comparison above the table, not on every row"
    meaning = dict(
        line.removeprefix("- **").split("**: ", 1)
        for m in at.markdown
        for line in m.value.splitlines()
        if line.startswith("- **") and " vs " in line.split("**: ")[0]
    )
    assert meaning["Fine-tune + RAG vs RAG"] == "what fine-tuning adds to RAG"
    # p 0 in metrics.json is below what 1,000 resamples resolve; a lower hallucination rate is the better one
    assert paired["tuned_rag - rag"]["hallucination_rate"]["p_value"] == 0
    assert (second["metric"], second["difference (pts)"], second["p"], second["the data favour"]) == (
        "hallucination rate",
        pytest.approx(-36.0),
        "p < 0.001",
        "Fine-tune + RAG",
    )
    assert list(dict.fromkeys(table["comparison"])) == [
        "Fine-tune + RAG vs RAG",
        "Fine-tune + RAG vs Fine-tune",
        "Fine-tune vs RAG",
        "RAG vs Base model",
        "Fine-tune vs Base model",
    ]
    assert list(meaning) == list(dict.fromkeys(table["comparison"]))
    assert meaning["Fine-tune vs RAG"] == "fine-tuning against retrieval"
    assert meaning["Fine-tune + RAG vs Fine-tune"] == "what retrieval adds to Fine-tune"
    assert meaning["RAG vs Base model"] == "what retrieval adds to the base model"
    # no raw names anywhere a person reads: arm keys, metric keys, a bare "p 0"
    shown = (
        json.dumps(table.to_dict("records"), ensure_ascii=False) + text(at) + json.dumps(charts(at)) + chart_data(at)
    )
    for raw in (
        "tuned_rag",
        "tuned - base",
        "wrong_and_confident_rate",
        "semantic_similarity",
        "hallucination_rate",
        "p = 0.000",
        "p 0",
    ):
        assert raw not in shown, raw
    assert set(table["p"].str[:4]) <= {"p = ", "p < "}
    # the first chart: accuracy differences per comparison, in percentage points
    first_chart = charts(at)[0]
    bars = first_chart["layer"][0]["encoding"]
    assert bars["y"]["field"] == "comparison" and "percentage points" in bars["x"]["title"]
    assert "are not paired directly" not in text(at)
    # a run made before RAG and Fine-tune were paired says so instead
    metrics_file = runs_dir / FIXTURE.name / "eval" / "metrics.json"
    older = json.loads(metrics_file.read_text())
    older["paired"].pop("tuned - rag")
    metrics_file.write_text(json.dumps(older))
    assert "RAG and Fine-tune are not paired directly in this run's metrics.json" in text(
        open_app(runs_dir, monkeypatch, "evidence")
    )


def test_a_bar_of_zero_gets_a_visible_marker_and_label(runs_dir, monkeypatch):
    metrics = json.loads((FIXTURE / "eval" / "metrics.json").read_text())
    assert metrics["arms"]["base"]["exact_match"]["value"] == 0  # a bar of no height in the accuracy chart
    at = open_app(runs_dir, monkeypatch, "evidence")
    accuracy = next(s for s in charts(at) if s["layer"][0]["encoding"].get("y", {}).get("title") == "share correct")
    marks = {
        layer["mark"]["type"]: layer
        for layer in accuracy["layer"]
        if "datum.value === 0" in json.dumps(layer.get("transform", []))
    }
    assert marks["point"]["mark"]["shape"] == "diamond" and marks["point"]["encoding"]["y"]["field"] == "value"
    assert marks["text"]["encoding"]["text"] == {"value": "0%"}
    assert marks["point"]["encoding"]["xOffset"]["field"] == "metric"  # on the zero bar's own place in the group
    # the paired chart's zero difference (Fine-tune vs Base model, accuracy) is marked the same way, in points
    paired = charts(at)[0]
    assert any(
        layer["mark"]["type"] == "text" and layer["encoding"]["text"] == {"value": "0 pts"} for layer in paired["layer"]
    )
    assert "a ◆ marks a value of exactly 0" in text(at)


def test_every_evidence_chart_has_a_caption_and_the_newer_measurements_are_shown(runs_dir, monkeypatch):
    at = open_app(runs_dir, monkeypatch, "evidence")
    n_charts = 0
    for element, siblings, i in walk(at.main):
        if element.type == "vega_lite_chart":
            n_charts += 1
            after = siblings[i + 1] if i + 1 < len(siblings) else None
            assert after is not None and after.type == "caption" and len(after.value) > 40, "a chart lacks its caption"
    assert n_charts == len(charts(at)) >= 11
    blob = chart_data(at)
    for label in (
        "semantic similarity",
        "faithfulness to the passages",
        "median latency (s)",
        "95th-percentile latency (s)",
        "known to the base model (n=1)",
        "maybe known (n=1)",
        "unknown to it (n=18)",
    ):
        assert label in blob, label
    t = text(at)
    for heading in (
        "Meaning of the answers",
        "Faithfulness to the retrieved passages",
        "Known vs unknown facts",
        "Latency",
        "Knowledge-update drill",
    ):
        assert heading in t, heading


def test_the_evidence_page_shows_accuracy_on_questions_worded_like_the_training_questions(runs_dir, monkeypatch):
    assert "Questions worded like the training questions" not in text(open_app(runs_dir, monkeypatch, "evidence"))
    path = runs_dir / FIXTURE.name / "eval" / "metrics.json"
    m = json.loads(path.read_text())
    acc = lambda v, n: {"value": v, "ci95": [max(0, v - 0.2), min(1, v + 0.2)], "n": n}  # noqa: E731
    for arm, close, new in (("base", 0.0, 0.0), ("tuned", 0.7, 0.25)):
        m["arms"][arm]["by_wording"] = {
            "close": {"n": 12, "accuracy": acc(close, 12)},
            "new": {"n": 8, "accuracy": acc(new, 8)},
        }
    m["wording"] = {"method": "close = at least 50% of the eval question's word 4-grams occur in one training question"}
    m["wording"]["examples"] = [
        {"id": "e7", "question": "When did the bridge open?", "training_question": "When did the bridge open?",
         "overlap": 1.0}
    ]  # fmt: skip
    path.write_text(json.dumps(m))
    at = open_app(runs_dir, monkeypatch, "evidence")
    assert "Questions worded like the training questions" in text(at)
    pairs = next(d.value for d in at.dataframe if "training question" in d.value.columns)
    assert pairs.to_dict("records") == [
        {
            "overlap": "100%",
            "eval question": "When did the bridge open?",
            "training question": "When did the bridge open?",
        }
    ]
    blob = chart_data(at)
    assert "worded like a training question (n=12)" in blob and "worded otherwise (n=8)" in blob
    assert "at least 50% of the eval question's word 4-grams" in text(at)
    # no question worded like a training question (the sample's hand-written ones): a line instead of the chart
    m["wording"]["counts"] = {"close": 0, "new": 20}
    for arm in ("base", "tuned"):
        m["arms"][arm]["by_wording"] = {"new": m["arms"][arm]["by_wording"]["new"]}
    path.write_text(json.dumps(m))
    at = open_app(runs_dir, monkeypatch, "evidence")
    assert "None of the eval questions is worded like a question the adapter was trained on" in text(at)
    assert "worded otherwise (n=8)" not in chart_data(at)


def test_the_evidence_page_plots_the_learning_curve_and_the_training_questions_when_measured(runs_dir, monkeypatch):
    at = open_app(runs_dir, monkeypatch, "evidence")
    blob, t = chart_data(at), text(at)
    assert "eval questions (40), closed book" in blob and "probe: arc_easy (30 items)" in blob
    assert "its own training questions" not in blob  # the fixture's curve predates training accuracy
    assert "The tuned arms use step 92: the final adapter" in t and "dashed line" not in t
    path = runs_dir / FIXTURE.name / "eval" / "curve.json"
    curve = json.loads(path.read_text())
    for p, acc in zip(curve["points"][1:], (0.3, 0.6, 0.85)):
        p.update(train_accuracy=acc, n_train_questions=20)
    path.write_text(json.dumps(curve))
    at = open_app(runs_dir, monkeypatch, "evidence")
    assert "its own training questions (20)" in chart_data(at)
    assert "20 of the questions the adapter was trained on, in their trained wording (85% at step 92)" in text(at)
    del curve["points"][1]["probe_accuracy"]
    path.write_text(json.dumps(curve))
    t = text(open_app(runs_dir, monkeypatch, "evidence"))
    assert "curve.json: points[1] lacks a number for probe_accuracy" in t
    assert "Leakage" in t or "leakage" in t  # the page goes on past a broken curve
    path.unlink()
    assert "This run measured no learning curve" in text(open_app(runs_dir, monkeypatch, "evidence"))


def test_the_dashboard_checks_every_point_of_the_learning_curve(tmp_path):
    from ui.rundata import RunDataError, load_curve

    (tmp_path / "eval").mkdir()
    assert load_curve(tmp_path) is None
    good = {"step": 0, "domain_accuracy": 0.1, "probe_accuracy": 0.4, "n_questions": 40, "n_probe": 30}
    for points, said in (
        ([], "has no 'points'"),
        ([good, [20, 0.1]], r"points\[1\] must be an object"),
        ([good, good | {"train_accuracy": 0.5}], r"points\[1\] lacks a number for n_train_questions"),
        ([good | {"n_probe": None}], r"points\[0\] lacks a number for n_probe"),
    ):
        (tmp_path / "eval" / "curve.json").write_text(json.dumps({"points": points, "used": {"step": 0}}))
        with pytest.raises(RunDataError, match=said):
            load_curve(tmp_path)
    (tmp_path / "eval" / "curve.json").write_text(json.dumps({"points": [good], "used": {}}))
    with pytest.raises(RunDataError, match="which step the tuned arms use"):
        load_curve(tmp_path)
    (tmp_path / "eval" / "curve.json").write_text(json.dumps({"points": [good], "used": {"step": 0}}))
    assert load_curve(tmp_path)["points"] == [good]


def test_the_drill_is_shown_when_measured_and_its_absence_says_what_to_run(runs_dir, monkeypatch):
    run = (runs_dir / FIXTURE.name).resolve()
    at = open_app(runs_dir, monkeypatch, "evidence")
    assert f"Not measured — run `advisor drill {run}`" in text(at)
    m = lambda v, n=8: {"value": v, "ci95": [max(0, v - 0.2), min(1, v + 0.2)], "n": n}  # noqa: E731
    (run / "drill").mkdir()
    (run / "drill" / "drill.json").write_text(
        json.dumps(
            {
                "source": "advisor/sample/drill",
                "n_changed_documents": 2,
                "n_questions": 8,
                "steps": 20,
                "before": {"accuracy": m(0.125)},
                "options": {
                    "rag": {"how": "re-index", "update_s": 21.5, "accuracy": m(0.75)},
                    "fine-tune": {"how": "train", "update_s": 640.0, "accuracy": m(0.0)},
                    "both": {"how": "re-index", "update_s": 21.5, "accuracy": m(0.625)},
                },
                "note": "The run's own full adapter training took 761 s.",
            }
        )
    )
    at = open_app(runs_dir, monkeypatch, "evidence")
    t = text(at)
    assert "Not measured — run `advisor drill" not in t
    assert "2 changed or new documents" in t and "before it, RAG answered 12% with the old index" in t
    assert "seconds to absorb the change" in json.dumps(charts(at)) and "accuracy on the changed facts" in chart_data(
        at
    )
    assert '"arm": "Fine-tune", "value": 640.0' in chart_data(at)
    assert "The run's own full adapter training took 761 s." in t


def sortable(at):
    """The Questions page switched to its one interactive table."""
    return at.radio(key="q_view").set_value("Sortable table").run()


def test_questions_page_shows_every_answer_in_full_ten_questions_a_page(runs_dir, monkeypatch):
    at = open_app(runs_dir, monkeypatch, "questions")
    assert at.radio(key="q_view").value == "Full answers" and not at.dataframe  # the default view
    by_arm = {
        a: {r["id"]: r for r in rows(runs_dir / "sample-fixture", a)} for a in ("base", "rag", "tuned", "tuned_rag")
    }
    ids = list(by_arm["rag"])
    seen = []
    pages = at.selectbox(key="q_page_25")
    assert list(pages.options) == ["1–10 of 25", "11–20 of 25", "21–25 of 25"]
    for p in range(3):
        at.selectbox(key="q_page_25").set_value(p).run()
        page = at.table[0].value
        assert list(page.columns) == ["id", "question", "gold", *(a.label for a in ARM_TABLE)]
        for _, row in page.iterrows():  # every answer whole, the longest (174 characters) too
            for a in ARM_TABLE:
                assert row[a.label].endswith(by_arm[a.name][row["id"]]["answer"])
        seen += list(page["id"])
    assert seen == ids
    # a filter with fewer than ten questions: one page, no page picker
    at.toggle(key="q_una").set_value(True).run()
    n = sum(bool(r["unanswerable"]) for r in by_arm["rag"].values())
    assert n < 10 and len(at.table[0].value) == n and not [s for s in at.selectbox if s.key.startswith("q_page")]


def test_questions_page_lists_every_question_and_filters(runs_dir, monkeypatch):
    at = sortable(open_app(runs_dir, monkeypatch, "questions"))
    run = runs_dir / "sample-fixture"
    by_arm = {a: {r["id"]: r for r in rows(run, a)} for a in ("base", "rag", "tuned", "tuned_rag")}
    ids = list(by_arm["rag"])
    table = at.dataframe[0].value
    assert list(table["id"]) == ids and len(ids) == 25
    first = table.iloc[0]
    assert first["gold"] == "11 / eleven"
    assert first["RAG"] == "✗ " + by_arm["rag"]["e004"]["answer"]
    assert first["RAG sources"].startswith("1. board-of-directors.md")

    at.selectbox(key="q_wrong").set_value("wrong in rag").run()
    assert len(at.dataframe[0].value) == sum(not is_right(r) for r in by_arm["rag"].values()) == 21
    at.selectbox(key="q_wrong").set_value("all questions").run()
    at.toggle(key="q_una").set_value(True).run()
    assert set(at.dataframe[0].value["id"]) == {i for i, r in by_arm["rag"].items() if r["unanswerable"]}
    at.toggle(key="q_una").set_value(False).run()
    at.toggle(key="q_dis").set_value(True).run()
    disagree = {i for i in ids if len({is_right(by_arm[a][i]) for a in by_arm}) > 1}
    assert set(at.dataframe[0].value["id"]) == disagree and len(disagree) == 12

    # One question opened: its answers per arm and the chunks retrieval gave it.
    at.selectbox(key="q_open").set_value("e043").run()
    t = text(at)
    assert "Gold answer: **18 months / up to 18 months**" in t
    labels = [e.label for e in at.expander]
    contexts = by_arm["rag"]["e043"]["contexts"]
    assert len(labels) == len(contexts)
    for c, label in zip(contexts, labels):
        assert c["source"] in label and f"{c['score']:.4f}" in label
    assert "Fine-tune + RAG was given the same chunks." in t
    assert any(c["text"][:40] in e.value for c in contexts for e in at.text)
    assert "recall@3 1.00" in t and "recall@k" not in t  # the run's retrieval.top_k


def test_questions_table_shows_the_four_arms_side_by_side_in_a_1400_px_window(runs_dir, monkeypatch):
    at = sortable(open_app(runs_dir, monkeypatch, "questions"))
    frame = at.dataframe[0]
    columns = list(frame.value.columns)
    arms = [a.label for a in ARM_TABLE]
    assert columns[:7] == ["id", "question", "gold", *arms]  # every answer before any sources column
    assert columns[7:] == ["RAG sources", "Fine-tune + RAG sources"]
    # At 1400 px with the sidebar open the table is 940 px wide (Chromium, wide layout): the id, question, gold and
    # the four answers must fit in it with room for the scroll bar, and long answers wrap instead of being cut.
    widths = json.loads(frame.proto.columns)
    assert sum(widths[c]["width"] for c in columns[:7]) <= 920
    assert frame.proto.row_height > 64  # Streamlit wraps cell text only in rows taller than 64 px


def test_a_retrieved_chunk_shows_its_rank_and_a_rank_score_not_a_similarity(runs_dir, monkeypatch):
    run = runs_dir / FIXTURE.name
    assert json.loads((run / "index" / "index_config.json").read_text())["hybrid"]  # fused dense + BM25 ranks
    at = open_app(runs_dir, monkeypatch, "questions")
    at.selectbox(key="q_open").set_value("e043").run()
    contexts = {r["id"]: r for r in rows(run, "rag")}["e043"]["contexts"]
    labels = [e.label for e in at.expander]
    assert len(labels) == len(contexts) == 3
    for c, label in zip(contexts, labels):
        assert label.startswith(f"rank {c['rank']} of 3 · {c['source']} · rank score {c['score']:.4f}"), label
        assert "similarity" not in label
    assert (
        "Rank score: reciprocal rank fusion of the embedding and BM25 rankings, the sum of 1 / (60 + rank) over "
        "both (at most 0.0328, when both rank a chunk first). It orders the chunks; it is not a similarity"
    ) in text(at)
    # a dense-only index scores by cosine similarity, and says so
    cfg = json.loads((run / "index" / "index_config.json").read_text())
    (run / "index" / "index_config.json").write_text(json.dumps(cfg | {"hybrid": False}))
    at = open_app(runs_dir, monkeypatch, "questions")
    at.selectbox(key="q_open").set_value("e043").run()
    assert len(at.expander) == 3 and all("· cosine similarity " in e.label for e in at.expander)
    assert "rank score" not in text(at)


def test_whatif_slider_flips_the_verdict_through_the_recommendation_engine(runs_dir, monkeypatch):
    at = open_app(runs_dir, monkeypatch, "whatif")
    assert verdict_heading("both") in text(at)
    assert at.slider(key="w_serve_cost").value == pytest.approx(0.1)

    at.slider(key="w_serve_cost").set_value(0.5).run()
    t = text(at)
    assert verdict_heading("rag") in t
    assert "Changed: the run's own settings gave Fine-tune + RAG." in t
    # The page shows what advisor.recommend computes for the same weights: no second implementation.
    weights = {c: PRESETS["balanced"][c] for c in CRITERIA} | {"serve_cost": 0.5}
    expected = recommend(load_evidence(runs_dir / "sample-fixture"), "balanced", weights)
    assert expected["verdict"] == "rag"
    for opt, label in (("rag", "RAG"), ("fine-tune", "Fine-tune"), ("both", "Fine-tune + RAG")):
        assert f"{label} utility {expected['utilities'][opt]:.3f}" in t

    # Situation facts recompute too; a preset resets every slider; all-zero weights give a message.
    at.button(key="wi_reset").click().run()  # reset to the run's settings
    assert verdict_heading("both") in text(at)
    at.toggle(key="f_style_learning").set_value(True).run()
    styled = recommend(
        load_evidence(runs_dir / "sample-fixture"), "balanced", PRESETS["balanced"], {"style_learning": True}
    )
    assert f"RAG utility {styled['utilities']['rag']:.3f}" in text(at)
    saved = json.loads((FIXTURE / "recommendation.json").read_text())
    assert styled["utilities"]["rag"] < saved["utilities"]["rag"]  # rag cannot learn a style: its score drops
    at.selectbox(key="wi_preset").set_value("cost-first").run()
    assert at.slider(key="w_build_cost").value == pytest.approx(0.225)
    for c in CRITERIA:
        at.slider(key=f"w_{c}").set_value(0.0)
    at.run()
    assert any("all weights are zero" in w.value for w in at.warning)
    assert not at.exception


def test_whatif_offers_every_situation_fact_the_engine_takes_and_every_target(runs_dir, monkeypatch):
    from ui.rundata import FACT_LABEL, TARGET_LABEL

    at = open_app(runs_dir, monkeypatch, "whatif")
    widgets = {w.key: w for kind in ("select_slider", "toggle", "number_input") for w in getattr(at, kind)}
    for k in DEFAULT_FACTS:  # the engine's own list: a fact it gains and the page lacks fails here
        assert f"f_{k}" in widgets, f"What-if offers no control for the fact {k}"
        assert k in FACT_LABEL and widgets[f"f_{k}"].label == FACT_LABEL[k], f"fact {k} has no plain label"
        if k in FACT_CHOICES:
            assert list(widgets[f"f_{k}"].options) == [str(c) for c in FACT_CHOICES[k]]
    for k in QUALITY_TARGETS:
        assert f"t_{k}" in widgets and widgets[f"t_{k}"].label == TARGET_LABEL[k]
        assert widgets[f"t_{k}"].value == pytest.approx(100 * QUALITY_TARGETS[k])


def _utilities_on_page(at) -> dict[str, str]:
    return {m.label.removesuffix(" utility"): m.value for m in at.metric if m.label.endswith(" utility")}


def test_whatif_through_every_fact_and_target_gives_the_utilities_of_advisor_recommend(runs_dir, monkeypatch, capsys):
    run = runs_dir / FIXTURE.name
    ev = load_evidence(run)
    at = open_app(runs_dir, monkeypatch, "whatif")
    weights = {c: PRESETS["balanced"][c] for c in CRITERIA}
    facts = dict(DEFAULT_FACTS) | json.loads((FIXTURE / "recommendation.json").read_text())["facts"]
    moved = {"knowledge_change": "daily", "budget": "low", "latency_target_s": 0.5}  # non-default values
    for k in DEFAULT_FACTS:
        facts[k] = moved[k] if k in moved else not facts[k]
        widget = (
            at.select_slider(key=f"f_{k}")
            if k in FACT_CHOICES
            else at.toggle(key=f"f_{k}")
            if isinstance(DEFAULT_FACTS[k], bool)
            else at.number_input(key=f"f_{k}")
        )
        widget.set_value(facts[k]).run()
        want = recommend(ev, "balanced", weights, facts)
        assert _utilities_on_page(at) == {OPTION_LABEL[o]: f"{u:.3f}" for o, u in want["utilities"].items()}, k
    at.number_input(key="t_accuracy").set_value(30.0).run()
    at.number_input(key="t_hallucination_rate").set_value(90.0).run()
    targets = {"accuracy": 0.3, "hallucination_rate": 0.9}
    want = recommend(ev, "balanced", weights, facts, targets)
    assert want["fit_for_purpose"]["options"]["both"]["hallucination_rate"]["status"] == "meets"
    assert "target at most 90% :green-badge[meets]" in text(at)

    # advisor recommend with the same settings prints the same verdict and utilities
    pairs = lambda d: [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in d.items()]  # noqa: E731
    capsys.readouterr()
    assert (
        main(
            [
                "recommend",
                str(run),
                "--dry-run",
                "--preset",
                "balanced",
                "--weights",
                *pairs(weights),
                "--facts",
                *pairs(facts),
                "--targets",
                *pairs(targets),
            ]
        )
        == 0
    )
    first = capsys.readouterr().out.splitlines()[0]
    page = _utilities_on_page(at)
    assert first.startswith(f"verdict: {want['verdict']}  (preset balanced; utilities: ")
    assert first.endswith(", ".join(f"{o} {page[OPTION_LABEL[o]]}" for o in want["utilities"]) + ")")

    # Reset restores the run's own weights, every fact and the targets.
    at.slider(key="w_accuracy").set_value(0.9).run()
    at.button(key="wi_reset").click().run()
    own = dict(DEFAULT_FACTS) | json.loads((FIXTURE / "recommendation.json").read_text())["facts"]
    for k, v in own.items():
        assert at.session_state[f"f_{k}"] == v, k
    assert at.session_state["t_accuracy"] == 80.0 and at.session_state["t_hallucination_rate"] == 10.0
    assert at.slider(key="w_accuracy").value == pytest.approx(0.25)
    saved = json.loads((FIXTURE / "recommendation.json").read_text())
    again = recommend(ev, saved["preset"], saved["weights"], own, QUALITY_TARGETS)
    assert _utilities_on_page(at) == {OPTION_LABEL[o]: f"{u:.3f}" for o, u in again["utilities"].items()}
    assert not at.exception


def set_cost(
    at,
    currency: str,
    build_price: float,
    serve_price: float,
    qpd: int,
    rebuilds: float | None = None,
    always_on: bool = False,
):
    """The Cost page's settings, set one widget at a time as a user would."""
    at.selectbox(key="cost_currency").set_value(currency).run()
    at.number_input(key="cost_build_price").set_value(build_price).run()
    at.number_input(key="cost_serve_price").set_value(serve_price).run()
    at.number_input(key="cost_qpd").set_value(qpd).run()
    if rebuilds is not None:
        at.number_input(key="cost_rebuilds").set_value(rebuilds).run()
    if always_on:
        at.toggle(key="cost_always_on").set_value(True).run()
    return at


def test_cost_page_projects_monthly_cost_in_money_from_measured_latency_and_build_time(runs_dir, monkeypatch):
    at = set_cost(
        open_app(runs_dir, monkeypatch, "cost"),
        currency="EUR",
        build_price=4.0,
        serve_price=2.5,
        qpd=5000,
        rebuilds=4.0,
    )
    table = at.dataframe[0].value.set_index("option")
    metrics = json.loads((FIXTURE / "eval" / "metrics.json").read_text())["arms"]
    stages = json.loads((FIXTURE / "manifest.json").read_text())["stages"]
    build = {"RAG": stages["index"]["wall_s"], "Fine-tune": stages["sft"]["wall_s"] + stages["tune"]["wall_s"]}
    build["Fine-tune + RAG"] = build["RAG"] + build["Fine-tune"]
    for label, arm in (("RAG", "rag"), ("Fine-tune", "tuned"), ("Fine-tune + RAG", "tuned_rag")):
        p50 = metrics[arm]["latency_p50_s"]["value"]
        expected = (2.5 * 5000 * DAYS_PER_MONTH * p50 + 4.0 * 4.0 * build[label]) / 3600
        assert table.loc[label, "total per month (EUR)"] == pytest.approx(expected)
        assert table.loc[label, "first build (EUR)"] == pytest.approx(4.0 * build[label] / 3600)
        assert table.loc[label, "per 1,000 queries (EUR)"] == pytest.approx(2.5 * 1000 * p50 / 3600)
    assert "Cheapest at these inputs: **Fine-tune**" in text(at)
    assert "measured on a machine with 2 CPU cores" in text(at)
    assert any(m.label == "RAG per month" and m.value.endswith(" EUR") for m in at.metric)

    # An always-on serving machine is paid for every hour of the month, busy or not.
    at.toggle(key="cost_always_on").set_value(True).run()
    table = at.dataframe[0].value.set_index("option")
    for label in ("RAG", "Fine-tune", "Fine-tune + RAG"):
        assert table.loc[label, "serving per month (EUR)"] == pytest.approx(2.5 * HOURS_PER_MONTH)
    assert not at.exception


def test_cost_and_overview_give_the_same_figure_for_the_same_option_and_settings(runs_dir, monkeypatch):
    at = set_cost(
        open_app(runs_dir, monkeypatch, "cost"),
        currency="GBP",
        build_price=3.0,
        serve_price=1.5,
        qpd=20000,
        always_on=True,
    )
    on_cost = {m.label: m.value for m in at.metric}
    at.switch_page("views/overview.py").run()
    assert not at.exception
    on_overview = {m.label: m.value for m in at.metric if m.label.endswith(" per month")}
    assert on_overview == on_cost and len(on_cost) == 3
    assert on_overview["RAG per month"].endswith(" GBP")
    # the advised option's cost, said
    assert f"Fine-tune + RAG costs **{on_cost['Fine-tune + RAG per month']} a month**" in text(at)
    assert "serving machine 1.50 GBP/h" in text(at) and "an always-on serving machine" in text(at)


def test_money_per_month_follows_the_prices_for_building_and_serving_and_the_always_on_option():
    from ui.costs import CostSettings, monthly_costs

    build, latency = {"rag": 36.0, "fine-tune": 7200.0}, {"rag": 2.0, "fine-tune": 0.5}
    s = CostSettings(
        currency="EUR", build_price_per_hour=10.0, serve_price_per_hour=2.0, queries_per_day=100, rebuilds_per_month=2.0
    )
    t = monthly_costs(build, latency, s).set_index("option")
    assert t.loc["RAG", "build per month"] == pytest.approx(2 * 36 / 3600 * 10)
    assert t.loc["Fine-tune", "serving per month"] == pytest.approx(100 * DAYS_PER_MONTH * 0.5 / 3600 * 2)
    busy = CostSettings(**{**s.__dict__, "always_on": True, "queries_per_day": 100_000})
    t = monthly_costs(build, latency, busy).set_index("option")
    assert t.loc["RAG", "machines paid for"] == 3  # 100,000 x 2 s a day needs 2.3 machines: pay for 3
    assert t.loc["RAG", "serving per month"] == pytest.approx(3 * HOURS_PER_MONTH * 2.0)
    assert s.money(1234.5) == "1,234.50 EUR"
    with pytest.raises(ValueError, match="must not be negative"):
        monthly_costs(build, latency, CostSettings(serve_price_per_hour=-1))


# ---------------------------------------------------------------- launching runs


def test_new_run_page_rejects_bad_input_with_a_message(runs_dir, monkeypatch, tmp_path):
    at = open_app(runs_dir, monkeypatch, "new_run")
    at.toggle(key="nr_sample").set_value(False).run()
    at.radio(key="nr_qa_how").set_value("a file on the server").run()
    at.text_input(key="nr_corpus_path").input(str(tmp_path / "nowhere")).run()
    at.text_input(key="nr_qa_path").input(str(ROOT / "tests" / "data" / "qa.jsonl")).run()
    at.button(key="nr_start").click().run()
    assert any("Cannot start the run" in e.value and "does not exist" in e.value for e in at.error)

    bad_qa = tmp_path / "qa.jsonl"
    bad_qa.write_text('{"question": "a?", "answers": ["b"]}\n{oops\n')
    at.text_input(key="nr_corpus_path").input(str(ROOT / "tests" / "data" / "corpus")).run()
    at.text_input(key="nr_qa_path").input(str(bad_qa)).run()
    at.button(key="nr_start").click().run()
    assert any(f"{bad_qa}:2: not valid JSON" in e.value for e in at.error)

    at.text_input(key="nr_qa_path").input(str(ROOT / "tests" / "data" / "qa.jsonl")).run()
    at.text_input(key="nr_overrides").input("tuning.lora.r=0").run()
    at.button(key="nr_start").click().run()
    assert any("tuning.lora.r=0 must be a positive integer" in e.value for e in at.error)

    assert not at.exception
    assert not any((d / LAUNCH).exists() for d in runs_dir.iterdir()), "nothing may start on bad input"


def test_a_run_without_a_qa_file_is_planned_to_generate_its_questions(tmp_path):
    from ui.launcher import plan_run

    cmd, run_dir = plan_run(tmp_path / "runs", str(ROOT / "tests" / "data" / "corpus"), "", preset="smoke")
    assert "--qa" not in cmd and cmd[cmd.index("--corpus") + 1] == str(ROOT / "tests" / "data" / "corpus")


def test_the_review_page_shows_the_evidence_and_records_accept_reject_and_edit(runs_dir, monkeypatch):
    from advisor.core.config import QAConfig
    from evalsuite.qagen.stage import corpus_view, make_sets, write_sets

    run = runs_dir / FIXTURE.name
    qs = make_sets(corpus_view(ROOT / "advisor" / "sample" / "corpus"), QAConfig(n=40), 0, "hashing")
    write_sets(run / "qa", qs)
    generated = (run / "qa" / "eval.jsonl").read_bytes()
    at = open_app(runs_dir, monkeypatch, "review")
    first = qs.eval[0]
    assert first["question"] in text(at) and "Evidence in its source passage" in text(at)
    at.button(key=f"rv_ok_{first['id']}").click().run()
    second = at.selectbox(key="rv_pick").value
    at.button(key=f"rv_no_{second}").click().run()
    rows = {r["id"]: r for r in read_jsonl(run / "qa" / "reviewed.jsonl")}
    assert rows[first["id"]]["review"] == "accepted" and second not in rows
    assert "2 of 40 reviewed: 1 accepted, 0 edited, 1 rejected" in at.get("progress")[0].proto.text
    assert (run / "qa" / "eval.jsonl").read_bytes() == generated
    assert not at.exception


def test_the_screenshots_give_a_run_with_its_own_qa_file_generated_questions_to_review(runs_dir, monkeypatch):
    from ui.screens import with_generated_questions

    run = runs_dir / FIXTURE.name  # ui/screens.py only ever calls it on its temporary copy
    assert with_generated_questions(run, n=40)
    items = read_jsonl(run / "qa" / "eval.jsonl")
    assert len(items) == 40 and all(it["synthetic"] for it in items)
    assert any(it.get("unanswerable") for it in items) and all(
        "evidence" in it for it in items if not it.get("unanswerable")
    )
    assert not with_generated_questions(run)  # a run that has a generated set keeps it
    at = open_app(runs_dir, monkeypatch, "review")
    assert items[0]["question"] in text(at) and "0 of 40 reviewed" in at.get("progress")[0].proto.text


def test_the_review_page_of_a_run_with_its_own_qa_file_says_there_is_nothing_to_review(runs_dir, monkeypatch):
    at = open_app(runs_dir, monkeypatch, "review")
    assert any("nothing to review" in i.value for i in at.info)


def test_uploaded_corpus_and_questions_become_a_planned_run(tmp_path):
    from ui.launcher import plan_run, save_uploads

    runs = tmp_path / "runs"
    docs = [(p.name, p.read_bytes()) for p in sorted((ROOT / "tests" / "data" / "corpus").iterdir())]
    corpus = save_uploads(runs, "Policies 2024", docs, "corpus")
    qa = save_uploads(runs, "qa", [("qa.jsonl", (ROOT / "tests" / "data" / "qa.jsonl").read_bytes())], "qa")
    assert corpus.name == "policies-2024" and sorted(p.name for p in corpus.iterdir()) == [n for n, _ in docs]
    cmd, run_dir = plan_run(
        runs, str(corpus), str(qa), preset="smoke", model="smollm2-135m-instruct", overrides=["eval.limit=4"]
    )
    assert run_dir.parent == runs.resolve() and run_dir.name.startswith("policies-2024-smollm2-135m-instruct-")
    assert cmd[1:4] == ["-m", "advisor", "run"] and cmd[-3:] == ["--out", str(run_dir), "eval.limit=4"]
    assert list_runs(runs) == [], "uploads live in a hidden folder, not among the runs"
    with pytest.raises(Exception, match=r"notes.docx is not a format the corpus reader takes \(.csv, .htm, "):
        save_uploads(runs, "bad", [("notes.docx", b"PK")], "corpus")


def test_every_format_the_corpus_reader_takes_can_be_uploaded(runs_dir, monkeypatch, tmp_path):
    from advisor.core.corpus import SUPPORTED
    from ui.launcher import save_uploads

    at = open_app(runs_dir, monkeypatch, "new_run")
    at.toggle(key="nr_sample").set_value(False).run()
    at.radio(key="nr_corpus_how").set_value("uploaded files").run()
    uploader = next(u for u in at.get("file_uploader") if u.proto.id.endswith("nr_corpus_files"))
    assert sorted(t.lstrip(".") for t in uploader.proto.type) == sorted(x.lstrip(".") for x in SUPPORTED)
    assert all(x in uploader.proto.label for x in SUPPORTED)
    folder = save_uploads(tmp_path, "mixed", [(f"doc{x}", b"some text") for x in sorted(SUPPORTED)], "corpus")
    assert sorted(p.suffix for p in folder.iterdir()) == sorted(SUPPORTED)


def fact_widgets(at: AppTest, prefix: str) -> dict:
    return {
        w.key.removeprefix(prefix): w
        for kind in ("select_slider", "toggle", "number_input")
        for w in getattr(at, kind)
        if w.key and w.key.startswith(prefix)
    }


def test_new_run_offers_every_situation_fact_the_weight_preset_and_the_targets(runs_dir, monkeypatch):
    from ui.rundata import FACT_LABEL, TARGET_LABEL

    at = open_app(runs_dir, monkeypatch, "new_run")
    facts = fact_widgets(at, "nr_f_")
    assert sorted(facts) == sorted(DEFAULT_FACTS), "New run offers a control for every fact the engine takes"
    for k, w in facts.items():
        assert w.label == FACT_LABEL[k] and w.value == DEFAULT_FACTS[k], k
        if k in FACT_CHOICES:
            assert list(w.options) == [str(c) for c in FACT_CHOICES[k]]
    assert (
        at.selectbox(key="nr_weights").options == list(PRESETS) and at.selectbox(key="nr_weights").value == "balanced"
    )
    targets = fact_widgets(at, "nr_t_")
    assert sorted(targets) == sorted(QUALITY_TARGETS)
    for k, w in targets.items():
        assert w.label == TARGET_LABEL[k] and w.value == pytest.approx(100 * QUALITY_TARGETS[k])


def test_a_fact_the_engine_gains_is_offered_on_new_run_and_what_if(runs_dir, monkeypatch):
    monkeypatch.setitem(DEFAULT_FACTS, "regulated_industry", False)  # a fact the engine gains tomorrow
    at = open_app(runs_dir, monkeypatch, "new_run")
    assert "regulated_industry" in fact_widgets(at, "nr_f_")
    assert any("recommend.facts.regulated_industry=false" in c.value for c in at.caption)  # and the run gets it
    at = open_app(runs_dir, monkeypatch, "whatif")
    assert "regulated_industry" in fact_widgets(at, "f_")


def test_new_run_passes_the_situation_weight_preset_and_targets_to_advisor_run(runs_dir, monkeypatch):
    import ui.launcher
    from advisor.cli import build_parser
    from advisor.commands.run import path_flags
    from advisor.core.config import load_config

    started = []
    monkeypatch.setattr(ui.launcher, "start_run", lambda cmd, run_dir, about=None: started.append((cmd, run_dir)))
    at = open_app(runs_dir, monkeypatch, "new_run")
    chosen = {
        k: (FACT_CHOICES[k][-1] if FACT_CHOICES[k][-1] != v else FACT_CHOICES[k][0])
        if k in FACT_CHOICES
        else (not v)
        if isinstance(v, bool)
        else 0.5
        for k, v in DEFAULT_FACTS.items()
    }  # none a default
    widgets = fact_widgets(at, "nr_f_")
    for k, v in chosen.items():
        widgets[k].set_value(v)
    at.selectbox(key="nr_weights").set_value("compliance")
    at.number_input(key="nr_t_accuracy").set_value(60.0)
    at.number_input(key="nr_t_hallucination_rate").set_value(20.0).run()
    at.text_input(key="nr_overrides").input("eval.limit=8").run()
    at.button(key="nr_start").click().run()
    assert not at.error and len(started) == 1, [e.value for e in at.error]
    cmd, run_dir = started[0]
    assert cmd[cmd.index("--out") + 1] == str(run_dir) and cmd[-1] == "eval.limit=8"
    assert "recommend.preset=compliance" in cmd and "recommend.targets.accuracy=0.6" in cmd
    # advisor run reads the command back into the config the page chose
    args = build_parser().parse_args(cmd[3:])
    cfg = load_config(args.config, args.overrides, path_flags(args, [("corpus", "corpus", "path")]))
    assert cfg.recommend.preset == "compliance" and cfg.eval.limit == 8
    assert {k: cfg.recommend.facts[k] for k in DEFAULT_FACTS} == chosen
    assert cfg.recommend.targets == {"accuracy": 0.6, "hallucination_rate": 0.2}
    assert any(f"`advisor {' '.join(cmd[3:])}`" in c.value for c in at.caption), "the command is shown before it runs"

    at.text_input(key="nr_overrides").input("recommend.facts.budget=high").run()  # set twice: which one wins?
    at.button(key="nr_start").click().run()
    assert (
        any(
            "recommend.facts.budget=high in the extra settings is also set by the choices above" in e.value
            for e in at.error
        )
        and len(started) == 1
    )


def test_the_time_estimate_shows_on_request_for_the_settings_it_was_made_for(runs_dir, monkeypatch):
    import ui.launcher

    asked = []
    monkeypatch.setattr(
        ui.launcher, "plan_estimate", lambda cmd, run_dir: asked.append(cmd) or f"about 19 min for {run_dir.name}"
    )
    at = open_app(runs_dir, monkeypatch, "new_run")
    assert not asked and not any("Estimated time" in i.value for i in at.info), "never planned unasked"
    at.button(key="nr_estimate").click().run()
    assert len(asked) == 1 and any(i.value.startswith("**Estimated time:** about 19 min for sample-") for i in at.info)
    at.number_input(key="nr_t_accuracy").set_value(55.0).run()  # another run: the estimate was not made for it
    assert not any("Estimated time" in i.value for i in at.info) and "press **Estimate time** again" in text(at)
    assert len(asked) == 1


def tiny_new_run(at: AppTest, model_dir: Path, *extra: str) -> AppTest:
    """The New run page set to a run on the tiny fakes (tests/conftest.py TINY_RUN, the smoke preset)."""
    from conftest import TINY_RUN

    data = ROOT / "tests" / "data"
    at.toggle(key="nr_sample").set_value(False).run()
    at.radio(key="nr_qa_how").set_value("a file on the server").run()
    at.text_input(key="nr_corpus_path").input(str(data / "corpus"))
    at.text_input(key="nr_qa_path").input(str(data / "qa.jsonl"))
    at.text_input(key="nr_train_path").input(str(data / "train.jsonl"))
    at.selectbox(key="nr_preset").set_value("smoke").run()
    at.selectbox(key="nr_model").set_value("other (Hub id or local folder)").run()
    at.text_input(key="nr_model_spec").input(str(model_dir))
    return at.text_input(key="nr_overrides").input(" ".join([*TINY_RUN, *extra])).run()


@pytest.mark.parametrize("overlap", [False, True])
def test_the_time_estimate_is_the_plan_advisor_plan_makes_on_this_machine(
    runs_dir, monkeypatch, tiny_model_dir, overlap
):
    from advisor.cli import build_parser
    from advisor.commands.run import config_from_args
    from advisor.plan import fmt_s, plan_config

    monkeypatch.setattr("advisor.pipeline.tracks_overlap", lambda cfg: overlap)  # a GPU or a spare core, or neither
    at = tiny_new_run(open_app(runs_dir, monkeypatch, "new_run"), tiny_model_dir)
    at.button(key="nr_estimate").click().run()  # the real plan: calibrates the tiny model once, then reads its cache
    assert not at.exception and not at.error, [e.value for e in at.error]
    shown = next(i.value for i in at.info if i.value.startswith("**Estimated time:**"))
    cmd = next(c.value for c in at.caption if "the command: `advisor run" in c.value).split("`")[1].split()
    _, plan, _, _ = plan_config(config_from_args(build_parser().parse_args(cmd[1:])))
    assert plan.calibration["cached"]  # the page's press measured this machine; this plan reads the same figures
    assert f"on this machine (the one serving this dashboard: {os.cpu_count()} cores" in shown
    stages = shown.split("Per stage: ")[1].split("\n")[0]
    assert [s.split()[0] for s in stages.split(" (*")[0].split(" · ")] == [s.name for s in plan.stages]
    tune = next(s for s in plan.stages if s.name == "tune")  # from the calibration only: the same to the second
    if overlap:
        assert f"tune {fmt_s(tune.seconds)}*" in stages and "the index and tuning tracks run side by side" in stages
    else:
        assert f"tune {fmt_s(tune.seconds)} ·" in stages and "the index, then the tuning track" in stages
    assert plan.notes and all(f"Estimated, not counted: {n}." in shown for n in plan.notes)  # the RAFT examples


def test_a_run_that_cannot_be_planned_says_why_on_the_page(runs_dir, monkeypatch, tiny_model_dir):
    at = tiny_new_run(open_app(runs_dir, monkeypatch, "new_run"), tiny_model_dir, "run.time_budget=1s")
    at.button(key="nr_estimate").click().run()
    assert not at.exception and not any("Estimated time" in i.value for i in at.info)
    assert any(
        e.value.startswith("**Cannot plan this run:** the time budget 1s is too small for this run") for e in at.error
    ), [e.value for e in at.error]


def test_run_progress_comes_from_the_run_directory_and_survives_a_refresh(runs_dir, monkeypatch):
    # A run in progress: a launch record with a live pid (this process) and a manifest mid-way.
    live = runs_dir / "sample-smollm2-135m-instruct-0000live"
    shutil.copytree(FIXTURE, live, ignore=shutil.ignore_patterns("eval", "recommendation.json", "report.md"))
    manifest = json.loads((live / "manifest.json").read_text())
    manifest["stages"] = {k: v for k, v in manifest["stages"].items() if k in ("ingest", "index", "sft", "tune")}
    manifest["stages"]["tune"] = {"status": "running", "started": "2026-11-21T12:42:45+00:00", "pid": os.getpid()}
    manifest.pop("finished")
    (live / "manifest.json").write_text(json.dumps(manifest))
    (live / LAUNCH).write_text(
        json.dumps({"pid": os.getpid(), "started": "2026-11-21T12:42:39+00:00", "command": ["advisor", "run"]})
    )
    (live / "run.log").write_text(
        "run directory: x\n  ingest: 35 documents -> 205 chunks\ntrain:  10%|#   | 7/70\rtrain:  20%|##  | 14/70\r"
    )
    # A launched run that failed in preflight: only its log and exit code say so.
    dead = runs_dir / "mydocs-smollm2-135m-instruct-0000dead"
    dead.mkdir()
    (dead / LAUNCH).write_text(
        json.dumps(
            {
                "pid": 2**22 + 1,
                "started": "2026-11-21T13:00:00+00:00",
                "corpus": "/data/mydocs",
                "model": "smollm2-135m-instruct",
            }
        )
    )
    (dead / "run.log").write_text("advisor: error: corpus path /data/mydocs does not exist; pass --corpus ...\n")
    (dead / LAUNCH_EXIT).write_text("2\n")

    for _ in range(2):  # a second AppTest is a new browser session: what it shows comes from disk only
        at = open_app(runs_dir, monkeypatch, "new_run")
        t = text(at)
        assert f"**{live.name}** — running: tune in progress" in t
        # ingest, index, sft done, of the 13 the pipeline plans (advisor.pipeline.planned_stages; no qa stage: the
        # training set is given)
        assert any(p.proto.text == "3 of 13 stages done" for p in at.get("progress"))
        assert any("train:  20%" in c.value for c in at.code), "the log tail shows the last progress-bar state"
        assert "advisor: error: corpus path /data/mydocs does not exist" in t

    info = {r.name: r for r in list_runs(runs_dir)}
    assert info[live.name].status == "running" and info[dead.name].status == "failed"


# ---------------------------------------------------------------- what goes wrong


def _make_half_finished(d: Path) -> None:
    """The fixture cut off after training: no eval, metrics or recommendation; its stages show why."""
    shutil.copytree(FIXTURE, d, ignore=shutil.ignore_patterns("eval", "recommendation.json", "report.md"))
    manifest = json.loads((d / "manifest.json").read_text())
    manifest["stages"] = {k: v for k, v in manifest["stages"].items() if k in ("ingest", "index", "sft", "tune")}
    manifest.pop("finished", None)
    (d / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("exists", [True, False])
def test_empty_runs_folder_gives_a_clear_message_on_every_page(tmp_path, monkeypatch, exists):
    d = tmp_path / "runs"
    if exists:
        d.mkdir()
    for page in PAGES:
        at = open_app(d, monkeypatch, page)
        if page == "new_run":
            assert at.button(key="nr_start"), "the New run page must still offer to start a run"
            continue
        msgs = [i.value for i in at.info]
        assert any("No runs to show" in m and str(d) in m for m in msgs), (page, msgs)


def test_half_finished_run_explains_what_is_missing_on_every_page(tmp_path, monkeypatch):
    d = tmp_path / "runs"
    _make_half_finished(d / "half")
    assert run_info(d / "half").status == "incomplete"
    for page in PAGES:
        at = open_app(d, monkeypatch, page)
        if page in ("runs", "new_run", "review"):
            continue
        msgs = [w.value for w in at.warning]
        assert any(
            "not finished" in m and "stages done: ingest, index, sft, tune" in m and "advisor run --out" in m
            for m in msgs
        ), (page, msgs)


def test_interrupted_run_says_how_to_resume(tmp_path, monkeypatch):
    d = tmp_path / "runs"
    _make_half_finished(d / "cut")
    m = json.loads((d / "cut" / "manifest.json").read_text())
    m["stages"]["eval_base"] = {"status": "running", "pid": 2**22 + 3}  # its process is gone
    (d / "cut" / "manifest.json").write_text(json.dumps(m))
    at = open_app(d, monkeypatch)
    assert any(
        "interrupted" in w.value and "eval_base was running when its process stopped" in w.value for w in at.warning
    )


def test_corrupt_metrics_json_gives_a_clear_message_not_a_traceback(runs_dir, monkeypatch):
    (runs_dir / "sample-fixture" / "eval" / "metrics.json").write_text('{"arms": {"rag": {"accuracy": ')
    for page in ("evidence", "whatif", "cost"):
        at = open_app(runs_dir, monkeypatch, page)
        errors = [e.value for e in at.error]
        assert any("metrics.json is not valid JSON" in e for e in errors), (page, errors)
    # Valid JSON that breaks the contract is named too.
    (runs_dir / "sample-fixture" / "eval" / "metrics.json").write_text('{"arms": {"rag": {"accuracy": 0.4}}}')
    at = open_app(runs_dir, monkeypatch, "evidence")
    assert any("arms.rag.accuracy must look like" in e.value for e in at.error)
    # The pages that do not need metrics still work.
    at = sortable(open_app(runs_dir, monkeypatch, "questions"))
    assert len(at.dataframe[0].value) == 25


def test_finished_run_without_a_recommendation_says_so(runs_dir, monkeypatch):
    (runs_dir / "sample-fixture" / "recommendation.json").unlink()
    at = open_app(runs_dir, monkeypatch)
    assert any(
        "The recommendation is not available for this run: finished without a recommendation" in i.value
        for i in at.info
    )
    at = open_app(runs_dir, monkeypatch, "whatif")  # what-if recomputes it from the evidence the run wrote
    assert verdict_heading("both") in text(at)


def test_corrupt_manifest_marks_the_run_unreadable(runs_dir, monkeypatch):
    (runs_dir / "sample-fixture" / "manifest.json").write_text("{")
    at = open_app(runs_dir, monkeypatch, "runs")
    row = at.dataframe[0].value.iloc[0]
    assert row["status"] == "unreadable" and "not valid JSON" in row["details"]


# ---------------------------------------------------------------- the command and the layers


def test_dashboard_command_help_and_bad_input(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["dashboard", "--help"])
    out = capsys.readouterr().out
    for opt in ("--runs-dir", "--port", "--address"):
        assert opt in out
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["dashboard", "--runs-dir", str(f)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["dashboard", "--runs-dir", str(tmp_path), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"port {port} on 127.0.0.1 is already in use" in err and err.count("\n") == 1
    r = subprocess.run(
        [sys.executable, "-m", "advisor", "dashboard", "--port", "70000"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2 and "not a port number" in r.stderr and "Traceback" not in r.stderr


def test_ui_imports_only_advisor_and_itself():
    allowed = {"advisor", "advisor.core", "ui"}
    for f in (ROOT / "ui").rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            mods = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module]
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
                else []
            )
            for mod in mods:
                top = mod.split(".")[0]
                if top in {"advisor", "retrieval", "tuning", "evalsuite", "ui"}:
                    assert top in allowed, f"{f.relative_to(ROOT)} imports {mod}: ui talks to advisor only"


def test_run_data_accepts_the_knowledge_breakdown_and_seed_spread_and_checks_their_cis(tmp_path):
    import shutil

    from ui.rundata import RunDataError, load_metrics

    run = tmp_path / "run"
    shutil.copytree(Path(__file__).parent / "fixtures" / "rundirs" / "sample-fixture", run)
    path = run / "eval" / "metrics.json"
    m = json.loads(path.read_text())
    m["arms"]["tuned"]["by_knowledge"] = {"unknown": {"n": 5, "accuracy": {"value": 0.2, "ci95": [0.0, 0.6], "n": 5}}}
    m["arms"]["tuned"]["seed_spread"] = {"seeds": [0, 1], "accuracy": [0.1, 0.2], "mean": 0.15, "sd": 0.07}
    path.write_text(json.dumps(m))
    assert load_metrics(run)["arms"]["tuned"]["seed_spread"]["mean"] == 0.15
    m["arms"]["tuned"]["by_wording"] = {"close": {"n": 5, "accuracy": {"value": 0.6, "ci95": [0.2, 1.0], "n": 5}}}
    path.write_text(json.dumps(m))
    assert load_metrics(run)["arms"]["tuned"]["by_wording"]["close"]["n"] == 5
    m["arms"]["tuned"]["by_knowledge"]["unknown"]["accuracy"] = {"value": 0.2}
    path.write_text(json.dumps(m))
    with pytest.raises(RunDataError, match="by_knowledge.unknown.accuracy"):
        load_metrics(run)
    m["arms"]["tuned"]["by_knowledge"]["unknown"]["accuracy"] = {"value": 0.2, "ci95": [0.0, 0.6], "n": 5}
    m["arms"]["tuned"]["by_wording"]["close"]["f1"] = {"value": 0.5}
    path.write_text(json.dumps(m))
    with pytest.raises(RunDataError, match="by_wording.close.f1"):
        load_metrics(run)


def test_an_answer_of_the_retrieval_gate_is_marked_as_one_in_the_question_table():
    from advisor.core.answer import ABSTAIN
    from ui.rundata import question_table

    row = {
        "id": "u1",
        "question": "Who painted the pier mural?",
        "answers": [],
        "unanswerable": True,
        "answer": ABSTAIN,
        "gated": True,
        "contexts": [{"source": "pier.md", "rank": 1}],
        "scores": {"abstention_rate": 1.0},
    }
    table = question_table({"rag": [row], "base": [{**row, "gated": False}]}).set_index("id")
    assert table.loc["u1", "rag answer"] == f"{ABSTAIN} (retrieval gate)" and table.loc["u1", "rag right"]
    assert table.loc["u1", "base answer"] == ABSTAIN
