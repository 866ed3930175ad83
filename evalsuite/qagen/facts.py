"""Candidate facts from documents, and the questions made from them by rules (the `extractive` generator).

A candidate fact is a sentence of a document that carries a specific answer span: a date, a time, an
amount of money, a percentage, a duration, a count, a version number, a licence, a person's or a named
thing's name, an acronym's expansion or a defined term. The answer is the span, verbatim; the evidence is the
sentence, verbatim, with its character offsets in the document. Each fact yields several phrasings:

  fronted   "According to the Late Payment Policy, how many days is every bill due after the bill date?"
  in_situ   "In the Late Payment Policy, every bill is due how many days after the bill date?"
  cloze     "In the Late Payment Policy: 'Every bill is due ___ after the bill date.' What fills the blank?"

(acronyms and defined terms have their own templates). One phrasing goes to evaluation and the others may go
to training (a split by fact), so the tuned arm learns the fact without ever seeing the evaluation wording.

    facts, reasons = extract_facts(documents)
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
WEEKDAYS = "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"
NUMBER_WORDS = "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve"
UNITS = r"(?:working |business |calendar )?(?:second|minute|hour|day|week|fortnight|month|quarter|year)s?"

# (answer type, pattern); the first group (or the whole match) is the answer. Earlier types win overlaps.
SPAN_PATTERNS: list[tuple[str, re.Pattern]] = [
    (
        "version",
        re.compile(
            # a release number after "version" ("version 2.1")
            r"(?<=\bversion )v?\d+(?:\.\d+)+(?:[-+.]?[A-Za-z0-9]+)*"
            # or any three-part one ("0.2.17", "v1.4.0-rc1"), not inside an address or a dotted date
            r"|(?<![\w.])v?\d{1,3}\.\d{1,3}\.\d{1,3}(?:[-+][A-Za-z0-9]+)*\b(?!\.\d)",
            re.I,
        ),
    ),
    # a licence's identifier before the word licence ("the Apache-2.0 licence", "MIT license"), not "the Apache License"
    ("licence", re.compile(r"\b[A-Z][\w.+-]*[A-Z0-9][\w.+-]*(?=\s+licen[cs]e\b)")),
    (
        "date",
        re.compile(
            rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s(?:{MONTHS})(?:\s\d{{4}})?\b|\b(?:{MONTHS})\s\d{{1,2}}(?:st|nd|rd|th)?,?\s\d{{4}}\b|\b\d{{4}}-\d{{2}}-\d{{2}}\b"
        ),
    ),
    ("month", re.compile(rf"\b(?:{MONTHS})\s\d{{4}}\b")),
    (
        "time",
        re.compile(r"\b\d{1,2}(?:[:.]\d{2})?\s?(?:am|pm|a\.m\.|p\.m\.)(?![A-Za-z])|\b(?:[01]?\d|2[0-3]):[0-5]\d\b"),
    ),
    ("amount", re.compile(r"[£$€]\s?\d[\d,]*(?:\.\d+)?(?:\s?(?:million|billion|bn|m|k)\b)?")),
    ("percentage", re.compile(r"\b\d+(?:\.\d+)?\s?(?:%|per cent\b|percent\b)")),
    ("duration", re.compile(rf"\b(?:\d+(?:\.\d+)?|{NUMBER_WORDS})\s{UNITS}\b(?![-–])", re.I)),
    ("year", re.compile(r"(?<![\d£$€.,-])\b(?:1[5-9]|20)\d{2}\b(?![-–/.,]?\d)")),
    ("weekday", re.compile(rf"\b(?:{WEEKDAYS})s?\b")),
    ("count", re.compile(r"(?<![\w£$€.,/-])(\d[\d,]*(?:\.\d+)?)\s(?=[a-zA-Z][a-zA-Z-]+)")),
    ("name", re.compile(r"(?<![\w'])([A-Z][a-z]+(?:\s(?:of\s|the\s|and\s|&\s)?[A-Z][a-z]+){1,3})\b")),
]
WH = {
    "version": "which version",
    "licence": "which licence",
    "date": "what date",
    "month": "which month",
    "time": "what time",
    "amount": "how much",
    "percentage": "what percentage",
    "year": "what year",
    "weekday": "which day",
    "person": "who",
    "name": "what",
}
ANSWER_TYPES = (
    "version",
    "licence",
    "date",
    "month",
    "time",
    "amount",
    "percentage",
    "duration",
    "year",
    "weekday",
    "count",
    "person",
    "name",
    "acronym",
    "term",
)

# A sentence opening with one of these starts with a clause or a phrase, not with its subject.
NOT_SUBJECT = set(
    """if when whenever after before while although though because unless once where as since for in on
