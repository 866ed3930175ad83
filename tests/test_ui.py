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
from advisor.core.advice import CRITERIA, PRESETS
from advisor.core.artifacts import read_jsonl
from advisor.recommend import load_evidence, recommend
from ui.costs import DAYS_PER_MONTH
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
    parts = [e.value for kind in ("markdown", "caption", "info", "warning", "error", "success", "title", "subheader")
             for e in getattr(at, kind)]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    return "\n".join(str(p) for p in parts)


def charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]


def rows(run_dir: Path, arm: str) -> list[dict]:
    return read_jsonl(run_dir / "eval" / f"{arm}.jsonl")


# ---------------------------------------------------------------- the pages on a finished run


def test_overview_shows_the_verdict_confidence_reasons_and_flip_points(runs_dir, monkeypatch):
    rec = json.loads((FIXTURE / "recommendation.json").read_text())
    at = open_app(runs_dir, monkeypatch)
    t = text(at)
    assert "## :green[RAG]" in t and "retrieval index" in t
    assert "Confidence: :green-badge[high]" in t  # the fixture's RAG wins 80% of random weightings
    assert "80% of 10,000 random weightings" in t
    for reason in rec["reasons"][:3]:
        assert f"- {reason}" in t
    assert "If **serving cost (latency)** mattered more — 23.5% of the decision instead of 10.0%" in t
    assert "the advice would become **Fine-tune**" in t
    assert "RAG utility 0.627" in t and "Fine-tune utility 0.473" in t
    assert not at.error and not at.warning


def test_confidence_is_the_recorded_stability_and_is_recomputed_for_older_runs():
    from ui.common import confidence

    old = json.loads((FIXTURE / "recommendation.json").read_text())
    assert "stability" not in old  # the fixture predates it: computed from its sensitivity analysis
    assert confidence(old) == ("high", "wins under 80% of 10,000 random weightings; the smallest single weight "
                                       "change that flips it is 0.14")
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
    assert (row["corpus"], row["model"], row["status"], row["verdict"]) == ("sample", "smollm2-135m-instruct", "done", "RAG")
    assert row["date"] == "2026-11-21 12:42 UTC"
    assert table.set_index("run").loc["half-finished", "status"] == "incomplete"

    at.selectbox(key="cmp_a").set_value("sample-fixture").run()
    at.selectbox(key="cmp_b").set_value("sample-copy").run()
    compared = at.dataframe[1].value
    assert list(compared.columns) == ["sample-fixture", "sample-copy"]
    assert compared.loc["verdict"].tolist() == ["RAG", "RAG"]
    assert compared.loc["accuracy: RAG", "sample-fixture"].startswith("40.0% [")
    assert charts(at), "the comparison chart is missing"


def test_evidence_page_charts_carry_ci_error_bars(runs_dir, monkeypatch):
    at = open_app(runs_dir, monkeypatch, "evidence")
    specs = charts(at)
    assert len(specs) >= 6  # accuracy, hallucination, probe accuracy, forgetting, retrieval, validation loss
    ci_charts = [s for s in specs if any(layer.get("encoding", {}).get("y2", layer.get("encoding", {}).get("x2"))
                                         for layer in s.get("layer", []))]
    assert len(ci_charts) >= 5, "accuracy, hallucination, probe, forgetting and retrieval charts need CI bars"
    blob = json.dumps(specs, ensure_ascii=False)
    for label in ("share correct", "share of questions", "probe accuracy", "probe accuracy change, tuned − base",
                  "validation loss", "optimizer step"):
        assert label in blob, label
    t = text(at)
    recall = json.loads((FIXTURE / "eval" / "metrics.json").read_text())["arms"]["rag"]["recall_at_k"]["value"]
    assert f"RAG recall@k {100 * recall:.0f}%" in t
    assert "max overlap with training questions 12%" in t and "max overlap with corpus text 38%" in t
    assert "20 answerable, 5 unanswerable" in t
    assert "final validation loss 3.370" in t
    paired = at.dataframe[-1].value
    assert {"rag - base", "tuned - base", "tuned_rag - rag", "tuned_rag - tuned"} <= set(paired["comparison"])
    assert not at.error


