"""advisor ls: what can be named — config presets, weight presets, bundled models, arms, metrics, probe sets."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser(
        "ls",
        help="list presets, bundled models, arms, metrics and probe sets",
        description="List the names the config and the CLI accept.",
    )
    p.set_defaults(func=cmd_ls)


def cmd_ls(args) -> int:
    from advisor.core.advice import BUDGETS, CHANGE_RATES, CRITERIA, PRESETS
    from advisor.core.config import ARMS, PRESETS_DIR, preset_names
    from advisor.core.models import BUNDLED, _package_dir
    from evalsuite.metrics import METRICS
    from evalsuite.probes import probe_names

    print("config presets (--config NAME):")
    for name in preset_names():
        head = (PRESETS_DIR / f"{name}.yaml").read_text().splitlines()
        about = next(
            (line.lstrip("# ").strip() for line in head if line.startswith("# ") and "advisor" not in line), ""
        )
        print(f"  {name:<16} {about}")
    print("weight presets (recommend.preset):")
    for name, w in PRESETS.items():
        print(f"  {name:<16} " + ", ".join(f"{k} {v:.2f}" for k, v in w.items()))
    print(f"criteria: {', '.join(CRITERIA)}")
    print("situation facts (recommend.facts / advisor recommend --facts):")
    print(
        f"  knowledge_change={'|'.join(CHANGE_RATES)}, budget={'|'.join(BUDGETS)}, latency_target_s=SECONDS (0 = none),"
    )
    print("  citations_required=true|false, style_learning=true|false, data_privacy=true|false")
    print("bundled models (--model / --embedder):")
    for b in BUNDLED.values():
        state = "installed" if _package_dir(b.module) else f"not installed: {b.install}"
        print(f"  {b.name:<24} {b.kind:<9} {b.about} [{b.licence}; {state}]")
    print(f"arms: {', '.join(ARMS)}")
    print(f"metrics: {', '.join(METRICS.names())}")
    names = probe_names()
    shown = [n for n in names if not n.startswith("mmlu_")]
    mmlu = [n for n in names if n.startswith("mmlu_")]
    print(
        f"probe sets: {', '.join(shown)}" + (f", mmlu_<subject> ({len(mmlu)} subjects, e.g. {mmlu[0]})" if mmlu else "")
    )
    return 0