at by with without during under over from to until within between following upon""".split()
)
ARTICLES = {"a", "an", "the"}
# Words between a count and its noun that the question keeps: "7 other packages" -> "how many other packages".
COUNT_QUALIFIERS = ("other",)
_COUNT_NOUN = re.compile(rf"\s*((?:(?:{'|'.join(COUNT_QUALIFIERS)})\s)?[a-zA-Z][a-zA-Z-]+)")
AUX = {"is", "are", "was", "were", "can", "will", "must", "may", "should", "could", "would", "has", "have", "had"}
STOP = set(
    """a an the of to in on at by for from with and or but is are was were be been being it its this that
these those as not no any all each every per than then there their they them we our you your he she his her which who
whom what when where how many much if into over under after before during within up out about also only may must can
will would should could has have had do does did so such more most other same own""".split()
)
# Words that make a capitalised sequence a named thing (organisation, place, scheme), not a person.
THING_WORDS = set(
    """Policy Team Centre Center Plan Scheme Register Plant Network Office Committee Board Programme
Program System Street Road Lane Cooperative Company Council Fund Service Services Exchange Group Trust Station
Substation Hall House Court Park Bank Agency University College School Hospital Club Union Association Department
Ministry Act Day Grid Heat Energy Power Meter App Portal Valley River Bridge Square Tariff Account Rule Rules
Procedure Report Review Card Code Form Desk Line Hub Book Path Fire Storm Outage Project Award Prize Trail Way""".split()
)
_SENT_END = re.compile(r"(?<=[.!?])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9£$€*])")
# A full stop before a lower-case word ends a sentence too when the word before it is a word, not an
# abbreviation: records start sentences with lower-case identifiers ("... by Lena Okafor. wickyar-kit was ...").
_SENT_END_LOWER = re.compile(r"(?<=[A-Za-z0-9]{2}[.!?])\s+(?=[a-z][\w-]*\s)")
ABBREVIATIONS = {"etc", "vs", "approx", "incl", "excl", "ca", "cf", "al", "fig", "no", "vol", "pp", "ed"}
_LIST_MARK = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+")
_ACRONYM_FIRST = re.compile(r"\b([A-Z][A-Z0-9&]{1,7})\s\(([A-Za-z][A-Za-z' -]{3,60}?)\)")
_ACRONYM_LAST = re.compile(r"\b((?:[A-Z][a-z]+\s(?:(?:of|and|for|the)\s)?){1,6}[A-Z][a-z]+)\s\(([A-Z][A-Z0-9&]{1,7})\)")
_DEFINED = re.compile(r"^\s*(?:[-*+•]\s+)?\*\*([^*]{2,60})\*\*\s*[–—:-]\s*(.+)$")
_WORD = re.compile(r"[A-Za-z0-9£$€%]+(?:['’.-][A-Za-z0-9]+)*")
_SENTENCE_START = re.compile(r"(?:^|[.!?:#*>\n-]\s*|\d\.\s*|\n\s*)$")
PLACEHOLDER = "\u2063"  # invisible separator: marks the answer span while the sentence is cleaned


@dataclass
class Fact:
    """One answer span in one sentence, with the phrasings made from it."""

    source: str  # document id
    evidence: str  # the sentence, verbatim
    start: int  # character offsets of the evidence in the document text
    end: int
    answer: str  # verbatim span inside the evidence
    answer_type: str
    phrasings: dict[str, str] = field(default_factory=dict)  # kind -> question
    title: str | None = None  # the document's title, as the questions name it
    entities: list[str] = field(default_factory=list)  # named entities in the question (for unanswerable swaps)

    @property
    def key(self) -> str:
        return f"{self.source}:{self.start}:{self.answer}"


def document_title(doc_id: str, text: str) -> str | None:
    """The first Markdown heading, else the file name in words; None for records of a JSONL/CSV file."""
    m = re.search(r"^\s*#\s+(.+?)\s*#*\s*$", text[:2000], re.M)
    if m:
        return m.group(1).strip().strip("*")
    if "#" in doc_id:
        return None
    stem = Path(doc_id).stem.replace("_", " ").replace("-", " ").strip()
    return stem.title() if re.search(r"[A-Za-z]{3}", stem) else None


def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each prose sentence: line by line, headings, tables and code blocks skipped,
    list markers left out of the span."""
    out: list[tuple[int, int]] = []
    mid_line: set[int] = set()  # starts of sentences that follow another on the same line
    in_code = False
    for m in re.finditer(r"[^\n]+", text):
        line = m.group(0)
        stripped = line.strip()
        if stripped.startswith("```"):
            in_code = not in_code
            continue
        if in_code or not stripped or stripped.startswith(("#", "|", ">", "<")):
            continue
        lm = _LIST_MARK.match(line)
        base = m.start() + (lm.end() if lm else len(line) - len(line.lstrip()))
        body = text[base : m.end()]
        pos = 0
        for cut in sorted(_sentence_ends(body), key=lambda c: c[0]):
            out.append((base + pos, base + cut[0]))
            pos = cut[1]
            mid_line.add(base + pos)
        out.append((base + pos, base + len(body.rstrip())))
    # A line starting in lower case continues a list's stem sentence: not self-contained. A lower-case sentence
    # after a full stop on the same line starts with an identifier and stands alone.
    return [
        (s, e)
        for s, e in out
        if len(_WORD.findall(text[s:e])) >= 5 and e - s <= 600 and (s in mid_line or not text[s : s + 1].islower())
    ]


