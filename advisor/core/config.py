"""The run config: one validated dataclass per track, loaded from presets/YAML plus dotted overrides.

Every field has a typed default and one line of doc. Unknown keys are errors with "did you mean",
bad combinations are rejected at construction (docs/architecture.md, 'Style'). Presets are YAML files holding only
overrides (advisor/presets/*.yaml).

    cfg = load_config(preset="quickstart", overrides=["tuning.lora.r=16", "eval.limit=20"])
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from advisor.core.advice import resolve_weights, validate_facts
from advisor.core.arms import ARMS  # every arm, from the arm table (advisor/core/arms.py)
from advisor.core.errors import AdvisorError, did_you_mean
from advisor.core.logs import say
from advisor.core.textio import read_text

PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"
# The choices of the config's Literal fields; check_choices checks them all (the tuples are for messages and docs).
Quantization = Literal["nf4", "int8", "none"]
IndexKind = Literal["auto", "flat", "hnsw", "ivfpq"]
EmbedDtype = Literal["auto", "float32", "bfloat16"]
MatmulDtype = Literal["auto", "float32", "bfloat16"]
Backend = Literal["hf", "openai"]
QAGenerator = Literal["extractive", "llm"]
QASplit = Literal["by_fact", "by_document"]
QUANTIZATIONS = typing.get_args(Quantization)
INDEX_KINDS = typing.get_args(IndexKind)


def check_choices(section: Any, prefix: str) -> None:
    """Every field of a config section typed Literal[...] (or list[Literal[...]]) holds one of its choices; the
    error names the field, the choices and the nearest one. Each section's __post_init__ calls it first (peft's
    LoraConfig checks its Literal fields the same way)."""
    for name, tp in typing.get_type_hints(type(section)).items():
        value = getattr(section, name)
        many = typing.get_origin(tp) is list
        if many:
            (tp,) = typing.get_args(tp)
        if typing.get_origin(tp) is not Literal:
            continue
        choices = typing.get_args(tp)
        for v in value if many else [value]:
            if v in choices:
                continue
            if many:  # eval.arms: unknown arm 'x'; arms are ...
                raise AdvisorError(
                    f"{prefix}.{name}: unknown {name.rstrip('s')} '{v}'{did_you_mean(str(v), choices)}; "
                    f"{name} are {', '.join(choices)}"
                )
            listed = f"{', '.join(choices[:-1])} or {choices[-1]}" if len(choices) > 1 else choices[0]
            raise AdvisorError(f"{prefix}.{name}='{v}' is not one of {listed}{did_you_mean(str(v), choices)}")


def ignored(section: Any, prefix: str, names: tuple[str, ...], why: str) -> list[str]:
    """'prefix.name=value is ignored: why' for each named field of a config section set away from its default:
    a setting that has no effect in this combination is worth a line, never an error."""
    out = []
    for f in dataclasses.fields(section):
        if f.name in names:
            default = f.default_factory() if f.default is dataclasses.MISSING else f.default
            value = getattr(section, f.name)
            if value != default:
                out.append(f"{prefix}.{f.name}={value} is ignored: {why}")
    return out


@dataclass
class CorpusConfig:
    path: str = ""  # corpus folder or file; "" = the bundled sample domain
    qa: str = ""  # evaluation QA JSONL; "" = generated from the corpus (stage qa; the bundled sample's own set when path is "")
    train_qa: str = ""  # training questions JSONL (other questions about the same facts); optional
    text_field: str = "text"  # field (JSONL) or column (CSV) holding the text of each record

    def __post_init__(self):
        if not self.text_field:
            raise AdvisorError("corpus.text_field must not be empty")

    @property
    def generated(self) -> bool:
        """No QA file given: the run generates its sets into RUN_DIR/qa/ (stage qa)."""
        return not self.qa

    def eval_file(self, run_dir: Path) -> Path:
        """The evaluation set a run reads: the given QA file, else the run's generated qa/eval.jsonl."""
        return Path(self.qa) if self.qa else Path(run_dir) / "qa" / "eval.jsonl"

    def train_file(self, run_dir: Path, use_train_qa: bool = True) -> Path | None:
        """The training questions: the given file, else the generated qa/train.jsonl (stage qa writes it for
        every run: with a given eval set it holds training phrasings only), else None (tuning.use_train_qa
        off). Paths stay relative to the run directory, so a run directory that is moved or rebuilt in a copy
        keeps reading its own sets."""
        if not use_train_qa:
            return None
        return Path(self.train_qa) if self.train_qa else Path(run_dir) / "qa" / "train.jsonl"


@dataclass
class ChunkingConfig:
    size: int = 200  # chunk length in tokens of the embedder's tokenizer
    overlap: int = 40  # tokens shared by consecutive chunks of one document

    def __post_init__(self):
        if self.size < 16:
            raise AdvisorError(f"chunking.size={self.size} is too small: use at least 16 tokens")
        if not 0 <= self.overlap < self.size:
            raise AdvisorError(
                f"chunking.overlap={self.overlap} must be >= 0 and smaller than chunking.size={self.size}"
            )


@dataclass
class ModelConfig:
    spec: str = "smollm2-135m-instruct"  # bundled name, Hub id or local path of the base causal LM
    quantization: Quantization = "nf4"  # how the base weights are loaded, for every arm
    max_new_tokens: int = 32  # answer length bound in generated tokens
    # The dtype of the 4-bit layers' matrix products on CPU (their dequantized-once copies); everything else stays
    # float32. auto: bfloat16 on CPUs with AVX512-BF16, float32 elsewhere and off CPU (docs/architecture.md,
    # 'The generator's matmul dtype on CPU'). A run records it; runs in bfloat16 are not reused for float32.
    cpu_matmul_dtype: MatmulDtype = "auto"

    def products_dtype(self) -> str:
        """cpu_matmul_dtype as this machine runs it (models.resolve_cpu_matmul); float32 without 4-bit layers
        (quantization int8 or none), which make no copies for it to change."""
        from advisor.core.models import resolve_cpu_matmul

        return resolve_cpu_matmul(self.cpu_matmul_dtype, quantization=self.quantization)

    def __post_init__(self):
        check_choices(self, "model")
        if self.max_new_tokens < 1:
            raise AdvisorError("model.max_new_tokens must be at least 1")


