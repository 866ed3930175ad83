"""Stage `curve`: learning vs forgetting along the training run (Biderman et al. 2024 report LoRA this way).

    advisor run ...            # runs it after the probes when the adapter kept snapshots (tuning.curve_points)

For the base model (step 0), each adapter snapshot in adapter/curve/step-N/ and the final adapter, it
measures domain accuracy (the tuned arm, closed book, on a fixed slice of the answerable eval questions)
and general-knowledge probe accuracy (the first items of the first probe set). Step 0 and the final point
are read from the base and tuned arms' own answers and probe scores (nothing is answered twice); only the
snapshots are answered here, with their LoRA weights loaded into the evaluation model in place.
Each adapter point also measures training accuracy: the same weights answer a fixed slice of the closed-book
questions the adapter was trained on (`eval.curve_train_questions`, in their trained wording; not the base model
at step 0, whose closed-book accuracy the base arm already measures on the eval questions' facts). Set against the domain
accuracy it tells an adapter that has not learnt its own training questions yet (train longer or at a higher
learning rate) from one that learnt them by heart without answering the evaluation's wording (more varied
training data, or a larger model); the advice reads it (advisor/recommend.py `training_fit`).
Writes eval/curve.json:
    {"points": [{"step", "domain_accuracy", "probe_accuracy", "n_questions", "n_probe"[, "val_loss"]
                 [, "train_accuracy", "n_train_questions" (the adapter's points)]}],
     "probe_set", "used": {"step", "why"}}
A point has `val_loss` when training measured the validation loss at its step (adapter/training.json's history:
by default at the snapshots and the last step, tuning.train.validation_steps).
The tuned arms use the final adapter, chosen before any evaluation (picking the best point on the eval
questions would tune on the test set); the curve shows whether an earlier one would have served better.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from advisor.core.arms import BASE, BASE_WEIGHTS, TUNED, TUNED_WEIGHTS
from advisor.core.artifacts import mean_accuracy, numbered_dirs, read_jsonl
from evalsuite.evaluate import score_rows


def snapshots(adapter_dir: Path) -> list[tuple[int, Path]]:
    """(step, folder) of the adapter snapshots kept part-way through training, in step order."""
    return numbered_dirs(Path(adapter_dir) / "curve", "step", "adapter_model.safetensors")


@contextmanager
def adapter_weights(lm, folder: Path) -> Iterator[None]:
    """Inside the block the evaluation model's adapter carries the LoRA weights saved in `folder`; the
    weights it had before are put back afterwards."""
    from peft import get_peft_model_state_dict, set_peft_model_state_dict
    from safetensors.torch import load_file

    before = {k: v.detach().clone() for k, v in get_peft_model_state_dict(lm.model).items()}
    set_peft_model_state_dict(lm.model, load_file(str(Path(folder) / "adapter_model.safetensors")))
    try:
        yield
    finally:
        set_peft_model_state_dict(lm.model, before)


def curve_slice(items: list, n: int) -> list:
    """The first n answerable eval questions (the eval set is already spread over the documents)."""
    return [it for it in items if not it.unanswerable][:n]


def training_slice(run_dir: Path, train_items: list, n: int) -> list:
    """The first n of the closed-book questions the adapter was trained on (sft/train.jsonl's `qa` rows, in
    their order there; the validation rows are left out), as the QA items of the training file they came
    from, so they are scored against every answer the file gives."""
    by_id = {it.id: it for it in train_items if not it.unanswerable and it.answers}
    path = Path(run_dir) / "sft" / "train.jsonl"
    rows = read_jsonl(path) if path.is_file() else []
    out, seen = [], set()
    for r in rows:
        it = by_id.get(r.get("id"))
        if r.get("kind") == "qa" and it is not None and it.id not in seen:
            out.append(it)
            seen.add(it.id)
    return out[:n]


def measure_curve(
    run_dir: Path,
    lm,
    items: list,
    probes: dict,
    probe_items: list,
    probe_set: str,
    answer_slice,
    score_probes,
    steps_total: int,
    train_items: list | None = None,
) -> dict:
    """The curve's points. `answer_slice(questions) -> rows with scores` answers the slice with the tuned
    arm as it is now; `score_probes(probe_items) -> {'acc': [...]}` scores the probe slice. With
    `train_items` (training_slice) every adapter point also answers those."""
    run_dir = Path(run_dir)
    ids = [it.id for it in items]
    n_probe = len(probe_items)
    # the saved answers scored by the current rule (the metrics stage, which rescores them, runs after this one)
    base_rows, tuned_rows = (
        score_rows(read_jsonl(run_dir / "eval" / f"{BASE}.jsonl")),
        score_rows(read_jsonl(run_dir / "eval" / f"{TUNED}.jsonl")),
    )
    probe_scores = probes["sets"][probe_set]

    def probe_acc(weights: str) -> float:
        acc = probe_scores[weights]["acc"][:n_probe]
        return sum(acc) / max(1, len(acc))

    train_items = list(train_items or [])
    train_ids = [it.id for it in train_items]

    def point(step: int, domain: float, probe: float, answer=None) -> dict:
        p = {"step": step, "domain_accuracy": domain, "probe_accuracy": probe}
        if train_items and answer:  # the adapter's weights of this point answer its training questions
            p.update(train_accuracy=mean_accuracy(answer(train_items), train_ids), n_train_questions=len(train_ids))
        return p

    points = [point(0, mean_accuracy(base_rows, ids), probe_acc(BASE_WEIGHTS))]
    for step, folder in snapshots(run_dir / "adapter"):
        with adapter_weights(lm, folder):
            rows = answer_slice(items)
            acc = score_probes(probe_items)["acc"]
            points.append(point(step, mean_accuracy(rows, ids), sum(acc) / max(1, len(acc)), answer_slice))
    points.append(point(steps_total, mean_accuracy(tuned_rows, ids), probe_acc(TUNED_WEIGHTS), answer_slice))
    tj = run_dir / "adapter" / "training.json"
    history = json.loads(tj.read_text()).get("history", []) if tj.is_file() else []
    val = {r["step"]: r["val_loss"] for r in history if r.get("val_loss") is not None}
    for p in points:
        p.update(n_questions=len(ids), n_probe=n_probe)
        if p["step"] in val:
            p["val_loss"] = round(val[p["step"]], 4)
        for k in ("domain_accuracy", "probe_accuracy", "train_accuracy"):
            if k in p:
                p[k] = round(p[k], 4)
    return {"points": points, "probe_set": probe_set, "used": used_point(points)}


def used_point(points: list[dict]) -> dict:
    """The curve's `used`: the final adapter, and why; an earlier point better on both axes is named."""
    final = points[-1]
    better = [
        p
        for p in points[1:-1]
        if p["domain_accuracy"] > final["domain_accuracy"] and p["probe_accuracy"] >= final["probe_accuracy"]
    ]
    why = (
        "the final adapter, fixed before any evaluation (choosing the best point on the eval questions would "
        "tune on the test set)"
    )
    if better:
        b = max(better, key=lambda p: p["domain_accuracy"])
        why += (
            f"; on this slice the snapshot at step {b['step']} did better on both axes "
            f"({100 * b['domain_accuracy']:.0f}% vs {100 * final['domain_accuracy']:.0f}% domain accuracy), "
            "so shorter training (tuning.epochs or tuning.max_steps) is worth a try"
        )
    return {"step": final["step"], "why": why}


