"""Arrows point down only (docs/architecture.md, 'Layers'): core imports no upper layer; the three tracks import
only advisor.core, never each other or the top of advisor/."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    mods = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            mods |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            mods.add(node.module)
    return mods


def top(mod: str) -> str:
    parts = mod.split(".")
    return "advisor.core" if parts[:2] == ["advisor", "core"] else parts[0]


@pytest.mark.parametrize(
    "package, allowed",
    [
        ("advisor/core", {"advisor.core"}),
        ("retrieval", {"advisor.core", "retrieval"}),
        ("tuning", {"advisor.core", "tuning"}),
        ("evalsuite", {"advisor.core", "evalsuite"}),
    ],
)
def test_imports_point_down_only(package, allowed):
    project = {"advisor", "advisor.core", "retrieval", "tuning", "evalsuite", "ui"}
    for f in (ROOT / package).rglob("*.py"):
        for mod in imported_modules(f):
            t = top(mod)
            if t in project:
                assert t in allowed, f"{f.relative_to(ROOT)} imports {mod}"


def test_the_repository_cites_only_documents_it_holds():
    import re

    root = Path(__file__).resolve().parents[1]
    files = [
        p
        for d in ("advisor", "evalsuite", "retrieval", "tuning", "ui", "tests", "benchmarks", "docs")
        for p in (root / d).rglob("*")
        if p.suffix in (".py", ".md", ".yaml") and ".venv" not in p.parts
    ]
    files += [root / "README.md"]
    outside, missing = [], []
    for p in files:
        text = p.read_text(encoding="utf-8", errors="replace")
        for name in ("DESIGN.md", "STYLE.md", "OFFLINE.md"):
            if name in text and p.name != "test_layers.py":
                outside.append(f"{p.relative_to(root)}: {name}")
        if "tests" not in p.relative_to(root).parts:  # tests write their own docs/ folders as data
            missing += [
                f"{p.relative_to(root)}: {m}"
                for m in set(re.findall(r"\bdocs/[\w.-]+\.md\b", text))
                if not (root / m).is_file()
            ]
    assert not outside and not missing, outside + missing
