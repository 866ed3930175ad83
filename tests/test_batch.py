"""advisor batch: the batch file is validated before anything is built (fast), and a 2 corpora x 2 settings
matrix on the tiny model, with 2 weight presets per run, is interrupted, resumed and summarized (slow)."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from advisor.batch import load_batch
from advisor.cli import main

DATA = Path(__file__).parent / "data"
TINY = [
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
]


def half_corpus(tmp: Path) -> dict:
    """A second corpus: the first 10 test documents and the questions about them."""
    docs = sorted((DATA / "corpus").iterdir())[:10]
    (tmp / "half").mkdir()
    for d in docs:
        (tmp / "half" / d.name).write_text(d.read_text())
    names = {d.name for d in docs}
    qa = [
        line
        for line in (DATA / "qa.jsonl").read_text().splitlines()
        if json.loads(line).get("source") in names or json.loads(line).get("unanswerable")
    ]
    (tmp / "half.jsonl").write_text("\n".join(qa) + "\n")
    return {"name": "ferry-half", "path": str(tmp / "half"), "qa": str(tmp / "half.jsonl")}


def batch_file(tmp: Path, model: Path, **over) -> Path:
    spec = {
        "out": str(tmp / "batch"),
        "corpora": [
            {
                "name": "ferry",
                "path": str(DATA / "corpus"),
                "qa": str(DATA / "qa.jsonl"),
                "train_qa": str(DATA / "train.jsonl"),
            },
            half_corpus(tmp),
        ],
        "models": [str(model)],
        "settings": [
            {"name": "smoke", "config": "smoke"},
            {"name": "r2", "config": "smoke", "overrides": ["tuning.lora.r=2", "tuning.lora.alpha=4"]},
        ],
        "overrides": TINY,
        "recommend_presets": ["balanced", "cost-first"],
        **over,
    }
    p = tmp / "batch.yaml"
    p.write_text(yaml.safe_dump(spec))
    return p


def test_the_matrix_is_corpora_times_models_times_settings(tmp_path, tiny_model_dir):
    spec = load_batch(batch_file(tmp_path, tiny_model_dir))
    assert len(spec.cells) == 4 and len({c.run_dir for c in spec.cells}) == 4
    assert {(c.corpus, c.setting) for c in spec.cells} == {
        (a, b) for a in ("ferry", "ferry-half") for b in ("smoke", "r2")
    }
    r2 = next(c for c in spec.cells if c.setting == "r2")
    assert r2.config.tuning.lora.r == 2 and r2.config.model.quantization == "none"


@pytest.mark.parametrize(
    "over, msg",
    [
        ({"corpus": []}, "unknown key 'corpus' (did you mean 'corpora'?)"),
        ({"recommend_presets": ["fast"]}, "unknown weight preset 'fast'"),
        (
            {"settings": [{"name": "bad", "config": "smoke", "overrides": ["tuning.lora.r=0"]}]},
            "setting=bad: tuning.lora.r=0 must be a positive integer",
        ),
        ({"settings": [{"name": "typo", "config": "smok"}]}, "unknown preset 'smok'"),
        ({"corpora": [{"name": "x", "paht": "docs"}]}, "unknown key 'paht'"),
        ({"mlflow": "sometimes"}, "must be auto, true or false"),
    ],
)
def test_bad_batch_files_fail_before_anything_is_built(tmp_path, tiny_model_dir, capsys, over, msg):
    f = batch_file(tmp_path, tiny_model_dir, **over)
    assert main(["batch", str(f)]) == 2
    assert msg in capsys.readouterr().err
    assert not (tmp_path / "batch" / "runs").exists()


def test_mlflow_required_but_not_installed_is_a_clear_error(tmp_path, tiny_model_dir, capsys, monkeypatch):
    real = importlib.util.find_spec  # the test extra installs MLflow: hide it as a machine without it would
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    f = batch_file(tmp_path, tiny_model_dir, mlflow=True)
    assert main(["batch", str(f)]) == 2
    err = capsys.readouterr().err
    assert f"{f}: mlflow: true but MLflow is not installed; pip install mlflow" in err
    assert not (tmp_path / "batch").exists()  # nothing started


@pytest.mark.slow
def test_batch_is_interrupted_resumed_and_summarized(tmp_path, tiny_model_dir):
    f = batch_file(tmp_path, tiny_model_dir)
    out = tmp_path / "batch"
    cmd = [sys.executable, "-m", "advisor", "batch", str(f)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    deadline = time.time() + 600
    state = {}
    while time.time() < deadline:  # wait for the first cell to finish, then kill the whole batch mid-run
        if (out / "batch.json").exists():
            state = json.loads((out / "batch.json").read_text())
            if any(c["status"] == "done" for c in state["cells"].values()):
                break
        assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = next(cid for cid, c in state["cells"].items() if c["status"] == "done")
    assert sum(c["status"] == "done" for c in state["cells"].values()) < 4
    partial = (out / "summary.md").read_text()
    assert first in partial and "not finished" in partial
    manifest = json.loads((out / "runs" / first / "manifest.json").read_text())

    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"{first}: done, skipped" in r.stderr
    assert json.loads((out / "runs" / first / "manifest.json").read_text()) == manifest  # not touched again
    assert "4/4 runs done" in r.stdout
    assert ("MLflow not installed" in r.stdout) == (importlib.util.find_spec("mlflow") is None)
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert len(rows) == 8  # 4 runs x 2 weight presets
    assert {(x["corpus"], x["setting"], x["preset"]) for x in rows} == {
        (c, s, p) for c in ("ferry", "ferry-half") for s in ("smoke", "r2") for p in ("balanced", "cost-first")
    }
    for x in rows:
        assert x["verdict"] in ("rag", "fine-tune", "both") and 0 <= float(x["acc_rag"]) <= 1
        assert Path(x["run_dir"], "recommendation.json").exists()
    md = (out / "summary.md").read_text()
    assert "8 rows from 4 finished runs." in md and md.count("\n| ferry") == 8
