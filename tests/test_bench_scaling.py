"""benchmarks/bench_scaling.py --quickstart RUN_DIR: the plan a run printed before it started, held against its
stage times, with no scale runs after it."""

import json
from pathlib import Path


def _run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "chunks.jsonl").write_text('{"id": "a"}\n{"id": "b"}\n')
    stages = {"index": {"status": "done", "wall_s": 100.0}, "tune": {"status": "done", "wall_s": 200.0}}
    plan = {"total_s": 390.0, "stages": {"index": {"seconds": 160.0}, "tune": {"seconds": 230.0}}}
    (run / "manifest.json").write_text(json.dumps({"stages": stages, "wall_s": 300.0, "plan": {"estimate": plan}}))
    return run


def test_quickstart_compares_the_recorded_plan_and_runs_no_scales(tmp_path, capsys, monkeypatch, bench_module):
    bench = bench_module("bench_scaling")
    run = _run_dir(tmp_path)
    monkeypatch.setattr(bench, "calibrate", lambda *a, **k: (_ for _ in ()).throw(AssertionError("calibrated")))
    monkeypatch.setattr(bench, "run_scale", lambda *a, **k: (_ for _ in ()).throw(AssertionError("ran a scale")))
    assert bench.main(["--quickstart", str(run)]) == 0
    out = capsys.readouterr().out
    assert "recorded in its manifest.json" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()[:1] in (["index"], ["tune"])}
    assert rows["index"][3:] == ["1.60", "NO"] and rows["tune"][3:] == ["1.15", "yes"]
    total = next(line for line in out.splitlines() if line.startswith("total"))
    assert total.split()[3:5] == ["1.30", "yes"]


def test_a_run_without_a_recorded_plan_gets_none_from_its_manifest(tmp_path, bench_module):
    bench = bench_module("bench_scaling")
    run = _run_dir(tmp_path)
    (run / "manifest.json").write_text(json.dumps({"stages": {}, "wall_s": 1.0}))
    assert bench.recorded_plan(run) is None
