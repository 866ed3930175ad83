"""advisor batch --backend ray on a real local Ray head (127.0.0.1, 2 CPUs) started by the test, and MLflow logging
of a batch's runs to a local file store; the 2 x 2 tiny matrix and its settings come from test_batch.py."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from test_batch import batch_file

from advisor.batch import load_batch
from advisor.cli import main

# Differ between any two runs of the same matrix, on any backend: the measured times, and what the advice makes of
# them (build and serving cost are criteria, so the margin, the win share and, near a tie, the verdict move with them).
TIMING = ("index_s", "tune_s", "run_wall_s", "run_dir", "verdict", "margin", "win_share", "no_significant_difference")


def test_ray_not_installed_is_one_clear_line_and_exit_2(tmp_path, tiny_model_dir, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets where Ray is not installed
    assert main(["batch", str(batch_file(tmp_path, tiny_model_dir)), "--backend", "ray"]) == 2
    lines = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert len(lines) == 1 and "pip install 'rag-ft-advisor[ray]'" in lines[0], lines
    assert not (tmp_path / "batch" / "runs").exists()


def test_cell_resources_come_from_the_batch_file_and_bad_ones_fail_early(tmp_path, tiny_model_dir, capsys):
    f = batch_file(
        tmp_path,
        tiny_model_dir,
        resources={"cpus": 1, "memory_gb": 2},
        settings=[
            {"name": "smoke", "config": "smoke"},
            {"name": "big", "config": "smoke", "resources": {"cpus": 2, "gpus": 1}},
        ],
    )
    res = {c.setting: c.resources for c in load_batch(f).cells}
    assert res == {"smoke": {"cpus": 1, "memory_gb": 2}, "big": {"cpus": 2, "memory_gb": 2, "gpus": 1}}
    (tmp_path / "typo").mkdir()
    assert main(["batch", str(batch_file(tmp_path / "typo", tiny_model_dir, resources={"cpu": 1}))]) == 2
    assert "unknown key 'cpu' (did you mean 'cpus'?)" in capsys.readouterr().err


def test_mlflow_logs_a_finished_run_with_its_config_metrics_cis_and_artifacts(tmp_path, tiny_model_dir):
    from mlflow.tracking import MlflowClient

    from advisor.batch import mlflow_log, mlflow_uri

    cell = load_batch(batch_file(tmp_path, tiny_model_dir)).cells[0]
    (cell.run_dir / "eval").mkdir(parents=True)
    (cell.run_dir / "eval" / "metrics.json").write_text(
        json.dumps(
            {
                "arms": {
                    "rag": {"accuracy": {"value": 0.5, "ci95": [0.3, 0.7], "n": 20}, "latency_p50_s": {"value": 1.2}},
                    "tuned": {"accuracy": {"value": 0.25, "ci95": [0.1, 0.45], "n": 20}},
                }
            }
        )
    )
    (cell.run_dir / "report.html").write_text("<html>report</html>")
    (cell.run_dir / "recommendation.json").write_text(json.dumps({"verdict": "rag"}))
    mlflow_log(tmp_path / "batch", cell, [{"preset": "balanced", "verdict": "rag"}])

    client = MlflowClient(mlflow_uri(tmp_path / "batch"))
    [run] = client.search_runs([client.get_experiment_by_name("advisor-batch").experiment_id])
    assert run.info.run_name == cell.id
    assert run.data.params["model.quantization"] == "none" and run.data.params["tuning.lora.r"] == "4"
    assert run.data.params["cell.setting"] == "smoke"
    m = run.data.metrics
    assert (m["rag.accuracy"], m["rag.accuracy.ci_lo"], m["rag.accuracy.ci_hi"]) == (0.5, 0.3, 0.7)
    assert m["tuned.accuracy.ci_hi"] == 0.45 and m["rag.latency_p50_s"] == 1.2
    assert run.data.tags["verdict_balanced"] == "rag"
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"report.html", "recommendation.json"}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rows(out: Path) -> list[dict]:
    return sorted(
        ({k: v for k, v in r.items() if k not in TIMING} for r in csv.DictReader((out / "summary.csv").open())),
        key=lambda r: (r["cell"], r["preset"]),
    )


@pytest.fixture
def ray_head():
    """`ray start --head` on 127.0.0.1 with 2 CPUs; its address. Stopped (with its temp dir removed) after the test."""
    ray = Path(sys.executable).parent / "ray"
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit 107 characters
    port = free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    subprocess.run(
        [
            str(ray),
            "start",
            "--head",
            "--node-ip-address",
            "127.0.0.1",
            "--port",
            str(port),
            "--num-cpus",
            "2",
            "--num-gpus",
            "0",
            "--include-dashboard",
            "false",
            "--temp-dir",
            temp,
            "--disable-usage-stats",
        ],
        check=True,
        env=env,
        capture_output=True,
        timeout=180,
    )
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(ray), "stop", "--force"], capture_output=True, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow
def test_ray_batch_is_killed_after_the_first_cell_resumes_and_equals_the_sequential_summary(
    tmp_path, tiny_model_dir, ray_head
):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    seq = batch_file(tmp_path, tiny_model_dir, out=str(tmp_path / "seq"), mlflow=False)
    r = subprocess.run(
        [sys.executable, "-m", "advisor", "batch", str(seq)], capture_output=True, text=True, env=env, timeout=900
    )
    assert r.returncode == 0, r.stderr[-3000:]

    (tmp_path / "ray").mkdir()
    f = batch_file(tmp_path / "ray", tiny_model_dir, out=str(tmp_path / "ray" / "batch"))
    out = tmp_path / "ray" / "batch"
    cmd = [sys.executable, "-m", "advisor", "batch", str(f), "--backend", "ray", "--address", ray_head]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    state, deadline = {}, time.time() + 600
    while time.time() < deadline:  # the first cell done: kill the driver (Ray then ends its tasks)
        if (out / "batch.json").exists():
            state = json.loads((out / "batch.json").read_text())
            if any(c["status"] == "done" for c in state["cells"].values()):
                break
        assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = [cid for cid, c in state["cells"].items() if c["status"] == "done"]
    assert 1 <= len(done) < 4
    assert (out / "logs" / f"{done[0]}.log").read_text()  # each cell's output is gathered in OUT/logs

    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert all(f"{cid}: done, skipped" in r.stderr for cid in done) and "4/4 runs done" in r.stdout
    ray_rows, seq_rows = rows(out), rows(tmp_path / "seq")
    assert len(ray_rows) == len(seq_rows) == 8
    for a, b in zip(ray_rows, seq_rows):  # one pair at a time: a failure shows the differing row
        assert a == b
    assert "MLflow runs in" in r.stdout and yaml.safe_load((out / "batch.json").read_text())["mlflow"] is True
