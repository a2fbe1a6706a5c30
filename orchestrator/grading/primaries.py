"""The primaries of the answer language: numbers, names, LaTeX commands, functions, brackets and braces.

``Primaries`` is the half of the parser that reads one operand; ``parser.Parser`` adds lists, relations,
quantities and arithmetic on top of it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import sympy

from . import values as V
from .lexer import FUNCS, ParseError, Token
from .numwords import number_words

T = TypeVar("T")

MAX_DEPTH = 60
_NAMED_CONSTANTS = {"pi": sympy.pi, "e": sympy.E, "inf": sympy.oo, "infty": sympy.oo}
_LATIN_FUNCS = FUNCS | {"sqrt", "abs", "floor", "ceil"}
_MICRO = {"μ": "mu", "µ": "mu"}  # lexed with Latin letters (for µm, μF), named as \\mu is


def as_num(value: V.Value | V.Num) -> V.Num:
    """The number in ``value``; a set, interval, text or quantity with a unit is not an operand."""
    if isinstance(value, V.Num):
        return value
    if isinstance(value, V.Scalar) and value.unit is None and value.num is not None:
        return value.num
    raise ParseError("a set, interval or text cannot take part in arithmetic")


class Primaries:
    """Token cursor and operand readers; the operator levels (``expr``, ``power``...) come from the subclass."""

    def __init__(self, tokens: list[Token], units: bool) -> None:
        self.toks, self.pos, self.units, self.depth = tokens, 0, units, 0

    def expr(self) -> V.Value | V.Num:
        raise NotImplementedError

    def power(self) -> V.Value | V.Num:
        raise NotImplementedError

    def postfix(self) -> V.Value | V.Num:
        raise NotImplementedError

    def exponent(self) -> V.Value | V.Num:
        raise NotImplementedError

    def item_list(self, closers: tuple[str, ...]) -> list[V.Value]:
        raise NotImplementedError

    # -- token helpers -------------------------------------------------------------------------------------------
    def peek(self, ahead: int = 0) -> Token:
        index = self.pos + ahead
        return self.toks[index] if index < len(self.toks) else ("end", "")

    def take(self) -> Token:
        tok = self.peek()
        self.pos += 1
        return tok

    def accept(self, text: str) -> bool:
        if self.peek() == ("op", text):
            self.pos += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.accept(text):
            raise ParseError(f"expected {text!r} at token {self.pos}")

    def nested(self, func: Callable[[], T]) -> T:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ParseError(f"nesting deeper than {MAX_DEPTH}")
        try:
            return func()
        finally:
            self.depth -= 1

    # -- primaries -----------------------------------------------------------------------------------------------
    def primary(self) -> V.Value | V.Num:
        kind, text = self.take()
        if kind == "num":
            return self.number(text)
        if kind == "latin":
            return self.latin(text)
        if kind == "name":
            return self.symbol(text)
        if kind == "cmd":
            return self.command(text)
        if kind == "op":
            return self.operator(text)
        if kind == "word":
            return self.number_words(text)
        raise ParseError(f"unexpected {text!r}")

    def number_words(self, text: str) -> V.Num:
        """``двадцать пять``, ``две тысячи``: a number written in words (the first word is already taken)."""
        found = number_words(self.toks, self.pos - 1)
        if found is None:
            raise ParseError(f"unexpected {text!r}")
        self.pos = found[1]
        return V.Num(found[0])

    def number(self, text: str) -> V.Num:
        value = V.decimal_literal(text)
        shape = [self.peek(i) for i in range(7)]
        mixed = [t[1] for t in shape] == ["frac", "{", shape[2][1], "}", "{", shape[5][1], "}"]
        if mixed and value.sig is None and shape[2][1].isdigit() and shape[5][1].isdigit() and int(shape[5][1]):
            self.pos += 7
            return V.Num(value.expr + sympy.Rational(int(shape[2][1]), int(shape[5][1])))
        return value

    def latin(self, text: str) -> V.Value | V.Num:
        lower = text.lower()
        if lower in _LATIN_FUNCS and len(text) > 1:
            return self.apply(lower)
        if lower in _NAMED_CONSTANTS and (len(text) > 1 or text == "e"):
            return V.Num(_NAMED_CONSTANTS[lower])
        if len(text) == 1:
            return self.symbol(text)
        product = V.Num(sympy.Integer(1))
        for index, letter in enumerate(text):
            factor = self.symbol(letter) if index == len(text) - 1 else V.Num(sympy.Symbol(_MICRO.get(letter, letter)))
            product = V.mul(product, as_num(factor))
        return product

    def symbol(self, name: str) -> V.Num:
        name = _MICRO.get(name, name)
        if not self.accept("_"):
            return V.Num(sympy.Symbol(name))
        sub = self.subscript()
        if name == "C" and sub.isdigit() and self.peek() == ("op", "^"):
            self.pos += 1
            upper = as_num(self.nested(self.exponent))
            return V.binomial(V.Num(sympy.Integer(int(sub))), upper)
        return V.Num(sympy.Symbol(f"{name}_{sub}"))

    def subscript(self) -> str:
        if not self.accept("{"):
            kind, text = self.take()
            if kind in ("num", "latin", "name", "word"):
                return text
            raise ParseError("bad subscript")
        parts, depth = [], 1
        while depth:
            kind, text = self.take()
            if kind == "end":
                raise ParseError("unbalanced subscript")
            depth += {"{": 1, "}": -1}.get(text, 0) if kind == "op" else 0
            parts.append(text)
        return "".join(parts[:-1])

    def group(self) -> V.Num:
        """A command argument: ``{...}``, one digit (``\\frac12``) or a single primary (``\\sqrt x``)."""
        if self.accept("{"):
            inner = self.nested(self.expr)
            self.expect("}")
            return as_num(inner)
        kind, text = self.peek()
        if kind == "num" and text.isdigit() and len(text) > 1:  # \frac12: one digit per argument
            self.toks[self.pos] = ("num", text[1:])
            return V.Num(sympy.Integer(int(text[0])))
        return as_num(self.nested(self.postfix))

    def command(self, name: str) -> V.Value | V.Num:
        if name == "frac":
            top = self.group()
            return V.div(top, self.group())
        if name == "sqrt":
            index = V.Num(sympy.Integer(2))
            if self.accept("["):
                index = as_num(self.nested(self.expr))
                self.expect("]")
            return V.root(self.group(), index)
        if name == "binom":
            top = self.group()
            return V.binomial(top, self.group())
        if name.startswith("func:"):
            return self.apply(name[5:])
        raise ParseError(f"unsupported \\{name}")

    def apply(self, name: str) -> V.Num:
        base = None
        if name == "log" and self.accept("_"):
            base = self.group()
        exponent = None
        if self.accept("^"):
            exponent = self.group()
        if self.peek() in (("op", "("), ("op", "{")):
            arg = as_num(self.nested(self.primary))
        else:
            arg = self.tight_argument()
        value = V.function(name, arg, base)
        return V.power(value, exponent) if exponent is not None else value

    def tight_argument(self) -> V.Num:
        """A function's argument without brackets: one power, and the letters right after a number in it
        (``\\sin 2\\beta`` is sin(2β), ``\\sin\\alpha \\cos\\alpha`` two functions, ``\\sin\\alpha\\, g`` sin(α)·g)."""
        arg = as_num(self.nested(self.power))
        while not arg.expr.free_symbols and self._letter_next():
            arg = V.mul(arg, as_num(self.nested(self.power)))
        return arg

    def _letter_next(self) -> bool:
        kind, text = self.peek()
        return kind == "name" or (kind == "latin" and len(text) == 1)

    def operator(self, text: str) -> V.Value | V.Num:
        simple = {"π": V.Num(sympy.pi), "∞": V.Num(sympy.oo)}
        if text in simple:
            return simple[text]
        if text == "∅":
            return V.EMPTY
        if text == "ℝ":
            return V.Bracket("(", ")", (V.Scalar(V.Num(-sympy.oo)), V.Scalar(V.Num(sympy.oo))))
        if text == "√":
            return V.root(as_num(self.nested(self.postfix)), V.Num(sympy.Integer(2)))
        if text in ("(", "["):
            return self.bracket(text)
        if text in ("{", "\\{"):
            return self.braces(text)
        closers = {"⌊": ("⌋", "floor"), "⌈": ("⌉", "ceil"), "|": ("|", "abs")}
        if text in closers:
            inner = as_num(self.nested(self.expr))
            self.expect(closers[text][0])
            return V.function(closers[text][1], inner)
        raise ParseError(f"unexpected {text!r}")

    def bracket(self, left: str) -> V.Value | V.Num:
        items = self.nested(lambda: self.item_list(closers=(")", "]")))
        kind, right = self.take()
        if kind != "op" or right not in (")", "]"):
            raise ParseError("unclosed bracket")
        if len(items) == 1 and (left + right) in ("()", "[]"):
            only = items[0]
            if isinstance(only, V.Scalar) and only.unit is None and only.num is not None:
                return only.num
            return only
        return V.Bracket(left, right, tuple(items))

    def braces(self, left: str) -> V.Value | V.Num:
        closer = "}" if left == "{" else "\\}"
        items = self.nested(lambda: self.item_list(closers=(closer,)))
        self.expect(closer)
        if left == "{" and len(items) == 1:
            only = items[0]
            return only.num if isinstance(only, V.Scalar) and only.unit is None and only.num is not None else only
        return V.Items("set", tuple(items), braced=True)
