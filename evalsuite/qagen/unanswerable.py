"""Unanswerable questions: a real generated question with its key entity swapped for one the corpus never
mentions, verified against the WHOLE corpus, not the seed document's neighbours.

Verification (both must hold, else the item is dropped and counted):
  1. exact: no word of the swapped-in name occurs in any chunk (case-insensitive word match);
  2. BM25: among the top-k chunks of a BM25 search of the swapped question over every chunk, none holds the
     original answer next to a near spelling of the swapped-in name (edit distance 1 or the same first five
     letters), i.e. no chunk answers the question for that entity under another spelling.
The item records the search's top-k chunk ids and whether the original answer's chunk is among them (then
the retrieval arms see a passage that answers a *similar* question: a hallucination trap, which is the point).

    maker = Unanswerables(chunks, vocabulary_words, seed=0)
    item = maker.make(question, entities, original_answer)   # None when no swap verifies
"""

from __future__ import annotations

import random
import re

from evalsuite.qagen.facts import STOP, THING_WORDS

ONSETS = [
    "b",
    "br",
    "d",
    "dr",
    "f",
    "g",
    "gr",
    "k",
    "kl",
    "l",
    "m",
    "n",
    "p",
    "pr",
    "qu",
    "r",
    "s",
    "st",
    "t",
    "tr",
    "v",
    "z",
    "th",
    "sh",
    "w",
    "h",
]
NUCLEI = ["a", "e", "i", "o", "u", "ai", "ea", "ou", "y"]
CODAS = ["", "", "n", "r", "l", "s", "th", "nd", "rk", "st", "m", "x", "v"]
TOP_K = 5


def _edit1(a: str, b: str) -> bool:
    """True when a and b are at most one insertion, deletion or substitution apart."""
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1 :] or (len(a) == len(b) and a[i + 1 :] == b[i + 1 :])


class Unanswerables:
    """Makes and verifies entity-swapped questions over one corpus."""

    def __init__(self, chunks: list[dict], words: set[str], seed: int = 0):
        import bm25s

        self.chunks = chunks
        self.words = {w.lower() for w in words}
        # Every word of every chunk, lower-cased: the exact check is a set lookup, not a scan per question.
        self.chunk_words = {w.lower() for c in chunks for w in re.findall(r"[A-Za-z]+", c["text"])}
        self.prefixes = {w[:5] for w in self.words if len(w) >= 5}
        self.rng = random.Random(seed)
        self.used: set[str] = set()
        self.bm25 = bm25s.BM25()
        self.bm25.index(
            bm25s.tokenize([c["text"] for c in chunks], stopwords="en", show_progress=False), show_progress=False
        )

    def invent(self) -> str:
        """A capitalised made-up word that is not in the corpus, not close to a corpus word, not used before."""
        for _ in range(1000):
            w = "".join(
                self.rng.choice(ONSETS) + self.rng.choice(NUCLEI) + self.rng.choice(CODAS)
                for _ in range(self.rng.choice((2, 2, 3)))
            )
            if 5 <= len(w) <= 11 and w not in self.words and w[:5] not in self.prefixes and w not in self.used:
                self.used.add(w)
                return w.capitalize()
        raise RuntimeError("could not invent a word absent from the corpus")

    def _invent_like(self, word: str) -> str:
        """An invented word written as the one it replaces: capitalised for a name, lower case for an
        identifier ('cormor' -> 'brandel')."""
        w = self.invent()
        return w.lower() if word[:1].islower() else w

    def swap(self, question: str, entity: str, title: str | None = None) -> tuple[str, str] | None:
        """The question with the entity's distinctive words replaced by invented ones, and the new name."""
        at = question.rfind(entity)  # the last mention: the first may be inside the document's title
        if at < 0 or (title and title in question and at < question.index(title) + len(title)):
            return None
        new = [self._invent_like(w) if w not in THING_WORDS and w.lower() not in STOP else w for w in entity.split()]
        name = " ".join(new)
        if name == entity:
            return None
        return question[:at] + name + question[at + len(entity) :], name

    def verify(self, question: str, name: str, original_answer: str) -> tuple[bool, str, dict]:
        """(verified, failure reason, evidence of the checks)."""
        import bm25s

        invented = [w.lower() for w in name.split() if w not in THING_WORDS and w.lower() not in STOP]
        if any(w in self.chunk_words for w in invented):
            return False, "swapped_name_in_corpus", {}
        k = min(TOP_K, len(self.chunks))
        res, _ = self.bm25.retrieve(
            bm25s.tokenize([question], stopwords="en", show_progress=False), k=k, show_progress=False
        )
        top = [self.chunks[int(i)] for i in res[0]]
        ans = original_answer.lower()
        answer_chunks = [c for c in top if ans in c["text"].lower()]
        for c in answer_chunks:
            toks = {t.lower() for t in re.findall(r"[A-Za-z]+", c["text"])}
            if any(_edit1(w, t) or (len(t) >= 5 and t[:5] == w[:5]) for w in invented for t in toks):
                return False, "answered_under_near_spelling", {}
        return True, "", {"bm25_top_k": [c["id"] for c in top], "original_answer_in_top_k": bool(answer_chunks)}

    def make(
        self, question: str, entities: list[str], original_answer: str, title: str | None = None
    ) -> tuple[dict | None, str]:
        """A verified unanswerable question from a generated one: (item fields or None, failure reason)."""
        reason = "no_entity_to_swap"
        for entity in entities:
            swapped = self.swap(question, entity, title)
            if swapped is None:
                continue
            q, name = swapped
            ok, reason, checks = self.verify(q, name, original_answer)
            if ok:
                return {"question": q, "swap": {"from": entity, "to": name}, "verification": checks}, ""
        return None, reason
