"""The four arms built from one loaded model (adapter on/off) and one retriever; shared by the
pipeline's eval stage and the server.

    arm = make_arm("rag", cfg, lm, retriever)
"""

from __future__ import annotations

from advisor.core.answer import Answerer, ClosedBook
from advisor.core.config import Config

USES_ADAPTER = {"base": False, "rag": False, "tuned": True, "tuned_rag": True}
USES_INDEX = {"base": False, "rag": True, "tuned": False, "tuned_rag": True}
# The recommendation's options and the arm that implements each.
ARM_OF_OPTION = {"rag": "rag", "fine-tune": "tuned", "both": "tuned_rag"}


def make_arm(arm: str, cfg: Config, lm, retriever=None, batch_size: int | None = None) -> Answerer:
    batch_size = batch_size or cfg.eval.batch_size
    if USES_INDEX[arm]:
        from retrieval.rag import RagAnswerer

        return RagAnswerer(lm, retriever, arm, USES_ADAPTER[arm], cfg.retrieval.top_k, cfg.retrieval.context_tokens,
                           cfg.model.max_new_tokens, batch_size)
    return ClosedBook(lm, arm, USES_ADAPTER[arm], cfg.model.max_new_tokens, batch_size)
