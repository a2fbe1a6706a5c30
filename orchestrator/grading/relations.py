"""What ``x = 5``, ``76 + 86 = 162``, ``\\sqrt2 ≈ 1.41``, ``1 < x ≤ 2`` and lists of such items mean as answers."""

from __future__ import annotations

import sympy

from . import values as V
from .lexer import ParseError

_FLIP = {"<": ">", ">": "<", "≤": "≥", "≥": "≤"}


def name_of(side: V.Value) -> str | None:
    """The unknown's name when ``side`` is a bare symbol (``x``, ``a_1``)."""
    plain = isinstance(side, V.Scalar) and side.unit is None and side.num is not None
    expr = side.num.expr if plain else None  # type: ignore[union-attr]  # plain: a Scalar with a num
    return expr.name if isinstance(expr, sympy.Symbol) and expr != V.HUGE else None


def _tuple_names(side: V.Value) -> tuple[str, ...] | None:
    if isinstance(side, V.Bracket) and side.left == "(":
        names = tuple(name_of(v) for v in side.values)
        if all(names):
            return names  # type: ignore[return-value]  # all(names): no None
    return None


def _formula(side: V.Value) -> bool:
    """Is ``side`` an expression in letters (``2\\pi\\sqrt{l/g}``), not a value?"""
    return isinstance(side, V.Scalar) and side.num is not None and bool(side.num.expr.free_symbols - {V.HUGE})


def _equality(sides: list[V.Value], ops: list[str]) -> V.Value:
    """``x = a = b ≈ c`` is ``x = b``: the last exact side, named after a leading unknown; when that side is a
    formula in letters and a value follows (``T = 2\\pi\\sqrt{l/g} ≈ 3,14 с``), that value. ``a + 3z = 0``, a
    sum in letters equal to a value, or letters on both sides, is an equation (``_equation``)."""
    name = name_of(sides[0])
    names = _tuple_names(sides[0])
    head = 1 if (name or names) and len(sides) > 1 else 0
    value = sides[head]
    for op, side in zip(ops[head:], sides[head + 1 :]):
        if op == "≈" and (not _formula(value) or _formula(side)):
            break
        value = side
    if names and isinstance(value, V.Bracket) and len(value.values) == len(names):
        return V.Items("named", value.values, names)
    if not head and len(sides) == 2 and ops == ["="] and _equation(sides[0], sides[1]):
        left, right = sides[0].num, V.neg(sides[1].num)  # type: ignore[union-attr, arg-type]  # _equation: nums
        return V.Equation(V.add(left, right), value)  # type: ignore[arg-type]  # _equation: both sides have a num
    if not head and len(sides) == 2 and _formula(sides[0]):  # T_2/T_1 = 1/4: a value named by a formula
        return V.Named(str(sides[0].num.expr), value)  # type: ignore[union-attr]  # _formula: a Scalar with a num
    return V.Named(name, value) if name and head else value


def _equation(left: V.Value, right: V.Value) -> bool:
    """``a + 3z = 0``, ``x^2 + y^2 = 4``, ``v^2 = 2gh``: a sum in letters, or letters on both sides, or a zero
    side; not ``T_2/T_1 = 1/4`` or ``\\Delta E = -150``, a product of letters named by its value."""
    if not (_formula(left) and isinstance(right, V.Scalar) and right.unit is None and right.num is not None):
        return False
    return left.num.expr.is_Add or _formula(right) or right.num.expr == 0  # type: ignore[union-attr]  # checked above


def _infinite(sign: int) -> V.Scalar:
    return V.Scalar(V.Num(sign * sympy.oo))


def _outside(bound: V.Scalar, closed: bool) -> V.Items:
    """``(-∞; -a) ∪ (a; ∞)`` (closed at ±a when ``closed``)."""
    low = V.Scalar(V.neg(bound.num))  # type: ignore[arg-type]  # _absolute checked its num
    left = V.Bracket("(", "]" if closed else ")", (_infinite(-1), low))
    return V.Items("set", (left, V.Bracket("[" if closed else "(", ")", (bound, _infinite(1)))))


def _abs_name(side: V.Value) -> str | None:
    """The unknown's name when ``side`` is ``|x|``."""
    plain = isinstance(side, V.Scalar) and side.unit is None and side.num is not None
    expr = side.num.expr if plain else None  # type: ignore[union-attr]  # plain: a Scalar with a num
    inner = expr.args[0] if isinstance(expr, sympy.Abs) else None
    return inner.name if isinstance(inner, sympy.Symbol) else None


