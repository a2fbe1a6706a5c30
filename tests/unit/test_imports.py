"""The package's import graph: no cycle between modules, no module importing another module's private names, the
wings layered as ARCHITECTURE.md draws them, and the pure planners reaching no module with effects.

Read from the source with ``ast`` (every import, at module level or inside a function), so a cycle hidden in a
function-level import counts too. A package's ``__init__`` stands for the package. A wing is a subpackage
(``serving``, ``scheduling``...) or a top-level module (``job``, ``contract``...); the package's own ``__init__``
(its version) is the wing ``orchestrator``.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Mapping, Set
from dataclasses import dataclass
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


@functools.cache
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


BASE = frozenset({"orchestrator", "contract", "errors", "fileio"})
EVERY_WING = frozenset({"*"})


def wing(module: str) -> str:
    """``orchestrator.serving.server`` -> ``serving``, ``orchestrator.job`` -> ``job``, ``orchestrator`` itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


@dataclass(frozen=True)
class Rule:
    """``importers`` (wings; ``EVERY_WING`` but ``exempt``) import none of ``forbidden``, or only ``allowed`` (plus
    their own wing)."""

    says: str
    importers: frozenset[str]
    forbidden: frozenset[str] = frozenset()
    allowed: frozenset[str] | None = None
    exempt: frozenset[str] = frozenset()

    def applies_to(self, w: str) -> bool:
        return w not in self.exempt and ("*" in self.importers or w in self.importers)

    def violations(self, edges: Mapping[str, Set[str]]) -> list[str]:
        return sorted(
            f"{source} -> {target}"
            for source, targets in edges.items()
            if self.applies_to(wing(source))
            for target in targets
            if wing(target) != wing(source)
            and (wing(target) in self.forbidden or (self.allowed is not None and wing(target) not in self.allowed))
        )


RULES = [
    Rule("contract, errors and fileio import only each other", BASE - {"orchestrator"}, allowed=BASE),
    Rule(
        "serving imports only the base, the client's liveness reading and reasoning's parser choice",
        frozenset({"serving"}),
        allowed=BASE | {"client", "reasoning"},
    ),
    Rule(
        "scheduling imports no runner of jobs (the runner is handed its launch)",
        frozenset({"scheduling"}),
        forbidden=frozenset({"job", "backend", "ray", "orchestrate", "cli", "status"}),
    ),
    Rule("no wing imports orchestrate", EVERY_WING, frozenset({"orchestrate"}), exempt=frozenset({"cli"})),
    Rule("no wing imports the cli", EVERY_WING, frozenset({"cli"})),
    Rule(
        "the reasoning core imports no job, backend or run",
        frozenset({"reasoning"}),
        forbidden=frozenset({"job", "backend", "ray", "scheduling", "orchestrate", "cli", "status"}),
    ),
    Rule(
        "the judge imports no backend or run (its job starts and stops its server through job)",
        frozenset({"judge"}),
        forbidden=frozenset({"backend", "ray", "scheduling", "orchestrate", "cli", "status"}),
    ),
    Rule(
        "only the backends, the status summary, the judge's job, orchestrate and the cli import job",
        EVERY_WING,
        frozenset({"job"}),
        exempt=frozenset({"backend", "ray", "status", "orchestrate", "cli", "judge"}),
    ),
    Rule(
        "the wings below job import no job, scheduler, backend or status",
        frozenset({"client", "grading", "results", "leaderboard", "datasets", "hub", "serving", "config", "notify"}),
        forbidden=frozenset({"backend", "ray", "scheduling", "job", "status"}),
    ),
]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.says)
def test_the_wings_import_as_the_architecture_draws_them(rule: Rule) -> None:
    assert rule.violations(graph()) == []


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.says)
def test_each_layering_rule_sees_a_synthetic_violation_and_passes_an_import_within_a_wing(rule: Rule) -> None:
    source = next(iter(sorted(rule.importers - {"*"}) or ["results"]))
    target = sorted(rule.forbidden)[0] if rule.forbidden else "somewhere_above"
    edges = {f"orchestrator.{source}.a": {f"orchestrator.{target}.b", f"orchestrator.{source}.c"}}
    assert rule.violations(edges) == [f"orchestrator.{source}.a -> orchestrator.{target}.b"]
    assert rule.violations({f"orchestrator.{source}.a": {f"orchestrator.{source}.c"}}) == []


