"""The arm table is the one home of arm facts (docs/architecture.md, 'The arm table'): no arm or option name is
spelled as a string literal outside it, and a fifth arm added to the table alone (with the code that answers
with it) is configured, planned, answered, scored, compared, advised on, served and shown."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("advisor", "retrieval", "tuning", "evalsuite", "ui")
HOME = "advisor/core/arms.py"
# An arm name ('rag' is also an option) or an option name, quoted as a whole string, single or double quotes.
LITERAL = re.compile(r"""(["'])(base|rag|tuned|tuned_rag|fine-tune|both)\1""")
# Files that still spell arm names, each with the reason. No line of code needs one: the table names every role
# (BASE, RAG, TUNED, BASE_WEIGHTS, TUNED_WEIGHTS) and every fact (advisor/core/arms.py).
EXEMPT: dict[str, str] = {}  # none at present: a file listed here must say why it cannot read the table


def arm_literals() -> list[str]:
    """file:line: text of every quoted arm or option name outside the table and the exempt files."""
    hits = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel == HOME or rel in EXEMPT:
                continue
            for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if LITERAL.search(line):
                    hits.append(f"{rel}:{i}: {line.strip()}")
    return hits


def test_arm_and_option_names_are_spelled_only_in_the_arm_table():
    hits = arm_literals()
    assert not hits, (
        "arm or option names spelled outside advisor/core/arms.py (read ARMS, ARM, OPTION or a role "
        "name such as BASE from the table instead):\n" + "\n".join(hits)
    )


def test_the_exemptions_are_still_needed():
    for rel in EXEMPT:
        path = ROOT / rel
        assert path.is_file() and LITERAL.search(path.read_text(encoding="utf-8")), (
            f"{rel} no longer spells an arm name: take it off EXEMPT"
        )


# ---------------------------------------------------------------- a fifth arm


def top1_answerer(spec, cfg, lm, retriever, batch_size, run_dir):
    """The code that answers with the fifth arm: the retrieval prompt with the top passage only."""
    from retrieval.rag import RagAnswerer

    return RagAnswerer(
        lm,
        retriever,
        spec.name,
        spec.needs_adapter,
        1,
        cfg.retrieval.context_tokens,
        cfg.model.max_new_tokens,
        batch_size,
    )


@pytest.fixture
def fifth_arm():
    from advisor.core.arms import ArmSpec, register_arm, unregister_arm

    spec = ArmSpec(
        "rag_top1",
        "rag-top1",
        "RAG, top passage",
        "#17becf",
        needs_index=True,
        needs_adapter=False,
        compared_with=("rag",),
        answerer=top1_answerer,
        advice="Retrieve only the best passage and keep the base model.",
        does="single-passage retrieval",
        freshness=(1.0, 1.0, 1.0, 1.0, 1.0),
    )
    register_arm(spec)
    yield spec
    unregister_arm(spec.name)


def test_the_table_rejects_a_second_arm_of_the_same_name():
    from advisor.core.arms import ARM, register_arm

    with pytest.raises(ValueError, match="already"):
        register_arm(ARM["rag"])


def test_a_fifth_arm_needs_only_the_table_and_its_answerer(fifth_arm, finished_tiny_run, tmp_path):
    from advisor.arms import make_arm
    from advisor.cli import main
    from advisor.core.arms import ARMS, OPTION_LABEL
    from advisor.core.config import load_run_config
    from advisor.pipeline import planned_stages
    from advisor.serve import resolve_arm
    from ui.rundata import expected_stages, load_rows, question_table

    name, option = fifth_arm.name, fifth_arm.option
    run = tmp_path / "run"
    shutil.copytree(finished_tiny_run, run)
    cfg = load_run_config(run)
    assert name in ARMS and OPTION_LABEL[option] == fifth_arm.label
    assert make_arm(name, cfg, lm=None, retriever=None).top_k == 1 < cfg.retrieval.top_k  # built by its answerer

    # configured and planned: eval.arms takes it, the pipeline plans its eval stage, the dashboard's progress too
    cfg.eval.arms = [*cfg.eval.arms, name]
    assert f"eval_{name}" in planned_stages(cfg) and "index" in planned_stages(cfg)
    assert expected_stages(cfg.to_dict()) == planned_stages(cfg)

    # answered, scored, compared and advised on: advisor eval with the run's index and nothing else
    assert main(["eval", str(run), "--arms", name]) == 0
    rows = [json.loads(x) for x in (run / "eval" / f"{name}.jsonl").read_text().splitlines()]
    assert rows and all(len(r["contexts"]) <= 1 for r in rows)  # its own answerer: the top passage only
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert {"base", "rag", "tuned", "tuned_rag", name} <= set(metrics["arms"])
    assert "accuracy" in metrics["arms"][name] and "recall_at_k" in metrics["arms"][name]
    assert "accuracy" in metrics["paired"][f"{name} - rag"]  # compared_with
    rec = json.loads((run / "recommendation.json").read_text())
    assert option in rec["utilities"] and option in rec["fit_for_purpose"]["options"]
    assert rec["scores"][option]["citations"] == 1.0  # it answers with retrieved passages, so it can cite them

    # served and shown: the server resolves it with the one artifact check; the dashboard lists its answers
    assert resolve_arm(run, name) == name
    assert name in load_rows(run)
    assert f"{name} sources" in question_table(load_rows(run)).columns
