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
    mlflow: auto                          # auto: log to a local file store (out/mlruns) when mlflow is importable;
                                          # true: require it; false: never

A cell is done when its run finished and its summary rows are in batch.json; a rerun skips done cells
and resumes an interrupted one at its first unfinished stage (the pipeline is idempotent). Every cell's
config is validated before anything is built, so a typo fails in a second, not after the first run.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from advisor.core.artifacts import atomic_write_json, atomic_write_text
from advisor.core.config import Config, load_config, read_yaml
from advisor.core.errors import AdvisorError, did_you_mean
from advisor.pipeline import say

KEYS = ("out", "corpora", "models", "settings", "overrides", "recommend_presets", "mlflow")
COLUMNS = ["cell", "corpus", "model", "setting", "preset", "verdict", "margin", "win_share", "no_significant_difference",
           "acc_rag", "acc_tuned", "acc_tuned_rag", "acc_base", "halluc_rag", "halluc_tuned", "halluc_tuned_rag",
           "forgetting_tuned", "index_s", "tune_s", "run_wall_s", "run_dir"]


@dataclass
class Cell:
    id: str
    corpus: str
    model: str
    setting: str
    config: Config
    run_dir: Path


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
    from advisor.recommend import PRESETS

    path = Path(path)
    if not path.is_file():
        raise AdvisorError(f"batch file {path} does not exist")
    spec = read_yaml(path, "batch file")
    for k in spec:
        if k not in KEYS:
            raise AdvisorError(f"{path}: unknown key '{k}'{did_you_mean(str(k), KEYS)}; keys: {', '.join(KEYS)}")
    base = path.parent
    if spec.get("out") is not None and not isinstance(spec["out"], str):
        raise AdvisorError(f"{path}: out must be a folder path")
    out = Path(spec.get("out") or f"runs/batch-{_slug(path.stem)}")
    corpora = _list(spec, "corpora", path)
    if not corpora:
        raise AdvisorError(f"{path}: 'corpora' is missing; list at least one corpus (- {{name: sample}} is the bundled one)")
    models = _list(spec, "models", path, [None])
    settings = _list(spec, "settings", path, [{"name": "quickstart", "config": "quickstart"}])
    common = [str(o) for o in _list(spec, "overrides", path, [], allow_empty=True)]
    presets = [str(p) for p in _list(spec, "recommend_presets", path, ["balanced"])]
    for p in presets:
        if p not in PRESETS:
            raise AdvisorError(f"{path}: recommend_presets: unknown weight preset '{p}'{did_you_mean(p, PRESETS)}; "
                               f"presets: {', '.join(PRESETS)}")
    mlflow = str(spec.get("mlflow", "auto")).lower()
    if mlflow not in ("auto", "true", "false"):
        raise AdvisorError(f"{path}: mlflow: {spec['mlflow']!r} must be auto, true or false")

    def rel(p: str) -> str:  # paths in the batch file are relative to the file
        return str((base / p).resolve()) if p and not Path(p).is_absolute() else p

    cells = []
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
            raise AdvisorError(f"{path}: settings[{i}] must be a mapping with a name (and config, overrides)")
        bad = [k for k in s if k not in ("name", "config", "overrides")]
        if bad:
            raise AdvisorError(f"{path}: settings[{i}]: unknown key '{bad[0]}'; keys: name, config, overrides")
        if s.get("overrides") is not None and not isinstance(s["overrides"], list):
            raise AdvisorError(f"{path}: settings[{i}].overrides must be a list of key=value strings")
    for i, m in enumerate(models):
        if m is not None and (not isinstance(m, str) or not m.strip()):
            raise AdvisorError(f"{path}: models[{i}] must be a model spec (a bundled name, folder or Hub id)")
    for c in corpora:
        cname = c.get("name") or (Path(c["path"]).name if c.get("path") else "sample")
        for m in models:
            for s in settings:
                extra = {"corpus": {k: rel(c[k]) for k in ("path", "qa", "train_qa") if c.get(k)}}
                if m:
                    extra["model"] = {"spec": rel(m) if (base / m).exists() else m}
                where = f"{path}: cell corpus={cname} model={m or 'default'} setting={s['name']}"
                try:
                    cfg = load_config(rel(s.get("config") or "") if str(s.get("config", "")).endswith((".yaml", ".yml"))
                                      else s.get("config"), common + [str(o) for o in s.get("overrides") or []], extra)
                except AdvisorError as e:
                    raise AdvisorError(f"{where}: {e}") from None
                cid = "-".join(_slug(x) for x in (cname, Path(m).name if m else "default", s["name"]))
                cells.append(Cell(cid, cname, m or cfg.model.spec, s["name"], cfg, out / "runs" / cid))
    ids = [c.id for c in cells]
    dup = next((i for i in ids if ids.count(i) > 1), None)
    if dup:
        raise AdvisorError(f"{path}: two cells are both named '{dup}'; give the corpora/settings distinct names")
    return BatchSpec(out, cells, presets, mlflow, path)


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


