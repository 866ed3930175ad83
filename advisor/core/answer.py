"""The one answering interface every arm implements, and the prompt every arm shares.

Evaluation sees arms only through `Answerer.answer(questions) -> list[Answer]` (docs/architecture.md, 'The four arms and the prompts').
All arms use the same instruction; retrieval arms add a numbered context block. The tuning
track renders its training prompts with the same `render_prompt`, so the adapter learns the
format it is evaluated in.

    arm = ClosedBook(lm, name=BASE, use_adapter=False)      # BASE: advisor.core.arms, the arm table
    [a] = arm.answer(["What is the late-payment fee?"])
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Protocol, runtime_checkable

ABSTAIN = "I don't know."
# Kept short: every prompt of every arm (and every training pair) carries it.
INSTRUCTION = f"Answer with a short phrase only. If you do not know the answer, reply exactly: {ABSTAIN}"
CONTEXT_INSTRUCTION = (
    f"Use the numbered passages and cite the one you used like [1]. If they lack the answer, reply exactly: {ABSTAIN}"
)
# Models without a chat template (base LMs) get the instruction plus generic examples: two answered and one whose
# right answer is the abstention answer. With the two answered ones only, Gemma 3 270M never abstained; the third
# made it abstain on some unanswerable questions at no cost in accuracy, where examples in the passage form cost
# 7 points with three passages (docs/fine-tuning-measured.md, 'Few-shot examples for models without a chat template').
FEW_SHOT = (
    "Question: At what temperature does water boil at sea level?\nAnswer: 100 °C\n\n"
    "Question: Who wrote the play Hamlet?\nAnswer: William Shakespeare\n\n"
    f"Question: What was the serial number of the first lamp sold in Oslo?\nAnswer: {ABSTAIN}\n\n"
)


@dataclass
class Context:
    chunk_id: str
    source: str
    text: str
    score: float
    rank: int  # 1-based position in the prompt


@dataclass
class Answer:
    text: str
    contexts: list[Context] = field(default_factory=list)
    prompt_tokens: int = 0
    new_tokens: int = 0
    latency_s: float = 0.0
    confidence: float | None = None  # geometric-mean probability of the answer's tokens (wrong-and-confident rate)
    gated: bool = False  # the abstention answer from the retrieval gate (retrieval/gate.py), nothing generated

    def to_dict(self) -> dict:
        return asdict(self)


@runtime_checkable
class Answerer(Protocol):
    name: str

    def answer(self, questions: list[str]) -> list[Answer]:
        """Answers in input order; implementations batch internally."""
        ...


def context_block(contexts: list[Context]) -> str:
    return "\n\n".join(f"[{c.rank}] ({c.source})\n{c.text.strip()}" for c in contexts)


class Prompt(str):
    """A rendered prompt that also carries the chat messages it was rendered from (None for plain prompts).
    In-process generation reads the text; an OpenAI-compatible server gets the messages and applies the
    same chat template itself, so both backends answer the same prompt."""

    messages: list[dict] | None

    def __new__(cls, text: str, messages: list[dict] | None = None):
        obj = super().__new__(cls, text)
        obj.messages = messages
        return obj


def chat_prompt(tokenizer, messages: list[dict]) -> Prompt:
    """`messages` rendered by the tokenizer's chat template up to where the assistant's reply starts."""
    return Prompt(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True), messages)


def render_prompt(tokenizer, question: str, contexts: list[Context] | None = None) -> Prompt:
    """The full prompt text up to where the answer starts (chat template when the model has one)."""
    user = _user_message(question, contexts)
    if getattr(tokenizer, "chat_template", None):
        return chat_prompt(tokenizer, [{"role": "system", "content": INSTRUCTION}, {"role": "user", "content": user}])
    return Prompt(f"{INSTRUCTION}\n\n{FEW_SHOT}{user}\nAnswer:")


def _user_message(question: str, contexts: list[Context] | None) -> str:
    if contexts:
        return f"Context:\n{context_block(contexts)}\n\n{CONTEXT_INSTRUCTION}\nQuestion: {question}"
    return f"Question: {question}"


def render_target(tokenizer, question: str, answer: str, contexts: list[Context] | None = None) -> tuple[str, str]:
    """(prompt, completion) for training: the completion is exactly what the template puts after the
    prompt for an assistant reply, end-of-turn tokens included, so loss is taken on answer tokens only."""
    prompt = render_prompt(tokenizer, question, contexts)
    if getattr(tokenizer, "chat_template", None):
        messages = [
            {"role": "system", "content": INSTRUCTION},
            {"role": "user", "content": _user_message(question, contexts)},
            {"role": "assistant", "content": answer},
        ]
        full = tokenizer.apply_chat_template(messages, tokenize=False)
        if full.startswith(prompt):
            return prompt, full[len(prompt) :]
        return prompt, answer + (tokenizer.eos_token or "")
    return prompt, f" {answer}\n\n"


_CITATION = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")


def cite(answer: str, rank: int) -> str:
    """An answer with its passage number beside it, the form the retrieval arms are asked for: '14 days [2]'."""
    return f"{answer} [{rank}]"


def strip_citations(text: str) -> str:
    """'Paris [1].' -> 'Paris.': citation markers are kept in the record but not scored as answer text."""
    return _CITATION.sub("", text).strip()


def cited_ranks(text: str) -> list[int]:
    return sorted({int(n) for m in re.findall(r"\[([\d,\s]+)\]", text) for n in re.findall(r"\d+", m)})


class ClosedBook:
    """The base and tuned arms: the model alone, adapter on or off."""

    def __init__(self, lm, name: str, use_adapter: bool, max_new_tokens: int = 32, batch_size: int = 16):
        self.lm = lm
        self.name = name
        self.use_adapter = use_adapter
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size

    def answer(self, questions: list[str]) -> list[Answer]:
        prompts = [render_prompt(self.lm.tokenizer, q) for q in questions]
        with self.lm.adapter(self.use_adapter):
            gens = self.lm.generate(prompts, self.max_new_tokens, self.batch_size, desc=f"arm {self.name}")
        return [Answer(g.text, [], g.prompt_tokens, g.new_tokens, g.latency_s, g.confidence) for g in gens]
