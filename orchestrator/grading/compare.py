"""Equivalence of a parsed answer and a parsed reference.

* Rationals compare exactly; symbolic numbers (``\\sqrt{12}`` vs ``2\\sqrt{3}``) at 50 significant digits;
  expressions with unknowns at several random points.
* Exact mode (math, no tolerance): a written decimal equals an exact value only when it is that value correctly
  rounded at its last written digit and has at least ``MIN_SIG`` significant digits (``approximate``).
* Tolerance mode (physics, or a per-problem tolerance): relative error at most ``tolerance``; a zero reference
  allows ``ZERO_ABS`` in SI units and nothing else is absolute.
* Units: both written -> compare in SI (dimensions must agree); only the answer -> the number as written or its
  SI value (a percentage against a bare reference below 1: its SI value only); only the reference -> the
  number as written.
* Magnitude words (``2,5 тыс.``, ``150 млн``) are part of the number; when the reference is a bare number without
  one, the number as written before the magnitude also counts (``150 млн км`` for 150), as for a unit.
"""

from __future__ import annotations

from dataclasses import dataclass

import mpmath
import sympy

from . import values as V
from .conditions import same_set
from .symbolic import same_equation, same_expression, same_series_sets
from .values import numeric

PREC = 60
CLOSE = mpmath.mpf("1e-40")
MIN_SIG = 3
ZERO_ABS = 1e-9


@dataclass(frozen=True)
class Rules:
    """How numbers compare: ``tolerance`` is relative (None = exact mode)."""

    tolerance: float | None = None


@dataclass(frozen=True)
class Match:
    ok: bool
    approximate: bool = False


NO = Match(False)
EXACT = Match(True)
APPROX = Match(True, True)


def _close(a: mpmath.mpc, b: mpmath.mpc) -> bool:
    scale = max(abs(a), abs(b))
    return scale == 0 or abs(a - b) <= CLOSE * scale


def _rounds_to(value: mpmath.mpc, decimal: V.Num) -> bool:
    """Is ``decimal`` the real ``value`` correctly rounded at the decimal's last written digit?"""
    if decimal.sig is None or decimal.ulp is None or decimal.sig < MIN_SIG or abs(value.imag) > 0:
        return False
    scaled = value.real / (mpmath.mpf(int(decimal.ulp.p)) / int(decimal.ulp.q))
    low = int(mpmath.floor(scaled))
    frac = scaled - low
    eps = mpmath.mpf("1e-30")
    candidates = [low] if frac < 0.5 - eps else [low + 1] if frac > 0.5 + eps else [low, low + 1]
    return any(sympy.Integer(c) * decimal.ulp == decimal.expr for c in candidates)


def _within(a: mpmath.mpc, r: mpmath.mpc, tolerance: float) -> bool:
    if r == 0:
        return abs(a) <= ZERO_ABS
    return abs(a - r) <= mpmath.mpf(tolerance) * abs(r) * (1 + mpmath.mpf("1e-12"))


def _symbolic(a: sympy.Expr, r: sympy.Expr) -> Match:
    return EXACT if same_expression(a, r) else NO


def num_equal(a: V.Num, r: V.Num, rules: Rules) -> Match:
    """Is answer number ``a`` equal to reference number ``r`` under ``rules``?"""
    with mpmath.workdps(PREC + 10):
        return _num_equal(a, r, rules)


def _num_equal(a: V.Num, r: V.Num, rules: Rules) -> Match:
    ea, er = a.expr, r.expr
    if ea.has(V.HUGE) or er.has(V.HUGE):
        return NO
    if ea == er:
        return EXACT
    if ea.free_symbols or er.free_symbols:
        return _symbolic(ea, er)
    va, vr = numeric(ea), numeric(er)
    if va is None or vr is None:
        return NO
    if not (ea.is_Rational and er.is_Rational) and _close(va, vr):
        return EXACT
    if rules.tolerance is not None:
        return APPROX if _within(va, vr, rules.tolerance) else NO
    if a.decimal and not r.decimal and _rounds_to(vr, a):
        return APPROX
    if r.decimal and not a.decimal and _rounds_to(va, r):
        return APPROX
    return NO


