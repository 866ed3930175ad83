"""advisor dashboard: serve the Streamlit dashboard (ui/app.py) over a runs folder.

advisor dashboard                          # runs/ on http://127.0.0.1:8501
advisor dashboard --runs-dir /data/runs --port 8600
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

from advisor.core.errors import AdvisorError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "dashboard",
        help="serve the decision dashboard (verdict, evidence, questions, what-if, cost, new runs) in the browser",
        description="Serve the Streamlit dashboard over a folder of run directories: the verdict and why, charts "
        "with confidence intervals, every question with each arm's answer and sources, what-if weights, a cost "
        "projection, and a page that starts new runs in the background. It reads the run directories only.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  advisor dashboard\n  advisor dashboard --runs-dir /data/runs --port 8600\n"
        "  advisor dashboard --address 0.0.0.0     (reachable from other machines: no login, mind who can reach it)",
    )
    p.add_argument(
        "--runs-dir",
        metavar="DIR",
        type=Path,
        default=Path("runs"),
        help="folder holding run directories (default: runs; need not exist yet)",
    )
    p.add_argument("--port", metavar="N", type=int, default=8501, help="port to serve on (default: 8501)")
    p.add_argument(
        "--address",
        metavar="ADDR",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only)",
    )
    p.set_defaults(func=cmd_dashboard)


def app_path() -> Path:
    """ui/app.py, found without importing the dashboard (the ui layer sits above advisor)."""
    spec = importlib.util.find_spec("ui")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        app = Path(loc) / "app.py"
        if app.is_file():
            return app
    raise AdvisorError("the dashboard package 'ui' is not installed; reinstall the project (pip install -e .)")


def streamlit_command(port: int, address: str) -> list[str]:
    """`streamlit run ui/app.py` with the server flags; the runs folder travels in $ADVISOR_RUNS_DIR."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_path()),
        "--server.headless",
        "true",
        "--server.address",
        address,
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--client.toolbarMode",
        "minimal",
        "--client.showErrorDetails",
        "false",
    ]


def _check_port(address: str, port: int) -> None:
    """Fail before Streamlit starts when the port is taken (Streamlit binds it itself right after)."""
    from advisor.ports import bind_port

    bind_port(address, port).close()


def cmd_dashboard(args) -> int:
    runs_dir = args.runs_dir.expanduser().resolve()
    if runs_dir.exists() and not runs_dir.is_dir():
        raise AdvisorError(f"--runs-dir {runs_dir} is a file, not a folder of run directories")
    _check_port(args.address, args.port)
    cmd = streamlit_command(args.port, args.address)
    env = {**os.environ, "ADVISOR_RUNS_DIR": str(runs_dir)}
    host = "localhost" if args.address in ("127.0.0.1", "0.0.0.0") else args.address
    print(
        f"dashboard: http://{host}:{args.port}  (runs folder: {runs_dir}; Ctrl+C stops it)", file=sys.stderr, flush=True
    )
    # Become the server (exec, not a child): Ctrl+C and kill reach Streamlit directly and nothing is orphaned.
    os.execve(sys.executable, cmd, env)
    return 0  # not reached
