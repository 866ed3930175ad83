import re

import pytest

from advisor.core.answer import ABSTAIN, render_prompt, render_target
from advisor.core.corpus import chunk_documents, read_corpus, whitespace_offsets
from advisor.core.errors import AdvisorError
from advisor.core.qa import QAItem, load_qa
from tuning.data import build_sft, documents_from_chunks
from tuning.train import IGNORE, tokenize_examples


def test_documents_are_rebuilt_from_overlapping_chunks(tiny_corpus):
    docs, _ = read_corpus(tiny_corpus)
    chunks = [c.to_dict() for c in chunk_documents(docs, whitespace_offsets, 12, 4)]
    rebuilt = documents_from_chunks(chunks)
    for d in docs:
        assert rebuilt[d.doc_id].split() == d.text.split()


def test_sft_never_trains_on_an_eval_question(tiny_corpus, tiny_qa, tiny_train_qa, tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    docs, _ = read_corpus(tiny_corpus)
    chunks = [c.to_dict() for c in chunk_documents(docs, whitespace_offsets, 40, 8)]
    ev = load_qa(tiny_qa)
    train = load_qa(tiny_train_qa) + [QAItem("leak", ev[0].question.upper(), ev[0].answers)]
    tr, val, report = build_sft(chunks, train, ev, tok, 128, True, True, 0.1, seed=0, raft=False)
    questions = [x.get("question") for x in tr + val]
    assert ev[0].question.upper() not in questions and report["dropped_training_questions_equal_to_eval"] == ["leak"]
    assert {x["kind"] for x in tr + val} == {"text", "qa"}
    assert 0 <= report["max_overlap_with_training_questions"] < 1
    assert report["max_overlap_with_corpus_text"] > report["max_overlap_with_training_questions"]


def test_a_validation_limit_scores_fewer_held_out_examples_and_trains_on_the_same_set(
    tiny_corpus, tiny_qa, tiny_train_qa, tiny_model_dir
):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    docs, _ = read_corpus(tiny_corpus)
    chunks = [c.to_dict() for c in chunk_documents(docs, whitespace_offsets, 40, 8)]
    args = (chunks, load_qa(tiny_train_qa), load_qa(tiny_qa), tok, 128, True, True, 0.2)
    tr, val, _ = build_sft(*args, seed=0, raft=False)
    tr3, val3, report = build_sft(*args, seed=0, raft=False, val_limit=3)
    assert len(val) > 3 and val3 == val[:3] and report["n_val"] == 3
    assert tr3 == tr  # the examples no longer scored are not trained on either


def test_loss_is_taken_on_answer_tokens_only(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    prompt, completion = render_target(tok, "When does the ferry leave?", "06:40")
    assert prompt == render_prompt(tok, "When does the ferry leave?")  # trained in the format it is asked in
    rows, skipped = tokenize_examples([{"kind": "qa", "prompt": prompt, "completion": completion}], tok, 512, True)
    labels = rows[0]["labels"]
    n_prompt = len(tok(prompt, add_special_tokens=False)["input_ids"])
    assert all(x == IGNORE for x in labels[:n_prompt]) and all(x != IGNORE for x in labels[n_prompt:])
    assert "06" in tok.decode([t for t in labels if t != IGNORE])
    rows, skipped = tokenize_examples([{"kind": "qa", "prompt": prompt, "completion": completion}], tok, 8, True)
    assert rows == [] and skipped == 1


def _tiny(tiny_corpus, tiny_qa, tiny_model_dir, size=40):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    docs, _ = read_corpus(tiny_corpus)
    chunks = [c.to_dict() for c in chunk_documents(docs, whitespace_offsets, size, 8)]
    return tok, docs, chunks, load_qa(tiny_qa)


def test_unanswerable_training_questions_are_taught_the_abstention_answer(
    tiny_corpus, tiny_qa, tiny_train_qa, tiny_model_dir
):
    tok, _, chunks, ev = _tiny(tiny_corpus, tiny_qa, tiny_model_dir)
    una = [
        QAItem("u1", "When did the Zorbel committee first meet?", [], unanswerable=True),
        QAItem("u2", ev[0].question, [], unanswerable=True),
    ]  # equal to an eval question: never trained on
    tr, val, report = build_sft(
        chunks, load_qa(tiny_train_qa), ev, tok, 128, False, True, 0.1, seed=0, abstain_qa=una, raft=False
    )
    abstain = [x for x in tr + val if x["kind"] == "abstain"]
    assert [x["question"] for x in abstain] == [una[0].question] and report["n_abstain"] == 1
    assert ABSTAIN in abstain[0]["completion"] and "u2" in report["dropped_training_questions_equal_to_eval"]
    assert abstain[0]["prompt"] == render_prompt(tok, una[0].question)  # closed book, the evaluation's prompt


def test_raft_examples_put_the_answer_passage_among_hard_distractors_and_cite_it(
    tiny_corpus, tiny_qa, tiny_train_qa, tiny_model_dir
):
    tok, _, chunks, ev = _tiny(tiny_corpus, tiny_qa, tiny_model_dir)
    train = load_qa(tiny_train_qa)
    tr, val, report = build_sft(
        chunks,
        train,
        ev,
        tok,
        128,
        False,
        True,
        0.1,
        seed=0,
        raft=True,
        raft_share=1.0,
        raft_distractors=2,
        raft_no_oracle=0.3,
    )
    raft = [x for x in tr + val if x["kind"] == "raft"]
    with_oracle = [x for x in raft if x["oracle"]]
    without = [x for x in raft if not x["oracle"]]
    assert with_oracle and without and report["n_raft"] == len(raft) and report["n_raft_without_oracle"] == len(without)
    by_id = {it.id: it for it in train}
    for x in with_oracle:  # "answer [n]": passage n is from the question's document and holds the answer
        answer, rank = x["completion"].split(" [")[0].strip(), int(x["completion"].split(" [")[1].split("]")[0])
        assert answer == by_id[x["id"]].answers[0]
        passage = x["prompt"].split(f"[{rank}] (")[1]
        assert passage.startswith(by_id[x["id"]].source) and answer.lower() in passage.split("\n[")[0].lower()
        assert x["prompt"].count("] (") == 3  # the oracle and two distractors
    for x in without:  # distractors only, from other documents; the target is the abstention answer
        assert ABSTAIN in x["completion"] and f"({by_id[x['id']].source})" not in x["prompt"]
    # every distractor comes from another document than the question's
    for x in raft:
        sources = re.findall(r"\[\d+\] \(([^)]+)\)", x["prompt"])
        assert sources.count(by_id[x["id"]].source) == (1 if x["oracle"] else 0)


def test_raft_distractors_from_any_document_are_near_misses_that_never_hold_the_answer(
    tiny_corpus, tiny_qa, tiny_train_qa, tiny_model_dir
):
    tok, _, chunks, ev = _tiny(tiny_corpus, tiny_qa, tiny_model_dir, size=12)  # documents of several chunks
    train = load_qa(tiny_train_qa)
    by_id = {it.id: it for it in train}
    args = (chunks, train, ev, tok, 128, False, True, 0.1)
    kw = dict(seed=0, raft=True, raft_share=1.0, raft_distractors=2, raft_no_oracle=0.5)
    tr, val, _ = build_sft(*args, **kw, raft_distractors_from="any_document")
    raft = [x for x in tr + val if x["kind"] == "raft"]
    own_doc = 0
    for x in raft:
        item = by_id[x["id"]]
        passages = re.split(r"\n?\[\d+\] \(", x["prompt"].split("Context:")[1])[1:]
        oracles = [p for p in passages if p.startswith(item.source) and item.answers[0].lower() in p.lower()]
        assert len(oracles) == (1 if x["oracle"] else 0)  # the answer is only in the oracle passage
        own_doc += sum(p.startswith(item.source) for p in passages) - len(oracles)
    assert own_doc > 0  # near misses from the question's own document, which other_documents never picks
    # the default keeps every distractor out of the question's document (the runs made before the setting)
    tr, val, _ = build_sft(*args, **kw)
    for x in [x for x in tr + val if x["kind"] == "raft"]:
        sources = re.findall(r"\[\d+\] \(([^)]+)\)", x["prompt"])
        assert sources.count(by_id[x["id"]].source) == (1 if x["oracle"] else 0)


def test_raft_passages_keep_within_the_evaluation_prompt_budget(tiny_corpus, tiny_qa, tiny_train_qa, tiny_model_dir):
    from advisor.core.answer import Context, context_block

    tok, _, chunks, ev = _tiny(tiny_corpus, tiny_qa, tiny_model_dir)
    train = load_qa(tiny_train_qa)
    one = max(len(tok(context_block([Context(c["id"], c["source"], c["text"], 0, 1)]))["input_ids"]) for c in chunks)
    tr, val, _ = build_sft(
        chunks,
        train,
        ev,
        tok,
        128,
        False,
        True,
        0.0,
        seed=0,
        raft=True,
        raft_share=1.0,
        raft_distractors=3,
        raft_no_oracle=0.0,
        context_tokens=2 * one + 5,
    )
    raft = [x for x in tr + val if x["kind"] == "raft"]
    assert raft and all(
        x["prompt"].count("] (") <= 2 for x in raft
    )  # 3 distractors asked, the budget holds two passages


def test_an_empty_training_set_is_one_clear_error(tiny_corpus, tiny_qa, tiny_model_dir):
    tok, _, chunks, ev = _tiny(tiny_corpus, tiny_qa, tiny_model_dir)
    with pytest.raises(AdvisorError, match="the training set is empty"):
        build_sft(chunks, [], ev, tok, 128, False, True, 0.1, seed=0)
