"""The tune stage on the tiny random Llama: label-only loss, checkpoints that survive kill -9, refusal to
resume under another config, early stopping, the manifest and plot, bad input (exit 2), export."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from advisor.cli import main as cli
from advisor.core.artifacts import RunDir
from advisor.core.config import dump_config, load_config

ROOT = Path(__file__).resolve().parent.parent


def make_run(path: Path, tiny_model_dir, tiny_corpus, tiny_qa, tiny_train_qa, *overrides: str) -> Path:
    """An ingested run directory (config.yaml + chunks.jsonl) on the tiny model, ready for the tune stage."""
    from advisor.pipeline import ingest, preflight, resolve_inputs

    cfg = resolve_inputs(
        load_config(
            "smoke",
            [
                f"corpus.path={tiny_corpus}",
                f"corpus.qa={tiny_qa}",
                f"corpus.train_qa={tiny_train_qa}",
                f"model.spec={tiny_model_dir}",
                "model.quantization=none",
                "retrieval.embedder=hashing",
                "chunking.size=40",
                "chunking.overlap=8",
                "tuning.max_steps=4",
                "tuning.batch_size=4",
                *overrides,
            ],
        )
    )
    inputs = preflight(cfg)
    run = RunDir(path)
    run.init_manifest(dump_config(cfg), inputs)
    ingest(run, cfg, inputs["corpus"])
    return run.path


def training(run: Path) -> dict:
    return json.loads((run / "adapter" / "training.json").read_text())


def lora_model(tiny_model_dir, *overrides: str):
    """The tiny model with a LoRA adapter built as the tune stage builds it, its B matrices random (they start at
    zero) so that the adapter matters to the loss and every LoRA weight gets a gradient."""
    import torch

    from tuning.train import build_trainable_model

    cfg = load_config(None, [f"model.spec={tiny_model_dir}", "tuning.lora.dropout=0", *overrides])
    torch.manual_seed(0)
    model, params = build_trainable_model(cfg, "cpu")
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)
    return model, params


def tune_process(run: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ADVISOR_QUIET": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "tuning.train", str(run)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_label_only_loss_equals_the_models_own_loss(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM

    from tuning.train import IGNORE, collate, label_only_loss_module

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    rows = [
        {"input_ids": list(range(5, 25)), "labels": [IGNORE] * 12 + list(range(17, 25))},
        {"input_ids": list(range(30, 41)), "labels": list(range(30, 41))},
    ]
    batch = collate(rows, pad_id=0)
    s, n = label_only_loss_module(model)(**batch)
    assert n == 8 + 10  # a label at position 0 has no predicting position
    ref = model(**batch).loss
    assert torch.allclose(s / n, ref, atol=1e-5)


def test_gradient_checkpointing_gives_the_same_loss_and_gradients(tiny_model_dir):
    import torch

    from tuning.train import collate, label_only_loss_module

    batch = collate([{"input_ids": list(range(5, 40)), "labels": list(range(5, 40))}], 0)
    out = []
    for ckpt in (False, True):
        model, params = lora_model(tiny_model_dir, "model.quantization=none", f"tuning.gradient_checkpointing={ckpt}")
        s, n = label_only_loss_module(model)(**batch)
        (s / n).backward()
        out.append((float(s / n), torch.cat([p.grad.flatten() for p in params])))
    assert out[0][0] == pytest.approx(out[1][0], rel=1e-6)
    assert torch.allclose(out[0][1], out[1][1], atol=1e-6) and out[0][1].abs().max() > 1e-4


def test_a_micro_batch_split_by_max_batch_tokens_gives_the_same_gradients(tiny_model_dir):
    import torch

    from tuning.train import collate, label_only_loss_module, n_labels, token_pieces

    rows = [
        {"input_ids": list(range(5, 5 + n)), "labels": [-100] * (n // 2) + list(range(5 + n // 2, 5 + n))}
        for n in (12, 20, 61, 64)
    ]
    model, params = lora_model(tiny_model_dir, "model.quantization=none")
    loss_mod = label_only_loss_module(model)
    grads = []
    for max_tokens in (0, 128):
        for p in params:
            p.grad = None
        pieces = token_pieces([len(r["input_ids"]) for r in rows], max_tokens)
        n = sum(n_labels(r) for r in rows)
        for piece in pieces:
            s, _ = loss_mod(**collate([rows[j] for j in piece], 0))
            (s / n).backward()
        grads.append(torch.cat([p.grad.flatten() for p in params]))
    assert token_pieces([12, 20, 61, 64], 128) == [[0, 1], [2, 3]] and token_pieces([12, 20], 0) == [[0, 1]]
    assert token_pieces([300, 10], 128) == [[0], [1]]  # a row longer than the cap runs alone
    assert torch.allclose(grads[0], grads[1], atol=1e-6) and grads[0].abs().max() > 1e-4


def test_a_shared_prefix_runs_once_and_gives_the_same_loss_and_gradients(tiny_model_dir):
    """tuning.shared_prefix: rows that begin with the same untrained tokens (a chat template and instruction)
    compute them once; padded rows of other lengths, a loss only after the prefix."""
    import torch

    from tuning.train import IGNORE, collate, label_only_loss_module

    head = list(range(5, 17))  # 12 shared tokens, no loss on them
    rows = [
        {"input_ids": head + own, "labels": [IGNORE] * (len(head) + 2) + own[2:]}
        for own in (list(range(40, 46)), list(range(50, 59)), list(range(60, 64)))
    ]
    batch = collate(rows, 0)
    model, params = lora_model(tiny_model_dir, "model.quantization=none")
    calls = []
    model.get_base_model().get_decoder().register_forward_hook(
        lambda m, a, kw, out: calls.append(kw["input_ids"].shape), with_kwargs=True
    )
    out = []
    for shared in (False, True):
        for p in params:
            p.grad = None
        loss_mod = label_only_loss_module(model, shared_prefix=shared)
        s, n = loss_mod(**batch)
        (s / n).backward()
        out.append((float(s), n, torch.cat([p.grad.flatten() for p in params]), loss_mod.prefix_tokens_saved))
    assert calls == [(3, 21), (1, 12), (3, 9)]  # the whole rows; then the prefix once and the rows' own tokens
    assert out[1][3] == 12 * 2 and out[0][3] == 0
    assert out[0][1] == out[1][1] == 4 + 7 + 2
    assert out[0][0] == pytest.approx(out[1][0], rel=1e-5)
    assert torch.allclose(out[0][2], out[1][2], atol=1e-6) and out[0][2].abs().max() > 1e-4


def test_passages_run_without_gradients_and_the_rest_learns_as_in_the_whole_pass(tiny_model_dir):
    """tuning.prompt_grad_tokens: a long prompt's positions before its last N run once without gradients. The
    same loss; the LoRA gradients are the whole pass's with every contribution of those positions removed (the
    reference: the whole pass, its gradient zeroed at each LoRA output there); a short prompt runs whole."""
    import torch

    from tuning.train import IGNORE, collate, label_only_loss_module

    long_rows = [  # 30 prompt tokens (passages, question), then the answer; padded rows of other lengths
        {"input_ids": list(range(5, 35)) + ans, "labels": [IGNORE] * 30 + ans}
        for ans in ([40, 41, 42], [50, 51, 52, 53, 54])
    ]
    batch = collate(long_rows, 0)
    model, params = lora_model(tiny_model_dir, "model.quantization=none")
    calls = []
    model.get_base_model().get_decoder().register_forward_hook(
        lambda m, a, kw, out: calls.append(kw["input_ids"].shape), with_kwargs=True
    )

    def grads(loss_mod, b) -> tuple[float, int, torch.Tensor]:
        for p in params:
            p.grad = None
        s, n = loss_mod(**b)
        (s / n).backward()
        return float(s), n, torch.cat([p.grad.flatten() for p in params])

    cut = label_only_loss_module(model, prompt_grad_tokens=12)
    s_cut, n_cut, g_cut = grads(cut, batch)
    assert calls == [(2, 18), (2, 17)] and cut.detached_tokens == 2 * 18  # 30 - 12 positions without gradients

    def no_gradient_before_18(mod, args, out) -> None:
        out.register_hook(lambda g: torch.cat([0 * g[:, :18], g[:, 18:]], 1))

    zero_before = [
        m.register_forward_hook(no_gradient_before_18)
        for name, m in model.named_modules()
        if name.endswith("lora_B.default")
    ]
    s_ref, n_ref, g_ref = grads(label_only_loss_module(model), batch)
    for h in zero_before:
        h.remove()
    _, _, g_whole = grads(label_only_loss_module(model), batch)
    assert n_cut == n_ref == 3 + 5 and s_cut == pytest.approx(s_ref, rel=1e-5)
    assert torch.allclose(g_cut, g_ref, atol=1e-6) and g_cut.abs().max() > 1e-4
    assert not torch.allclose(g_cut, g_whole, atol=1e-6)  # the passages' own contributions are gone
    calls.clear()
    short = collate([{"input_ids": list(range(5, 15)) + [40], "labels": [IGNORE] * 10 + [40]}], 0)
    assert torch.allclose(grads(cut, short)[2], grads(label_only_loss_module(model), short)[2], atol=1e-6)
    with torch.no_grad():  # a validation pass runs whole
        cut(**batch)
    assert calls == [(1, 11)] * 2 + [(2, 35)] and cut.detached_tokens == 2 * 18


def test_a_pass_whose_rows_differ_from_the_start_or_learn_from_the_first_token_runs_whole(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM

    from tuning.train import IGNORE, collate, label_only_loss_module, shared_prefix_len

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    text = collate([{"input_ids": list(range(5, 25)), "labels": list(range(5, 25))}] * 2, 0)  # corpus text
    other = collate([{"input_ids": [k] + list(range(5, 25)), "labels": [IGNORE] * 21} for k in (3, 4)], 0)
    assert shared_prefix_len(**text) == 0 and shared_prefix_len(**other) == 0
    loss_mod = label_only_loss_module(model, shared_prefix=True)
    s, n = loss_mod(**text)
    assert loss_mod.prefix_tokens_saved == 0 and n == 2 * 19
    assert torch.allclose(s / n, model(**text).loss, atol=1e-5)


def test_a_cpu_tune_dequantizes_the_4bit_weights_once_with_the_same_gradients(tiny_model_dir, monkeypatch):
    """tuning.dequantize_once: the training step multiplies by copies made at load, not rebuilt per pass."""
    import bitsandbytes.functional as bnbf
    import torch

    from advisor.core.decoding import dequantized_copies
    from tuning.train import collate, label_only_loss_module

    batch = collate([{"input_ids": list(range(5, 40)), "labels": list(range(5, 40))}], 0)
    real, calls = bnbf.dequantize_4bit, []
    monkeypatch.setattr(bnbf, "dequantize_4bit", lambda *a, **k: calls.append(1) or real(*a, **k))
    out = []
    for once in (False, True):
        # nf4, the default; float32 copies: bitsandbytes' own products (bfloat16 ones: the next test)
        model, params = lora_model(tiny_model_dir, f"tuning.dequantize_once={once}", "model.cpu_matmul_dtype=float32")
        assert any(type(m).__name__ == "Linear4bit" for m in model.modules())
        calls.clear()
        s, n = label_only_loss_module(model)(**batch)
        (s / n).backward()
        out.append((float(s / n), torch.cat([p.grad.flatten() for p in params]), len(calls), dequantized_copies(model)))
    assert out[0][2] > 0 and out[0][3] is False  # bitsandbytes rebuilt the weights in the step
    assert out[1][2] == 0 and out[1][3] is True
    assert out[0][0] == pytest.approx(out[1][0], rel=1e-6)
    assert torch.allclose(out[0][1], out[1][1], atol=1e-6) and out[0][1].abs().max() > 1e-4


def test_a_cpu_tune_with_bfloat16_copies_trains_every_lora_weight_near_the_float32_gradients(tiny_model_dir):
    """model.cpu_matmul_dtype=bfloat16: the frozen 4-bit weights are multiplied as bfloat16 copies; the loss and
    every LoRA weight's gradient stay close to the float32 copies' (the LoRA weights themselves stay float32)."""
    import torch

    from advisor.core.decoding import copies_dtype
    from tuning.train import collate, label_only_loss_module

    batch = collate([{"input_ids": list(range(5, 40)), "labels": list(range(5, 40))}], 0)
    out = {}
    for dtype in ("float32", "bfloat16"):
        model, params = lora_model(tiny_model_dir, f"model.cpu_matmul_dtype={dtype}")
        assert copies_dtype(model) == dtype and {p.dtype for p in params} == {torch.float32}
        s, n = label_only_loss_module(model)(**batch)
        (s / n).backward()
        out[dtype] = (float(s / n), torch.cat([p.grad.flatten() for p in params]))
    (loss32, g32), (loss16, g16) = out["float32"], out["bfloat16"]
    assert loss16 == pytest.approx(loss32, rel=2e-2) and loss16 != loss32  # really computed in bfloat16
    assert torch.nn.functional.cosine_similarity(g16, g32, dim=0) > 0.99 and bool((g16 != 0).all())


def test_kill_9_then_rerun_resumes_and_ends_at_the_same_step_and_a_changed_config_is_refused(
    tmp_path, capfd, tiny_model_dir, tiny_corpus, tiny_qa, tiny_train_qa
):
    from tuning.train import run_tune_stage

    args = (
        tiny_model_dir,
        tiny_corpus,
        tiny_qa,
        tiny_train_qa,
        "tuning.max_steps=30",
        "tuning.save_every=2",
        "tuning.batch_size=2",
        "tuning.max_seq_len=128",
    )
    ref = make_run(tmp_path / "ref", *args)
    run_tune_stage(ref)
    uninterrupted = training(ref)

    run = make_run(tmp_path / "crash", *args)
    ck_root = run / "adapter" / "checkpoints"
    p = tune_process(run)  # only the killed run needs its own process; the others run in this one
    deadline = time.time() + 240
    while not list(ck_root.glob("step-*")) and p.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert p.returncode == -signal.SIGKILL, "training finished before it could be killed"
    killed_at = max(int(c.name.split("-")[1]) for c in ck_root.glob("step-*"))
    assert 0 < killed_at < 30 and not (run / "adapter" / "training.json").exists()

    # A rerun under another config refuses to resume, says why, exits 2 and keeps the checkpoint.
    cfg_path = run / "config.yaml"
    good = cfg_path.read_text()
    cfg_path.write_text(good.replace("  lr: 0.0002", "  lr: 0.001"))
    assert cli(["tune", str(run)]) == 2
    err = capfd.readouterr().err
    assert "refusing to resume" in err and "tuning.lr: 0.0002 -> 0.001" in err
    assert list(ck_root.glob("step-*")), "the checkpoint was lost"

    cfg_path.write_text(good)
    run_tune_stage(run)
    resumed = training(run)
    assert resumed["resumed_from_step"] >= killed_at
    assert resumed["steps"] == uninterrupted["steps"] == 30
    assert [h["step"] for h in resumed["history"]] == list(range(1, 31))
    # Same data order, RNG and optimizer state: the resumed run reproduces the uninterrupted one.
    assert resumed["final_train_loss"] == pytest.approx(uninterrupted["final_train_loss"], rel=1e-3)
    assert resumed["tokens_seen"] == uninterrupted["tokens_seen"]
    assert not ck_root.exists()  # checkpoints are dropped once the adapter is saved


def test_tune_on_a_run_directory_with_overrides_retrains_that_run_on_its_own_corpus(tmp_path, finished_tiny_run, capfd):
    """`advisor tune RUN_DIR key=value` is the run's own config with the change, not a new run of the bundled
    sample written into it (which it was until 2026-12-07: it re-ingested the sample into the run directory)."""
    import shutil

    import yaml

    run = tmp_path / "run"
    shutil.copytree(finished_tiny_run, run)
    chunks, before = (run / "chunks.jsonl").read_bytes(), yaml.safe_load((run / "config.yaml").read_text())
    assert before["tuning"]["max_steps"] == 2
    assert cli(["tune", str(run), "tuning.max_steps=3"]) == 0
    after = yaml.safe_load((run / "config.yaml").read_text())
    assert after["tuning"]["max_steps"] == 3 and training(run)["steps"] == 3
    assert {k: v for k, v in after.items() if k != "tuning"} == {k: v for k, v in before.items() if k != "tuning"}
    assert (run / "chunks.jsonl").read_bytes() == chunks  # the run's corpus, not the bundled sample's
    assert "the run's evaluation predates this adapter" in capfd.readouterr().err


def test_validation_runs_at_the_curve_snapshots_and_the_last_step():
    """By default the validation loss is measured where the adapter is saved for the learning-vs-forgetting curve
    and after the last step; tuning.eval_every, early stopping or a run without snapshots validate at a fixed
    interval (about four times), the last step always included."""
    from advisor.core.config import TuningConfig
    from tuning.train import curve_steps, validation_steps

    tc = TuningConfig()
    assert curve_steps(60, tc) == [20, 40] and validation_steps(60, tc) == {20, 40, 60}
    tc.curve_points = 0
    assert validation_steps(60, tc) == {15, 30, 45, 60} and validation_steps(62, tc) == {15, 30, 45, 60, 62}
    tc.curve_points, tc.early_stopping_patience = 2, 2  # early stopping needs its regular checks
    assert validation_steps(60, tc) == {15, 30, 45, 60}
    tc.early_stopping_patience, tc.eval_every = 0, 25
    assert validation_steps(60, tc) == {25, 50, 60} and validation_steps(3, tc) == {3}
    tc.eval_every, tc.method = 0, "full"  # no snapshots for full fine-tuning
    assert curve_steps(60, tc) == [] and validation_steps(60, tc) == {15, 30, 45, 60}


def test_manifest_plot_early_stopping_and_export(tmp_path, tiny_model_dir, tiny_corpus, tiny_qa, tiny_train_qa):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    # lr far too high: validation loss rises after the first evaluations, patience 2 stops the run
    run = make_run(
        tmp_path / "run",
        tiny_model_dir,
        tiny_corpus,
        tiny_qa,
        tiny_train_qa,
        "tuning.max_steps=30",
        "tuning.lr=0.05",
        "tuning.eval_every=1",
        "tuning.early_stopping_patience=2",
        "tuning.warmup_ratio=0",
    )
    assert cli(["tune", str(run)]) == 0
    info = training(run)
    for key in (
        "base_model",
        "quantization",
        "data_sha256",
        "steps",
        "final_train_loss",
        "final_val_loss",
        "wall_s",
        "peak_rss_mb",
        "tokens_seen",
        "history",
    ):
        assert info[key] is not None, key
    assert info["stopped_early"] and info["steps"] < 30
    # the chat-formatted questions share their template's opening: run once per pass (tuning.shared_prefix);
    # an unquantized model has no 4-bit weights to dequantize once
    assert info["shared_prefix"] is True and info["prefix_tokens_saved"] > 0 and info["dequantized_once"] is False
    # tuning.max_batch_tokens / low_memory_heap 'auto': the CPU's memory levers, recorded as they ran; `advisor tune`
    # trains in a process of its own started under mimalloc (tuning.allocator auto), as a run's tuning track does,
    # so glibc's low-memory heap is not set
    assert info["device"] == "cpu" and (info["max_batch_tokens"], info["low_memory_heap"]) == (768, False)
    assert info["heap_mmap_threshold"] == 0 and info["allocator"] == "libmimalloc.so"
    assert info["lora"]["fast_dropout"] is True  # tuning.lora.fast_dropout auto: on a CPU
    vals = [h["val_loss"] for h in info["history"]]
    # validated every step: the best, then two that did not improve on it by 1e-4 (patience 2), then the stop
    assert info["steps"] == info["best_step"] + 2 == len(vals) and info["best_step"] == vals.index(min(vals)) + 1
    assert all(v > min(vals[:-2]) - 1e-4 for v in vals[-2:])
    peaks = [h["peak_rss_mb"] for h in info["history"]]  # the process's memory over the run, step by step
    # never down by more than the kernel's batched per-thread RSS counters (VmHWM read 576.6 then 576.5 MB once,
    # under mimalloc, whose frees return pages to the system as the run goes)
    assert all(b >= a - 1.0 for a, b in zip(peaks, peaks[1:])), peaks
    assert all(h["rss_mb"] <= h["peak_rss_mb"] + 1.0 for h in info["history"])
    assert peaks[-1] <= info["peak_rss_mb"]
    png = run / "adapter" / "val_loss.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    assert cli(["export", str(run), "--out", str(tmp_path / "merged")]) == 0
    assert cli(["export", str(run), "--out", str(tmp_path / "merged")]) == 2  # no silent overwrite
    ids = torch.tensor([[5, 17, 42, 99, 123, 7]])
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        base_logits = base(ids).logits
        on = PeftModel.from_pretrained(base, run / "adapter")(ids).logits
        out = merged(ids).logits
    assert (on - base_logits).abs().max() > 1e-3  # the adapter does something
    assert torch.allclose(out, on, atol=1e-4)


@pytest.mark.parametrize(
    "with_train_qa, overrides, message",
    [
        (False, ["tuning.synthetic_qa=false"], "synthetic_qa"),  # removed in favour of generated training questions
        (
            True,
            ["tuning.use_corpus_text=false", "tuning.max_seq_len=32", "tuning.raft=false"],
            "too small for any training example",
        ),
        (True, ["tuning.lora.r=0"], "tuning.lora.r=0 must be a positive integer"),
        (True, ["tuning.lora.target_modules=qproj,v_proj"], "is not a linear layer of model"),
        (True, ["model.quantization=nf4", "tuning.method=full"], "needs model.quantization=none"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_2(
    tmp_path, capfd, tiny_model_dir, tiny_corpus, tiny_qa, tiny_train_qa, with_train_qa, overrides, message
):
    flags = [f"--corpus={tiny_corpus}", f"--qa={tiny_qa}"] + ([f"--train-qa={tiny_train_qa}"] if with_train_qa else [])
    base = [
        f"model.spec={tiny_model_dir}",
        "model.quantization=none",
        "retrieval.embedder=hashing",
        "chunking.size=40",
        "chunking.overlap=8",
        "tuning.max_steps=2",
    ]
    rc = cli(["tune", *flags, "--config", "smoke", "--out", str(tmp_path / "run"), *base, *overrides])
    errors = [line for line in capfd.readouterr().err.splitlines() if "error" in line.lower()]
    assert rc == 2 and len(errors) == 1 and errors[0].startswith("advisor: error: ") and message in errors[0], errors


@pytest.mark.slow
def test_the_tune_stage_runs_unchanged_under_accelerate_launch(
    tmp_path, tiny_model_dir, tiny_corpus, tiny_qa, tiny_train_qa
):
    run = make_run(tmp_path / "run", tiny_model_dir, tiny_corpus, tiny_qa, tiny_train_qa, "tuning.max_steps=3")
    launcher = Path(sys.executable).parent / "accelerate"
    p = subprocess.run(
        [
            str(launcher),
            "launch",
            "--cpu",
            "--num_processes",
            "1",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "-m",
            "tuning.train",
            str(run),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "ADVISOR_QUIET": "1"},
    )
    assert p.returncode == 0, p.stderr[-2000:]
    info = training(run)
    assert info["steps"] == 3 and info["processes"] == 1 and (run / "adapter" / "adapter_model.safetensors").exists()


def test_a_checkpoint_from_before_a_memory_setting_left_the_fingerprint_still_resumes(tmp_path):
    from advisor.core.config import Config
    from advisor.core.errors import AdvisorError
    from tuning.train import check_resumable, fingerprint

    cfg = Config()
    old = fingerprint(cfg, "abc")
    old["tuning"] |= {"low_memory_heap": False, "max_batch_tokens": 2048}  # recorded before they left it
    ck = tmp_path / "step-0000100"
    ck.mkdir()
    (ck / "checkpoint.json").write_text(json.dumps({"fingerprint": old, "step": 100}))
    assert check_resumable(ck, fingerprint(cfg, "abc"))["step"] == 100
    cfg.tuning.lr = 1e-4  # a setting that changes the weights is still refused, by name
    with pytest.raises(AdvisorError, match=r"tuning\.lr: 0\.0002 -> 0\.0001"):
        check_resumable(ck, fingerprint(cfg, "abc"))


def test_closed_book_abstention_questions_come_only_from_a_given_training_set_unless_asked(
    tmp_path, tiny_model_dir, tiny_corpus, tiny_qa, tiny_train_qa
):
    from tuning.train import abstention_source, sft_inputs_hash

    def sft(train_file, *overrides):
        run, cfg, examples, report = sft_with_generated(
            tmp_path, tiny_model_dir, tiny_corpus, tiny_qa, train_file, "tuning.raft=false", *overrides
        )
        return run, cfg, report, {x["question"] for x in examples if x["kind"] == "abstain"}

    # The default: the generated unanswerable questions are never trained closed book (they taught an adapter to
    # decline questions it had not seen); the report and the note say where abstention came from.
    run, cfg, report, asked = sft(tiny_train_qa)
    assert asked == set() and report["closed_book_abstention"] == "none" and abstention_source(run, cfg) == ""
    assert not wants_qa(cfg)
    # Asked for: the generated ones are trained closed book, and the sft stage's input hash tells the two apart.
    run_any, cfg_any, report, asked = sft(tiny_train_qa, "tuning.abstain_questions=any")
    assert asked == {g["question"] for g in GENERATED} and report["closed_book_abstention"] == "generated"
    assert wants_qa(cfg_any) and sft_inputs_hash(run, cfg) != sft_inputs_hash(run_any, cfg_any)
    # A training set given with its own unanswerable items: those are trained, under either setting.
    own = tmp_path / "own.jsonl"
    own.write_text(
        tiny_train_qa.read_text()
        + json.dumps({"id": "o1", "question": "What colour is the Ormsby ferry's funnel?", "unanswerable": True})
        + "\n"
    )
    for setting in ("given", "any"):
        _, _, report, asked = sft(own, f"tuning.abstain_questions={setting}")
        assert asked == {"What colour is the Ormsby ferry's funnel?"} and report["closed_book_abstention"] == "given"
    with pytest.raises(Exception, match="abstain_questions"):
        load_config(None, ["tuning.abstain_questions=generated"])


def test_raft_unanswerable_teaches_the_unanswerable_questions_in_context_and_leaves_the_other_examples_as_they_were(
    tmp_path, tiny_model_dir, tiny_corpus, tiny_qa, tiny_train_qa
):
    from advisor.core.answer import ABSTAIN
    from tuning.train import both_adapter_note, sft_inputs_hash

    def sft(*overrides):
        return sft_with_generated(
            tmp_path, tiny_model_dir, tiny_corpus, tiny_qa, tiny_train_qa, "tuning.raft_share=1", *overrides
        )

    run, cfg, off, report = sft()
    assert "n_raft_unanswerable" not in report and not wants_qa(cfg)
    run_on, cfg_on, on, report_on = sft("tuning.raft_unanswerable=true")
    added = [x for x in on if x["kind"] == "raft" and x["question"] in {g["question"] for g in GENERATED}]
    # each generated unanswerable question once, among passages (none of them its answer: it has none), closed book
    # never (tuning.abstain_questions=given), target the abstention answer
    assert sorted(x["question"] for x in added) == sorted(g["question"] for g in GENERATED)
    assert all(not x["oracle"] and ABSTAIN in x["completion"] and x["prompt"].count("] (") == 3 for x in added)
    assert not [x for x in on if x["kind"] == "abstain"]
    assert report_on["n_raft_unanswerable"] == 3 and report_on["n_raft"] == report["n_raft"] + 3
    # every other example is what it was without the setting; the qa stage runs to make them; the hash moves
    rest = sorted(json.dumps(x, sort_keys=True) for x in on if x not in added)
    assert rest == sorted(json.dumps(x, sort_keys=True) for x in off)
    assert wants_qa(cfg_on) and sft_inputs_hash(run, cfg) != sft_inputs_hash(run_on, cfg_on)
    assert "3 unanswerable questions among their best passages" in both_adapter_note(report_on, cfg_on)
    # capped like the abstention questions: abstain_share of the answerable training questions
    _, _, capped, report_cap = sft("tuning.raft_unanswerable=true", "tuning.abstain_share=0.1")
    assert report_cap["n_raft_unanswerable"] == 1


def cfg_on_text(cfg):
    """The same config with the training questions unset: auto then trains the corpus text."""
    import copy

    out = copy.deepcopy(cfg)
    out.corpus.train_qa = None
    return out


def test_corpus_text_auto_trains_the_text_only_when_no_training_questions_are_given(
    tmp_path, tiny_model_dir, tiny_corpus, tiny_qa, tiny_train_qa
):
    from transformers import AutoTokenizer

    from tuning.train import both_adapter_note, training_set

    def kinds(examples) -> set[str]:
        return {x["kind"] for x in examples}

    # given training questions: auto leaves the corpus text out, and the adapter's note says why
    run, cfg, examples, report = sft_with_generated(tmp_path, tiny_model_dir, tiny_corpus, tiny_qa, tiny_train_qa)
    assert cfg.tuning.use_corpus_text == "auto" and "text" not in kinds(examples) and "qa" in kinds(examples)
    assert not cfg.trains_corpus_text() and cfg_on_text(cfg).trains_corpus_text()
    assert "no corpus text (tuning.use_corpus_text=auto: training questions were given)" in both_adapter_note(
        report, cfg
    )
    # asked for, the text is trained all the same
    _, cfg_on, with_text, report_on = sft_with_generated(
        tmp_path, tiny_model_dir, tiny_corpus, tiny_qa, tiny_train_qa, "tuning.use_corpus_text=true"
    )
    assert "text" in kinds(with_text) and report_on["n_text_segments"] > 0
    assert f"{report_on['n_text_segments']} corpus-text segments" in both_adapter_note(report_on, cfg_on)
    # no training questions given (the generated ones stand in): auto trains the text
    cfg = cfg_on_text(cfg)
    train, val, report_gen = training_set(run, cfg, AutoTokenizer.from_pretrained(tiny_model_dir))
    assert "text" in kinds(train + val) and report_gen["n_text_segments"] == report_on["n_text_segments"]
    with pytest.raises(Exception, match="use_corpus_text"):
        load_config(None, ["tuning.use_corpus_text=sometimes"])


def wants_qa(cfg) -> bool:
    from advisor.pipeline import wants_qa_stage

    return wants_qa_stage(cfg, tuning=True)


# Unanswerable questions as the qa stage would generate them (RUN_DIR/qa/train.jsonl), for the abstention tests.
GENERATED = [
    {"id": f"g{i}", "question": f"Who painted the Ormsby pier mural number {i}?", "answers": [], "unanswerable": True}
    for i in range(3)
]


def sft_with_generated(tmp_path, tiny_model_dir, tiny_corpus, tiny_qa, train_file, *overrides):
    """A fresh run directory whose qa stage generated GENERATED; its training examples (train + val) and report,
    with every abstention question allowed (tuning.abstain_share=1)."""
    from transformers import AutoTokenizer

    from advisor.core.config import load_run_config
    from tuning.train import training_set

    run = RunDir(
        make_run(
            tmp_path / f"r{len(list(tmp_path.iterdir()))}",
            tiny_model_dir,
            tiny_corpus,
            tiny_qa,
            train_file,
            "tuning.abstain_share=1",
            *overrides,
        )
    )
    (run / "qa").mkdir()
    (run / "qa" / "train.jsonl").write_text("".join(json.dumps(g) + "\n" for g in GENERATED))
    cfg = load_run_config(run.path)
    train, val, report = training_set(run, cfg, AutoTokenizer.from_pretrained(tiny_model_dir))
    return run, cfg, train + val, report


def test_the_training_helpers_examples_run():
    """token_pieces and shared_prefix_len document themselves with >>> examples; they must stay true."""
    import doctest

    import tuning.train

    res = doctest.testmod(tuning.train)
    assert res.attempted >= 2 and res.failed == 0
