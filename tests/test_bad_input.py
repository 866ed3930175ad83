"""A matrix of bad inputs across every command, run in-process through the CLI's single handler.

Each case asserts: exit code 2, exactly one line on stderr ("advisor: error: ...") naming the culprit,
no traceback, and every file the command could touch byte-identical afterwards (a finished run on the
tiny fakes, the case's own input files). Cases that take a run directory get a fresh copy of one
finished run, so a case that wrongly wrote into it fails alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from advisor.cli import main

DATA = Path(__file__).parent / "data"
QA_LINE = '{"question": "When does the first ferry leave?", "answers": ["06:40"], "source": "ferry-timetable.md"}\n'


@pytest.fixture
def finished(finished_tiny_run) -> Path:
    return finished_tiny_run


@dataclass
class Env:
    """Paths a case builds its command from; `write` makes an input file in the case's own folder."""

    tmp: Path
    run: Path
    model: str

    def write(self, name: str, content: str | bytes) -> str:
        p = self.tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content if isinstance(content, bytes) else content.encode())
        return str(p)

    def folder(self, name: str, files: dict[str, str | bytes] | None = None) -> str:
        (self.tmp / name).mkdir(parents=True, exist_ok=True)
        for f, c in (files or {}).items():
            self.write(f"{name}/{f}", c)
        return str(self.tmp / name)

    def run_args(
        self,
        *over: str,
        corpus: str | None = None,
        qa: str | None = None,
        out: str | None = None,
        extra: tuple[str, ...] = (),
    ) -> list[str]:
        """`advisor run` on the tiny fakes into the finished run, with one thing changed."""
        return [
            "run",
            "--corpus",
            str(DATA / "corpus") if corpus is None else corpus,
            "--qa",
            str(DATA / "qa.jsonl") if qa is None else qa,
            "--model",
            self.model,
            "--embedder",
            "hashing",
            "--config",
            "smoke",
            "--out",
            str(self.run) if out is None else out,
            *extra,
            "model.quantization=none",
            "tuning.max_steps=2",
            "eval.perplexity_texts=0",
            *over,
        ]

    def batch(self, **over) -> str:
        spec = {
            "out": str(self.tmp / "batch"),
            "corpora": [{"name": "ferry", "path": str(DATA / "corpus"), "qa": str(DATA / "qa.jsonl")}],
            "models": [self.model],
            "settings": [{"name": "smoke", "config": "smoke"}],
            "overrides": ["model.quantization=none", "retrieval.embedder=hashing", "eval.perplexity_texts=0"],
        }
        spec.update(over)
        return self.write("batch.yaml", yaml.safe_dump(spec))


@dataclass
class Case:
    id: str
    argv: Callable[[Env], list[str]]
    needles: tuple[str, ...]


def C(id: str, argv: Callable[[Env], list[str]], *needles: str) -> Case:
    return Case(id, argv, needles)


def qa(e: Env, text: str | bytes, name: str = "qa.jsonl") -> list[str]:
    return e.run_args(qa=e.write(name, text))


def corpus(e: Env, files: dict) -> list[str]:
    return e.run_args(corpus=e.folder("docs", files))


def busy_port() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s


def truncated_index(e: Env) -> str:
    p = e.run / "index" / "index.faiss"
    p.write_bytes(p.read_bytes()[:100])
    return str(e.run)


