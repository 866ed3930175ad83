"""The knowledge-update drill: change or add facts in a finished run's corpus, then measure how each
option absorbs them — RAG by re-indexing the updated corpus, the tuned model by training an adapter on
the changed documents — and how well each answers questions on exactly those facts. Its figures feed
the recommendation's freshness criterion and the report.

    advisor drill RUN_DIR                       # the bundled sample's drill (advisor/sample/drill/)
    advisor drill RUN_DIR --changes DIR --steps 20

A changes folder holds `corpus/` (files that replace same-named corpus files, or are added) and
`qa.jsonl` (questions on the changed facts; never trained on). Writes RUN_DIR/drill/:
corpus/ (the updated corpus), chunks.jsonl, index/, adapter/, <option>.jsonl answers, and drill.json:

    {"source", "n_changed_documents", "n_questions", "steps",
     "before": {"accuracy"},                        # RAG with the old index, before the update
     "options": {<option>: {"how", "update_s", "accuracy": {"value", "ci95", "n"}}}}     # the arm table's options

What each option does to absorb the change (its update_s is the measured wall time of exactly that):
- rag: re-chunk and re-embed the updated corpus into a new FAISS index;
- both: the same re-index; the run's adapter is kept (retrieval carries the new facts);
- fine-tune: a fresh LoRA adapter trained for `steps` optimizer steps on the changed documents only (the
  cheapest update a tuned model can get; the report also shows the run's full training time).
Then recommendation.json and the report are recomputed with the run's recommend settings.
"""

from __future__ import annotations

import copy
import shutil
import time
from pathlib import Path

from advisor.core.arms import OPTION, OPTIONS, RAG
from advisor.core.artifacts import RunDir, atomic_write_json, combine_hashes, read_jsonl, sha256_file, write_jsonl
from advisor.core.config import load_run_config
from advisor.core.errors import AdvisorError
from advisor.core.textio import read_json
from advisor.pipeline import SAMPLE_CORPUS, SAMPLE_DIR, say

SAMPLE_CHANGES = SAMPLE_DIR / "drill"


def _changes_hash(changes: Path) -> str:
    files = sorted(p for p in changes.rglob("*") if p.is_file())
    return combine_hashes(*(f"{p.relative_to(changes)}:{sha256_file(p)}" for p in files))


def resolve_changes(run_dir: Path, changes: Path | None) -> Path:
    """The changes folder: the one given, else the bundled sample drill for runs on the sample corpus."""
    cfg = load_run_config(run_dir)
    if changes is None:
        if Path(cfg.corpus.path) != SAMPLE_CORPUS:
            raise AdvisorError(
                f"{run_dir} was not made on the bundled sample corpus: pass --changes DIR, a folder with "
                "corpus/ (changed or new documents) and qa.jsonl (questions on the changed facts)"
            )
        changes = SAMPLE_CHANGES
    changes = Path(changes)
    if not (changes / "corpus").is_dir() or not any((changes / "corpus").iterdir()):
        raise AdvisorError(
            f"changes folder {changes} has no corpus/ with documents; put the changed or new files there"
        )
    if not (changes / "qa.jsonl").is_file():
        raise AdvisorError(f"changes folder {changes} has no qa.jsonl with questions on the changed facts")
    return changes


def check_drill_inputs(run_dir: Path, changes: Path | None, steps: int, generation: dict | None = None):
    """(run config, changes folder, questions), or AdvisorError before anything is written. `generation`
    overrides the run's generation settings (--backend/--base-url: answer on a server)."""
    from advisor.core.qa import load_qa

    run = RunDir(run_dir)
    if not run.path.is_dir():
        raise AdvisorError(f"run directory {run.path} does not exist; pass a folder made by `advisor run`")
    if steps < 1:
        raise AdvisorError(f"--steps {steps}: the fine-tune update needs at least 1 optimizer step")
    cfg = load_run_config(run.path)
    if generation:
        from advisor.core.config import GenerationConfig, _deep_merge, from_dict
        from advisor.core.remote_lm import check_generation_server

        cfg.generation = from_dict(GenerationConfig, _deep_merge(cfg.to_dict()["generation"], generation), "generation")
        check_generation_server(cfg, str(run.path / "adapter"))
    for rel, stage in [
        ("index/index.faiss", "index"),
        ("adapter/adapter_model.safetensors", "tune"),
        ("chunks.jsonl", "ingest"),
    ]:
        if not (run / rel).exists():
            raise AdvisorError(
                f"{run.path} has no {rel} (stage '{stage}' not finished); finish the run first: "
                f"advisor run --out {run.path}"
            )
    changes = resolve_changes(run.path, changes)
    return cfg, changes, load_qa(changes / "qa.jsonl")


