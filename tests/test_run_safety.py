"""Nothing a user built is lost: a failed re-run leaves a finished run as it was (and records the attempt),
a write that fails midway leaves the previous file, one writer per run directory, and (slow tier) a
`kill -9` in any stage followed by a rerun ends exactly as an uninterrupted run."""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import TINY_RUN as TINY  # the settings of the shared finished run

from advisor.cli import main

DATA = Path(__file__).parent / "data"


def run_argv(model: Path, out: Path, corpus: Path = DATA / "corpus", *over: str) -> list[str]:
    return [
        "run",
        "--corpus",
        str(corpus),
        "--qa",
        str(DATA / "qa.jsonl"),
        "--train-qa",
        str(DATA / "train.jsonl"),
        "--model",
        str(model),
        "--config",
        "smoke",
        "--out",
        str(out),
        *TINY,
        *over,
    ]


@pytest.fixture
def finished(finished_tiny_run) -> Path:
    return finished_tiny_run


def tree(root: Path, skip: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Relative path -> bytes of every file under root, minus the top-level names in `skip`."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.relative_to(root).parts[0] not in skip
    }


BOOKKEEPING = ("attempts", ".attempt", ".run.lock", ".manifest.lock")


def fail_a_rerun(finished: Path, model: Path, tmp: Path, capsys) -> tuple[Path, Path, dict]:
    """Re-run a copy of the finished run on a corpus whose JSONL file breaks on line 2 (the preflight reads
    heads only; ingestion finds it). Returns the run, the corpus and the run's files before."""
    run = tmp / "run"
    shutil.copytree(finished, run)
    before = tree(run, BOOKKEEPING)
    docs = tmp / "docs"
    shutil.copytree(DATA / "corpus", docs)
    (docs / "notes.jsonl").write_text('{"text": "The ferry cafe opens at nine."}\n{"text": broken\n')
    capsys.readouterr()
    assert main(run_argv(model, run, docs)) == 2
    return run, docs, before


def test_a_rerun_that_fails_after_preflight_leaves_the_finished_run_as_it_was(
    finished, tiny_model_dir, tmp_path, capsys
):
    run, docs, before = fail_a_rerun(finished, tiny_model_dir, tmp_path, capsys)
    err = [x for x in capsys.readouterr().err.splitlines() if x.startswith("advisor: error:")]
    assert len(err) == 1 and "notes.jsonl:2" in err[0] and "is unchanged" in err[0] and "attempts/" in err[0], err
    assert tree(run, BOOKKEEPING) == before  # config.yaml, manifest (still finished), every artifact
    assert json.loads((run / "manifest.json").read_text())["finished"]
    [record] = list((run / "attempts").glob("*.json"))
    rec = json.loads(record.read_text())
    assert (
        "notes.jsonl:2" in rec["error"]
        and str(docs) in rec["config_yaml"]
        and rec["stages"]["ingest"]["status"] == "failed"
    )


@pytest.mark.slow
def test_the_next_try_after_a_failed_rerun_resumes_its_copy_and_swaps_it_in(finished, tiny_model_dir, tmp_path, capsys):
    run, docs, _ = fail_a_rerun(finished, tiny_model_dir, tmp_path, capsys)
    (docs / "notes.jsonl").write_text('{"text": "The ferry cafe opens at nine."}\n')
    assert main(run_argv(tiny_model_dir, run, docs)) == 0
    m = json.loads((run / "manifest.json").read_text())
    assert m["finished"] and str(docs) in (run / "config.yaml").read_text() and not (run / ".attempt").exists()
    assert "notes.jsonl" in json.loads((run / "ingest_report.json").read_text())["read"]


