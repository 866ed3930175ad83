"""tuning.allocator: which malloc a tune stage's process starts under (advisor/core/allocator.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from advisor.core import allocator
from advisor.core.allocator import allocator_library, mimalloc_library, preload_env
from advisor.core.config import load_config
from advisor.core.errors import AdvisorError

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="LD_PRELOAD is Linux's")

WHICH = "from advisor.core.allocator import active_allocator; print(active_allocator())"


def served_by(env: dict) -> str:
    """The malloc a fresh Python process started with `env` reports."""
    out = subprocess.run([sys.executable, "-c", WHICH], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_auto_preloads_the_installed_mimalloc_for_a_cpu_tune_and_nothing_for_cuda_or_glibc():
    lib = mimalloc_library()
    assert lib is not None and lib.is_file() and lib.name == "libmimalloc.so"  # a dependency on Linux
    assert allocator_library("auto", "cpu") == allocator_library("mimalloc") == lib
    assert allocator_library("auto", "cuda:0") is None  # activations live in GPU memory there
    assert allocator_library("glibc", "cpu") is None
    tc = load_config("quickstart").tuning
    assert tc.allocator == "auto" and tc.malloc("cpu") == "libmimalloc.so" and tc.malloc("cuda") == "glibc"
    # asking for glibc's low-memory heap asks for glibc's malloc
    assert load_config("quickstart", ["tuning.low_memory_heap=true"]).tuning.malloc("cpu") == "glibc"


def test_a_process_started_with_the_preload_is_served_by_it_and_one_without_by_glibc():
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    assert served_by(env) == "glibc"
    lib = allocator_library("auto", "cpu")
    started = preload_env(env, lib)
    assert started["LD_PRELOAD"] == str(lib) and served_by(started) == "libmimalloc.so"
    assert preload_env(env, None) == env and "LD_PRELOAD" not in preload_env(env, None)


def test_the_preload_goes_first_and_once_and_keeps_what_the_user_preloaded(tmp_path):
    other = tmp_path / "libother.so"
    lib = Path("/opt/x/libmimalloc.so")
    env = {"LD_PRELOAD": f"{other}:/elsewhere/libmimalloc.so", "HOME": "/h"}
    assert preload_env(env, lib) == {"LD_PRELOAD": f"{lib}:{other}", "HOME": "/h"}
    assert env["LD_PRELOAD"] == f"{other}:/elsewhere/libmimalloc.so"  # the caller's dict is left as it was


def test_an_allocator_that_cannot_be_had_is_named_with_what_to_do(tmp_path, monkeypatch):
    with pytest.raises(AdvisorError, match=r"tuning.allocator=.*nope.so: no such file; pass auto, glibc, mimalloc"):
        allocator_library(str(tmp_path / "nope.so"))
    lib = tmp_path / "libjemalloc.so.2"
    lib.write_bytes(b"")
    assert allocator_library(str(lib)) == lib.resolve()
    assert load_config("quickstart", [f"tuning.allocator={lib}"]).tuning.malloc("cpu") == "libjemalloc.so.2"
    monkeypatch.setattr(allocator, "mimalloc_library", lambda: None)
    with pytest.raises(AdvisorError, match=r"cmeel-mimalloc package is not installed \(pip install cmeel-mimalloc\)"):
        allocator_library("mimalloc")
    assert allocator_library("auto", "cpu") is None  # auto falls back to glibc's malloc
    with pytest.raises(AdvisorError, match=r"tuning.allocator='' must be auto, glibc, mimalloc or the path"):
        load_config("quickstart", ["tuning.allocator="])