def _sentence_ends(body: str) -> list[tuple[int, int]]:
    """(end of a sentence, start of the next) in one line: before a capital, digit or quote, or before a
    lower-case word when the word ending in the full stop is not an abbreviation."""
    cuts = [(c.start(), c.end()) for c in _SENT_END.finditer(body)]
    for c in _SENT_END_LOWER.finditer(body):
        word = re.search(r"([\w.]+)[.!?]$", body[: c.start()])
        if word and "." not in word.group(1) and word.group(1).lower() not in ABBREVIATIONS:
            cuts.append((c.start(), c.end()))
    return cuts


def _clean(s: str) -> str:
    """Markdown emphasis, links and code marks removed; whitespace collapsed."""
    s = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", s)
    s = re.sub(r"(\*\*|__|`)", "", s)
    s = re.sub(r"(?<![\w*])\*(?!\s)([^*]+)\*", r"\1", s)
    return " ".join(s.split())


def content_words(s: str) -> list[str]:
    return [w for w in (x.lower() for x in _WORD.findall(s)) if w not in STOP and w != PLACEHOLDER]


class Vocabulary:
    """How often each word is written lower-case vs capitalised in the corpus (to lower-case a sentence's
    first word only when it is an ordinary word), and in how many documents each name occurs."""

    def __init__(self, texts: dict[str, str]):
        self.lower: Counter = Counter()
        self.cap: Counter = Counter()
        self.doc_freq: Counter = Counter()
        self.n_docs = max(1, len(texts))
        for text in texts.values():
            words = _WORD.findall(text)
            for m in _WORD.finditer(text):
                w = m.group(0)
                if w[:1].islower():
                    self.lower[w.lower()] += 1
                elif not _SENTENCE_START.search(text[max(0, m.start() - 3) : m.start()]):
                    self.cap[w.lower()] += 1  # capitalised mid-sentence: a name (sentence starts say nothing)
            self.doc_freq.update({w.lower() for w in words})

    def words(self) -> set[str]:
        return set(self.lower) | set(self.cap)

    def identifier(self, word: str) -> bool:
        """A lower-case name that one document repeats and no capital ever starts ('zanmor-py')."""
        w = word.lower()
        return word[:1].islower() and not self.cap[w] and self.lower[w] >= 2 and self.doc_freq[w] == 1

    def ordinary(self, word: str) -> bool:
        w = word.lower()
        return w in STOP or self.lower[w] >= self.cap[w]


