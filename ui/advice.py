"""The recommendation's answers to 'is it good enough?' and 'how sure?', for any run: read from
recommendation.json when it has them (fit_for_purpose, stability, separation), else computed the same way
by advisor.recommend from the evidence the run wrote (runs made before those blocks existed).

    fit = fit_of(rec, run_dir)            # the fit_for_purpose block
    sep = separation_of(rec, run_dir)     # 'separated by the data'

The sentences (fit_line, the reasons) are advisor/plain.py's, shared with the report.

No Streamlit in this module: the pages call it, and tests call it directly.
"""

from __future__ import annotations

import functools
from pathlib import Path

from advisor import plain
from advisor.core.config import validate_targets
from ui.rundata import load_config_dict

STABILITY_BADGE = {  # level -> badge; "confidence" reads as "this works", so the badge says what it measures
    "high": ":green-badge[stable under other priorities]",
    "medium": ":orange-badge[fairly stable under other priorities]",
    "low": ":red-badge[not stable under other priorities]",
    "unknown": ":gray-badge[stability under other priorities unknown]",
}
STATUS_BADGE = {
    "meets": ":green-badge[meets]",
    "misses": ":red-badge[misses]",
    "cannot tell": ":orange-badge[cannot tell]",
}


def run_targets(run_dir: Path) -> dict[str, float]:
    """The quality targets the run was advised against: its config's recommend.targets, else the defaults
    (advisor.core.config.validate_targets, which raises AdvisorError on a bad name or value)."""
    return validate_targets((load_config_dict(run_dir).get("recommend") or {}).get("targets") or {})


def evidence_of(run_dir: Path):
    """advisor.recommend.load_evidence(run_dir), read once per version of the run's metrics: the Overview needs
    it for the cost, and for fit and separation on runs made before recommendation.json recorded them."""
    metrics = Path(run_dir) / "eval" / "metrics.json"
    stamp = metrics.stat().st_mtime_ns if metrics.is_file() else 0
    return _evidence(str(run_dir), stamp)


@functools.lru_cache(maxsize=8)
def _evidence(run_dir: str, stamp: int):
    from advisor.recommend import load_evidence

    return load_evidence(Path(run_dir))


def fit_of(rec: dict, run_dir: Path) -> dict:
    """advisor.plain.fit_of with the evidence read once per version of the run's metrics (raises AdvisorError
    when the evidence cannot be read)."""
    return plain.fit_of(rec, run_dir, evidence_of, run_targets)


def separation_of(rec: dict, run_dir: Path) -> dict:
    """'Separated by the data': the recorded block, else advisor.recommend.separation of the verdict
    against the runner-up by utility (raises AdvisorError when the evidence cannot be read)."""
    if rec.get("separation"):
        return rec["separation"]
    from advisor.recommend import separation

    others = {o: u for o, u in rec["utilities"].items() if o != rec["verdict"]}
    return separation(evidence_of(run_dir), rec["verdict"], max(others, key=others.get) if others else None)


def separation_badge(sep: dict) -> str:
    if sep.get("runner_up") is None:
        return ":gray-badge[only one option evaluated]"
    if not sep["separated"]:
        return ":orange-badge[not separated by the data]"
    if (sep.get("difference_pts") or 0) < 0:  # the runner-up is the more accurate, and the data show it
        return ":orange-badge[the data favour the runner-up on accuracy]"
    return ":green-badge[separated by the data]"
