"""What `advisor plan` would say on a host N times slower (or faster) than this one, without such a host:

    .venv/bin/python benchmarks/plan_slower_host.py --times 2 --embed-times 4.3 -- \
        --corpus BIG --qa QA --time-budget 10m

It copies this machine's cached calibrations ($ADVISOR_HOME/calibration/, measured by `make setup` or any
`advisor plan`) into a temporary $ADVISOR_HOME with every time in them multiplied by --times (the embedder's
per-token time by --embed-times: a host without AVX512-BF16 embeds in float32, 4.3x the time per token of this
project's bfloat16 hosts), links the converted models, and runs `advisor plan` with the arguments after `--`
against it. The question it answers: does a time budget that fits here still fit, and what would it cut, on a
slower host (docs/plan-accuracy.md, 'On a slower host'). Every stage is assumed to slow down alike, which real hosts
do only roughly (their prefill, decode and training rates moved by 1.7-1.9x between the two CPU kinds measured).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from advisor.core.models import advisor_home  # noqa: E402


def is_time(key: str) -> bool:
    """A calibration field that holds seconds (per token, per label or for a whole step)."""
    return key.endswith("_s") or key.endswith("_s_per_token")


def scaled_calibration(cal: dict, times: float, embed_times: float) -> dict:
    """`cal` with its times (and the tune stage's recorded speed, `observed_train`) multiplied by `times`, the
    embedder's per-token time by `embed_times`; rates of another kind (memory, counts, ratios) unchanged.

    >>> c = scaled_calibration({"prefill_s_per_token": 0.001, "embed_s_per_token": 1e-05, "load_rss_mb": 300.0,
    ...     "observed_train": {"s_per_token": 0.004, "tokens": 100}}, 2.0, 4.0)
    >>> c["prefill_s_per_token"], c["embed_s_per_token"], c["load_rss_mb"], c["observed_train"]
    (0.002, 4e-05, 300.0, {'s_per_token': 0.008, 'tokens': 100})
    """
    out = copy.deepcopy(cal)
    for key, value in cal.items():
        if key == "embed_s_per_token":
            out[key] = value * embed_times
        elif is_time(key) and isinstance(value, (int, float)):
            out[key] = value * times
    observed = out.get("observed_train")
    if isinstance(observed, dict):
        for key, value in observed.items():
            if is_time(key) or key == "s_per_token":
                observed[key] = value * times
    return out


def slower_home(home: Path, into: Path, times: float, embed_times: float) -> int:
    """Fill `into` as an $ADVISOR_HOME whose calibrations are `home`'s scaled; returns how many were copied."""
    cals = sorted((home / "calibration").glob("*.json"))
    (into / "calibration").mkdir(parents=True)
    for f in cals:
        cal = json.loads(f.read_text())
        (into / "calibration" / f.name).write_text(json.dumps(scaled_calibration(cal, times, embed_times), indent=1))
    if (home / "models").is_dir():
        (into / "models").symlink_to(home / "models")
    return len(cals)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--times", type=float, required=True, help="multiply every calibrated time by this")
    ap.add_argument("--embed-times", type=float, help="the embedder's per-token time by this (default: --times)")
    ap.add_argument("plan_args", nargs="*", help="after --: the arguments of advisor plan")
    args = ap.parse_args(argv)
    if not args.times > 0 or (args.embed_times is not None and not args.embed_times > 0):
        ap.error("--times and --embed-times must be positive")
    home = advisor_home()
    with tempfile.TemporaryDirectory(prefix="advisor-slower-") as tmp:
        n = slower_home(home, Path(tmp), args.times, args.embed_times or args.times)
        if not n:
            print(
                f"no calibration in {home / 'calibration'}: run `advisor plan` (or make setup) first", file=sys.stderr
            )
            return 2
        embed = args.embed_times or args.times
        print(f"{n} calibration(s) from {home}, times x{args.times:g}, the embedder's x{embed:g}", file=sys.stderr)
        env = {**os.environ, "ADVISOR_HOME": tmp}
        before = set((Path(tmp) / "calibration").glob("*.json"))
        rc = subprocess.call([sys.executable, "-m", "advisor", "plan", *args.plan_args], env=env, cwd=ROOT)
        if set((Path(tmp) / "calibration").glob("*.json")) - before:
            print(
                "no cached calibration matched this plan (another model, quantization or training shape), so it "
                "measured one here: its times are this host's, not scaled. Run the same `advisor plan` once "
                "without this script, then again with it.",
                file=sys.stderr,
            )
            return 1
        return rc


if __name__ == "__main__":
    sys.exit(main())
