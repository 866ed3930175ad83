"""Screenshots of dashboard pages in headless Chromium, for the browser tests and docs/dashboard.png.

    python -m ui.shots http://127.0.0.1:8501/evidence?run=NAME out.png --wait-for "Evidence"

`chromium --screenshot` alone cannot wait for a Streamlit page: the page is drawn from websocket messages
after load, which --virtual-time-budget does not wait for. So this drives Chromium over the DevTools
protocol: open the URL, wait until the expected text is there and the page has stopped changing, size
the window to the page's full height, and capture. It returns the page's visible text for assertions;
`layout_problems()` lists what is drawn cut short or too wide.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
    "--remote-allow-origins=*",
]
# What the page says while Streamlit is still drawing it.
STATE_JS = """JSON.stringify({
  text: document.body ? document.body.innerText : "",
  busy: !!document.querySelector('[data-testid="stSkeleton"], [data-testid="stStatusWidget"] [data-testid="stStatusWidgetRunningIcon"]'),
  charts: document.querySelectorAll('canvas, .vega-embed svg').length,
  height: Math.max(...[...document.querySelectorAll('[data-testid="stMain"], [data-testid="stAppViewContainer"], section')]
                   .map(e => e.scrollHeight), document.body ? document.body.scrollHeight : 0),
  exceptions: [...document.querySelectorAll('[data-testid="stException"]')].map(e => e.innerText),
})"""

# What does not fit its place on the drawn page: text cut short with "…" (a label, a metric) and tables whose
# columns are wider than the table, so that their last columns need a sideways scroll.
LAYOUT_JS = """JSON.stringify({
  cut: [...document.querySelectorAll('[data-testid="stMain"] *, [data-testid="stSidebar"] *')]
       .filter(e => getComputedStyle(e).textOverflow === 'ellipsis' && e.scrollWidth > e.clientWidth + 1
                    && e.textContent.trim())
       .map(e => e.textContent.trim().slice(0, 80)),
  wide: [...document.querySelectorAll('[data-testid="stDataFrame"] .dvn-scroller')]
        .map((e, i) => [e, i]).filter(([e]) => e.scrollWidth > e.clientWidth + 1)
        .map(([e, i]) => `table ${i + 1} of the page, ${e.scrollWidth - e.clientWidth} px`),
})"""


def find_chromium() -> str | None:
    """$CHROMIUM, else the first of chromium, chromium-browser, google-chrome on PATH."""
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


class Browser:
    """One headless Chromium with one tab, driven over the DevTools protocol (websocket)."""

    def __init__(self, width: int = 1280, height: int = 900, chromium: str | None = None):
        from websockets.sync.client import connect  # a Streamlit dependency

        exe = chromium or find_chromium()
        if not exe:
            raise RuntimeError(
                "Chromium not found: install it (apt-get install -y chromium; make test does) "
                "or set CHROMIUM=/path/to/chrome"
            )
        self.width, self.height = width, height
        self.profile = tempfile.mkdtemp(prefix="advisor-chromium-")
        self.proc = subprocess.Popen(
            [exe, *FLAGS, f"--user-data-dir={self.profile}", f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.time() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.time() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError(f"Chromium ({exe}) did not start its DevTools endpoint")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            page = next(t for t in json.load(r) if t["type"] == "page")
        self._conn = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10)
        self.ws = self._conn.__enter__()
        self._id = 0
        self.call("Page.enable")
        self.call("Runtime.enable")

    def call(self, method: str, **params) -> dict:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def state(self) -> dict:
        r = self.call("Runtime.evaluate", expression=STATE_JS, returnByValue=True)
        return json.loads(r["result"]["value"])

    def layout_problems(self) -> list[str]:
        """What on the page now does not fit: 'cut: <text>' for each label cut short with "…", 'too wide: table
        <n> of the page, <by how much>' for each table that scrolls sideways."""
        r = self.call("Runtime.evaluate", expression=LAYOUT_JS, returnByValue=True)
        found = json.loads(r["result"]["value"])
        return [f"cut: {t}" for t in found["cut"]] + [f"too wide: {t}" for t in found["wide"]]

    def _settle(self, wait_for: str | None, timeout: float) -> dict:
        """Poll until `wait_for` is on the page, nothing is loading, and the text has not changed for 1.5 s."""
        deadline, last, stable_since = time.time() + timeout, None, time.time()
        while True:
            s = self.state()
            key = (s["text"], s["charts"], s["height"])
            if key != last:
                last, stable_since = key, time.time()
            ready = (not wait_for or wait_for in s["text"]) and not s["busy"]
            if ready and time.time() - stable_since >= 1.5:
                return s
            if time.time() > deadline:
                raise TimeoutError(
                    f"page did not settle within {timeout:.0f} s"
                    + (f" (waiting for {wait_for!r})" if wait_for and wait_for not in s["text"] else "")
                    + f"; it shows: {s['text'][:400]!r}"
                )
            time.sleep(0.25)

    def shot(
        self,
        url: str,
        out: Path,
        wait_for: str | None = None,
        timeout: float = 60,
        full_page: bool = True,
        max_height: int = 4000,
    ) -> dict:
        """Open `url`, wait, write a PNG of the whole page to `out`; returns the page state (text, exceptions)."""
        self._viewport(self.height)
        self.call("Page.navigate", url=url)
        time.sleep(0.5)
        return self._capture(out, wait_for, timeout, full_page, max_height)

    def click_tab(
        self, label: str, out: Path, wait_for: str | None = None, timeout: float = 60, max_height: int = 4000
    ) -> dict:
        """Click the tab labelled `label` on the page now open (st.tabs), wait, and write a PNG of the whole page
        with that tab shown; returns the page state. A page without that tab is an error naming the tabs it has."""
        self._viewport(self.height)
        js = (
            "(() => { const tabs = [...document.querySelectorAll('[role=tab]')];"
            f" const t = tabs.find(e => e.innerText.trim() === {json.dumps(label)});"
            " if (t) { t.click(); return ''; } return JSON.stringify(tabs.map(e => e.innerText.trim())); })()"
        )
        found = self.call("Runtime.evaluate", expression=js, returnByValue=True)["result"]["value"]
        if found:
            raise RuntimeError(f"no tab {label!r} on the page; its tabs: {found}")
        time.sleep(0.5)
        return self._capture(out, wait_for, timeout, True, max_height)

    def _viewport(self, height: int) -> None:
        """The window: this browser's width, `height` px tall."""
        self.call(
            "Emulation.setDeviceMetricsOverride", width=self.width, height=height, deviceScaleFactor=1, mobile=False
        )

    def _capture(self, out: Path, wait_for: str | None, timeout: float, full_page: bool, max_height: int) -> dict:
        s = self._settle(wait_for, timeout)
        if full_page and s["height"] > self.height:
            self._viewport(min(s["height"], max_height))
            s = self._settle(wait_for, timeout)
        data = self.call("Page.captureScreenshot", format="png")["data"]
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_bytes(base64.b64decode(data))
        return s

    def close(self) -> None:
        try:
            if getattr(self, "_conn", None):
                self._conn.__exit__(None, None, None)
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def main() -> int:
    p = argparse.ArgumentParser(description="Screenshot a dashboard page with headless Chromium.")
    p.add_argument("url")
    p.add_argument("out", type=Path)
    p.add_argument("--wait-for", help="text that must be on the page before the shot")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=900)
    p.add_argument("--viewport-only", action="store_true", help="only the window, not the whole page")
    a = p.parse_args()
    with Browser(a.width, a.height) as b:
        s = b.shot(a.url, a.out, a.wait_for, full_page=not a.viewport_only)
    print(a.out)
    return 1 if s["exceptions"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