def run_drill(run_dir: Path, changes: Path | None = None, steps: int = 20, generation: dict | None = None) -> dict:
    """Run (or reuse, when nothing changed) the drill on a finished run; returns drill.json's content."""
    run = RunDir(run_dir)
    cfg, changes, items = check_drill_inputs(run_dir, changes, steps, generation)
    h = combine_hashes(
        _changes_hash(changes),
        str(steps),
        cfg.section_hash("model", "retrieval", "chunking", "tuning"),
        sha256_file(run / "index" / "index.faiss"),
        sha256_file(run / "adapter" / "adapter_model.safetensors"),
    )
    with run.stage("drill", h, ["drill/drill.json"]) as st:
        if not st.skipped:
            atomic_write_json(run / "drill" / "drill.json", _measure(run, cfg, changes, items, steps))
    return read_json(run / "drill" / "drill.json", "drill result", "delete it and run the drill again")


def _measure(run: RunDir, cfg, changes: Path, items, steps: int) -> dict:
    """drill.json's content: each option of the arm table answers the changed facts after absorbing the change
    the way it can (re-indexing when it answers with the index, else a fresh adapter on the changed documents)."""
    from advisor.core.remote_lm import load_lm
    from retrieval.index import Retriever

    out = run / "drill"
    changed = sorted(p for p in (changes / "corpus").iterdir() if p.is_file())
    say(f"  drill: {len(changed)} changed documents, {len(items)} questions on the changed facts")
    lm = load_lm(cfg, adapter=str(run / "adapter"))  # in process, or on generation.base_url
    before = _answer(out, cfg, items, f"before_{RAG}", RAG, lm, Retriever(run / "index"))
    reindex = _reindex(run, cfg, changed)
    new_index = Retriever(out / "index")
    acc = {o: _answer(out, cfg, items, o, s.name, lm, new_index) for o, s in OPTION.items() if s.needs_index}
    del lm
    retrain = _retrain(run, cfg, changed, reindex["chunks"], items, steps)
    acc.update(
        {
            o: _answer(out, cfg, items, o, s.name, retrain["lm"])
            for o, s in OPTION.items()
            if s.needs_adapter and not s.needs_index
        }
    )
    full_tune_s = run.read_manifest().get("stages", {}).get("tune", {}).get("wall_s")
    return {
        "source": str(changes),
        "changed_documents": sorted(p.name for p in changed),
        "n_changed_documents": len(changed),
        "n_questions": len(items),
        "steps": steps,
        "before": {"accuracy": before, "how": "RAG with the run's index, before the update"},
        "options": {
            o: _option_record(OPTION[o], acc[o], reindex, retrain, len(changed), steps) for o in OPTIONS if o in acc
        },
        "note": f"The run's own full adapter training took {full_tune_s:.0f} s; the fine-tune update above is the "
        f"cheapest one (changed documents only, {steps} steps)."
        if full_tune_s
        else "",
    }


def _answer(out: Path, cfg, items, name: str, arm: str, lm, retriever=None) -> dict:
    """The arm's answers to the drill's questions (drill/<name>.jsonl) and their accuracy with its CI."""
    from advisor.arms import make_arm
    from evalsuite.evaluate import answer_and_score
    from evalsuite.stats import summarize

    rows = answer_and_score(make_arm(arm, cfg, lm, retriever), items)
    write_jsonl(out / f"{name}.jsonl", rows)
    return summarize([r["scores"]["accuracy"] for r in rows if "accuracy" in r["scores"]], cfg.eval.bootstrap, cfg.seed)


