"""Stage `qa`: the evaluation and training sets generated from the corpus when no QA file is given.

    advisor qa generate CORPUS_OR_RUN_DIR --out DIR     # stand-alone
    advisor run --corpus DIR                            # as a pipeline stage, into RUN_DIR/qa/

Reads the corpus (or a run directory's chunks), makes the sets (build.py) with the extractive rules or an LLM
(llm.py), and writes DIR/eval.jsonl, DIR/train.jsonl and DIR/qa_report.json. Every item carries
`synthetic: true`, its `generator` and its `evidence` (verbatim, with source and character offsets); nothing
here is reviewed by a person until the dashboard's review page writes DIR/reviewed.jsonl.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from advisor.core.artifacts import atomic_write_json, read_jsonl, write_jsonl
from advisor.core.config import QAConfig
from advisor.core.errors import AdvisorError
from advisor.core.logs import say
from evalsuite.qagen.build import GenSettings, QASet, generate_qa_set


@dataclass
class CorpusView:
    documents: dict[str, str]  # doc id -> text, as ingestion reads it (evidence offsets point into it)
    chunks: list[dict]  # id, source, text, start, end (the BM25 verification searches all of them)
    where: str


def read_documents(root: Path, text_field: str = "text") -> dict[str, str]:
    from advisor.core.corpus import read_corpus

    docs, _ = read_corpus(root, text_field)
    out: dict[str, str] = {}
    for d in sorted(docs, key=lambda d: (d.doc_id, d.offset)):  # a streamed file's segments, in order
        out[d.doc_id] = out.get(d.doc_id, "") + d.text
    return out


def corpus_view(path: Path, text_field: str = "text") -> CorpusView:
    """A corpus folder or file, or a run directory (its chunks.jsonl, and its corpus when still there)."""
    path = Path(path)
    if (path / "chunks.jsonl").is_file():
        from advisor.core.config import load_run_config
        from advisor.core.corpus import documents_from_chunks

        chunks = read_jsonl(path / "chunks.jsonl")
        corpus = Path(load_run_config(path).corpus.path) if (path / "config.yaml").is_file() else None
        docs = read_documents(corpus, text_field) if corpus and corpus.exists() else documents_from_chunks(chunks)
        return CorpusView(docs, chunks, str(path))
    if not path.exists():
        raise AdvisorError(f"corpus path {path} does not exist; pass a folder or file of documents, or a run directory")
    from advisor.core.corpus import chunk_documents, read_corpus, whitespace_offsets

    docs, _ = read_corpus(path, text_field)
    chunks = [c.to_dict() for c in chunk_documents(docs, whitespace_offsets, 200, 40)]
    return CorpusView(read_documents(path, text_field), chunks, str(path))


def run_documents(run_dir: Path) -> dict[str, str]:
    """The documents of a run's corpus ({} when neither the corpus nor the chunks can be read any more)."""
    from advisor.core.config import load_run_config
    from advisor.core.corpus import documents_from_chunks

    try:
        corpus = Path(load_run_config(run_dir).corpus.path)
        if corpus.exists():
            return read_documents(corpus)
    except AdvisorError:
        pass
    chunks = Path(run_dir) / "chunks.jsonl"
    return documents_from_chunks(read_jsonl(chunks)) if chunks.is_file() else {}


def settings(qc: QAConfig, seed: int) -> GenSettings:
    return GenSettings(
        n=qc.n,
        unanswerable=qc.unanswerable,
        split=qc.split,
        seed=seed,
        max_per_document=qc.max_per_document,
        min_answerable=qc.min_answerable,
        train_per_fact=qc.train_per_fact,
        max_train=qc.max_train,
        max_answer_share=qc.max_answer_share,
    )


def _llm_generator(qc: QAConfig, model_spec: str, quantization: str, matmul_dtype: str = "float32"):
    from evalsuite.qagen.llm import LLMGenerator

    if qc.base_url:
        from advisor.core.openai_client import OpenAIClient, api_key_from_env

        client = OpenAIClient(qc.base_url, api_key_from_env("ADVISOR_QA_API_KEY"), timeout_s=120, max_retries=1)
        try:
            served = client.models()
        except AdvisorError as e:
            raise AdvisorError(
                f"qa generator: cannot reach --base-url {qc.base_url} ({e}); start the server or "
                "fix the URL (it ends in /v1)"
            ) from None
        if served and qc.api_model not in served:
            raise AdvisorError(
                f"qa generator: {qc.base_url} does not serve model '{qc.api_model}'; it serves "
                f"{', '.join(served)}: pass one of them as --api-model"
            )
        return LLMGenerator.endpoint(client, qc.api_model, qc.retries)
    from advisor.core.lm import LM
    from advisor.core.models import products_words

    lm = LM.load(qc.model or model_spec, quantization, matmul_dtype=matmul_dtype)
    how = products_words(lm.matmul_dtype)
    say(f"  qa: loaded {lm.spec} to write questions{how}")
    return LLMGenerator.in_process(lm, qc.retries)


