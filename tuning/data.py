"""Training data from the corpus, with no evaluation question ever trained on.

Kinds of examples (docs/architecture.md, 'Training data'):
  - text:    the corpus itself in segments of at most max_seq_len generator tokens (continued pre-training);
  - qa:      training questions -> short answers, rendered with the same prompt as evaluation: the user's
             training questions, or without them the fact-level phrasings the evaluation-set generator
             writes to RUN_DIR/qa/train.jsonl (never an evaluation item);
  - abstain: questions the corpus does not answer (a given training set's unanswerable items; the
             generated verified ones only with tuning.abstain_questions=any; never the eval ones)
             -> the fixed abstention answer, closed book;
  - raft:    (tuning.raft, on by default) RAFT-style pairs for a share of the training questions:
             question + oracle chunk + hard distractors, the oracle removed for tuning.raft_no_oracle of
             them (target: the abstention answer), so the adapter the tuned+RAG arm uses learns to read,
             cite and distrust retrieved passages; with tuning.raft_unanswerable also the unanswerable
             training questions among their BM25-best passages (none answers them) -> the abstention answer.
Training questions that duplicate an evaluation question (after normalisation) are dropped. The
leakage report gives the highest word 4-gram overlap between any eval question and any training example.

Used by the tune stage (python -m tuning.train RUN_DIR), which writes RUN_DIR/sft/{train,val}.jsonl
and leakage.json before training.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from advisor.core.answer import ABSTAIN, Context, cite, context_block, render_target
from advisor.core.artifacts import atomic_write_json, write_jsonl
from advisor.core.corpus import documents_from_chunks
from advisor.core.errors import AdvisorError
from advisor.core.overlap import NGRAM, closest, ngrams
from advisor.core.overlap import normalise as _norm
from advisor.core.qa import QAItem


def text_segments(text: str, tokenizer, max_tokens: int) -> list[str]:
    """Split text into consecutive pieces of at most max_tokens tokens, cutting at line ends when possible."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    offs = enc["offset_mapping"]
    out, i = [], 0
    while i < len(offs):
        j = min(i + max_tokens, len(offs))
        if j < len(offs):
            for k in range(j, i + max_tokens // 2, -1):
                if "\n" in text[offs[k - 1][1] : offs[k][0]]:
                    j = k
                    break
        piece = text[offs[i][0] : offs[j - 1][1]].strip()
        if piece:
            out.append(piece)
        i = j
    return out


def leakage_report(eval_qa: list[QAItem], train_questions: list[str], corpus_segments: list[str], top: int = 5) -> dict:
    """For each eval question, the share of its word 4-grams found in a training example.

    Overlap with training *questions* is leakage; overlap with *corpus text* is expected (the
    facts asked about are in the corpus both tracks see) and is reported for reference.
    """

    def scan(examples: list[str]) -> tuple[float, list[dict]]:
        grams = [ngrams(e) for e in examples]
        pairs = []
        for item in eval_qa:
            best, best_j = closest(item.question, grams)
            if best_j >= 0:
                pairs.append(
                    {
                        "eval_id": item.id,
                        "eval_question": item.question,
                        "overlap": round(best, 4),
                        "training_example": examples[best_j][:300],
                    }
                )
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


class Distractors:
    """Hard distractor chunks for RAFT examples: the chunks that BM25 ranks highest for the question, from
    other documents than the oracle's, or (`any_document`) any chunk that does not hold the answer, the
    oracle's own document included. BM25 is the lexical half of the run's hybrid retriever; it is rebuilt
    here from the run's chunks (milliseconds) so the tuning track need not wait for the index track."""

    def __init__(self, chunks: list[dict]):
        import bm25s

        self.chunks = chunks
        self.bm25 = bm25s.BM25()
        self.bm25.index(
            bm25s.tokenize([c["text"] for c in chunks], stopwords="en", show_progress=False), show_progress=False
        )

    def for_question(
        self, question: str, not_source: str | None, n: int, not_answers: list[str] | None = None
    ) -> list[dict]:
        """The n best chunks for the question outside `not_source`; with `not_answers`, the n best that hold
        none of those answers instead, from any document."""
        import bm25s

        if n <= 0:
            return []
        depth = min(len(self.chunks), 4 * n + 8)
        ids, _ = self.bm25.retrieve(
            bm25s.tokenize([question], stopwords="en", show_progress=False), k=depth, show_progress=False, n_threads=1
        )
        ranked = [self.chunks[int(i)] for i in ids[0]]
        if not_answers is not None:
            low = [a.lower() for a in not_answers if a]
            return [c for c in ranked if not any(a in c["text"].lower() for a in low)][:n]
        return [c for c in ranked if c["source"] != not_source][:n]


def oracle_chunks(item: QAItem, chunks: list[dict]) -> list[dict]:
    """The chunks of the item's source document that hold its answer."""
    ans = item.answers[0].lower()
    return [c for c in chunks if c["source"] == item.source and ans in c["text"].lower()]


def raft_example(
    tokenizer, item: QAItem, oracle: dict | None, distractors: list[dict], rng: random.Random, context_tokens: int = 0
) -> dict:
    """One RAFT pair (Zhang et al. 2024) in the evaluation's context format: the oracle chunk among hard
    distractors, target "answer [n]" (the answer with its passage number); without an oracle the target
    is the abstention answer, so the tuned+RAG arm learns to distrust passages that lack the answer.
    Distractors are dropped from the end while the passages exceed `context_tokens` generator tokens
    (the evaluation prompt's budget; 0 = no limit)."""
    distractors = list(distractors)

    def size(cs: list[dict]) -> int:
        return len(
            tokenizer(
                context_block([Context(c["id"], c["source"], c["text"], 0.0, 1) for c in cs]), add_special_tokens=False
            )["input_ids"]
        )

    while (
        context_tokens
        and len(distractors) > (0 if oracle else 1)
        and size(distractors + ([oracle] if oracle else [])) > context_tokens
    ):
        distractors.pop()
    picked = distractors + ([oracle] if oracle else [])
    rng.shuffle(picked)
    ctx = [Context(c["id"], c["source"], c["text"], 0.0, i + 1) for i, c in enumerate(picked)]
    if oracle:
        rank = next(x.rank for x in ctx if x.chunk_id == oracle["id"])
        answer = cite(item.answers[0], rank)
    else:
        answer = ABSTAIN
    prompt, completion = render_target(tokenizer, item.question, answer, ctx)
    return {
        "kind": "raft",
        "id": item.id,
        "source": item.source,
        "question": item.question,
        "oracle": oracle is not None,
        "prompt": prompt,
        "completion": completion,
    }


def cap_text_segments(sources: list[str], tokens: list[int], budget: int, seed: int) -> list[int]:
    """Positions of the corpus-text segments kept within `budget` tokens (tuning.max_train_tokens less the
    instruction pairs, which are all kept): first one segment of every document, picked at random (seeded),
    so every document is still trained on, even past the budget; then the other segments in a seeded random
    order while they fit. All of them when they fit. Returned in their original order.

    >>> cap_text_segments(["a", "a", "a", "b"], [10, 10, 10, 10], 30, 0)
    [0, 1, 3]
    """
    if sum(tokens) <= budget:
        return list(range(len(tokens)))
    rng = random.Random(seed + 3)
    by_doc: dict[str, list[int]] = {}
    for i, src in enumerate(sources):
        by_doc.setdefault(src, []).append(i)
    keep = {rng.choice(ix) for _, ix in sorted(by_doc.items())}
    used = sum(tokens[i] for i in keep)
    rest = [i for i in range(len(tokens)) if i not in keep]
    rng.shuffle(rest)
    for i in rest:
        if used + tokens[i] <= budget:
            keep.add(i)
            used += tokens[i]
    return sorted(keep)


def example_tokens(tokenizer, ex: dict) -> int:
    """Generator tokens of one training example (its text, or prompt + completion), as training counts them."""
    text = ex["text"] if ex["kind"] == "text" else ex["prompt"] + ex["completion"]
    return len(tokenizer(text, add_special_tokens=False)["input_ids"]) + (1 if ex["kind"] == "text" else 0)


def cap_training_set(examples: list[dict], tokenizer, max_tokens: int, seed: int) -> tuple[list[dict], dict]:
    """(examples within `max_tokens` tokens, what the cap did): every instruction pair (qa, abstain, raft) and
    the corpus text that cap_text_segments keeps; 0 = no cap."""
    counts = [example_tokens(tokenizer, ex) for ex in examples]
    text = [i for i, ex in enumerate(examples) if ex["kind"] == "text"]
    pairs = [i for i, ex in enumerate(examples) if ex["kind"] != "text"]
    pair_tokens = sum(counts[i] for i in pairs)
    text_tokens = sum(counts[i] for i in text)
    info = {
        "max_train_tokens": max_tokens,
        "capped": False,
        "text_tokens_all": text_tokens,
        "n_text_segments_all": len(text),
        "instruction_tokens": pair_tokens,
    }
    if not max_tokens or pair_tokens + text_tokens <= max_tokens:
        info["train_tokens"] = pair_tokens + text_tokens
        return examples, info
    kept = cap_text_segments(
        [examples[i]["source"] for i in text], [counts[i] for i in text], max(0, max_tokens - pair_tokens), seed
    )
    kept_ix = {text[k] for k in kept}
    out = [ex for i, ex in enumerate(examples) if ex["kind"] != "text" or i in kept_ix]
    kept_tokens = sum(counts[i] for i in kept_ix)
    info.update(
        capped=True,
        text_tokens_kept=kept_tokens,
        n_text_segments_kept=len(kept_ix),
        train_tokens=pair_tokens + kept_tokens,
    )
    return out, info


def val_count(n_examples: int, val_fraction: float) -> int:
    """Examples build_sft holds out for the validation loss: `val_fraction` of them, none under 10 examples."""
    return int(round(n_examples * val_fraction)) if n_examples >= 10 else 0


def val_scored(n_examples: int, val_fraction: float, val_limit: int) -> int:
    """Held-out examples whose loss is scored: `val_count` of them, at most `val_limit` (0 = no limit)."""
    n_val = val_count(n_examples, val_fraction)
    return min(n_val, val_limit) if val_limit else n_val


def abstain_cap(n_answerable: int, abstain_share: float) -> int:
    """The most abstention examples build_sft keeps: `abstain_share` of the answerable training questions (a
    seeded sample when there are more unanswerable ones)."""
    return round(abstain_share * n_answerable)


def build_sft(
    chunks: list[dict],
    train_qa: list[QAItem],
    eval_qa: list[QAItem],
    tokenizer,
    max_seq_len: int,
    use_corpus_text: bool,
    use_train_qa: bool,
    val_fraction: float,
    seed: int,
    abstain_qa: list[QAItem] = (),
    raft: bool = True,
    raft_share: float = 0.3,
    raft_distractors: int = 2,
    raft_no_oracle: float = 0.2,
    context_tokens: int = 0,
    abstain_share: float = 0.2,
    closed_book: bool = True,
    max_train_tokens: int = 0,
    raft_distractors_from: str = "other_documents",
    val_limit: int = 0,
    raft_unanswerable: list[QAItem] = (),
) -> tuple[list, list, dict]:
    """(train examples, val examples, leakage report). Each example: kind, text | prompt + completion.

    Kinds: `text` (corpus segments), `qa` (training question -> short answer, closed book), `abstain`
    (a question the corpus does not answer -> the fixed abstention answer, closed book; from `abstain_qa`
    and the unanswerable items of `train_qa`) and, with `raft`, `raft` examples for a share `raft_share` of
    the training questions (question + oracle chunk + hard distractors; `raft_no_oracle` of them without
    the oracle, target the abstention answer; distractors from other documents, or with
    `raft_distractors_from="any_document"` any chunk without the answer). Abstention questions are capped at
    `abstain_share` of the answerable training questions (a random sample, seeded). One adapter learns all of
    them and serves both tuned arms. Without `closed_book` only the corpus text and the RAFT examples are made (the
    separate adapter of the tuned+RAG arm, tuning.both_adapter=separate). With `max_train_tokens` the
    examples (train and validation together) are capped by cap_training_set: every instruction pair, a
    sample of the corpus text that still covers every document. `raft_unanswerable` (with `raft`): questions the
    corpus does not answer that each get a RAFT example, the question among its BM25-best passages from any
    document, target the abstention answer (abstention taught in context; capped like the abstention
    questions).
    Any training question equal to an evaluation question (after normalisation) is dropped."""
    examples, segments = corpus_text_examples(chunks, tokenizer, max_seq_len) if use_corpus_text else ([], [])
    asked = Asked()
    if use_train_qa:
        raft_with = (
            RaftSettings(
                Distractors(chunks),
                raft_share,
                raft_distractors,
                raft_no_oracle,
                context_tokens,
                raft_distractors_from == "any_document",
            )
            if (raft and chunks)
            else None
        )
        asked = question_examples(
            train_qa, abstain_qa, eval_qa, chunks, tokenizer, seed, raft_with, abstain_share, closed_book
        )
        if raft_with is not None and raft_unanswerable:
            unanswerable_in_context(
                asked, raft_unanswerable, train_qa, eval_qa, tokenizer, seed, raft_with, abstain_share
            )
    examples += asked.examples
    if not examples:
        raise AdvisorError(
            "the training set is empty: the corpus gave no text and no training question was usable; "
            "set tuning.use_corpus_text=true or pass training questions (--train-qa)"
        )
    examples, cap = cap_training_set(examples, tokenizer, max_train_tokens, seed)
    if cap["capped"]:
        kept = {ex["text"] for ex in examples if ex["kind"] == "text"}
        segments = [seg for seg in segments if seg in kept]
    rng = random.Random(seed)
    rng.shuffle(examples)
    n_val = val_count(len(examples), val_fraction)
    # a limit trims the scored ones only: the examples past it are held out all the same
    val, train = examples[: val_scored(len(examples), val_fraction, val_limit)], examples[n_val:]
    report = sft_report(eval_qa, asked, segments, closed_book, bool(raft_unanswerable))
    report.update(n_train=len(train), n_val=len(val), token_cap=cap)
    return train, val, report


def sft_report(eval_qa: list[QAItem], asked: Asked, segments: list[str], closed_book: bool, in_context: bool) -> dict:
    """build_sft's leakage report (leakage_report) with what it made of each kind."""
    report = leakage_report(eval_qa, asked.kept_q + asked.in_context_q, segments)
    report["dropped_training_questions_equal_to_eval"] = asked.dropped
    report["n_text_segments"] = len(segments)
    report["n_qa_pairs"] = (len(asked.kept_q) - asked.n_abstain) if closed_book else 0
    report["n_abstain"] = asked.n_abstain
    report["n_raft"] = asked.n_raft_oracle + asked.n_raft_none + asked.n_raft_unanswerable
    report["n_raft_without_oracle"] = asked.n_raft_none
    if in_context:  # tuning.raft_unanswerable
        report["n_raft_unanswerable"] = asked.n_raft_unanswerable
    return report


def corpus_text_examples(chunks: list[dict], tokenizer, max_seq_len: int) -> tuple[list[dict], list[str]]:
    """(`text` examples, their segments): every document's text in segments that fit max_seq_len."""
    examples: list[dict] = []
    segments: list[str] = []
    for src, text in sorted(documents_from_chunks(chunks).items()):
        for seg in text_segments(text, tokenizer, max_seq_len - 2):
            segments.append(seg)
            examples.append({"kind": "text", "source": src, "text": seg})
    return examples, segments


@dataclass
class RaftSettings:
    distractors: Distractors
    share: float  # of the training questions that also get a RAFT example
    n_distractors: int
    no_oracle: float  # of the RAFT examples without the passage that answers (target: the abstention answer)
    context_tokens: int
    any_document: bool = False  # distractors: any chunk without the answer (tuning.raft_distractors_from)


@dataclass
class Asked:
    """The examples made from training questions, and what the leakage report counts of them."""

    examples: list[dict] = field(default_factory=list)
    kept_q: list[str] = field(default_factory=list)  # the questions trained on
    dropped: list[str] = field(default_factory=list)  # ids of training questions equal to an evaluation question
    n_abstain: int = 0
    n_raft_oracle: int = 0
    n_raft_none: int = 0  # answerable questions whose passage was left out
    n_raft_unanswerable: int = 0  # questions the corpus does not answer, among their best passages
    in_context_q: list[str] = field(default_factory=list)  # those questions (trained in context only)


def question_examples(
    train_qa: list[QAItem],
    abstain_qa: list[QAItem],
    eval_qa: list[QAItem],
    chunks: list[dict],
    tokenizer,
    seed: int,
    raft: RaftSettings | None,
    abstain_share: float,
    closed_book: bool,
) -> Asked:
    """`qa`, `abstain` and `raft` examples from the training questions (build_sft's rules), in question order:
    answerable ones first, then the (capped, seeded sample of) unanswerable ones."""
    eval_norm = {_norm(q.question) for q in eval_qa}
    out = Asked()
    rng = random.Random(seed + 1)
    seen_abstain: set[str] = set()
    answerable = [it for it in train_qa if not it.unanswerable and it.answers]
    unanswerable = [it for it in list(train_qa) + list(abstain_qa) if it.unanswerable or not it.answers]
    cap = abstain_cap(len(answerable), abstain_share)
    if len(unanswerable) > cap:
        unanswerable = random.Random(seed + 2).sample(unanswerable, cap)
    for item in answerable + unanswerable:
        if _norm(item.question) in eval_norm:
            out.dropped.append(item.id)
            continue
        if item.unanswerable or not item.answers:
            if _norm(item.question) in seen_abstain:
                continue
            seen_abstain.add(_norm(item.question))
            if not closed_book:
                continue
            prompt, completion = render_target(tokenizer, item.question, ABSTAIN)
            out.kept_q.append(item.question)
            out.examples.append(
                {
                    "kind": "abstain",
                    "id": item.id,
                    "question": item.question,
                    "prompt": prompt,
                    "completion": completion,
                }
            )
            out.n_abstain += 1
            continue
        out.kept_q.append(item.question)
        if closed_book:
            prompt, completion = render_target(tokenizer, item.question, item.answers[0])
            out.examples.append(
                {
                    "kind": "qa",
                    "id": item.id,
                    "source": item.source,
                    "question": item.question,
                    "prompt": prompt,
                    "completion": completion,
                }
            )
        if raft is not None and item.source and rng.random() < raft.share:
            _add_raft(out, item, chunks, tokenizer, rng, raft)
    return out


def unanswerable_in_context(
    out: Asked,
    items: list[QAItem],
    train_qa: list[QAItem],
    eval_qa: list[QAItem],
    tokenizer,
    seed: int,
    raft: RaftSettings,
    abstain_share: float,
) -> None:
    """A RAFT example for each question the corpus does not answer (capped at `abstain_share` of the answerable
    training questions, a seeded sample): the question among the 1 + raft.n_distractors chunks BM25 ranks highest
    for it, from any document (a generated twin's original record among them: the near miss a retriever returns),
    target the abstention answer. Its own random stream, so the other examples are the same with or without."""
    eval_norm = {_norm(q.question) for q in eval_qa}
    answerable = [it for it in train_qa if not it.unanswerable and it.answers]
    cap = abstain_cap(len(answerable), abstain_share)
    picked = [it for it in items if it.unanswerable or not it.answers]
    if len(picked) > cap:
        picked = random.Random(seed + 3).sample(picked, cap)
    rng = random.Random(seed + 4)
    seen: set[str] = set()
    for item in picked:
        q = _norm(item.question)
        if q in eval_norm and item.id not in out.dropped:
            out.dropped.append(item.id)
        if q in eval_norm or q in seen:
            continue
        seen.add(q)
        passages = raft.distractors.for_question(item.question, None, raft.n_distractors + 1)
        if not passages:
            continue
        out.examples.append(raft_example(tokenizer, item, None, passages, rng, raft.context_tokens))
        out.in_context_q.append(item.question)
        out.n_raft_unanswerable += 1


def _add_raft(out: Asked, item: QAItem, chunks: list[dict], tokenizer, rng: random.Random, raft: RaftSettings) -> None:
    """A RAFT example for `item` (with its passage, or without it at share raft.no_oracle), when the corpus has
    its passage and distractors from other documents."""
    oracles = oracle_chunks(item, chunks)
    if not oracles:
        return
    no_oracle = rng.random() < raft.no_oracle
    oracle = None if no_oracle else rng.choice(oracles)
    n = raft.n_distractors + (1 if no_oracle else 0)
    others = raft.distractors.for_question(
        item.question, item.source, n, list(item.answers) if raft.any_document else None
    )
    if not others:
        return
    out.examples.append(raft_example(tokenizer, item, oracle, others, rng, raft.context_tokens))
    out.n_raft_oracle += not no_oracle
    out.n_raft_none += no_oracle


def write_sft(out_dir: Path, train: list, val: list, report: dict) -> None:
    write_jsonl(out_dir / "train.jsonl", train)
    write_jsonl(out_dir / "val.jsonl", val)
    atomic_write_json(out_dir / "leakage.json", report)
