"""An evaluation set and a training set generated from a corpus: facts -> filters -> a spread selection ->
unanswerable twins -> a split without leakage -> eval.jsonl, train.jsonl, qa_report.json.

Steps (each one's rejections are counted in the report):
  1. candidate facts (facts.py for `extractive`, llm.py for `llm`), each with its verbatim evidence;
  2. drop a fact whose answer appears in its question, and facts whose question would have another answer
     elsewhere in the corpus (same answer type, >= 75% of the same content words, a different answer); the
     same question with the same answer in two documents is kept once;
  3. select the answerable eval facts round-robin over the documents (at most `max_per_document` each), the
     least represented answer type first, skipping near-duplicates (embedder cosine >= `dedup_cosine`);
     NEVER on whether retrieval finds the source (that would favour RAG);
  4. unanswerable questions from other generated questions (unanswerable.py), verified on the whole corpus;
  5. split: `by_fact` gives each eval fact's other phrasings (and other facts) to training; `by_document`
     keeps every fact of an eval document out of training (its text is still the corpus both tracks see).
"""

from __future__ import annotations

import math
import random
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from advisor.core.errors import AdvisorError
from evalsuite.collapse import collapse_key
from evalsuite.qagen.facts import Fact, Vocabulary, content_words, document_facts
from evalsuite.qagen.unanswerable import Unanswerables

EVAL_PREFERENCE = ("fronted", "in_situ", "term", "acronym", "llm", "cloze")
SIMILAR_FRAME = 0.75  # Jaccard of content words from which two questions count as the same question


@dataclass
class GenSettings:
    n: int = 150  # eval questions in all (answerable + unanswerable)
    unanswerable: float = 0.2  # share of eval questions the corpus does not answer
    split: str = "by_fact"  # by_fact | by_document
    seed: int = 0
    max_per_document: int = 0  # answerable eval questions per document; 0 = 2x an even share (at least 3)
    min_answerable: int = 30  # fewer answerable eval questions than this is an error
    train_per_fact: int = 2  # training phrasings per fact
    max_train: int = 300  # training questions in all (answerable), paraphrases of eval facts first
    # the other facts' training questions with one answer (collapse_key), at most this share of max_train
    max_answer_share: float = 0.02
    dedup_cosine: float = 0.95  # eval questions closer than this (embedder cosine) are near-duplicates


@dataclass
class QASet:
    eval: list[dict]
    train: list[dict]
    report: dict
    rejected: Counter = field(default_factory=Counter)


def _norm(s: str) -> str:
    return " ".join(re.findall(r"\w+", s.lower()))


def eval_phrasing(f: Fact) -> tuple[str, str]:
    kind = next(k for k in EVAL_PREFERENCE if k in f.phrasings)
    return kind, f.phrasings[kind]


def _answer_in_question(f: Fact) -> None:
    """Drop every phrasing that contains the answer."""
    a = _norm(f.answer)
    f.phrasings = {k: q for k, q in f.phrasings.items() if f" {a} " not in f" {_norm(q)} "}


def _ambiguity(facts: list[Fact], rejected: Counter) -> list[Fact]:
    """Facts left after dropping ambiguous questions (both sides) and repeats (all but the first)."""
    frames = [set(content_words(eval_phrasing(f)[1])) for f in facts]
    df: Counter = Counter(w for fr in frames for w in fr)
    sources: dict[str, set[str]] = defaultdict(set)
    for f, fr in zip(facts, frames):
        for w in fr:
            sources[w].add(f.source)
    postings: dict[str, list[int]] = defaultdict(list)
    for i, fr in enumerate(frames):
        for w in sorted(fr, key=lambda w: df[w])[:3]:  # the three rarest words find every near-identical frame
            postings[w].append(i)
    bad: set[int] = set()
    repeat: set[int] = set()
    for i, fr in enumerate(frames):
        for j in {j for w in sorted(fr, key=lambda w: df[w])[:3] for j in postings[w] if j > i}:
            if facts[i].answer_type != facts[j].answer_type:
                continue
            inter = len(fr & frames[j])
            if inter / max(1, len(fr | frames[j])) < SIMILAR_FRAME:
                continue
            if any(len(sources[w]) == 1 for w in fr ^ frames[j]):
                continue  # a name only one document uses tells them apart ("When was cormor last updated?")
            if _norm(facts[i].answer) == _norm(facts[j].answer):
                repeat.add(j)
            else:
                bad.update((i, j))
    rejected["ambiguous"] += len(bad)
    rejected["duplicate"] += len(repeat - bad)
    return [f for i, f in enumerate(facts) if i not in bad and i not in repeat]