CASES = [
    # ------------------------------------------------------------ corpus (run)
    C("corpus-missing", lambda e: e.run_args(corpus=str(e.tmp / "nope")), "nope", "does not exist"),
    C("corpus-empty-string", lambda e: e.run_args(corpus=""), "--corpus is empty"),
    C("corpus-blank-string", lambda e: e.run_args(corpus="  "), "--corpus is empty"),
    C("corpus-empty-folder", lambda e: e.run_args(corpus=e.folder("docs")), "docs", "is empty"),
    C(
        "corpus-symlink-to-itself",
        lambda e: (os.symlink("loop", e.tmp / "loop"), e.run_args(corpus=str(e.tmp / "loop")))[1],
        "loop",
        "symlink loop",
    ),
    C("corpus-only-binary", lambda e: corpus(e, {"a.md": b"\x00\x01\x02" * 50}), "no readable documents", "binary"),
    C("corpus-only-empty-files", lambda e: corpus(e, {"a.md": "", "b.txt": ""}), "no readable documents", "empty file"),
    C(
        "corpus-only-unsupported",
        lambda e: corpus(e, {"a.docx": "x", "b.xlsx": "y"}),
        "no readable documents",
        "unsupported file type '.docx'",
    ),
    C("corpus-jsonl-without-text-field", lambda e: corpus(e, {"d.jsonl": '{"body": "x"}\n'}), "d.jsonl:1", "'text'"),
    C("corpus-jsonl-broken-first-line", lambda e: corpus(e, {"d.jsonl": '{"text": \n'}), "d.jsonl:1", "not valid JSON"),
    C(
        "corpus-csv-without-text-column",
        lambda e: corpus(e, {"d.csv": "id,body\n1,x\n"}),
        "d.csv:1",
        "no column 'text'",
    ),
    C("corpus-file-binary", lambda e: e.run_args(corpus=e.write("one.txt", b"\x00" * 100)), "one.txt", "binary"),
    C("corpus-text-field-empty", lambda e: e.run_args("corpus.text_field="), "corpus.text_field must not be empty"),
    # ------------------------------------------------------------ QA file (run)
    C("qa-missing", lambda e: e.run_args(qa=str(e.tmp / "none.jsonl")), "none.jsonl", "does not exist"),
    C("qa-empty-string", lambda e: e.run_args(qa=""), "--qa is empty"),
    C("qa-is-a-folder", lambda e: e.run_args(qa=e.folder("qadir")), "qadir", "is a folder"),
    C("qa-empty-file", lambda e: qa(e, ""), "qa.jsonl", "holds no questions"),
    C("qa-binary", lambda e: qa(e, b"\x00\x01" * 40), "qa.jsonl", "binary"),
    C("qa-broken-json", lambda e: qa(e, QA_LINE + "{broken\n"), "qa.jsonl:2", "not valid JSON"),
    C("qa-line-is-a-list", lambda e: qa(e, QA_LINE + "[1, 2]\n"), "qa.jsonl:2", "JSON object"),
    C("qa-no-question", lambda e: qa(e, '{"answers": ["x"]}\n'), "qa.jsonl:1", "'question'"),
    C("qa-blank-question", lambda e: qa(e, '{"question": "  ", "answers": ["x"]}\n'), "qa.jsonl:1", "'question'"),
    C("qa-question-number", lambda e: qa(e, '{"question": 5, "answers": ["x"]}\n'), "qa.jsonl:1", "'question'"),
    C("qa-answers-numbers", lambda e: qa(e, '{"question": "q?", "answers": [1, 2]}\n'), "qa.jsonl:1", "'answers'"),
    C("qa-answers-object", lambda e: qa(e, '{"question": "q?", "answers": {"a": 1}}\n'), "qa.jsonl:1", "'answers'"),
    C("qa-no-answers", lambda e: qa(e, '{"question": "q?"}\n'), "qa.jsonl:1", "has no answers"),
    C(
        "qa-unanswerable-string-false",
        lambda e: qa(e, QA_LINE + '{"question": "q?", "answers": ["a"], "unanswerable": "false"}\n'),
        "qa.jsonl:2",
        "'unanswerable' must be true or false",
        "without quotes",
    ),
    C(
        "qa-unanswerable-string-true",
        lambda e: qa(e, QA_LINE + '{"question": "q?", "answers": [], "unanswerable": "true"}\n'),
        "qa.jsonl:2",
        "'unanswerable'",
    ),
    C(
        "qa-unanswerable-one",
        lambda e: qa(e, QA_LINE + '{"question": "q?", "answers": [], "unanswerable": 1}\n'),
        "qa.jsonl:2",
        "'unanswerable'",
    ),
    C(
        "qa-unanswerable-null",
        lambda e: qa(e, QA_LINE + '{"question": "q?", "answers": [], "unanswerable": null}\n'),
        "qa.jsonl:2",
        "'unanswerable'",
    ),
    C(
        "qa-source-number",
        lambda e: qa(e, '{"question": "q?", "answers": ["a"], "source": 3}\n'),
        "qa.jsonl:1",
        "'source'",
    ),
    C(
        "qa-source-not-in-corpus",
        lambda e: qa(e, QA_LINE + '{"question": "q?", "answers": ["a"], "source": "ferry-timetabel.md"}\n'),
        "qa.jsonl:2",
        "source 'ferry-timetabel.md' is not a file of the corpus",
        "nearest: 'ferry-timetable.md'",
    ),
    C(
        "qa-source-wrong-folder",
        lambda e: qa(e, '{"question": "q?", "answers": ["a"], "source": "docs/fuel.md"}\n'),
        "qa.jsonl:1",
        "'docs/fuel.md'",
        "nearest: 'fuel.md'",
    ),
    C(
        "qa-duplicate-id",
        lambda e: qa(e, '{"id": "a", "question": "q?", "answers": ["x"]}\n' * 2),
        "qa.jsonl:2",
        "duplicate id",
    ),
    C("qa-id-list", lambda e: qa(e, '{"id": [1], "question": "q?", "answers": ["x"]}\n'), "qa.jsonl:1", "'id'"),
    C(
        "qa-only-unanswerable",
        lambda e: qa(e, '{"question": "q?", "answers": [], "unanswerable": true}\n'),
        "no answerable questions",
    ),
    C(
        "qa-symlink-loop",
        lambda e: (os.symlink("qloop", e.tmp / "qloop"), e.run_args(qa=str(e.tmp / "qloop")))[1],
        "qloop",
    ),
    C(
        "train-qa-broken",
        lambda e: e.run_args(extra=("--train-qa", e.write("t.jsonl", "nope\n"))),
        "t.jsonl:1",
        "not valid JSON",
    ),
    C(
        "train-qa-missing",
        lambda e: e.run_args(extra=("--train-qa", str(e.tmp / "t.jsonl"))),
        "t.jsonl",
        "does not exist",
    ),
    C("train-qa-empty-string", lambda e: e.run_args(extra=("--train-qa", "")), "--train-qa is empty"),
    C(
        "train-qa-source-unknown",
        lambda e: e.run_args(
            extra=("--train-qa", e.write("t.jsonl", '{"question": "q?", "answers": ["a"], "source": "nowhere.md"}\n'))
        ),
        "t.jsonl:1",
        "'nowhere.md'",
    ),
    C(
        "train-qa-bool-string",
        lambda e: e.run_args(
            extra=("--train-qa", e.write("t.jsonl", '{"question": "q?", "answers": ["a"], "unanswerable": "no"}\n'))
        ),
        "t.jsonl:1",
        "'unanswerable'",
    ),
    # ------------------------------------------------------------ config values and overrides (run)
    C("max-steps-negative", lambda e: e.run_args("tuning.max_steps=-10"), "tuning.max_steps=-10"),
    C("threads-negative", lambda e: e.run_args("threads=-2"), "threads=-2"),
    C("seed-negative", lambda e: e.run_args("seed=-1"), "seed=-1"),
    C("epochs-negative", lambda e: e.run_args("tuning.epochs=-1"), "tuning.epochs=-1"),
    C("lr-zero", lambda e: e.run_args("tuning.lr=0"), "tuning.lr=0"),
    C("weight-decay-negative", lambda e: e.run_args("tuning.weight_decay=-0.1"), "tuning.weight_decay=-0.1"),
    C("lora-r-zero", lambda e: e.run_args("tuning.lora.r=0"), "tuning.lora.r=0"),
    C("lora-dropout-too-big", lambda e: e.run_args("tuning.lora.dropout=1.5"), "tuning.lora.dropout=1.5"),
    C("lora-alpha-negative", lambda e: e.run_args("tuning.lora.alpha=-4"), "tuning.lora.alpha=-4"),
    C("chunk-size-tiny", lambda e: e.run_args("chunking.size=8"), "chunking.size=8"),
    C("chunk-overlap-too-big", lambda e: e.run_args("chunking.overlap=500"), "chunking.overlap=500"),
    C("quantization-typo", lambda e: e.run_args("model.quantization=nf3"), "model.quantization='nf3'"),
    C("max-new-tokens-zero", lambda e: e.run_args("model.max_new_tokens=0"), "model.max_new_tokens"),
    C("top-k-zero", lambda e: e.run_args("retrieval.top_k=0"), "retrieval.top_k=0"),
    C("index-kind-typo", lambda e: e.run_args("retrieval.index_kind=hsnw"), "retrieval.index_kind='hsnw'", "hnsw"),
    C("rrf-k-zero", lambda e: e.run_args("retrieval.rrf_k=0"), "retrieval.rrf_k=0"),
    C("hybrid-not-bool", lambda e: e.run_args("retrieval.hybrid=maybe"), "retrieval.hybrid", "true or false"),
    C("arms-typo", lambda e: e.run_args("eval.arms=rag,tunned"), "unknown arm 'tunned'", "tuned"),
    C("eval-limit-negative", lambda e: e.run_args("eval.limit=-1"), "eval.limit"),
    C("bootstrap-too-few", lambda e: e.run_args("eval.bootstrap=10"), "eval.bootstrap"),
    C("confidence-out-of-range", lambda e: e.run_args("eval.confidence=2"), "eval.confidence=2"),
    C("eval-batch-zero", lambda e: e.run_args("eval.batch_size=0"), "eval.batch_size"),
    C("probe-unknown", lambda e: e.run_args("eval.probes=arc_eazy"), "arc_eazy"),
    C("schedule-typo", lambda e: e.run_args("tuning.schedule=step"), "tuning.schedule='step'"),
    C("method-typo", lambda e: e.run_args("tuning.method=qlora"), "tuning.method='qlora'"),
    C("val-fraction-too-big", lambda e: e.run_args("tuning.val_fraction=0.9"), "tuning.val_fraction"),
    C("batch-size-text", lambda e: e.run_args("tuning.batch_size=abc"), "tuning.batch_size", "integer"),
    C("unknown-key", lambda e: e.run_args("tuning.lorra.r=4"), "unknown config key 'tuning.lorra'", "lora"),
    C("override-without-equals", lambda e: e.run_args("tuning.lora.r"), "tuning.lora.r", "section.key=value"),
    C("override-empty-key", lambda e: e.run_args("=5"), "empty key"),
    C("full-method-with-tuned-arms", lambda e: e.run_args("tuning.method=full"), "tuning.method=full", "advisor tune"),
    C("weights-preset-typo", lambda e: e.run_args("recommend.preset=balanced2"), "recommend", "balanced2"),
    C("weights-criterion-typo", lambda e: e.run_args("recommend.weights.accuracyy=1"), "recommend", "accuracyy"),
    C("fact-value-typo", lambda e: e.run_args("recommend.facts.knowledge_change=hourly"), "recommend", "hourly"),
    C("section-not-mapping", lambda e: e.run_args("tuning=5"), "tuning must be a mapping"),
    # ------------------------------------------------------------ plans and time budgets (run, plan)
    C(
        "time-budget-malformed",
        lambda e: e.run_args(extra=("--time-budget", "ten minutes")),
        "--time-budget",
        "not a duration",
        "10m",
    ),
    C(
        "time-budget-unit-typo",
        lambda e: e.run_args(extra=("--time-budget", "10min")),
        "--time-budget",
        "not a duration",
    ),
    C("time-budget-zero", lambda e: e.run_args(extra=("--time-budget", "0")), "--time-budget", "positive duration"),
    C("time-budget-empty", lambda e: e.run_args(extra=("--time-budget", "")), "--time-budget is empty"),
    C(
        "time-budget-too-small",
        lambda e: e.run_args(extra=("--time-budget", "1s")),
        "too small",
        "needs about",
        "give at least --time-budget",
    ),
    C("time-budget-config-malformed", lambda e: e.run_args("run.time_budget=soon"), "run.time_budget='soon'"),
    C("confirm-over-malformed", lambda e: e.run_args("run.confirm_over=-5m"), "run.confirm_over"),
    C(
        "long-plan-without-yes",
        lambda e: e.run_args("run.confirm_over=1s"),
        "over run.confirm_over=1s",
        "nothing was started",
        "--yes",
    ),
    C("max-train-tokens-negative", lambda e: e.run_args("tuning.max_train_tokens=-1"), "tuning.max_train_tokens=-1"),
    C("plan-time-budget-malformed", lambda e: ["plan", *e.run_args(extra=("--time-budget", "x"))[1:]], "--time-budget"),
    C(
        "plan-device-typo",
        lambda e: ["plan", *e.run_args(extra=("--device", "a1000"))[1:]],
        "unknown --device 'a1000'",
        "a100",
    ),
    C("plan-speedup-zero", lambda e: ["plan", *e.run_args(extra=("--speedup", "0"))[1:]], "--speedup"),
    C("plan-price-negative", lambda e: ["plan", *e.run_args(extra=("--price-per-hour", "-1"))[1:]], "--price-per-hour"),
    C(
        "dry-run-corpus-missing",
        lambda e: e.run_args(corpus=str(e.tmp / "nope"), extra=("--dry-run",)),
        "nope",
        "does not exist",
    ),
    # ------------------------------------------------------------ model specs (run)
    C("model-typo", lambda e: e.run_args(extra=("--model", "smollm3")), "model.spec", "unknown causal model 'smollm3'"),
    C("model-empty-string", lambda e: e.run_args(extra=("--model", "")), "--model is empty"),
    C(
        "model-folder-without-config",
        lambda e: e.run_args(extra=("--model", e.folder("m", {"x.bin": "1"}))),
        "model.spec",
        "not a model folder",
    ),
    C(
        "model-is-an-embedder",
        lambda e: e.run_args(extra=("--model", "all-minilm-l6-v2")),
        "model.spec",
        "bundled embedder",
    ),
    C(
        "model-hub-id-offline",
        lambda e: e.run_args(extra=("--model", "nosuch-org/nosuch-model")),
        "model.spec",
        "nosuch-org/nosuch-model",
        "Hugging Face Hub",
    ),
    C(
        "embedder-typo",
        lambda e: e.run_args(extra=("--embedder", "all-minilm-l6")),
        "retrieval.embedder",
        "all-minilm-l6",
    ),
    C(
        "embedder-is-causal",
        lambda e: e.run_args(extra=("--embedder", "smollm2-135m-instruct")),
        "retrieval.embedder",
        "bundled causal",
    ),
    C(
        "embedder-hashing-bad-dim",
        lambda e: e.run_args(extra=("--embedder", "hashing:0")),
        "retrieval.embedder",
        "hashing:0",
    ),
    C("judge-typo", lambda e: e.run_args("eval.judge=smollm3"), "eval.judge", "unknown causal model 'smollm3'"),
    C("judge-is-an-embedder", lambda e: e.run_args("eval.judge=all-minilm-l6-v2"), "eval.judge", "bundled embedder"),
    C("eval-embedder-typo", lambda e: e.run_args("eval.embedder=minilm"), "eval.embedder", "minilm"),
    # ------------------------------------------------------------ --config files (run)
    C("config-missing", lambda e: e.run_args(extra=("--config", str(e.tmp / "c.yaml"))), "c.yaml", "does not exist"),
    C("config-empty-string", lambda e: e.run_args(extra=("--config", "")), "--config is empty"),
    C("config-preset-typo", lambda e: e.run_args(extra=("--config", "smoek")), "unknown preset 'smoek'", "smoke"),
    C(
        "config-bad-yaml",
        lambda e: e.run_args(extra=("--config", e.write("c.yaml", "tuning: [\n"))),
        "c.yaml",
        "not valid YAML",
    ),
    C(
        "config-not-mapping",
        lambda e: e.run_args(extra=("--config", e.write("c.yaml", "- a\n- b\n"))),
        "c.yaml",
        "mapping",
    ),
    C(
        "config-binary",
        lambda e: e.run_args(extra=("--config", e.write("c.yaml", b"\x00\xff" * 30))),
        "c.yaml",
        "binary",
    ),
    C(
        "config-cp1252-unknown-key",
        lambda e: e.run_args(
            extra=(
                "--config",
                e.write(
                    "c.yaml", "# r\xe9sum\xe9 caf\xe9 na\xefve \xe0 la carte\ntuning:\n  lorra: 2\n".encode("cp1252")
                ),
            )
        ),
        "unknown config key 'tuning.lorra'",
    ),
    C("config-folder", lambda e: e.run_args(extra=("--config", e.folder("conf.yaml"))), "conf.yaml"),
    # ------------------------------------------------------------ --out (run)
    C("out-is-a-file", lambda e: e.run_args(out=e.write("f.txt", "mine")), "f.txt", "is a file"),
    C(
        "out-under-a-file",
        lambda e: e.run_args(out=str(e.tmp / "f.txt" / "run")) if e.write("f.txt", "x") else [],
        "f.txt",
        "is a file",
    ),
    C(
        "out-user-folder",
        lambda e: e.run_args(out=e.folder("mine", {"notes.txt": "x", "config.yaml": "a: 1"})),
        "mine",
        "not a run directory",
        "--force",
    ),
    C(
        "out-user-folder-force-clash",
        lambda e: e.run_args(out=e.folder("mine", {"config.yaml": "a: 1"}), extra=("--force",)),
        "mine",
        "'config.yaml'",
        "overwrite",
    ),
    C("out-empty-string", lambda e: e.run_args(out=""), "--out is empty"),
    C(
        "out-foreign-manifest",
        lambda e: e.run_args(out=e.folder("app", {"manifest.json": '{"name": "my app"}'})),
        "app",
        "not a run directory",
    ),
    # ------------------------------------------------------------ advisor eval
    C("eval-run-missing", lambda e: ["eval", str(e.tmp / "nope")], "nope", "does not exist"),
    C("eval-not-a-run", lambda e: ["eval", e.folder("plain")], "plain", "not a run directory"),
    C("eval-arm-typo", lambda e: ["eval", str(e.run), "--arms", "ragg"], "unknown arm 'ragg'"),
    C("eval-cmd-limit-negative", lambda e: ["eval", str(e.run), "--limit", "-3"], "eval.limit"),
    C("eval-judge-typo", lambda e: ["eval", str(e.run), "--judge", "TYPO"], "eval.judge", "'TYPO'"),
    C("eval-judge-empty", lambda e: ["eval", str(e.run), "--judge", ""], "--judge is empty"),
    C("eval-cmd-embedder-typo", lambda e: ["eval", str(e.run), "eval.embedder=minilm"], "eval.embedder", "minilm"),
    C("eval-override-unknown", lambda e: ["eval", str(e.run), "eval.limitt=3"], "unknown config key 'eval.limitt'"),
    C(
        "eval-config-broken",
        lambda e: (e.run.joinpath("config.yaml").write_text("tuning: [\n"), ["eval", str(e.run)])[1],
        "config.yaml",
        "not valid YAML",
    ),
    C(
        "eval-adapter-missing",
        lambda e: (shutil.rmtree(e.run / "adapter"), ["eval", str(e.run), "--arms", "tuned"])[1],
        "arm 'tuned' needs",
        "adapter",
    ),
    # ------------------------------------------------------------ advisor search
    C("search-dir-missing", lambda e: ["search", str(e.tmp / "nope"), "ferry"], "no FAISS index"),
    C("search-truncated-index", lambda e: ["search", truncated_index(e), "ferry"], "index.faiss", "damaged", "rebuild"),
    C(
        "search-garbage-index",
        lambda e: (
            e.write("ix/index/index.faiss", b"not an index"),
            e.write("ix/index/index_config.json", '{"embedder": "hashing"}'),
            ["search", str(e.tmp / "ix"), "ferry"],
        )[2],
        "index.faiss",
        "damaged",
    ),
    C(
        "search-broken-index-config",
        lambda e: (e.run.joinpath("index/index_config.json").write_text("{"), ["search", str(e.run), "ferry"])[1],
        "index_config.json",
        "not valid JSON",
    ),
    C(
        "search-meta-short",
        lambda e: (
            e.run.joinpath("index/meta.jsonl").write_text(
                e.run.joinpath("index/meta.jsonl").read_text().splitlines()[0] + "\n"
            ),
            ["search", str(e.run), "ferry"],
        )[1],
        "inconsistent",
        "meta.jsonl",
    ),
    C("search-k-zero", lambda e: ["search", str(e.run), "ferry", "-k", "0"], "-k 0"),
    C("search-empty-query", lambda e: ["search", str(e.run), "  "], "query is empty"),
    # ------------------------------------------------------------ advisor index
    C(
        "index-corpus-missing",
        lambda e: ["index", str(e.tmp / "nope"), "--out", str(e.tmp / "ix")],
        "nope",
        "does not exist",
    ),
    C("index-corpus-empty-string", lambda e: ["index", "", "--out", str(e.tmp / "ix")], "must not be empty"),
    C(
        "index-out-is-a-file",
        lambda e: ["index", str(DATA / "corpus"), "retrieval.embedder=hashing", "--out", e.write("f.txt", "x")],
        "f.txt",
        "is a file",
    ),
    C(
        "index-out-user-folder",
        lambda e: [
            "index",
            str(DATA / "corpus"),
            "retrieval.embedder=hashing",
            "--out",
            e.folder("mine", {"a.txt": "x"}),
        ],
        "mine",
        "not an index folder",
        "--force",
    ),
    C(
        "index-out-force-clash",
        lambda e: [
            "index",
            str(DATA / "corpus"),
            "retrieval.embedder=hashing",
            "--out",
            e.folder("mine", {"chunks.jsonl": "x"}),
            "--force",
        ],
        "'chunks.jsonl'",
    ),
    C(
        "index-embedder-typo",
        lambda e: ["index", str(DATA / "corpus"), "--out", str(e.tmp / "ix"), "--embedder", "minilm"],
        "retrieval.embedder",
        "minilm",
    ),
    C(
        "index-chunk-size",
        lambda e: ["index", str(DATA / "corpus"), "chunking.size=4", "--out", str(e.tmp / "ix")],
        "chunking.size=4",
    ),
    C(
        "index-only-binary",
        lambda e: [
            "index",
            e.folder("docs", {"a.md": b"\x00" * 20}),
            "retrieval.embedder=hashing",
            "--out",
            str(e.tmp / "ix"),
        ],
        "no readable documents",
    ),
    # ------------------------------------------------------------ advisor tune
    C("tune-not-ingested", lambda e: ["tune", e.folder("plain", {"x.txt": "1"})], "not an ingested run directory"),
    C(
        "tune-out-is-a-file",
        lambda e: [
            "tune",
            "--corpus",
            str(DATA / "corpus"),
            "--qa",
            str(DATA / "qa.jsonl"),
            "--model",
            e.model,
            "--out",
            e.write("f.txt", "x"),
            "retrieval.embedder=hashing",
            "model.quantization=none",
            "eval.perplexity_texts=0",
        ],
        "f.txt",
        "is a file",
    ),
    C(
        "tune-max-steps-negative",
        lambda e: [
            "tune",
            "--corpus",
            str(DATA / "corpus"),
            "--qa",
            str(DATA / "qa.jsonl"),
            "--out",
            str(e.run),
            "tuning.max_steps=-10",
        ],
        "tuning.max_steps=-10",
    ),
    C("tune-corpus-empty-string", lambda e: ["tune", "--corpus", "", "--out", str(e.run)], "--corpus is empty"),
    C(
        "tune-run-dir-another-corpus",
        lambda e: ["tune", str(e.run), "--corpus", e.folder("other", {"a.md": "The ferry leaves at 07:10."})],
        "is a run directory made from",
        "--out NEW_DIR",
    ),
    C("tune-run-dir-another-qa", lambda e: ["tune", str(e.run), "--qa", e.write("q.jsonl", QA_LINE)], "corpus.qa"),
    C("tune-run-dir-and-out", lambda e: ["tune", str(e.run), "--out", str(e.tmp / "else")], "two run directories"),
    C("tune-run-dir-override-typo", lambda e: ["tune", str(e.run), "tuning.max_stepz=3"], "max_stepz"),
    C(
        "tune-model-typo",
        lambda e: [
            "tune",
            "--corpus",
            str(DATA / "corpus"),
            "--qa",
            str(DATA / "qa.jsonl"),
            "--model",
            "smollm3",
            "--out",
            str(e.run),
            "retrieval.embedder=hashing",
        ],
        "model.spec",
        "smollm3",
    ),
    # ------------------------------------------------------------ advisor export
    C("export-out-is-a-file", lambda e: ["export", str(e.run), "--out", e.write("f.txt", "x")], "f.txt", "is a file"),
    C("export-out-is-the-run", lambda e: ["export", str(e.run), "--out", str(e.run), "--force"], "run directory"),
    C("export-out-inside-run", lambda e: ["export", str(e.run), "--out", str(e.run / "merged")], "inside it"),
    C(
        "export-out-another-run",
        lambda e: ["export", str(e.run), "--out", e.folder("other", {"manifest.json": '{"stages": {}}'}), "--force"],
        "run or index folder",
    ),
    C("export-no-adapter", lambda e: ["export", e.folder("plain"), "--out", str(e.tmp / "m")], "no trained adapter"),
    C(
        "export-out-user-files",
        lambda e: ["export", str(e.run), "--out", e.folder("mine", {"a.txt": "x"})],
        "already holds files",
        "--force",
    ),
    # ------------------------------------------------------------ advisor batch
    C("batch-missing", lambda e: ["batch", str(e.tmp / "b.yaml")], "b.yaml", "does not exist"),
    C("batch-bad-yaml", lambda e: ["batch", e.write("b.yaml", "corpora: [\n")], "b.yaml", "not valid YAML"),
    C("batch-binary", lambda e: ["batch", e.write("b.yaml", b"\x00\x00\xff")], "b.yaml", "binary"),
    C("batch-no-corpora", lambda e: ["batch", e.write("b.yaml", "models: [x]\n")], "'corpora' is missing"),
    C("batch-unknown-key", lambda e: ["batch", e.batch(setings=[])], "unknown key 'setings'", "settings"),
    C(
        "batch-second-corpus-typo",
        lambda e: [
            "batch",
            e.batch(
                corpora=[
                    {"name": "ferry", "path": str(DATA / "corpus"), "qa": str(DATA / "qa.jsonl")},
                    {"name": "typo", "path": str(DATA / "corpsu"), "qa": str(DATA / "qa.jsonl")},
                ]
            ),
        ],
        "cell typo",
        "corpsu",
        "does not exist",
    ),
    C("batch-second-model-typo", lambda e: ["batch", e.batch(models=[e.model, "smollm3"])], "smollm3", "model.spec"),
    C(
        "batch-cell-source-unknown",
        lambda e: [
            "batch",
            e.batch(
                corpora=[
                    {
                        "name": "x",
                        "path": str(DATA / "corpus"),
                        "qa": e.write("q.jsonl", '{"question": "q?", "answers": ["a"], "source": "nope.md"}\n'),
                    }
                ]
            ),
        ],
        "q.jsonl:1",
        "'nope.md'",
    ),
    C(
        "batch-cell-judge-typo",
        lambda e: ["batch", e.batch(settings=[{"name": "j", "config": "smoke", "overrides": ["eval.judge=smollm3"]}])],
        "eval.judge",
    ),
    C(
        "batch-setting-unknown-key",
        lambda e: ["batch", e.batch(settings=[{"name": "s", "overides": []}])],
        "'overides'",
    ),
    C("batch-corpus-not-mapping", lambda e: ["batch", e.batch(corpora=["docs/"])], "corpora[0] must be a mapping"),
    C("batch-corpus-path-number", lambda e: ["batch", e.batch(corpora=[{"name": "n", "path": 5}])], "corpora[0].path"),
    C("batch-out-is-a-file", lambda e: ["batch", e.batch(out=e.write("o.txt", "x"))], "o.txt", "is a file"),
    C("batch-presets-typo", lambda e: ["batch", e.batch(recommend_presets=["balancd"])], "balancd"),
    C("batch-mlflow-bad", lambda e: ["batch", e.batch(mlflow="sometimes")], "mlflow"),
    C(
        "batch-overrides-empty-list-setting-bad",
        lambda e: [
            "batch",
            e.batch(overrides=[], settings=[{"name": "bad", "config": "smoke", "overrides": ["tuning.max_steps=-1"]}]),
        ],
        "setting=bad",
        "tuning.max_steps=-1",
    ),
    C(
        "batch-cp1252-unknown-key",
        lambda e: ["batch", e.write("b.yaml", "# caf\xe9 \xe0 na\xefve r\xe9sum\xe9\ncorpra: []\n".encode("cp1252"))],
        "unknown key 'corpra'",
    ),
    # ------------------------------------------------------------ advisor recommend / drill
    C("recommend-run-missing", lambda e: ["recommend", str(e.tmp / "nope")], "nope", "does not exist"),
    C(
        "recommend-weights-malformed",
        lambda e: ["recommend", str(e.run), "--weights", "accuracy"],
        "--weights 'accuracy'",
    ),
    C("recommend-weights-unknown", lambda e: ["recommend", str(e.run), "--weights", "acuracy=0.5"], "acuracy"),
    C(
        "recommend-facts-unknown-value",
        lambda e: ["recommend", str(e.run), "--facts", "knowledge_change=hourly"],
        "hourly",
    ),
    C("recommend-preset-typo", lambda e: ["recommend", str(e.run), "--preset", "cheap"], "cheap"),
    C("drill-run-missing", lambda e: ["drill", str(e.tmp / "nope")], "nope"),
    C("drill-changes-missing", lambda e: ["drill", str(e.run), "--changes", str(e.tmp / "changes")], "changes"),
    # ------------------------------------------------------------ advisor serve / dashboard (before any model loads)
    C("serve-port-out-of-range", lambda e: ["serve", str(e.run), "--arm", "rag", "--port", "70000"], "70000"),
    C("serve-run-missing", lambda e: ["serve", str(e.tmp / "nope"), "--port", "1"], "not a run directory"),
    C("serve-arm-typo", lambda e: ["serve", str(e.run), "--arm", "ragg"], "unknown arm 'ragg'"),
    C(
        "serve-arm-without-index",
        lambda e: (shutil.rmtree(e.run / "index"), ["serve", str(e.run), "--arm", "rag"])[1],
        "needs the FAISS index",
    ),
    C(
        "serve-bad-host",
        lambda e: ["serve", str(e.run), "--arm", "rag", "--host", "no.such.host.invalid", "--port", "8123"],
        "no.such.host.invalid",
    ),
    C("serve-max-batch-zero", lambda e: ["serve", str(e.run), "--max-batch", "0"], "--max-batch"),
    C(
        "serve-matmul-dtype-without-raw",
        lambda e: ["serve", str(e.run), "--cpu-matmul-dtype", "bfloat16"],
        "--cpu-matmul-dtype goes with --raw",
    ),
    C("dashboard-port-out-of-range", lambda e: ["dashboard", "--port", "0"], "--port 0"),
    C(
        "dashboard-runs-dir-is-a-file",
        lambda e: ["dashboard", "--runs-dir", e.write("r.txt", "x")],
        "r.txt",
        "is a file",
    ),
]


