"""advisor recommend on the fixture run: recomputes without re-running; bad input is one line, exit 2.
Also known-answer scenarios for the facts budget, latency_target_s, data_privacy and the drill."""

import json
import shutil
from pathlib import Path

import pytest

from advisor.cli import main
from advisor.recommend import recommend
from tests.test_recommend import evidence

FIXTURE = Path(__file__).parent / "fixtures" / "rundirs" / "sample-fixture"


@pytest.fixture
def run(tmp_path) -> Path:
    d = tmp_path / "run"
    shutil.copytree(FIXTURE, d)
    return d


def test_recommend_recomputes_with_another_preset_weights_and_facts(run, capsys):
    before = (run / "eval" / "metrics.json").read_text()
    assert (
        main(
            [
                "recommend",
                str(run),
                "--preset",
                "cost-first",
                "--weights",
                "serve_cost=0.6",
                "--facts",
                "knowledge_change=static",
                "budget=high",
            ]
        )
        == 0
    )
    rec = json.loads((run / "recommendation.json").read_text())
    assert (
        rec["preset"] == "cost-first"
        and rec["facts"]["knowledge_change"] == "static"
        and rec["facts"]["budget"] == "high"
    )
    # serve_cost raised to 0.6 before normalizing: the run's verdict, both, gives way. Fine-tune (the lowest
    # latency in the fixture) scores the top utility, but its accuracy and hallucination rate are not
    # significantly different from rag's, the cheapest to build, so rag is advised.
    assert json.loads((FIXTURE / "recommendation.json").read_text())["verdict"] == "both"
    assert rec["weights"]["serve_cost"] == pytest.approx(0.6 / 1.375, abs=1e-3) and rec["verdict"] == "rag"
    assert rec["no_significant_difference"]["best_by_utility"] == "fine-tune"
    assert (run / "eval" / "metrics.json").read_text() == before  # nothing re-ran
    # each option against the base arm, paired over the answerable questions of eval/base.jsonl
    n = json.loads(before)["arms"]["base"]["accuracy"]["n"]
    assert set(rec["over_base"]) == set(rec["utilities"]) and {g["n"] for g in rec["over_base"].values()} == {n}
    out = capsys.readouterr().out
    assert out.startswith("verdict: rag") and "win share" in out
    assert "Verdict: **RAG**" in (run / "report.md").read_text()
    assert (run / "report.html").exists()


def test_dry_run_writes_nothing(run, capsys):
    before = (run / "recommendation.json").read_text()
    assert main(["recommend", str(run), "--preset", "compliance", "--dry-run"]) == 0
    assert (run / "recommendation.json").read_text() == before
    assert "preset compliance" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, msg",
    [
        (["--preset", "fastest"], "unknown weight preset 'fastest'"),
        (["--weights", "acuracy=0.3"], "did you mean 'accuracy'"),
        (["--weights", "accuracy"], "must look like name=value"),
        (["--weights", "accuracy=lots"], "is not a number"),
        (["--weights", "accuracy=-0.5"], "must be a finite number >= 0"),
        (
            ["--preset", "balanced", "--weights"]
            + [
                f"{c}=0"
                for c in (
                    "accuracy",
                    "hallucination",
                    "forgetting",
                    "build_cost",
                    "serve_cost",
                    "freshness",
                    "citations",
                    "style",
                )
            ],
            "all weights are zero",
        ),
        (["--facts", "knowledge_rate=daily"], "unknown fact 'knowledge_rate'"),
        (["--facts", "budget=huge"], "fact budget='huge' must be one of"),
        (["--facts", "latency_target_s=fast"], "must be a number of seconds"),
        (["--facts", "citations_required=maybe"], "must be true or false"),
        (["--targets", "acuracy=0.5"], "unknown quality target 'acuracy' (did you mean 'accuracy'?)"),
        (["--targets", "accuracy=80"], "quality target accuracy=80 must be a share between 0 and 1"),
        (["--targets", "hallucination_rate=none"], "must be a share between 0 and 1"),
        (["--targets", "accuracy"], "--targets 'accuracy' must look like name=value (e.g. --targets accuracy=0.8)"),
    ],
)
def test_bad_input_is_one_line_exit_2(run, capsys, args, msg):
    before = (run / "recommendation.json").read_text()
    assert main(["recommend", str(run), *args]) == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1
    assert (run / "recommendation.json").read_text() == before  # nothing already built is lost