def _pairs(a: V.Scalar, r: V.Scalar) -> list[tuple[V.Num | None, V.Num | None]]:
    """Which (answer, reference) numbers to compare, by the units and magnitudes written on each side."""
    plain = _unit_pairs(a, r)
    if a.written is not None and r.unit is None and r.written is None:
        plain.append((a.written, r.num))  # "150 млн км" for a bare 150: counted in millions, like a unit
    return plain


def _unit_pairs(a: V.Scalar, r: V.Scalar) -> list[tuple[V.Num | None, V.Num | None]]:
    if a.unit is not None and r.unit is not None:
        return [(a.si, r.si)] if a.unit.dims == r.unit.dims else []
    if r.unit is not None:
        return [(a.num, r.num), (a.num, r.si)] if r.unit.dimensionless or r.num is None else [(a.num, r.num)]
    if a.unit is not None:
        if _fraction_in_percent(a, r):
            return [(a.si, r.num)]
        return [(a.num, r.num), (a.si, r.num)]
    return [(a.num, r.num)]


def _fraction_in_percent(a: V.Scalar, r: V.Scalar) -> bool:
    """A percentage against a bare reference below 1 in size: the reference is a fraction (``40 %`` is 0.4,
    ``0,4 %`` is not); against a larger one it counts percent (``28 %`` for 28, ``1 %`` for 1)."""
    percent = a.unit is not None and a.unit.dimensionless and a.unit.scale == sympy.Rational(1, 100)
    value = r.num.expr if r.num is not None else None
    return percent and value is not None and value.is_number and bool(abs(value) < 1)


def scalar_equal(a: V.Scalar, r: V.Scalar, rules: Rules) -> Match:
    for x, y in _pairs(a, r):
        if x is not None and y is not None:
            match = num_equal(x, y, rules)
            if match.ok:
                return match
    return NO


def _unwrap(value: V.Value) -> V.Value:
    while True:
        if isinstance(value, V.Named):
            value = value.value
        elif isinstance(value, V.Items) and len(value.values) == 1:
            value = value.values[0]
        else:
            return value


def _ordered(answers: tuple[V.Value, ...], refs: tuple[V.Value, ...], rules: Rules) -> Match:
    if len(answers) != len(refs):
        return NO
    matches = [equivalent(a, r, rules) for a, r in zip(answers, refs)]
    return Match(all(m.ok for m in matches), any(m.approximate for m in matches))


def _unordered(answers: tuple[V.Value, ...], refs: tuple[V.Value, ...], rules: Rules) -> Match:
    if len(answers) != len(refs):
        return NO
    used = [False] * len(refs)
    approximate = False
    for answer in answers:
        for j, ref in enumerate(refs):
            match = NO if used[j] else equivalent(answer, ref, rules)
            if match.ok:
                used[j], approximate = True, approximate or match.approximate
                break
        else:
            return NO
    return Match(True, approximate)


def _by_name(a: V.Items, r: V.Items, rules: Rules) -> Match:
    by_name = dict(zip(a.names, a.values))
    return _ordered(tuple(by_name[n] for n in r.names), r.values, rules)


def _items(a: V.Value, r: V.Items, rules: Rules) -> Match:
    named = isinstance(a, V.Items) and a.names and r.names and len(set(a.names)) == len(a.names)
    if isinstance(a, V.Items) and named and set(a.names) == set(r.names):
        return _by_name(a, r, rules)
    if r.kind == "set" and isinstance(a, V.Items) and a.kind == "set":
        return _unordered(a.values, r.values, rules)
    ordered_answer = (isinstance(a, V.Items) and (a.kind == "named" or r.kind == "named")) or (
        isinstance(a, V.Bracket) and a.left + a.right == "()" and not r.braced  # a pair is never a set in braces
    )
    return _ordered(a.values, r.values, rules) if ordered_answer else NO  # type: ignore[union-attr]  # Items/Bracket


