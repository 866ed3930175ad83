"""Word n-gram overlap between a question and a set of texts: how much of a question's wording a training example
already holds. The tune stage's leakage report (tuning/data.py) and the evaluation's wording groups
(evalsuite/wording.py) measure it the same way.

>>> grams = [ngrams("What is the capital of Norway?"), ngrams("Who founded the city of Oslo?")]
>>> closest("When was the city of Oslo founded?", grams)
(0.25, 1)
>>> closest("Capital?", grams)
(0.0, -1)
"""

from __future__ import annotations

import re

NGRAM = 4  # word 4-grams: long enough that shared ones are shared wording, not shared topic words


def normalise(s: str) -> str:
    """Lower case, words only, single spaces: 'The Fjord, (1048)!' -> 'the fjord 1048'."""
    return " ".join(re.findall(r"\w+", s.lower()))


def ngrams(text: str, n: int = NGRAM) -> set[tuple[str, ...]]:
    """The set of word n-grams of `text` (normalised); empty when it has fewer than n words."""
    w = normalise(text).split()
    return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}


def closest(question: str, example_grams: list[set[tuple[str, ...]]]) -> tuple[float, int]:
    """(share, index): the largest share of the question's word n-grams found in one example's n-grams, and
    that example's index; (0.0, -1) when no example shares any or the question is shorter than n words."""
    g = ngrams(question)
    best, best_j = 0.0, -1
    if not g:
        return best, best_j
    for j, eg in enumerate(example_grams):
        o = len(g & eg) / len(g)
        if o > best:
            best, best_j = o, j
    return best, best_j
