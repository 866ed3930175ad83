"""The arm table: every fact about an arm, in one place (docs/architecture.md, 'The arm table').

Per arm: the option of the advice it implements, its plain label and colour, what it needs built (the index, the
adapter), the arms its paired differences are taken against, whether it has an adapter of its own, and, for an
option, the facts the advice weighs it by. Everything else reads them here: the pipeline's stages and eval loop,
the evaluation's paired differences and probe weights, the advice, the server, the dashboard and the report.

    ARM["tuned_rag"].label        # 'Fine-tune + RAG'
    OPTION_COLOUR["fine-tune"]    # '#ff7f0e', the colour of the tuned arm
    [a for a in ARMS if ARM[a].needs_index]    # the arms that answer with retrieved passages

Adding an arm: one ArmSpec in ARM_TABLE (or `register_arm(spec)` from a plugin or a test) and, when it answers
other than closed book or with the retrieval prompt, the `answerer` that builds it; every derived view below
follows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

# The weights the forgetting probes score (eval/probes.json 'sets' and 'perplexity' are keyed by these).
BASE_WEIGHTS = "base"  # the base model, the adapter off
TUNED_WEIGHTS = "tuned"  # the base model with the run's adapter

# The run-directory files an arm's ingredients are built into (checked before an arm is answered or served).
INDEX_FILE = "index/index.faiss"
ADAPTER_FILES = ("adapter/adapter_model.safetensors", "adapter/adapter_config.json")


@dataclass(frozen=True)
class ArmSpec:
    name: str  # as in eval.arms, eval/<arm>.jsonl and metrics.json
    option: str | None  # the recommendation's option it implements (rag | fine-tune | both); None for the baseline
    label: str  # the plain name a person reads, the same for the arm and its option
    colour: str  # hex; green and red are kept free for meets / misses
    needs_index: bool  # answers with retrieved passages in its prompt (the retrieval prompt, citing them)
    needs_adapter: bool  # answers with the trained adapter (or fully tuned weights)
    compared_with: tuple[str, ...] = ()  # metrics.json 'paired' "<name> - <other>": what this arm adds to each
    own_adapter: bool = False  # with tuning.both_adapter=separate it answers with adapter_both/, trained for it
    # Builds its Answerer when it answers other than closed book / with the retrieval prompt, called as
    # answerer(spec, cfg, lm, retriever, batch_size, run_dir); None: advisor/arms.py make_arm's standard two.
    answerer: Callable | None = None
    # Of an option (the advice weighs these; empty for the baseline):
    advice: str = ""  # what choosing the option means, one sentence (the dashboard's verdict line)
    does: str = ""  # what the option stands for, in words ("not what <does> can do", said of a collapsed arm)
    updates: str = ""  # how the option takes in a change to the knowledge, in words (when no drill measured it)
    freshness: tuple[float, ...] = ()  # score per knowledge-change rate, static .. daily (advisor/core/advice.py)

    @property
    def weights(self) -> str:
        """The weights it answers with, as the probe results name them."""
        return TUNED_WEIGHTS if self.needs_adapter else BASE_WEIGHTS

    @property
    def artifacts(self) -> tuple[tuple[str, str], ...]:
        """(what, run-directory path) of each file it needs built."""
        return ((("the FAISS index", INDEX_FILE),) if self.needs_index else ()) + (
            tuple(("the adapter", f) for f in ADAPTER_FILES) if self.needs_adapter else ()
        )


# Colours: matplotlib's tab10 grey, blue, orange and purple, which stay apart for the common colour-vision
# deficiencies better than a green/orange pair, and leave green and red to mean good and bad.
# Freshness (the stated knowledge_change fact, no drill): RAG re-indexes in seconds; a tuned model must be retrained
# for every change; 'both' keeps new facts reachable through retrieval while the adapter ages.
ARM_TABLE: list[ArmSpec] = [
    ArmSpec("base", None, "Base model", "#7f7f7f", needs_index=False, needs_adapter=False),
    ArmSpec(
        "rag",
        "rag",
        "RAG",
        "#1f77b4",
        needs_index=True,
        needs_adapter=False,
        compared_with=("base",),
        advice="Put the knowledge in a retrieval index and keep the base model.",
        does="retrieval",
        updates="takes in a change by re-indexing (seconds to minutes)",
        freshness=(1.0, 1.0, 1.0, 1.0, 1.0),
    ),
    # tuned - rag: the contrast the decision turns on (the Evidence page shows it first with the 'both' pairs)
    ArmSpec(
        "tuned",
        "fine-tune",
        "Fine-tune",
        "#ff7f0e",
        needs_index=False,
        needs_adapter=True,
        compared_with=("base", "rag"),
        advice="Train the knowledge into the model (QLoRA adapter), no retrieval.",
        does="fine-tuning",
        updates="needs retraining for every change (hours)",
        freshness=(1.0, 0.8, 0.4, 0.15, 0.05),
    ),
    ArmSpec(
        "tuned_rag",
        "both",
        "Fine-tune + RAG",
        "#9467bd",
        needs_index=True,
        needs_adapter=True,
        compared_with=("rag", "tuned"),
        own_adapter=True,
        advice="Fine-tune the model and retrieve from the index too.",
        does="fine-tuning with retrieval",
        updates="re-indexes for a change but its adapter needs retraining now and then",
        freshness=(1.0, 0.95, 0.8, 0.7, 0.65),
    ),
]

# The arms some measurements are defined on: code names them here, never by spelling the arm.
BASE = "base"  # the reference: known facts, step 0 of the learning curve, the base model's share of each fact group
RAG = "rag"  # retrieval alone: the drill's 'before the update'; 'retrieval vs training' on unknown facts
TUNED = "tuned"  # the adapter alone, closed book: the learning curve, forgetting, the drill's fresh adapter
BOTH = "tuned_rag"  # the adapter with retrieval: the arm whose adapter the report describes (tuning.both_adapter)

# Derived views, rebuilt in place whenever the table changes (so `from advisor.core.arms import ARMS` stays current).
ARMS: list[str] = []  # every arm, in table order (the default eval.arms)
ARM: dict[str, ArmSpec] = {}
ARM_LABEL: dict[str, str] = {}
ARM_COLOUR: dict[str, str] = {}
ARM_OF_OPTION: dict[str, str] = {}  # option -> the arm that implements it
OPTION: dict[str, ArmSpec] = {}  # option -> its arm's spec
OPTIONS: list[str] = []  # every option, in table order
OPTION_LABEL: dict[str, str] = {}
OPTION_COLOUR: dict[str, str] = {}
ADAPTER_ARMS: set[str] = set()
INDEX_ARMS: set[str] = set()
PAIRS: list[tuple[str, str]] = []  # (arm, other) of every paired difference, in table order


def _derive() -> None:
    views = (
        ARMS,
        ARM,
        ARM_LABEL,
        ARM_COLOUR,
        ARM_OF_OPTION,
        OPTION,
        OPTIONS,
        OPTION_LABEL,
        OPTION_COLOUR,
        ADAPTER_ARMS,
        INDEX_ARMS,
        PAIRS,
    )
    for v in views:
        v.clear()
    for a in ARM_TABLE:
        ARMS.append(a.name)
        ARM[a.name], ARM_LABEL[a.name], ARM_COLOUR[a.name] = a, a.label, a.colour
        if a.option:
            ARM_OF_OPTION[a.option], OPTION[a.option] = a.name, a
            OPTIONS.append(a.option)
            OPTION_LABEL[a.option], OPTION_COLOUR[a.option] = a.label, a.colour
        if a.needs_adapter:
            ADAPTER_ARMS.add(a.name)
        if a.needs_index:
            INDEX_ARMS.add(a.name)
        PAIRS.extend((a.name, b) for b in a.compared_with)


_derive()


def register_arm(spec: ArmSpec) -> None:
    """Add an arm to the table (after the others); every derived view follows."""
    if spec.name in ARM or (spec.option and spec.option in OPTION):
        raise ValueError(f"arm '{spec.name}' (option {spec.option}) is already in the arm table")
    unknown = [b for b in spec.compared_with if b not in ARM]
    if unknown:
        raise ValueError(f"arm '{spec.name}' is compared with arms not in the table: {', '.join(unknown)}")
    ARM_TABLE.append(spec)
    _derive()


def unregister_arm(name: str) -> None:
    """Take an arm registered with `register_arm` out of the table again."""
    ARM_TABLE[:] = [a for a in ARM_TABLE if a.name != name]
    _derive()


def uses_index(arms: Iterable[str]) -> bool:
    """Whether any of these arms answers with the index (the run builds it)."""
    return any(a in INDEX_ARMS for a in arms)


def uses_adapter(arms: Iterable[str]) -> bool:
    """Whether any of these arms answers with the adapter (the run trains it)."""
    return any(a in ADAPTER_ARMS for a in arms)


def option_arms(arms: Iterable[str]) -> list[str]:
    """Those of these arms that implement an option of the advice, in table order."""
    chosen = set(arms)
    return [a.name for a in ARM_TABLE if a.option and a.name in chosen]


def option_label(option: str) -> str:
    """The plain label of an option (rag | fine-tune | both); an unknown name is shown as it is."""
    return OPTION_LABEL.get(option, option)


def arm_label(arm: str) -> str:
    """The plain label of an arm; an unknown name is shown as it is."""
    return ARM_LABEL.get(arm, arm)