def _absolute(name: str, bound: V.Value, op: str) -> V.Value:
    """``|x| < a`` -> x ∈ (-a; a); ``|x| ≥ a`` -> x ∈ (-∞; -a] ∪ [a; ∞)."""
    if not (isinstance(bound, V.Scalar) and bound.num is not None and bound.unit is None):
        raise ParseError("a bound of |x| must be a number")
    if op in (">", "≥"):
        return V.Named(name, _outside(bound, op == "≥"))
    low = V.Scalar(V.neg(bound.num))
    return V.Named(name, V.Bracket("[" if op == "≤" else "(", "]" if op == "≤" else ")", (low, bound)))


def _interval(sides: list[V.Value], ops: list[str]) -> V.Value:
    """``x > 2`` -> x ∈ (2; ∞); ``1 < x ≤ 2`` -> x ∈ (1; 2]; ``|x| < 3`` -> x ∈ (-3; 3)."""
    if len(ops) == 1 and (name_of(sides[1]) or _abs_name(sides[1])) and not name_of(sides[0]):
        sides, ops = [sides[1], sides[0]], [_FLIP[ops[0]]]
    if len(ops) == 1 and (absolute := _abs_name(sides[0])):
        return _absolute(absolute, sides[1], ops[0])
    if len(ops) == 1 and (name := name_of(sides[0])):
        bound, op = sides[1], ops[0]
        infinity = V.Scalar(V.Num(sympy.oo if op in (">", "≥") else -sympy.oo))
        closed = "[" if op == "≥" else "]" if op == "≤" else ""
        if op in (">", "≥"):
            return V.Named(name, V.Bracket(closed or "(", ")", (bound, infinity)))
        return V.Named(name, V.Bracket("(", closed or ")", (infinity, bound)))
    if len(ops) == 2 and (name := name_of(sides[1])) and ops[0] in ("<", "≤") and ops[1] in ("<", "≤"):
        left = "[" if ops[0] == "≤" else "("
        right = "]" if ops[1] == "≤" else ")"
        return V.Named(name, V.Bracket(left, right, (sides[0], sides[2])))
    if len(ops) == 2 and name_of(sides[1]) and ops[0] in (">", "≥") and ops[1] in (">", "≥"):
        return _interval(list(reversed(sides)), [_FLIP[ops[1]], _FLIP[ops[0]]])
    raise ParseError("unsupported inequality")


def relation(sides: list[V.Value], ops: list[str]) -> V.Value:
    """The value an item stands for."""
    if not ops:
        return sides[0]
    if all(op in ("=", "≈") for op in ops):
        return _equality(sides, ops)
    if ops == ["∈"] and (name := name_of(sides[0])):
        return V.Named(name, sides[1])
    if all(op in _FLIP for op in ops):
        return _interval(sides, ops)
    if ops == ["≠"] and (name := name_of(sides[0])) and isinstance(sides[1], V.Scalar) and sides[1].num is not None:
        point = sides[1]
        pieces = (V.Bracket("(", ")", (_infinite(-1), point)), V.Bracket("(", ")", (point, _infinite(1))))
        return V.Named(name, V.Items("set", pieces))
    raise ParseError(f"unsupported relation {' '.join(ops)}")


def base_name(name: str) -> str:
    return name.split("_", 1)[0]


def combine(items: list[V.Value]) -> V.Value:
    """One value for a list: a single item, named unknowns (x = 1, y = 2), conditions on one unknown (x > 1,
    x ≠ 2; ``conditions.py`` reads them as one set) or a set (roots, listed answers)."""
    if len(items) == 1:
        return items[0]
    if items and all(isinstance(item, V.Named) for item in items):
        names = tuple(item.name for item in items)  # type: ignore[union-attr]  # all Named
        values = tuple(item.value for item in items)  # type: ignore[union-attr]  # all Named
        if len(set(names)) == 1 and all(isinstance(v, (V.Bracket, V.Items)) for v in values):
            return V.Named(names[0], V.Items("conditions", values))  # x > 1, x ≠ 2: conditions on one unknown
        if len({base_name(n) for n in names}) == len(names):
            return V.Items("named", values, names)
        if len(set(names)) == len(names) and len(set(values)) == len(values):
            return V.Items("set", values, names)  # x_1 = 1, x_2 = 3: roots, their names kept
    values: list[V.Value] = []
    for item in items:
        inner = item.value if isinstance(item, V.Named) else item
        if inner not in values:
            values.append(inner)
    return V.Items("set", tuple(values))