def snapshot(*roots: Path) -> dict[str, str]:
    """Every file under the roots (links not followed) -> sha256 of its bytes."""
    out = {}
    for root in roots:
        for dirpath, dirs, files in os.walk(root):
            for name in files + [d for d in dirs if os.path.islink(os.path.join(dirpath, d))]:
                p = Path(dirpath) / name
                out[str(p)] = "link" if p.is_symlink() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def assert_one_line_error(code: int, err: str, needles: tuple[str, ...]) -> None:
    lines = [x for x in err.splitlines() if x.strip()]
    assert code == 2, (code, err)
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("advisor: error: "), err
    for n in needles:
        assert n in lines[0], (n, lines[0])


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
    case, finished, tiny_model_dir, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # a command that wrongly wrote into the current folder shows up in the snapshot
    run = tmp_path / finished.name
    shutil.copytree(finished, run, symlinks=True)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    e = Env(inputs, run, str(tiny_model_dir))
    argv = case.argv(e)
    before = snapshot(tmp_path)
    capsys.readouterr()
    code = main(argv)
    out = capsys.readouterr()
    assert_one_line_error(code, out.err, case.needles)
    assert snapshot(tmp_path) == before, "a failed command changed files"


def test_the_matrix_has_at_least_100_distinct_cases():
    assert len({c.id for c in CASES}) == len(CASES) >= 100


