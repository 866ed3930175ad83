"""Read run directories for the dashboard: the list of runs with their status, and each artifact with a
clear message when it is missing or broken. Nothing here recomputes what a run already wrote.

    runs = list_runs(Path("runs"))                # newest first
    metrics = load_metrics(runs[0].path)          # raises RunDataError with a message a person can act on
    table = question_table(load_rows(runs[0].path))

No Streamlit in this module: the pages call it, and tests call it directly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import yaml

from advisor.core import textio
from advisor.core.advice import CRITERION_LABEL, FACT_HELP, FACT_LABEL  # noqa: F401  (the pages' names for them)
from advisor.core.arms import ARMS, INDEX_ARMS
from advisor.core.errors import AdvisorError
from advisor.curve import read_curve

# Plain words for the quality targets (advisor.core.config.QUALITY_TARGETS); the What-if and New run pages
# offer every one. The criteria's and facts' words live with them in advisor/core/advice.py.
TARGET_LABEL = {"accuracy": "Accuracy at least (%)", "hallucination_rate": "Hallucination rate at most (%)"}
LAUNCH = "launch.json"  # written by the dashboard when it starts a run (ui/launcher.py)
LAUNCH_EXIT = "launch.exit"  # the exit code of that run, written when it ends
LOG = "run.log"
RERUN = "re-run the stage that writes it (advisor run --out <this run dir> resumes)"


class RunDataError(AdvisorError):
    """A run artifact is missing or unreadable; the message says which file and what to do."""


def read_json(path: Path, what: str) -> dict:
    """A JSON object from `path`, or RunDataError naming the file (`what` says what it is for)."""
    try:
        data = textio.read_json(path, what, RERUN)
    except AdvisorError as e:
        raise RunDataError(str(e)) from None
    if not isinstance(data, dict):
        raise RunDataError(f"{what}: {path} must hold a JSON object")
    return data


def _read_json_or_none(path: Path) -> dict | None:
    try:
        return read_json(path, "")
    except RunDataError:
        return None


def _check_ci(m: object, where: str) -> None:
    if not (
        isinstance(m, dict)
        and isinstance(m.get("value"), (int, float))
        and isinstance(m.get("ci95"), list)
        and len(m["ci95"]) == 2
        and isinstance(m.get("n"), int)
    ):
        raise RunDataError(f'{where} must look like {{"value": float, "ci95": [lo, hi], "n": int}}')


def load_metrics(run_dir: Path) -> dict:
    """eval/metrics.json, checked against its contract (docs/architecture.md) (arms -> metric -> value, ci95, n)."""
    path = Path(run_dir) / "eval" / "metrics.json"
    m = read_json(path, "evaluation metrics")
    arms = m.get("arms")
    if not isinstance(arms, dict) or not arms:
        raise RunDataError(f"{path} has no 'arms' section; re-run the metrics stage (advisor run --out {run_dir})")
    for arm, metrics in arms.items():
        if not isinstance(metrics, dict):
            raise RunDataError(f"{path}: arms.{arm} must be an object of metrics")
        for name, v in metrics.items():
            if name in ("by_knowledge", "by_wording"):  # group -> {n, metric -> value, ci95, n}
                for g, gm in (v or {}).items():
                    for k, x in gm.items():
                        if k != "n":
                            _check_ci(x, f"{path}: arms.{arm}.{name}.{g}.{k}")
            elif name != "seed_spread":  # per-seed accuracies, mean and sd: not a metric with a CI
                _check_ci(v, f"{path}: arms.{arm}.{name}")
    return m


def load_curve(run_dir: Path) -> dict | None:
    """eval/curve.json (advisor/curve.py read_curve, which checks every point), or None when the run measured no
    learning curve; RunDataError when the file is there but not the curve it should be."""
    try:
        return read_curve(run_dir)
    except AdvisorError as e:
        raise RunDataError(str(e)) from None


def load_recommendation(run_dir: Path) -> dict:
    path = Path(run_dir) / "recommendation.json"
    rec = read_json(path, "recommendation")
    for key in ("verdict", "utilities", "reasons", "sensitivity"):
        if key not in rec:
            raise RunDataError(f"{path} has no '{key}'; re-run the recommend stage (advisor run --out {run_dir})")
    return rec


def load_rows(run_dir: Path) -> dict[str, list[dict]]:
    """eval/<arm>.jsonl for every arm present: one dict per question."""
    out = {}
    for arm in ARMS:
        path = Path(run_dir) / "eval" / f"{arm}.jsonl"
        if not path.exists():
            continue
        try:
            rows = textio.read_jsonl(path, "answers", f"re-run the eval_{arm} stage to rewrite it")
        except AdvisorError as e:
            raise RunDataError(str(e)) from None
        out[arm] = rows
    return out


def load_config_dict(run_dir: Path) -> dict:
    p = Path(run_dir) / "config.yaml"
    if not p.is_file():
        return {}
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, OSError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


# ---------------------------------------------------------------- runs and their status


def pid_alive(pid: object) -> bool:
    """True when `pid` is a live process (a zombie, i.e. finished but not yet reaped, counts as ended)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def expected_stages(cfg: dict) -> list[str]:
    """The stages a run with this config goes through, in order: the pipeline's own list
    (advisor.pipeline.planned_stages), so the two cannot drift apart."""
    from advisor.core.config import Config, from_dict
    from advisor.core.errors import AdvisorError
    from advisor.pipeline import planned_stages

    try:
        return planned_stages(from_dict(Config, cfg or {}))
    except AdvisorError:  # a config written by another version: the stages every run has
        return ["ingest", "metrics"]