@dataclass
class RetrievalConfig:
    embedder: str = "all-minilm-l6-v2"  # bundled name, sentence-transformers id/path, or 'hashing' (tests)
    top_k: int = 3  # chunks placed in the prompt of the retrieval arms
    context_tokens: int = 600  # budget of generator tokens for the retrieved chunks in one prompt
    batch_size: int = 64  # texts per embedding batch
    # The embedder's compute dtype. auto: bfloat16 on CUDA and on CPUs with AVX512-BF16 (2.1x the chunks/s of
    # float32 here, cosine to the float32 vectors >= 0.9999), float32 elsewhere (docs/architecture.md,
    # 'The embedder's compute dtype'). The index records the dtype it was built with and never mixes the two.
    embed_dtype: EmbedDtype = "auto"
    index_kind: IndexKind = "auto"  # auto: flat below 20k chunks, hnsw below 1M, else ivfpq
    hnsw_m: int = 32  # HNSW graph degree (links per vector)
    hnsw_ef_construction: int = 80  # HNSW candidate list size while building (higher: better graph, slower build)
    hnsw_ef_search: int = 128  # HNSW candidate list size per query (higher: better recall, slower query)
    ivf_nprobe: int = 16  # IVF-PQ lists visited per query
    hybrid: bool = True  # fuse BM25 (bm25s) with dense results by reciprocal rank fusion (sample: recall@5 .92 -> .97)
    rrf_k: int = 60  # reciprocal rank fusion constant: score = sum of 1 / (rrf_k + rank)
    # The retrieval arms' abstention gate (docs/architecture.md, 'The retrieval gate'): a question whose best chunk
    # is less similar to it (dense cosine), and stands out less from the 5th best, than this share of the run's
    # answerable training questions (each signal's quantile) gets the abstention answer without generating. 0: off.
    abstain_gate: float = 0.05

    def __post_init__(self):
        check_choices(self, "retrieval")
        if self.top_k < 1:
            raise AdvisorError(f"retrieval.top_k={self.top_k} must be at least 1")
        if self.context_tokens < 32:
            raise AdvisorError("retrieval.context_tokens must be at least 32")
        if self.batch_size < 1:
            raise AdvisorError(f"retrieval.batch_size={self.batch_size} must be at least 1")
        if self.hnsw_m < 2 or self.hnsw_ef_construction < 1 or self.hnsw_ef_search < 1 or self.ivf_nprobe < 1:
            raise AdvisorError(
                "retrieval.hnsw_m must be >= 2 and hnsw_ef_construction, hnsw_ef_search, ivf_nprobe >= 1"
            )
        if self.rrf_k < 1:
            raise AdvisorError(f"retrieval.rrf_k={self.rrf_k} must be at least 1")
        if not 0 <= self.abstain_gate <= 0.5:
            raise AdvisorError(
                f"retrieval.abstain_gate={self.abstain_gate} must be in [0, 0.5] (the share of the training "
                "questions the gate may turn away; 0 turns it off)"
            )

    def ignored_settings(self) -> list[str]:
        hnsw, kind = ("hnsw_m", "hnsw_ef_construction", "hnsw_ef_search"), self.index_kind
        out = []
        if kind in ("flat", "ivfpq"):
            out += ignored(self, "retrieval", hnsw, f"retrieval.index_kind={kind} builds no HNSW graph")
        if kind in ("flat", "hnsw"):
            out += ignored(self, "retrieval", ("ivf_nprobe",), f"retrieval.index_kind={kind} has no IVF lists")
        if not self.hybrid:
            out += ignored(self, "retrieval", ("rrf_k",), "retrieval.hybrid is off (no rank fusion)")
        return out


@dataclass
class LoraConfig:
    r: int = 16  # LoRA rank
    alpha: int = 32  # LoRA scaling numerator (scale = alpha / r)
    dropout: float = 0.05  # dropout on the LoRA input
    target_modules: str = "all-linear"  # 'all-linear' or a comma-separated list of module names
    # the dropout masks from four 16-bit lanes per 64-bit random draw instead of one draw per element
    # (tuning/dropout.py): the same dropout, other masks. auto: on a CPU, where torch's own dropout made 15-20% of
    # the quickstart's tune (docs/fine-tuning-measured.md, 'LoRA dropout on a CPU'); off on CUDA
    fast_dropout: bool | Literal["auto"] = "auto"
    # with fast_dropout, the LoRA layers that read one tensor (q/k/v, gate/up) share its dropped copy and mask
    # instead of drawing and keeping one each (tuning/dropout.py; docs/fine-tuning-measured.md, 'LoRA dropout on a CPU')
    shared_dropout: bool = True

    def __post_init__(self):
        if self.r <= 0:
            raise AdvisorError(f"tuning.lora.r={self.r} must be a positive integer")
        if self.alpha <= 0:
            raise AdvisorError(f"tuning.lora.alpha={self.alpha} must be positive")
        if not 0 <= self.dropout < 1:
            raise AdvisorError(f"tuning.lora.dropout={self.dropout} must be in [0, 1)")
        if self.fast_dropout not in ("auto", True, False):
            raise AdvisorError(f"tuning.lora.fast_dropout={self.fast_dropout} must be 'auto', true or false")
        if self.target_modules != "all-linear" and not [t for t in self.target_modules.split(",") if t.strip()]:
            raise AdvisorError("tuning.lora.target_modules must be 'all-linear' or module names like q_proj,v_proj")

    def uses_fast_dropout(self, device: str) -> bool:
        """Whether the tune stage on `device` draws the LoRA dropout masks with tuning/dropout.py (auto: on a CPU)."""
        if self.dropout == 0:
            return False
        return bool(self.fast_dropout) if self.fast_dropout != "auto" else not device.startswith("cuda")

    def uses_shared_dropout(self, device: str) -> bool:
        """Whether the LoRA layers reading one tensor share its dropped copy (shared_dropout, with fast_dropout)."""
        return self.uses_fast_dropout(device) and self.shared_dropout


# tuning.max_batch_tokens=auto on a CPU (see TuningConfig.max_batch_tokens)
CPU_MAX_BATCH_TOKENS = 768

