"""The layers of docs/architecture.md: imports point down only.

Every ``import`` and ``from ... import`` of the project's own packages is read from the
source (top level and inside functions alike) and checked against what each layer may use.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("loop", "connectors", "stack", "workers", "api", "cli", "bench")
ALLOWED = {
    "loop": {"loop"},
    "connectors": {"loop", "connectors"},
    "stack": {"loop", "connectors", "stack"},
    "workers": {"loop", "connectors", "stack", "workers"},
    "api": {"loop", "connectors", "stack", "api"},
    "bench": {"loop", "connectors", "stack", "bench"},
    "cli": set(PACKAGES),
}


def imports(path: Path) -> set[str]:
    """The project packages a module imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        found |= {name.split(".")[0] for name in names} & set(PACKAGES)
    return found


def violations(package: str) -> list[str]:
    return [
        f"{path.relative_to(ROOT)} imports {', '.join(sorted(bad))}"
        for path in sorted((ROOT / package).rglob("*.py"))
        if (bad := imports(path) - ALLOWED[package])
    ]


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_point_down_only(package: str) -> None:
    assert violations(package) == []


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from workers.scorer import Scorer\n    import api.app\n")
    assert imports(module) == {"workers", "api"}
