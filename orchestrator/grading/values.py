"""Parsed answers and bounded arithmetic on them.

Arithmetic never builds a huge number exactly: a result whose exact value would exceed ``CAP_BITS`` becomes a
60-digit float (mpmath has no exponent limit), and anything beyond ``2**MAX_LOG2`` becomes ``HUGE``, a symbol
that absorbs all arithmetic and is equal to nothing. (Unevaluated sympy powers are not safe: sympy re-evaluates
them as soon as they take part in a sum or a quotient.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import mpmath
import sympy

from .lexer import ParseError
from .units import Unit

CAP_BITS = 40_000  # exact integers up to ~12,000 digits
MAX_LOG2 = 1e12  # |value| beyond 2**MAX_LOG2 is not a number anyone writes
MAX_FACTORIAL = 3000
MAX_FUNC_ARG_LOG2 = 1000  # trigonometry of astronomically large arguments is not evaluated
HUGE = sympy.Symbol("HUGE_VALUE")
PREC = 60  # digits of the numeric stand-in for a value too big to hold exactly


@dataclass(frozen=True)
class Num:
    """A number or expression; ``sig``/``ulp``: significant digits and last-digit place of a written decimal."""

    expr: sympy.Expr
    sig: int | None = None
    ulp: sympy.Rational | None = None

    @property
    def decimal(self) -> bool:
        return self.sig is not None


@dataclass(frozen=True)
class Scalar:
    """One value, with the unit it was written in (``si`` is its SI value; ``num`` None for ``1 м 72 см``);
    ``written`` is the number before a magnitude word (150 in ``150 млн км``; ``num`` is 1.5·10^8)."""

    num: Num | None
    unit: Unit | None = None
    si: Num | None = None
    written: Num | None = None


@dataclass(frozen=True)
class Named:
    """``x = 5``: a value with the name it was given."""

    name: str
    value: Value


@dataclass(frozen=True)
class Items:
    """Several values: ``kind`` is ``set`` (roots, listed answers; unordered), ``named`` (distinct unknowns) or
    ``conditions`` (conditions on one unknown that hold together: ``x > 1, x ≠ 2``; see ``conditions.py``).
    ``names``: the name of each value when every one was named (``p_1 = 3, p_2 = 7``); ``braced``: written as a set
    in braces (``\\{2, 5\\}``), never an ordered pair."""

    kind: str
    values: tuple[Value, ...]
    names: tuple[str, ...] = field(default=())
    braced: bool = False


@dataclass(frozen=True)
class Equation:
    """``a + 3z = 0``: an equation in letters (``zero`` is left minus right side); ``value`` is what the answer
    states when it is read as a value (its last side), for a reference that is not an equation."""

    zero: Num
    value: Value


@dataclass(frozen=True)
class Bracket:
    """``(1; 2)``, ``[0; 1)``: a tuple or an interval, compared with its brackets."""

    left: str
    right: str
    values: tuple[Value, ...]


@dataclass(frozen=True)
class Text:
    """A worded answer, lower-cased with punctuation removed."""

    text: str


Value = Scalar | Named | Items | Bracket | Text | Equation
EMPTY = Items("set", ())


def decimal_literal(text: str) -> Num:
    """``0.750`` -> Num(3/4, sig=3, ulp=1/1000); ``12`` -> Num(12)."""
    mantissa, _, exponent = text.lower().partition("e")
    value = sympy.Rational(mantissa) * sympy.Integer(10) ** int(exponent or 0)
    if "." not in mantissa and not exponent:
        return Num(value)
    digits = mantissa.replace(".", "").lstrip("0") or "0"
    decimals = len(mantissa.partition(".")[2])
    ulp = sympy.Rational(1, 10**decimals) * sympy.Integer(10) ** int(exponent or 0)
    return Num(value, len(digits), ulp)


def _power_of_ten(expr: sympy.Expr) -> sympy.Rational | None:
    if not expr.is_Rational or expr <= 0:
        return None
    p, q = int(expr.p), int(expr.q)
    for n in (p, q):
        if n != 10 ** (len(str(n)) - 1):
            return None
    return expr


def _mp(x: sympy.Expr) -> mpmath.mpf | None:
    if x.is_Float:
        return mpmath.mpf(x._mpf_)
    if x.is_Rational:
        return mpmath.mpf(int(x.p)) / int(x.q)
    return None


def numeric(expr: sympy.Expr, digits: int = PREC) -> mpmath.mpc | None:
    """``expr`` at ``digits`` digits as an mpmath complex, or None (unknowns, infinities, unevaluable).

    Call it inside ``mpmath.workdps(...)`` with enough digits for the arithmetic that follows.
    """
    if expr.free_symbols:
        return None
    try:
        re_part, im_part = expr.evalf(digits).as_real_imag()
    except (TypeError, ValueError, ArithmeticError, AttributeError):
        return None
    re_mp, im_mp = _mp(re_part), _mp(im_part)
    if re_mp is None or im_mp is None or not (mpmath.isfinite(re_mp) and mpmath.isfinite(im_mp)):
        return None
    return mpmath.mpc(re_mp, im_mp)


def _float(value: mpmath.mpc) -> sympy.Expr:
    real = sympy.Float(value.real, PREC)
    return real if value.imag == 0 else real + sympy.I * sympy.Float(value.imag, PREC)


def _bounded(expr: sympy.Expr) -> Num:
    """``expr`` as a Num, replaced by its 60-digit value when it is a rational too big to keep exactly."""
    if expr.is_Rational and _size_bits(expr) > CAP_BITS:
        with mpmath.workdps(PREC):
            value = numeric(expr)
        return Num(_float(value)) if value is not None else Num(HUGE)
    return Num(expr)


def _huge(*nums: Num) -> bool:
    return any(n.expr.has(HUGE) for n in nums)


def mul(a: Num, b: Num) -> Num:
    """A product; a decimal times an exact power of ten stays a decimal (``1,5·10^{-3}``)."""
    if _huge(a, b):
        return Num(HUGE)
    expr = a.expr * b.expr
    for dec, other in ((a, b), (b, a)):
        scale = _power_of_ten(other.expr) if dec.decimal and not other.decimal else None
        if scale is not None and _size_bits(expr) <= CAP_BITS:
            return Num(expr, dec.sig, dec.ulp * scale)
    return _bounded(expr)


def neg(a: Num) -> Num:
    return Num(HUGE) if _huge(a) else Num(-a.expr, a.sig, a.ulp)


def add(a: Num, b: Num) -> Num:
    return Num(HUGE) if _huge(a, b) else _bounded(a.expr + b.expr)


def div(a: Num, b: Num) -> Num:
    if _huge(a, b):
        return Num(HUGE)
    if b.expr == 0:
        return Num(sympy.zoo)
    return mul(a, Num(1 / b.expr)) if _power_of_ten(b.expr) else _bounded(a.expr / b.expr)


def log2_abs(expr: sympy.Expr) -> float:
    """log2 of |expr| for a number (inf when unknown or astronomically large)."""
    if expr.has(HUGE) or expr.free_symbols:
        return math.inf
    if expr.is_Integer:
        return float(max(abs(int(expr)).bit_length() - 1, 0)) if expr != 0 else -math.inf
    value = sympy.Abs(expr).evalf(15)
    if not value.is_Number or value.is_zero:
        return -math.inf if value.is_zero else math.inf
    return float(sympy.log(value, 2).evalf(15)) if value.is_finite else math.inf


def _size_bits(expr: sympy.Expr) -> float:
    """Bits of the exact representation of a rational (numerator plus denominator); 0 for anything else."""
    if not expr.is_Rational:
        return 0.0
    return float(abs(int(expr.p)).bit_length() + int(expr.q).bit_length())


def _float_power(b: sympy.Expr, e: sympy.Expr) -> Num:
    with mpmath.workdps(PREC):
        vb, ve = numeric(b), numeric(e)
        if vb is None or ve is None:
            return Num(HUGE)
        value = mpmath.power(vb.real if vb.imag == 0 else vb, ve.real if ve.imag == 0 else ve)
    return Num(_float(mpmath.mpc(value)))


def power(base: Num, exponent: Num) -> Num:
    """``base ** exponent`` without ever computing an exact value beyond CAP_BITS."""
    b, e = base.expr, exponent.expr
    if _huge(base, exponent):
        return Num(HUGE)
    if b.free_symbols or e.free_symbols or b in (0, 1, -1):
        return Num(b**e)
    try:
        e_abs = float(abs(e.evalf(15)))
    except (TypeError, OverflowError):
        return Num(HUGE)
    magnitude = e_abs * abs(log2_abs(b)) if b.is_finite else 0.0
    if math.isnan(magnitude) or magnitude > MAX_LOG2:
        return Num(HUGE)
    size = e_abs * _size_bits(b) if b.is_Rational else magnitude
    if size <= CAP_BITS:
        return Num(b**e)
    return _float_power(b, e)


def factorial(n: Num) -> Num:
    x = n.expr
    if x.is_Integer and x >= 0:
        return Num(sympy.factorial(x)) if x <= MAX_FACTORIAL else Num(HUGE)
    if x.has(HUGE) or (x.is_number and log2_abs(x) > 12):
        return Num(HUGE)
    return Num(sympy.factorial(x))


def binomial(n: Num, k: Num) -> Num:
    a, b = n.expr, k.expr
    if a.has(HUGE) or b.has(HUGE):
        return Num(HUGE)
    if a.is_Integer and b.is_Integer and 0 <= b <= a:
        bits = min(int(b), int(a - b)) * max(math.log2(max(int(a), 2)), 1.0)
        return Num(sympy.binomial(a, b)) if bits <= CAP_BITS else Num(HUGE)
    if a.is_number and b.is_number and max(log2_abs(a), log2_abs(b)) > 12:
        return Num(HUGE)
    return Num(sympy.binomial(a, b))


_FUNCS = {
    "sin": sympy.sin,
    "cos": sympy.cos,
    "tan": sympy.tan,
    "tg": sympy.tan,
    "cot": sympy.cot,
    "ctg": sympy.cot,
    "sec": sympy.sec,
    "csc": sympy.csc,
    "arcsin": sympy.asin,
    "arccos": sympy.acos,
    "arctan": sympy.atan,
    "arctg": sympy.atan,
    "arccot": sympy.acot,
    "arcctg": sympy.acot,
    "sinh": sympy.sinh,
    "cosh": sympy.cosh,
    "tanh": sympy.tanh,
    "exp": sympy.exp,
    "ln": sympy.log,
    "abs": sympy.Abs,
    "floor": sympy.floor,
    "ceil": sympy.ceiling,
    "sqrt": sympy.sqrt,
}
_GENTLE = ("ln", "abs", "sqrt", "floor", "ceil")
_GROWING = ("exp", "sinh", "cosh", "tanh")
MAX_EXP_ARG_LOG2 = 40  # exp(x) for |x| beyond 2**40 would have more than 10**12 digits


def function(name: str, arg: Num, base: Num | None = None) -> Num:
    """``sin``, ``ln``, ``log`` (base ``base``, 10 when None), ``lg``... applied with bounded arguments."""
    x = arg.expr
    if x.has(HUGE) or (base is not None and base.expr.has(HUGE)):
        return Num(HUGE)
    limit = MAX_EXP_ARG_LOG2 if name in _GROWING else MAX_FUNC_ARG_LOG2
    if name not in _GENTLE and name not in ("log", "lg") and x.is_number and log2_abs(x) > limit:
        return Num(HUGE)
    if name in ("log", "lg"):
        return Num(sympy.log(x, base.expr if base is not None else 10))
    if name not in _FUNCS:
        raise ParseError(f"unknown function {name}")
    return Num(_FUNCS[name](x))


def root(radicand: Num, index: Num) -> Num:
    """The ``index``-th root; an odd root of a negative real number is the real root."""
    x, n = radicand.expr, index.expr
    if n.is_Integer and n > 0 and n % 2 == 1 and x.is_number and x.is_negative:
        return Num(-power(Num(-x), Num(1 / n)).expr)
    return power(radicand, Num(1 / n))
