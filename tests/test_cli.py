"""The CLI as a user meets it: help texts, and bad input as one clear line on stderr with exit 2."""

import subprocess
import sys

import pytest

from advisor.cli import main


def run_cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "advisor", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    top = capsys.readouterr().out
    assert "run" in top and "ls" in top and "RAG" in top
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = capsys.readouterr().out
    for opt in ("--corpus", "--qa", "--train-qa", "--model", "--embedder", "--config", "--out", "key=value"):
        assert opt in text, opt
    assert "quickstart" in text


def test_ls_lists_presets_models_metrics_and_probes(capsys):
    assert main(["ls"]) == 0
    out = capsys.readouterr().out
    for name in (
        "quickstart",
        "smoke",
        "thorough",
        "balanced",
        "smollm2-135m-instruct",
        "gemma3-270m",
        "all-minilm-l6-v2",
        "exact_match",
        "hallucination_rate",
        "arc_easy",
        "mmlu_",
    ):
        assert name in out, name


def _assert_one_line_error(r, *needles):
    assert r.returncode == 2, r.stderr
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("advisor: error:"), r.stderr
    assert "Traceback" not in r.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])


def test_bad_input_gives_one_line_and_exit_2(tmp_path, tiny_qa, tiny_corpus):
    _assert_one_line_error(
        run_cli("run", "--corpus", str(tmp_path / "nope"), "--qa", str(tiny_qa)), "nope", "does not exist"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    _assert_one_line_error(run_cli("run", "--corpus", str(empty), "--qa", str(tiny_qa)), "empty")
    bad = tmp_path / "qa.jsonl"
    bad.write_text('{"question": "a?", "answers": ["b"]}\n{"question": "c?", "answers": ["d"]}\n{broken\n')
    _assert_one_line_error(
        run_cli("run", "--corpus", str(tiny_corpus), "--qa", str(bad)), "qa.jsonl:3", "not valid JSON"
    )
    _assert_one_line_error(
        run_cli("run", "--corpus", str(tiny_corpus), "--qa", str(tiny_qa), "--model", "smollm3"),
        "unknown causal model 'smollm3'",
    )
    _assert_one_line_error(run_cli("run", "tuning.lora.r=0"), "tuning.lora.r=0")
    _assert_one_line_error(run_cli("run", "--config", "nosuchpreset"), "unknown preset 'nosuchpreset'")
    _assert_one_line_error(
        run_cli(
            "run", "--corpus", str(tiny_corpus), "--qa", str(tiny_qa), "tuning.method=full", "model.quantization=none"
        ),
        "tuning.method=full",
        "advisor tune",
    )


def test_nothing_is_built_when_input_is_bad(tmp_path, tiny_corpus):
    out = tmp_path / "run"
    r = run_cli("run", "--corpus", str(tiny_corpus), "--qa", str(tmp_path / "missing.jsonl"), "--out", str(out))
    assert r.returncode == 2 and not out.exists()


def test_overrides_may_follow_options_given_after_the_positional_arguments(capsys):
    from advisor.cli import build_parser, parse_command_line

    p = build_parser()
    args = parse_command_line(
        p, ["index", "docs", "a.b=1", "--config", "quickstart", "retrieval.embed_dtype=float32", "--out", "x", "c.d=2"]
    )
    assert args.corpus == "docs" and args.out == "x" and args.config == "quickstart"
    assert args.overrides == ["a.b=1", "retrieval.embed_dtype=float32", "c.d=2"]  # in the order given: later wins
    with pytest.raises(SystemExit) as e:  # anything else left over is still an error, naming it
        parse_command_line(p, ["index", "docs", "--out", "x", "--bogus", "a.b=1"])
    assert e.value.code == 2 and "unrecognized arguments: --bogus" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a command without overrides takes none
        parse_command_line(p, ["ls", "a.b=1"])
    assert "unrecognized arguments: a.b=1" in capsys.readouterr().err