# What a run needs to measure the curve, said by the report and the dashboard when a run has none.
CURVE_NEEDS = "a tuned arm, probes (eval.probes) and tuning.curve_points > 0"


# What the training line tells, said under the report's curve.png and the dashboard's chart alike.
TRAINING_LINE_MEANING = (
    "not answering them means the adapter has not learnt them yet (train longer or at a higher learning rate); "
    "answering them but not the eval questions means it learnt them by heart (more varied training data, or a "
    "larger model)."
)


def curve_series(curve: dict) -> dict[str, str | None]:
    """The learning curve's line labels, as the report's curve.png and the dashboard's chart name them: 'eval',
    'train' (None when no point carries training accuracy) and 'probe'."""
    pts = curve["points"]
    trained = [p for p in pts if "train_accuracy" in p]
    return {
        "eval": f"eval questions ({pts[0]['n_questions']}), closed book",
        "train": f"its own training questions ({trained[0]['n_train_questions']})" if trained else None,
        "probe": f"probe: {curve.get('probe_set', '?')} ({pts[0]['n_probe']} items)",
    }


# The numbers every point of eval/curve.json carries; a point with train_accuracy also carries n_train_questions.
CURVE_POINT = ("step", "domain_accuracy", "probe_accuracy", "n_questions", "n_probe")


def read_curve(run_dir: Path) -> dict | None:
    """eval/curve.json, or None when the run has no learning curve. A broken file (not JSON, no points, a point
    without its numbers, no used step) is an AdvisorError naming the file, the point and what to do; the report,
    the advice and the dashboard all read it here."""
    from advisor.core.errors import AdvisorError
    from advisor.core.textio import read_json

    p = Path(run_dir) / "eval" / "curve.json"
    if not p.is_file():
        return None
    fix = f"delete it and run the pipeline again: advisor run --out {run_dir}"
    c = read_json(p, "learning curve", fix)
    pts = c.get("points") if isinstance(c, dict) else None
    if not isinstance(pts, list) or not pts:
        raise AdvisorError(f"learning curve {p} has no 'points'; {fix}")
    for i, pt in enumerate(pts):
        if not isinstance(pt, dict):
            raise AdvisorError(f"learning curve {p}: points[{i}] must be an object like {{'step': 0, ...}}; {fix}")
        keys = CURVE_POINT + (("train_accuracy", "n_train_questions") if "train_accuracy" in pt else ())
        missing = [k for k in keys if not isinstance(pt.get(k), (int, float))]
        if missing:
            raise AdvisorError(f"learning curve {p}: points[{i}] lacks a number for {', '.join(missing)}; {fix}")
    if not isinstance((c.get("used") or {}).get("step"), int):
        raise AdvisorError(
            f"learning curve {p} does not say which step the tuned arms use ('used': {{'step': ...}}); {fix}"
        )
    return c