# tuning.low_memory_heap: glibc serves allocations of this size and more with mmap (returned to the OS on free).
# Each such activation is a fresh mapping of zeroed pages, which costs time: 4 MB trained the quickstart a fifth
# faster (539 s against 693, peak 3.2 GB against 2.5) but a set with corpus text peaked at 4.7 GB against 3.0, as
# high as with no fixed threshold (docs/fine-tuning-measured.md, 'The heap's mmap threshold'); 1 MB is the best
# of the three by time x memory.
LOW_MEMORY_MMAP_THRESHOLD = 1 << 20

# The default cap on one pass over the training set (tuning.max_train_tokens). The quickstart's training set is
# about 62k tokens (124,704 seen in 2 epochs, docs/fine-tuning-measured.md), so the cap leaves it whole; a 1 MB
# corpus (~250k tokens of text alone) is sampled down to it, which bounds a CPU run's tune stage to ~25 min at
# the ~280 tokens/s measured on 2 cores (2 epochs).
MAX_TRAIN_TOKENS = 200_000
CURVE_TRAIN_QUESTIONS = 40  # eval.curve_train_questions: training questions the learning curve answers


@dataclass
class TuningConfig:
    lora: LoraConfig = field(default_factory=LoraConfig)
    epochs: float = 2.0  # passes over the training set (ignored when max_steps > 0)
    max_steps: int = 0  # optimizer steps; 0 = derived from epochs
    batch_size: int = 8  # sequences per micro-batch
    grad_accum: int = 1  # micro-batches per optimizer step
    lr: float = 2e-4  # peak learning rate
    schedule: Literal["cosine", "linear"] = "cosine"  # decay after warm-up
    warmup_ratio: float = 0.1  # share of steps spent warming up linearly from 0
    weight_decay: float = 0.0  # AdamW weight decay
    max_seq_len: int = 256  # tokens per training sequence (longer corpus text is split)
    # padded tokens per forward pass: a wider micro-batch (long RAFT examples) is split, gradients accumulated; 0 = off.
    # auto: 768 on a CPU (the quickstart's tune stage peaked at 3,545 MB, its own high-water mark, against 4,224 at
    # 1024, at 104 tokens/s against 105, and 9.3 GB at 2048), no limit on CUDA (an H200 trained 1.8-2.6x the tokens/s
    # without it; docs/fine-tuning-measured.md, 'Tune-stage memory' and 'On a GPU')
    max_batch_tokens: int | Literal["auto"] = "auto"
    val_fraction: float = 0.1  # share of training examples held out for validation loss
    # at most this many of the held-out examples are scored (the rest are neither trained nor scored); 0 = all of
    # them. A time budget sets it: a pass over a 30x sample corpus's 165 held-out examples took 81 s
    val_limit: int = 0
    # train on the corpus text itself (continued pre-training). auto: only when no training questions are given
    # (--train-qa or the sample's own). Without it the tuned arms were as good or better on the sample (its given
    # questions) and within their CIs on a bank corpus (generated ones), at 24-37% fewer training tokens
    # (docs/fine-tuning-measured.md, 'Without the corpus text'); generated questions may miss facts the text carries
    use_corpus_text: bool | Literal["auto"] = "auto"
    use_train_qa: bool = True  # train on the training questions (instruction pairs), when given
    # lora (adapter on the base, quantized per model.quantization) | full (all weights; needs model.quantization=none)
    method: Literal["lora", "full"] = "lora"
    abstain: bool = True  # train questions the corpus does not answer -> the abstention answer (generated, verified, never eval ones)
    abstain_share: float = 0.2  # abstention questions at most this share of the answerable training questions
    # where closed-book abstention questions come from. given: only a training set you give (its unanswerable
    # items); the generated unanswerable questions are not trained and abstention is taught in context only (RAFT
    # examples of answerable questions with their passage left out) | any: also the generated ones, closed book
    # (made the adapter decline questions it had not seen: 74% false abstention on Wikipedia;
    # docs/fine-tuning-measured.md, 'Abstention taught in context only')
    abstain_questions: Literal["given", "any"] = "given"
    # shared: one adapter (closed-book + RAFT examples) serves both tuned arms | separate: tuned_rag gets its own RAFT-trained adapter
    both_adapter: Literal["shared", "separate"] = "shared"
    raft: bool = True  # add RAFT-style pairs (question + oracle chunk + hard distractors) so the adapter also learns to use passages (tuned_rag)
    raft_share: float = 0.3  # share of training questions that also get a RAFT example (each ~540 tokens on the sample: the main training cost)
    raft_distractors: int = 2  # distractor chunks per RAFT example (BM25's best, see raft_distractors_from)
    # other_documents: BM25's best chunks of other documents | any_document: BM25's best chunks that do not hold the
    # answer, the oracle's own document included (near misses, as a retriever returns for a question the corpus
    # does not answer)
    raft_distractors_from: Literal["other_documents", "any_document"] = "other_documents"
    raft_no_oracle: float = 0.2  # share of RAFT examples whose oracle chunk is removed (target: the abstention answer)
    # also a RAFT example for each unanswerable training question (the given set's, else the generated verified
    # ones; capped at abstain_share): the question among its BM25-best passages, none of which answers it ->
    # the abstention answer. Abstention taught in context with questions like the evaluation's unanswerable ones
    # (off: on records it made the tuned+RAG arm decline 78% of answerable questions, accuracy 68% -> 19%;
    # docs/fine-tuning-measured.md, 'The unanswerable questions themselves in context')
    raft_unanswerable: bool = False
    eval_every: int = 0  # validation loss every N optimizer steps; 0 = at the curve's snapshots and the end (tuning.train.validation_steps)
    early_stopping_patience: int = 0  # stop after this many validations without a lower val loss; 0 = off
    # recompute layer activations in backward: ~1/layers of the activation memory, ~30% more time
    gradient_checkpointing: bool = False
    # the rows of one forward pass that begin with the same tokens (a closed-book question's chat template and
    # instruction: 33 of its ~60 tokens on the sample) run that prefix once, its keys and values shared by every
    # row: the same loss and gradients, except that the LoRA dropout on the prefix is drawn once per pass, not per
    # row. Off with gradient_checkpointing and for models whose cache has sliding windows or recurrent state
    # (docs/fine-tuning-measured.md, 'One shared prefix per pass')
    shared_prefix: bool = True
    # gradients flow back through at most this many prompt positions before each answer; a longer prompt's earlier
    # positions (a RAFT example's passages: ~480 of its ~540 tokens on the sample) run once without gradients, their
    # keys and values constants the answer attends to, and the LoRA weights learn from the instruction, the question
    # and the answer. 0 = through the whole prompt, as before 2026-12-06 (docs/fine-tuning-measured.md, 'Passages
    # without gradients'). Off with gradient_checkpointing and for caches that are not plain keys and values
    prompt_grad_tokens: int = 64
    # a CPU tune multiplies by one fp32 copy of each frozen 4-bit weight, made once when the model loads, in place
    # of dequantizing every weight again in each forward and backward: the same numbers, the copies' memory more
    # (about 0.4 GB for SmolLM2-135M). auto: on a CPU when the copies fit DEQUANT_ONCE_BYTES (2 GB), off on CUDA,
    # where bitsandbytes' kernels read the 4-bit weights directly
    dequantize_once: bool | Literal["auto"] = "auto"
    # glibc returns freed large activations to the OS at once (LOW_MEMORY_MMAP_THRESHOLD): the heap does not ratchet
    # up over a run (docs/fine-tuning-measured.md, 'Tune-stage memory'); no effect off glibc. false: the quickstart's
    # tune a fifth faster at 0.7 GB more peak, a set with corpus text at 1.5 GB more ('The heap's mmap threshold').
    # auto: on for a CPU tune that glibc's malloc serves (see allocator), off on CUDA (the activations live in GPU
    # memory there); true also makes allocator 'auto' glibc's malloc
    low_memory_heap: bool | Literal["auto"] = "auto"
    # the tune process's malloc (advisor/core/allocator.py): auto = mimalloc (the cmeel-mimalloc package, installed on
    # Linux) preloaded into a CPU tune's process, else glibc's | glibc | mimalloc | the path of a malloc library.
    # Under mimalloc the heap neither fragments nor maps fresh pages per activation, so low_memory_heap's 'auto'
    # leaves glibc's threshold alone (docs/fine-tuning-measured.md, 'The allocator of the tune stage')
    allocator: str = "auto"
    save_every: int = 25  # checkpoint (adapter + optimizer + scheduler + RNG + data order) every N steps; 0 = off
    # adapters trained with seeds seed, seed+1, ...; the tuned arms report the spread across them (GPU: 3)
    seeds: int = 1
    # adapter snapshots kept at 1/(n+1) ... n/(n+1) of the steps for the learning-vs-forgetting curve; 0 = off
    curve_points: int = 2
    max_train_tokens: int = MAX_TRAIN_TOKENS  # cap on one pass over the training set, in generator tokens: all instruction pairs, a sample of corpus text that covers every document; 0 = no cap

    def __post_init__(self):
        check_choices(self, "tuning")
        if self.max_steps < 0:
            raise AdvisorError(f"tuning.max_steps={self.max_steps} must be >= 0 (0 = derived from tuning.epochs)")
        if self.epochs < 0:
            raise AdvisorError(f"tuning.epochs={self.epochs} must be >= 0")
        if self.epochs <= 0 and self.max_steps <= 0:
            raise AdvisorError("tuning.epochs or tuning.max_steps must be positive")
        if self.batch_size < 1 or self.grad_accum < 1:
            raise AdvisorError("tuning.batch_size and tuning.grad_accum must be at least 1")
        if self.lr <= 0:
            raise AdvisorError(f"tuning.lr={self.lr} must be positive")
        if self.weight_decay < 0:
            raise AdvisorError(f"tuning.weight_decay={self.weight_decay} must be >= 0")
        if not 0 <= self.warmup_ratio < 1:
            raise AdvisorError("tuning.warmup_ratio must be in [0, 1)")
        if self.max_seq_len < 32:
            raise AdvisorError(f"tuning.max_seq_len={self.max_seq_len} is too small: use at least 32")
        if not 0 <= self.val_fraction < 0.5:
            raise AdvisorError("tuning.val_fraction must be in [0, 0.5)")
        if self.val_limit < 0:
            raise AdvisorError(f"tuning.val_limit must be >= 0 (0 = every held-out example), got {self.val_limit}")
        if self.use_corpus_text not in ("auto", True, False):
            raise AdvisorError(f"tuning.use_corpus_text={self.use_corpus_text} must be 'auto', true or false")
        if not (self.use_corpus_text or self.use_train_qa):
            raise AdvisorError("tuning: enable use_corpus_text or use_train_qa, or there is nothing to train on")
        if self.raft_distractors < 0 or not all(
            0 <= x <= 1 for x in (self.raft_no_oracle, self.raft_share, self.abstain_share)
        ):
            raise AdvisorError(
                "tuning.raft_distractors must be >= 0; tuning.raft_no_oracle, tuning.raft_share and "
                "tuning.abstain_share in [0, 1]"
            )
        mbt = self.max_batch_tokens
        if mbt != "auto" and (isinstance(mbt, bool) or not isinstance(mbt, int) or mbt < 0):
            raise AdvisorError(f"tuning.max_batch_tokens={mbt} must be 'auto' or an integer >= 0 (0 = no limit)")
        if self.dequantize_once not in ("auto", True, False):
            raise AdvisorError(f"tuning.dequantize_once={self.dequantize_once} must be 'auto', true or false")
        if self.low_memory_heap not in ("auto", True, False):
            raise AdvisorError(f"tuning.low_memory_heap={self.low_memory_heap} must be 'auto', true or false")
        if not isinstance(self.allocator, str) or not self.allocator.strip():
            raise AdvisorError(
                f"tuning.allocator={self.allocator!r} must be auto, glibc, mimalloc or the path of a malloc library"
            )
        pgt = self.prompt_grad_tokens
        if isinstance(pgt, bool) or not isinstance(pgt, int) or pgt < 0:
            raise AdvisorError(
                f"tuning.prompt_grad_tokens={pgt} must be an integer >= 0 (0 = gradients through the whole prompt)"
            )
        if self.seeds < 1:
            raise AdvisorError(f"tuning.seeds={self.seeds} must be at least 1")
        if self.max_train_tokens < 0:
            raise AdvisorError(f"tuning.max_train_tokens={self.max_train_tokens} must be >= 0 (0 = no cap)")
        if self.eval_every < 0 or self.early_stopping_patience < 0 or self.save_every < 0 or self.curve_points < 0:
            raise AdvisorError(
                "tuning.eval_every, tuning.early_stopping_patience, tuning.save_every and "
                "tuning.curve_points must be >= 0"
            )

    def corpus_text(self, train_qa_given: bool) -> bool:
        """Whether the training set holds the corpus text: tuning.use_corpus_text, where 'auto' is on unless training
        questions are given (`train_qa_given`: corpus.train_qa set, the quickstart's sample questions included) and
        trained (use_train_qa)."""
        if self.use_corpus_text != "auto":
            return bool(self.use_corpus_text)
        return not (train_qa_given and self.use_train_qa)

    def heap_mmap_threshold(self, device: str, malloc: str | None = None) -> int:
        """The glibc mmap threshold the tune stage sets on `device` (bytes); 0 = glibc's own dynamic one, or
        another malloc serves the process (`malloc`, as in memory_levers)."""
        return LOW_MEMORY_MMAP_THRESHOLD if self.memory_levers(device, malloc)[1] else 0

    def allocator_library(self, device: str):
        """The malloc library a tune stage on `device` is started with (tuning.allocator; a Path), or None for
        glibc's: 'auto' is glibc's too when low_memory_heap=true asks for glibc's low-memory heap."""
        from advisor.core.allocator import allocator_library

        if self.allocator == "auto" and self.low_memory_heap is True:
            return None
        return allocator_library(self.allocator, device)

    def malloc(self, device: str) -> str:
        """The malloc a tune stage on `device` starts under (tuning.allocator): a library's file name, or "glibc"."""
        lib = self.allocator_library(device)
        return lib.name if lib else "glibc"

    def memory_levers(self, device: str, malloc: str | None = None) -> tuple[int, bool]:
        """(max_batch_tokens, low_memory_heap) as the tune stage runs them on `device`: 'auto' is the CPU memory
        setting (768 tokens per pass, and glibc's low-memory heap when glibc's malloc serves the tune) on a CPU and
        neither on CUDA, where the activations live in GPU memory and the split passes cost time
        (docs/fine-tuning-measured.md, 'On a GPU'). `malloc`: the one serving the process (allocator's
        active_allocator); None = the one tuning.allocator starts a tune stage under. glibc's threshold means
        nothing to another malloc, so low_memory_heap is off under one, set or not."""
        cuda = device.startswith("cuda")
        mbt = self.max_batch_tokens if self.max_batch_tokens != "auto" else (0 if cuda else CPU_MAX_BATCH_TOKENS)
        heap = self.low_memory_heap if self.low_memory_heap != "auto" else not cuda
        glibc = (malloc or self.malloc(device)) == "glibc"
        return int(mbt), bool(heap) and glibc

    def uses_dequantize_once(self, device: str) -> bool:
        """Whether the tune multiplies by fp32 copies of the 4-bit weights made once (dequantize_once; the size
        bound is applied where the copies are made, advisor.core.decoding.dequantize_4bit_layers)."""
        return bool(self.dequantize_once) if self.dequantize_once != "auto" else not device.startswith("cuda")

    def prompt_grad_window(self) -> int:
        """tuning.prompt_grad_tokens as the tune runs it: 0 (gradients through the whole prompt) with gradient
        checkpointing, whose passes keep no cache (the tune also turns it off for caches that are not plain)."""
        return 0 if self.gradient_checkpointing else self.prompt_grad_tokens

    def ignored_settings(self) -> list[str]:
        out = []
        if not self.raft:
            out += ignored(
                self,
                "tuning",
                ("raft_share", "raft_distractors", "raft_no_oracle", "raft_distractors_from", "raft_unanswerable"),
                "tuning.raft is off",
            )
        if not self.abstain:
            out += ignored(
                self, "tuning", ("abstain_share", "abstain_questions", "raft_unanswerable"), "tuning.abstain is off"
            )
        if self.max_steps > 0:
            out += ignored(self, "tuning", ("epochs",), "tuning.max_steps is set")
        if self.method == "full":
            out += ignored(
                self.lora,
                "tuning.lora",
                ("r", "alpha", "dropout", "target_modules"),
                "tuning.method=full trains every weight",
            )
        return out


