"""How each stage's cost grows with the corpus, and how close `advisor plan` comes to it (run it alone on the machine):

    flock /tmp/advisor-cpu.lock .venv/bin/python benchmarks/bench_scaling.py                 # 1x, 10x, 30x (~20 min on 2 cores)
    .venv/bin/python benchmarks/bench_scaling.py --scales 1 --steps 4 --questions 12           # a quick look
    .venv/bin/python benchmarks/bench_scaling.py --quickstart runs/sample-...                  # only the plan vs that run

At each scale (the bundled sample corpus repeated, each copy with its proper names renamed and numbers shifted:
benchmarks/bench_qagen.py scaled_corpus) it plans, then really runs, `advisor run` with the quickstart preset
bounded so a 30x corpus still finishes: tuning.max_steps=--steps, eval.limit=--questions, the sample's own eval
and training questions (so no question generation), probes and the learning curve trimmed. Both the plan and
the run see exactly the same config. From the run's manifest.json and adapter/training.json it prints, per stage:
the actual wall time, the plan's estimate and their ratio, and the unit costs a user scales by (ingest and index per
1k chunks, tune per 1k training tokens, eval per question per arm) with how they grow from the first scale.
The calibration is the cached one ($ADVISOR_HOME/calibration/), measured first when missing (its time is printed).

--quickstart RUN_DIR compares the plan that run printed before it started (recorded in its manifest.json; for a
run without one, or with --plan-now, a plan made now from the config it recorded) with each stage's wall time and
peak memory: the plan's target is a total within +-35% and each stage within +-50% (time). Any run
directory will do; no scale runs follow unless --scales is given.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from bench_qagen import scaled_corpus, scaled_qa  # noqa: E402

from advisor.core.config import Config, load_config  # noqa: E402
from advisor.pipeline import SAMPLE_EVAL, SAMPLE_TRAIN, resolve_inputs  # noqa: E402
from advisor.plan import calibrate, estimate, fmt_s, measure_work  # noqa: E402

SHOWN = (
    "ingest",
    "index",
    "sft",
    "tune",
    "eval_base",
    "eval_rag",
    "eval_tuned",
    "eval_tuned_rag",
    "known",
    "probes",
    "curve",
)


def bounded(corpus: Path, steps: int, questions: int) -> list[str]:
    """The advisor run arguments of one scale: the quickstart, bounded in steps, questions and probes, on the
    sample's questions with their sources renamed to the corpus' first copy (written beside the corpus)."""
    qa = scaled_qa(SAMPLE_EVAL, corpus.parent / f"{corpus.name}-eval.jsonl")
    train = scaled_qa(SAMPLE_TRAIN, corpus.parent / f"{corpus.name}-train.jsonl")
    return [
        "--config",
        "quickstart",
        "--corpus",
        str(corpus),
        "--qa",
        str(qa),
        "--train-qa",
        str(train),
        f"tuning.max_steps={steps}",
        f"eval.limit={questions}",
        "eval.probe_limit=20",
        "eval.perplexity_texts=5",
        "eval.curve_questions=8",
        "eval.curve_probe_items=8",
    ]


def plan_for(args: list[str]) -> tuple[Config, dict]:
    """The config `advisor run args` would run, and its plan (the dict manifest.json records)."""
    from advisor.cli import build_parser
    from advisor.commands.run import config_from_args

    ns = build_parser().parse_args(["run", *args])
    cfg = resolve_inputs(config_from_args(ns))
    t0 = time.perf_counter()
    cal = calibrate(cfg, progress=False)
    if not cal.get("cached"):
        print(f"  calibration measured in {time.perf_counter() - t0:.0f} s")
    return cfg, estimate(cfg, measure_work(cfg), cal).to_dict()


def actual(run_dir: Path) -> dict:
    """Per stage wall seconds and peak RSS (MB) from manifest.json, plus the units: chunks, training tokens, eval
    questions."""
    man = json.loads((run_dir / "manifest.json").read_text())
    stages = {k: v.get("wall_s") or 0.0 for k, v in man.get("stages", {}).items() if v.get("status") == "done"}
    peaks = {k: v.get("peak_rss_mb") for k, v in man.get("stages", {}).items()}
    n_chunks = sum(1 for _ in (run_dir / "chunks.jsonl").open())
    train = run_dir / "adapter" / "training.json"
    tokens = json.loads(train.read_text()).get("tokens_seen", 0) if train.is_file() else 0
    base = run_dir / "eval" / "base.jsonl"
    n_q = sum(1 for _ in base.open()) if base.is_file() else 0
    return {
        "stages": stages,
        "peaks": peaks,
        "wall_s": man.get("wall_s"),
        "chunks": n_chunks,
        "train_tokens": tokens,
        "questions": n_q,
    }


def run_scale(scale: int, work_dir: Path, steps: int, questions: int) -> dict:
    corpus = work_dir / f"corpus-{scale}x"
    corpus.mkdir(parents=True, exist_ok=True)
    scaled_corpus(corpus, scale)
    args = bounded(corpus, steps, questions)
    cfg, plan = plan_for(args)
    out = work_dir / f"run-{scale}x"
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "advisor.cli", "run", *args, "--out", str(out), "--yes"],
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    got = actual(out)
    got["run_s"] = time.perf_counter() - t0
    return {"scale": scale, "plan": plan, "actual": got}


def ratio(est: float | None, act: float | None) -> str:
    return f"{est / act:.2f}" if est and act else "-"


def print_scale(r: dict) -> None:
    plan, act = r["plan"], r["actual"]
    print(
        f"\n## {r['scale']}x: {act['chunks']:,} chunks, {act['train_tokens']:,} training tokens, "
        f"{act['questions']} questions per arm"
    )
    print(f"{'stage':<16}{'actual':>10}{'plan':>10}{'plan/actual':>13}")
    for name in SHOWN:
        a, e = act["stages"].get(name), (plan["stages"].get(name) or {}).get("seconds")
        if a is None and e is None:
            continue
        print(f"{name:<16}{(a or 0):>9.1f}s{(e or 0):>9.1f}s{ratio(e, a):>13}")
    print(
        f"{'run (wall)':<16}{(act['wall_s'] or 0):>9.1f}s{plan['total_s']:>9.1f}s{ratio(plan['total_s'], act['wall_s']):>13}"
    )


def units(r: dict) -> dict[str, float | None]:
    """The costs a user scales by, from the actual run."""
    st, a = r["actual"]["stages"], r["actual"]
    per_q = {k: st[k] / a["questions"] for k in ("eval_rag", "eval_tuned_rag") if k in st and a["questions"]}
    return {
        "ingest s / 1k chunks": 1000 * st.get("ingest", 0) / max(1, a["chunks"]),
        "index s / 1k chunks": 1000 * st.get("index", 0) / max(1, a["chunks"]),
        "tune s / 1k tokens": 1000 * st["tune"] / a["train_tokens"] if a["train_tokens"] and "tune" in st else None,
        **{f"{k} s / question": v for k, v in per_q.items()},
    }


def print_growth(results: list[dict]) -> None:
    first = units(results[0])
    print("\n## unit costs and their growth from the first scale")
    print(f"{'unit':<28}" + "".join(f"{str(r['scale']) + 'x':>16}" for r in results))
    for key in first:
        cells = []
        for r in results:
            v, v0 = units(r).get(key), first[key]
            cells.append(f"{v:.2f} ({v / v0:.1f}x)" if v and v0 else "-")
        print(f"{key:<28}" + "".join(f"{c:>16}" for c in cells))


def recorded_plan(run_dir: Path) -> dict | None:
    """The plan the run printed before it started, as its manifest.json recorded it (None for older runs)."""
    man = json.loads((run_dir / "manifest.json").read_text())
    est = (man.get("plan") or {}).get("estimate")
    return est if isinstance(est, dict) and est.get("stages") else None


def compare_quickstart(run_dir: Path, plan_now: bool = False) -> None:
    """The plan a run printed before it started (its manifest's; with `plan_now`, or for runs without one, a plan
    made now from the config that run recorded) against that run's stage times and peak memory."""
    plan, source = recorded_plan(run_dir), "the plan recorded in its manifest.json before it ran"
    if plan is None or plan_now:
        from advisor.core.config import load_run_config

        cfg = load_run_config(run_dir)
        plan, source = estimate(cfg, measure_work(cfg), calibrate(cfg, progress=False)).to_dict(), "a plan made now"
    act = actual(run_dir)
    print(f"\n## the plan vs the run {run_dir.name}, {source} (target: total within +-35%, each stage within +-50%)")
    print(
        f"{'stage':<16}{'actual':>10}{'plan':>10}{'plan/actual':>13}{'within':>8}{'peak MB':>10}{'plan MB':>10}{'ratio':>7}"
    )
    for name, a in act["stages"].items():
        e = (plan["stages"].get(name) or {}).get("seconds")
        ok = "yes" if e and a and 0.5 <= e / a <= 1.5 else ("-" if a < 5 else "NO")
        pm, am = (plan["stages"].get(name) or {}).get("peak_mb"), act["peaks"].get(name)
        mem = f"{am or 0:>10,.0f}{pm or 0:>10,.0f}{ratio(pm, am):>7}" if pm and am else ""
        print(f"{name:<16}{a:>9.1f}s{(e or 0):>9.1f}s{ratio(e, a):>13}{ok:>8}{mem}")
    t = plan["total_s"] / act["wall_s"] if act["wall_s"] else None
    print(
        f"{'total':<16}{act['wall_s']:>9.1f}s{plan['total_s']:>9.1f}s{ratio(plan['total_s'], act['wall_s']):>13}"
        f"{('yes' if t and 0.65 <= t <= 1.35 else 'NO'):>8}   ({fmt_s(plan['total_s'])} planned)"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--scales", help="corpus sizes as multiples of the bundled sample (default 1,10,30; none with --quickstart)"
    )
    ap.add_argument("--steps", type=int, default=8, help="tuning.max_steps of every run")
    ap.add_argument("--questions", type=int, default=24, help="eval.limit of every run")
    ap.add_argument("--quickstart", type=Path, help="a finished quickstart run directory to hold the plan against")
    ap.add_argument(
        "--plan-now", action="store_true", help="with --quickstart: hold a plan made now against the run, not its own"
    )
    ap.add_argument("--keep", type=Path, help="keep the corpora and run directories here (default: a temp folder)")
    args = ap.parse_args(argv)
    load_config("quickstart")  # a bad preset fails here, before any work
    if args.quickstart:
        compare_quickstart(args.quickstart, args.plan_now)
    scales = args.scales if args.scales is not None else ("" if args.quickstart else "1,10,30")
    with tempfile.TemporaryDirectory() as tmp:
        work_dir = args.keep or Path(tmp)
        work_dir.mkdir(parents=True, exist_ok=True)
        results = []
        for scale in [int(s) for s in scales.split(",") if s]:
            results.append(run_scale(scale, work_dir, args.steps, args.questions))
            print_scale(results[-1])
        if results:
            print_growth(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
