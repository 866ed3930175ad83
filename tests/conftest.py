"""Tiny deterministic fakes (docs/architecture.md, 'Style'): a 20-document corpus and QA set under tests/data, a tiny
random Llama saved as a local model folder (real transformers/PEFT/bitsandbytes code paths, no
download), and the hashing embedder (real FAISS index, no model)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}[SEP]\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


@pytest.fixture
def bench_module():
    """load(name): benchmarks/<name>.py as a module (the folder is not a package; registered in sys.modules, which
    dataclasses need)."""

    def load(name: str):
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
        )
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        return mod

    return load


@pytest.fixture(scope="session", autouse=True)
def _isolated_home(tmp_path_factory):
    """Converted models, calibrations and caches go to a per-session temp folder, never the user's cache. Session
    scoped, so that it is set before any fixture runs: the session and module fixtures that run a pipeline (which
    calibrates) run before any function-scoped fixture."""
    home = tmp_path_factory.getbasetemp() / "advisor-home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ADVISOR_HOME", str(home))
        yield home


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A 2-layer random Llama with a real WordPiece tokenizer (from the bundled embedder) and a chat template."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from advisor.core.models import BUNDLED

    out = tmp_path_factory.mktemp("tiny-llama")
    tok = AutoTokenizer.from_pretrained(str(BUNDLED["all-minilm-l6-v2"].source()))
    tok.eos_token = "[SEP]"
    tok.bos_token = "[CLS]"
    tok.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=tok.bos_token_id,
        tie_word_embeddings=True,
    )
    LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture
def tiny_corpus() -> Path:
    return DATA / "corpus"


@pytest.fixture
def tiny_qa() -> Path:
    return DATA / "qa.jsonl"


@pytest.fixture
def tiny_train_qa() -> Path:
    return DATA / "train.jsonl"


# The settings of one finished run on the tiny fakes (about 25 s), shared by the tests that need a finished run
# to re-run into, break or read; tests copy it before changing anything.
TINY_RUN = [
    "model.quantization=none",
    "model.max_new_tokens=4",
    "retrieval.embedder=hashing",
    "chunking.size=40",
    "chunking.overlap=8",
    "retrieval.context_tokens=200",
    "tuning.max_steps=2",
    "eval.limit=8",
    "eval.probe_limit=3",
    "eval.batch_size=8",
    "eval.perplexity_texts=0",
]


@pytest.fixture(scope="session")
def finished_tiny_run(tmp_path_factory, tiny_model_dir) -> Path:
    from advisor.core.config import load_config
    from advisor.pipeline import run_pipeline

    cfg = load_config(
        "smoke",
        [
            f"corpus.path={DATA / 'corpus'}",
            f"corpus.qa={DATA / 'qa.jsonl'}",
            f"corpus.train_qa={DATA / 'train.jsonl'}",
            f"model.spec={tiny_model_dir}",
            *TINY_RUN,
        ],
    )
    return run_pipeline(cfg, tmp_path_factory.mktemp("finished-tiny") / "run")
