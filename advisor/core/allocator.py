"""The memory allocator of the tune stage's process (tuning.allocator).

A CPU tune allocates activations of a different width every pass. glibc's malloc either keeps the freed blocks in
a heap that fragments and ratchets up (the quickstart's tune peaked at 3.1 GB, a set with corpus text at 4.5 GB),
or, under tuning.low_memory_heap's fixed 1 MB mmap threshold, maps fresh zeroed pages for each one, which costs a
quarter of the tune's speed. mimalloc (the `cmeel-mimalloc` package, a dependency on Linux) does neither: preloaded
into the tune's own process (LD_PRELOAD, set when the process starts: an allocator cannot be swapped in a running
one), it trained the quickstart's widest rows at 1.3x the speed of the 1 MB threshold with less memory
(docs/fine-tuning-measured.md, 'The allocator of the tune stage').

`tuning.allocator`: auto (mimalloc for a tune on a CPU, when installed; else glibc's malloc) | glibc | mimalloc |
the path of another malloc library to preload (e.g. /usr/lib/x86_64-linux-gnu/libjemalloc.so.2).
"""

from __future__ import annotations

import functools
import os
import sys
from importlib import metadata
from pathlib import Path

from advisor.core.errors import AdvisorError

MIMALLOC_DIST = "cmeel-mimalloc"
# file-name stems of the allocators this module knows how to name when one serves the process
KNOWN = ("mimalloc", "jemalloc", "tcmalloc")


@functools.cache  # the package's file list is read once per process (memory_levers asks for it at every plan)
def mimalloc_library() -> Path | None:
    """The shared library of the installed `cmeel-mimalloc` package, or None."""
    try:
        files = metadata.files(MIMALLOC_DIST) or []
    except metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.name == "libmimalloc.so":
            path = Path(str(f.locate()))
            if path.is_file():
                return path
    return None


def allocator_library(setting: str, device: str = "cpu") -> Path | None:
    """The library to preload into a tune process on `device` for tuning.allocator=`setting`; None = glibc's malloc.
    A named allocator that cannot be had is an AdvisorError that says what to install or pass instead."""
    if setting == "glibc":
        return None
    if not sys.platform.startswith("linux"):  # LD_PRELOAD is the Linux dynamic loader's
        if setting == "auto":
            return None
        raise AdvisorError(
            f"tuning.allocator={setting}: preloading an allocator works on Linux only; pass glibc or auto"
        )
    if setting == "auto":
        return None if device.startswith("cuda") else mimalloc_library()
    if setting == "mimalloc":
        lib = mimalloc_library()
        if lib is None:
            raise AdvisorError(
                f"tuning.allocator=mimalloc: the {MIMALLOC_DIST} package is not installed "
                f"(pip install {MIMALLOC_DIST}), or pass tuning.allocator=glibc"
            )
        return lib
    path = Path(setting).expanduser()
    if not path.is_file():
        raise AdvisorError(
            f"tuning.allocator={setting}: no such file; pass auto, glibc, mimalloc or the path of a malloc library "
            "such as libjemalloc.so.2"
        )
    return path.resolve()


def preload_env(env: dict, lib: Path | None) -> dict:
    """A copy of `env` with `lib` (a malloc library, as TuningConfig.allocator_library gives it) first in
    LD_PRELOAD; None (glibc's malloc) leaves LD_PRELOAD as it is."""
    if lib is None:
        return dict(env)
    rest = [p for p in env.get("LD_PRELOAD", "").split(":") if p and Path(p).name != lib.name]
    return {**env, "LD_PRELOAD": ":".join([str(lib), *rest])}


def active_allocator() -> str:
    """Which malloc serves this process: the file name of a known allocator (mimalloc, jemalloc, tcmalloc) that
    LD_PRELOAD put first and that is mapped into the process (then it has taken malloc over), else "glibc"."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return "glibc"
    for entry in os.environ.get("LD_PRELOAD", "").replace(" ", ":").split(":"):
        name = os.path.basename(entry)
        if any(k in name for k in KNOWN) and name and f"/{name}" in maps:
            return name
    return "glibc"
