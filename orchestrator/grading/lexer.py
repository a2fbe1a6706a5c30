"""The tokenizer of the restricted answer language: numbers, names, words, operators and a subset of LaTeX.

It never evaluates anything. Tokens are ``(kind, text)`` with kind one of ``num`` (``12``, ``0.75``, ``1.5e-3``),
``latin`` (a run of Latin letters: a name, a function, a unit, or letters multiplied), ``word`` (Cyrillic),
``name`` (a Greek letter), ``op`` (an operator, with LaTeX spellings mapped to one symbol), ``cmd`` (``frac``,
``sqrt``, ``binom``, ``func:<name>``). Unknown commands and characters raise ``ParseError``.
"""

from __future__ import annotations

import re

Token = tuple[str, str]
MAX_TOKENS = 1000


class ParseError(ValueError):
    """The text is not in the answer language (the verdict becomes ``unparsed`` or a text comparison)."""


_SKIP = frozenset(
    """left right big Big bigl bigr Bigl Bigr bigg Bigg biggl biggr displaystyle textstyle mathbf
boldsymbol mathit bf it limits nolimits quad qquad , ; : ! space enspace thinspace medspace thickspace
negthinspace mathbb mathcal bm""".split()
) | {" "}
_OPS = {
    "cdot": "*",
    "times": "*",
    "ast": "*",
    "div": "/",
    "pm": "±",
    "mp": "∓",
    "le": "≤",
    "leq": "≤",
    "leqslant": "≤",
    "ge": "≥",
    "geq": "≥",
    "geqslant": "≥",
    "lt": "<",
    "gt": ">",
    "neq": "≠",
    "ne": "≠",
    "approx": "≈",
    "simeq": "≈",
    "thickapprox": "≈",
    "in": "∈",
    "cup": "∪",
    "infty": "∞",
    "emptyset": "∅",
    "varnothing": "∅",
    "%": "%",
    "{": "\\{",
    "}": "\\}",
    "circ": "°",
    "pi": "π",
    "lfloor": "⌊",
    "rfloor": "⌋",
    "lceil": "⌈",
    "rceil": "⌉",
    "lvert": "|",
    "rvert": "|",
    "vert": "|",
    "ldots": "…",
    "dots": "…",
    "cdots": "…",
    "lbrace": "\\{",
    "rbrace": "\\}",
    "langle": "(",
    "rangle": ")",
    "degree": "°",
    "Omega": "Ω",
    "lor": "∪",
    "vee": "∪",
    "wedge": "∧",
    "land": "∧",
}
_CMDS = {
    "frac": "frac",
    "dfrac": "frac",
    "tfrac": "frac",
    "cfrac": "frac",
    "sqrt": "sqrt",
    "binom": "binom",
    "dbinom": "binom",
    "tbinom": "binom",
    "overline": "overline",
}
FUNCS = frozenset(
    """sin cos tan tg cot ctg sec csc arcsin arccos arctan arctg arccot arcctg sinh cosh tanh ln lg
log exp""".split()
)
_TEXT = frozenset("text textrm mathrm mbox operatorname textit textbf textup mathrm textnormal".split())
GREEK = frozenset(
    """alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta lambda mu nu xi rho sigma tau
phi varphi chi psi omega Gamma Delta Theta Lambda Xi Sigma Phi Psi""".split()
)
_CHAR_OPS = {
    "·": "*",
    "×": "*",
    "∙": "*",
    "⋅": "*",
    "÷": "/",
    ":": "/",
    "⩽": "≤",
    "⩾": "≥",
    "∓": "∓",
    "ℝ": "ℝ",
}
_SINGLE = set("+-*/^()[]{},;=<>!|_%°℃±≤≥≠≈∈∪∞∅π√⌊⌋⌈⌉…∧")
_TOKEN = re.compile(
    r"""
 (?P<ws>[\s&~]+)
|(?P<num>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
|(?P<cmd>\\(?:[A-Za-z]+|.))
|(?P<op2>\*\*|<=|>=|!=|=>|->)
|(?P<latin>[A-Za-zµμΩ]+)
|(?P<word>[А-Яа-яЁё]+(?:\.(?!\d))?)
|(?P<greek>[α-ωΑ-Ω])
|(?P<char>.)
""",
    re.VERBOSE | re.DOTALL,
)


def _braced(text: str, start: int) -> tuple[str, int]:
    """The content of the ``{...}`` group opening at ``start`` and the index after it."""
    if start >= len(text) or text[start] != "{":
        raise ParseError("expected '{'")
    depth = 0
    for index in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if depth == 0:
            return text[start + 1 : index], index + 1
    raise ParseError("unbalanced braces")


def _command(name: str, text: str, end: int, out: list[Token]) -> int:
    """Append the tokens of LaTeX command ``\\name``; return where lexing continues."""
    if name in _SKIP:
        if name in ("left", "right") and text.startswith(".", end):
            return end + 1
        return end
    if name in _TEXT:
        while end < len(text) and text[end] == " ":
            end += 1
        content, end = _braced(text, end)
        out.extend(tokenize(content))
        return end
    if name in _OPS:
        out.append(("op", _OPS[name]))
    elif name in _CMDS:
        out.append(("cmd", _CMDS[name]))
    elif name in FUNCS:
        out.append(("cmd", "func:" + name))
    elif name in GREEK:
        out.append(("name", name))
    elif name == "\\":
        out.append(("op", ";"))
    else:
        raise ParseError(f"unknown command \\{name}")
    return end


def _char(text: str, out: list[Token]) -> None:
    if text in _CHAR_OPS:
        out.append(("op", _CHAR_OPS[text]))
    elif text in _SINGLE:
        out.append(("op", text))
    elif text not in "\"'«»“”`":
        raise ParseError(f"unexpected character {text!r}")
    else:
        raise ParseError("quotes are not part of an answer")


_WORDS = FUNCS | {"sqrt", "abs", "floor", "ceil", "pi", "inf", "infty", "and", "or", "per"}


def _latin(run: str) -> list[Token]:
    """A known word (function, unit, constant, connector) stays whole; other runs are letters multiplied."""
    from .units import lookup

    if len(run) == 1 or run.lower() in _WORDS or lookup(run) is not None:
        return [("latin", run)]
    return [("latin", letter) for letter in run]


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text``; raises ParseError on anything outside the answer language."""
    out: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        assert match is not None  # the last alternative matches any character
        kind, value, pos = match.lastgroup or "char", match.group(), match.end()
        if kind == "cmd":
            pos = _command(value[1:], text, pos, out)
        elif kind == "latin":
            out.extend(_latin(value))
        elif kind == "op2":
            out.append(("op", {"**": "^", "<=": "≤", ">=": "≥", "!=": "≠", "=>": "⇒", "->": "⇒"}[value]))
        elif kind == "greek":
            out.append(("op", "π") if value == "π" else ("name", value))
        elif kind == "char":
            _char(value, out)
        elif kind != "ws":
            out.append((kind, value))
        if len(out) > MAX_TOKENS:
            raise ParseError(f"more than {MAX_TOKENS} tokens")
    return out