def test_targets_recompute_fit_for_purpose_without_re_running_anything(run, capsys):
    before = {p: p.read_bytes() for p in (run / "eval").iterdir()}
    assert main(["recommend", str(run)]) == 0  # the defaults: 80% accuracy, 10% hallucination
    rec = json.loads((run / "recommendation.json").read_text())
    assert rec["fit_for_purpose"]["targets"] == {"accuracy": 0.8, "hallucination_rate": 0.1}
    assert rec["reasons"][0].startswith(
        "No option is fit for purpose: the most accurate, Fine-tune + RAG, answers 40.0%"
    )
    capsys.readouterr()
    assert main(["recommend", str(run), "--targets", "accuracy=0.1", "hallucination_rate=0.9"]) == 0
    rec = json.loads((run / "recommendation.json").read_text())
    fit = rec["fit_for_purpose"]
    assert fit["targets"] == {"accuracy": 0.1, "hallucination_rate": 0.9}
    assert fit["any_fit"] and fit["options"]["both"]["fit"] == "meets"  # 40% [20, 60] >= 10%; 48% [28, 68] <= 90%
    assert not rec["reasons"][0].startswith("No option")
    assert "Fit for purpose: Fine-tune + RAG meets the targets" in capsys.readouterr().out
    assert "Targets: accuracy at least 10%, hallucination rate at most 90%" in (run / "report.md").read_text()
    assert {p: p.read_bytes() for p in (run / "eval").iterdir()} == before  # nothing re-ran


def test_the_run_config_targets_are_the_starting_point_and_flags_override_one_of_them(run):
    cfg = (run / "config.yaml").read_text()
    targets = "  targets:\n    accuracy: 0.8\n    hallucination_rate: 0.1\n"
    assert targets in cfg  # the run's config sets one target only, below
    (run / "config.yaml").write_text(cfg.replace(targets, "  targets:\n    accuracy: 0.3\n"))
    assert main(["recommend", str(run), "--targets", "hallucination_rate=0.5", "--dry-run"]) == 0
    from advisor.commands.recommend import refresh_advice

    rec = refresh_advice(run, targets={"hallucination_rate": 0.5}, write=False)
    assert rec["fit_for_purpose"]["targets"] == {"accuracy": 0.3, "hallucination_rate": 0.5}
    from advisor.recommend import recommend_run

    # what the pipeline's recommend stage calls: the run's own targets, the default for the one not set
    assert recommend_run(run)["fit_for_purpose"]["targets"] == {"accuracy": 0.3, "hallucination_rate": 0.1}


def test_targets_are_a_config_setting_with_dotted_overrides():
    from advisor.core.config import load_config

    cfg = load_config("smoke", ["recommend.targets.accuracy=0.5"])
    assert cfg.recommend.targets == {"accuracy": 0.5, "hallucination_rate": 0.1}
    assert load_config("smoke").recommend.targets == {"accuracy": 0.8, "hallucination_rate": 0.1}


@pytest.mark.parametrize(
    "override, msg",
    [
        (
            "recommend.targets.acuracy=0.5",
            "recommend.targets: unknown quality target 'acuracy' (did you mean 'accuracy'?)",
        ),
        (
            "recommend.targets.hallucination_rate=2",
            "recommend.targets: quality target hallucination_rate=2 must be a share",
        ),
    ],
)
def test_bad_targets_in_the_config_fail_advisor_run_before_anything_is_built(tmp_path, capsys, override, msg):
    assert main(["run", "--config", "smoke", "--out", str(tmp_path / "r"), override]) == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def _unfinish(run: Path, stage: str) -> None:
    m = json.loads((run / "manifest.json").read_text())
    m["stages"][stage]["status"] = "running"
    (run / "manifest.json").write_text(json.dumps(m))


@pytest.mark.parametrize(
    "breakage, msg",
    [
        (lambda r: (r / "eval" / "metrics.json").unlink(), "the evaluation has not finished"),
        (lambda r: _unfinish(r, "tune"), "stage(s) tune not finished"),
        (lambda r: _unfinish(r, "eval_rag"), "stage(s) eval_rag not finished"),
        (lambda r: (r / "manifest.json").unlink(), "is not a complete run directory"),
        (lambda r: (r / "eval" / "rag.jsonl").unlink(), "rag.jsonl is missing"),
        (lambda r: (r / "eval" / "metrics.json").write_text("{"), "is not valid JSON"),
        (lambda r: shutil.rmtree(r), "does not exist"),
    ],
)
def test_a_run_directory_with_missing_stages_exits_2_naming_what_to_finish(run, capsys, breakage, msg):
    breakage(run)
    assert main(["recommend", str(run)]) == 2
    err = capsys.readouterr().err
    assert msg in err and ("advisor run" in err or "does not exist" in err)