def _reindex(run: RunDir, cfg, changed: list[Path]) -> dict:
    """The update the index takes: the corpus with the changed documents, re-chunked and re-embedded into a copy
    of the run's index (only new or changed chunks are embedded, as a real update would); the timer covers exactly
    that work. Returns {"s", "chunks", "embedded"}."""
    from advisor.core.corpus import ingest_configured
    from retrieval.index import build_index

    out = run / "drill"
    corpus = out / "corpus"
    shutil.rmtree(corpus, ignore_errors=True)
    src = Path(cfg.corpus.path)
    if src.is_dir():
        shutil.copytree(src, corpus)
    else:  # a one-file corpus
        corpus.mkdir(parents=True)
        shutil.copy2(src, corpus / src.name)
    for p in changed:
        shutil.copy2(p, corpus / p.name)
    shutil.rmtree(out / "index", ignore_errors=True)
    shutil.copytree(run / "index", out / "index")
    r = cfg.retrieval
    t0 = time.perf_counter()
    ingest_configured(corpus, out, cfg)
    built = build_index(out / "chunks.jsonl", out / "index", r, progress=False)
    s = time.perf_counter() - t0
    chunks = read_jsonl(out / "chunks.jsonl")
    say(f"  drill: re-indexed {len(chunks)} chunks ({built['embedded']} embedded) in {s:.1f} s")
    return {"s": s, "chunks": chunks, "embedded": built["embedded"]}


def _retrain(run: RunDir, cfg, changed: list[Path], chunks: list[dict], items, steps: int) -> dict:
    """The update a tuned model takes: a fresh adapter trained for `steps` steps on the changed documents only,
    timed from model load to save. Returns {"s", "tokens_seen", "lm"} (lm: the model with that adapter, in
    process: a generation server cannot know an adapter trained a moment ago)."""
    from advisor.core.lm import LM
    from advisor.core.models import causal_tokenizer
    from tuning.data import build_sft
    from tuning.train import tokenize_examples, train_adapter

    tok = causal_tokenizer(cfg.model.spec)
    chat = bool(getattr(tok, "chat_template", None))
    names = {p.name for p in changed}
    changed_chunks = [c for c in chunks if Path(c["source"]).name in names]
    train, val, _ = build_sft(
        changed_chunks, [], items, tok, cfg.tuning.max_seq_len, True, False, cfg.tuning.val_fraction, cfg.seed
    )
    train_rows, _ = tokenize_examples(train, tok, cfg.tuning.max_seq_len, chat)
    val_rows, _ = tokenize_examples(val, tok, cfg.tuning.max_seq_len, chat)
    tcfg = copy.deepcopy(cfg)
    tcfg.tuning.max_steps = steps
    t0 = time.perf_counter()
    info = train_adapter(tcfg, train_rows, val_rows, tok, run / "drill" / "adapter", "drill")
    s = time.perf_counter() - t0
    say(f"  drill: trained an adapter on the changed documents, {steps} steps in {s:.1f} s")
    if cfg.generation.backend != "hf":
        say("  drill: the fresh adapter is answered in process (the generation server does not serve it)")
    lm = LM.load(
        cfg.model.spec, cfg.model.quantization, str(run / "drill" / "adapter"), matmul_dtype=cfg.model.cpu_matmul_dtype
    )
    return {"s": s, "tokens_seen": info["tokens_seen"], "lm": lm}


def _option_record(spec, accuracy: dict, reindex: dict, retrain: dict, n_changed: int, steps: int) -> dict:
    """drill.json's entry of one option: how it absorbed the change, how long that took, its accuracy after."""
    if spec.needs_index and not spec.needs_adapter:
        how = f"re-index the updated corpus incrementally ({len(reindex['chunks'])} chunks, {reindex['embedded']} embedded)"
    elif spec.needs_index:
        how = "re-index; the run's adapter is kept"
    else:
        how = (
            f"train a LoRA adapter on the {n_changed} changed documents, {steps} steps "
            f"({retrain['tokens_seen']:,} tokens)"
        )
    update_s = reindex["s"] if spec.needs_index else retrain["s"]
    return {"how": how, "update_s": round(update_s, 2), "accuracy": accuracy}