# ARCHITECTURE.md's layers: a wing imports its own modules and wings of lower layers only (the base among itself)
LAYERS = {
    **dict.fromkeys(("orchestrator", "contract", "errors", "fileio"), 0),
    **dict.fromkeys(("grading", "prompts", "endpoints", "smoke_model"), 1),
    **dict.fromkeys(("reasoning", "results"), 2),
    **dict.fromkeys(("client", "notify", "leaderboard"), 3),
    "serving": 4,
    **dict.fromkeys(("hub", "job"), 5),
    **dict.fromkeys(("scheduling", "datasets", "judge"), 6),
    **dict.fromkeys(("backend", "ray", "status", "config"), 7),
    "orchestrate": 8,
    "cli": 9,
}


def upward(edges: Mapping[str, Set[str]]) -> list[str]:
    """The imports that point to the same or a higher layer than their module's (wings not in ``LAYERS``: top)."""
    top = max(LAYERS.values()) + 1
    return sorted(
        f"{source} -> {target}"
        for source, targets in edges.items()
        for target in targets
        if wing(target) != wing(source)
        and LAYERS.get(wing(target), top) >= LAYERS.get(wing(source), top)
        and LAYERS.get(wing(source)) != 0
    )


def test_every_wing_has_a_layer() -> None:
    assert {wing(m) for m in modules()} - set(LAYERS) == set()


def test_every_import_points_down_the_layers() -> None:
    assert upward(graph()) == []


def test_the_layer_check_sees_an_import_up_and_one_across_a_layer() -> None:
    down = {"orchestrator.job": {"orchestrator.serving.server", "orchestrator.contract"}}
    up = {"orchestrator.serving.server": {"orchestrator.job"}, "orchestrator.hub.a": {"orchestrator.job"}}
    assert upward(down) == []
    assert upward(up) == [
        "orchestrator.hub.a -> orchestrator.job",
        "orchestrator.serving.server -> orchestrator.job",
    ]
    assert upward({"orchestrator.contract": {"orchestrator.job"}}) == []  # the base rule above says so instead


EFFECTFUL = frozenset(
    f"orchestrator.{m}"
    for m in (
        "serving.server",
        "serving.session",
        "serving.records",
        "serving.identity",
        "serving.terminate",
        "serving.gpus",
        "serving.ports",
        "serving.probe",
        "serving.signals",
        "serving.guard",
        "ray.node",
        "ray.backend",
        "ray.driver",
        "job",
        "job.context",
        "job.lifecycle",
        "job.series",
        "job.replica",
        "orchestrate",
        "orchestrate.run",
        "backend",
        "cli",
        "scheduling.runner",
        "hub.prefetch",
        "hub.cachefiles",
        "status.writer",
        "status.manifest",
    )
)
PURE = [
    "orchestrator.contract",
    "orchestrator.scheduling.plan",
    "orchestrator.scheduling.policy",
    "orchestrator.scheduling.dryrun",
    "orchestrator.scheduling.history",
    "orchestrator.scheduling.estimate",
    "orchestrator.scheduling.facts",
    "orchestrator.serving.launch",
    "orchestrator.ray.plan",
    "orchestrator.ray.events",
]


def reached(edges: Mapping[str, Set[str]], start: str) -> set[str]:
    """Every module ``start`` imports, directly or through others."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


@pytest.mark.parametrize("pure", PURE)
def test_pure_planners_reach_no_effectful_module_even_through_others(pure: str) -> None:
    assert reached(graph(), pure) & EFFECTFUL == set()


def test_the_purity_check_sees_an_effectful_module_two_imports_away() -> None:
    edges = {"p": {"q"}, "q": {"orchestrator.serving.gpus"}, "r": {"p"}}
    assert reached(edges, "r") & EFFECTFUL == {"orchestrator.serving.gpus"}
    assert reached({"p": {"q"}, "q": set()}, "p") & EFFECTFUL == set()
