"""A recursive-descent parser from tokens to values (sympy numbers inside): no ``eval``, no ``sympify``.

Grammar (lowest precedence first)::

    answer   := item { (',' | ';' | 'и' | 'или' | '∪' ...) item }
    item     := quantity { ('=' | '≈' | '<' | '≤' | '∈' ...) quantity }
    quantity := expr [unit] { expr unit } [words]          -- ``54 км/ч``, ``1 м 72 см``, ``7 учеников``
    expr     := unary { ('+' | '-') unary }    unary := ('-' | '+') unary | term
    term     := power { ('*' | '/' | implicit) power }      power := postfix ['^' unary]
    primary  := number | name | '(' answer ')' | '\\{' answer '\\}' | \\frac | \\sqrt | \\binom | function ...

``±`` is expanded before parsing: ``1 ± \\sqrt{2}`` is the set of two values.
"""

from __future__ import annotations

import dataclasses
import itertools

import sympy

from . import values as V
from .lexer import ParseError, Token, tokenize
from .numwords import BOUND_WORDS, is_number_word, magnitude
from .primaries import Primaries, as_num
from .relations import combine, relation
from .units import UnitCursor, lookup, parse_unit

MAX_PM = 4
MAX_LABEL_WORDS = 4
SEPARATORS = {",", ";", "∪"}
CONNECTORS = {"и", "или", "либо", "and", "or"}
RELOPS = {"=", "≈", "<", ">", "≤", "≥", "∈", "≠"}


class Parser(Primaries):
    """One parse of one token list; ``units`` enables letter units (``м``, ``km``) after numbers."""

    # -- lists and items -----------------------------------------------------------------------------------------
    def answer(self) -> V.Value:
        items = self.item_list(closers=())
        if self.peek()[0] != "end":
            raise ParseError(f"unexpected {self.peek()[1]!r}")
        return combine(items)

    def is_separator(self) -> bool:
        kind, text = self.peek()
        return (kind == "op" and text in SEPARATORS) or (kind in ("word", "latin") and text.lower() in CONNECTORS)

    def item_list(self, closers: tuple[str, ...]) -> list[V.Value]:
        items: list[V.Value] = []
        if self.peek()[1] in closers and self.peek()[0] == "op":
            return items
        items.append(self.item())
        while self.is_separator():
            self.pos += 1
            if self.peek()[0] == "end" or (self.peek()[0] == "op" and self.peek()[1] in closers):
                break
            items.append(self.item())
        return items

    def item(self) -> V.Value:
        if self.peek() in (("op", "≈"), ("op", "=")):  # "≈ 3,14": an answer given as an approximation
            self.pos += 1
        self.skip_label()
        sides, ops = [self.word_name() or self.quantity()], []
        while self.peek()[0] == "op" and self.peek()[1] in RELOPS:
            ops.append(self.take()[1])
            sides.append(self.quantity())
        return relation(sides, ops)

    def skip_label(self) -> None:
        """Words that label an item (``сила тока I = 0,4 А``, ``дальность 40 м``) are skipped; number words and
        words that bound or change a value (``не менее``, ``на``) are not."""
        count = 0
        while self.peek(count)[0] == "word" and count < MAX_LABEL_WORDS:
            word = self.peek(count)[1].lower().rstrip(".")
            if word in CONNECTORS or word in BOUND_WORDS or is_number_word(word) or magnitude(self.peek(count)):
                return
            count += 1
        follows = self.peek(count)
        named = follows[0] in ("latin", "name") and ("op", "=") in (self.peek(count + 1), self.peek(count + 4))
        if count and (follows[0] == "num" or named):
            self.pos += count

    def word_name(self) -> V.Value | None:
        """A name in Cyrillic before ``=`` (``ГАММА = 10880``) is a name like ``x``."""
        kind, text = self.peek()
        if kind != "word" or self.peek(1) != ("op", "=") or text.lower() in CONNECTORS:
            return None
        self.pos += 1
        return V.Scalar(V.Num(sympy.Symbol(text)))

    # -- quantities with units ---------------------------------------------------------------------------------
    def quantity(self) -> V.Value:
        first = self.expr()
        if isinstance(first, V.Bracket) and first.left + first.right == "()":
            unit = self.unit()
            return V.Bracket("(", ")", tuple(_with_unit(v, unit) for v in first.values)) if unit else first
        if not isinstance(first, V.Num):
            return first
        written, first = first, self.magnitude(first)
        unit = self.unit()
        parts = [(first, unit)]
        while unit is not None and self.peek()[0] == "num":
            more = self.expr()
            unit = self.unit()
            if not isinstance(more, V.Num) or unit is None:
                raise ParseError("a compound quantity needs a unit after every number")
            parts.append((more, unit))
        self.skip_words()
        scalar = _scalar(parts)
        return dataclasses.replace(scalar, written=written) if written is not first else scalar

    def magnitude(self, number: V.Num) -> V.Num:
        """``2,5 тыс.``, ``150 млн``: a magnitude word multiplies the number before it."""
        power = magnitude(self.peek())
        if power is None:
            return number
        self.pos += 1
        return V.mul(number, V.Num(sympy.Integer(10) ** power))

    def unit(self) -> V.Unit | None:
        """The unit after a number: ``%``, ``°``, ``℃`` always, letter units only in unit mode."""
        kind, text = self.peek()
        symbol = kind == "op" and text in ("%", "°", "℃")
        if not (symbol or (self.units and kind in ("word", "latin", "name", "op"))):
            return None
        cursor = UnitCursor(self.toks, self.pos)
        unit = parse_unit(cursor)
        if unit is not None:
            self.pos = cursor.pos
        return unit

    def skip_words(self) -> None:
        while self.peek()[0] == "word" and self.peek()[1].lower() not in CONNECTORS:
            self.pos += 1

    # -- arithmetic ----------------------------------------------------------------------------------------------
    def expr(self) -> V.Value | V.Num:
        left = self.unary()
        while self.peek()[0] == "op" and self.peek()[1] in ("+", "-"):
            op = self.take()[1]
            right = as_num(self.unary())
            left = V.add(as_num(left), right if op == "+" else V.neg(right))
        return left

    def unary(self) -> V.Value | V.Num:
        if self.accept("-"):
            return V.neg(as_num(self.nested(self.unary)))
        if self.accept("+"):
            return self.nested(self.unary)
        return self.term()

    def term(self) -> V.Value | V.Num:
        left = self.power()
        while True:
            if self.peek()[0] == "op" and self.peek()[1] in ("*", "/"):
                op = self.take()[1]
                right = as_num(self.power_or_signed())
                left = V.mul(as_num(left), right) if op == "*" else V.div(as_num(left), right)
            elif self.implicit_follows(left):
                left = V.mul(as_num(left), as_num(self.power()))
            else:
                return left

    def power_or_signed(self) -> V.Value | V.Num:
        return self.nested(self.exponent)

    def implicit_follows(self, left: V.Value | V.Num) -> bool:
        kind, text = self.peek()
        if not isinstance(left, V.Num) or (self.pos and self.toks[self.pos - 1][0] == "word"):
            return False  # nothing multiplies a number written in words: "шесть (6)" is not 36
        if kind == "latin":
            if text.lower() in CONNECTORS:
                return False
            numeric = not left.expr.free_symbols
            return not (self.units and numeric and lookup(text) is not None)
        if kind == "name":
            return not (self.units and not left.expr.free_symbols and lookup(text) is not None)
        if kind == "cmd":
            return True
        return kind == "op" and text in ("(", "π", "√", "⌊", "⌈", "{")

    def power(self) -> V.Value | V.Num:
        base = self.nested(self.postfix)
        if self.accept("^"):
            return V.power(as_num(base), as_num(self.nested(self.exponent)))
        return base

    def exponent(self) -> V.Value | V.Num:
        """What follows ``^``: a signed power (``2^-1``, ``2^3^2`` = 2^9), never a product."""
        if self.accept("-"):
            return V.neg(as_num(self.nested(self.exponent)))
        if self.accept("+"):
            return self.nested(self.exponent)
        return self.power()

    def postfix(self) -> V.Value | V.Num:
        value = self.primary()
        while self.accept("!"):
            value = V.factorial(as_num(value))
        return value


