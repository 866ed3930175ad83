"""Slow tier: `advisor run` end to end on the bundled SmolLM2-135M (NF4 QLoRA) with a minuscule config,
offline, in a fresh model cache. Run with: pytest -m slow"""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_advisor_run_end_to_end_on_the_bundled_model(tmp_path):
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "ADVISOR_HOME": str(tmp_path / "home"),
        "HF_HOME": str(tmp_path / "hf"),
    }
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "advisor", "run", "--config", "smoke", "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1500)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip().splitlines()[-1] == str(out)
    assert "verdict:" in r.stderr

    for rel in [
        "config.yaml",
        "manifest.json",
        "chunks.jsonl",
        "index/index.faiss",
        "adapter/adapter_config.json",
        "eval/metrics.json",
        "recommendation.json",
        "report.md",
    ]:
        assert (out / rel).exists(), rel
    metrics = json.loads((out / "eval/metrics.json").read_text())
    assert set(metrics["arms"]) == {"base", "rag", "tuned", "tuned_rag"}
    rec = json.loads((out / "recommendation.json").read_text())
    assert rec["verdict"] in ("rag", "fine-tune", "both")
    manifest = json.loads((out / "manifest.json").read_text())
    assert all(st["status"] == "done" for st in manifest["stages"].values())
    info = json.loads((out / "adapter/training.json").read_text())
    assert info["method"] == "qlora" and info["quantization"] == "nf4" and info["steps"] == 3
    assert info["dequantized_once"] is True  # a CPU tune multiplies by copies made once (tuning.dequantize_once)
    from advisor.core.models import resolve_cpu_matmul  # in bfloat16 on a CPU with AVX512-BF16, else float32

    assert info["cpu_matmul_dtype"] == resolve_cpu_matmul("auto", "cpu")
    assert ("multiplied in bfloat16" in (out / "report.md").read_text()) == (info["cpu_matmul_dtype"] == "bfloat16")
    assert metrics["generator"]["cpu_matmul_dtype"] == info["cpu_matmul_dtype"]  # the arms multiplied as the tune did
    # tuning.prompt_grad_tokens ran (SmolLM2's cache is plain), its forward-only positions counted per step
    assert info["prompt_grad_tokens"] == 64
    assert info["detached_tokens"] == sum(h["detached_tokens"] for h in info["history"])

    # The adapter is a plain PEFT folder: it loads onto the converted base model.
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tmp_path / "home" / "models" / "smollm2-135m-instruct")
    model = PeftModel.from_pretrained(base, out / "adapter")
    assert sum("lora_" in n for n, _ in model.named_parameters()) > 0

    # A rerun skips every finished stage (the metrics stage rescores the saved answers each time, by design).
    ended = {k: v["ended"] for k, v in manifest["stages"].items() if k != "metrics"}
    r2 = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert r2.returncode == 0, r2.stderr[-2000:]
    stages2 = json.loads((out / "manifest.json").read_text())["stages"]
    assert {k: v["ended"] for k, v in stages2.items() if k != "metrics"} == ended
