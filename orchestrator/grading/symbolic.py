"""Expressions in letters: equal expressions, equal root series, equal equations (runs in the worker).

* Expressions: the same letters, and the difference simplifies to zero (``expand``), or, where that is
  inconclusive, both agree at several random positive points (seeded, so a verdict never changes between runs).
* Root series: ``\\pi/6 + \\pi n/3`` and ``\\pi(2n+1)/6`` or ``-\\pi/2 + \\pi k`` for ``\\pi/2 + \\pi n``: one integer
  letter each (k, n, m, l), linear in it with a step that is a rational multiple of pi; equal when the steps are
  equal in size and the starts differ by whole steps. A series with another step (covering part) is not equal.
* Equations: ``2a + 6z = 0`` states ``a + 3z = 0``: the same letters and left-minus-right sides proportional.
"""

from __future__ import annotations

import random

import mpmath
import sympy

from . import values as V
from .values import numeric

CLOSE = mpmath.mpf("1e-40")
POINTS = 4
MAX_EXPAND_OPS = 120
SERIES_LETTERS = frozenset("knml")


def close(a: mpmath.mpc, b: mpmath.mpc) -> bool:
    scale = max(abs(a), abs(b))
    return scale == 0 or abs(a - b) <= CLOSE * scale


def _names(expr: sympy.Expr) -> set[str]:
    return {s.name for s in expr.free_symbols}


def _points(symbols: list[sympy.Symbol]) -> list[dict[sympy.Symbol, sympy.Rational]]:
    rng = random.Random(20250409)
    return [{s: sympy.Rational(rng.randint(101, 997), rng.randint(53, 97)) for s in symbols} for _ in range(POINTS)]


def _simplifies_to_zero(difference: sympy.Expr) -> bool:
    if sympy.count_ops(difference) > MAX_EXPAND_OPS:
        return False
    return sympy.expand(difference) == 0


def same_expression(a: sympy.Expr, r: sympy.Expr) -> bool:
    """Are ``a`` and ``r`` (with unknowns) the same expression, or the same root series?"""
    if a.has(V.HUGE) or r.has(V.HUGE):
        return False
    if _names(a) != _names(r):
        return same_series(a, r)
    if _simplifies_to_zero(a - r):
        return True
    agree = 0
    for point in _points(sorted(a.free_symbols, key=lambda s: s.name)):
        va, vr = numeric(a.xreplace(point)), numeric(r.xreplace(point))
        if va is None or vr is None:
            continue
        if not close(va, vr):
            return False
        agree += 1
    return agree >= 2 or same_series(a, r)


def _series(expr: sympy.Expr) -> tuple[sympy.Expr, sympy.Expr] | None:
    """``(step, start)`` of ``start + step·k`` with one integer letter k and a step that is a multiple of pi."""
    if len(expr.free_symbols) != 1:
        return None
    letter = next(iter(expr.free_symbols))
    if letter.name not in SERIES_LETTERS:
        return None
    step = sympy.diff(expr, letter)
    if step.free_symbols or step == 0 or not (step / sympy.pi).is_rational:
        return None
    return step, expr.xreplace({letter: 0})


def same_series(a: sympy.Expr, r: sympy.Expr) -> bool:
    """Are ``a`` and ``r`` the same series of values (steps equal in size, starts whole steps apart)?"""
    sa, sr = _series(a), _series(r)
    if sa is None or sr is None or sympy.Abs(sa[0]) != sympy.Abs(sr[0]):
        return False
    with mpmath.workdps(60):
        shift = numeric((sa[1] - sr[1]) / sr[0])
        if shift is None or shift.imag != 0:
            return False
        return abs(shift.real - mpmath.nint(shift.real)) < mpmath.mpf("1e-30")


def same_equation(a: sympy.Expr, r: sympy.Expr) -> bool:
    """Are ``a = 0`` and ``r = 0`` the same equation (the same letters, ``a`` a constant nonzero multiple of ``r``)?"""
    if _names(a) != _names(r) or a.has(V.HUGE) or r.has(V.HUGE):
        return False
    ratios = []
    for point in _points(sorted(a.free_symbols, key=lambda s: s.name)):
        va, vr = numeric(a.xreplace(point)), numeric(r.xreplace(point))
        if va is None or vr is None or vr == 0:
            continue
        ratios.append(va / vr)
    return len(ratios) >= 2 and ratios[0] != 0 and all(close(x, ratios[0]) for x in ratios)
