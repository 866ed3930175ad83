"""The four arms built from one loaded model (adapter on/off) and one retriever; shared by the
pipeline's eval stage and the server.

    arm = make_arm("rag", cfg, lm, retriever)
"""

from __future__ import annotations

from pathlib import Path

from advisor.core.answer import Answer, Answerer, ClosedBook
from advisor.core.arms import ARM_OF_OPTION  # noqa: F401  (the recommendation's options and their arms: the arm table)
from advisor.core.config import Config

USES_ADAPTER = {"base": False, "rag": False, "tuned": True, "tuned_rag": True}
USES_INDEX = {"base": False, "rag": True, "tuned": False, "tuned_rag": True}


# tuning.both_adapter=separate: the tuned_rag arm answers with its own RAFT-trained adapter, kept here.
BOTH_ADAPTER = "adapter_both"


def both_adapter(run_dir: Path | None) -> Path | None:
    """The tuned_rag arm's own adapter folder when the run trained one, else None (the shared adapter)."""
    if run_dir is None:
        return None
    folder = Path(run_dir) / BOTH_ADAPTER
    return folder if (folder / "adapter_model.safetensors").is_file() else None


class WithAdapterWeights:
    """An arm that answers with other LoRA weights of the same shape loaded into the model in place."""

    def __init__(self, inner: Answerer, lm, folder: Path):
        self.inner, self.lm, self.folder = inner, lm, folder
        self.name = inner.name

    def answer(self, questions: list[str]) -> list[Answer]:
        from advisor.curve import adapter_weights

        with adapter_weights(self.lm, self.folder):
            return self.inner.answer(questions)


def make_arm(arm: str, cfg: Config, lm, retriever=None, batch_size: int | None = None,
             run_dir: Path | None = None) -> Answerer:
    """The arm's Answerer; given the run directory, tuned_rag uses the run's separate adapter when it has one."""
    batch_size = batch_size or cfg.eval.batch_size
    if USES_INDEX[arm]:
        from retrieval.rag import RagAnswerer

        out = RagAnswerer(lm, retriever, arm, USES_ADAPTER[arm], cfg.retrieval.top_k, cfg.retrieval.context_tokens,
                          cfg.model.max_new_tokens, batch_size)
        own = both_adapter(run_dir) if arm == "tuned_rag" else None
        if own is not None:
            if cfg.generation.backend != "hf":
                from advisor.core.errors import AdvisorError

                raise AdvisorError(f"{own} (tuning.both_adapter=separate) needs generation.backend=hf; serve it as a "
                                   "second LoRA module on the server and evaluate in process")
            return WithAdapterWeights(out, lm, own)
        return out
    return ClosedBook(lm, arm, USES_ADAPTER[arm], cfg.model.max_new_tokens, batch_size)
