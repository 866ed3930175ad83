"""A run directory as a folder on a user's disk: what `--out` may be, one writer at a time, and re-runs
that never make a finished run worse.

    check_out(path, force)                  # before anything is written: a run dir, an empty or new folder
    with run_lock(path, "advisor run ..."), attempt(path, "advisor run ...") as work:
        ...                                 # build into `work`; a finished run is only replaced on success

A finished run is re-run in a copy, RUN/.attempt/<run name>/ (the same folder name, so whatever reads
`run_dir.name` reads the same); on success its files replace the run's (manifest.json last, so readers
see the old run or the new one), on failure the run is left as it was. Every failed attempt is recorded
in RUN/attempts/<time>.json. A copy left by a killed attempt is resumed by the next one, like a run.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from advisor.core.artifacts import MANIFEST, atomic_write_json, now_iso
from advisor.core.errors import AdvisorError

ATTEMPTS = "attempts"
STAGING = ".attempt"
LOCK = ".run.lock"
SWAP_MARK = "SWAPPING"
# Written by the dashboard's launcher before `advisor run` starts (and appended to while it runs):
# they belong to the run but are never copied or swapped.
LAUNCHER_FILES = ("run.log", "launch.json", "launch.exit")
BOOKKEEPING = (LOCK, ".manifest.lock", STAGING, ATTEMPTS, *LAUNCHER_FILES)
# Top-level names a run (or an `advisor index` folder) writes: with --force these must not be a user's files.
RUN_NAMES = (
    "config.yaml",
    MANIFEST,
    "chunks.jsonl",
    "ingest_report.json",
    "index",
    "sft",
    "adapter",
    "eval",
    "recommendation.json",
    "report.md",
    "report.html",
    "report_files",
    "drill",
    "qa",
)
INDEX_NAMES = ("chunks.jsonl", "ingest_report.json", "index")


def is_run_dir(path: Path) -> bool:
    """A folder holding a run's manifest.json (a JSON object with per-stage status)."""
    try:
        m = json.loads((Path(path) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(m, dict) and isinstance(m.get("stages"), dict)


def is_index_dir(path: Path) -> bool:
    """A folder written by `advisor index` (or a run, which has the same files)."""
    return (Path(path) / "ingest_report.json").is_file() or (Path(path) / "index" / "index_config.json").is_file()


def check_out(path: Path, force: bool = False, kind: str = "run", flag: str = "--out") -> None:
    """`path` may become a run (kind 'run') or index (kind 'index') folder: new, empty, already one, or
    with `force` a folder of other files none of which the command would overwrite. Writes nothing."""
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise AdvisorError(f"{flag} {path} is a broken or looping symlink; pass a folder")
    if path.exists() and not path.is_dir():
        raise AdvisorError(f"{flag} {path} is a file, not a folder; pass a new folder or an existing {kind} directory")
    if not path.exists():
        parent = next((p for p in path.parents if p.exists()), None)
        if parent is not None and not parent.is_dir():
            raise AdvisorError(f"{flag} {path}: {parent} is a file, so no folder can be made there; pass another path")
        if parent is not None and not os.access(parent, os.W_OK | os.X_OK):
            raise AdvisorError(f"{flag} {path}: no permission to create a folder in {parent}; pass another path")
        return
    if is_run_dir(path) or (kind == "index" and is_index_dir(path)):
        return
    if not os.access(path, os.W_OK | os.X_OK):
        raise AdvisorError(f"{flag} {path}: no permission to write into it; pass another folder")
    try:
        theirs = sorted(e.name for e in os.scandir(path) if e.name not in BOOKKEEPING)
    except OSError as e:
        raise AdvisorError(f"{flag} {path}: cannot list the folder ({e.strerror}); pass another folder") from None
    if not theirs:
        return
    what = "a run directory" if kind == "run" else "an index folder"
    if not force:
        raise AdvisorError(
            f"{flag} {path} is not {what} and holds {len(theirs)} file(s) (e.g. '{theirs[0]}'); "
            f"pass a new or empty folder, or --force to write into it (your files are kept)"
        )
    clash = [n for n in theirs if n in {"run": RUN_NAMES, "index": INDEX_NAMES}.get(kind, ())]
    if clash:
        raise AdvisorError(
            f"{flag} {path} holds your '{clash[0]}', which this command would overwrite, even with "
            f"--force; move it away or pass another folder"
        )


@contextlib.contextmanager
def run_lock(path: Path, command: str) -> Iterator[None]:
    """One writer per run directory: a second command on the same folder refuses at once with a line
    naming the holder. The lock is an flock, so a killed holder never leaves it stale."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    f = open(path / LOCK, "a+")
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise AdvisorError(f"{path} is in use by {holder}; wait for it to finish, or pass another --out") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} since {now_iso()} ({command[:200]})\n")
        f.flush()
        yield
    finally:
        f.close()  # closing the file releases the lock


def check_unlocked(path: Path) -> None:
    """Refuse, as run_lock would, when another command holds the run directory; writes nothing (for the checks
    a command makes before it starts, such as advisor run's plan)."""
    lock = Path(path) / LOCK
    if not lock.is_file():
        return
    with open(lock) as f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = f.read().strip() or "another process"
            raise AdvisorError(f"{path} is in use by {holder}; wait for it to finish, or pass another --out") from None


def _finished(path: Path) -> bool:
    with contextlib.suppress(OSError, ValueError):
        return bool(json.loads((path / MANIFEST).read_text(encoding="utf-8")).get("finished"))
    return False


def _replace(src: Path, dst: Path, trash: Path) -> None:
    """Move src onto dst; a folder in the way is moved aside first (rename is atomic per entry)."""
    if dst.is_dir() and not dst.is_symlink():
        shutil.rmtree(trash, ignore_errors=True)
        os.replace(dst, trash)
        os.replace(src, dst)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(src, dst)


def finish_swap(path: Path) -> None:
    """Complete a swap that a crash interrupted (idempotent): every entry still in the copy moves over,
    manifest.json last."""
    path = Path(path)
    staging = path / STAGING
    if not (staging / SWAP_MARK).exists():
        return
    work = staging / path.name
    if work.is_dir():
        names = sorted((e.name for e in os.scandir(work) if e.name not in BOOKKEEPING), key=lambda n: n == MANIFEST)
        for name in names:
            _replace(work / name, path / name, staging / f"old-{name}")
    shutil.rmtree(staging, ignore_errors=True)


def _record(path: Path, work: Path, command: str, started: str, err: BaseException) -> Path:
    """attempts/<time>.json: the command, the error, and the attempt's config and stage states."""
    manifest = {}
    with contextlib.suppress(OSError, ValueError):
        manifest = json.loads((work / MANIFEST).read_text(encoding="utf-8"))
    config = ""
    with contextlib.suppress(OSError):
        config = (work / "config.yaml").read_text(encoding="utf-8")
    rec = path / ATTEMPTS / f"{started.replace(':', '').replace('+0000', 'Z')}-{os.getpid()}.json"
    atomic_write_json(
        rec,
        {
            "command": command,
            "started": started,
            "ended": now_iso(),
            "error": f"{type(err).__name__}: {err}"[:2000],
            "worked_in": str(work),
            "config_yaml": config,
            "stages": manifest.get("stages", {}),
        },
    )
    return rec


@contextlib.contextmanager
def attempt(path: Path, command: str) -> Iterator[Path]:
    """The folder this command builds in: a copy of a finished run (swapped in on success), else the run
    directory itself. A failure is recorded in RUN/attempts/ and, for a finished run, says that the run
    was kept. Hold run_lock(path) around it."""
    path = Path(path)
    finish_swap(path)
    started = now_iso()
    staged = _finished(path)
    work = path / STAGING / path.name if staged else path
    if staged and not (work / MANIFEST).is_file():  # a copy a killed attempt left behind is resumed
        shutil.rmtree(work, ignore_errors=True)
        top = str(path)
        shutil.copytree(path, work, ignore=lambda d, names: [n for n in names if n in BOOKKEEPING] if d == top else [])
    try:
        yield work
    except BaseException as e:
        rec = _record(path, work, command, started, e)
        if staged and isinstance(e, AdvisorError):
            kept = AdvisorError(
                f"{e} (the finished run in {path} is unchanged; this attempt is recorded in "
                f"{rec.relative_to(path)}, its work kept in {STAGING}/ for the next try)"
            )
            kept.exit_code = e.exit_code
            raise kept from None
        if staged:
            print(
                f"advisor: the finished run in {path} is unchanged; this attempt is recorded in {rec}",
                file=sys.stderr,
                flush=True,
            )
        raise
    if staged:
        (path / STAGING / SWAP_MARK).touch()
        finish_swap(path)
