"""benchmarks/plan_slower_host.py: this machine's calibrations with their times multiplied, so a plan says what it
would on a slower host."""

import doctest
import json
from pathlib import Path

CAL = {
    "import_s": 3.5,
    "embed_s_per_token": 5e-05,
    "load_s": 2.7,
    "load_rss_mb": 300.0,
    "prefill_s_per_token": 0.0006,
    "decode_s_per_token": 0.003,
    "decode_batch": 48,
    "adapter_factor": 1.2,
    "train_s_per_token": 0.004,
    "train_label_s": 0.0016,
    "train_detached_s_per_token": 0.0015,
    "train_tokens_per_step": 764,
    "observed_train": {"s_per_token": 0.0036, "tokens": 76104, "steps_s": 175.4, "val_s_per_token": 0.0009},
    "key": {"machine": {"cores": 2}, "model": "m"},
}


def test_its_doctest_passes(bench_module):
    res = doctest.testmod(bench_module("plan_slower_host"))
    assert res.attempted >= 1 and res.failed == 0


def test_every_time_is_multiplied_and_nothing_else(bench_module):
    out = bench_module("plan_slower_host").scaled_calibration(CAL, 2.0, 4.0)
    for key in ("import_s", "load_s", "prefill_s_per_token", "decode_s_per_token", "train_s_per_token"):
        assert out[key] == CAL[key] * 2.0, key
    assert out["train_label_s"] == CAL["train_label_s"] * 2 and out["train_detached_s_per_token"] == 0.003
    assert out["embed_s_per_token"] == CAL["embed_s_per_token"] * 4.0
    for key in ("load_rss_mb", "decode_batch", "adapter_factor", "train_tokens_per_step", "key"):
        assert out[key] == CAL[key], key
    obs = out["observed_train"]
    assert obs["tokens"] == 76104 and obs["s_per_token"] == 0.0072 and obs["steps_s"] == 350.8
    assert obs["val_s_per_token"] == CAL["observed_train"]["val_s_per_token"] * 2
    assert CAL["prefill_s_per_token"] == 0.0006 and CAL["observed_train"]["s_per_token"] == 0.0036  # not modified


def test_the_plan_runs_against_a_home_of_scaled_calibrations_and_models_linked(tmp_path, monkeypatch, bench_module):
    bench = bench_module("plan_slower_host")
    home = tmp_path / "home"
    (home / "calibration").mkdir(parents=True)
    (home / "models").mkdir()
    (home / "calibration" / "abc.json").write_text(json.dumps(CAL))
    monkeypatch.setenv("ADVISOR_HOME", str(home))
    seen = {}

    def plan(cmd, env, cwd):
        tmp = Path(env["ADVISOR_HOME"])
        seen["cmd"] = cmd[1:]
        seen["cal"] = json.loads((tmp / "calibration" / "abc.json").read_text())
        seen["models"] = (tmp / "models").resolve()
        return 0

    monkeypatch.setattr(bench.subprocess, "call", plan)
    assert bench.main(["--times", "3", "--", "--corpus", "c", "--time-budget", "10m"]) == 0
    assert seen["cmd"] == ["-m", "advisor", "plan", "--corpus", "c", "--time-budget", "10m"]
    assert seen["cal"]["prefill_s_per_token"] == CAL["prefill_s_per_token"] * 3
    assert seen["cal"]["embed_s_per_token"] == CAL["embed_s_per_token"] * 3  # --embed-times defaults to --times
    assert seen["models"] == (home / "models").resolve()
    assert json.loads((home / "calibration" / "abc.json").read_text()) == CAL  # this machine's stays as it was


def test_a_plan_that_calibrates_for_itself_is_not_passed_off_as_scaled(tmp_path, monkeypatch, capsys, bench_module):
    bench = bench_module("plan_slower_host")
    home = tmp_path / "home"
    (home / "calibration").mkdir(parents=True)
    (home / "calibration" / "abc.json").write_text(json.dumps(CAL))
    monkeypatch.setenv("ADVISOR_HOME", str(home))

    def plan(cmd, env, cwd):  # no cached key matched: the plan measured and cached its own
        (Path(env["ADVISOR_HOME"]) / "calibration" / "new.json").write_text("{}")
        return 0

    monkeypatch.setattr(bench.subprocess, "call", plan)
    assert bench.main(["--times", "2"]) == 1
    assert "its times are this host's, not scaled" in capsys.readouterr().err


def test_without_a_calibration_it_says_what_to_run(tmp_path, monkeypatch, capsys, bench_module):
    monkeypatch.setenv("ADVISOR_HOME", str(tmp_path))
    assert bench_module("plan_slower_host").main(["--times", "2"]) == 2
    assert "run `advisor plan` (or make setup) first" in capsys.readouterr().err
