"""The README opens with the two commands, and CI runs the test one."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_first_commands_are_make_demo_and_make_test():
    text = (ROOT / "README.md").read_text()
    blocks = [b for b in text.split("```")[1::2]]
    commands = [
        line.strip()
        for b in blocks
        for line in b.splitlines()
        if line.strip() and not line.strip().startswith(("#", "bash", "sh"))
    ]
    assert commands[:2] == ["make demo", "make test"]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def test_makefile_targets_create_the_venv_when_missing():
    mk = (ROOT / "Makefile").read_text()
    for target in ("demo:", "test:", "setup:"):
        assert f"\n{target} $(STAMP)" in mk, target  # each installs first (when the stamp is out of date)
    assert "@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)" in mk  # the venv is made when it is missing
    assert "torch==2.13.0" in mk and "--no-deps -r requirements-bundled.txt" in mk
