"""Batch runs: a matrix of corpora x models x settings, one run directory per cell, resumable, with a
summary table (CSV + Markdown) across runs and each run's advice under several weight presets.

    advisor batch FILE.yaml          # rerun the same command after an interruption: finished cells are skipped

FILE.yaml (every key but corpora optional):

    out: runs/batch                       # batch folder: runs/<cell>/, batch.json, summary.csv, summary.md
    corpora:                              # each: path ("" = bundled sample), qa, train_qa, name
      - {name: sample}
      - {name: mine, path: docs/, qa: qa.jsonl}
    models: [smollm2-135m-instruct]       # model specs; default: the config's model
    settings:                             # each: name, config (preset or YAML file), overrides
      - {name: smoke, config: smoke}
      - {name: r4, config: smoke, overrides: [tuning.lora.r=4]}
    overrides: [eval.limit=6]             # applied to every cell (before the setting's own)
    recommend_presets: [balanced, cost-first]   # each run's advice under each weight preset (no re-run)
    mlflow: auto                          # auto: log to a local store (out/mlflow.db, artifacts in out/mlruns) when mlflow is importable;
                                          # true: require it; false: never
    resources: {cpus: 1, gpus: 0, memory_gb: 0}   # what one cell asks of a Ray cluster (--backend ray); a setting
                                          # may carry its own; default cpus: the config's threads, else 1

With `advisor batch FILE --backend ray [--address ADDR]` every pending cell is one Ray task with its resources,
scheduled by the cluster (a local one without --address); each cell's output goes to out/logs/<cell>.log, and
results and the summary are gathered in `out` as they finish. The run directories must be on storage that the
driver and the workers share (one machine, or a shared file system).

A cell is done when its run finished and its summary rows are in batch.json; a rerun skips done cells
and resumes an interrupted one at its first unfinished stage (the pipeline is idempotent). Every cell's
config is validated before anything is built, so a typo fails in a second, not after the first run.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from advisor.core.arms import ARMS, TUNED, option_arms
from advisor.core.artifacts import atomic_write_json, atomic_write_text
from advisor.core.config import Config, load_config, read_yaml
from advisor.core.errors import AdvisorError, did_you_mean
from advisor.core.textio import read_json
from advisor.pipeline import say

KEYS = ("out", "corpora", "models", "settings", "overrides", "recommend_presets", "mlflow", "resources")
RESOURCE_KEYS = ("cpus", "gpus", "memory_gb")


def headline_columns() -> list[tuple[str, str, str]]:
    """(column, arm, metric) of the per-arm columns, from the arm table: every arm's accuracy (the options' arms
    first), the options' arms' hallucination rates, and the tuned arm's forgetting."""
    opts = option_arms(ARMS)
    return (
        [(f"acc_{a}", a, "accuracy") for a in opts + [a for a in ARMS if a not in opts]]
        + [(f"halluc_{a}", a, "hallucination_rate") for a in opts]
        + [(f"forgetting_{TUNED}", TUNED, "forgetting")]
    )


def columns() -> list[str]:
    """The summary's columns (summary.csv, summary.md)."""
    return (
        ["cell", "corpus", "model", "setting", "preset", "verdict", "margin", "win_share", "no_significant_difference"]
        + [c for c, _, _ in headline_columns()]
        + ["index_s", "tune_s", "run_wall_s", "run_dir"]
    )


@dataclass
class Cell:
    id: str
    corpus: str
    model: str
    setting: str
    config: Config
    run_dir: Path
    resources: dict = field(default_factory=dict)  # cpus, gpus, memory_gb asked of a Ray cluster


@dataclass
class BatchSpec:
    out: Path
    cells: list[Cell]
    presets: list[str]
    mlflow: str  # auto | true | false
    source: Path
    skipped_axes: dict = field(default_factory=dict)


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", s).strip("-").lower()[:40] or "x"


def _list(spec: dict, key: str, path: Path, default=None, allow_empty: bool = False) -> list:
    """spec[key] as a list; absent gives `default`."""
    if key not in spec or spec[key] is None:
        return list(default or [])
    v = spec[key]
    if not isinstance(v, list) or (not v and not allow_empty):
        raise AdvisorError(f"{path}: '{key}' must be a non-empty list")
    return v


