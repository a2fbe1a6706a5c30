"""The built-in samples: every answer re-derived with sympy from the item's own `check`, formats, coverage,
and originality against the upstream RussianMath problems (read by path, eval-only)."""

from __future__ import annotations

import builtins
import json
import re
from itertools import combinations, permutations, product
from math import gcd
from pathlib import Path

import pytest
import sympy
from sympy.parsing.sympy_parser import implicit_multiplication_application, parse_expr, standard_transformations

from orchestrator.datasets import REGISTRY, load, project_root

ROOT = Path(__file__).resolve().parents[2]
MATH = [json.loads(line) for line in (ROOT / "datasets/sample-math.jsonl").read_text("utf-8").splitlines()]
PHYSICS = [json.loads(line) for line in (ROOT / "datasets/sample-physics.jsonl").read_text("utf-8").splitlines()]
UPSTREAM = ROOT.parent / "shared/upstream-data/VikhrModels_DeathMath/russianmath_190_extracted.jsonl"

SYMBOLS = {name: sympy.Symbol(name, real=True) for name in "x y z a b c d n t k u v".split()}
NAMESPACE = {
    **{k: v for k, v in vars(sympy).items() if not k.startswith("_")},
    **SYMBOLS,
    "permutations": permutations,
    "product": product,
    "combinations": combinations,
}
TRANSFORMS = standard_transformations + (implicit_multiplication_application,)
MATH_KINDS = {"integer", "fraction", "decimal", "root", "roots", "interval", "system", "none"}
UNITS = {"м", "м/с", "м/с²", "км/ч", "см", "с", "Дж", "кДж", "Н", "Па", "кПа", "Ом", "В", "А", "К", "кВт", "%"}


def evaluate(check: str):
    return eval(check, {"__builtins__": builtins, **NAMESPACE})  # our own file's expressions, test only


def number(text: str) -> sympy.Expr:
    """A math answer value: LaTeX-ish (\\sqrt{..}, \\pi, \\infty, implicit products) -> sympy, decimals exact."""
    text = text.replace(r"\sqrt", "sqrt").replace(r"\pi", " pi").replace(r"\infty", "oo").replace("{", "(")
    return parse_expr(text.replace("}", ")"), local_dict=NAMESPACE, transformations=TRANSFORMS, evaluate=True)


def interval(text: str) -> sympy.Set:
    left, right = text[1:-1].split(";")
    return sympy.Interval(number(left), number(right), text[0] == "(", text[-1] == ")")


def parse_answer(answer: str):
    if answer == "нет решений":
        return sympy.S.EmptySet
    if answer[0] in "([" and answer[-1] in ")]":
        return sympy.Union(*(interval(part.strip()) for part in answer.split(r"\cup")))
    parts = [part.strip() for part in answer.split(";")]
    if "=" in answer:
        return {SYMBOLS[p.split("=")[0].strip()]: number(p.split("=")[1]) for p in parts}
    return sympy.FiniteSet(*map(number, parts)) if len(parts) > 1 else number(answer)


def canonical(value):
    """Whatever a check returns (list of dicts, FiniteSet of one, ...) in parse_answer's shape."""
    if isinstance(value, list):
        assert len(value) <= 1, value
        return value[0] if value else sympy.S.EmptySet
    if isinstance(value, sympy.FiniteSet) and len(value) == 1:
        return next(iter(value))
    return sympy.sympify(value)


def same(expected, actual) -> bool:
    if isinstance(expected, dict):
        return expected.keys() == actual.keys() and all(same(expected[k], actual[k]) for k in expected)
    if isinstance(expected, sympy.FiniteSet):
        return len(expected) == len(actual) and all(any(same(e, a) for a in actual) for e in expected)
    if isinstance(expected, sympy.Set):
        return expected == actual
    return sympy.simplify(sympy.sympify(expected) - actual) == 0


def test_enough_problems_with_unique_ids_and_all_kinds():
    assert len(MATH) >= 40 and len(PHYSICS) >= 30
    ids = [item["id"] for item in MATH + PHYSICS]
    assert len(set(ids)) == len(ids)
    assert {item["kind"] for item in MATH} == MATH_KINDS
    assert all(item["task"] and item["answer"] and item["check"] for item in MATH + PHYSICS)


@pytest.mark.parametrize("item", MATH, ids=[item["id"] for item in MATH])
def test_math_answer_equals_its_independent_check(item):
    assert same(canonical(evaluate(item["check"])), parse_answer(item["answer"]))


FORMATS = {
    "integer": r"-?\d+",
    "fraction": r"-?\d+/\d+",
    "decimal": r"-?\d+\.\d+",
    "none": "нет решений",
    "root": r"[^;]*\\sqrt\{\d+\}[^;]*",
    "roots": r"[^;]+(; [^;]+)+",
    "system": r"[a-z] = [^;]+(; [a-z] = [^;]+)+",
    "interval": r"[(\[].+; .+[)\]]( \\cup [(\[].+; .+[)\]])*",
}


@pytest.mark.parametrize("item", MATH, ids=[item["id"] for item in MATH])
def test_math_answer_is_written_in_the_format_of_its_kind(item):
    assert re.fullmatch(FORMATS[item["kind"]], item["answer"]), item["answer"]
    if item["kind"] == "fraction":
        p, q = map(int, item["answer"].lstrip("-").split("/"))
        assert q > 1 and gcd(p, q) == 1
    if item["kind"] == "roots":
        values = [float(number(part)) for part in item["answer"].split(";")]
        assert values == sorted(values)


@pytest.mark.parametrize("item", PHYSICS, ids=[item["id"] for item in PHYSICS])
def test_physics_answer_is_a_number_with_a_unit_matching_its_check(item):
    match = re.fullmatch(r"(-?\d+(?:\.\d+)?) (\S+)", item["answer"])
    assert match, item["answer"]
    assert match.group(2) in UNITS
    expected = float(sympy.N(evaluate(item["check"]), 30))
    tolerance = item.get("tolerance", 1e-12)
    assert abs(float(match.group(1)) - expected) <= tolerance * abs(expected)


def test_physics_covers_the_common_units():
    used = {item["answer"].split(" ", 1)[1] for item in PHYSICS}
    assert {"м/с", "Дж", "кДж", "Н", "Па", "Ом", "В", "А", "К", "км/ч"} <= used


def test_samples_load_through_the_registry_from_another_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    math = load(REGISTRY["sample-math"])
    physics = load(REGISTRY["sample-physics"])
    assert [p.id for p in math] == [item["id"] for item in MATH]
    assert [p.reference for p in physics] == [item["answer"] for item in PHYSICS]
    assert {p.domain for p in math} == {"math"} and {p.domain for p in physics} == {"physics"}
    tolerances = {p.id: p.tolerance for p in physics if p.tolerance is not None}
    assert tolerances == {item["id"]: item["tolerance"] for item in PHYSICS if "tolerance" in item}
    assert project_root() == ROOT


def _windows(text: str, size: int = 40) -> set[str]:
    text = re.sub(r"[\s$]+", " ", text.lower())
    return {text[i : i + size] for i in range(max(len(text) - size + 1, 1))}


@pytest.mark.skipif(not UPSTREAM.exists(), reason="upstream eval data not present")
def test_no_sample_shares_a_40_character_passage_with_upstream_russianmath():
    upstream = set().union(*(_windows(json.loads(line)["task"]) for line in UPSTREAM.read_text("utf-8").splitlines()))
    for item in MATH + PHYSICS:
        shared = _windows(item["task"]) & upstream
        assert not shared, (item["id"], sorted(shared)[:3])