def item(f: Fact, qid: str, question: str, kind: str, generator: str) -> dict:
    answers = [f.answer]
    if f.answer_type == "duration":  # "21 days" also accepts "21" (the question already names the unit)
        answers.append(f.answer.split()[0])
    return {
        "id": qid,
        "question": question,
        "answers": answers,
        "source": f.source,
        "unanswerable": False,
        "synthetic": True,
        "generator": generator,
        "answer_type": f.answer_type,
        "phrasing": kind,
        "fact": f.key,
        "evidence": {"text": f.evidence, "source": f.source, "start": f.start, "end": f.end},
    }


class _Selector:
    """Round-robin over documents, least represented answer type first, near-duplicates skipped. Each round
    embeds its candidates in one batch (one per document), so a large corpus costs a few batches."""

    def __init__(self, embedder, threshold: float):
        self.embedder, self.threshold = embedder, threshold
        self.vecs: list = []
        self.types: Counter = Counter()

    def _fresh(self, questions: list[str]) -> list[bool]:
        """For each question in order: False when it is a near-duplicate of one kept before it."""
        if self.embedder is None:
            return [True] * len(questions)
        import numpy as np

        out = []
        for v in self.embedder.encode(questions):
            if self.vecs and float(np.max(np.stack(self.vecs) @ v)) >= self.threshold:
                out.append(False)
                continue
            self.vecs.append(v)
            out.append(True)
        return out

    def select(
        self, by_doc: dict[str, list[Fact]], quota: int, cap: int, rng: random.Random, rejected: Counter
    ) -> list[Fact]:
        queues = {d: list(fs) for d, fs in by_doc.items()}
        for q in queues.values():
            rng.shuffle(q)
        docs = sorted(queues)
        rng.shuffle(docs)
        picked: list[Fact] = []
        taken: Counter = Counter()
        while len(picked) < quota:
            round_ = []
            for d in docs:
                q = queues[d]
                if q and taken[d] < cap and len(picked) + len(round_) < quota:
                    f = min(q, key=lambda f: self.types[f.answer_type])
                    q.remove(f)
                    round_.append(f)
                    self.types[f.answer_type] += 1
            if not round_:
                break
            for f, fresh in zip(round_, self._fresh([eval_phrasing(f)[1] for f in round_])):
                if fresh:
                    picked.append(f)
                    taken[f.source] += 1
                else:
                    rejected["near_duplicate"] += 1
                    self.types[f.answer_type] -= 1
        rejected["per_document_cap"] += sum(len(q) for q in queues.values())
        return picked


def _unanswerables(
    facts: list[Fact], n: int, maker: Unanswerables, prefix: str, generator: str, report: Counter
) -> list[dict]:
    out = []
    for f in facts:
        if len(out) >= n:
            break
        kind, question = eval_phrasing(f)
        if not f.entities or kind == "cloze":
            report["no_entity_to_swap"] += 1
            continue
        made, reason = maker.make(question, f.entities, f.answer, f.title)
        report["attempted"] += 1
        if made is None:
            report[reason] += 1
            continue
        report["verified"] += 1
        report["original_answer_in_top_k"] += made["verification"]["original_answer_in_top_k"]
        out.append(
            {
                "id": f"{prefix}{len(out) + 1:03d}",
                "question": made["question"],
                "answers": [],
                "source": None,
                "unanswerable": True,
                "synthetic": True,
                "generator": generator,
                "answer_type": "unanswerable",
                "derived_from": {"fact": f.key, "answer": f.answer, "source": f.source},
                "swap": made["swap"],
                "verification": made["verification"],
            }
        )
    return out


def _left_out(s: GenSettings, capped: Counter) -> dict:
    """What the answer-share cap left out of training: the share, the questions, the ten commonest answers."""
    return {
        "max_answer_share": s.max_answer_share,
        "questions": sum(capped.values()),
        "answers": dict(capped.most_common(10)),
    }


