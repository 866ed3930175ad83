import json
import multiprocessing as mp
import subprocess
import sys

import pytest

from advisor.core.artifacts import RunDir, atomic_write_json, peak_rss_mb, read_jsonl, reset_peak_rss, write_jsonl


def test_atomic_write_leaves_no_temp_files(tmp_path):
    atomic_write_json(tmp_path / "a" / "x.json", {"k": 1})
    write_jsonl(tmp_path / "a" / "y.jsonl", [{"i": 1}, {"i": 2}])
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["x.json", "y.jsonl"]
    assert read_jsonl(tmp_path / "a" / "y.jsonl") == [{"i": 1}, {"i": 2}]


def test_stage_runs_once_then_skips_until_inputs_change(tmp_path):
    run = RunDir(tmp_path / "run")
    calls = []

    def stage(h):
        with run.stage("s", h, ["out.txt"]) as st:
            if not st.skipped:
                calls.append(h)
                (run / "out.txt").write_text(h)

    stage("h1")
    stage("h1")
    assert calls == ["h1"]
    st = run.read_manifest()["stages"]["s"]
    assert st["status"] == "done" and st["wall_s"] >= 0 and st["peak_rss_mb"] > 0
    stage("h2")
    assert calls == ["h1", "h2"]
    (run / "out.txt").unlink()  # a missing output forces a rerun
    stage("h2")
    assert calls == ["h1", "h2", "h2"]


def test_failed_stage_is_recorded_and_reruns(tmp_path):
    run = RunDir(tmp_path)
    with pytest.raises(RuntimeError):
        with run.stage("s", "h", ["o"]):
            raise RuntimeError("boom")
    st = run.read_manifest()["stages"]["s"]
    assert st["status"] == "failed" and "boom" in st["error"]
    assert not run.stage_done("s", "h", ["o"])


def _worker(path, name):
    run = RunDir(path)
    for i in range(20):
        with run.stage(f"{name}{i}", "h", []):
            pass


def test_two_processes_update_the_manifest_without_losing_stages(tmp_path):
    ctx = mp.get_context("spawn")
    ps = [ctx.Process(target=_worker, args=(tmp_path, n)) for n in ("a", "b")]
    for p in ps:
        p.start()
    for p in ps:
        p.join(60)
    stages = json.loads((tmp_path / "manifest.json").read_text())["stages"]
    assert len(stages) == 40 and all(s["status"] == "done" for s in stages.values())


def touch_mb(n: int) -> bytearray:
    """n MB of resident memory (every page written)."""
    b = bytearray(n << 20)
    for i in range(0, len(b), 4096):
        b[i] = 1
    return b


CHILD_PEAK = "from advisor.core.artifacts import peak_rss_mb; print(peak_rss_mb())"


@pytest.mark.parametrize("start", ["vfork", "fork"])
def test_a_child_process_reports_its_own_peak_not_its_parents(start):
    # The tracks are started by subprocess from a process that may have held GBs (a model conversion, the qa
    # stage): ru_maxrss hands the parent's peak (vfork) or its size at fork to the child.
    held = touch_mb(600)
    extra = {"preexec_fn": lambda: None} if start == "fork" else {}  # preexec_fn makes subprocess fork
    out = subprocess.run([sys.executable, "-c", CHILD_PEAK], capture_output=True, text=True, check=True, **extra)
    assert peak_rss_mb() >= 600
    assert float(out.stdout) < 300, out.stdout  # the child imports little: far below the parent's 600 MB
    del held


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the peak reset is Linux's /proc/self/clear_refs")
def test_each_stage_records_its_own_peak_memory(tmp_path):
    run = RunDir(tmp_path / "run")
    with run.stage("big", inputs_hash="h", outputs=[]):
        held = touch_mb(400)
        del held
    with run.stage("small", inputs_hash="h", outputs=[]):
        pass
    st = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]
    assert st["big"]["peak_rss_mb"] - st["small"]["peak_rss_mb"] >= 350
    assert reset_peak_rss() and peak_rss_mb() < st["big"]["peak_rss_mb"] - 350