@dataclass
class EvalConfig:
    arms: list[str] = field(default_factory=lambda: list(ARMS))  # arms to evaluate (the arm table's names)
    limit: int = 0  # evaluate at most this many questions (answerable and unanswerable kept in proportion); 0 = all
    batch_size: int = 48  # questions per generation batch (48: 7.5x a one-at-a-time loop, benchmarks/bench_eval.py)
    probes: list[str] = field(default_factory=lambda: ["arc_easy"])  # forgetting probe sets
    probe_limit: int = 60  # items per probe set
    curve_questions: int = 40  # learning-vs-forgetting curve: answerable eval questions answered per adapter snapshot
    curve_probe_items: int = 30  # learning-vs-forgetting curve: probe items scored per adapter snapshot
    # learning curve: closed-book training questions answered per point (did the adapter learn them?); 0 = off
    curve_train_questions: int = CURVE_TRAIN_QUESTIONS
    bootstrap: int = 1000  # bootstrap resamples for confidence intervals
    embedder: str = ""  # sentence embedder for semantic similarity; "" = retrieval.embedder, "none" = off
    perplexity_texts: int = 20  # general-text passages (SQuAD's Wikipedia) for tuned-vs-base perplexity; 0 = off
    confidence: float = 0.5  # token probability from which a wrong answer counts as wrong-and-confident
    judge: str = ""  # model spec of an optional LLM judge (bundled name, folder or Hub id); "" = off
    # answers the base model samples per question to sort facts into known/maybe/unknown; 0 = off
    known_samples: int = 4
    known_temperature: float = 0.7  # sampling temperature of those answers

    def __post_init__(self):
        check_choices(self, "eval")
        if not self.arms:
            raise AdvisorError("eval.arms must name at least one arm")
        for a in self.arms:  # checked against the arm table as it is now (an arm registered later counts)
            if a not in ARMS:
                raise AdvisorError(
                    f"eval.arms: unknown arm '{a}'{did_you_mean(str(a), ARMS)}; arms are {', '.join(ARMS)}"
                )
        if self.limit < 0 or self.probe_limit < 0:
            raise AdvisorError("eval.limit and eval.probe_limit must be >= 0")
        if self.curve_train_questions < 0:
            raise AdvisorError(
                f"eval.curve_train_questions={self.curve_train_questions} must be >= 0 (0: the learning curve does not "
                "answer training questions)"
            )
        if self.batch_size < 1:
            raise AdvisorError("eval.batch_size must be at least 1")
        if self.bootstrap < 100:
            raise AdvisorError("eval.bootstrap must be at least 100 resamples")
        if self.perplexity_texts < 0:
            raise AdvisorError("eval.perplexity_texts must be >= 0 (0 turns the perplexity probe off)")
        if not 0 < self.confidence < 1:
            raise AdvisorError(f"eval.confidence={self.confidence} must be a probability between 0 and 1")
        if self.known_samples < 0:
            raise AdvisorError(
                f"eval.known_samples={self.known_samples} must be >= 0 (0 turns the known-facts split off)"
            )
        if self.known_samples and not 0 < self.known_temperature <= 2:
            raise AdvisorError(
                f"eval.known_temperature={self.known_temperature} must be above 0 and at most 2 "
                "(sampling; the greedy answer is the base arm's)"
            )

    def ignored_settings(self) -> list[str]:
        if self.known_samples:
            return []
        return ignored(self, "eval", ("known_temperature",), "eval.known_samples=0 turns the known-facts split off")


