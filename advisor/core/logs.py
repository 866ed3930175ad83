"""Keep the terminal readable: our own progress bars stay, library chatter goes (unless --verbose)."""

from __future__ import annotations

import logging
import os
import sys
import warnings

NOISY = ("transformers", "bitsandbytes", "peft", "sentence_transformers", "datasets", "accelerate", "torch", "faiss")


def say(msg: str) -> None:
    """One line of progress for a person, on stderr (stdout stays for results a script reads)."""
    print(msg, file=sys.stderr, flush=True)


def quiet_libraries() -> None:
    """Silence library warnings and their weight-loading progress bars, in this process and its children."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    os.environ.setdefault("ADVISOR_QUIET", "1")
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # bm25s sets its own logger to DEBUG when imported
        handler.setLevel(logging.WARNING)
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.ERROR)


def stage_main(stage_fn, argv: list[str], prog: str) -> int:
    """Entry point of a track process (`python -m retrieval.index RUN_DIR`): one argument, the run
    directory; a user error prints one line and exits 2."""
    import sys
    from pathlib import Path

    from advisor.core.errors import AdvisorError

    if len(argv) != 1:
        print(f"usage: python -m {prog} RUN_DIR", file=sys.stderr)
        return 2
    if os.environ.get("ADVISOR_QUIET"):
        quiet_libraries()
    try:
        stage_fn(Path(argv[0]))
    except AdvisorError as e:
        print(f"advisor: error: {e}", file=sys.stderr)
        return e.exit_code
    return 0