def _spans(sentence: str) -> list[tuple[str, int, int]]:
    """(answer type, start, end) of non-overlapping answer spans, earlier pattern types first."""
    taken: list[tuple[str, int, int]] = []
    for kind, pat in SPAN_PATTERNS:
        for m in pat.finditer(sentence):
            g = 1 if pat.groups else 0
            s, e = m.start(g), m.end(g)
            if kind == "name" and (s == 0 or _in_list(sentence, s, e)):  # a sentence start; one of a list
                continue
            if kind == "count" and m.group(0):  # "3 of the ..." is no count of a thing; "7 other packages" is
                nxt = (sentence[e:].split() or [""])[0].lower().strip(",.;")
                if nxt in STOP and nxt not in COUNT_QUALIFIERS:
                    continue
            if any(s < te and ts < e for _, ts, te in taken):
                continue
            taken.append((kind, s, e))
    return sorted(taken, key=lambda t: t[1])


def _in_list(sentence: str, s: int, e: int) -> bool:
    """'Marrowby, Dunmere and Cobbleton': a name between commas or before 'and' after a comma."""
    before, after = sentence[:s].rstrip(), sentence[e:].lstrip()
    return before.endswith((",", ":")) and (after.startswith(",") or after.startswith("and "))


def _name_kind(sentence: str, s: int, e: int, vocab: Vocabulary) -> str:
    """'person' for a name none of whose words the corpus also writes in lower case ('Marcus Eldridge'),
    else 'name' ('Night Saver', 'Service Desk', anything after an article)."""
    words = sentence[s:e].split()
    before = sentence[:s].split()[-1:]
    if (
        len(words) > 3
        or any(w in THING_WORDS or vocab.lower[w.lower()] for w in words)
        or (before and before[0].lower() in ("a", "an", "the", "our", "its"))
    ):
        return "name"
    return "person"


def _wh(kind: str, answer: str, sentence_after: str) -> tuple[str, str]:
    """(wh-phrase, text the wh-phrase replaces after the answer): durations keep their unit in the wh-phrase,
    counts take the noun that follows them."""
    if kind == "duration":
        unit = re.sub(r"^\S+\s", "", answer).lower()
        unit = unit if unit.endswith("s") else unit + "s"
        return f"how many {unit}", ""
    if kind == "count":
        noun = _COUNT_NOUN.match(sentence_after)
        return (f"how many {noun.group(1)}", noun.group(0)) if noun else ("how many", "")
    if kind == "licence":  # "under the MIT licence" -> "under which licence"
        word = re.match(r"\s*licen[cs]e\b", sentence_after)
        return WH[kind], word.group(0) if word else ""
    return WH[kind], ""


def _tidy(s: str) -> str:
    """Spaces left around punctuation where a span was cut out."""
    s = re.sub(r"\s+([,;:.)?])", r"\1", s)
    s = re.sub(r"\(\s+", "(", s)
    return re.sub(r",\s*,", ",", " ".join(s.split()))


