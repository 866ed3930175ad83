"""The run directory: atomic writes, content hashes, and manifest.json with per-stage status.

A stage is skipped when its recorded status is 'done', its outputs exist and the hash of its
inputs is unchanged. Two track processes update the manifest concurrently, so every
read-modify-write of manifest.json holds an exclusive file lock.

    run = RunDir("runs/demo")
    with run.stage("index", inputs_hash=h, outputs=["index/index.faiss"]) as st:
        if st.skipped: ...
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from advisor.core.textio import read_json
from advisor.core.textio import read_jsonl as read_jsonl  # re-exported: the stages read their artifacts from here

MANIFEST = "manifest.json"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temp file in the same folder, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def numbered_dirs(root: Path, prefix: str, marker: str) -> list[tuple[int, Path]]:
    """(n, folder) for the folders `<prefix>-<n>` under root that hold `marker` (a file written last, so a
    half-written folder is left out), in order of n. Adapter snapshots (adapter/curve/step-N) and extra-seed
    adapters (adapter_seeds/seed-i) are kept this way."""
    found = []
    for p in Path(root).glob(f"{prefix}-*"):
        n = p.name[len(prefix) + 1 :]
        if n.isdigit() and (p / marker).is_file():
            found.append((int(n), p))
    return sorted(found)


def mean_accuracy(rows: list[dict], ids: list[str] | None = None) -> float:
    """Mean of the rows' `scores.accuracy` (eval/<arm>.jsonl rows), over the rows with `ids` when given;
    rows without an accuracy (unanswerable questions) do not count; 0.0 when none does."""
    if ids is not None:
        by_id = {r["id"]: r for r in rows}
        rows = [by_id[i] for i in ids if i in by_id]
    vals = [r["scores"]["accuracy"] for r in rows if "accuracy" in r.get("scores", {})]
    return sum(vals) / max(1, len(vals))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def combine_hashes(*parts: str) -> str:
    return sha256_bytes("\n".join(parts).encode())[:16]


def _proc_status_mb(field: str) -> float | None:
    """A memory field of /proc/self/status (VmHWM, VmRSS) in MB; None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """Peak resident memory of this process (since the last reset_peak_rss), in MB.

    Linux: VmHWM of /proc/self/status, the high-water mark of this process's own memory. Not ru_maxrss: a
    child started by subprocess inherits its parent's peak (vfork) or its parent's size at the fork in
    ru_maxrss (docs/architecture.md 'Peak memory'). Elsewhere ru_maxrss (KiB on Linux, bytes on macOS)."""
    hwm = _proc_status_mb("VmHWM")
    if hwm is not None:
        return hwm
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024


def rss_mb() -> float | None:
    """Resident memory of this process now, in MB (Linux; None elsewhere)."""
    return _proc_status_mb("VmRSS")