def _bracket(a: V.Value, r: V.Bracket, rules: Rules) -> Match:
    if isinstance(a, V.Bracket):
        return _ordered(a.values, r.values, rules) if (a.left, a.right) == (r.left, r.right) else NO
    if isinstance(a, V.Items) and r.left + r.right == "()" and not a.braced:
        return _ordered(a.values, r.values, rules)
    return NO


def _same_value(a: V.Items) -> V.Value | None:
    """The value of a list that states one value in several forms (``\\frac{1}{2}`` или ``0,5``), else None."""
    values = [_unwrap(v) for v in a.values]
    if a.names or not values or not all(isinstance(v, V.Scalar) for v in values):
        return None
    dims = {v.unit.dims if v.unit else None for v in values}  # type: ignore[union-attr]  # all Scalars (checked above)
    same = len(dims) == 1 and all(consistent(v, values[0]) for v in values[1:])
    return values[0] if same else None


def _asked(a: V.Items, reference: V.Value, r: V.Scalar) -> V.Value | None:
    """The quantity of a list that a single reference asks for: the one with the reference's name, else the only
    one in the reference's unit (dimension); None when there is no such match or there are several."""
    if isinstance(reference, V.Named) and reference.name in a.names:
        return a.values[a.names.index(reference.name)]
    if r.unit is None or r.unit.dimensionless:
        return None
    same = [v for v in map(_unwrap, a.values) if isinstance(v, V.Scalar) and v.unit and v.unit.dims == r.unit.dims]
    return same[0] if len(same) == 1 else None


def _zero(value: V.Value) -> sympy.Expr | None:
    """``left - right`` of an equation, or of ``y = 2x - 1`` (a name equal to a value without units); else None."""
    if isinstance(value, V.Equation):
        return value.zero.expr
    if isinstance(value, V.Named) and isinstance(value.value, V.Scalar):
        inner = value.value
        if inner.unit is None and inner.num is not None and "/" not in value.name:
            return sympy.Symbol(value.name) - inner.num.expr
    return None


_AXES = {"x": "unitvec_x", "y": "unitvec_y", "z": "unitvec_z"}


def _components(a: V.Scalar, names: tuple[str, ...]) -> V.Items | None:
    """``3\\vec{i} + 4\\vec{j}`` as the components a reference names (``F_x = 3; F_y = 4``), or None."""
    axes = [name.rpartition("_")[2] for name in names]
    if a.num is None or not all(axis in _AXES for axis in axes):
        return None
    expr = a.num.expr
    units = {s.name: s for s in expr.free_symbols if s.name.startswith("unitvec_")}
    if not units:
        return None
    parts = {axis: expr.coeff(units[_AXES[axis]]) if _AXES[axis] in units else sympy.Integer(0) for axis in _AXES}
    rest = sympy.expand(expr - sum(parts[axis] * units.get(_AXES[axis], 0) for axis in _AXES))
    if rest != 0 or any(p.free_symbols & set(units.values()) for p in parts.values()):
        return None
    present = {axis for axis in _AXES if _AXES[axis] in units}
    if not present <= set(axes):
        return None
    return V.Items("named", tuple(_component(parts[axis], a.unit) for axis in axes), names)


def _component(value: sympy.Expr, unit: V.Unit | None) -> V.Scalar:
    if unit is None:
        return V.Scalar(V.Num(value))
    return V.Scalar(V.Num(value), unit, V.mul(V.Num(value), V.Num(unit.scale)))


def equivalent(answer: V.Value, reference: V.Value, rules: Rules) -> Match:
    """Does ``answer`` state ``reference``? (See ``_equivalent``; unions of root series compare by the values they
    cover, sets of reals as sets when the reference is one: ``symbolic.py``, ``conditions.py``.)"""
    match = _equivalent(answer, reference, rules)
    if match.ok:
        return match
    series_a, series_r = _exprs(answer), _exprs(reference)
    if series_a and series_r and max(len(series_a), len(series_r)) > 1:
        return Match(same_series_sets(series_a, series_r))
    if not isinstance(_unwrap(reference), (V.Bracket, V.Items)):
        return match
    return Match(bool(same_set(answer, reference)))


