from advisor.core.answer import render_prompt, render_target
from advisor.core.corpus import chunk_documents, read_corpus, whitespace_offsets
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
    tr, val, report = build_sft(chunks, train, ev, tok, 128, True, True, 0.1, seed=0)
    questions = [x.get("question") for x in tr + val]
    assert ev[0].question.upper() not in questions and report["dropped_training_questions_equal_to_eval"] == ["leak"]
    assert {x["kind"] for x in tr + val} == {"text", "qa"}
    assert 0 <= report["max_overlap_with_training_questions"] < 1
    assert report["max_overlap_with_corpus_text"] > report["max_overlap_with_training_questions"]


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


def test_without_training_questions_synthetic_pairs_and_raft_examples_are_made(tiny_corpus, tiny_qa, tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    docs, _ = read_corpus(tiny_corpus)
    chunks = [c.to_dict() for c in chunk_documents(docs, whitespace_offsets, 40, 8)]
    ev = load_qa(tiny_qa)
    tr, val, report = build_sft(chunks, [], ev, tok, 512, False, True, 0.1, seed=0, synthetic_qa=True,
                                raft=True, raft_distractors=2, raft_no_oracle=0.5)
    qa = [x for x in tr + val if x["kind"] == "qa"]
    raft = [x for x in tr + val if x["kind"] == "raft"]
    assert qa and report["qa_pairs_synthetic"] and all(x["synthetic"] for x in qa + raft)
    corpus = " ".join(d.text for d in docs)
    for x in qa:  # the blanked fact is in the corpus, the question is not an eval question
        answer = x["completion"].split("[SEP]")[0].strip()
        assert answer and answer in corpus and "___" in x["question"]
    assert {q.question for q in ev}.isdisjoint(x["question"] for x in qa)
    with_oracle = [x for x in raft if x["oracle"]]
    without = [x for x in raft if not x["oracle"]]
    assert with_oracle and without and report["n_raft"] == len(raft)
    for x in with_oracle:  # the cited passage holds the answer
        rank = int(x["completion"].split("[")[1].split("]")[0])
        answer = x["completion"].split(" [")[0].strip()
        passage = x["prompt"].split(f"[{rank}] (")[1].split("\n[")[0]
        assert answer.lower() in passage.lower()
    assert all(x["prompt"].count("] (") == 2 for x in without)  # distractors only
