"""The `llm` generator: a model writes one question, answer and evidence per passage, as JSON, and only items
that verify are kept: the evidence is verbatim in the passage, the answer is inside the evidence, the answer is
not in the question. A malformed reply is asked again (a stricter prompt) up to `retries` times, then counted as
rejected. The model runs in process (any causal model spec) or behind any OpenAI-compatible endpoint.

    gen = LLMGenerator.in_process(lm)                      # advisor.core.lm.LM
    gen = LLMGenerator.endpoint(client, "served-name")    # advisor.core.openai_client.OpenAIClient
    facts, rejected = gen.facts(passages, documents)
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Callable

from evalsuite.qagen.facts import SPAN_PATTERNS, Fact, document_title, entities

SYSTEM = "You write quiz questions about a passage. You reply with JSON only."
ASK = (
    "Passage:\n{passage}\n\nWrite one question that the passage answers, its short answer (a few words copied "
    "from the passage) and the exact sentence of the passage that contains the answer. Reply with JSON only, "
    'like {{"question": "...", "answer": "...", "evidence": "..."}}'
)
STRICT = (
    "\nYour reply must be one JSON object with the three string fields question, answer and evidence, "
    "and nothing else. The evidence must be copied exactly from the passage."
)
MAX_NEW_TOKENS = 160


def parse_reply(text: str) -> dict | None:
    """The first JSON object in a reply with string fields question, answer and evidence; None when malformed."""
    m = re.search(r"\{.*?\}", text, re.S)
    if not m:
        return None
    try:
        rec = json.loads(m.group(0))
    except json.JSONDecodeError:
        return None
    if not isinstance(rec, dict) or not all(
        isinstance(rec.get(k), str) and rec[k].strip() for k in ("question", "answer", "evidence")
    ):
        return None
    return {k: rec[k].strip() for k in ("question", "answer", "evidence")}


def _answer_type(answer: str) -> str:
    for kind, pat in SPAN_PATTERNS:
        m = pat.fullmatch(answer) if not pat.groups else pat.search(answer)
        if m and (m.end() - m.start()) >= len(answer) - 2:
            return "person" if kind == "name" else kind
    return "other"


def verify(rec: dict, chunk: dict) -> tuple[Fact | None, str]:
    """A Fact with verbatim evidence and answer from a parsed reply, or (None, why it was rejected)."""
    text = chunk["text"]
    at = text.find(rec["evidence"])
    if at < 0:
        return None, "evidence_not_in_passage"
    evidence = rec["evidence"]
    a = evidence.lower().find(rec["answer"].lower())
    if a < 0:
        return None, "answer_not_in_evidence"
    answer = evidence[a : a + len(rec["answer"])]
    if answer.lower() in rec["question"].lower():
        return None, "answer_in_question"
    start = chunk["start"] + at
    return Fact(
        chunk["source"], evidence, start, start + len(evidence), answer, _answer_type(answer), {"llm": rec["question"]}
    ), ""


class LLMGenerator:
    """`complete(list of message lists) -> list of reply texts`, in order, plus a token counter for the plan."""

    def __init__(
        self,
        complete: Callable[[list[list[dict]]], list[str]],
        count_tokens: Callable[[str], int],
        name: str,
        retries: int = 2,
    ):
        self.complete, self.count_tokens, self.name, self.retries = complete, count_tokens, name, retries
        self.samples: list[dict] = []  # a few replies with what became of them, for the report

    @classmethod
    def in_process(cls, lm, retries: int = 2, batch_size: int = 8) -> LLMGenerator:
        def complete(batch: list[list[dict]]) -> list[str]:
            tok = lm.tokenizer
            if lm.has_chat_template:
                prompts = [tok.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in batch]
            else:
                prompts = ["\n\n".join(x["content"] for x in m) + "\n" for m in batch]
            outs = lm.generate(
                prompts, max_new_tokens=MAX_NEW_TOKENS, batch_size=batch_size, stop=("}",), desc="qa generate (llm)"
            )
            return [g.text + "}" if "{" in g.text else g.text for g in outs]

        return cls(complete, lm.count_tokens, lm.spec, retries)

    @classmethod
    def endpoint(cls, client, model: str, retries: int = 2) -> LLMGenerator:
        from advisor.core.openai_client import chat_text

        def complete(batch: list[list[dict]]) -> list[str]:
            return client.map(lambda m: chat_text(client.chat(model, m, max_tokens=MAX_NEW_TOKENS)), batch)

        return cls(complete, lambda s: max(1, len(s) // 4), f"{model} at {client.base_url}", retries)

    @staticmethod
    def messages(chunk: dict, strict: bool = False) -> list[dict]:
        return [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": ASK.format(passage=chunk["text"]) + (STRICT if strict else "")},
        ]

    def plan(self, passages: list[dict]) -> dict:
        """What generation will cost before it starts: passages, prompt tokens, calls (retries not counted)."""
        tokens = sum(self.count_tokens("\n".join(m["content"] for m in self.messages(c))) for c in passages)
        return {
            "passages": len(passages),
            "prompt_tokens": tokens,
            "calls": len(passages),
            "max_retries_per_passage": self.retries,
        }

    def facts(self, passages: list[dict], documents: dict[str, str]) -> tuple[list[Fact], Counter]:
        """Verified facts from the passages; rejections by reason."""
        rejected: Counter = Counter()
        todo = list(passages)
        replies: dict[int, dict] = {}
        last: dict[int, str] = {}
        for attempt in range(self.retries + 1):
            if not todo:
                break
            texts = self.complete([self.messages(c, strict=attempt > 0) for c in todo])
            again = []
            for c, t in zip(todo, texts):
                rec = parse_reply(t)
                last[id(c)] = t
                if rec is None:
                    again.append(c)
                else:
                    replies[id(c)] = rec
            todo = again
        rejected["malformed_after_retries"] += len(todo)
        self.samples = [
            {"source": c["source"], "reply": last[id(c)][:300], "kept": False, "why": "malformed_after_retries"}
            for c in todo[:5]
        ]
        out = []
        for c in passages:
            if id(c) not in replies:
                continue
            fact, why = verify(replies[id(c)], c)
            if len(self.samples) < 10:
                self.samples.append(
                    {
                        "source": c["source"],
                        "reply": last[id(c)][:300],
                        "kept": fact is not None,
                        "why": why or "verified",
                    }
                )
            if fact is None:
                rejected[why] += 1
                continue
            title = document_title(c["source"], documents.get(c["source"], ""))
            fact.title = title
            fact.entities = [x for x in entities(fact.phrasings["llm"], title) if x != fact.answer]
            out.append(fact)
        return out, rejected


def pick_passages(chunks: list[dict], n: int, seed: int) -> list[dict]:
    """At most n chunks, round-robin over documents in a seeded order (every document before any second)."""
    rng = random.Random(seed)
    by_doc: dict[str, list[dict]] = {}
    for c in chunks:
        by_doc.setdefault(c["source"], []).append(c)
    docs = sorted(by_doc)
    rng.shuffle(docs)
    for cs in by_doc.values():
        rng.shuffle(cs)
    out: list[dict] = []
    while len(out) < n and any(by_doc[d] for d in docs):
        for d in docs:
            if by_doc[d] and len(out) < n:
                out.append(by_doc[d].pop())
    return out