def test_questions_page_lists_every_question_and_filters(runs_dir, monkeypatch):
    at = open_app(runs_dir, monkeypatch, "questions")
    run = runs_dir / "sample-fixture"
    by_arm = {a: {r["id"]: r for r in rows(run, a)} for a in ("base", "rag", "tuned", "tuned_rag")}
    ids = list(by_arm["rag"])
    table = at.dataframe[0].value
    assert list(table["id"]) == ids and len(ids) == 25
    first = table.iloc[0]
    assert first["gold"] == "14 March 1987"
    assert first["RAG"] == "✗ " + by_arm["rag"]["e001"]["answer"]
    assert first["RAG sources"].startswith("1. founding-history.md")

    at.selectbox(key="q_wrong").set_value("wrong in rag").run()
    assert len(at.dataframe[0].value) == sum(not is_right(r) for r in by_arm["rag"].values()) == 17
    at.selectbox(key="q_wrong").set_value("all questions").run()
    at.toggle(key="q_una").set_value(True).run()
    assert set(at.dataframe[0].value["id"]) == {i for i, r in by_arm["rag"].items() if r["unanswerable"]}
    at.toggle(key="q_una").set_value(False).run()
    at.toggle(key="q_dis").set_value(True).run()
    disagree = {i for i in ids if len({is_right(by_arm[a][i]) for a in by_arm}) > 1}
    assert set(at.dataframe[0].value["id"]) == disagree and len(disagree) == 11

    # One question opened: its answers per arm and the chunks retrieval gave it.
    at.selectbox(key="q_open").set_value("e002").run()
    t = text(at)
    assert "Gold answer: **212**" in t
    labels = [e.label for e in at.expander]
    contexts = by_arm["rag"]["e002"]["contexts"]
    assert len(labels) == len(contexts)
    for c, label in zip(contexts, labels):
        assert c["source"] in label and f"{c['score']:.3f}" in label
    assert "tuned + RAG was given the same chunks." in t
    assert any(c["text"][:40] in e.value for c in contexts for e in at.text)


def test_whatif_slider_flips_the_verdict_through_the_recommendation_engine(runs_dir, monkeypatch):
    at = open_app(runs_dir, monkeypatch, "whatif")
    assert "## :green[RAG]" in text(at)
    assert at.slider(key="w_serve_cost").value == pytest.approx(0.1)

    at.slider(key="w_serve_cost").set_value(0.5).run()
    t = text(at)
    assert "## :green[Fine-tune]" in t
    assert "Changed: the run's own settings gave RAG." in t
    # The page shows what advisor.recommend computes for the same weights: no second implementation.
    weights = {c: PRESETS["balanced"][c] for c in CRITERIA} | {"serve_cost": 0.5}
    expected = recommend(load_evidence(runs_dir / "sample-fixture"), "balanced", weights)
    assert expected["verdict"] == "fine-tune"
    for opt, label in (("rag", "RAG"), ("fine-tune", "Fine-tune"), ("both", "Both")):
        assert f"{label} utility {expected['utilities'][opt]:.3f}" in t

    # Situation facts recompute too; a preset resets every slider; all-zero weights give a message.
    at.button[0].click().run()  # reset to the run's settings
    assert "## :green[RAG]" in text(at)
    at.toggle(key="f_style").set_value(True).run()
    styled = recommend(load_evidence(runs_dir / "sample-fixture"), "balanced", PRESETS["balanced"],
                       {"style_learning": True})
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


def test_cost_page_projects_monthly_cost_from_measured_latency_and_build_time(runs_dir, monkeypatch):
    at = open_app(runs_dir, monkeypatch, "cost")
    at.number_input(key="cost_price").set_value(2.5).run()
    at.number_input(key="cost_qpd").set_value(5000).run()
    at.number_input(key="cost_rebuilds").set_value(4.0).run()
    table = at.dataframe[0].value.set_index("option")
    metrics = json.loads((FIXTURE / "eval" / "metrics.json").read_text())["arms"]
    stages = json.loads((FIXTURE / "manifest.json").read_text())["stages"]
    build = {"RAG": stages["index"]["wall_s"], "Fine-tune": stages["sft"]["wall_s"] + stages["tune"]["wall_s"]}
    build["Both"] = build["RAG"] + build["Fine-tune"]
    for label, arm in (("RAG", "rag"), ("Fine-tune", "tuned"), ("Both", "tuned_rag")):
        p50 = metrics[arm]["latency_p50_s"]["value"]
        expected = 2.5 * (5000 * DAYS_PER_MONTH * p50 + 4.0 * build[label]) / 3600
        assert table.loc[label, "total per month"] == pytest.approx(expected)
        assert table.loc[label, "per 1,000 queries"] == pytest.approx(2.5 * 1000 * p50 / 3600)
    assert "Cheapest at these inputs: **Fine-tune**" in text(at)
    assert "measured on a machine with 2 CPU cores" in text(at)


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
    cmd, run_dir = plan_run(runs, str(corpus), str(qa), preset="smoke", model="smollm2-135m-instruct",
                            overrides=["eval.limit=4"])
    assert run_dir.parent == runs.resolve() and run_dir.name.startswith("policies-2024-smollm2-135m-instruct-")
    assert cmd[1:4] == ["-m", "advisor", "run"] and cmd[-3:] == ["--out", str(run_dir), "eval.limit=4"]
    assert list_runs(runs) == [], "uploads live in a hidden folder, not among the runs"
    with pytest.raises(Exception, match="not .md, .txt or .jsonl"):
        save_uploads(runs, "bad", [("notes.pdf", b"%PDF")], "corpus")