def _join(prefix: str | None, body: str, vocab: Vocabulary) -> str:
    body = _tidy(body).strip().rstrip(".;:!?,").strip()
    first = body.split(" ", 1)[0]
    if first and first[:1].isupper() and vocab.ordinary(first.strip("\"'“(")) and (first == "A" or not first.isupper()):
        body = body[:1].lower() + body[1:]
    if prefix:
        return f"{prefix}, {body}?"
    if vocab.identifier(first):  # a record's identifier keeps its case ("zanmor-py was last updated ...")
        return body + "?"
    return body[:1].upper() + body[1:] + "?"


def _fronted(words: list[str], wh: str, vocab: Vocabulary) -> str | None:
    """'Every bill is due X after the date' -> 'how many days is every bill due after the date': the wh-phrase
    first, then the first auxiliary, the subject and the rest. None when the sentence does not have that shape."""
    if PLACEHOLDER not in words:
        return None
    p = words.index(PLACEHOLDER)
    aux = next((i for i, w in enumerate(words) if w.lower() in AUX), None)
    if aux is None or not 1 <= aux <= 8 or any("," in w for w in words[:aux]) or words[0].lower() in NOT_SUBJECT:
        return None
    if p == 0:  # the answer is the subject: "X was elected chair" -> "who was elected chair"
        return " ".join([wh] + words[1:])
    if p <= aux or words[p - 1].lower() in ARTICLES or "(" in words[p - 1] or any("," in w for w in words[aux:p]):
        return None
    subject = words[:aux]
    if subject and vocab.ordinary(subject[0]) and (subject[0] == "A" or not subject[0].isupper()):
        subject = [subject[0].lower()] + subject[1:]
    rest = words[aux + 1 : p] + words[p + 1 :]
    return " ".join([wh, words[aux].lower()] + subject + rest)


def phrase(kind: str, sentence: str, s: int, e: int, title: str | None, vocab: Vocabulary) -> dict[str, str]:
    """The phrasings of the fact whose answer is sentence[s:e] (sentence verbatim, Markdown still in it)."""
    wh, swallow = _wh(kind, sentence[s:e], sentence[e:])
    before = sentence[:s]
    if kind == "version":  # "installed version 0.2.17" -> "installed which version"
        before = re.sub(r"\bversion\s+$", "", before, flags=re.I)
    after = sentence[e:]
    if swallow and after.startswith(swallow):
        after = after[len(swallow) :]
    marked = _clean(before + f" {PLACEHOLDER} " + after)
    out: dict[str, str] = {}
    lead = (title if title.lower().startswith("the ") else f"the {title}") if title else None
    fronted = _fronted(marked.rstrip(".;:!?").split(), wh, vocab)
    if fronted:
        out["fronted"] = _join(f"According to {lead}" if lead else None, fronted, vocab)
    if kind != "name" and (not marked.startswith(PLACEHOLDER) or fronted is None):
        in_situ = re.sub(rf"\b(?:[Aa]n?|[Tt]he) {PLACEHOLDER}", PLACEHOLDER, marked)
        out["in_situ"] = _join(f"In {lead}" if lead else None, in_situ.replace(PLACEHOLDER, wh), vocab)
    blank = _clean(sentence[:s] + f" {PLACEHOLDER} " + sentence[e:]).rstrip().replace(PLACEHOLDER, "___")
    blank = _tidy(blank)
    out["cloze"] = f'In {lead}: "{blank}" What fills the blank?' if lead else f'"{blank}" What fills the blank?'
    return out


def _acronym_facts(sentence: str, title: str | None) -> list[tuple[str, str, str, str]]:
    """(answer type, answer, question, another phrasing) for 'ABC (a b c)' and 'A B C (ABC)' in the sentence."""
    lead = (title if title.lower().startswith("the ") else f"the {title}") if title else None
    out = []
    for pat, acr_g, exp_g in ((_ACRONYM_FIRST, 1, 2), (_ACRONYM_LAST, 2, 1)):
        for m in pat.finditer(sentence):
            acr, exp = m.group(acr_g), m.group(exp_g).strip()
            initials = "".join(w[0] for w in exp.split() if w.lower() not in ("of", "and", "for", "the", "&"))
            if not initials.upper().startswith(acr.rstrip("0123456789&")[:2]):
                continue
            q = f"What does {acr} stand for" + (f" in {lead}?" if lead else "?")
            q2 = f"What is {acr} short for" + (f", according to {lead}?" if lead else "?")
            out.append(("acronym", exp, q, q2))
    return out


