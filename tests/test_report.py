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

from advisor.report import MISSING, write_report

FIXTURE = Path(__file__).parent / "fixtures" / "rundirs" / "sample-fixture"


@pytest.fixture
def run(tmp_path) -> Path:
    d = tmp_path / FIXTURE.name
    shutil.copytree(FIXTURE, d)
    return d


def inlined_images(html: str) -> list[Image.Image]:
    return [Image.open(io.BytesIO(base64.b64decode(b))) for b in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)]


def test_full_run_report_has_every_plot_inlined_and_no_external_reference(run):
    write_report(run)
    md = (run / "report.md").read_text()
    html = (run / "report.html").read_text()
    for name in ("sensitivity", "arms", "forgetting", "paired", "cost", "val_loss"):
        assert f"report_files/{name}.png" in md and (run / "report_files" / f"{name}.png").exists(), name
    images = inlined_images(html)
    assert len(images) == 6
    for im in images:  # a drawn plot, not an empty canvas: many distinct colours, a real size
        assert im.width >= 600 and im.height >= 250
        assert len(im.convert("RGB").getcolors(maxcolors=1 << 20)) > 20
    assert "src='http" not in html and 'src="http' not in html and "<script" not in html
    rec = json.loads((run / "recommendation.json").read_text())
    assert f"<h2>Verdict: <b>{rec['verdict']}</b></h2>" in html
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
    for what in ("recommendation", "forgetting", "paired differences", "ingestion report", "adapter training",
                 "leakage check", "validation-loss curve", "knowledge-update drill"):
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
    assert "| faithfulness % |" in md and "80.0 [70.0, 90.0]" in md
    assert "report_files/val_loss.png" in md