def test_a_busy_port_fails_serve_and_dashboard_before_anything_loads(finished, capsys):
    import time

    with busy_port() as s:
        port = s.getsockname()[1]
        for argv in (["serve", str(finished), "--arm", "rag", "--port", str(port)], ["dashboard", "--port", str(port)]):
            t0 = time.perf_counter()
            code = main(argv)
            err = capsys.readouterr().err
            assert_one_line_error(code, err, (f"port {port}", "already in use"))
            assert "serving" not in err and time.perf_counter() - t0 < 5  # no model was loaded


def test_batch_files_without_overrides_are_accepted(tmp_path, tiny_model_dir):
    from advisor.batch import load_batch

    e = Env(tmp_path, tmp_path / "run", str(tiny_model_dir))
    spec = yaml.safe_load(Path(e.batch()).read_text())
    del spec["overrides"]
    f = e.write("plain.yaml", yaml.safe_dump(spec))
    assert len(load_batch(Path(f)).cells) == 1
    spec["overrides"] = []
    assert len(load_batch(Path(e.write("empty.yaml", yaml.safe_dump(spec)))).cells) == 1


def test_a_typo_in_the_second_batch_corpus_fails_before_the_first_cell_builds(tmp_path, tiny_model_dir, capsys):
    e = Env(tmp_path, tmp_path / "run", str(tiny_model_dir))
    f = e.batch(
        corpora=[
            {"name": "ferry", "path": str(DATA / "corpus"), "qa": str(DATA / "qa.jsonl")},
            {"name": "typo", "path": str(DATA / "corpsu"), "qa": str(DATA / "qa.jsonl")},
        ]
    )
    assert main(["batch", f]) == 2
    assert "corpsu" in capsys.readouterr().err
    assert not (tmp_path / "batch").exists()