def load_batch(path: Path) -> BatchSpec:
    """Read and validate FILE.yaml; every cell's config is built (and so validated) here."""
    from advisor.core.advice import PRESETS

    path = Path(path)
    if not path.is_file():
        raise AdvisorError(f"batch file {path} does not exist")
    spec = read_yaml(path, "batch file")
    for k in spec:
        if k not in KEYS:
            raise AdvisorError(f"{path}: unknown key '{k}'{did_you_mean(str(k), KEYS)}; keys: {', '.join(KEYS)}")
    if spec.get("out") is not None and not isinstance(spec["out"], str):
        raise AdvisorError(f"{path}: out must be a folder path")
    out = Path(spec.get("out") or f"runs/batch-{_slug(path.stem)}")
    corpora = _list(spec, "corpora", path)
    if not corpora:
        raise AdvisorError(
            f"{path}: 'corpora' is missing; list at least one corpus (- {{name: sample}} is the bundled one)"
        )
    models = _list(spec, "models", path, [None])
    settings = _list(spec, "settings", path, [{"name": "quickstart", "config": "quickstart"}])
    common = [str(o) for o in _list(spec, "overrides", path, [], allow_empty=True)]
    presets = [str(p) for p in _list(spec, "recommend_presets", path, ["balanced"])]
    for p in presets:
        if p not in PRESETS:
            raise AdvisorError(
                f"{path}: recommend_presets: unknown weight preset '{p}'{did_you_mean(p, PRESETS)}; "
                f"presets: {', '.join(PRESETS)}"
            )
    mlflow = str(spec.get("mlflow", "auto")).lower()
    if mlflow not in ("auto", "true", "false"):
        raise AdvisorError(f"{path}: mlflow: {spec['mlflow']!r} must be auto, true or false")

    _check_shapes(path, corpora, settings, models)
    cells = _build_cells(path, spec, out, corpora, models, settings, common)
    ids = [c.id for c in cells]
    dup = next((i for i in ids if ids.count(i) > 1), None)
    if dup:
        raise AdvisorError(f"{path}: two cells are both named '{dup}'; give the corpora/settings distinct names")
    return BatchSpec(out, cells, presets, mlflow, path)


def _check_shapes(path: Path, corpora: list, settings: list, models: list) -> None:
    """Each corpus, setting and model entry has the shape the batch file format asks for (AdvisorError naming it)."""
    for i, c in enumerate(corpora):
        if not isinstance(c, dict):
            raise AdvisorError(f"{path}: corpora[{i}] must be a mapping with path, qa, train_qa, name")
        bad = [k for k in c if k not in ("name", "path", "qa", "train_qa")]
        if bad:
            raise AdvisorError(f"{path}: corpora[{i}]: unknown key '{bad[0]}'; keys: name, path, qa, train_qa")
        wrong = [k for k, v in c.items() if v is not None and not isinstance(v, str)]
        if wrong:
            raise AdvisorError(f"{path}: corpora[{i}].{wrong[0]} must be a string (a path or a name)")
    for i, s in enumerate(settings):
        if not isinstance(s, dict) or not s.get("name"):
            raise AdvisorError(
                f"{path}: settings[{i}] must be a mapping with a name (and config, overrides, resources)"
            )
        bad = [k for k in s if k not in ("name", "config", "overrides", "resources")]
        if bad:
            raise AdvisorError(
                f"{path}: settings[{i}]: unknown key '{bad[0]}'; keys: name, config, overrides, resources"
            )
        if s.get("overrides") is not None and not isinstance(s["overrides"], list):
            raise AdvisorError(f"{path}: settings[{i}].overrides must be a list of key=value strings")
    for i, m in enumerate(models):
        if m is not None and (not isinstance(m, str) or not m.strip()):
            raise AdvisorError(f"{path}: models[{i}] must be a model spec (a bundled name, folder or Hub id)")


def _build_cells(
    path: Path, spec: dict, out: Path, corpora: list, models: list, settings: list, common: list[str]
) -> list[Cell]:
    """One Cell per corpus x model x setting, each with its validated config and resources."""
    base = path.parent

    def rel(p: str) -> str:  # paths in the batch file are relative to the file
        return str((base / p).resolve()) if p and not Path(p).is_absolute() else p

    cells = []
    for c in corpora:
        cname = c.get("name") or (Path(c["path"]).name if c.get("path") else "sample")
        for m in models:
            for s in settings:
                extra = {"corpus": {k: rel(c[k]) for k in ("path", "qa", "train_qa") if c.get(k)}}
                if m:
                    extra["model"] = {"spec": rel(m) if (base / m).exists() else m}
                where = f"{path}: cell corpus={cname} model={m or 'default'} setting={s['name']}"
                try:
                    cfg = load_config(
                        rel(s.get("config") or "")
                        if str(s.get("config", "")).endswith((".yaml", ".yml"))
                        else s.get("config"),
                        common + [str(o) for o in s.get("overrides") or []],
                        extra,
                    )
                except AdvisorError as e:
                    raise AdvisorError(f"{where}: {e}") from None
                cid = "-".join(_slug(x) for x in (cname, Path(m).name if m else "default", s["name"]))
                res = _resources(
                    {
                        "cpus": cfg.threads or 1,
                        **_mapping(spec.get("resources"), f"{path}: resources"),
                        **_mapping(s.get("resources"), f"{where}: resources"),
                    },
                    where,
                )
                cells.append(Cell(cid, cname, m or cfg.model.spec, s["name"], cfg, out / "runs" / cid, res))
    return cells