# ---------------------------------------------------------------- known answers for the newer facts


def test_a_latency_target_only_one_option_meets_decides():
    ev = evidence(
        {"rag": 0.60, "fine-tune": 0.55, "both": 0.62},
        {"rag": 0.2, "fine-tune": 0.22, "both": 0.2},
        lat={"rag": 1.5, "fine-tune": 0.3, "both": 1.6},
    )
    free = recommend(ev, preset="cost-first", facts={"knowledge_change": "static"})
    tight = recommend(ev, preset="cost-first", facts={"knowledge_change": "static", "latency_target_s": 0.5})
    assert tight["scores"]["rag"]["serve_cost"] == 0 and tight["scores"]["fine-tune"]["serve_cost"] == 1
    assert tight["verdict"] == "fine-tune"
    assert tight["utilities"]["rag"] < free["utilities"]["rag"]


def test_private_data_moves_the_advice_away_from_training_it_into_weights():
    ev = evidence(
        {"rag": 0.50, "fine-tune": 0.53, "both": 0.40},
        {"rag": 0.2, "fine-tune": 0.2, "both": 0.25},
        build={"rag": 50, "fine-tune": 60, "both": 110},
        lat={"rag": 1, "fine-tune": 1, "both": 1},
    )
    open_data = recommend(ev, preset="compliance", facts={"knowledge_change": "static"})
    private = recommend(ev, preset="compliance", facts={"knowledge_change": "static", "data_privacy": True})
    assert open_data["verdict"] == "fine-tune" and private["verdict"] == "rag"
    assert any("Data privacy" in r for r in private["reasons"])


def test_a_low_budget_makes_a_long_build_cost_more():
    ev = evidence(
        {"rag": 0.5, "fine-tune": 0.5},
        {"rag": 0.2, "fine-tune": 0.2},
        build={"rag": 10, "fine-tune": 1000},
        lat={"rag": 1, "fine-tune": 1},
    )
    low = recommend(ev, facts={"budget": "low"})["scores"]["fine-tune"]["build_cost"]
    high = recommend(ev, facts={"budget": "high"})["scores"]["fine-tune"]["build_cost"]
    assert low == 0.0 and high == pytest.approx(1 - 2 / 6, abs=1e-3)  # 100x: 2 decades


def test_a_measured_drill_decides_freshness_ovadia_style():
    # RAG re-indexes in 20 s and then answers the new facts; a retrained adapter took 10 min and still misses them.
    ev = evidence(
        {"rag": 0.55, "fine-tune": 0.58},
        {"rag": 0.2, "fine-tune": 0.2},
        build={"rag": 20, "fine-tune": 30},
        lat={"rag": 1, "fine-tune": 1},
    )
    m = lambda v: {"value": v, "ci95": [max(0, v - 0.1), min(1, v + 0.1)], "n": 8}  # noqa: E731
    without = recommend(ev, preset="balanced", facts={"knowledge_change": "daily"})
    ev.drill = {"rag": {"update_s": 20, "accuracy": m(0.75)}, "fine-tune": {"update_s": 600, "accuracy": m(0.125)}}
    rec = recommend(ev, preset="balanced", facts={"knowledge_change": "daily"})
    assert rec["freshness_source"].startswith("knowledge-update drill")
    assert rec["scores"]["fine-tune"]["freshness"] < 0.3 < 0.6 < rec["scores"]["rag"]["freshness"]
    assert rec["verdict"] == "rag" and without["freshness_source"].startswith("stated")
    assert any("knowledge-update drill" in r and "12.5%" in r for r in rec["reasons"])


@pytest.mark.parametrize(
    "override, msg",
    [
        ("recommend.preset=fastest", "unknown weight preset 'fastest'"),
        ("recommend.facts.knowledge_change=hourly", "must be one of"),
    ],
)
def test_bad_advice_settings_fail_advisor_run_before_anything_is_built(tmp_path, capsys, override, msg):
    assert main(["run", "--config", "smoke", "--out", str(tmp_path / "r"), override]) == 2
    err = capsys.readouterr().err
    assert "config section recommend" in err and msg in err
    assert not (tmp_path / "r").exists()