def test_cp1252_and_bom_files_read_like_corpus_files(tmp_path):
    from advisor.core.config import load_config
    from advisor.core.qa import load_qa

    q = tmp_path / "qa.jsonl"
    q.write_bytes('{"question": "Où est le café?", "answers": ["à côté"]}\n'.encode("cp1252"))
    assert load_qa(q)[0].question == "Où est le café?" and load_qa(q)[0].answers == ["à côté"]
    b = tmp_path / "bom.jsonl"
    b.write_bytes(b"\xef\xbb\xbf" + QA_LINE.encode())
    assert load_qa(b)[0].answers == ["06:40"]
    u16 = tmp_path / "u16.jsonl"
    u16.write_bytes(QA_LINE.encode("utf-16"))
    assert load_qa(u16)[0].source == "ferry-timetable.md"
    c = tmp_path / "c.yaml"
    c.write_bytes("# réglages du café\neval:\n  limit: 7\n".encode("cp1252"))
    assert load_config(str(c)).eval.limit == 7
    c.write_bytes(b"\xef\xbb\xbfeval:\n  limit: 9\n")
    assert load_config(str(c)).eval.limit == 9


def test_unanswerable_accepts_json_booleans_only(tmp_path):
    from advisor.core.errors import AdvisorError
    from advisor.core.qa import load_qa

    q = tmp_path / "qa.jsonl"
    q.write_text(
        '{"question": "a?", "answers": [], "unanswerable": true}\n'
        '{"question": "b?", "answers": ["x"], "unanswerable": false}\n'
    )
    assert [it.unanswerable for it in load_qa(q)] == [True, False]
    q.write_text('{"question": "b?", "answers": ["x"], "unanswerable": "false"}\n')
    with pytest.raises(AdvisorError, match='must be true or false, got "false"'):
        load_qa(q)


