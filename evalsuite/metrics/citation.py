"""Bare citations: an answer that is only a citation marker ('[4] (tk.txt)', '[1].', or the passage header's
number in another bracket form before a document name, '(1) (tk.txt)') where the retrieval arms' prompt asks for
the answer with its citation beside it. Such an answer scores as wrong on every accuracy
metric, but the failure is the prompt's, not the knowledge's, so it is counted on its own.

>>> m = BareCitation()
>>> m.score(Sample("q", ["8.6.12"], raw_prediction="[4] (tk.txt)")).value
1.0
>>> m.score(Sample("q", ["8.6.12"], raw_prediction="[1].")).value
1.0
>>> m.score(Sample("q", ["8.6.12"], raw_prediction="(1) (tk.txt)")).value
1.0
>>> m.score(Sample("q", ["8.6.12"], raw_prediction="8.6.12 [4]")).value
0.0
>>> m.score(Sample("q", ["8.6.12"], raw_prediction="8.6.12")).value   # closed book: no marker, never bare
0.0
"""

from __future__ import annotations

import re

from advisor.core.answer import cited_ranks, strip_citations
from evalsuite.metrics.base import Metric, Sample, Score, register_metric
from evalsuite.normalize import normalize_answer

# A document name as the context block shows it, '(tk.txt)' or 'guides/a.md#3': the corpus' file types only, so
# that an answer such as 'Node.js [2]' is not taken for a file name.
_FILE_NAME = re.compile(r"[\w./-]*\w\.(?:txt|md|markdown|html?|pdf|jsonl?|rst|csv)(?:#\S*)?\b", re.IGNORECASE)
# A passage header's number in another bracket form, before a parenthesis: '(1) (packages.jsonl#107)', '1. (Warsaw.md)',
# '1) (Warsaw.md)'. Only a bare citation when a document name follows ('1.' alone may be the answer): asked for no
# citation, SmolLM2-135M wrote it for 40 of 125 questions on a records corpus (docs/fine-tuning-measured.md, 'The
# retrieval arms' prompt').
_HEADER_NUMBER = re.compile(r"^\s*(?:\(\d+\)|\d+[.)])\s*(?=\()")
# Words that point at a passage instead of answering: 'See source [2].', 'According to the passage [1].',
# 'The answer to the question is: [1]'.
_POINTER_WORDS = frozenset(
    [
        "source",
        "sources",
        "passage",
        "passages",
        "document",
        "documents",
        "doc",
        "context",
        "see",
        "cited",
        "citation",
        "reference",
        "references",
        "ref",
        "according",
        "to",
        "in",
        "from",
        "answer",
        "question",
        "this",
        "is",
        "here",
        "it",
        "of",
    ]
)


def is_bare_citation(raw: str, sources: list[str] | tuple[str, ...] = ()) -> bool:
    """True when `raw` holds a citation marker like [4] and nothing else but document names (`sources`, or
    anything named like a corpus file), pointer words ('source', 'see', 'according to') and punctuation; or
    opens with a passage number in another bracket form, '(1)' or '1.', followed by a document name and nothing
    else of that kind.

    >>> is_bare_citation("See [2] (refunds.md)."), is_bare_citation("Within 14 days [2] (refunds.md).")
    (True, False)
    >>> is_bare_citation("[3] (pkg-17)", sources=["pkg-17"])
    True
    >>> is_bare_citation("The answer to the question is: [1] (packages.jsonl#86)")  # seen on a records corpus
    True
    >>> is_bare_citation("1. (Warsaw.md)"), is_bare_citation("1. (about one)")
    (True, False)
    """
    if cited_ranks(raw):
        text = _without_document_names(strip_citations(raw), sources)
    else:
        header = _HEADER_NUMBER.match(raw)
        if not header:
            return False
        rest = raw[header.end() :]
        text = _without_document_names(rest, sources)
        if text == rest:  # no document name after the number: '3. (three days)' may be an answer
            return False
    return not [w for w in normalize_answer(text).split() if w not in _POINTER_WORDS]


def scored_answer(raw: str, sources: list[str] | tuple[str, ...] = ()) -> str:
    """The answer text every accuracy metric scores: the citation markers taken out (`strip_citations`), and a
    passage header's number in another bracket form too where a document name follows it, so that '(1)
    (packages.jsonl#7)' scores as '[1] (packages.jsonl#7)' does: a citation, not the answer '1'.

    >>> scored_answer("14 days [2]"), scored_answer("(1) (packages.jsonl#7)"), scored_answer("1) (a.md) 14 days")
    ('14 days', '(packages.jsonl#7)', '(a.md) 14 days')
    >>> scored_answer("3. (three days)"), scored_answer("1.")  # no document name after the number: the answer
    ('3. (three days)', '1.')
    """
    text = strip_citations(raw)
    header = _HEADER_NUMBER.match(text)
    if header and _without_document_names(text[header.end() :], sources) != text[header.end() :]:
        return text[header.end() :].strip()
    return text


def row_scored_answer(row: dict) -> str:
    """`scored_answer` of a saved answer row (eval/<arm>.jsonl): its answer against its passages' sources.

    >>> row_scored_answer({"answer": "(2) (a.md#1) 14 days", "contexts": [{"source": "a.md#1"}]})
    '(a.md#1) 14 days'
    """
    return scored_answer(row["answer"], [c["source"] for c in row.get("contexts") or []])


def _without_document_names(text: str, sources: list[str] | tuple[str, ...]) -> str:
    for s in sorted({s for s in sources if s}, key=len, reverse=True):  # longest first: 'a.md#1' before 'a.md'
        text = re.sub(re.escape(s), " ", text, flags=re.IGNORECASE)
    return _FILE_NAME.sub(" ", text)


@register_metric
class BareCitation(Metric):
    """Over all questions of every arm: 1 when the answer is a bare citation marker (`is_bare_citation`) instead
    of the answer with its citation beside it; a closed-book answer scores 0 unless it, too, is only a marker."""

    name, label = "bare_citation_rate", "bare citation answers"
    higher_is_better = False
    applies_to = "all"

    def score(self, sample: Sample) -> Score:
        raw = sample.prediction if sample.raw_prediction is None else sample.raw_prediction
        if is_bare_citation(raw, sample.context_sources):
            return Score(1.0, f"only a citation, no answer: {raw.strip()[:60]!r}")
        return Score(0.0, "answers beside its citation" if cited_ranks(raw) else "no citation marker")