def corpus_label(path: str) -> str:
    if not path:
        return "sample"
    p = Path(path)
    return "sample" if p.parts[-3:] == ("advisor", "sample", "corpus") else p.name


def log_tail(run_dir: Path, lines: int = 12) -> list[str]:
    """The last lines of the run's log; progress bars rewrite a line with \\r, so only the last state counts."""
    p = Path(run_dir) / LOG
    if not p.is_file():
        return []
    with open(p, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 32_000))
        text = f.read().decode("utf-8", "replace")
    out = [next((p for p in reversed(seg.split("\r")) if p.strip()), "").rstrip() for seg in text.split("\n")]
    return [x for x in out if x.strip()][-lines:]


@dataclass
class RunInfo:
    path: Path
    name: str
    corpus: str = "?"
    model: str = "?"
    created: str = ""  # ISO time the run directory was first used
    status: str = "incomplete"  # done | running | starting | interrupted | failed | incomplete | unreadable
    verdict: str | None = None
    detail: str = ""  # one line on what is going on or wrong
    stages: dict = field(default_factory=dict)
    expected: list[str] = field(default_factory=list)

    @property
    def date(self) -> str:
        """When the run started, in UTC (run directories record UTC times)."""
        try:
            t = datetime.fromisoformat(self.created)
        except ValueError:
            return self.created
        return (t.astimezone(timezone.utc) if t.tzinfo else t).strftime("%Y-%m-%d %H:%M UTC")

    @property
    def finished(self) -> bool:
        return self.status == "done"

    def progress(self) -> tuple[int, int]:
        """(stages done, stages expected)."""
        names = self.expected or list(self.stages)
        return sum(self.stages.get(n, {}).get("status") == "done" for n in names), len(names)


def is_run_dir(p: Path) -> bool:
    return (
        p.is_dir()
        and not p.name.startswith(".")
        and any((p / f).exists() for f in ("manifest.json", "config.yaml", LAUNCH))
    )


def run_info(path: Path) -> RunInfo:
    """Who, what and how far: read from the run's manifest, config, recommendation and launch record."""
    path = Path(path)
    info = RunInfo(path=path, name=path.name)
    cfg = load_config_dict(path)
    info.corpus = corpus_label((cfg.get("corpus") or {}).get("path", "")) if cfg else "?"
    info.model = (cfg.get("model") or {}).get("spec", "?") if cfg else "?"
    info.expected = expected_stages(cfg) if cfg else []
    launch = _read_json_or_none(path / LAUNCH) or {}
    try:
        manifest = read_json(path / "manifest.json", "run bookkeeping") if (path / "manifest.json").exists() else {}
    except RunDataError as e:
        info.status, info.detail = "unreadable", str(e)
        return info
    info.stages = manifest.get("stages") or {}
    info.created = manifest.get("created") or launch.get("started", "")
    if not info.created:
        info.created = datetime.fromtimestamp(path.stat().st_mtime).astimezone().isoformat(timespec="seconds")
    if launch and info.corpus == "?":
        info.corpus = launch.get("corpus", "?")
        info.model = launch.get("model", "?")
    rec = _read_json_or_none(path / "recommendation.json")
    info.verdict = rec.get("verdict") if rec else None

    running = [n for n, s in info.stages.items() if s.get("status") == "running"]
    failed = [n for n, s in info.stages.items() if s.get("status") == "failed"]
    exit_code = _launch_exit(path)  # written when a launched run ends: then its pid may belong to another process
    launched_alive = exit_code is None and pid_alive(launch.get("pid"))
    if launched_alive or any(pid_alive(info.stages[n].get("pid")) for n in running):
        info.status = "running" if info.stages else "starting"
        info.detail = (
            f"{', '.join(running)} in progress"
            if running
            else "checking inputs and preparing the model"
            if not info.stages
            else "between stages"
        )
    elif failed:
        n = failed[0]
        info.status = "failed"
        info.detail = f"stage {n} failed: {info.stages[n].get('error', 'see run.log')}"
    elif running:
        info.status = "interrupted"
        info.detail = (
            f"stage {', '.join(running)} was running when its process stopped; "
            f"resume with: advisor run --out {path} (same options)"
        )
    elif exit_code not in (None, 0):
        info.status = "failed"
        tail = log_tail(path, 3)
        info.detail = tail[-1] if tail else f"advisor run exited with code {exit_code}; see {LOG}"
    elif manifest.get("finished") and (path / "eval" / "metrics.json").exists():
        info.status = "done"
        info.detail = "" if rec else "finished without a recommendation (fewer than two options evaluated)"
        try:
            load_metrics(path)
        except RunDataError as e:
            info.detail = str(e)
    elif launch and not manifest:
        info.status = "failed"
        tail = log_tail(path, 3)
        info.detail = tail[-1] if tail else "the launched run stopped before it wrote anything"
    else:
        info.status = "incomplete"
        done = [n for n in info.expected if info.stages.get(n, {}).get("status") == "done"]
        missing = [n for n in info.expected if n not in done]
        info.detail = (
            f"stages done: {', '.join(done) or 'none'}; not yet: {', '.join(missing) or '?'}; "
            f"resume with: advisor run --out {path} (same options)"
        )
    return info