def reset_peak_rss() -> bool:
    """Start peak_rss_mb afresh from the current resident memory (Linux: "5" to /proc/self/clear_refs), so a
    stage or an arm measures its own peak, not an earlier one's. False where the system has no such reset."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def git_sha() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def package_versions() -> dict[str, str]:
    from importlib import metadata

    names = [
        "torch",
        "transformers",
        "peft",
        "bitsandbytes",
        "sentence-transformers",
        "faiss-cpu",
        "datasets",
        "evaluate",
        "accelerate",
        "numpy",
    ]
    out = {"python": platform.python_version()}
    for n in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[n] = metadata.version(n)
    return out


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@contextlib.contextmanager
def crash_window(name: str) -> Iterator[None]:
    """A crash-safety test hook (off unless set): with ADVISOR_TEST_KILL=NAME:SECONDS, this process group
    gets SIGKILL that many seconds into stage NAME, or as the stage body ends if it is quicker, before its
    success is recorded. The tests kill every stage this way and check that a rerun ends as an
    uninterrupted run does."""
    target, _, delay = os.environ.get("ADVISOR_TEST_KILL", "").partition(":")
    if target != name:
        yield
        return
    import signal
    import threading

    def kill() -> None:
        os.killpg(os.getpgrp(), signal.SIGKILL)

    timer = threading.Timer(float(delay or 0), kill)
    timer.daemon = True
    timer.start()
    yield
    kill()


@dataclass
class StageHandle:
    name: str
    skipped: bool


class RunDir:
    """One run's folder (docs/architecture.md, 'The pipeline and the run directory') and its manifest."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __truediv__(self, rel: str) -> Path:
        return self.path / rel

    # ------------------------------------------------------------ manifest
    @contextlib.contextmanager
    def _locked_manifest(self) -> Iterator[dict]:
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".manifest.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                m = self.read_manifest()
                yield m
                atomic_write_json(self.path / MANIFEST, m)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def read_manifest(self) -> dict:
        p = self.path / MANIFEST
        if not p.exists():
            return {"stages": {}}
        # A manifest is rewritten atomically, so a broken one is a hand-edited or foreign file.
        return read_json(p, "run bookkeeping", "fix or delete it to rebuild the run's bookkeeping")

    def update_manifest(self, **fields: Any) -> None:
        with self._locked_manifest() as m:
            m.update(fields)

    def drop_stale_stages(self, planned: Iterable[str]) -> list[str]:
        """Forget the stages an earlier attempt left running or failed that this run does not go through (a run
        stopped in tune_seed2 and resumed with tuning.seeds=2): a finished run is not shown as interrupted for a
        stage it never needed, nor does its report list it. Returns their names."""
        keep = set(planned)
        with self._locked_manifest() as m:
            stages = m.get("stages", {})
            stale = [n for n, st in stages.items() if n not in keep and st.get("status") != "done"]
            for n in stale:
                del stages[n]
        return stale

    def init_manifest(self, config_yaml: str, inputs: dict[str, str]) -> None:
        """Write config.yaml and the run-level manifest fields (versions, input hashes, git sha)."""
        atomic_write_text(self.path / "config.yaml", config_yaml)
        with self._locked_manifest() as m:
            m.setdefault("created", now_iso())
            m.setdefault("stages", {})
            m.pop("finished", None)  # a resumed run is unfinished until it finishes again
            m["updated"] = now_iso()
            m["versions"] = package_versions()
            m["git_sha"] = git_sha()
            m["inputs"] = inputs
            m["command"] = " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:])
            m["host"] = {"platform": platform.platform(), "cpus": os.cpu_count()}

    def stage_done(self, name: str, inputs_hash: str, outputs: Iterable[str]) -> bool:
        st = self.read_manifest().get("stages", {}).get(name, {})
        return (
            st.get("status") == "done"
            and st.get("inputs_hash") == inputs_hash
            and all((self.path / o).exists() for o in outputs)
        )

    @contextlib.contextmanager
    def stage(self, name: str, inputs_hash: str, outputs: Iterable[str], force: bool = False) -> Iterator[StageHandle]:
        """Run a stage body unless it is already done with the same inputs; record status and cost."""
        outputs = list(outputs)
        if not force and self.stage_done(name, inputs_hash, outputs):
            yield StageHandle(name, skipped=True)
            return
        start = time.perf_counter()
        reset_peak_rss()  # the stage's peak_rss_mb is its own, not an earlier stage's in this process
        with self._locked_manifest() as m:
            m.setdefault("stages", {})[name] = {
                "status": "running",
                "started": now_iso(),
                "inputs_hash": inputs_hash,
                "pid": os.getpid(),
            }
        try:
            with crash_window(name):
                yield StageHandle(name, skipped=False)
        except BaseException as e:
            with self._locked_manifest() as m:
                st = m["stages"][name]
                st.update(
                    status="failed",
                    ended=now_iso(),
                    wall_s=round(time.perf_counter() - start, 2),
                    error=f"{type(e).__name__}: {e}"[:500],
                )
            raise
        with self._locked_manifest() as m:
            m["stages"][name].update(
                status="done",
                ended=now_iso(),
                wall_s=round(time.perf_counter() - start, 2),
                peak_rss_mb=round(peak_rss_mb(), 1),
            )