def _train_items(
    eval_facts: list[Fact],
    other: list[Fact],
    s: GenSettings,
    generator: str,
    eval_questions: set[str],
    capped: Counter,
) -> list[dict]:
    """The eval facts' other phrasings (by_fact split), then the other facts' phrasings, up to s.max_train. An
    answer string already given by max_answer_share x max_train training questions takes no more of the other
    facts (counted in `capped`), so no single value is a frequent training target. On the bank corpus it moved
    the closed-book arm's commonest guess from "$0.00" to "$15,000" rather than removing it
    (docs/fine-tuning-measured.md, 'Bank policies')."""
    out: list[dict] = []
    answers: Counter = Counter()
    cap = max(1, round(s.max_answer_share * s.max_train)) if s.max_answer_share > 0 else None
    order = ("fronted", "in_situ", "term", "term_2", "acronym", "acronym_2", "llm", "cloze")
    for group, skip_eval in ((eval_facts, True), (other, False)):
        for f in group:
            used = eval_phrasing(f)[0] if skip_eval else None
            kinds = [k for k in order if k in f.phrasings and k != used][: s.train_per_fact]
            key = collapse_key(f.answer)
            if not skip_eval and cap is not None and answers[key] >= cap:
                capped[key] += len(kinds)
                continue
            for k in kinds:
                if len(out) >= s.max_train:
                    return out
                if _norm(f.phrasings[k]) in eval_questions:
                    continue
                answers[key] += 1
                out.append(item(f, f"t{len(out) + 1:04d}", f.phrasings[k], k, generator))
    return out


def generate_qa_set(
    documents: dict[str, str],
    chunks: list[dict],
    s: GenSettings,
    generator: str = "extractive",
    facts: list[Fact] | None = None,
    embedder=None,
) -> QASet:
    """The eval and training sets for a corpus ({doc id: text}) and its chunks (for the BM25 verification).
    `facts` comes from the llm generator; by default the extractive rules make them."""
    t0 = time.perf_counter()
    rejected: Counter = Counter()
    vocab = Vocabulary(documents)
    if facts is None:
        facts = [f for d in sorted(documents) for f in document_facts(d, documents[d], vocab)]
    candidates = Counter(f.source for f in facts)
    for f in facts:
        _answer_in_question(f)
    kept = [f for f in facts if f.phrasings]
    rejected["answer_in_question"] += len(facts) - len(kept)
    valid = _ambiguity(kept, rejected)
    rng = random.Random(s.seed)
    n_una = round(s.n * s.unanswerable)
    n_ans = s.n - n_una
    by_doc: dict[str, list[Fact]] = defaultdict(list)
    for f in valid:
        by_doc[f.source].append(f)
    eval_docs = sorted(by_doc)
    if s.split == "by_document":  # half the documents (seeded) give eval facts, the others training facts
        rng.shuffle(eval_docs)
        eval_docs = sorted(eval_docs[: max(1, math.ceil(len(eval_docs) / 2))])
    cap = s.max_per_document or max(3, math.ceil(2 * n_ans / max(1, len(eval_docs))))
    selector = _Selector(embedder, s.dedup_cosine)
    picked = selector.select({d: by_doc[d] for d in eval_docs}, n_ans, cap, rng, rejected)
    if len(picked) < s.min_answerable:
        raise AdvisorError(_too_few(len(picked), s, documents, candidates, rejected))
    picked_keys = {f.key for f in picked}
    rest = [f for f in valid if f.key not in picked_keys]
    if s.split == "by_document":
        rest = [f for f in rest if f.source not in set(eval_docs)]
    rng.shuffle(rest)
    maker = Unanswerables(chunks, vocab.words(), s.seed)
    una_report: Counter = Counter()
    # Twins of facts NOT asked about in eval first (a twin of an eval question would be a near-duplicate).
    una_eval = _unanswerables(rest + picked, n_una, maker, "u", generator, una_report)
    used = {u["derived_from"]["fact"] for u in una_eval}
    eval_items = [
        item(f, f"e{i + 1:03d}", eval_phrasing(f)[1], eval_phrasing(f)[0], generator) for i, f in enumerate(picked)
    ] + una_eval
    eval_norm = {_norm(x["question"]) for x in eval_items}
    capped: Counter = Counter()
    train = _train_items(
        picked if s.split == "by_fact" else [], [f for f in rest if f.key not in used], s, generator, eval_norm, capped
    )
    train_una = _unanswerables(
        [f for f in rest if f.key not in used],
        round(len(train) * s.unanswerable / 2),
        maker,
        "tu",
        generator,
        Counter(),
    )
    train += [x for x in train_una if _norm(x["question"]) not in eval_norm]
    report = _report(
        s,
        generator,
        documents,
        candidates,
        eval_items,
        train,
        rejected,
        una_report,
        n_ans,
        n_una,
        time.perf_counter() - t0,
    )
    report["checks"]["eval_questions_equal_to_training"] = sum(_norm(x["question"]) in eval_norm for x in train)
    report["train_common_answers_left_out"] = _left_out(s, capped)
    return QASet(eval_items, train, report, rejected)


