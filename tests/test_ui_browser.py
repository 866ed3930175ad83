"""Slow tier: the real dashboard server (`advisor dashboard`) seen through headless Chromium — a screenshot of
every page of the fixture run, the broken cases, and a run launched from the New run page on the bundled
sample (`--config smoke`, a few minutes) followed to its verdict.

    pytest -m browser                          # these tests only (they are part of pytest -m slow)
    ADVISOR_SCREENSHOTS=/tmp/shots pytest -m browser     # keep the PNGs to look at

Chromium comes from `make chromium` (make test runs it); without it these tests fail, they never skip.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from ui.rundata import LAUNCH, LAUNCH_EXIT, run_info
from ui.screens import serve, stop
from ui.shots import Browser, find_chromium

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = Path(__file__).parent / "fixtures" / "rundirs" / "sample-fixture"
# page path -> text that must be on it once drawn
PAGES = {
    "": "What would change the advice",
    "runs": "Compare two runs",
    "evidence": "RAG vs fine-tune vs both",
    "questions": "One question in detail",
    "what-if": "Score of each option",
    "cost": "Cheapest at these inputs",
    "new-run": "Start one",
}


@pytest.fixture(scope="module")
def shots_dir(tmp_path_factory) -> Path:
    d = Path(os.environ.get("ADVISOR_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="module")
def browser():
    if not find_chromium():
        pytest.fail(
            "headless Chromium is needed for the dashboard's browser tests and was not found: run "
            "`make chromium` (apt-get install chromium) or set CHROMIUM=/path/to/chrome"
        )
    with Browser(width=1280, height=900) as b:
        yield b


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`advisor dashboard` on a runs folder with the fixture run, a half-finished run and a corrupt one, served
    the way `python -m ui.screens` serves it (ui/screens.py serve)."""
    runs = tmp_path_factory.mktemp("served") / "runs"
    shutil.copytree(FIXTURE, runs / FIXTURE.name)
    half = runs / "half-finished"
    shutil.copytree(FIXTURE, half, ignore=shutil.ignore_patterns("eval", "recommendation.json", "report.md"))
    m = json.loads((half / "manifest.json").read_text())
    m["stages"] = {k: v for k, v in m["stages"].items() if k in ("ingest", "index", "sft", "tune")}
    m.pop("finished")
    (half / "manifest.json").write_text(json.dumps(m))
    shutil.copytree(FIXTURE, runs / "corrupt-metrics")
    (runs / "corrupt-metrics" / "eval" / "metrics.json").write_text('{"arms": ')
    try:
        proc, url = serve(runs, log=runs.parent / "dashboard.log")
    except RuntimeError as e:
        pytest.fail(str(e))
    yield url, runs
    stop(proc)


def assert_drawn(png: Path, state: dict, must_say: str) -> None:
    """The page says what it should, shows no exception, and the PNG is a real page, not a blank one."""
    assert must_say in state["text"], state["text"][:600]
    assert not state["exceptions"] and "Traceback" not in state["text"], state["exceptions"]
    img = Image.open(png).convert("L")
    assert img.width == 1280 and img.height >= 900
    main = img.crop((320, 0, img.width, img.height))  # right of the sidebar
    dark = sum(main.histogram()[:200]) / (main.width * main.height)
    assert dark > 0.01, f"{png.name} looks blank ({dark:.2%} non-white pixels)"


@pytest.mark.parametrize("path", list(PAGES))
def test_every_page_of_a_finished_run_renders_in_chromium(server, browser, shots_dir, path):
    url, _ = server
    png = shots_dir / f"{path or 'overview'}.png"
    state = browser.shot(f"{url}/{path}?run={FIXTURE.name}", png, wait_for=PAGES[path])
    assert_drawn(png, state, PAGES[path])
    if path not in ("runs", "new-run"):  # pages about one run name it under the title
        assert f"Run {FIXTURE.name}" in state["text"]


