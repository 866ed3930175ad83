"""The arms of the arm table (advisor/core/arms.py) built from one loaded model (adapter on/off) and one
retriever; shared by the pipeline's eval stage, the drill and the server. Also the one check that an arm's
ingredients are built, and which arms a config answers with extra-seed adapters.

    arm = make_arm(name, cfg, lm, retriever)      # name: one of advisor.core.arms.ARMS
"""

from __future__ import annotations

from pathlib import Path

from advisor.core.answer import Answer, Answerer, ClosedBook
from advisor.core.arms import ARM
from advisor.core.config import Config
from advisor.core.errors import AdvisorError

# tuning.both_adapter=separate: the arm with `own_adapter` answers with its own RAFT-trained adapter, kept here.
BOTH_ADAPTER = "adapter_both"


def both_adapter(run_dir: Path | None) -> Path | None:
    """The own-adapter arm's adapter folder when the run trained one, else None (the shared adapter)."""
    if run_dir is None:
        return None
    folder = Path(run_dir) / BOTH_ADAPTER
    return folder if (folder / "adapter_model.safetensors").is_file() else None


def own_adapter(arm: str, cfg: Config) -> bool:
    """Whether the arm answers with its own adapter (adapter_both/) under this config."""
    return ARM[arm].own_adapter and cfg.tuning.both_adapter == "separate"


def seed_arms(cfg: Config) -> list[str]:
    """The arms answered again with each extra-seed adapter (tuning.seeds > 1): the arms of cfg.eval.arms that
    answer with the shared adapter (the extra seeds are of that one)."""
    return [a for a in cfg.eval.arms if ARM[a].needs_adapter and not own_adapter(a, cfg)]


def check_artifacts(run_dir: Path, arm: str, fix: str) -> None:
    """The one check that an arm's ingredients are built (the eval stage, advisor eval and advisor serve call it
    before any model loads); the error names the arm, what it needs, the missing file and `fix`."""
    for what, rel in ARM[arm].artifacts:
        path = Path(run_dir) / rel
        if not path.is_file():
            raise AdvisorError(f"arm '{arm}' needs {what} ({path}), which is missing; {fix}")


class WithAdapterWeights:
    """An arm that answers with other LoRA weights of the same shape loaded into the model in place."""

    def __init__(self, inner: Answerer, lm, folder: Path):
        self.inner, self.lm, self.folder = inner, lm, folder
        self.name = inner.name

    def answer(self, questions: list[str]) -> list[Answer]:
        from advisor.curve import adapter_weights

        with adapter_weights(self.lm, self.folder):
            return self.inner.answer(questions)


def make_arm(
    arm: str, cfg: Config, lm, retriever=None, batch_size: int | None = None, run_dir: Path | None = None
) -> Answerer:
    """The arm's Answerer: its own `answerer` from the arm table, else closed book or the retrieval prompt (by
    needs_index), with the adapter on when it needs it. Given the run directory, an `own_adapter` arm uses the
    run's separate adapter when it has one, and the retrieval arms use the run's abstention gate (eval/gate.json,
    retrieval/gate.py) when retrieval.abstain_gate is on."""
    spec = ARM[arm]
    batch_size = batch_size or cfg.eval.batch_size
    if spec.answerer is not None:
        return spec.answerer(spec, cfg, lm, retriever, batch_size, run_dir)
    if not spec.needs_index:
        return ClosedBook(lm, arm, spec.needs_adapter, cfg.model.max_new_tokens, batch_size)
    from retrieval.gate import load_gate
    from retrieval.rag import RagAnswerer

    out = RagAnswerer(
        lm,
        retriever,
        arm,
        spec.needs_adapter,
        cfg.retrieval.top_k,
        cfg.retrieval.context_tokens,
        cfg.model.max_new_tokens,
        batch_size,
        load_gate(run_dir) if cfg.retrieval.abstain_gate else None,
    )
    own = both_adapter(run_dir) if spec.own_adapter else None
    if own is None:
        return out
    if cfg.generation.backend != "hf":
        raise AdvisorError(
            f"{own} (tuning.both_adapter=separate) needs generation.backend=hf; serve it as a "
            "second LoRA module on the server and evaluate in process"
        )
    return WithAdapterWeights(out, lm, own)
