"""Evaluation sets generated from a corpus: the extractive rules on the bundled sample, the unanswerable
verification against the whole corpus, the split without leakage, the llm generator through a scripted model
and through a real local HTTP server speaking the OpenAI chat API, the review, and the bad inputs."""

import json
import re
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from advisor.cli import main
from advisor.core.artifacts import read_jsonl
from advisor.core.config import QAConfig
from advisor.core.errors import AdvisorError
from advisor.pipeline import SAMPLE_CORPUS
from evalsuite.collapse import collapse_key
from evalsuite.qagen.build import GenSettings, generate_qa_set
from evalsuite.qagen.facts import Vocabulary, document_facts, sentences
from evalsuite.qagen.llm import LLMGenerator, parse_reply
from evalsuite.qagen.review import eval_set_info, save_decision
from evalsuite.qagen.stage import corpus_view, make_sets

RECORDS = Path(__file__).parent / "data" / "records" / "packages.jsonl"


def _norm(s):
    return " ".join(re.findall(r"\w+", s.lower()))


@pytest.fixture(scope="module")
def sample_set():
    view = corpus_view(SAMPLE_CORPUS)
    return view, make_sets(view, QAConfig(), seed=0, embedder_spec="hashing")


def test_the_sample_gives_150_questions_over_30_documents_with_a_fifth_unanswerable(sample_set):
    _, qs = sample_set
    una = [x for x in qs.eval if x["unanswerable"]]
    assert len(qs.eval) >= 150 and len(una) >= 0.2 * len(qs.eval)
    assert len({x["source"] for x in qs.eval if not x["unanswerable"]}) >= 30
    assert all(x["synthetic"] is True and x["generator"] == "extractive" for x in qs.eval + qs.train)


def test_answers_are_verbatim_in_their_evidence_and_the_evidence_verbatim_in_the_source(sample_set):
    view, qs = sample_set
    answerable = [x for x in qs.eval + qs.train if not x["unanswerable"]]
    ok = sum(
        x["answers"][0] in x["evidence"]["text"]
        and view.documents[x["evidence"]["source"]][x["evidence"]["start"] : x["evidence"]["end"]]
        == x["evidence"]["text"]
        for x in answerable
    )
    assert ok / len(answerable) >= 0.98
    assert all(f" {_norm(x['answers'][0])} " not in f" {_norm(x['question'])} " for x in answerable)


def test_every_unanswerable_question_names_something_no_chunk_of_the_corpus_mentions(sample_set):
    view, qs = sample_set
    corpus_words = {w.lower() for c in view.chunks for w in re.findall(r"[A-Za-z]+", c["text"])}
    una = [x for x in qs.eval + qs.train if x["unanswerable"]]
    assert una
    for x in una:
        assert x["swap"]["to"] in x["question"]
        invented = [w for w in x["swap"]["to"].split() if w not in x["swap"]["from"].split()]
        assert invented and all(w.lower() not in corpus_words for w in invented)
        assert x["verification"]["bm25_top_k"]


def test_no_eval_question_is_a_training_question_and_each_eval_fact_has_other_phrasings_in_training(sample_set):
    _, qs = sample_set
    eval_q = {_norm(x["question"]) for x in qs.eval}
    assert not any(_norm(x["question"]) in eval_q for x in qs.train)
    eval_facts = {x["fact"] for x in qs.eval if not x["unanswerable"]}
    paraphrased = {x.get("fact") for x in qs.train} & eval_facts  # other phrasings of the same facts
    assert len(paraphrased) >= 0.9 * len(eval_facts)
    assert qs.report["checks"]["eval_questions_equal_to_training"] == 0


def test_the_report_counts_documents_types_and_rejections(sample_set):
    _, qs = sample_set
    r = qs.report
    assert r["made"]["eval"] == len(qs.eval) and r["documents"]["total"] == 35
    assert sum(c["eval"] for c in r["documents"]["per_document"].values()) == r["made"]["eval_answerable"]
    assert len(r["answer_types"]["eval"]) >= 6  # a balance of answer types, not one kind
    assert r["rejections"]["ambiguous"] > 0 and r["unanswerable"]["verified"] >= 30


