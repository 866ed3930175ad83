"""SQuAD v1.1 answer normalisation, the one definition every metric and the hashing embedder compare with.

Standard library only, so any module may import it without an import cycle.

>>> normalize_answer("The  Cat, sat!")
'cat sat'
"""

import re
import string

_PUNCT = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(s: str) -> str:
    """SQuAD v1.1 normalisation: lower, remove punctuation, articles and extra whitespace."""
    s = "".join(ch for ch in s.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", s).split())