def preflight_batch(spec: BatchSpec) -> None:
    """Every cell's inputs (corpus, QA files and sources, models, probes) and run folder, checked before
    the first cell builds anything: a typo in the last cell fails in seconds, not after the first run."""
    from advisor.core.rundirs import check_out
    from advisor.pipeline import check_run_settings, resolve_inputs, validate_inputs

    check_out(spec.out, force=True, kind="batch", flag=f"{spec.source}: out")
    for cell in spec.cells:
        try:
            cfg = resolve_inputs(cell.config)
            check_run_settings(cfg)
            validate_inputs(cfg)
            check_out(cell.run_dir, flag="run folder")
        except AdvisorError as e:
            err = AdvisorError(f"{spec.source}: cell {cell.id}: {e}")
            err.exit_code = e.exit_code
            raise err from None


def _mapping(v, where: str) -> dict:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise AdvisorError(f"{where} must be a mapping like {{cpus: 1, gpus: 0, memory_gb: 4}}")
    return v


def _resources(res: dict, where: str) -> dict:
    for k, v in res.items():
        if k not in RESOURCE_KEYS:
            raise AdvisorError(
                f"{where}: resources: unknown key '{k}'{did_you_mean(str(k), RESOURCE_KEYS)}; "
                f"keys: {', '.join(RESOURCE_KEYS)}"
            )
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise AdvisorError(f"{where}: resources.{k}={v!r} must be a number >= 0")
    return res


def summary_rows(cell: Cell, presets: list[str]) -> list[dict]:
    """One row per weight preset: the run's verdict under it and the headline evidence."""
    from advisor.commands.recommend import refresh_advice

    metrics = read_json(
        cell.run_dir / "eval" / "metrics.json", "evaluation metrics", "run the batch again (finished cells are kept)"
    )["arms"]
    manifest = read_json(
        cell.run_dir / "manifest.json", "run bookkeeping", "run the batch again (finished cells are kept)"
    )
    stages = manifest.get("stages", {})

    def v(arm: str, key: str):
        m = metrics.get(arm, {}).get(key)
        return round(m["value"], 4) if m else ""

    rows = []
    for p in presets:
        rec = refresh_advice(cell.run_dir, p, write=False)
        rows.append(
            {
                "cell": cell.id,
                "corpus": cell.corpus,
                "model": cell.model,
                "setting": cell.setting,
                "preset": p,
                "verdict": rec["verdict"],
                "margin": rec["margin"],
                "win_share": rec["sensitivity"]["win_share"][rec["verdict"]],
                "no_significant_difference": rec["no_significant_difference"].get("applied", False),
                **{col: v(arm, metric) for col, arm, metric in headline_columns()},
                "index_s": stages.get("index", {}).get("wall_s", ""),
                "tune_s": stages.get("tune", {}).get("wall_s", ""),
                "run_wall_s": manifest.get("wall_s", ""),
                "run_dir": str(cell.run_dir),
            }
        )
    return rows


def write_summary(out: Path, rows: list[dict], pending: list[str]) -> tuple[Path, Path]:
    buf = io.StringIO()
    cols = columns()
    w = csv.DictWriter(buf, cols)
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(out / "summary.csv", buf.getvalue())
    md = [
        "# Batch summary",
        "",
        f"{len(rows)} rows from {len({r['cell'] for r in rows})} finished runs"
        + (f"; not finished: {', '.join(pending)}" if pending else "")
        + ".",
        "",
        "| " + " | ".join(cols[:-1]) + " |",
        "|" + "---|" * (len(cols) - 1),
    ]
    md += ["| " + " | ".join(str(r[c]) for c in cols[:-1]) + " |" for r in rows]
    atomic_write_text(out / "summary.md", "\n".join(md) + "\n")
    return out / "summary.csv", out / "summary.md"


