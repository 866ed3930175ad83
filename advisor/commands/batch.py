"""advisor batch: a matrix of corpora x models x settings (advisor/batch.py), resumable, with a summary
table across runs."""

from __future__ import annotations

from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser(
        "batch",
        help="run a matrix of corpora x models x settings; resumable; summary CSV + Markdown",
        description="Run one pipeline per cell of corpora x models x settings from a YAML file, each in its own "
        "run directory under OUT/runs/, and write OUT/summary.csv and OUT/summary.md (one row per run and weight "
        "preset). Rerun the same command after an interruption: finished cells are skipped, an interrupted one "
        "resumes at its first unfinished stage. With MLflow installed, each run is logged to OUT/mlflow.db (artifacts in OUT/mlruns). "
        "With --backend ray each cell is a Ray task (its resources from the batch file), logs in OUT/logs/. "
        "The file format is documented in advisor/batch.py.",
    )
    p.add_argument("file", metavar="FILE.yaml", type=Path, help="the batch file")
    p.add_argument(
        "--backend",
        choices=["sequential", "ray"],
        default="sequential",
        help="run the cells one after another here (default), or as Ray tasks with each cell's resources "
        "(needs pip install 'rag-ft-advisor[ray]')",
    )
    p.add_argument(
        "--address",
        metavar="ADDR",
        help="with --backend ray: the cluster to join (e.g. 10.0.0.5:6379 or auto); default: start a local one",
    )
    p.set_defaults(func=cmd_batch)


def cmd_batch(args) -> int:
    from advisor.batch import load_batch, mlflow_uri, run_batch
    from advisor.core.errors import AdvisorError

    if args.address and args.backend != "ray":
        raise AdvisorError("--address goes with --backend ray")
    state = run_batch(args.file, args.backend, args.address)
    out = load_batch(args.file).out
    failed = [cid for cid, c in state["cells"].items() if c["status"] == "failed"]
    done = sum(c["status"] == "done" for c in state["cells"].values())
    print(f"{done}/{len(state['cells'])} runs done" + (f"; failed: {', '.join(failed)}" if failed else ""))
    print(
        f"summary: {out / 'summary.md'} and {out / 'summary.csv'}"
        + (
            f"; MLflow runs in {out / 'mlflow.db'} (mlflow ui --backend-store-uri {mlflow_uri(out)})"
            if state["mlflow"]
            else "; MLflow not installed, not logged"
        )
    )
    return 1 if failed else 0
