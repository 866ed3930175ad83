"""Slow tier: report.html of the fixture run opened in headless Chromium (file://, no server), a full-page
screenshot, and every plot's region of the screenshot checked to hold a drawn image (not blank, not broken).

    pytest -m browser tests/test_report_browser.py
    ADVISOR_SCREENSHOTS=/tmp/shots pytest -m browser tests/test_report_browser.py    # keep the PNG

Chromium comes from `make chromium`; without it this test fails, it never skips.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from advisor.core.arms import OPTION_LABEL
from advisor.report import write_report
from ui.shots import Browser, find_chromium

pytestmark = [pytest.mark.slow, pytest.mark.browser]

FIXTURE = Path(__file__).parent / "fixtures" / "rundirs" / "sample-fixture"
IMAGES_JS = """JSON.stringify([...document.images].map(i => {const r = i.getBoundingClientRect();
  return {alt: i.alt, complete: i.complete, natural: i.naturalWidth, x: r.left, y: r.top + window.scrollY,
          w: r.width, h: r.height};}))"""


def test_report_html_renders_its_plots_in_chromium(tmp_path):
    if not find_chromium():
        pytest.fail(
            "headless Chromium is needed and was not found: run `make chromium` or set CHROMIUM=/path/to/chrome"
        )
    run = tmp_path / FIXTURE.name
    shutil.copytree(FIXTURE, run)
    write_report(run)
    # the HTML must stand alone: move it away from report_files/ before opening it
    alone = tmp_path / "mailed" / "report.html"
    alone.parent.mkdir()
    shutil.move(run / "report.html", alone)
    shutil.rmtree(run / "report_files")
    shots = Path(os.environ.get("ADVISOR_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    png = shots / "report.png"
    with Browser(width=1100, height=900) as b:
        state = b.shot(alone.as_uri(), png, wait_for="What would flip the advice", max_height=20000)
        images = json.loads(b.call("Runtime.evaluate", expression=IMAGES_JS, returnByValue=True)["result"]["value"])
    verdict = OPTION_LABEL[json.loads((FIXTURE / "recommendation.json").read_text())["verdict"]]
    assert (
        f"Verdict: {verdict}" in state["text"] and "not measured in this run: knowledge-update drill" in state["text"]
    )
    assert len(images) == 7  # the learning curve too
    shot = Image.open(png).convert("RGB")
    assert shot.height > 3000  # the whole page, not only the first screen
    for im in images:
        assert im["complete"] and im["natural"] > 0, f"image '{im['alt']}' did not load"
        assert im["w"] > 400 and im["h"] > 150, im
        box = (int(im["x"]), int(im["y"]), int(im["x"] + im["w"]), int(im["y"] + im["h"]))
        assert box[3] <= shot.height, f"image '{im['alt']}' lies below the screenshot"
        region = shot.crop(box)
        colours = region.getcolors(maxcolors=1 << 20)
        # a plot: many distinct colours (bars, text, anti-aliasing) and clearly not a white or single-colour box
        assert colours is not None and len(colours) > 30, f"image '{im['alt']}' looks blank"
        assert min(ImageStat.Stat(region).mean) < 250 and max(ImageStat.Stat(region).stddev) > 15, im["alt"]


SUMMARY_JS = """JSON.stringify((() => {const s = document.querySelector('section.summary');
  const r = s.getBoundingClientRect();
  return {top: r.top + window.scrollY, bottom: r.bottom + window.scrollY, text: s.innerText,
          reasons: s.querySelectorAll('li').length};})())"""


def test_report_first_screen_holds_the_verdict_fit_and_three_reasons(tmp_path):
    """The top 1000 px of report.html at 1400 px wide (docs/report-first-screen.png) say the advice, whether it
    is good enough and why, before any table."""
    if not find_chromium():
        pytest.fail(
            "headless Chromium is needed and was not found: run `make chromium` or set CHROMIUM=/path/to/chrome"
        )
    run = tmp_path / FIXTURE.name
    shutil.copytree(FIXTURE, run)
    write_report(run)
    verdict = OPTION_LABEL[json.loads((run / "recommendation.json").read_text())["verdict"]]
    with Browser(width=1400, height=1000) as b:
        b.shot((run / "report.html").as_uri(), tmp_path / "first.png", wait_for="In short", full_page=False)
        s = json.loads(b.call("Runtime.evaluate", expression=SUMMARY_JS, returnByValue=True)["result"]["value"])
    assert s["top"] < 200 and s["bottom"] <= 1000, s
    assert f"Advice: {verdict}" in s["text"] and "Good enough?" in s["text"] and f"Why {verdict}" in s["text"]
    assert s["reasons"] == 3
