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


def imported(path: Path) -> set[str]:
    """Every dotted name a module imports: ``import a.b`` gives ``a.b``, ``from a import b``
    gives ``a`` and ``a.b`` (``b`` may be a module or a name in ``a``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def imports(path: Path) -> set[str]:
    """The project packages a module imports."""
    return {name.split(".")[0] for name in imported(path)} & set(PACKAGES)


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


def module_graph(root: Path) -> dict[str, set[str]]:
    """Each project module (dotted name) and the project modules it imports."""
    paths = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            paths[name.removesuffix(".__init__")] = path
    return {name: (imported(path) & set(paths)) - {name} for name, path in paths.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or round a loop."""

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for after in graph[todo.pop()] - seen:
                seen.add(after)
                todo.append(after)
        return seen

    reachable = {name: reach(name) for name in graph}
    groups = {
        tuple(sorted({name} | {o for o in reachable[name] if name in reachable[o]}))
        for name in graph
        if name in reachable[name]
    }
    return sorted(list(group) for group in groups)


def test_no_modules_import_each_other() -> None:
    """Imports inside functions and under ``TYPE_CHECKING`` count: a cycle among them still
    ties the two modules into one."""
    assert cycles(module_graph(ROOT)) == []


def test_the_check_sees_a_cycle(tmp_path: Path) -> None:
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "a.py").write_text("from bench.b import f\n")
    (tmp_path / "bench" / "b.py").write_text("def f():\n    from bench import a\n")
    (tmp_path / "bench" / "c.py").write_text("import bench.a\n")
    assert cycles(module_graph(tmp_path)) == [["bench.a", "bench.b"]]