def test_generation_is_deterministic_for_a_seed_and_changes_with_it():
    view = corpus_view(SAMPLE_CORPUS)
    a = make_sets(view, QAConfig(n=60), seed=3, embedder_spec="hashing")
    b = make_sets(view, QAConfig(n=60), seed=3, embedder_spec="hashing")
    c = make_sets(view, QAConfig(n=60), seed=4, embedder_spec="hashing")
    assert [x["question"] for x in a.eval] == [x["question"] for x in b.eval]
    assert [x["question"] for x in a.eval] != [x["question"] for x in c.eval]


def test_split_by_document_keeps_every_fact_of_an_eval_document_out_of_training():
    view = corpus_view(SAMPLE_CORPUS)
    qs = make_sets(view, QAConfig(n=60, split="by_document"), seed=0, embedder_spec="hashing")
    eval_docs = {x["source"] for x in qs.eval if not x["unanswerable"]}
    assert eval_docs and not eval_docs & {x["source"] for x in qs.train if not x["unanswerable"]}


def test_a_question_with_another_answer_elsewhere_in_the_corpus_is_dropped_as_ambiguous():
    docs = {f"d{i}.md": f"# Rules\n\nThe late fee is £{10 + i}.50 for every month overdue." for i in range(2)}
    docs["other.md"] = "# Depot\n\nThe Kelsay depot opened its doors on 3 May 1999 after a long delay."
    chunks = [{"id": d, "source": d, "text": t, "start": 0, "end": len(t)} for d, t in docs.items()]
    qs = generate_qa_set(docs, chunks, GenSettings(n=6, min_answerable=1, unanswerable=0))
    assert qs.rejected["ambiguous"] >= 2
    assert qs.eval and not any("£" in x["answers"][0] for x in qs.eval)  # the fee has two answers: never asked


def test_sentences_end_before_a_lower_case_identifier_but_not_after_an_abbreviation():
    text = (
        "Package cormor (installed version 7.1.15) is a PDF renderer maintained by Sunniva Brenner. cormor was last"
        " updated on 23 April 2023 under the MIT licence.\nWe stock apples, pears, etc. and other fruit in the shop."
        " See e.g. the price list on the board by the door."
    )
    assert [text[s:e] for s, e in sentences(text)] == [
        "Package cormor (installed version 7.1.15) is a PDF renderer maintained by Sunniva Brenner.",
        "cormor was last updated on 23 April 2023 under the MIT licence.",
        "We stock apples, pears, etc. and other fruit in the shop.",
        "See e.g. the price list on the board by the door.",
    ]
    # a line that starts in lower case continues a list's stem sentence: still not a sentence of its own
    assert sentences("- returned within five working days of the last day at work") == []


def test_records_get_one_fact_per_question_kept_apart_by_their_identifier_with_unanswerable_twins():
    docs = {f"packages.jsonl#{i}": rec["text"] for i, rec in enumerate(read_jsonl(RECORDS))}
    chunks = [{"id": d, "source": d, "text": t, "start": 0, "end": len(t)} for d, t in docs.items()]
    qs = generate_qa_set(docs, chunks, GenSettings(n=60, unanswerable=0.2, max_train=100))
    answerable = [x for x in qs.eval + qs.train if not x["unanswerable"]]
    # "When was X last updated?" differs between records only by the package's name: not ambiguous
    assert qs.rejected["ambiguous"] == 0
    # every kind of fact a record holds: maintainer, last update, version, licence, how many others depend on it
    assert {x["answer_type"] for x in answerable} >= {"person", "date", "version", "licence", "count"}
    for x in answerable:  # a question holds one sentence of its record, not the next one too
        assert x["evidence"]["text"].count(". ") == 0, x["evidence"]["text"]
    twins = [x for x in qs.eval + qs.train if x["unanswerable"]]
    assert len([x for x in qs.eval if x["unanswerable"]]) == 12
    for x in twins:  # a name is swapped for an invented one, in the original's case (package names lower case)
        old, new = x["swap"]["from"], x["swap"]["to"]
        assert old.islower() == new.islower() and old != new
        assert new in x["question"] and not any(new in t for t in docs.values())
    assert any(x["swap"]["from"].islower() for x in twins)  # a package's identifier, with no title to swap