BACKENDS = typing.get_args(Backend)


@dataclass
class GenerationConfig:
    backend: Backend = "hf"  # hf (transformers in this process) | openai (any OpenAI-compatible server at base_url)
    base_url: str = ""  # the server's API root, e.g. http://127.0.0.1:8001/v1 (backend openai)
    model: str = ""  # served name of the base model; "" = model.spec
    # served name of the run's adapter (vLLM --lora-modules NAME=PATH); "" = the run folder's name
    adapter_model: str = ""
    api_key_env: str = "OPENAI_API_KEY"  # environment variable holding the server's API key ("" or unset = none)
    concurrency: int = 8  # requests in flight at once (the server batches them)
    timeout_s: float = 120.0  # seconds one request may take
    max_retries: int = 2  # retries of a request that failed to connect, timed out or got 429/5xx
    backoff_s: float = 1.0  # wait before the first retry, doubled for each further one

    def __post_init__(self):
        check_choices(self, "generation")
        if self.backend == "openai" and not self.base_url:
            raise AdvisorError(
                "generation.backend=openai needs generation.base_url (--base-url), e.g. http://127.0.0.1:8001/v1"
            )
        if self.concurrency < 1 or self.timeout_s <= 0 or self.max_retries < 0 or self.backoff_s < 0:
            raise AdvisorError(
                "generation.concurrency and generation.timeout_s must be positive, "
                "generation.max_retries and generation.backoff_s >= 0"
            )

    def ignored_settings(self) -> list[str]:
        if self.backend != "hf":
            return []
        return ignored(
            self,
            "generation",
            ("base_url", "model", "adapter_model", "concurrency", "timeout_s", "max_retries", "backoff_s"),
            "generation.backend=hf answers in this process",
        )


