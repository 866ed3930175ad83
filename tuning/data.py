"""Training data from the corpus, with no evaluation question ever trained on.

Two kinds of examples (DESIGN.md 'Data'):
  - text: the corpus itself in segments of at most max_seq_len generator tokens (continued pre-training);
  - qa:   the user's training questions -> short answers, rendered with the same prompt as evaluation.
Training questions that duplicate an evaluation question (after normalisation) are dropped. The
leakage report gives the highest word 4-gram overlap between any eval question and any training example.

Used by the tune stage (python -m tuning.train RUN_DIR), which writes RUN_DIR/sft/{train,val}.jsonl
and leakage.json before training.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from pathlib import Path

from advisor.core.answer import render_target
from advisor.core.artifacts import atomic_write_json, write_jsonl
from advisor.core.errors import AdvisorError
from advisor.core.qa import QAItem

NGRAM = 4


def documents_from_chunks(chunks: list[dict]) -> dict[str, str]:
    """Rebuild each document's text from its overlapping chunks (by character offsets)."""
    by_src: dict[str, list[dict]] = defaultdict(list)
    for c in chunks:
        by_src[c["source"]].append(c)
    docs = {}
    for src, cs in by_src.items():
        cs.sort(key=lambda c: c["start"])
        parts, end = [], None
        for c in cs:
            if end is None or c["start"] >= end:
                parts.append(("\n" if parts else "") + c["text"])
            elif c["end"] > end:
                parts.append(c["text"][end - c["start"]:])
            end = max(end or 0, c["end"])
        docs[src] = "".join(parts)
    return docs


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


def build_sft(chunks: list[dict], train_qa: list[QAItem], eval_qa: list[QAItem], tokenizer, max_seq_len: int,
              use_corpus_text: bool, use_train_qa: bool, val_fraction: float, seed: int) -> tuple[list, list, dict]:
    """(train examples, val examples, leakage report). Each example: kind, text | prompt + completion."""
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
                             "prompt": prompt, "completion": completion})
    if not examples:
        raise AdvisorError("the training set is empty: the corpus gave no text and no training questions were usable")
    rng = random.Random(seed)
    rng.shuffle(examples)
    n_val = int(round(len(examples) * val_fraction)) if len(examples) >= 10 else 0
    val, train = examples[:n_val], examples[n_val:]
    report = leakage_report(eval_qa, kept_q, segments)
    report["dropped_training_questions_equal_to_eval"] = dropped
    report["n_train"], report["n_val"] = len(train), len(val)
    report["n_text_segments"], report["n_qa_pairs"] = len(segments), len(kept_q)
    return train, val, report


def write_sft(out_dir: Path, train: list, val: list, report: dict) -> None:
    write_jsonl(out_dir / "train.jsonl", train)
    write_jsonl(out_dir / "val.jsonl", val)
    atomic_write_json(out_dir / "leakage.json", report)