def test_versions_licences_and_counts_of_other_things_are_asked_about_with_the_identifier_in_lower_case():
    text = (
        "Package zanmor-py (installed version 0.2.17) is a image codec maintained by Oren Ferreira. "
        "zanmor-py was last updated on 19 January 2024 and is released under the Apache-2.0 licence. "
        "The installed wheel of zanmor-py is 50 KB, and 7 other packages on this system depend on it."
    )
    other = "Package kendri (installed version 8.27.4) is a template engine. kendri is under the Apache License."
    vocab = Vocabulary({"p#0": text, "p#1": other})
    facts = {f.answer_type: f for f in document_facts("p#0", text, vocab)}
    assert facts["version"].answer == "0.2.17"
    assert "installed which version)" in facts["version"].phrasings["in_situ"]
    assert "(installed version ___)" in facts["version"].phrasings["cloze"]  # the blank keeps its word
    lic = facts["licence"]
    assert lic.answer == "Apache-2.0" and lic.phrasings["in_situ"].startswith("zanmor-py was")
    assert lic.phrasings["in_situ"].endswith("released under which licence?") and "zanmor-py" in lic.entities
    count = facts["count"]
    assert count.answer == "7" and "how many other packages on this system depend on it?" in count.phrasings["in_situ"]
    # "the Apache License" names no licence identifier; a decimal, an address or a dotted date is no version
    assert "licence" not in {f.answer_type for f in document_facts("p#1", other, vocab)}
    for sentence in (
        "The average rainfall was 2.5 mm on most days in May.",
        "The gateway answers at 192.168.0.1 for every meter in the street.",
        "The meter was replaced on 12.03.2024 by the Service Desk team.",
    ):
        assert "version" not in {f.answer_type for f in document_facts("x", sentence, vocab)}, sentence