QA_GENERATORS = typing.get_args(QAGenerator)
QA_SPLITS = typing.get_args(QASplit)


@dataclass
class QAConfig:
    """The evaluation set generated from the corpus when no QA file is given (stage `qa`, RUN_DIR/qa/)."""

    n: int = 150  # eval questions in all, answerable + unanswerable
    unanswerable: float = 0.2  # share of eval questions the corpus does not answer (verified on the whole corpus)
    # extractive (rules, no LLM, deterministic) | llm (a model writes question/answer/evidence)
    generator: QAGenerator = "extractive"
    model: str = ""  # llm generator: model spec run in process; "" = model.spec
    base_url: str = ""  # llm generator: an OpenAI-compatible endpoint instead (key from $ADVISOR_QA_API_KEY)
    api_model: str = ""  # llm generator: the served model name at base_url
    split: QASplit = "by_fact"  # by_fact: an eval fact's other phrasings may be trained on | by_document: eval documents' facts never are
    max_per_document: int = 0  # answerable eval questions per document; 0 = twice an even share (at least 3)
    min_answerable: int = 30  # fewer answerable eval questions than this is an error
    train_per_fact: int = 2  # training phrasings per fact (paraphrase augmentation)
    max_train: int = 300  # answerable training questions in all
    # one answer string (collapse_key) gets at most this share of max_train among the facts no eval question asks
    # (docs/fine-tuning-measured.md, 'Bank policies'); 0 = no cap
    max_answer_share: float = 0.02
    max_passages: int = 200  # llm generator: passages (chunks) sent to the model at most
    retries: int = 2  # llm generator: new attempts for a malformed reply before it counts as rejected

    def __post_init__(self):
        check_choices(self, "qa")
        if self.n < 1:
            raise AdvisorError(f"qa.n={self.n} must be at least 1")
        if not 0 <= self.unanswerable < 1:
            raise AdvisorError(f"qa.unanswerable={self.unanswerable} must be in [0, 1)")
        if min(self.max_per_document, self.train_per_fact, self.max_train, self.retries) < 0:
            raise AdvisorError("qa.max_per_document, qa.train_per_fact, qa.max_train and qa.retries must be >= 0")
        if self.min_answerable < 1 or self.max_passages < 1:
            raise AdvisorError("qa.min_answerable and qa.max_passages must be at least 1")
        if not 0 <= self.max_answer_share <= 1:
            raise AdvisorError(f"qa.max_answer_share={self.max_answer_share} must be in [0, 1] (0 = no cap)")
        if bool(self.base_url) != bool(self.api_model):
            raise AdvisorError("qa.base_url and qa.api_model go together: the endpoint and the served model's name")

    def ignored_settings(self) -> list[str]:
        if self.generator != "extractive":
            return []
        return ignored(
            self,
            "qa",
            ("model", "base_url", "api_model", "max_passages", "retries"),
            "qa.generator=extractive uses no model",
        )


