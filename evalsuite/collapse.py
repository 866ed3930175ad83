"""Collapse guard: an arm whose answers are degenerate — one answer string for many questions (an adapter that
learned to say '1.' to everything), or empty answers — is flagged, so that its scores are not read as the
option's capability. The stage still finishes; metrics.json's `collapse` block says what was seen.

>>> c = detect_collapse(["1.", "1", "Paris [2]", "I don't know.", "1."])
>>> c["collapsed"], c["top_answer"], c["top_share"], c["reason"]
(True, '1.', 0.6, "60% of its answers are the same string '1.'")
>>> detect_collapse(["Oslo", "14 days", "Rome", "1912", "Ada"] + ["I don't know."] * 5)["collapsed"]  # abstaining is not
False
"""

from __future__ import annotations

import re
import string
from collections import Counter

from advisor.core.answer import strip_citations
from evalsuite.metrics import is_abstention

# An arm is collapsed when one answer string, or the empty answer, is more than this share of its answers.
COLLAPSE_SHARE = 0.20

_ARTICLES = re.compile(r"\b(a|an|the)\b")
# a lead-in before the answer itself: "The answer to this question is:", "A short answer:", "Answer:"
_PREAMBLE = re.compile(r"^\s*(?:(?:a|the)\s+)?(?:short\s+)?answer\b[^:\n]{0,60}:\s*", re.IGNORECASE)
_EDGE = "".join(c for c in string.punctuation if c not in "$%") + string.whitespace  # a unit at an edge is meaning


def collapse_key(text: str) -> str:
    """The string two answers share when they are the same answer: a lead-in such as "The answer to this
    question is:" gone (so "The answer is: 1." and "1." are one answer, and a lead-in with nothing after it is an
    empty answer), lower-cased, articles and extra whitespace gone, punctuation stripped at the edges only ('1.'
    and '1' are one answer). Unlike the SQuAD normalisation of the scores, inner punctuation and units stay, so
    '$0.00' and '0.00%', or '1.5' and '15', are different answers.

    >>> [collapse_key(a) for a in ("1.", "The Oslo.", "$0.00", "0.00%", "1.5", "(tk.txt)", "[...]")]
    ['1', 'oslo', '$0.00', '0.00%', '1.5', 'tk.txt', '']
    >>> [collapse_key(a) for a in ("The answer to this question is: 1961", "Answer: 1961", "The answer to the question is:")]
    ['1961', '1961', '']
    """
    key = " ".join(_ARTICLES.sub(" ", _PREAMBLE.sub("", text).lower()).split()).strip(_EDGE)
    return key if re.search(r"\w", key) else ""


def detect_collapse(answers: list[str], threshold: float = COLLAPSE_SHARE) -> dict:
    """{"collapsed", "top_answer", "top_share", "empty_share", "n", "reason"} over one arm's answers (every
    question). Answers are compared by `collapse_key` with citation markers removed ('1.' and '1 [3]' are the
    same string); an abstention ('I don't know.' or any refusal, `is_abstention`) is a legitimate answer and
    never counts as the degenerate one. `top_answer` is the commonest spelling of the commonest string; an
    answer that is empty once citations and punctuation are gone counts towards `empty_share`."""
    n = len(answers)
    counted: Counter = Counter()
    spellings: dict[str, Counter] = {}
    empty = 0
    for a in answers:
        text = strip_citations(a)
        key = collapse_key(text)
        if not key:
            empty += 1
        elif not is_abstention(text):
            counted[key] += 1
            spellings.setdefault(key, Counter())[text] += 1
    top_key, top_count = counted.most_common(1)[0] if counted else ("", 0)
    top = spellings[top_key].most_common(1)[0][0] if top_key else ""
    top_share, empty_share = (top_count / n, empty / n) if n else (0.0, 0.0)
    reasons = []
    if top_share > threshold:
        reasons.append(f"{top_share:.0%} of its answers are the same string {top!r}")
    if empty_share > threshold:
        reasons.append(f"{empty_share:.0%} of its answers are empty")
    if reasons:
        reason = " and ".join(reasons)
    elif top_key:
        reason = (
            f"no answer string is more than {threshold:.0%} of its answers (the commonest, {top!r}, is {top_share:.0%})"
        )
    else:
        reason = "it gave no answer other than abstentions" + (" and empty answers" if empty else "")
    return {
        "collapsed": bool(reasons),
        "top_answer": top,
        "top_share": round(top_share, 6),
        "empty_share": round(empty_share, 6),
        "n": n,
        "reason": reason,
    }
