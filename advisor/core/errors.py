"""User-facing errors: one clear line (what, where, what to do) and exit code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class AdvisorError(Exception):
    """A mistake in the user's input or environment. The CLI prints it as one line and exits 2."""

    exit_code = 2


class AlreadyReported(AdvisorError):
    """A child process (a track's, the tune's) failed and printed its own one-line error: the CLI exits with the
    child's code and prints nothing more."""

    def __init__(self, exit_code: int):
        super().__init__(f"a child process exited with {exit_code}; its error is printed above")
        self.exit_code = exit_code


class ModelUnavailable(AdvisorError):
    """A model spec that cannot be had here (not installed, not on disk, Hub offline)."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean 'x'?)' for the closest choice, or '' when nothing is close."""
    choices = list(choices)
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    if not close:  # 'rank' -> 'r', 'lora_r' -> 'r': a choice that starts or ends the name
        close = sorted((c for c in choices if name.startswith(c) or name.endswith(c)), key=len, reverse=True)[:1]
    return f" (did you mean '{close[0]}'?)" if close else ""