def _too_few(made: int, s: GenSettings, documents: dict, candidates: Counter, rejected: Counter) -> str:
    if not candidates:
        return (
            f"the corpus ({len(documents)} documents) has no fact-bearing sentence (a sentence with a date, "
            "number, amount, duration, name or defined term): no questions can be generated; pass a QA file "
            "with --qa, or a corpus with prose"
        )
    why = ", ".join(f"{k} {v}" for k, v in rejected.most_common() if v)
    return (
        f"only {made} answerable questions could be generated (minimum {s.min_answerable}) from "
        f"{sum(candidates.values())} candidate facts in {len(candidates)} of {len(documents)} documents "
        f"(rejected: {why}); pass a QA file with --qa or lower qa.min_answerable"
    )


def _report(
    s: GenSettings,
    generator: str,
    documents: dict,
    candidates: Counter,
    eval_items: list[dict],
    train: list[dict],
    rejected: Counter,
    una: Counter,
    n_ans: int,
    n_una: int,
    seconds: float,
) -> dict:
    per_doc = {d: {"candidate_facts": candidates[d], "eval": 0, "train": 0} for d in sorted(documents)}
    for x in eval_items:
        if x["source"]:
            per_doc[x["source"]]["eval"] += 1
    for x in train:
        if x["source"]:
            per_doc[x["source"]]["train"] += 1
    without = {
        d: (
            "no fact-bearing sentence"
            if not c["candidate_facts"]
            else "every candidate was rejected (ambiguous, duplicate or answer in question) or another document's "
            "questions filled the quota first"
        )
        for d, c in per_doc.items()
        if not c["eval"]
    }
    ans = [x for x in eval_items if not x["unanswerable"]]
    n_una_made = len(eval_items) - len(ans)
    shortfall = []
    if len(ans) < n_ans:
        shortfall.append(
            f"{len(ans)} of {n_ans} answerable questions (candidate facts ran out after the filters and "
            "the per-document cap; see rejections)"
        )
    if n_una_made < n_una:
        shortfall.append(f"{n_una_made} of {n_una} unanswerable questions (too few verified swaps; see unanswerable)")
    return {
        "generator": generator,
        "seed": s.seed,
        "split": s.split,
        "requested": {"n": s.n, "unanswerable": s.unanswerable},
        "made": {
            "eval": len(eval_items),
            "eval_answerable": len(ans),
            "eval_unanswerable": n_una_made,
            "train": len(train),
            "train_unanswerable": sum(x["unanswerable"] for x in train),
        },
        "shortfall": "; ".join(shortfall),
        "documents": {
            "total": len(documents),
            "covered": sum(1 for c in per_doc.values() if c["eval"]),
            "per_document": per_doc,
            "without_eval_questions": without,
        },
        "answer_types": {
            "eval": dict(Counter(x["answer_type"] for x in eval_items).most_common()),
            "train": dict(Counter(x["answer_type"] for x in train).most_common()),
        },
        "rejections": dict(rejected.most_common()),
        "unanswerable": dict(una.most_common()),
        "checks": evidence_checks(eval_items + train, documents),
        "seconds": round(seconds, 2),
    }


def evidence_checks(items: list[dict], documents: dict[str, str]) -> dict:
    """Shares of answerable items whose answer is verbatim in their evidence and whose evidence is verbatim in
    the source document at its offsets; eval questions equal to a training question."""
    ans = [x for x in items if not x["unanswerable"]]
    in_ev = sum(any(a in x["evidence"]["text"] for a in x["answers"][:1]) for x in ans)
    ev = x_ev = 0
    for x in ans:
        e = x["evidence"]
        ev += documents.get(e["source"], "")[e["start"] : e["end"]] == e["text"]
        x_ev += 1
    return {
        "answerable_items": len(ans),
        "answer_in_evidence": round(in_ev / max(1, len(ans)), 4),
        "evidence_in_source": round(ev / max(1, x_ev), 4),
    }