def test_run_progress_comes_from_the_run_directory_and_survives_a_refresh(runs_dir, monkeypatch):
    # A run in progress: a launch record with a live pid (this process) and a manifest mid-way.
    live = runs_dir / "sample-smollm2-135m-instruct-0000live"
    shutil.copytree(FIXTURE, live, ignore=shutil.ignore_patterns("eval", "recommendation.json", "report.md"))
    manifest = json.loads((live / "manifest.json").read_text())
    manifest["stages"] = {k: v for k, v in manifest["stages"].items() if k in ("ingest", "index", "sft", "tune")}
    manifest["stages"]["tune"] = {"status": "running", "started": "2026-11-21T12:42:45+00:00", "pid": os.getpid()}
    manifest.pop("finished")
    (live / "manifest.json").write_text(json.dumps(manifest))
    (live / LAUNCH).write_text(json.dumps({"pid": os.getpid(), "started": "2026-11-21T12:42:39+00:00",
                                           "command": ["advisor", "run"]}))
    (live / "run.log").write_text("run directory: x\n  ingest: 35 documents -> 205 chunks\ntrain:  10%|#   | 7/70\r"
                                  "train:  20%|##  | 14/70\r")
    # A launched run that failed in preflight: only its log and exit code say so.
    dead = runs_dir / "mydocs-smollm2-135m-instruct-0000dead"
    dead.mkdir()
    (dead / LAUNCH).write_text(json.dumps({"pid": 2 ** 22 + 1, "started": "2026-11-21T13:00:00+00:00",
                                           "corpus": "/data/mydocs", "model": "smollm2-135m-instruct"}))
    (dead / "run.log").write_text("advisor: error: corpus path /data/mydocs does not exist; pass --corpus ...\n")
    (dead / LAUNCH_EXIT).write_text("2\n")

    for _ in range(2):  # a second AppTest is a new browser session: what it shows comes from disk only
        at = open_app(runs_dir, monkeypatch, "new_run")
        t = text(at)
        assert f"**{live.name}** — running: tune in progress" in t
        # ingest, index, sft done, of the 14 the pipeline plans (advisor.pipeline.planned_stages)
        assert any(p.proto.text == "3 of 14 stages done" for p in at.get("progress"))
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
        assert any("not finished" in m and "stages done: ingest, index, sft, tune" in m and "advisor run --out" in m
                   for m in msgs), (page, msgs)


def test_interrupted_run_says_how_to_resume(tmp_path, monkeypatch):
    d = tmp_path / "runs"
    _make_half_finished(d / "cut")
    m = json.loads((d / "cut" / "manifest.json").read_text())
    m["stages"]["eval_base"] = {"status": "running", "pid": 2 ** 22 + 3}  # its process is gone
    (d / "cut" / "manifest.json").write_text(json.dumps(m))
    at = open_app(d, monkeypatch)
    assert any("interrupted" in w.value and "eval_base was running when its process stopped" in w.value
               for w in at.warning)


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
    at = open_app(runs_dir, monkeypatch, "questions")
    assert len(at.dataframe[0].value) == 25


def test_finished_run_without_a_recommendation_says_so(runs_dir, monkeypatch):
    (runs_dir / "sample-fixture" / "recommendation.json").unlink()
    at = open_app(runs_dir, monkeypatch)
    assert any("The recommendation is not available for this run: finished without a recommendation" in i.value
               for i in at.info)
    at = open_app(runs_dir, monkeypatch, "whatif")  # what-if recomputes it from the evidence the run wrote
    assert "## :green[RAG]" in text(at)


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
    r = subprocess.run([sys.executable, "-m", "advisor", "dashboard", "--port", "70000"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "not a port number" in r.stderr and "Traceback" not in r.stderr


def test_ui_imports_only_advisor_and_itself():
    allowed = {"advisor", "advisor.core", "ui"}
    for f in (ROOT / "ui").rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else []
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
    m["arms"]["tuned"]["by_knowledge"]["unknown"]["accuracy"] = {"value": 0.2}
    path.write_text(json.dumps(m))
    with pytest.raises(RunDataError, match="by_knowledge.unknown.accuracy"):
        load_metrics(run)