def test_a_corpus_of_headings_only_is_one_clear_line_and_exit_2(tmp_path, capsys):
    corpus = tmp_path / "heads"
    corpus.mkdir()
    (corpus / "a.md").write_text("# Title\n\n## Section one\n\n## Section two\n")
    assert main(["qa", "generate", str(corpus), "--out", str(tmp_path / "qa"), "--embedder", "hashing"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no fact-bearing sentence" in err[0]
    assert not (tmp_path / "qa").exists()


def test_asking_for_more_questions_than_the_corpus_allows_says_how_many_and_goes_on(tmp_path, capsys, tiny_corpus):
    out = tmp_path / "qa"
    assert main(["qa", "generate", str(SAMPLE_CORPUS), "--out", str(out), "--n", "2000", "--embedder", "hashing"]) == 0
    err = capsys.readouterr().err
    made = json.loads((out / "qa_report.json").read_text())["made"]
    assert "made fewer than asked" in err and f"{made['eval_answerable']} of 1600 answerable" in err
    # below the minimum of answerable questions it is a clear error instead (the 20-document test corpus)
    assert main(["qa", "generate", str(tiny_corpus), "--out", str(tmp_path / "q2"), "--embedder", "hashing"]) == 2
    assert "answerable questions could be generated (minimum 30)" in capsys.readouterr().err


# ---------------------------------------------------------------- the llm generator


def _scripted(replies):
    """A scripted model: each call answers the next reply per passage, by the passage text."""
    calls = []

    def complete(batch):
        calls.append(len(batch))
        return [replies(m[-1]["content"], len(calls)) for m in batch]

    return LLMGenerator(complete, lambda s: len(s.split()), "scripted", retries=2), calls


def _good_reply(prompt):
    passage = prompt.split("Passage:\n", 1)[1].split("\n\nWrite one question", 1)[0]
    m = re.search(r"([^.\n]*?(\d+) [a-z]+[^.\n]*\.)", passage)
    if not m:
        return "no idea"
    evidence = m.group(1).strip()
    question = evidence.replace(m.group(2), "how many", 1).rstrip(".") + "?"
    return json.dumps({"question": question, "answer": m.group(2), "evidence": evidence})


def test_the_llm_generator_keeps_only_verified_items_and_retries_malformed_replies(tiny_corpus):
    view = corpus_view(tiny_corpus)

    def replies(prompt, call):
        if "Wheelchair" in prompt and call == 1:
            return "Sure! Here is a question:"  # malformed once, fixed on the retry
        if "timetable" in prompt.lower():
            return json.dumps({"question": "q?", "answer": "x", "evidence": "A sentence the passage does not hold."})
        return _good_reply(prompt)

    gen, calls = _scripted(replies)
    facts, rejected = gen.facts(view.chunks, view.documents)
    never = sum(_good_reply(LLMGenerator.messages(c)[-1]["content"]) == "no idea" for c in view.chunks)
    assert calls[:2] == [len(view.chunks), never + 1]  # only the malformed replies were asked again ...
    assert rejected["malformed_after_retries"] == never  # ... and the fixed one was kept
    assert facts and all(
        f.answer in f.evidence and view.documents[f.source][f.start : f.end] == f.evidence for f in facts
    )
    assert rejected["evidence_not_in_passage"] >= 1
    assert parse_reply('{"question": "a", "answer": 3}') is None and parse_reply("x") is None


class _ChatServer(ThreadingHTTPServer):
    """A real local HTTP server speaking the OpenAI chat API (models + chat/completions), scripted answers."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _ChatHandler)
        self.requests = 0
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _ChatHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _send(self, obj):
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._send({"object": "list", "data": [{"id": "scripted-qa", "object": "model"}]})

    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests += 1
        text = _good_reply(req["messages"][-1]["content"])
        self._send(
            {
                "id": "x",
                "object": "chat.completion",
                "model": req["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            }
        )


def test_the_llm_generator_runs_against_a_real_openai_compatible_http_server(tmp_path, tiny_corpus, capsys):
    server = _ChatServer()
    try:
        out = tmp_path / "qa"
        rc = main(
            [
                "qa",
                "generate",
                str(tiny_corpus),
                "--out",
                str(out),
                "--generator",
                "llm",
                "--base-url",
                server.url,
                "--api-model",
                "scripted-qa",
                "--n",
                "12",
                "--min-answerable",
                "5",
                "--unanswerable",
                "0",
                "--embedder",
                "hashing",
            ]
        )
        err = capsys.readouterr().err
        assert rc == 0, err
        assert "passages" in err and "prompt tokens" in err and server.requests > 0
        items = read_jsonl(out / "eval.jsonl")
        assert all(x["generator"].startswith("llm:scripted-qa") for x in items)
        rep = json.loads((out / "qa_report.json").read_text())
        assert rep["llm"]["verified_facts"] > 0 and rep["llm"]["sample_replies"]
        assert all(x["answers"][0] in x["evidence"]["text"] for x in items)
        # too few verified items is one clear line naming the generator and the rejections
        rc = main(
            [
                "qa",
                "generate",
                str(tiny_corpus),
                "--out",
                str(tmp_path / "q2"),
                "--generator",
                "llm",
                "--base-url",
                server.url,
                "--api-model",
                "scripted-qa",
                "--embedder",
                "hashing",
            ]
        )
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and "verified items" in err[-1] and "malformed_after_retries" in err[-1]
    finally:
        server.shutdown()


def test_an_unreachable_base_url_is_one_line_naming_it_and_exit_2(tmp_path, capsys, tiny_corpus):
    url = "http://127.0.0.1:9/v1"
    rc = main(
        [
            "qa",
            "generate",
            str(tiny_corpus),
            "--out",
            str(tmp_path / "qa"),
            "--generator",
            "llm",
            "--base-url",
            url,
            "--api-model",
            "m",
            "--embedder",
            "hashing",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and url in err[0]
    assert not (tmp_path / "qa").exists()


# ---------------------------------------------------------------- review


def test_a_review_writes_reviewed_jsonl_and_never_touches_the_generated_file(tmp_path, sample_set):
    _, qs = sample_set
    from evalsuite.qagen.stage import write_sets

    write_sets(tmp_path, qs)
    before = (tmp_path / "eval.jsonl").read_bytes()
    first, second, third = (x["id"] for x in qs.eval[:3])
    save_decision(tmp_path, first, "accept")
    save_decision(tmp_path, second, "reject")
    save_decision(tmp_path, third, "edit", question="What is it, really?", answers=["42"])
    assert (tmp_path / "eval.jsonl").read_bytes() == before
    rows = {r["id"]: r for r in read_jsonl(tmp_path / "reviewed.jsonl")}
    assert second not in rows and len(rows) == len(qs.eval) - 1
    assert rows[first]["reviewed"] and rows[first]["review"] == "accepted"
    assert rows[third]["question"] == "What is it, really?" and rows[third]["answers"] == ["42"]
    assert rows[third]["original"]["question"] == qs.eval[2]["question"]
    info = eval_set_info(tmp_path / "reviewed.jsonl")
    assert info["synthetic"] and not info["reviewed"] and info["reviewed_share"] == round(2 / len(rows), 4)
    with pytest.raises(AdvisorError):
        save_decision(tmp_path, "no-such-id", "accept")


def test_a_hand_edited_reviewed_file_with_a_bad_line_is_named_and_nothing_is_lost(tmp_path, capsys):
    from advisor.core.config import dump_config, load_config

    run = tmp_path / "run"
    (run / "eval").mkdir(parents=True)
    (run / "config.yaml").write_text(dump_config(load_config("smoke")))
    (run / "eval" / "metrics.json").write_text('{"arms": {}}')
    bad = tmp_path / "reviewed.jsonl"
    bad.write_text('{"id": "e1", "question": "Q?", "answers": ["a"]}\n{"id": "e2", "question": \n')
    snapshot = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert main(["eval", str(run), "--qa", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{bad}:2" in err[0]
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == snapshot


# ---------------------------------------------------------------- the pipeline stage


def test_advisor_run_without_a_qa_file_generates_the_set_and_every_output_says_so(
    tmp_path, tiny_model_dir, tiny_corpus
):
    from advisor.core.config import load_config
    from advisor.pipeline import run_pipeline

    overrides = [
        f"corpus.path={tiny_corpus}",
        f"model.spec={tiny_model_dir}",
        "model.quantization=none",
        "model.max_new_tokens=4",
        "retrieval.embedder=hashing",
        "chunking.size=40",
        "chunking.overlap=8",
        "retrieval.context_tokens=200",
        "tuning.max_steps=2",
        "eval.limit=0",
        "eval.probe_limit=3",
        "eval.batch_size=8",
        "qa.n=16",
        "qa.min_answerable=10",
        "qa.unanswerable=0.25",
    ]
    run = run_pipeline(load_config("smoke", overrides), tmp_path / "run")
    items = read_jsonl(run / "qa" / "eval.jsonl")
    assert (run / "qa" / "train.jsonl").is_file() and (run / "qa" / "qa_report.json").is_file()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["stages"]["qa"]["status"] == "done" and manifest["inputs"]["qa"]
    from advisor.core.config import load_run_config

    assert load_run_config(run).corpus.eval_file(run) == run / "qa" / "eval.jsonl"  # read from the run, not a path
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    es = metrics["eval_set"]
    assert es["synthetic"] and es["generator"] == "extractive" and es["n"] == len(items) and not es["reviewed"]
    rec = json.loads((run / "recommendation.json").read_text())
    # first after the fit-for-purpose line (there when no option meets the targets, as on a tiny random model)
    first = 0 if rec["fit_for_purpose"]["any_fit"] else 1
    assert rec["reasons"][first].startswith(
        f"Evidence: measured on {len(items)} generated questions, not reviewed by a person"
    )
    report = (run / "report.md").read_text()
    assert "## Evaluation set" in report and "not reviewed by a person" in report and "qa_set.png" in report
    leak = json.loads((run / "sft" / "leakage.json").read_text())
    assert leak["n_qa_pairs"] > 0 and not leak["dropped_training_questions_equal_to_eval"]
    ended = manifest["stages"]["qa"]["ended"]
    run_pipeline(load_config("smoke", overrides), run)  # a rerun keeps the generated set
    assert json.loads((run / "manifest.json").read_text())["stages"]["qa"]["ended"] == ended


def test_the_plan_counts_the_training_questions_the_qa_stage_makes(sample_set):
    from advisor.core.config import Config, CorpusConfig
    from advisor.plan import generated_training_counts
    from evalsuite.qagen.stage import training_only

    _, qs = sample_set

    def counts(items):
        una = sum(bool(x["unanswerable"]) for x in items)
        return len(items) - una, una

    # no QA file given: the generated training set alone (the eval set is the generated one)
    assert generated_training_counts(Config(corpus=CorpusConfig(path="c"))) == counts(qs.train) == (300, 30)
    # an eval set given: every generated question trains, the generator's eval ones too (420 and 60, not 300)
    given = training_only(qs, ["a question nobody generated?"])
    assert generated_training_counts(Config(corpus=CorpusConfig(path="c", qa="eval.jsonl"))) == counts(given.train)


def test_one_answer_takes_at_most_its_share_of_the_training_questions_no_eval_question_asks_about():
    view = corpus_view(Path(__file__).parent / "data" / "banking" / "corpus")

    def train_answers(share):
        qs = make_sets(view, QAConfig(max_answer_share=share), seed=0, embedder_spec="hashing")
        eval_facts = {x["fact"] for x in qs.eval if not x["unanswerable"]}
        other = [x for x in qs.train if not x["unanswerable"] and x.get("fact") not in eval_facts]
        return qs, Counter(collapse_key(x["answers"][0]) for x in other)

    uncapped, before = train_answers(0.0)
    capped, after = train_answers(0.02)
    cap = round(0.02 * QAConfig().max_train)
    # the bank's fee tables make "$0.00" the commonest training answer; capped, no answer exceeds its share
    assert before.most_common(1)[0][1] > cap and max(after.values()) <= cap
    left_out = capped.report["train_common_answers_left_out"]
    assert left_out["questions"] > 0 and left_out["answers"][before.most_common(1)[0][0]] > 0
    assert uncapped.report["train_common_answers_left_out"]["questions"] == 0
    # the evaluation set does not move, and the eval facts keep their other phrasings
    assert [x["question"] for x in capped.eval] == [x["question"] for x in uncapped.eval]
    eval_facts = {x["fact"] for x in capped.eval if not x["unanswerable"]}
    assert eval_facts & {x.get("fact") for x in capped.train} == eval_facts & {x.get("fact") for x in uncapped.train}


def test_max_answer_share_outside_0_to_1_is_a_config_error():
    with pytest.raises(AdvisorError, match="qa.max_answer_share=1.5"):
        QAConfig(max_answer_share=1.5)


def test_the_in_process_llm_generator_multiplies_as_the_run_does_and_its_stage_hash_says_so(monkeypatch):
    """A run's in-process question writer loads the model with the run's model.cpu_matmul_dtype (bfloat16 products
    on an AVX512-BF16 CPU under auto) and the qa stage's hash changes only where that is bfloat16; a server-backed
    writer is untouched by it."""
    import advisor.core.embedders as embedders
    from advisor.core.config import load_config
    from advisor.pipeline import _qa_matmul
    from evalsuite.qagen.stage import _llm_generator

    for has_bf16, dtype in ((True, "bfloat16"), (False, "float32")):
        monkeypatch.setattr(embedders, "cpu_has_bf16", lambda has=has_bf16: has)
        gen = _llm_generator(QAConfig(generator="llm"), "smollm2-135m-instruct", "nf4", "auto")
        assert gen.count_tokens.__self__.matmul_dtype == dtype  # the loaded LM's products
        cfg = load_config("quickstart", ["qa.generator=llm"])
        assert _qa_matmul(cfg) == ([dtype] if dtype == "bfloat16" else [])
        assert _qa_matmul(load_config("quickstart")) == []  # the extractive generator loads no model
        assert (
            _qa_matmul(load_config("quickstart", ["qa.generator=llm", "qa.base_url=http://h/v1", "qa.api_model=m"]))
            == []
        )
    gen = _llm_generator(QAConfig(generator="llm"), "smollm2-135m-instruct", "nf4")
    assert gen.count_tokens.__self__.matmul_dtype == "float32"  # `advisor qa generate` alone: float32 as before
