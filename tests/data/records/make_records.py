"""Regenerate packages.jsonl and eval.jsonl: 150 short, fictional software-package records (one JSON line
each, field `text`) and 125 questions about them (100 answerable, 25 about packages that are not installed),
the "corpus of short records" on which the retrieval arms' prompt is measured (docs/fine-tuning-measured.md).

    python tests/data/records/make_records.py      # deterministic: the same files every time
    advisor run --corpus tests/data/records/packages.jsonl --qa tests/data/records/eval.jsonl

Every name is made up from syllables, so no base model can know a record's facts in advance; the gold
answers are the generated field values, so they are right by construction.
"""

import json
import random
from pathlib import Path

SYL = [
    "bra",
    "ken",
    "quil",
    "stone",
    "mor",
    "vel",
    "tan",
    "dri",
    "lo",
    "pex",
    "zan",
    "thu",
    "gor",
    "ily",
    "fen",
    "wick",
    "sar",
    "bel",
    "cor",
    "dune",
    "ash",
    "nim",
    "rho",
    "vast",
    "kel",
    "ora",
    "pim",
    "tesh",
    "ulm",
    "yar",
]
FIRST = [
    "Ilse",
    "Tomas",
    "Priya",
    "Oren",
    "Maud",
    "Kwame",
    "Lena",
    "Rafael",
    "Sunniva",
    "Dariusz",
    "Aiko",
    "Bram",
    "Nadia",
    "Osei",
    "Freya",
    "Idris",
    "Marta",
    "Joaquin",
    "Ylva",
    "Hamid",
]
LAST = [
    "Varga",
    "Lindqvist",
    "Okafor",
    "Brenner",
    "Castellano",
    "Haugen",
    "Moreau",
    "Tanaka",
    "Achterberg",
    "Dlamini",
    "Kowalczyk",
    "Ferreira",
    "Nyberg",
    "Quist",
    "Rahimi",
    "Solberg",
    "Umarov",
    "Whitlock",
    "Zeller",
    "Ibsen",
]
KIND = [
    "date-parsing library",
    "HTTP client",
    "plotting toolkit",
    "configuration loader",
    "PDF renderer",
    "message-queue client",
    "image codec",
    "spell checker",
    "task scheduler",
    "logging backend",
    "geometry kernel",
    "CSV reader",
    "password hasher",
    "template engine",
    "compression library",
]
LICENCE = ["MIT", "Apache-2.0", "BSD-3-Clause", "GPL-3.0", "MPL-2.0", "LGPL-2.1"]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


def main() -> None:
    rng = random.Random(7)
    names: set[str] = set()
    rows = []
    while len(rows) < 150:
        name = "".join(rng.sample(SYL, 2)) + rng.choice(["", "-core", "-kit", "-py", "lib"])
        if name in names:
            continue
        names.add(name)
        version = f"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 20)}"
        person = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        date = f"{rng.randint(1, 28)} {rng.choice(MONTHS)} {rng.randint(2016, 2025)}"
        licence, kb, deps = rng.choice(LICENCE), rng.randint(12, 980), rng.randint(2, 40)
        text = (
            f"Package {name} (installed version {version}) is a {rng.choice(KIND)} maintained by {person}. "
            f"{name} was last updated on {date} and is released under the {licence} licence. "
            f"The installed wheel of {name} is {kb} KB, and {deps} other packages on this system depend on it."
        )
        rows.append(
            {
                "name": name,
                "text": text,
                "facts": {
                    "version": (f"Which version of {name} is installed?", version),
                    "maintainer": (f"Who maintains the package {name}?", person),
                    "updated": (f"When was {name} last updated?", date),
                    "licence": (f"Under which licence is {name} released?", licence),
                    "dependents": (f"How many other packages depend on {name}?", str(deps)),
                },
            }
        )
    here = Path(__file__).parent
    (here / "packages.jsonl").write_text(
        "".join(json.dumps({"name": r["name"], "text": r["text"]}) + "\n" for r in rows)
    )
    qa = []
    kinds = ["version", "maintainer", "updated", "licence", "dependents"]
    for i, r in enumerate(rng.sample(rows, 100)):  # one question per sampled record, the field kinds in turn
        q, a = r["facts"][kinds[i % len(kinds)]]
        qa.append(
            {
                "id": f"r{len(qa) + 1:03d}",
                "question": q,
                "answers": [a],
                "source": f"packages.jsonl#{rows.index(r) + 1}",
            }
        )
    absent = []
    while len(absent) < 25:  # packages that are not installed: the corpus cannot answer
        name = "".join(rng.sample(SYL, 2)) + rng.choice(["", "-core", "-kit", "-py", "lib"])
        if name not in names and name not in absent:
            absent.append(name)
    for i, name in enumerate(absent):
        q = [
            "Which version of {} is installed?",
            "Who maintains the package {}?",
            "When was {} last updated?",
            "Under which licence is {} released?",
            "How many other packages depend on {}?",
        ][i % 5].format(name)
        qa.append({"id": f"r{len(qa) + 1:03d}", "question": q, "answers": [], "unanswerable": True})
    (here / "eval.jsonl").write_text("".join(json.dumps(x) + "\n" for x in qa))
    print(f"wrote {len(rows)} records and {len(qa)} questions to {here}")


if __name__ == "__main__":
    main()
