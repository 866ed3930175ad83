"""Serving throughput: micro-batching on vs off, at concurrency 1, 8 and 32, on a real run.

    .venv/bin/python benchmarks/bench_serve.py [--run RUN_DIR] [--arms rag,tuned] [--rounds 4]

Per arm, starts `advisor serve` twice, side by side: batching on (--max-batch 32 by default) and off
(--max-batch 1, one request per generation call). At each concurrency level N clients send the sample's eval
questions to /v1/query in rounds; each round sends the same questions to both servers, one after the other,
alternating which goes first (on-off, off-on, ...), so a slow spell of a shared machine falls on both modes
alike. Prints requests/s, p50/p95 latency and the mean number of requests per generation call (from /healthz)
over all rounds, the on/off throughput ratio and the range of the per-round ratios. RUN_DIR defaults to the
newest folder under runs/ that has both an index and an adapter (make demo creates one).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [json.loads(x)["question"] for x in (ROOT / "advisor/sample/qa/eval.jsonl").read_text().splitlines() if x]


def newest_run() -> Path:
    runs = sorted(
        (
            p
            for p in (ROOT / "runs").glob("*")
            if (p / "index/index.faiss").exists() and (p / "adapter/adapter_config.json").exists()
        ),
        key=lambda p: p.stat().st_mtime,
    )
    if not runs:
        sys.exit("bench_serve: no finished run under runs/; run `make demo` first or pass --run RUN_DIR")
    return runs[-1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(run: Path, arm: str, max_batch: int, max_wait_ms: float | None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    wait = [] if max_wait_ms is None else ["--max-wait-ms", str(max_wait_ms)]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "advisor",
            "serve",
            str(run),
            "--arm",
            arm,
            "--port",
            str(port),
            "--max-batch",
            str(max_batch),
            *wait,
            "--timeout-s",
            "600",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if proc.poll() is not None:
            sys.exit(f"bench_serve: server exited: {proc.stderr.read()[-1000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    sys.exit("bench_serve: server did not start")


async def load(url: str, concurrency: int, n_requests: int, first: int = 0) -> dict:
    """Send questions first..first+n_requests-1 (wrapping around the sample) from `concurrency` clients."""
    lat: list[float] = []
    errors = 0
    counter = iter(range(first, first + n_requests))

    async def client(c: httpx.AsyncClient):
        nonlocal errors
        for i in counter:
            t0 = time.perf_counter()
            r = await c.post(url + "/v1/query", json={"question": QUESTIONS[i % len(QUESTIONS)]})
            lat.append(time.perf_counter() - t0)
            errors += r.status_code != 200

    async with httpx.AsyncClient(timeout=900) as c:
        before = (await c.get(url + "/healthz")).json()
        t0 = time.perf_counter()
        await asyncio.gather(*(client(c) for _ in range(concurrency)))
        wall = time.perf_counter() - t0
        after = (await c.get(url + "/healthz")).json()
    return {
        "wall": wall,
        "lat": lat,
        "errors": errors,
        "n": n_requests,
        "batches": after["batches"] - before["batches"],
        "requests": after["requests"] - before["requests"],
    }


def pooled(rounds: list[dict]) -> dict:
    """Throughput, latency percentiles and mean batch over several rounds of one mode."""
    lat = sorted(x for r in rounds for x in r["lat"])
    return {
        "rps": sum(r["n"] for r in rounds) / sum(r["wall"] for r in rounds),
        "p50": statistics.median(lat),
        "p95": lat[min(len(lat) - 1, int(0.95 * len(lat)))],
        "errors": sum(r["errors"] for r in rounds),
        "batch": sum(r["requests"] for r in rounds) / max(1, sum(r["batches"] for r in rounds)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path)
    ap.add_argument("--arms", default="base,rag,tuned,tuned_rag")
    ap.add_argument("--concurrency", default="1,8,32")
    ap.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="on/off rounds per level, alternating which goes first "
        "(at concurrency 32: 4 x 32 = 128 of the 150 sample questions)",
    )
    ap.add_argument("--requests-per-client", type=int, default=1, help="per round (at least 8 requests a round)")
    ap.add_argument("--max-batch", type=int, default=32, help="micro-batch bound when batching is on")
    ap.add_argument("--max-wait-ms", type=float, help="the server's quiet gap that closes a batch (default: its own)")
    args = ap.parse_args()
    if args.rounds < 1 or args.requests_per_client < 1:
        ap.error("--rounds and --requests-per-client must be at least 1")
    run = args.run or newest_run()
    levels = [int(x) for x in args.concurrency.split(",")]
    print(f"run: {run}")
    rows = []
    for arm in args.arms.split(","):
        servers = {}
        try:
            for mode, max_batch in (("on", args.max_batch), ("off", 1)):
                servers[mode] = start(run, arm, max_batch, args.max_wait_ms)
                asyncio.run(load(servers[mode][1], 1, 1))  # warm-up
            for c in levels:
                n = max(8, c * args.requests_per_client)
                res: dict = {"on": [], "off": []}
                for k in range(args.rounds):
                    for mode in ("on", "off") if k % 2 == 0 else ("off", "on"):
                        res[mode].append(asyncio.run(load(servers[mode][1], c, n, first=k * n)))
                        r = pooled(res[mode][-1:])
                        print(
                            f"  {arm} c={c:<3} round {k + 1} batching {mode:<3} {r['rps']:.2f} req/s  "
                            f"mean batch {r['batch']:.1f}  errors {r['errors']}",
                            flush=True,
                        )
                spread = [pooled([on])["rps"] / pooled([off])["rps"] for on, off in zip(res["on"], res["off"])]
                on, off = pooled(res["on"]), pooled(res["off"])
                rows.append((arm, c, on, off, on["rps"] / off["rps"], min(spread), max(spread)))
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(30)
    print()
    print(
        "| arm | concurrency | batching on req/s | p50 s | p95 s | mean batch | batching off req/s | p50 s | p95 s "
        "| on/off | rounds' on/off |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for arm, c, on, off, ratio, lo, hi in rows:
        print(
            f"| {arm} | {c} | {on['rps']:.2f} | {on['p50']:.2f} | {on['p95']:.2f} | {on['batch']:.1f} | "
            f"{off['rps']:.2f} | {off['p50']:.2f} | {off['p95']:.2f} | {ratio:.2f}x | {lo:.2f}-{hi:.2f}x |"
        )
    errs = sum(on["errors"] + off["errors"] for _, _, on, off, *_ in rows)
    print(f"\nerrors (non-200): {errs}")


if __name__ == "__main__":
    main()