def mlflow_log(out: Path, cell: Cell, rows: list[dict]) -> None:
    """Log one finished cell as an MLflow run in a local store (out/mlflow.db, artifacts under out/mlruns; MLflow 3
    refuses the plain folder store without an opt-in, and SQLite is its suggested local store): params = the resolved config
    (dotted keys), metrics = every arm's headline metrics with their 95% CI bounds, artifacts = report.html,
    recommendation.json and eval/metrics.json; the verdict under each weight preset as tags."""
    import mlflow

    mlflow.set_tracking_uri(mlflow_uri(out))
    if mlflow.get_experiment_by_name("advisor-batch") is None:  # artifacts beside the database, not in the cwd
        mlflow.create_experiment("advisor-batch", artifact_location=(out / "mlruns").resolve().as_uri())
    mlflow.set_experiment("advisor-batch")
    with mlflow.start_run(run_name=cell.id):
        params = {
            "cell.corpus": cell.corpus,
            "cell.model": cell.model,
            "cell.setting": cell.setting,
            **_flatten(cell.config.to_dict()),
        }
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        mlflow.log_metrics(headline_metrics(cell.run_dir))
        for row in rows:
            mlflow.set_tag(f"verdict_{row['preset']}", row["verdict"])
        for f in ("recommendation.json", "report.html", "eval/metrics.json"):
            if (cell.run_dir / f).exists():
                mlflow.log_artifact(str(cell.run_dir / f))


def mlflow_uri(out: Path) -> str:
    """The tracking URI of a batch's MLflow store (`mlflow ui --backend-store-uri URI` shows it)."""
    return f"sqlite:///{(out / 'mlflow.db').resolve()}"


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v and k not in ("weights", "facts"):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def headline_metrics(run_dir: Path) -> dict[str, float]:
    """'<arm>.<metric>' -> value, with '<arm>.<metric>.ci_lo' / '.ci_hi' (95% bootstrap CI), from metrics.json."""
    metrics = read_json(
        run_dir / "eval" / "metrics.json", "evaluation metrics", "run the batch again (finished cells are kept)"
    )["arms"]
    out = {}
    for arm, ms in metrics.items():
        for name, m in ms.items():
            if not isinstance(m, dict) or not isinstance(m.get("value"), (int, float)):
                continue
            out[f"{arm}.{name}"] = float(m["value"])
            ci = m.get("ci95")
            if isinstance(ci, list) and len(ci) == 2 and all(isinstance(x, (int, float)) for x in ci):
                out[f"{arm}.{name}.ci_lo"], out[f"{arm}.{name}.ci_hi"] = float(ci[0]), float(ci[1])
    return out


def run_cell(cell: Cell, presets: list[str]) -> dict:
    """Run (or resume) one cell's pipeline: {"status": "done", "rows", "wall_s"} or {"status": "failed", "error"}."""
    from advisor.pipeline import run_pipeline

    t0 = time.perf_counter()
    try:
        cfg, plan = cell.config, None
        if cfg.run.time_budget:  # sized to fit like advisor run --time-budget (a batch never stops to ask)
            from advisor.plan import prepare_run

            cfg, plan = prepare_run(cfg, cell.run_dir, False, yes=True, interactive=False)
        run_pipeline(cfg, cell.run_dir, plan=plan)
        rows = summary_rows(cell, presets)
    except AdvisorError as e:
        return {"status": "failed", "error": str(e)}
    return {"status": "done", "rows": rows, "wall_s": round(time.perf_counter() - t0, 1)}