# Quality targets an option must meet to be fit for purpose, as shares in [0, 1]: accuracy at least,
# hallucination rate at most. The advice checks them by each option's 95% CI (advisor/recommend.py).
QUALITY_TARGETS = {"accuracy": 0.8, "hallucination_rate": 0.1}


def validate_targets(targets: dict) -> dict[str, float]:
    """The quality targets with defaults filled in; an unknown name or a value outside [0, 1] raises
    AdvisorError naming it."""
    out = dict(QUALITY_TARGETS)
    for k, v in targets.items():
        if k not in QUALITY_TARGETS:
            raise AdvisorError(
                f"unknown quality target '{k}'{did_you_mean(str(k), QUALITY_TARGETS)}; "
                f"targets: {', '.join(QUALITY_TARGETS)}"
            )
        try:
            f = float(v)
        except (TypeError, ValueError):
            f = float("nan")
        if isinstance(v, bool) or not 0 <= f <= 1:
            raise AdvisorError(
                f"quality target {k}={v} must be a share between 0 and 1 (e.g. {k}="
                f"{QUALITY_TARGETS[k]} for {100 * QUALITY_TARGETS[k]:.0f}%)"
            )
        out[k] = f
    return out


@dataclass
class RecommendConfig:
    preset: str = "balanced"  # weight preset (advisor ls shows them)
    weights: dict[str, float] = field(default_factory=dict)  # per-criterion weights overriding the preset
    facts: dict[str, Any] = field(default_factory=dict)  # situation facts (knowledge_change, citations_required ...)
    # quality targets (shares): accuracy at least, hallucination_rate at most; unnamed ones keep their default
    targets: dict[str, float] = field(default_factory=lambda: dict(QUALITY_TARGETS))

    def __post_init__(self):
        try:  # a typo in the advice settings fails when the config is read, not after the tracks are built
            resolve_weights(self.preset, self.weights)
            validate_facts(self.facts)
        except AdvisorError as e:
            raise AdvisorError(f"config section recommend: {e}") from None
        try:
            self.targets = validate_targets(self.targets)
        except AdvisorError as e:
            raise AdvisorError(f"recommend.targets: {e}") from None


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(h|m|s)", re.I)


def parse_duration(text: str, where: str) -> float:
    """Seconds in '10m', '1h30m', '90s', '1.5h' or a bare number of seconds; AdvisorError naming `where` otherwise.

    >>> parse_duration("1h30m", "run.time_budget")
    5400.0
    """
    t = str(text).strip().lower().replace(" ", "")
    try:
        seconds = float(t)
    except ValueError:
        parts = _DURATION.findall(t)
        if not t or not parts or "".join(n + u for n, u in parts) != t:
            raise AdvisorError(
                f"{where}='{text}' is not a duration; write it like 10m, 1h30m, 90s or 600 (seconds)"
            ) from None
        seconds = sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)
    if not seconds > 0 or seconds != seconds or seconds == float("inf"):
        raise AdvisorError(f"{where}='{text}' must be a positive duration, e.g. 10m")
    return seconds


@dataclass
class RunConfig:
    """How `advisor run` sizes itself (advisor/plan.py): a wall-time budget, and when to ask before a long run."""

    time_budget: str = ""  # wall time the whole run must fit, e.g. 10m or 1h30m: training steps, eval questions and probe items are cut to fit; "" = none
    # without a budget, a plan longer than this asks for confirmation (non-interactively: needs --yes)
    confirm_over: str = "1h"

    def __post_init__(self):
        if self.time_budget:
            parse_duration(self.time_budget, "run.time_budget")
        parse_duration(self.confirm_over, "run.confirm_over")

    @property
    def budget_s(self) -> float | None:
        return parse_duration(self.time_budget, "run.time_budget") if self.time_budget else None

    @property
    def confirm_over_s(self) -> float:
        return parse_duration(self.confirm_over, "run.confirm_over")


