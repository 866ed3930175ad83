"""Start `advisor run` in the background from the dashboard, detached from the page.

    overrides = advice_overrides("compliance", {"knowledge_change": "daily"}, {"accuracy": 0.7})
    cmd, run_dir = plan_run(Path("runs"), corpus, qa, train_qa="", preset="smoke", model="smollm2-135m-instruct",
                            overrides=overrides)
    start_run(cmd, run_dir)

The run is a detached process (its own session, so it outlives the page and the server) writing
RUN_DIR/run.log; RUN_DIR/launch.json records what was started and RUN_DIR/launch.exit its exit code when it
ends. Its progress is read back from the run directory (ui/rundata.py), never from page memory, so a
browser refresh loses nothing.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import yaml

from advisor.core.advice import DEFAULT_FACTS, resolve_weights, validate_facts
from advisor.core.artifacts import atomic_write_json, now_iso
from advisor.core.config import validate_targets
from advisor.core.corpus import SUPPORTED
from advisor.core.errors import AdvisorError
from ui.rundata import LAUNCH, LAUNCH_EXIT, LOG, RunDataError, pid_alive, read_json

UPLOADS = ".uploads"  # under the runs folder; hidden, so the runs list skips it
# Every format the corpus reader ingests (advisor/core/corpus.py), so an upload takes what `advisor run` reads.
UPLOAD_SUFFIXES = tuple(sorted(SUPPORTED))
FORMATS = ", ".join(UPLOAD_SUFFIXES)


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", s).strip("-").lower()[:40] or "uploaded"


def save_uploads(runs_dir: Path, name: str, files: list[tuple[str, bytes]], kind: str) -> Path:
    """Store uploaded files under RUNS_DIR/.uploads/<name>-<hash>/; returns the corpus folder or the QA file.

    kind 'corpus': the folder holding every file (its name names the corpus in the run id);
    kind 'qa' or 'train_qa': the single JSONL file."""
    if not files:
        raise AdvisorError(f"no {kind} file uploaded")
    h = hashlib.sha256(b"".join(n.encode() + b"\0" + d for n, d in sorted(files))).hexdigest()[:8]
    folder = Path(runs_dir) / UPLOADS / f"{_slug(name)}-{h}"
    if kind == "corpus":
        target = folder / _slug(name)
        target.mkdir(parents=True, exist_ok=True)
        for fname, data in files:
            base = Path(fname).name
            if not base.lower().endswith(UPLOAD_SUFFIXES):
                raise AdvisorError(
                    f"uploaded file {base} is not a format the corpus reader takes ({FORMATS}); "
                    "convert it to one of them, or leave it out"
                )
            (target / base).write_bytes(data)
        return target
    if len(files) != 1:
        raise AdvisorError(f"upload one {kind} JSONL file")
    fname, data = files[0]
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{kind}.jsonl"
    target.write_bytes(data)
    return target


def _scalar(v) -> str:
    """A value as the text of a dotted override that reads back as the same value (config overrides are YAML
    scalars): true / false, 0.8, monthly; a string YAML would read as something else is quoted."""
    if isinstance(v, bool):
        return str(v).lower()
    text = f"{v:g}" if isinstance(v, float) else str(v)
    return text if yaml.safe_load(text) == v else repr(text)


def advice_overrides(preset: str, facts: dict, targets: dict) -> list[str]:
    """The recommend section of a run as dotted overrides for `advisor run`: the weight preset, every situation
    fact the engine takes (advisor.core.advice.DEFAULT_FACTS, defaults filled in) and the quality targets
    (shares). Bad values raise AdvisorError here, before anything starts.

    >>> advice_overrides("compliance", {"citations_required": True}, {"accuracy": 0.7})[2:4]
    ['recommend.facts.citations_required=true', 'recommend.facts.style_learning=false']
    """
    resolve_weights(preset, {})
    facts, targets = validate_facts(facts), validate_targets(targets)
    return (
        [f"recommend.preset={preset}"]
        + [f"recommend.facts.{k}={_scalar(facts[k])}" for k in DEFAULT_FACTS]
        + [f"recommend.targets.{k}={_scalar(round(v, 4))}" for k, v in targets.items()]
    )


def merge_overrides(chosen: list[str], extra: list[str]) -> list[str]:
    """The page's chosen settings, then the extra ones typed in; a key set in both is an error (which would
    win is not obvious to the person who set it twice)."""
    keys = {o.split("=", 1)[0].strip() for o in chosen}
    twice = [o for o in extra if o.split("=", 1)[0].strip() in keys]
    if twice:
        raise AdvisorError(
            f"{', '.join(twice)} in the extra settings is also set by the choices above; change it "
            "there and remove it from the extra settings"
        )
    return list(chosen) + list(extra)


def command_config(cmd: list[str]):
    """The config the `advisor run` command `cmd` (plan_run's) asks for, read back with advisor's own parser."""
    from advisor.cli import build_parser
    from advisor.commands.run import config_from_args

    try:
        args = build_parser().parse_args(cmd[3:])  # cmd: python -m advisor run ...
    except SystemExit:  # argparse said why on stderr; the page says it in a sentence
        raise AdvisorError(
            f"the command 'advisor {' '.join(cmd[3:])}' cannot be read; check the extra settings"
        ) from None
    return config_from_args(args)


def plan_estimate(cmd: list[str], run_dir: Path) -> str:
    """The plan `advisor plan` prints for this command (advisor/plan.py, on the same config), in brief, as
    markdown: the total wall time on this machine, the time per stage, what a time budget cut and what was
    estimated rather than counted. The first plan for a model and training shape on a machine measures it
    (about a minute on 2 cores; cached in $ADVISOR_HOME/calibration/), later ones take seconds. Bad input raises
    AdvisorError (or ValueError), as `advisor plan` would say it."""
    from advisor.plan import cut_lines, fmt_s, plan_config

    cfg, plan, work, sizing = plan_config(command_config(cmd))
    cal = plan.calibration
    m = cal.get("key", {}).get("machine", {})
    where = ", ".join(x for x in (f"{m.get('cores')} cores", m.get("gpu"), cal.get("device")) if x)
    measured = f"measured {cal.get('measured', '')[:10]}" if cal.get("cached") else "measured just now"
    parallel = any(s.track for s in plan.stages)
    in_turn = not parallel and {"index", "tune"} <= {s.name for s in plan.stages}
    lines = [
        f"about **{fmt_s(plan.total_s)}** on this machine (the one serving this dashboard: {where}; its speed "
        f"{measured}), "
        f"{work.n_documents} documents, {work.n_chunks:,} chunks, model {cfg.model.spec}.",
        "Per stage: "
        + " · ".join(f"{s.name} {fmt_s(s.seconds)}{'*' if s.track else ''}" for s in plan.stages)
        + (" (* the index and tuning tracks run side by side; the total counts the longer)" if parallel else "")
        + (" (the index, then the tuning track: no core to spare to run them side by side)" if in_turn else ""),
    ]
    if sizing and cut_lines(sizing):
        lines.append(
            f"Time budget {sizing['time_budget']}: planned {fmt_s(sizing['estimate_before_s'])}, sized to fit:\n"
            + "\n".join(f"- {c}" for c in cut_lines(sizing))
        )
    elif sizing:
        lines.append(f"Time budget {sizing['time_budget']}: the plan fits, nothing cut.")
    lines += [f"Estimated, not counted: {n}." for n in plan.notes]
    if (Path(run_dir) / "manifest.json").is_file():
        lines.append(f"{Path(run_dir).name} exists already: its finished stages are skipped, so it takes less.")
    return "\n\n".join(lines)


def plan_run(
    runs_dir: Path,
    corpus: str,
    qa: str,
    train_qa: str = "",
    preset: str = "quickstart",
    model: str = "",
    overrides: list[str] | None = None,
) -> tuple[list[str], Path]:
    """Check the inputs (cheaply: paths, QA files, config) and return the command and its run directory.

    Model specs are checked by the run itself (that can mean converting a model, which takes a while);
    a bad one shows up as the run's failure line."""
    from advisor.core.config import load_config
    from advisor.core.qa import load_qa
    from advisor.pipeline import default_run_dir, resolve_inputs

    corpus, qa, train_qa, model = (x.strip() for x in (corpus, qa, train_qa, model))
    if not corpus:
        raise AdvisorError(f"choose a corpus: a folder or file of documents ({FORMATS}), or upload files")
    root = Path(corpus).expanduser()
    if not root.exists():
        raise AdvisorError(f"corpus path {root} does not exist")
    if root.is_dir() and not any(p.is_file() for p in root.rglob("*")):
        raise AdvisorError(f"corpus folder {root} is empty; put documents in it ({FORMATS})")
    if qa:  # without one, the run generates its evaluation set from the corpus (stage qa)
        load_qa(Path(qa).expanduser())
    if train_qa:
        load_qa(Path(train_qa).expanduser())
    overrides = list(overrides or [])
    extra: dict = {"corpus": {"path": corpus, "qa": qa, "train_qa": train_qa}}
    if model:
        extra["model"] = {"spec": model}
    cfg = resolve_inputs(load_config(preset, overrides, extra))
    run_dir = default_run_dir(cfg, Path(runs_dir).expanduser().resolve())
    cmd = [sys.executable, "-m", "advisor", "run", "--corpus", cfg.corpus.path] + (
        ["--qa", cfg.corpus.qa] if qa else []
    )
    if cfg.corpus.train_qa:
        cmd += ["--train-qa", cfg.corpus.train_qa]
    # --yes: the person pressed Launch, and the detached run has no terminal to ask a long plan's question on
    cmd += ["--yes", "--config", preset, "--model", cfg.model.spec, "--out", str(run_dir), *overrides]
    return cmd, run_dir


def is_active(run_dir: Path) -> bool:
    """A run started from the dashboard that has not ended yet."""
    try:
        launch = read_json(Path(run_dir) / LAUNCH, "launch record")
    except RunDataError:
        return False
    return not (Path(run_dir) / LAUNCH_EXIT).exists() and pid_alive(launch.get("pid"))


def start_run(cmd: list[str], run_dir: Path, about: dict | None = None) -> int:
    """Start `cmd` detached, logging to RUN_DIR/run.log; returns its pid. Refuses a second live run in one dir."""
    run_dir = Path(run_dir)
    if is_active(run_dir):
        raise AdvisorError(f"a run is already going on in {run_dir}; wait for it or stop it first")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / LAUNCH_EXIT).unlink(missing_ok=True)
    exit_file = run_dir / LAUNCH_EXIT
    # A tiny shell parent records the exit code when advisor run ends, even if the dashboard is gone by then.
    script = '"$@"; code=$?; echo $code > "$0.tmp" && mv "$0.tmp" "$0"'
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(run_dir / LOG, "ab") as log:
        log.write(f"\n=== {now_iso()} started from the dashboard: {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            ["/bin/sh", "-c", script, str(exit_file), *cmd],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=run_dir,
            env=env,
            start_new_session=True,
        )
    atomic_write_json(
        run_dir / LAUNCH, {"pid": proc.pid, "started": now_iso(), "command": cmd, "log": LOG, **(about or {})}
    )
    # Reap the child when it ends, so it does not linger as a zombie of the server process.
    threading.Thread(target=proc.wait, name=f"wait-{proc.pid}", daemon=True).start()
    return proc.pid


def stop_run(run_dir: Path) -> bool:
    """Stop a run started from the dashboard (its whole process group). Finished stages are kept."""
    import signal

    try:
        launch = read_json(Path(run_dir) / LAUNCH, "launch record")
    except RunDataError:
        return False
    pid = launch.get("pid")
    if not is_active(run_dir):
        return False
    try:
        os.killpg(pid, signal.SIGINT)
    except (ProcessLookupError, PermissionError):
        return False
    return True