def run_batch(path: Path, backend: str = "sequential", address: str | None = None) -> dict:
    """Run every cell not yet done, one after another or as Ray tasks; returns batch.json's content (cells with
    status and rows). A failed cell is recorded and the others go on."""
    spec = load_batch(path)
    preflight_batch(spec)
    has_mlflow = importlib.util.find_spec("mlflow") is not None
    if spec.mlflow == "true" and not has_mlflow:
        raise AdvisorError(f"{path}: mlflow: true but MLflow is not installed; pip install mlflow, or set mlflow: auto")
    use_mlflow = has_mlflow and spec.mlflow != "false"
    ray = _import_ray() if backend == "ray" else None
    spec.out.mkdir(parents=True, exist_ok=True)
    state_path = spec.out / "batch.json"
    state = read_json(state_path, "batch state", "delete it to start the batch afresh") if state_path.exists() else {}
    state = {
        "source": str(spec.source),
        "presets": spec.presets,
        "mlflow": use_mlflow,
        "cells": {c.id: state.get("cells", {}).get(c.id, {"status": "pending"}) for c in spec.cells},
    }
    atomic_write_json(state_path, state)
    n = len(spec.cells)
    todo = []
    for i, cell in enumerate(spec.cells, 1):
        st = state["cells"][cell.id]
        if (
            st["status"] == "done"
            and st.get("presets") == spec.presets
            and (cell.run_dir / "recommendation.json").exists()
        ):
            say(f"[{i}/{n}] {cell.id}: done, skipped")
        else:
            todo.append((i, cell))

    def record(i: int, cell: Cell, result: dict) -> None:
        st = state["cells"][cell.id]
        st.pop("error", None)
        if result["status"] == "failed":
            st.update(status="failed", error=result["error"])
            say(f"[{i}/{n}] {cell.id}: failed: {result['error']}")
        else:
            if use_mlflow:
                mlflow_log(spec.out, cell, result["rows"])
            st.update(status="done", rows=result["rows"], presets=spec.presets, wall_s=result["wall_s"])
            say(f"[{i}/{n}] {cell.id}: done")
        _save(spec.out, state)

    def started(i: int, cell: Cell, status: str = "running") -> None:
        say(f"[{i}/{n}] {cell.id}: {status} in {cell.run_dir}")
        state["cells"][cell.id].update(status=status, run_dir=str(cell.run_dir))
        atomic_write_json(state_path, state)

    if ray is not None:
        _run_on_ray(ray, address, spec, todo, started, record, state)
    else:
        for i, cell in todo:
            started(i, cell)
            record(i, cell, run_cell(cell, spec.presets))
    _save(spec.out, state)
    return state


def _save(out: Path, state: dict) -> None:
    atomic_write_json(out / "batch.json", state)
    write_summary(
        out,
        [r for c in state["cells"].values() if c["status"] == "done" for r in c["rows"]],
        [cid for cid, c in state["cells"].items() if c["status"] != "done"],
    )


def _import_ray():
    try:
        import ray
    except ImportError:
        raise AdvisorError(
            "--backend ray needs Ray, which is not installed here; pip install 'rag-ft-advisor[ray]' "
            "(or pip install ray), or run the batch without --backend ray"
        ) from None
    return ray


def _ray_cell(cell: Cell, presets: list[str], log: str) -> dict:
    """A Ray task: one cell, its stdout and stderr (and its tracks' processes') in `log`."""
    import os
    import sys

    Path(log).parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log, "a") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            return run_cell(cell, presets)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _run_on_ray(ray, address: str | None, spec: BatchSpec, todo: list, started, record, state: dict) -> None:
    """Submit every pending cell as a Ray task and record each as it finishes; Ctrl-C cancels the rest."""
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = f"at {address}" if address else "locally"
        raise AdvisorError(
            f"cannot start or reach a Ray cluster {where}: {str(e).splitlines()[0][:200]}; "
            f"check --address (ray start --head prints it)"
        ) from None
    task = ray.remote(_ray_cell)
    refs = {}
    try:
        for i, cell in todo:
            res = cell.resources
            opts = {"num_cpus": res.get("cpus", 1), "num_gpus": res.get("gpus", 0), "max_retries": 0}
            if res.get("memory_gb"):
                opts["memory"] = int(res["memory_gb"] * 2**30)
            cell = Cell(cell.id, cell.corpus, cell.model, cell.setting, cell.config, cell.run_dir.resolve(), res)
            ref = task.options(**opts).remote(cell, spec.presets, str((spec.out / "logs" / f"{cell.id}.log").resolve()))
            refs[ref] = (i, cell)
            started(i, cell, "submitted")  # the cluster runs it when its resources are free
        waiting = list(refs)
        while waiting:
            ready, waiting = ray.wait(waiting, num_returns=1)
            i, cell = refs[ready[0]]
            try:
                result = ray.get(ready[0])
            except Exception as e:  # noqa: BLE001 - a crashed task is one failed cell; the others go on
                result = {
                    "status": "failed",
                    "error": f"Ray task failed: {str(e).strip().splitlines()[-1][:300]}; "
                    f"see {spec.out / 'logs' / (cell.id + '.log')}",
                }
            record(i, cell, result)
    except KeyboardInterrupt:
        for ref, (_, cell) in refs.items():
            try:
                ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - a task that already finished needs no cancelling
                pass
            if state["cells"][cell.id]["status"] == "submitted":
                state["cells"][cell.id]["status"] = "interrupted"
        _save(spec.out, state)
        raise
    finally:
        ray.shutdown()
