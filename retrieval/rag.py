"""The retrieval arms: top-k chunks placed in the prompt within a token budget, numbered, cited.

arm = RagAnswerer(lm, retriever, name=RAG, use_adapter=False, top_k=3, context_tokens=600)   # advisor.core.arms.RAG
[a] = arm.answer(["Who chairs the board?"])      # a.contexts holds the chunks and sources
With `gate` (retrieval/gate.py Gate), a question whose best chunk is both less similar and stands out less than
the gate's thresholds gets the abstention answer without generating (a.gated).
"""

from __future__ import annotations

from advisor.core.answer import ABSTAIN, Answer, Context, context_block, render_prompt
from retrieval.index import Retriever


def fit_budget(contexts: list[Context], count_tokens, budget: int) -> list[Context]:
    """Keep chunks in rank order while the generator tokens of their numbered block ('[n] (source)' line
    plus text, as the prompt shows it) fit `budget`; the first chunk is always kept, cut to fit if it
    alone is longer."""
    kept: list[Context] = []
    used = 0
    for c in contexts:
        n = count_tokens(context_block([c]))
        if used + n > budget:
            if not kept:
                words = c.text.split()
                while (
                    words
                    and count_tokens(context_block([Context(c.chunk_id, c.source, " ".join(words), 0, c.rank)]))
                    > budget
                ):
                    words = words[: int(len(words) * 0.9)]
                kept.append(Context(c.chunk_id, c.source, " ".join(words), c.score, c.rank))
            break
        kept.append(c)
        used += n
    return kept


class RagAnswerer:
    """A retrieval arm: one batched search for all questions, numbered contexts within the token budget,
    one batched generation; each Answer carries its contexts (chunk ids, sources, scores, ranks)."""

    def __init__(
        self,
        lm,
        retriever: Retriever,
        name: str,
        use_adapter: bool,
        top_k: int = 3,
        context_tokens: int = 600,
        max_new_tokens: int = 32,
        batch_size: int = 16,
        gate=None,
    ):
        self.lm = lm
        self.retriever = retriever
        self.name = name
        self.use_adapter = use_adapter
        self.top_k = top_k
        self.context_tokens = context_tokens
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.gate = gate  # the abstention gate (retrieval/gate.py Gate); None: every question answered

    def answer(self, questions: list[str]) -> list[Answer]:
        hits, signals = self.retriever.search_scored(questions, self.top_k)
        ctxs = [fit_budget(h, self.lm.count_tokens, self.context_tokens) for h in hits]
        # below the gate: the abstention answer, nothing generated
        gated = self.gate.declines_all(signals).tolist() if self.gate is not None else [False] * len(questions)
        asked = [i for i, g in enumerate(gated) if not g]
        prompts = [render_prompt(self.lm.tokenizer, questions[i], ctxs[i]) for i in asked]
        gens = []
        if prompts:
            with self.lm.adapter(self.use_adapter):
                gens = self.lm.generate(prompts, self.max_new_tokens, self.batch_size, desc=f"arm {self.name}")
        out = [Answer(ABSTAIN, c, gated=True) for c in ctxs]
        for i, g in zip(asked, gens):
            out[i] = Answer(g.text, ctxs[i], g.prompt_tokens, g.new_tokens, g.latency_s, g.confidence)
        return out
