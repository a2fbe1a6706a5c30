"""Expressions in letters: equal expressions, equal root series, equal equations (runs in the worker).

* Expressions: the same letters, and the difference simplifies to zero (``expand``), or, where that is
  inconclusive, both agree at several random positive points (seeded, so a verdict never changes between runs).
* Root series: ``\\pi/6 + \\pi n/3`` and ``\\pi(2n+1)/6`` or ``-\\pi/2 + \\pi k`` for ``\\pi/2 + \\pi n``: one integer
  letter each (k, n, m, l), linear in it with a step that is a rational multiple of pi (``(-1)^n a + \\pi n`` is
  its even and odd halves); unions of series are equal when they cover the same values within a common period. A
  series with another step (covering part) is not equal.
* Equations: ``2a + 6z = 0`` states ``a + 3z = 0``: the same letters and left-minus-right sides proportional.
"""

from __future__ import annotations

import math
import random

import mpmath
import sympy

from . import values as V
from .values import numeric

CLOSE = mpmath.mpf("1e-40")
PREC = 70
POINTS = 4
MAX_EXPAND_OPS = 120
MAX_EXPAND_POWER = 6
SERIES_LETTERS = frozenset("knml")


def close(a: mpmath.mpc, b: mpmath.mpc) -> bool:
    scale = max(abs(a), abs(b))
    return scale == 0 or abs(a - b) <= CLOSE * scale


def _names(expr: sympy.Expr) -> set[str]:
    return {s.name for s in expr.free_symbols}


def _points(symbols: list[sympy.Symbol]) -> list[dict[sympy.Symbol, sympy.Float]]:
    """Seeded random positive points, as 80-digit floats (a huge power of a float costs nothing, of a fraction a
    lot)."""
    rng = random.Random(20250409)
    pick = [[sympy.Rational(rng.randint(101, 997), rng.randint(53, 97)) for _ in symbols] for _ in range(POINTS)]
    return [{s: sympy.Float(v, PREC + 10) for s, v in zip(symbols, values)} for values in pick]


def _simplifies_to_zero(difference: sympy.Expr) -> bool:
    """Does the difference expand to zero? Not tried on large expressions or high powers (expanding
    ``(x+y+z)^{200}`` alone takes seconds): the points decide those."""
    if sympy.count_ops(difference) > MAX_EXPAND_OPS:
        return False
    powers = [p.exp for p in difference.atoms(sympy.Pow) if p.exp.is_Integer]
    if any(abs(int(e)) > MAX_EXPAND_POWER for e in powers):
        return False
    return sympy.expand(difference) == 0


def same_expression(a: sympy.Expr, r: sympy.Expr) -> bool:
    """Are ``a`` and ``r`` (with unknowns) the same expression, or the same root series?"""
    with mpmath.workdps(PREC):
        return _same_expression(a, r)


def _same_expression(a: sympy.Expr, r: sympy.Expr) -> bool:
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
            return same_series(a, r)
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
    return same_series_sets([a], [r])


def _halves(expr: sympy.Expr) -> list[sympy.Expr]:
    """``(-1)^n a + \\pi n`` as its even and odd halves (two linear series); other expressions as they are."""
    signs = [p for p in expr.atoms(sympy.Pow) if p.base == -1 and isinstance(p.exp, sympy.Symbol)]
    if len(signs) != 1:
        return [expr]
    letter = signs[0].exp
    even = expr.xreplace({signs[0]: 1}).xreplace({letter: 2 * letter})
    odd = expr.xreplace({signs[0]: -1}).xreplace({letter: 2 * letter + 1})
    return [sympy.expand(even), sympy.expand(odd)]


def same_equation(a: sympy.Expr, r: sympy.Expr) -> bool:
    """Are ``a = 0`` and ``r = 0`` the same equation (the same letters, ``a`` a constant nonzero multiple of ``r``)?"""
    if _names(a) != _names(r) or a.has(V.HUGE) or r.has(V.HUGE):
        return False
    ratios = []
    with mpmath.workdps(PREC):
        for point in _points(sorted(a.free_symbols, key=lambda s: s.name)):
            va, vr = numeric(a.xreplace(point)), numeric(r.xreplace(point))
            if va is None or vr is None or vr == 0:
                continue
            ratios.append(va / vr)
        return len(ratios) >= 2 and ratios[0] != 0 and all(close(x, ratios[0]) for x in ratios)


MAX_RESIDUES = 24
MAX_SERIES = 16


def _steps(series: list[tuple[sympy.Expr, sympy.Expr]]) -> list[sympy.Rational]:
    return [abs(sympy.nsimplify(step / sympy.pi)) for step, _ in series]


def _residues(series: list[tuple[sympy.Expr, sympy.Expr]], period: sympy.Rational) -> list[mpmath.mpf] | None:
    """The values of a union of root series within one ``period`` (in multiples of pi), sorted; None when a
    series needs more than MAX_RESIDUES values there."""
    whole = mpmath.mpf(int(period.p)) / int(period.q) * mpmath.pi
    values = []
    for (_, start), step in zip(series, _steps(series)):
        count = period / step
        first = numeric(start)
        if not count.is_Integer or count > MAX_RESIDUES or first is None or first.imag != 0:
            return None
        size = mpmath.mpf(int(step.p)) / int(step.q) * mpmath.pi
        for j in range(int(count)):
            value = mpmath.fmod(first.real + j * size, whole)
            value = value + whole if value < 0 else value
            values.append(mpmath.mpf(0) if abs(value - whole) < CLOSE * whole * 10**10 else value)
    return sorted(values)


def same_series_sets(answers: list[sympy.Expr], references: list[sympy.Expr]) -> bool:
    """Do two unions of root series cover the same values (``2\\pi n`` or ``\\pi + 2\\pi n`` is ``\\pi n``)?"""
    if len(answers) + len(references) > MAX_SERIES:
        return False  # no answer lists that many series
    answers = [h for x in answers for h in _halves(x)]
    references = [h for x in references for h in _halves(x)]
    a, r = [_series(x) for x in answers], [_series(x) for x in references]
    if not a or not r or any(s is None for s in a + r):
        return False
    steps = _steps(a + r)  # type: ignore[arg-type]  # no None left (returned above)
    if not all(s.is_Rational and s > 0 for s in steps):
        return False
    period = sympy.Rational(math.lcm(*[int(s.p) for s in steps]), math.gcd(*[int(s.q) for s in steps]))
    with mpmath.workdps(PREC):
        va, vr = _residues(a, period), _residues(r, period)  # type: ignore[arg-type]  # no None (returned above)
        if va is None or vr is None or len(va) != len(vr):
            return False
        return all(abs(x - y) <= CLOSE * (1 + abs(y)) * 10**10 for x, y in zip(va, vr))
