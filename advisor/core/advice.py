"""What the advice weighs, and the situation facts it takes: the criteria, the weight presets and the facts with
their allowed values. Config-level facts, so the recommend section of the config validates itself
(advisor/core/config.py, RecommendConfig) and the engine (advisor/recommend.py) scores with the same names.

>>> sorted(resolve_weights("balanced", {"accuracy": 0})) == sorted(CRITERIA)
True
"""

from __future__ import annotations

from advisor.core.errors import AdvisorError, did_you_mean

CRITERIA = ["accuracy", "hallucination", "forgetting", "build_cost", "serve_cost", "freshness", "citations", "style"]
PRESETS: dict[str, dict[str, float]] = {
    "balanced": dict(
        accuracy=0.25,
        hallucination=0.20,
        forgetting=0.10,
        build_cost=0.10,
        serve_cost=0.10,
        freshness=0.10,
        citations=0.075,
        style=0.075,
    ),
    "accuracy-first": dict(
        accuracy=0.45,
        hallucination=0.25,
        forgetting=0.05,
        build_cost=0.05,
        serve_cost=0.05,
        freshness=0.05,
        citations=0.05,
        style=0.05,
    ),
    "cost-first": dict(
        accuracy=0.20,
        hallucination=0.10,
        forgetting=0.05,
        build_cost=0.225,
        serve_cost=0.225,
        freshness=0.10,
        citations=0.05,
        style=0.05,
    ),
    "compliance": dict(
        accuracy=0.20,
        hallucination=0.35,
        forgetting=0.10,
        build_cost=0.05,
        serve_cost=0.05,
        freshness=0.10,
        citations=0.10,
        style=0.05,
    ),
}
CHANGE_RATES = ("static", "yearly", "monthly", "weekly", "daily")
DEFAULT_FACTS = {
    "knowledge_change": "monthly",
    "citations_required": False,
    "style_learning": False,
    "budget": "medium",
    "latency_target_s": 0.0,
    "data_privacy": False,
}
BUDGETS = {"low": 1 / 2, "medium": 1 / 3, "high": 1 / 6}  # build_cost score lost per 10x build time
# The facts that take one of a fixed set of values (the others are true/false, and latency_target_s seconds);
# validate_facts checks them and the dashboard's What-if and New run pages offer them from here.
FACT_CHOICES = {"knowledge_change": CHANGE_RATES, "budget": tuple(BUDGETS)}


# Plain words for the criteria and the facts, next to them so the report and every dashboard page name them
# the same; a fact without a label fails a test (tests/test_ui.py).
CRITERION_LABEL = {
    "accuracy": "accuracy",
    "hallucination": "avoiding hallucination",
    "forgetting": "keeping general knowledge",
    "build_cost": "build cost",
    "serve_cost": "serving cost (latency)",
    "freshness": "keeping knowledge fresh",
    "citations": "citing sources",
    "style": "learning a style or format",
}
FACT_LABEL = {
    "knowledge_change": "How often the knowledge changes",
    "citations_required": "Answers must cite their sources",
    "style_learning": "A style or format must be learned",
    "budget": "Budget for building",
    "latency_target_s": "Latency target per question, seconds (0 = none)",
    "data_privacy": "The data is private",
}
FACT_HELP = {
    "knowledge_change": "Every change means re-indexing (seconds) or retraining (hours) the fine-tuned options.",
    "citations_required": "A fine-tuned model alone cannot point to its sources.",
    "style_learning": "A format or tone only training teaches; retrieval alone cannot.",
    "budget": "How hard a 10x longer build counts against an option: low budget 1/2 of the build-cost score, "
    "medium 1/3, high 1/6.",
    "latency_target_s": "An option whose measured median latency misses the target scores 0 on serving cost.",
    "data_privacy": "It must stay deletable and access-controlled. Data trained into the weights cannot be deleted "
    "or access-controlled without retraining; an index document can.",
}


def validate_facts(facts: dict) -> dict:
    """The situation facts with defaults filled in; unknown keys and bad values raise AdvisorError."""
    out = dict(DEFAULT_FACTS)
    for k, v in facts.items():
        if k not in DEFAULT_FACTS:
            raise AdvisorError(f"unknown fact '{k}'{did_you_mean(k, DEFAULT_FACTS)}; facts: {', '.join(DEFAULT_FACTS)}")
        if k in FACT_CHOICES:
            if v not in FACT_CHOICES[k]:
                raise AdvisorError(f"fact {k}='{v}' must be one of {', '.join(FACT_CHOICES[k])}")
        elif k == "latency_target_s":
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise AdvisorError(f"fact latency_target_s={v!r} must be a number of seconds (0 = no target)") from None
            if not 0 <= v < float("inf"):
                raise AdvisorError(f"fact latency_target_s={v} must be >= 0 seconds (0 = no target)")
        elif not isinstance(v, bool):
            if str(v).lower() not in ("true", "false"):
                raise AdvisorError(f"fact {k}={v!r} must be true or false")
            v = str(v).lower() == "true"
        out[k] = v
    return out


def resolve_weights(preset: str, weights: dict[str, float]) -> dict[str, float]:
    """The preset's weights with the user's overrides, normalized to sum to 1."""
    if preset not in PRESETS:
        raise AdvisorError(
            f"unknown weight preset '{preset}'{did_you_mean(preset, PRESETS)}; presets: {', '.join(PRESETS)}"
        )
    w = dict(PRESETS[preset])
    for k, v in weights.items():
        if k not in CRITERIA:
            raise AdvisorError(f"unknown weight '{k}'{did_you_mean(k, CRITERIA)}; criteria: {', '.join(CRITERIA)}")
        try:
            v = float(v)
        except (TypeError, ValueError):
            raise AdvisorError(f"weight {k}={v!r} is not a number") from None
        if not v >= 0 or v == float("inf"):
            raise AdvisorError(f"weight {k}={v} must be a finite number >= 0")
        w[k] = v
    total = sum(w.values())
    if total <= 1e-9:
        raise AdvisorError(
            "all weights are zero (they must sum to more than 0): give at least one criterion a positive weight, e.g. accuracy=1"
        )
    return {k: v / total for k, v in w.items()}
