"""The knowledge-update drill on a tiny finished run (random 2-layer Llama, hashing embedder, the 20-document
test corpus with tests/data/drill: one edited document, one new one, 3 questions on the changed facts)."""

import json
import shutil
from pathlib import Path

import pytest

from advisor.cli import main
from advisor.core.config import load_config
from advisor.pipeline import run_pipeline

DRILL = Path(__file__).parent / "data" / "drill"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_model_dir):
    data = Path(__file__).parent / "data"
    cfg = load_config(
        "smoke",
        [
            f"corpus.path={data / 'corpus'}",
            f"corpus.qa={data / 'qa.jsonl'}",
            f"corpus.train_qa={data / 'train.jsonl'}",
            f"model.spec={tiny_model_dir}",
            "model.quantization=none",
            "model.max_new_tokens=4",
            "retrieval.embedder=hashing",
            "chunking.size=40",
            "chunking.overlap=8",
            "retrieval.context_tokens=200",
            "tuning.max_steps=2",
            "eval.limit=8",
            "eval.probe_limit=3",
            "eval.batch_size=8",
        ],
    )
    return run_pipeline(cfg, tmp_path_factory.mktemp("drill") / "run")


def test_drill_measures_both_tracks_feeds_freshness_and_the_report(tiny_run, capsys):
    assert main(["drill", str(tiny_run), "--changes", str(DRILL), "--steps", "2"]) == 0
    drill = json.loads((tiny_run / "drill" / "drill.json").read_text())
    assert drill["n_changed_documents"] == 2 and drill["n_questions"] == 3 and drill["steps"] == 2
    assert set(drill["options"]) == {"rag", "fine-tune", "both"}
    for d in drill["options"].values():
        assert d["update_s"] > 0 and d["accuracy"]["n"] == 3 and 0 <= d["accuracy"]["value"] <= 1
    # the updated corpus holds the edited fact, the index was rebuilt over it, the drill adapter was trained
    assert "5.40 pounds" in (tiny_run / "drill" / "corpus" / "ticket-prices.md").read_text()
    assert (tiny_run / "drill" / "corpus" / "new-pier.md").exists()
    meta = (tiny_run / "drill" / "index" / "meta.jsonl").read_text()
    assert "Trennick Marine" in meta and "Trennick Marine" not in (tiny_run / "index" / "meta.jsonl").read_text()
    training = json.loads((tiny_run / "drill" / "adapter" / "training.json").read_text())
    assert training["steps"] == 2
    # the retrieval arm found the new document for its question once re-indexed
    rag_rows = [json.loads(x) for x in (tiny_run / "drill" / "rag.jsonl").read_text().splitlines()]
    pier = next(r for r in rag_rows if r["id"] == "d3")
    assert any(c["source"] == "new-pier.md" for c in pier["contexts"])

    rec = json.loads((tiny_run / "recommendation.json").read_text())
    assert rec["freshness_source"].startswith("knowledge-update drill")
    assert rec["evidence"]["drill"]["rag"]["update_s"] == drill["options"]["rag"]["update_s"]
    report = (tiny_run / "report.md").read_text()
    assert "## Knowledge-update drill" in report and "not measured in this run: knowledge-update drill" not in report
    assert (tiny_run / "report_files" / "drill.png").exists()
    out = capsys.readouterr().out
    assert "verdict:" in out and "re-index" in out

    # a second drill with nothing changed is skipped (the stage is idempotent)
    ended = json.loads((tiny_run / "manifest.json").read_text())["stages"]["drill"]["ended"]
    assert main(["drill", str(tiny_run), "--changes", str(DRILL), "--steps", "2"]) == 0
    assert json.loads((tiny_run / "manifest.json").read_text())["stages"]["drill"]["ended"] == ended


def test_drill_bad_input_exits_2(tiny_run, tmp_path, capsys):
    assert main(["drill", str(tiny_run)]) == 2  # not the sample corpus and no --changes
    assert "pass --changes DIR" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["drill", str(tiny_run), "--changes", str(tmp_path / "empty")]) == 2
    assert "has no corpus/" in capsys.readouterr().err
    half = tmp_path / "half"
    shutil.copytree(tiny_run, half, ignore=shutil.ignore_patterns("adapter", "drill"))
    assert main(["drill", str(half), "--changes", str(DRILL)]) == 2
    assert "stage 'tune' not finished" in capsys.readouterr().err
