"""The tests' own import rules: no test module imports another, and ``benchmarks/`` imports nothing from ``tests/``.

A test module is any module under ``tests/`` outside ``tests/support/`` (the shared helpers, which every test may
import; stand-ins shared with the benchmarks live in ``standins/``). Read with ``ast``: ``tests.x`` by its absolute
name, and a bare ``import x`` where pytest's prepend mode would find ``x.py`` beside the importing file.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported_names(path: Path) -> list[str]:
    """Every absolute module name ``path`` imports (``from a.b import c`` gives ``a.b`` and ``a.b.c``)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return names


def is_test_module(root: Path, path: Path) -> bool:
    rel = path.relative_to(root)
    return rel.parts[0] == "tests" and rel.parts[1:2] != ("support",)


def imported_test_modules(root: Path, path: Path) -> set[str]:
    """The test modules (paths relative to ``root``) that ``path`` imports."""
    found = set()
    for name in imported_names(path):
        parts = name.split(".")
        candidates = [root.joinpath(*parts).with_suffix(".py"), root.joinpath(*parts, "__init__.py")]
        if len(parts) == 1:  # prepend mode: a bare name is a file beside the importer
            candidates.append(path.parent / f"{name}.py")
        found |= {str(c.relative_to(root)) for c in candidates if c.is_file() and is_test_module(root, c)}
    return found - {str(path.relative_to(root))}


def violations(root: Path) -> list[tuple[str, str]]:
    """(importer, test module) for every test module imported by another module of ``tests/`` or ``benchmarks/``;
    ``benchmarks/`` may not import even ``tests/support``."""
    found = []
    for path in sorted([*(root / "tests").rglob("*.py"), *(root / "benchmarks").rglob("*.py")]):
        rel = str(path.relative_to(root))
        found += [(rel, target) for target in sorted(imported_test_modules(root, path))]
        if rel.startswith("benchmarks/"):
            found += [(rel, n) for n in imported_names(path) if n == "tests" or n.startswith("tests.support")]
    return found


def test_no_test_module_imports_another_and_benchmarks_import_nothing_from_tests() -> None:
    assert violations(ROOT) == []


def test_the_checker_sees_a_test_importing_a_test_and_a_benchmark_importing_tests(tmp_path: Path) -> None:
    files = {
        "tests/unit/test_a.py": "import test_b\nfrom tests.integration.test_c import helper\nimport tests.support.x\n",
        "tests/unit/test_b.py": "from tests.support.x import y\n",
        "tests/integration/test_c.py": "def helper(): ...\n",
        "tests/support/__init__.py": "",
        "tests/support/x.py": "from tests.unit import test_b\n",
        "benchmarks/run.py": "from tests.support.x import y\nimport standins\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert violations(tmp_path) == [
        ("benchmarks/run.py", "tests.support.x"),
        ("benchmarks/run.py", "tests.support.x.y"),
        ("tests/support/x.py", "tests/unit/test_b.py"),
        ("tests/unit/test_a.py", "tests/integration/test_c.py"),
        ("tests/unit/test_a.py", "tests/unit/test_b.py"),
    ]