def _scalar(parts: list[tuple[V.Num, V.Unit | None]]) -> V.Scalar:
    (first, unit), *rest = parts
    if unit is None:
        return V.Scalar(first)
    si_parts = [
        V.add(V.mul(num, V.Num(u.scale)), V.Num(u.offset)) if u.offset else V.mul(num, V.Num(u.scale))
        for num, u in parts
    ]
    if not rest:
        return V.Scalar(first, unit, si_parts[0])
    if any(u.dims != unit.dims for _, u in rest):  # type: ignore[union-attr]  # each part has a unit
        raise ParseError("a compound quantity mixes dimensions")
    total = si_parts[0]
    for part in si_parts[1:]:
        total = V.add(total, part)
    return V.Scalar(None, unit, total)


def _with_unit(value: V.Value, unit: V.Unit) -> V.Scalar:
    """A component of ``(3; 4) Н``: the unit after the bracket is every component's."""
    if not (isinstance(value, V.Scalar) and value.unit is None and value.num is not None):
        raise ParseError("a unit after a bracket needs bare numbers inside")
    return _scalar([(value.num, unit)])


def _variants(tokens: list[Token]) -> list[list[Token]]:
    """Every sign choice for ``±``/``∓`` (at most 2**MAX_PM lists)."""
    spots = [i for i, tok in enumerate(tokens) if tok in (("op", "±"), ("op", "∓"))]
    if len(spots) > MAX_PM:
        raise ParseError(f"more than {MAX_PM} ± signs")
    out = []
    for signs in itertools.product((1, -1), repeat=len(spots)):
        variant = list(tokens)
        for spot, sign in zip(spots, signs):
            plus = (sign == 1) == (tokens[spot][1] == "±")
            variant[spot] = ("op", "+" if plus else "-")
        out.append(variant)
    return out


def parse(text: str, units: bool = True) -> V.Value:
    """The value of ``text`` (already normalised); raises ParseError."""
    tokens = tokenize(text)
    if not tokens:
        raise ParseError("empty answer")
    results = [Parser(variant, units).answer() for variant in _variants(tokens)]
    if len(results) == 1:
        return results[0]
    flat: list[V.Value] = []
    for result in results:
        for item in result.values if isinstance(result, V.Items) and result.kind == "set" else (result,):
            if item not in flat:
                flat.append(item)
    return combine(flat)