def _launch_exit(path: Path) -> int | None:
    p = path / LAUNCH_EXIT
    try:
        return int(p.read_text().strip())
    except (OSError, ValueError):
        return None


def list_runs(runs_dir: Path) -> list[RunInfo]:
    """Every run directory directly under `runs_dir`, newest first."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    runs = [run_info(p) for p in runs_dir.iterdir() if is_run_dir(p)]
    return sorted(runs, key=lambda r: (r.created, r.name), reverse=True)


# ---------------------------------------------------------------- per-question view


def is_right(row: dict) -> bool | None:
    """Answerable: counted correct by the accuracy metric. Unanswerable: abstained. None when unscored."""
    s = row.get("scores") or {}
    v = s.get("abstention_rate") if row.get("unanswerable") else s.get("accuracy")
    return None if v is None else v >= 0.5


def sources_of(row: dict) -> str:
    return ", ".join(f"{c.get('rank', i + 1)}. {c.get('source', '?')}" for i, c in enumerate(row.get("contexts") or []))


def question_table(rows_by_arm: dict[str, list[dict]]):
    """One row per question: gold answer, and per arm its answer, right/wrong, token F1 and sources."""
    import pandas as pd

    arms = [a for a in ARMS if a in rows_by_arm]
    by_id: dict[str, dict] = {}
    for arm in arms:
        for r in rows_by_arm[arm]:
            q = by_id.setdefault(
                r["id"],
                {
                    "id": r["id"],
                    "question": r.get("question", ""),
                    "gold": "(unanswerable)" if r.get("unanswerable") else " / ".join(r.get("answers") or []),
                    "unanswerable": bool(r.get("unanswerable")),
                    "gold source": r.get("source") or "",
                },
            )
            q[f"{arm} answer"] = r.get("answer", "") + (" (retrieval gate)" if r.get("gated") else "")
            q[f"{arm} right"] = is_right(r)
            q[f"{arm} F1"] = (r.get("scores") or {}).get("f1")
            if arm in INDEX_ARMS:  # an arm that answers with retrieved passages shows them
                q[f"{arm} sources"] = sources_of(r)
    df = pd.DataFrame(list(by_id.values()))
    if df.empty:
        return df

    def wrong_in(row) -> str:
        return ", ".join(a for a in arms if _known(row[f"{a} right"]) and not row[f"{a} right"])

    def disagree(row) -> bool:
        return len({bool(row[f"{a} right"]) for a in arms if _known(row[f"{a} right"])}) > 1

    df["wrong in"] = df.apply(wrong_in, axis=1)
    df["arms disagree"] = df.apply(disagree, axis=1)
    return df


def _known(v) -> bool:
    return v is not None and v == v  # None or NaN: not scored


def filter_questions(df, wrong_in: str | None = None, unanswerable_only: bool = False, disagreement_only: bool = False):
    """wrong_in: an arm name, 'any' (wrong in at least one arm) or None."""
    if df.empty:
        return df
    keep = df["id"].notna()  # all True
    if wrong_in == "any":
        keep &= df["wrong in"] != ""
    elif wrong_in:
        keep &= df[f"{wrong_in} right"].map(lambda v: _known(v) and not v).astype(bool)
    if unanswerable_only:
        keep &= df["unanswerable"]
    if disagreement_only:
        keep &= df["arms disagree"]
    return df[keep]
