"""Training data from the corpus, with no evaluation question ever trained on.

Kinds of examples (DESIGN.md 'Data'):
  - text: the corpus itself in segments of at most max_seq_len generator tokens (continued pre-training);
  - qa:   the user's training questions -> short answers, rendered with the same prompt as evaluation;
          without training questions, template fill-in-the-blank pairs made from the chunks
          (`synthetic: true` on each; tuning.synthetic_qa);
  - raft: optional (tuning.raft) RAFT-style pairs: question + oracle chunk + distractor chunks, the
          oracle removed for a share tuning.raft_no_oracle of them, so the tuned+RAG arm learns to use
          (and to distrust) retrieved passages.
Training questions that duplicate an evaluation question (after normalisation) are dropped. The
leakage report gives the highest word 4-gram overlap between any eval question and any training example.

Used by the tune stage (python -m tuning.train RUN_DIR), which writes RUN_DIR/sft/{train,val}.jsonl
and leakage.json before training.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from advisor.core.answer import Context, render_target
from advisor.core.artifacts import atomic_write_json, write_jsonl
from advisor.core.corpus import documents_from_chunks
from advisor.core.errors import AdvisorError
from advisor.core.qa import QAItem

NGRAM = 4


def text_segments(text: str, tokenizer, max_tokens: int) -> list[str]:
    """Split text into consecutive pieces of at most max_tokens tokens, cutting at line ends when possible."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    offs = enc["offset_mapping"]
    out, i = [], 0
    while i < len(offs):
        j = min(i + max_tokens, len(offs))
        if j < len(offs):
            for k in range(j, i + max_tokens // 2, -1):
                if "\n" in text[offs[k - 1][1]:offs[k][0]]:
                    j = k
                    break
        piece = text[offs[i][0]:offs[j - 1][1]].strip()
        if piece:
            out.append(piece)
        i = j
    return out


def _norm(s: str) -> str:
    return " ".join(re.findall(r"\w+", s.lower()))


def ngrams(text: str, n: int = NGRAM) -> set[tuple[str, ...]]:
    w = _norm(text).split()
    return {tuple(w[i:i + n]) for i in range(len(w) - n + 1)}


def leakage_report(eval_qa: list[QAItem], train_questions: list[str], corpus_segments: list[str], top: int = 5) -> dict:
    """For each eval question, the share of its word 4-grams found in a training example.

    Overlap with training *questions* is leakage; overlap with *corpus text* is expected (the
    facts asked about are in the corpus both tracks see) and is reported for reference.
    """

    def scan(examples: list[str]) -> tuple[float, list[dict]]:
        grams = [ngrams(e) for e in examples]
        pairs = []
        for item in eval_qa:
            g = ngrams(item.question)
            if not g:
                continue
            best, best_j = 0.0, -1
            for j, eg in enumerate(grams):
                o = len(g & eg) / len(g)
                if o > best:
                    best, best_j = o, j
            if best_j >= 0:
                pairs.append({"eval_id": item.id, "eval_question": item.question, "overlap": round(best, 4),
                              "training_example": examples[best_j][:300]})
        pairs.sort(key=lambda p: -p["overlap"])
        return (pairs[0]["overlap"] if pairs else 0.0), pairs[:top]

    max_q, top_q = scan(train_questions)
    max_c, top_c = scan(corpus_segments)
    return {
        "ngram": NGRAM,
        "measure": "share of an eval question's word 4-grams that occur in one training example",
        "max_overlap_with_training_questions": max_q,
        "top_pairs_training_questions": top_q,
        "max_overlap_with_corpus_text": max_c,
        "top_pairs_corpus_text": top_c,
    }


_SENTENCE = re.compile(r"[^.!?\n]+[.!?]")
_FACT = re.compile(r"\d[\d.,:]*(?:\s?(?:%|am|pm|[A-Za-z]+))?")


def _title(source: str) -> str:
    return Path(source).stem.replace("-", " ").replace("_", " ").strip().capitalize() or source


def synthetic_pairs(chunks: list[dict], per_chunk: int, seed: int) -> list[QAItem]:
    """Template fill-in-the-blank pairs from the chunks: a sentence holding a number (a time, a price, a
    count) with that fact blanked out is the question, the fact the answer. Deterministic for a seed."""
    rng = random.Random(seed)
    out: list[QAItem] = []
    seen: set[str] = set()
    for c in chunks:
        cands = []
        for s in _SENTENCE.findall(c["text"]):
            s = " ".join(s.split())
            m = _FACT.search(s)
            if m and len(s.split()) >= 5 and s not in seen:
                cands.append((s, m))
        rng.shuffle(cands)
        for s, m in cands[:per_chunk]:
            seen.add(s)
            blanked = s[:m.start()] + "___" + s[m.end():]
            q = f"According to '{_title(c['source'])}', what fills the blank: {blanked}"
            out.append(QAItem(f"syn-{len(out):05d}", q, [m.group(0).strip()], source=c["source"]))
    return out


def raft_example(tokenizer, item: QAItem, chunks: list[dict], n_distractors: int, drop_oracle: bool,
                 rng: random.Random) -> dict | None:
    """One RAFT pair (Zhang et al. 2024): the oracle chunk (same source, holding the answer) among
    distractors from other documents, in the evaluation's context format. None without an oracle."""
    ans = item.answers[0]
    oracle = [c for c in chunks if c["source"] == item.source and ans.lower() in c["text"].lower()]
    others = [c for c in chunks if c["source"] != item.source]
    if not oracle or not others:
        return None
    picked = rng.sample(others, min(n_distractors, len(others))) + ([] if drop_oracle else [rng.choice(oracle)])
    rng.shuffle(picked)
    ctx = [Context(c["id"], c["source"], c["text"], 0.0, i + 1) for i, c in enumerate(picked)]
    answer = ans
    if not drop_oracle:
        rank = next(x.rank for x in ctx if x.source == item.source and ans.lower() in x.text.lower())
        answer = f"{ans} [{rank}]"
    prompt, completion = render_target(tokenizer, item.question, answer, ctx)
    return {"kind": "raft", "id": item.id, "source": item.source, "question": item.question, "oracle": not drop_oracle,
            "prompt": prompt, "completion": completion}


def build_sft(chunks: list[dict], train_qa: list[QAItem], eval_qa: list[QAItem], tokenizer, max_seq_len: int,
              use_corpus_text: bool, use_train_qa: bool, val_fraction: float, seed: int,
              synthetic_qa: bool = False, synthetic_per_chunk: int = 1, raft: bool = False,
              raft_distractors: int = 2, raft_no_oracle: float = 0.2) -> tuple[list, list, dict]:
    """(train examples, val examples, leakage report). Each example: kind, text | prompt + completion.

    Without training questions and with synthetic_qa, template pairs from the chunks stand in for
    them (each marked `synthetic`). With raft, every usable pair also yields a RAFT example."""
    eval_norm = {_norm(q.question) for q in eval_qa}
    examples: list[dict] = []
    segments: list[str] = []
    if use_corpus_text:
        for src, text in sorted(documents_from_chunks(chunks).items()):
            for seg in text_segments(text, tokenizer, max_seq_len - 2):
                segments.append(seg)
                examples.append({"kind": "text", "source": src, "text": seg})
    dropped = []
    kept_q: list[str] = []
    synthetic = use_train_qa and synthetic_qa and not train_qa
    if synthetic:
        train_qa = synthetic_pairs(chunks, synthetic_per_chunk, seed)
    rng_raft = random.Random(seed + 1)
    if use_train_qa:
        for item in train_qa:
            if item.unanswerable or not item.answers:
                continue
            if _norm(item.question) in eval_norm:
                dropped.append(item.id)
                continue
            prompt, completion = render_target(tokenizer, item.question, item.answers[0])
            kept_q.append(item.question)
            examples.append({"kind": "qa", "id": item.id, "source": item.source, "question": item.question,
                             "prompt": prompt, "completion": completion, "synthetic": synthetic})
            if raft and item.source:
                ex = raft_example(tokenizer, item, chunks, raft_distractors, rng_raft.random() < raft_no_oracle, rng_raft)
                if ex is not None:
                    examples.append({**ex, "synthetic": synthetic})
    if not examples:
        raise AdvisorError("the training set is empty: the corpus gave no text and no training question was usable; "
                          "set tuning.use_corpus_text=true, pass training questions (--train-qa) or tuning.synthetic_qa=true")
    rng = random.Random(seed)
    rng.shuffle(examples)
    n_val = int(round(len(examples) * val_fraction)) if len(examples) >= 10 else 0
    val, train = examples[:n_val], examples[n_val:]
    report = leakage_report(eval_qa, kept_q, segments)
    report["dropped_training_questions_equal_to_eval"] = dropped
    report["n_train"], report["n_val"] = len(train), len(val)
    report["n_text_segments"], report["n_qa_pairs"] = len(segments), len(kept_q)
    report["qa_pairs_synthetic"] = synthetic
    report["n_raft"] = sum(e["kind"] == "raft" for e in examples)
    return train, val, report


def write_sft(out_dir: Path, train: list, val: list, report: dict) -> None:
    write_jsonl(out_dir / "train.jsonl", train)
    write_jsonl(out_dir / "val.jsonl", val)
    atomic_write_json(out_dir / "leakage.json", report)