def _exprs(value: V.Value) -> list[sympy.Expr]:
    """The expressions of a value or of a set of values (each a bare number or formula), else []."""
    value = _unwrap(value)
    items = value.values if isinstance(value, V.Items) and value.kind == "set" else (value,)
    found = [_unwrap(v) for v in items]
    if all(isinstance(v, V.Scalar) and v.unit is None and v.num is not None for v in found):
        return [v.num.expr for v in found]  # type: ignore[union-attr]  # Scalars with a num (checked above)
    return []


def _equivalent(answer: V.Value, reference: V.Value, rules: Rules) -> Match:
    """Does ``answer`` state ``reference``? An equation must be the same equation (``y = 2x - 1`` is the equation
    ``y - 2x + 1 = 0`` then); a list of quantities states a single reference by the quantity it asks for
    (``_asked``)."""
    a, r = _unwrap(answer), _unwrap(reference)
    if isinstance(r, V.Equation) or isinstance(a, V.Equation):
        za, zr = _zero(answer), _zero(reference)
        if isinstance(r, V.Equation) or (za is not None and zr is not None):
            return Match(za is not None and zr is not None and same_equation(za, zr))
    if isinstance(a, V.Equation):
        a = _unwrap(a.value)
    if isinstance(r, V.Scalar) and isinstance(a, V.Items):
        a = _unwrap(_same_value(a) or _asked(a, reference, r) or a)
    if isinstance(r, V.Items) and r.names and isinstance(a, V.Scalar):
        a = _components(a, r.names) or a
    if isinstance(r, V.Scalar):
        return scalar_equal(a, r, rules) if isinstance(a, V.Scalar) else NO
    if isinstance(r, V.Text):
        return Match(isinstance(a, V.Text) and a.text == r.text)
    if isinstance(r, V.Bracket):
        return _bracket(a, r, rules)
    if isinstance(r, V.Items):
        return _items(a, r, rules)
    return NO


def _one_value(x: V.Num, y: V.Num) -> bool:
    """Are ``x`` and ``y`` the same number, or is one a decimal that rounds the other (``1,7`` for 5/3), or a
    decimal of at least MIN_SIG digits that cuts it off (``1,666`` for 5/3)?"""
    if x.expr.free_symbols or y.expr.free_symbols:
        return _symbolic(x.expr, y.expr).ok
    with mpmath.workdps(PREC + 10):
        vx, vy = numeric(x.expr), numeric(y.expr)
        if vx is None or vy is None:
            return False
        if _close(vx, vy):
            return True
        for decimal in (n for n in (x, y) if n.ulp is not None):
            ulp = mpmath.mpf(int(decimal.ulp.p)) / int(decimal.ulp.q)  # type: ignore[union-attr]  # ulp set: filtered
            off = abs(vx - vy)
            if off < ulp / 2 or (decimal.sig is not None and decimal.sig >= MIN_SIG and off < ulp):
                return True
        return False


def consistent(offer: V.Value, answer: V.Value) -> bool:
    """Does ``offer`` (a value in a remark after the answer) state the answer again, exactly or rounded? A value
    of another kind (a unit of another dimension, a list) is not a second answer: it counts as consistent."""
    a, b = _unwrap(offer), _unwrap(answer)
    if not (isinstance(a, V.Scalar) and isinstance(b, V.Scalar)):
        return not (isinstance(a, V.Scalar) or isinstance(b, V.Scalar)) or isinstance(a, V.Text)
    if a.unit is not None and b.unit is not None:
        if a.unit.dims != b.unit.dims:
            return True
        pairs = [(a.si, b.si)]
    else:
        pairs = [(a.num, b.num), (a.si, b.num), (a.num, b.si)]
    return any(x is not None and y is not None and _one_value(x, y) for x, y in pairs)
