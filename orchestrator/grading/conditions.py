"""Answers and references that are sets of real numbers: intervals, unions, conditions (runs in the worker).

``x > 1, x ≠ 2``, ``(1; 2) ∪ (2; +∞)``, ``|b| < 3``, ``x ≥ 5`` and ``x — любое число`` are read as sympy sets
over the reals and compared as sets, so equal sets written differently agree and every bracket counts: ``(0; 9)``
is not ``[0; 9)``. Conditions on one unknown hold together (their intersection); when they cannot all hold
(``x < 1, x > 3``) they were meant as alternatives (their union). Used only when the reference is such a set
and it contains an interval: a list of roots is never compared as a set of reals here.
"""

from __future__ import annotations

import sympy

from . import values as V

MAX_PARTS = 12
_ANY = ("любое", "любые", "все", "всё", "any", "all")


def _bound(value: V.Value) -> sympy.Expr | None:
    if not (isinstance(value, V.Scalar) and value.unit is None and value.num is not None):
        return None
    expr = value.num.expr
    if expr.free_symbols or expr.has(V.HUGE) or expr.is_extended_real is not True:
        return None
    return expr


def _interval(value: V.Bracket) -> sympy.Set | None:
    if len(value.values) != 2:
        return None
    low, high = (_bound(v) for v in value.values)
    if low is None or high is None or not bool(low < high):
        return None
    return sympy.Interval(low, high, value.left == "(", value.right == ")")


def to_set(value: V.Value) -> sympy.Set | None:
    """The set of reals ``value`` stands for, or None when it is not one."""
    if isinstance(value, V.Named):
        return to_set(value.value)
    if isinstance(value, V.Bracket):
        return _interval(value)
    if isinstance(value, V.Text):
        return sympy.Reals if value.text.split()[0] in _ANY else None
    if isinstance(value, V.Scalar):
        point = _bound(value)
        return sympy.FiniteSet(point) if point is not None and point.is_finite else None
    if not isinstance(value, V.Items) or len(value.values) > MAX_PARTS:
        return None  # sympy's set algebra grows fast: a longer list is no interval answer
    parts = [to_set(v) for v in value.values]
    if any(p is None for p in parts):
        return None
    if not parts:
        return sympy.S.EmptySet
    if value.kind == "conditions":
        together = sympy.Intersection(*parts)
        return together if together != sympy.S.EmptySet else sympy.Union(*parts)
    return sympy.Union(*parts)


def has_interval(value: sympy.Set) -> bool:
    """Does the set contain an interval (not only points)?"""
    return bool(value.atoms(sympy.Interval)) or value == sympy.Reals


def same_set(answer: V.Value, reference: V.Value) -> bool | None:
    """Do both stand for the same set of reals? None when the reference is not such a set with an interval."""
    ref = to_set(reference)
    if ref is None or not has_interval(ref):
        return None
    got = to_set(answer)
    return got is not None and bool(got == ref)