@dataclass
class Config:
    seed: int = 0  # seed for data splits, training and bootstrap
    threads: int = 0  # torch CPU threads; 0 = all cores
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    chunking: ChunkingConfig = field(default_factory=ChunkingConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    tuning: TuningConfig = field(default_factory=TuningConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    qa: QAConfig = field(default_factory=QAConfig)
    recommend: RecommendConfig = field(default_factory=RecommendConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self):
        if self.threads < 0:
            raise AdvisorError(f"threads={self.threads} must be >= 0 (0 = all cores)")
        if self.seed < 0:
            raise AdvisorError(f"seed={self.seed} must be >= 0")
        if self.tuning.method == "full" and self.model.quantization != "none":  # the one check across sections
            raise AdvisorError(
                f"tuning.method=full trains every weight and needs model.quantization=none "
                f"(got '{self.model.quantization}'); set model.quantization=none or tuning.method=lora"
            )

    def ignored_settings(self) -> list[str]:
        """Settings that have no effect in this config (docs/architecture.md, 'Style'): each a line for a warning."""
        sections = (self.retrieval, self.tuning, self.eval, self.generation, self.qa)
        return [line for sec in sections for line in sec.ignored_settings()]

    def trains_corpus_text(self) -> bool:
        """Whether the sft stage trains the corpus text: tuning.use_corpus_text against corpus.train_qa (the one rule
        the sft stage, the adapter's note and `advisor plan` ask)."""
        return self.tuning.corpus_text(bool(self.corpus.train_qa))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def stable_dict(self) -> dict[str, Any]:
        """to_dict() without settings added after runs existed while they hold their defaults, so that
        the run directory name and the tuning hashes of those runs stay what they were."""
        d = self.to_dict()
        if d["run"] == asdict(RunConfig()):
            del d["run"]
        if d["tuning"]["max_train_tokens"] == MAX_TRAIN_TOKENS:
            del d["tuning"]["max_train_tokens"]
        if d["tuning"]["raft_distractors_from"] == "other_documents":  # what every run did before the setting
            del d["tuning"]["raft_distractors_from"]
        if not d["tuning"]["val_limit"]:
            del d["tuning"]["val_limit"]
        # runs before the setting behaved as "any"; where the default "given" changes a run's training set, the
        # sft stage's input hash says so (tuning/train.py, sft_inputs_hash): those runs retrain, the others do not
        if d["tuning"]["abstain_questions"] == "given":
            del d["tuning"]["abstain_questions"]
        if not d["tuning"]["raft_unanswerable"]:
            del d["tuning"]["raft_unanswerable"]
        if d["tuning"]["dequantize_once"] == "auto":  # the same numbers either way
            del d["tuning"]["dequantize_once"]
        if not d["tuning"]["prompt_grad_tokens"]:  # gradients through the whole prompt, as every run before it
            del d["tuning"]["prompt_grad_tokens"]
        if d["eval"]["curve_train_questions"] == CURVE_TRAIN_QUESTIONS:  # the curve stage's own hash names them
            del d["eval"]["curve_train_questions"]
        # as this machine runs it: every run before the setting multiplied in float32, and keeps its hashes where
        # that is what it would do now; a run whose products are bfloat16 answers differently and is its own
        matmul = self.model.products_dtype()
        if matmul == "float32":
            del d["model"]["cpu_matmul_dtype"]
        else:
            d["model"]["cpu_matmul_dtype"] = matmul
        return d

    def section_hash(self, *sections: str, without: tuple[str, ...] = ()) -> str:
        """Hash of the named top-level sections; a stage reruns when its sections change. `without` names
        settings ('section.key') the stage does not depend on."""
        d = self.stable_dict()
        for dotted in without:
            section, key = dotted.split(".", 1)
            d[section].pop(key, None)
        blob = json.dumps({s: d[s] for s in sections}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


# ---------------------------------------------------------------- building from dicts


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise AdvisorError(f"{where} must be a mapping, got {value!r}")
        return from_dict(tp, value, where)
    if origin in (list,):
        (item_tp,) = typing.get_args(tp)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise AdvisorError(f"{where} must be a list, got {value!r}")
        return [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin in (dict,):
        if not isinstance(value, dict):
            raise AdvisorError(f"{where} must be a mapping, got {value!r}")
        return dict(value)
    if origin is Literal:  # the value's type; check_choices checks the choice itself
        return _coerce(value, type(typing.get_args(tp)[0]), where)
    if origin in (typing.Union, types.UnionType) or tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise AdvisorError(f"{where} must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise AdvisorError(f"{where} must be an integer, got {value!r}")
        try:
            f = float(value)
        except ValueError:
            raise AdvisorError(f"{where} must be an integer, got {value!r}") from None
        if f != int(f):
            raise AdvisorError(f"{where} must be an integer, got {value!r}")
        return int(f)
    if tp is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise AdvisorError(f"{where} must be a number, got {value!r}") from None
    if tp is str:
        if value is None:
            return ""
        if isinstance(value, (dict, list)):
            raise AdvisorError(f"{where} must be a string, got {value!r}")
        return str(value)
    return value


def from_dict(cls: type, data: dict[str, Any], where: str = "") -> Any:
    """Build dataclass `cls` from a nested dict; unknown keys raise with 'did you mean'."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in names:
            raise AdvisorError(f"unknown config key '{path}'{did_you_mean(str(key), names)}")
        kwargs[key] = _coerce(value, hints[key], path)
    return cls(**kwargs)


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k not in ("weights", "facts"):
            out[k] = _deep_merge(out[k], v)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = {**out[k], **v}
        else:
            out[k] = v
    return out


def parse_override(item: str) -> dict[str, Any]:
    """'tuning.lora.r=16' -> {'tuning': {'lora': {'r': 16}}} (values parsed as YAML scalars)."""
    if "=" not in item:
        raise AdvisorError(f"override '{item}' must look like section.key=value (e.g. tuning.lora.r=16)")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise AdvisorError(f"override '{item}' has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    node: dict[str, Any] = {}
    cur = node
    parts = key.split(".")
    for p in parts[:-1]:
        cur[p] = {}
        cur = cur[p]
    cur[parts[-1]] = value
    return node


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def read_yaml(path: Path, what: str = "config file") -> dict[str, Any]:
    """A YAML mapping from a user's file, decoded like corpus files (BOM, detected encoding)."""
    text = read_text(path, what)
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise AdvisorError(f"{path}{line}: not valid YAML ({getattr(e, 'problem', e)})") from None
    if not isinstance(data, dict):
        raise AdvisorError(f"{path}: a config file must hold a mapping of sections")
    return data


def resolve_config_source(name_or_path: str) -> Path:
    """A preset name (quickstart) or a YAML file path."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise AdvisorError(f"config file {p} does not exist")
        return p
    preset = PRESETS_DIR / f"{name_or_path}.yaml"
    if not preset.is_file():
        raise AdvisorError(
            f"unknown preset '{name_or_path}'{did_you_mean(name_or_path, preset_names())}; "
            f"presets: {', '.join(preset_names())}; or pass a YAML file path"
        )
    return preset


def load_config(config: str | None = None, overrides: list[str] | None = None, extra: dict | None = None) -> Config:
    """Defaults <- preset or YAML file <- `extra` (CLI flags) <- dotted overrides."""
    data: dict[str, Any] = {}
    if config:
        data = read_yaml(resolve_config_source(config))
    if extra:
        data = _deep_merge(data, extra)
    for item in overrides or []:
        data = _deep_merge(data, parse_override(item))
    return from_dict(Config, data)


def warn_ignored_settings(cfg: Config) -> None:
    """One warning line per setting this config ignores. Said once a command has checked its inputs and starts
    its work, so that a command that fails prints its one error line only."""
    for line in cfg.ignored_settings():
        say(f"advisor: warning: {line}")


def dump_config(cfg: Config) -> str:
    """The resolved config as YAML, every default spelled out."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


def load_run_config(run_dir: Path) -> Config:
    """The resolved config a run directory was made with."""
    p = Path(run_dir) / "config.yaml"
    if not p.is_file():
        raise AdvisorError(f"{run_dir} is not a run directory (no config.yaml)")
    return from_dict(Config, read_yaml(p))
