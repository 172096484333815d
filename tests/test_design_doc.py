"""docs/design.md's layout matches the tree (issue 22): every module of arithmo/ is named there, and every module
the layout names exists. A room added without its line in the contract fails here."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "design.md").read_text()
LAYOUT = DOC.split("## Layout", 1)[1].split("\n## ", 1)[0]


def _modules() -> list[Path]:
    return sorted(p for p in (ROOT / "arithmo").rglob("*.py") if p.name not in ("__init__.py", "__main__.py"))


def test_every_module_is_in_the_layout():
    missing = [str(p.relative_to(ROOT)) for p in _modules()
               if not re.search(rf"(?<![\w/]){re.escape(p.stem)}(\.py)?\b", LAYOUT)]
    assert not missing, f"modules not named in docs/design.md's layout: {missing}"


def test_every_module_the_layout_names_exists():
    names = {p.name for p in _modules()} | {"__init__.py", "__main__.py", "app.py", "pyproject.toml"}
    named = set(re.findall(r"\b([a-z_]+\.py)\b", LAYOUT))
    assert not named - names, f"docs/design.md names modules that do not exist: {sorted(named - names)}"