@pytest.mark.slow
def test_a_successful_rerun_replaces_the_run_and_leaves_no_copy(finished, tiny_model_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    old = json.loads((run / "manifest.json").read_text())["stages"]
    assert main(run_argv(tiny_model_dir, run, DATA / "corpus", "retrieval.top_k=2")) == 0
    new = json.loads((run / "manifest.json").read_text())
    assert new["finished"] and "top_k: 2" in (run / "config.yaml").read_text()
    assert new["stages"]["eval_rag"]["ended"] != old["eval_rag"]["ended"]
    assert new["stages"]["tune"]["ended"] == old["tune"]["ended"]
    assert not (run / ".attempt").exists() and not (run / "attempts").exists()


def test_eval_with_a_mistyped_judge_fails_before_answering(finished, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    before = tree(run)
    t0 = time.perf_counter()
    assert main(["eval", str(run), "--judge", "TYPO"]) == 2
    assert "eval.judge" in capsys.readouterr().err and time.perf_counter() - t0 < 5
    assert tree(run) == before


class FullDisk:
    """A file object that takes `room` bytes, then fails as a full disk does."""

    def __init__(self, f, room: int):
        self.f, self.room = f, room

    def write(self, data):
        if len(data) > self.room:
            self.f.write(data[: self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def test_a_write_that_fails_midway_leaves_the_previous_artifact_intact(tmp_path, monkeypatch):
    from advisor.core.artifacts import RunDir, atomic_write_json, write_jsonl
    from advisor.core.corpus import ingest_corpus, whitespace_offsets

    ingest_corpus(DATA / "corpus", tmp_path, whitespace_offsets, 40, 8)
    atomic_write_json(tmp_path / "metrics.json", {"a": 1})
    write_jsonl(tmp_path / "rows.jsonl", [{"i": i} for i in range(3)])
    run = RunDir(tmp_path)
    run.init_manifest("seed: 0\n", {"corpus": "x"})
    before = tree(tmp_path)
    real = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: FullDisk(real(fd, *a, **k), 10))
    for write in (
        lambda: atomic_write_json(tmp_path / "metrics.json", {"a": 2, "b": "x" * 100}),
        lambda: write_jsonl(tmp_path / "rows.jsonl", [{"i": i} for i in range(50)]),
        lambda: run.init_manifest("seed: 1\n" * 20, {"corpus": "y"}),
        lambda: ingest_corpus(DATA / "corpus", tmp_path, whitespace_offsets, 20, 4),
    ):
        with pytest.raises(OSError, match="No space left"):
            write()
    monkeypatch.undo()
    assert tree(tmp_path) == before  # the old bytes, and no temp file left behind


def test_a_full_disk_in_a_command_is_one_line_and_keeps_the_old_index(tmp_path, monkeypatch, capsys):
    out = tmp_path / "ix"
    assert main(["index", str(DATA / "corpus"), "retrieval.embedder=hashing", "--out", str(out)]) == 0
    before = tree(out, (".run.lock",))
    real = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: FullDisk(real(fd, *a, **k), 100))
    capsys.readouterr()
    assert (
        main(
            [
                "index",
                str(DATA / "corpus"),
                "retrieval.embedder=hashing",
                "chunking.size=30",
                "chunking.overlap=5",
                "--out",
                str(out),
            ]
        )
        == 2
    )
    monkeypatch.undo()
    err = [x for x in capsys.readouterr().err.splitlines() if x.startswith("advisor")]
    assert err == [err[0]] and "No space left on device" in err[0] and "Traceback" not in err[0], err
    assert tree(out, (".run.lock",)) == before


HOLDER = textwrap.dedent("""
    import sys, time
    from advisor.core.rundirs import run_lock
    with run_lock(sys.argv[1], "advisor run (the first one)"):
        print("locked", flush=True)
        time.sleep(60)
""")


def test_a_second_command_on_a_run_directory_in_use_refuses_with_a_clear_line(
    finished, tiny_model_dir, tmp_path, capsys
):
    from advisor.core.rundirs import run_lock

    run = tmp_path / "run"
    shutil.copytree(finished, run)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = tree(run, (".run.lock",))
        for argv in (
            run_argv(tiny_model_dir, run, DATA / "corpus", "retrieval.top_k=2"),
            ["eval", str(run)],
            ["tune", str(run)],
        ):
            capsys.readouterr()
            assert main(argv) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and f"{run} is in use by pid {holder.pid}" in err[0], err
        assert tree(run, (".run.lock",)) == before
    finally:
        holder.kill()
        holder.wait()
    with run_lock(run, "after"):  # a killed holder leaves no stale lock
        pass


def test_a_swap_cut_short_by_a_crash_is_completed_by_the_next_command(tmp_path):
    from advisor.core.rundirs import STAGING, SWAP_MARK, finish_swap

    run = tmp_path / "run"
    work = run / STAGING / "run"
    (work / "eval").mkdir(parents=True)
    (run / "eval").mkdir()
    (run / "eval" / "metrics.json").write_text("old")
    (run / "manifest.json").write_text('{"stages": {}, "v": "old"}')
    (work / "eval" / "metrics.json").write_text("new")
    (work / "manifest.json").write_text('{"stages": {}, "v": "new"}')
    (run / STAGING / SWAP_MARK).touch()
    finish_swap(run)
    assert (run / "eval" / "metrics.json").read_text() == "new" and '"new"' in (run / "manifest.json").read_text()
    assert not (run / STAGING).exists()


# ---------------------------------------------------------------- slow tier: kill -9 in every stage

STAGES = [
    "ingest",
    "index",
    "sft",
    "tune",
    "eval_base",
    "eval_rag",
    "eval_tuned",
    "eval_tuned_rag",
    "known",
    "probes",
    "curve",
    "metrics",
    "recommend",
    "report",
]
NOISY = ("latency_p50_s", "latency_p95_s", "peak_memory_mb")  # measured, not computed: differ run to run


def test_the_kill_list_holds_every_stage_the_run_plans(tiny_model_dir, tmp_path):
    from advisor.core.config import load_config
    from advisor.pipeline import planned_stages

    argv = run_argv(tiny_model_dir, tmp_path / "run")
    given = {"--corpus": "corpus.path", "--qa": "corpus.qa", "--train-qa": "corpus.train_qa", "--model": "model.spec"}
    over = [f"{given[a]}={v}" for a, v in zip(argv, argv[1:]) if a in given]
    assert STAGES == planned_stages(load_config("smoke", [*over, *TINY])) + ["report"]


def cli(argv: list[str], env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "advisor", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )


def results(run: Path) -> tuple[dict, str]:
    m = json.loads((run / "eval" / "metrics.json").read_text())["arms"]
    values = {arm: {k: v for k, v in ms.items() if k not in NOISY} for arm, ms in m.items()}
    return values, json.loads((run / "recommendation.json").read_text())["verdict"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_model_dir):
    out = tmp_path_factory.mktemp("reference") / "run"
    r = cli(run_argv(tiny_model_dir, out))
    assert r.returncode == 0, r.stderr[-2000:]
    return results(out)


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_kill_9_in_a_stage_then_rerun_ends_as_an_uninterrupted_run(stage, reference, tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    delay = random.Random(stage).uniform(0, 0.5)  # a reproducible random point of the stage
    r = cli(run_argv(tiny_model_dir, out), env={"ADVISOR_TEST_KILL": f"{stage}:{delay:.3f}"})
    assert r.returncode == -signal.SIGKILL, (r.returncode, r.stderr[-2000:])
    m = json.loads((out / "manifest.json").read_text())
    assert not m.get("finished")
    if stage != "report":
        assert m["stages"][stage]["status"] == "running"  # killed inside the stage, before it was recorded done
    r = cli(run_argv(tiny_model_dir, out))
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((out / "manifest.json").read_text())["finished"]
    assert results(out) == reference
    assert (out / "report.md").is_file()


@pytest.mark.slow
def test_two_advisor_runs_on_one_directory_the_second_refuses(tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    first = subprocess.Popen(
        [sys.executable, "-m", "advisor", *run_argv(tiny_model_dir, out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 120
        while not (out / "manifest.json").exists() and time.time() < deadline:
            time.sleep(0.2)
        second = cli(run_argv(tiny_model_dir, out))
        assert second.returncode == 2
        assert second.stderr.strip() == (
            f"advisor: error: {out} is in use by pid {first.pid} since " + second.stderr.split(" since ", 1)[1].strip()
        ), second.stderr
        assert first.wait(timeout=600) == 0
    finally:
        first.kill()
    assert json.loads((out / "manifest.json").read_text())["finished"]
