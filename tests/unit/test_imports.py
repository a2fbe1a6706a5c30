"""The package's import graph: no cycle between modules, no module importing another module's private names.

Read from the source with ``ast`` (every import, at module level or inside a function), so a cycle hidden in a
function-level import counts too. A package's ``__init__`` stands for the package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "orchestrator"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _base(name: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` names (``from ..x import y`` in ``orchestrator.a.b`` -> orchestrator.x)."""
    if node.level == 0:
        return node.module or ""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def imports_of(name: str, path: Path, known: set[str]) -> list[tuple[str, str]]:
    """(imported module, imported name or '') for every import of the package's own modules in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(a.name, "") for a in node.names if a.name in known]
        elif isinstance(node, ast.ImportFrom):
            base = _base(name, path, node)
            for alias in node.names:
                if f"{base}.{alias.name}" in known:
                    found.append((f"{base}.{alias.name}", ""))  # a submodule
                elif base in known:
                    found.append((base, alias.name))
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {
        name: {target for target, _ in imports_of(name, path, set(mods)) if target != name}
        for name, path in mods.items()
    }


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``edges`` as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_package_has_no_import_cycle() -> None:
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_module_imports_another_modules_private_names() -> None:
    mods = modules()
    private = [
        f"{name} imports {target}.{what}"
        for name, path in mods.items()
        for target, what in imports_of(name, path, set(mods))
        if what.startswith("_") and not what.startswith("__") and target != name
    ]
    assert private == []


def test_the_cycle_finder_finds_a_cycle_and_the_private_check_sees_a_private_import(tmp_path: Path) -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
    source = tmp_path / "orchestrator" / "x.py"
    source.parent.mkdir()
    source.write_text("from .orchestrate import _execute_plan\nfrom . import plan\n")
    node_imports = imports_of("orchestrator.x", source, {"orchestrator.orchestrate", "orchestrator.plan"})
    assert node_imports == [("orchestrator.orchestrate", "_execute_plan"), ("orchestrator.plan", "")]


@pytest.mark.parametrize(
    "pure",
    [
        "orchestrator.contract",
        "orchestrator.scheduling.plan",
        "orchestrator.scheduling.history",
        "orchestrator.serving.launch",
        "orchestrator.scheduling.policy",
        "orchestrator.ray.plan",
        "orchestrator.ray.events",
    ],
)
def test_pure_planners_import_no_effectful_module(pure: str) -> None:
    effectful = {
        "orchestrator.serving.server",
        "orchestrator.ray.node",
        "orchestrator.ray.backend",
        "orchestrator.job",
        "orchestrator.orchestrate",
        "orchestrator.serving.records",
        "orchestrator.serving.identity",
        "orchestrator.serving.terminate",
        "orchestrator.serving.gpus",
        "orchestrator.backend",
        "orchestrator.scheduling.runner",
    }
    assert graph()[pure] & effectful == set()