def make_sets(
    view: CorpusView,
    qc: QAConfig,
    seed: int,
    embedder_spec: str = "all-minilm-l6-v2",
    model_spec: str = "smollm2-135m-instruct",
    quantization: str = "nf4",
    matmul_dtype: str = "float32",
) -> QASet:
    """The sets for a corpus view; the llm generator prints its plan (passages, prompt tokens, calls) first. An
    in-process llm generator multiplies its 4-bit layers in `matmul_dtype` on CPU (model.cpu_matmul_dtype;
    float32 unless asked)."""
    from evalsuite.embed import TextEmbedder

    embedder = TextEmbedder(embedder_spec) if embedder_spec != "none" else None
    facts, generator, llm_rejected = None, "extractive", None
    if qc.generator == "llm":
        from evalsuite.qagen.llm import pick_passages

        gen = _llm_generator(qc, model_spec, quantization, matmul_dtype)
        passages = pick_passages(view.chunks, qc.max_passages, seed)
        plan = gen.plan(passages)
        say(
            f"  qa (llm, {gen.name}): {plan['passages']} passages, {plan['prompt_tokens']:,} prompt tokens, "
            f"{plan['calls']} calls (up to {qc.retries} retries each for a malformed reply)"
        )
        facts, llm_rejected = gen.facts(passages, view.documents)
        generator = f"llm:{gen.name}"
        if len(facts) < qc.min_answerable:
            why = ", ".join(f"{k} {v}" for k, v in llm_rejected.most_common()) or "none"
            raise AdvisorError(
                f"the llm generator ({gen.name}) wrote {len(facts)} verified items from "
                f"{len(passages)} passages, fewer than qa.min_answerable={qc.min_answerable} "
                f"(rejected: {why}); use a stronger model, --generator extractive, or a QA file"
            )
    s = settings(qc, seed)
    qaset = generate_qa_set(view.documents, view.chunks, s, generator, facts, embedder)
    if llm_rejected is not None:
        qaset.report["llm"] = {
            **plan,
            "verified_facts": len(facts),
            "rejected": dict(llm_rejected.most_common()),
            "sample_replies": gen.samples,
        }
    return qaset


def write_sets(out: Path, qaset: QASet) -> None:
    """eval.jsonl, train.jsonl and qa_report.json, each written atomically (reviewed.jsonl is never touched)."""
    out = Path(out)
    write_jsonl(out / "eval.jsonl", qaset.eval)
    write_jsonl(out / "train.jsonl", qaset.train)
    atomic_write_json(out / "qa_report.json", qaset.report)


def training_only(qaset: QASet, eval_questions: list[str]) -> QASet:
    """With a given evaluation set, every generated item is training material: the generator's eval and
    training phrasings and its verified unanswerable questions, minus any question equal (after
    normalisation) to a given evaluation question. The given set stays the only evaluation set."""
    from evalsuite.qagen.build import _norm

    banned = {_norm(q) for q in eval_questions}
    items = [x for x in qaset.eval + qaset.train if _norm(x["question"]) not in banned]
    for i, x in enumerate(items):
        x["id"] = f"t{i + 1:04d}"
    report = {
        **qaset.report,
        "purpose": "training only: the evaluation set was given, so every generated item is a training question",
        "dropped_equal_to_eval": len(qaset.eval) + len(qaset.train) - len(items),
    }
    return QASet([], items, report)


def write_training_only(out: Path, qaset: QASet) -> None:
    write_jsonl(Path(out) / "train.jsonl", qaset.train)
    atomic_write_json(Path(out) / "qa_report.json", qaset.report)


def training_summary(qaset: QASet, out: Path) -> str:
    n_una = sum(bool(x.get("unanswerable")) for x in qaset.train)
    return (
        f"  qa: {len(qaset.train) - n_una} generated training questions and {n_una} verified unanswerable ones "
        f"for the tuning track ({Path(out) / 'train.jsonl'})"
    )


def summary(qaset: QASet, out: Path) -> str:
    r = qaset.report
    m, d = r["made"], r["documents"]
    line = (
        f"  qa: {m['eval']} eval questions ({m['eval_answerable']} answerable, {m['eval_unanswerable']} "
        f"unanswerable) over {d['covered']} of {d['total']} documents, {m['train']} training questions; "
        f"generated ({r['generator']}), not reviewed by a person ({Path(out) / 'qa_report.json'})"
    )
    if r["shortfall"]:
        line += f"\n  qa: made fewer than asked: {r['shortfall']}"
    return line
