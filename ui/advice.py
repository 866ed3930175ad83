"""The recommendation's answers to 'is it good enough?' and 'how sure?', for any run: read from
recommendation.json when it has them (fit_for_purpose, stability, separation), else computed the same way
by advisor.recommend from the evidence the run wrote (runs made before those blocks existed).

    fit = fit_of(rec, run_dir)            # the fit_for_purpose block
    best, line = fit_line(fit, rec)       # the option to show against the targets, and one plain sentence

No Streamlit in this module: the pages call it, and tests call it directly.
"""

from __future__ import annotations

import functools
from pathlib import Path

from advisor.core.arms import OPTION_LABEL
from advisor.core.config import validate_targets
from ui.rundata import load_config_dict

STABILITY_BADGE = {  # level -> badge; "confidence" reads as "this works", so the badge says what it measures
    "high": ":green-badge[stable under other priorities]",
    "medium": ":orange-badge[fairly stable under other priorities]",
    "low": ":red-badge[not stable under other priorities]",
    "unknown": ":gray-badge[stability under other priorities unknown]",
}
STATUS_BADGE = {"meets": ":green-badge[meets]", "misses": ":red-badge[misses]",
                "cannot tell": ":orange-badge[cannot tell]"}


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
    """The fit_for_purpose block: the recorded one, else advisor.recommend.fit_for_purpose on the run's
    evidence and targets (raises AdvisorError when the evidence cannot be read). A block recorded before it
    named its "best" option is computed again with its own targets."""
    fit = rec.get("fit_for_purpose")
    if fit and fit.get("best"):
        return fit
    from advisor.recommend import fit_for_purpose

    return fit_for_purpose(evidence_of(run_dir), fit["targets"] if fit else run_targets(run_dir))


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
    return ":green-badge[separated by the data]" if sep["separated"] else ":orange-badge[not separated by the data]"


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def best_option(fit: dict, rec: dict) -> str:
    """The option to hold against the targets: the advised one when it meets them, else fit_for_purpose's
    choice (the most accurate option that meets them, else the most accurate whose arm did not collapse)."""
    verdict = rec["verdict"]
    return verdict if fit["options"].get(verdict, {}).get("fit") == "meets" else fit["best"]


def fit_line(fit: dict, rec: dict) -> tuple[str, str]:
    """(the option held against the targets, one plain sentence on whether anything is good enough)."""
    best = best_option(fit, rec)
    r = fit["options"][best]
    acc, hal = r["accuracy"], r["hallucination_rate"]
    name = OPTION_LABEL.get(best, best)
    numbers = (f"answers {_pct(acc['value'])} of questions correctly (target: at least {_pct(acc['target'])}) "
               f"and hallucinates on {_pct(hal['value'])} (target: at most {_pct(hal['target'])})")
    if fit["any_fit"]:
        if best == rec["verdict"]:
            return best, f"Good enough: {name} {numbers}, both shown by the 95% confidence intervals."
        return best, (f"{name} meets the targets: it {numbers}. The advice, "
                      f"{OPTION_LABEL.get(rec['verdict'], rec['verdict'])}, does not meet them: other priorities "
                      "outweighed them.")
    if all(x["fit"] == "misses" for x in fit["options"].values()):
        return best, f"No option is good enough yet: the best, {name}, {numbers}."
    return best, (f"No option is shown to be good enough yet: the best, {name}, {numbers}; the 95% confidence "
                  "intervals are too wide to tell.")