def _term_fact(line: str, title: str | None) -> tuple[str, str, str] | None:
    """A glossary line '**Term** – definition.' -> (term, question asking for the term, another phrasing)."""
    m = _DEFINED.match(line)
    if not m or _ACRONYM_FIRST.search(m.group(1)):
        return None
    term, definition = m.group(1).strip(), _clean(m.group(2))
    first = re.split(r"(?<=[.!?])\s", definition, maxsplit=1)[0].rstrip(".")
    if len(first.split()) < 4 or term.lower() in first.lower():
        return None
    first = first[:1].lower() + first[1:] if not first[:2].isupper() else first
    lead = f" in {title if title.lower().startswith('the ') else 'the ' + title}" if title else ""
    return term, f"What term is used{lead} for {first}?", f"What is {first} called{lead}?"


def entities(question: str, title: str | None) -> list[str]:
    """Capitalised names in a question outside its title prefix (candidates for an unanswerable swap)."""
    body = question
    if title and title in question:
        body = question.replace(title, " ")
    return [
        m.group(1)
        for m in SPAN_PATTERNS[-1][1].finditer(body)
        if m.start(1) > 0 and not re.fullmatch(rf"(?:{MONTHS}|{WEEKDAYS})", m.group(1))
    ]


def document_facts(doc_id: str, text: str, vocab: Vocabulary, max_per_sentence: int = 2) -> list[Fact]:
    """Every candidate fact of one document, in reading order."""
    title = document_title(doc_id, text)
    facts: list[Fact] = []
    common = max(3, int(0.3 * vocab.n_docs))  # a name in 30% of the documents is the domain's own name
    for s0, e0 in sentences(text):
        sent = text[s0:e0]
        made = 0
        term = _term_fact(sent, title)
        if term:
            t, q, q2 = term
            facts.append(Fact(doc_id, sent, s0, e0, t, "term", {"term": q, "term_2": q2}, title))
            made += 1
        for kind, ans, q, q2 in _acronym_facts(sent, title):
            facts.append(Fact(doc_id, sent, s0, e0, ans, kind, {"acronym": q, "acronym_2": q2}, title))
            made += 1
        for kind, s, e in _spans(sent):
            if made >= max_per_sentence:
                break
            ans = sent[s:e].strip()
            if kind == "name":
                if all(vocab.doc_freq[w.lower()] > common for w in ans.split() if w[0].isupper()):
                    continue
                kind = _name_kind(sent, s, e, vocab)
            if kind == "count" and not re.match(r"\s*[a-z]", sent[e:]):
                continue
            ph = phrase(kind, sent, s, e, title, vocab)
            facts.append(Fact(doc_id, sent, s0, e0, ans, kind, ph, title))
            made += 1
    keys = record_keys(text, vocab) if title is None else []
    for f in facts:
        q = next(iter(f.phrasings.values()))
        f.entities = [
            x
            for x in entities(q, title)
            if x != f.answer and any(not vocab.ordinary(w) for w in x.split() if w[0].isupper())
        ] + [k for k in keys if re.search(rf"(?<![\w-]){re.escape(k)}(?![\w-])", q)]
    return facts


def record_keys(text: str, vocab: Vocabulary) -> list[str]:
    """The identifiers a record is about: lower-case words that no other document uses and that this one
    repeats ('cormor' in 'Package cormor ... cormor was last updated ...'). Records have no title to name
    them, so these are what an unanswerable twin swaps."""
    words = dict.fromkeys(m.group(0) for m in _WORD.finditer(text))
    return [w for w in words if vocab.identifier(w) and w not in STOP]