def test_each_evidence_tab_shows_its_own_sections_in_chromium(server, browser, shots_dir):
    """Clicking a tab of the Evidence page shows its sections and hides the other tabs' (ui.common.EVIDENCE_TABS)."""
    from ui.common import EVIDENCE_TABS

    url, _ = server
    state = browser.shot(f"{url}/evidence?run={FIXTURE.name}", shots_dir / "evidence.png", wait_for=PAGES["evidence"])
    headings = list(EVIDENCE_TABS.values())
    assert headings[0] in state["text"] and not any(h in state["text"] for h in headings[1:])
    for k, (label, heading) in enumerate(list(EVIDENCE_TABS.items())[1:], start=1):
        png = shots_dir / f"evidence-tab-{k}.png"
        state = browser.click_tab(label, png, wait_for=heading)
        assert_drawn(png, state, heading)
        assert [h for h in headings if h in state["text"]] == [heading], label
        assert PAGES["evidence"] in state["text"]  # the lead stays above the tabs
    with pytest.raises(RuntimeError, match="no tab 'Costs' on the page; its tabs: .*Training and forgetting"):
        browser.click_tab("Costs", shots_dir / "no-such-tab.png")


def test_broken_runs_show_messages_in_chromium(server, browser, shots_dir):
    url, _ = server
    png = shots_dir / "corrupt-metrics-evidence.png"
    state = browser.shot(f"{url}/evidence?run=corrupt-metrics", png, wait_for="Cannot show this")
    assert_drawn(png, state, "metrics.json is not valid JSON")
    png = shots_dir / "half-finished-overview.png"
    state = browser.shot(f"{url}/?run=half-finished", png, wait_for="not finished")
    assert_drawn(png, state, "stages done: ingest, index, sft, tune")


def test_a_run_launched_from_the_page_finishes_and_shows_its_verdict(server, browser, shots_dir, monkeypatch):
    """New run page -> detached `advisor run --config smoke` on the bundled sample -> progress from disk in a
    fresh browser session -> the verdict of the new run."""
    url, runs = server
    monkeypatch.setenv("ADVISOR_RUNS_DIR", str(runs))
    at = AppTest.from_file(str(ROOT / "ui" / "app.py"), default_timeout=120).run()
    at.switch_page("views/new_run.py").run()
    at.selectbox(key="nr_preset").set_value("smoke").run()
    at.button(key="nr_start").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("in the background" in s.value for s in at.success)
    launched = [d for d in runs.iterdir() if (d / LAUNCH).exists()]
    assert len(launched) == 1 and launched[0].name.startswith("sample-smollm2-135m-instruct-")
    run_dir = launched[0]
    cmd = json.loads((run_dir / LAUNCH).read_text())["command"]
    assert cmd[1:4] == ["-m", "advisor", "run"] and "--out" in cmd and "smoke" in cmd

    # A new browser session (what a refresh is) shows the progress, read from the run directory.
    deadline = time.time() + 120
    while not (run_dir / "manifest.json").exists() and time.time() < deadline:
        time.sleep(1)
    png = shots_dir / "new-run-progress.png"
    state = browser.shot(f"{url}/new-run", png, wait_for=run_dir.name, timeout=90)
    assert_drawn(png, state, "stages done")
    browser.call("Page.navigate", url="about:blank")  # the page polls every 3 s; no need while we wait

    deadline = time.time() + 1500
    while not (run_dir / LAUNCH_EXIT).exists():
        assert time.time() < deadline, (
            "the launched run did not finish in 25 minutes:\n" + (run_dir / "run.log").read_text()[-3000:]
        )
        time.sleep(5)
    log = (run_dir / "run.log").read_text()
    assert (run_dir / LAUNCH_EXIT).read_text().strip() == "0", log[-3000:]
    info = run_info(run_dir)
    assert info.status == "done" and info.verdict in ("rag", "fine-tune", "both"), (info.status, info.detail)
    assert all(s["status"] == "done" for s in info.stages.values())
    assert "verdict:" in log

    png = shots_dir / "launched-run-overview.png"
    state = browser.shot(f"{url}/?run={run_dir.name}", png, wait_for="What would change the advice", timeout=90)
    assert_drawn(png, state, "Recommendation")
    assert run_dir.name in state["text"]
