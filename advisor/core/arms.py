"""The arm table: for each arm, the option of the advice it implements, its plain label and its colour.

One home for these facts (docs/architecture.md, 'The arm table'): every dashboard page, the report and its
plots read them here, so an arm is called the same and drawn in the same colour everywhere.

    ARM["tuned_rag"].label        # 'Fine-tune + RAG'
    OPTION_COLOUR["fine-tune"]    # '#ff7f0e', the colour of the tuned arm
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ArmSpec:
    name: str  # as in eval.arms, eval/<arm>.jsonl and metrics.json
    option: str | None  # the recommendation's option it implements (rag | fine-tune | both); None for the baseline
    label: str  # the plain name a person reads, the same for the arm and its option
    colour: str  # hex; green and red are kept free for meets / misses
    needs_index: bool  # answers with retrieved passages in its prompt
    needs_adapter: bool  # answers with the trained adapter (or fully tuned weights)


# Colours: matplotlib's tab10 grey, blue, orange and purple, which stay apart for the common colour-vision
# deficiencies better than a green/orange pair, and leave green and red to mean good and bad.
ARM_TABLE: tuple[ArmSpec, ...] = (
    ArmSpec("base", None, "Base model", "#7f7f7f", needs_index=False, needs_adapter=False),
    ArmSpec("rag", "rag", "RAG", "#1f77b4", needs_index=True, needs_adapter=False),
    ArmSpec("tuned", "fine-tune", "Fine-tune", "#ff7f0e", needs_index=False, needs_adapter=True),
    ArmSpec("tuned_rag", "both", "Fine-tune + RAG", "#9467bd", needs_index=True, needs_adapter=True),
)

ARM = {a.name: a for a in ARM_TABLE}
ARM_LABEL = {a.name: a.label for a in ARM_TABLE}
ARM_COLOUR = {a.name: a.colour for a in ARM_TABLE}
ARM_OF_OPTION = {a.option: a.name for a in ARM_TABLE if a.option}  # option -> the arm that implements it
OPTION_LABEL = {a.option: a.label for a in ARM_TABLE if a.option}
OPTION_COLOUR = {a.option: a.colour for a in ARM_TABLE if a.option}
ADAPTER_ARMS = frozenset(a.name for a in ARM_TABLE if a.needs_adapter)
INDEX_ARMS = frozenset(a.name for a in ARM_TABLE if a.needs_index)


def option_label(option: str) -> str:
    """The plain label of an option (rag | fine-tune | both); an unknown name is shown as it is."""
    return OPTION_LABEL.get(option, option)


def arm_label(arm: str) -> str:
    """The plain label of an arm; an unknown name is shown as it is."""
    return ARM_LABEL.get(arm, arm)