def summary_rows(cell: Cell, presets: list[str]) -> list[dict]:
    """One row per weight preset: the run's verdict under it and the headline evidence."""
    from advisor.commands.recommend import refresh_advice

    metrics = json.loads((cell.run_dir / "eval" / "metrics.json").read_text())["arms"]
    manifest = json.loads((cell.run_dir / "manifest.json").read_text())
    stages = manifest.get("stages", {})

    def v(arm: str, key: str):
        m = metrics.get(arm, {}).get(key)
        return round(m["value"], 4) if m else ""

    rows = []
    for p in presets:
        rec = refresh_advice(cell.run_dir, p, write=False)
        rows.append({
            "cell": cell.id, "corpus": cell.corpus, "model": cell.model, "setting": cell.setting, "preset": p,
            "verdict": rec["verdict"], "margin": rec["margin"], "win_share": rec["sensitivity"]["win_share"][rec["verdict"]],
            "no_significant_difference": rec["no_significant_difference"].get("applied", False),
            "acc_rag": v("rag", "accuracy"), "acc_tuned": v("tuned", "accuracy"), "acc_tuned_rag": v("tuned_rag", "accuracy"),
            "acc_base": v("base", "accuracy"), "halluc_rag": v("rag", "hallucination_rate"),
            "halluc_tuned": v("tuned", "hallucination_rate"), "halluc_tuned_rag": v("tuned_rag", "hallucination_rate"),
            "forgetting_tuned": v("tuned", "forgetting"), "index_s": stages.get("index", {}).get("wall_s", ""),
            "tune_s": stages.get("tune", {}).get("wall_s", ""), "run_wall_s": manifest.get("wall_s", ""),
            "run_dir": str(cell.run_dir),
        })
    return rows


def write_summary(out: Path, rows: list[dict], pending: list[str]) -> tuple[Path, Path]:
    buf = io.StringIO()
    w = csv.DictWriter(buf, COLUMNS)
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(out / "summary.csv", buf.getvalue())
    md = ["# Batch summary", "", f"{len(rows)} rows from {len({r['cell'] for r in rows})} finished runs"
          + (f"; not finished: {', '.join(pending)}" if pending else "") + ".", "",
          "| " + " | ".join(COLUMNS[:-1]) + " |", "|" + "---|" * (len(COLUMNS) - 1)]
    md += ["| " + " | ".join(str(r[c]) for c in COLUMNS[:-1]) + " |" for r in rows]
    atomic_write_text(out / "summary.md", "\n".join(md) + "\n")
    return out / "summary.csv", out / "summary.md"


def mlflow_log(out: Path, cell: Cell, rows: list[dict]) -> None:
    """Log one cell as an MLflow run in a local file store (out/mlruns)."""
    import mlflow

    mlflow.set_tracking_uri((out / "mlruns").resolve().as_uri())
    mlflow.set_experiment("advisor-batch")
    with mlflow.start_run(run_name=cell.id):
        mlflow.log_params({"corpus": cell.corpus, "model": cell.model, "setting": cell.setting})
        r = rows[0]
        mlflow.log_metrics({k: float(r[k]) for k in COLUMNS if k.startswith(("acc_", "halluc_", "forgetting")) and r[k] != ""})
        for row in rows:
            mlflow.set_tag(f"verdict_{row['preset']}", row["verdict"])
        for f in ("recommendation.json", "report.html", "eval/metrics.json"):
            if (cell.run_dir / f).exists():
                mlflow.log_artifact(str(cell.run_dir / f))


def run_batch(path: Path) -> dict:
    """Run every cell not yet done; returns batch.json's content (cells with status and rows)."""
    from advisor.pipeline import run_pipeline

    spec = load_batch(path)
    preflight_batch(spec)
    has_mlflow = importlib.util.find_spec("mlflow") is not None
    if spec.mlflow == "true" and not has_mlflow:
        raise AdvisorError(f"{path}: mlflow: true but MLflow is not installed; pip install mlflow, or set mlflow: auto")
    use_mlflow = has_mlflow and spec.mlflow != "false"
    spec.out.mkdir(parents=True, exist_ok=True)
    state_path = spec.out / "batch.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    state = {"source": str(spec.source), "presets": spec.presets, "mlflow": use_mlflow,
             "cells": {c.id: state.get("cells", {}).get(c.id, {"status": "pending"}) for c in spec.cells}}
    atomic_write_json(state_path, state)
    for i, cell in enumerate(spec.cells, 1):
        st = state["cells"][cell.id]
        if st["status"] == "done" and st.get("presets") == spec.presets and (cell.run_dir / "recommendation.json").exists():
            say(f"[{i}/{len(spec.cells)}] {cell.id}: done, skipped")
            continue
        say(f"[{i}/{len(spec.cells)}] {cell.id}: running in {cell.run_dir}")
        t0 = time.perf_counter()
        st.update(status="running", run_dir=str(cell.run_dir))
        atomic_write_json(state_path, state)
        try:
            run_pipeline(cell.config, cell.run_dir)
            rows = summary_rows(cell, spec.presets)
        except AdvisorError as e:
            st.update(status="failed", error=str(e))
            atomic_write_json(state_path, state)
            say(f"[{i}/{len(spec.cells)}] {cell.id}: failed: {e}")
            continue
        if use_mlflow:
            mlflow_log(spec.out, cell, rows)
        st.update(status="done", rows=rows, presets=spec.presets, wall_s=round(time.perf_counter() - t0, 1))
        atomic_write_json(state_path, state)
        write_summary(spec.out, [r for c in state["cells"].values() if c["status"] == "done" for r in c["rows"]],
                      [cid for cid, c in state["cells"].items() if c["status"] != "done"])
    rows = [r for c in state["cells"].values() if c["status"] == "done" for r in c["rows"]]
    write_summary(spec.out, rows, [cid for cid, c in state["cells"].items() if c["status"] != "done"])
    return state
