"""Screenshots of every dashboard page on one run, at the window sizes the docs show (docs/screens/).

    python -m ui.screens                       # the fixture run -> docs/screens/<page>-<width>.png
    python -m ui.screens --out /tmp/shots --run runs/my-run --sizes 1400x1000 1024x768

It serves `advisor dashboard` on a copy of the run (a temporary runs folder, a free port), shoots each page with
headless Chromium (ui/shots.py: the whole page height, up to 4000 px), stops the server and writes PNGs
re-encoded with a 256-colour palette (the UI has few colours). A page that shows an
exception, or never shows the text it is expected to, is an error. Under each PNG it prints what on that page
does not fit its place (ui/shots.py, Browser.layout_problems): a label cut short with "…", a table that scrolls
sideways; none is printed when everything fits.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from ui.common import EVIDENCE_TABS
from ui.shots import Browser

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "rundirs" / "sample-fixture"
SIZES = ((1400, 1000), (1024, 768))
# page url path -> text on it once it is drawn
PAGES = {
    "overview": "What would change the advice",
    "runs": "Compare two runs",
    "evidence": "RAG vs fine-tune vs both",
    "questions": "One question in detail",
    "review": "Review the generated questions",
    "what-if": "Score of each option",
    "cost": "Cheapest at these inputs",
    "new-run": "Start one",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(runs: Path, log: Path | None = None) -> tuple[subprocess.Popen, str]:
    """`advisor dashboard` on RUNS, up and answering (its first page load done, which is the slow one); returns
    the process (its own session) and its URL. The server's output goes to LOG when given, and its last lines
    into the error when it does not come up."""
    port = _free_port()
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 (the child keeps its own copy)
    proc = subprocess.Popen(
        [sys.executable, "-m", "advisor", "dashboard", "--runs-dir", str(runs), "--port", str(port)],
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    if log:
        out.close()  # the server writes through its inherited descriptor
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read() == b"ok":
                    urllib.request.urlopen(f"{url}/", timeout=30).read()
                    return proc, url
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            stop(proc)
            tail = log.read_text(errors="replace")[-2000:] if log else "run it by hand to see why"
            raise RuntimeError(f"advisor dashboard did not come up: {tail}")
        time.sleep(0.5)


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except ProcessLookupError:
        pass


def shrink(png: Path) -> None:
    """Re-encode with an adaptive 256-colour palette."""
    from PIL import Image

    with Image.open(png) as img:
        small = img.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(png, optimize=True)


def with_generated_questions(run: Path, n: int = 40) -> bool:
    """Give a run evaluated on its own QA file a generated set to review (`advisor qa generate CORPUS --out RUN/qa`
    on the corpus its config.yaml names: the extractive generator, deterministic), so the Review page has
    something to show. Only ever called on the temporary copy; True when it generated one."""
    import yaml

    if (run / "qa" / "eval.jsonl").is_file():
        return False
    corpus = ((yaml.safe_load((run / "config.yaml").read_text()) or {}).get("corpus") or {}).get("path")
    if not corpus:
        raise RuntimeError(f"{run / 'config.yaml'} names no corpus.path to generate questions from")
    cmd = [sys.executable, "-m", "advisor", "qa", "generate", corpus, "--out", str(run / "qa"), "--n", str(n)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)  # a relative corpus path is the checkout's
    if done.returncode:
        raise RuntimeError(f"advisor qa generate failed on the copy of {run.name}: {done.stderr.strip()[-500:]}")
    return True


def evidence_tabs(b: Browser, out: Path, width: int) -> list[tuple[Path, list[str]]]:
    """The Evidence page (open in `b`) with each tab after the first shown: OUT/evidence-<first word>-<width>.png
    and what on it does not fit."""
    shots = []
    for label, heading in list(EVIDENCE_TABS.items())[1:]:
        png = out / f"evidence-{label.split()[0].rstrip(',').lower()}-{width}.png"
        state = b.click_tab(label, png, wait_for=heading, timeout=120, max_height=6000)
        if state["exceptions"]:
            raise RuntimeError(f"evidence tab {label!r} shows an exception: {state['exceptions'][0][:300]}")
        shots.append((png, b.layout_problems()))
    return shots


def shoot_all(run: Path, out: Path, sizes=SIZES, pages: list[str] | None = None) -> list[Path]:
    """Every page (or `pages`) of RUN at every size, into OUT/<page>-<width>.png."""
    written = []
    with tempfile.TemporaryDirectory(prefix="advisor-screens-") as tmp:
        runs = Path(tmp) / "runs"
        shutil.copytree(run, runs / run.name)
        if "review" in (pages or PAGES) and with_generated_questions(runs / run.name):
            print(f"Review: {run.name} has no generated questions; its copy got 40 from advisor qa generate")
        proc, url = serve(runs)
        try:
            for width, height in sizes:
                with Browser(width, height) as b:
                    b.shot(f"{url}/?run={run.name}", Path(tmp) / "warm.png", wait_for=PAGES["overview"])
                    for page in pages or PAGES:
                        png = out / f"{page}-{width}.png"
                        path = "" if page == "overview" else page  # the default page is served at /
                        state = b.shot(
                            f"{url}/{path}?run={run.name}", png, wait_for=PAGES[page], timeout=120, max_height=6000
                        )
                        if state["exceptions"]:
                            raise RuntimeError(f"{page} shows an exception: {state['exceptions'][0][:300]}")
                        shots = [(png, b.layout_problems())]
                        if page == "evidence":  # its other tabs, each shown on its own
                            shots += evidence_tabs(b, out, width)
                        for png, problems in shots:
                            shrink(png)
                            written.append(png)
                            print(png, flush=True)
                            for problem in problems:
                                print(f"  {png.stem}: {problem}", flush=True)
        finally:
            stop(proc)
    return written


def main() -> int:
    p = argparse.ArgumentParser(description="Screenshot every dashboard page of a run at the docs' sizes.")
    p.add_argument("--run", type=Path, default=FIXTURE, help="run directory (default: the test fixture run)")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "screens", help="folder for the PNGs")
    p.add_argument("--sizes", nargs="+", default=[f"{w}x{h}" for w, h in SIZES], help="WIDTHxHEIGHT windows")
    p.add_argument("--pages", nargs="+", choices=list(PAGES), help="only these pages")
    a = p.parse_args()
    sizes = [tuple(int(x) for x in s.lower().split("x")) for s in a.sizes]
    a.out.mkdir(parents=True, exist_ok=True)
    shoot_all(a.run.resolve(), a.out, sizes, a.pages)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