def test_qa_sources_may_name_records_of_a_jsonl_corpus(tmp_path):
    from advisor.core.errors import AdvisorError
    from advisor.core.qa import QAItem, check_sources

    ok = [QAItem("a", "q?", ["x"], source="notes.jsonl#7", line=1), QAItem("b", "q?", ["x"], source="a/b.md", line=2)]
    check_sources(ok, Path("qa.jsonl"), Path("/c"), ["notes.jsonl", "a/b.md"])
    with pytest.raises(AdvisorError, match=r"qa.jsonl:3: source 'b.md' .* \(nearest: 'a/b.md'\)"):
        check_sources([QAItem("c", "q?", ["x"], source="b.md", line=3)], Path("qa.jsonl"), Path("/c"), ["a/b.md"])


def test_the_sample_qa_sets_name_only_sample_files():
    from advisor.core.corpus import corpus_files
    from advisor.core.qa import check_sources, load_qa
    from advisor.pipeline import SAMPLE_CORPUS, SAMPLE_EVAL, SAMPLE_TRAIN

    files = [rel for _, rel in corpus_files(SAMPLE_CORPUS)]
    for qa_file in (SAMPLE_EVAL, SAMPLE_TRAIN):
        check_sources(load_qa(qa_file), qa_file, SAMPLE_CORPUS, files)
    check_sources(
        load_qa(DATA / "qa.jsonl"),
        DATA / "qa.jsonl",
        DATA / "corpus",
        [rel for _, rel in corpus_files(DATA / "corpus")],
    )


def test_a_manifest_that_is_not_a_run_is_not_mistaken_for_one(tmp_path):
    from advisor.core.rundirs import is_run_dir

    (tmp_path / "manifest.json").write_text(json.dumps({"name": "web app"}))
    assert not is_run_dir(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"stages": {}}))
    assert is_run_dir(tmp_path)


def test_the_corpus_preflight_reads_heads_only_yet_judges_long_first_records_right(tmp_path):
    from advisor.core.corpus import check_corpus, read_corpus

    (tmp_path / "big.jsonl").write_text(json.dumps({"text": "word " * 40_000}) + "\n")  # a 200 KB first record
    (tmp_path / "blank.jsonl").write_text("\n  \n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.md").write_text("A document.")
    assert check_corpus(tmp_path) == ["big.jsonl", "blank.jsonl", "sub/a.md"]
    docs, report = read_corpus(tmp_path)  # ingestion agrees: two documents, the blank file skipped
    assert len(docs) == 2 and [p for p, _ in report.skipped] == ["blank.jsonl"]
