"""The dashboard's door to generated evaluation sets (ui/ talks to advisor only): reading a run's documents,
a person's review decisions, and the sentence every page uses to say what the numbers were measured on."""

from __future__ import annotations

from evalsuite.qagen.review import eval_set_info, load_decisions, plain_words, save_decision
from evalsuite.qagen.stage import run_documents

__all__ = ["eval_set_info", "load_decisions", "plain_words", "run_documents", "save_decision"]
