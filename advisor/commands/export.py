"""advisor export: merge a run's LoRA adapter into its base model and save a plain transformers model.

    advisor export RUN_DIR --out merged/        # loads with AutoModelForCausalLM.from_pretrained("merged/")

The merge is done the right way (docs/architecture.md, 'Models offline'): into the base loaded WITHOUT quantization (fp32), never
into the 4-bit model (merging into NF4 weights shifts logits by up to 0.33).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from advisor.core.textio import read_json


def add_parser(sub) -> None:
    p = sub.add_parser(
        "export",
        help="merge the run's adapter into the fp32 base model and save a standalone model folder",
        description="Load the base model named in RUN_DIR/adapter/training.json without quantization (fp32), "
        "apply the LoRA adapter, merge it into the weights and save model + tokenizer to --out, which then loads "
        "with AutoModelForCausalLM.from_pretrained (or vLLM) with no PEFT. A full fine-tune is copied as is.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  advisor export runs/sample-smollm2-xxxx --out merged/",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run directory with a trained adapter/")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder to write the merged model into")
    p.add_argument("--force", action="store_true", help="replace --out when it already holds files")
    p.set_defaults(func=cmd_export)


def check_export_out(run_dir: Path, out: Path, force: bool) -> None:
    """--out is a new folder, an empty one, or (with --force, which replaces it) a folder of files that is
    neither the run nor a folder holding it."""
    from advisor.core.errors import AdvisorError
    from advisor.core.rundirs import check_out, is_index_dir, is_run_dir

    if not str(out).strip() or str(out) == ".":
        raise AdvisorError("--out must name a folder for the merged model (not empty, not '.')")
    check_out(out, force=True, kind="export")  # a file, or a path under a file, is an error
    o, r = out.resolve(), run_dir.resolve()
    if o == r or o in r.parents or r in o.parents:
        raise AdvisorError(f"--out {out} is the run directory {run_dir}, inside it or above it; pass a separate folder")
    if is_run_dir(out) or is_index_dir(out):
        raise AdvisorError(f"--out {out} is a run or index folder; --force would delete it, so pass a separate folder")
    if out.exists() and any(out.iterdir()) and not force:
        raise AdvisorError(f"{out} already holds files; choose another --out or pass --force to replace it")


def export_merged(run_dir: Path, out: Path, force: bool = False) -> dict:
    """Merge RUN_DIR/adapter into its fp32 base and save it to out atomically; returns the export manifest."""
    import os
    import shutil

    from advisor.core.artifacts import atomic_write_json
    from advisor.core.errors import AdvisorError
    from advisor.core.models import load_causal_model

    adapter = run_dir / "adapter"
    info_path = adapter / "training.json"
    if not info_path.is_file():
        raise AdvisorError(
            f"{run_dir} has no trained adapter ({info_path} missing); run 'advisor tune {run_dir}' first"
        )
    check_export_out(run_dir, out, force)
    info = read_json(info_path, "adapter training record", f"run advisor tune {run_dir} again")
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    if info.get("method") == "full":
        shutil.copytree(adapter, tmp)
        from advisor.core.models import load_tokenizer

        load_tokenizer(info["base_model"]).save_pretrained(tmp)
    else:
        from peft import PeftModel

        base, tok = load_causal_model(info["base_model"], "none", "cpu")  # fp32, never the 4-bit weights
        merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
        merged.save_pretrained(tmp)
        tok.save_pretrained(tmp)
    manifest = {
        "run_dir": str(run_dir),
        "base_model": info["base_model"],
        "merged_into": "fp32 (unquantized)",
        "trained_with_quantization": info.get("quantization"),
        "method": info.get("method"),
        "adapter_data_sha256": info.get("data_sha256"),
        "steps": info.get("steps"),
    }
    atomic_write_json(tmp / "export.json", manifest)
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, out)
    return manifest


def cmd_export(args) -> int:
    from advisor.pipeline import say

    m = export_merged(args.run_dir, args.out, args.force)
    say(f"merged {m['method']} adapter ({m['steps']} steps) into fp32 {m['base_model']}: {args.out}")
    print(args.out)
    return 0
