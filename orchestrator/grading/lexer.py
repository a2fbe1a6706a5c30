"""The tokenizer of the restricted answer language: numbers, names, words, operators and a subset of LaTeX.

It never evaluates anything. Tokens are ``(kind, text)`` with kind one of ``num`` (``12``, ``0.75``, ``1.5e-3``),
``latin`` (a run of Latin letters: a name, a function, a unit, or letters multiplied), ``word`` (Cyrillic),
``name`` (a Greek letter), ``op`` (an operator, with LaTeX spellings mapped to one symbol), ``cmd`` (``frac``,
``sqrt``, ``binom``, ``func:<name>``). Unknown commands and characters raise ``ParseError``.
"""

from __future__ import annotations

import re
import unicodedata

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
    if name == "mathbb" and (reals := re.match(r"\s*\{?\s*R\s*\}?", text[end:])):
        out.append(("op", "ℝ"))
        return end + reals.end()
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
    if name in ("min", "max"):  # v_{\min}: a word in a subscript
        out.append(("latin", name))
        return end
    if name in ("angle", "measuredangle"):
        out.append(("name", "angle"))
        return end
    if name in _VECTOR:
        return _vector(text, end, out)
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


_VECTOR = frozenset({"vec", "hat", "overrightarrow", "vv"})
UNIT_VECTORS = {"i": "unitvec_x", "j": "unitvec_y", "k": "unitvec_z"}


def _vector(text: str, end: int, out: list[Token]) -> int:
    """``\\vec{i}``, ``\\hat j``: a unit vector (a name ``unitvec_x``...); ``\\vec F``: the vector's letter."""
    while end < len(text) and text[end] == " ":
        end += 1
    if end < len(text) and text[end] == "{":
        content, end = _braced(text, end)
    elif end < len(text):
        content, end = text[end], end + 1
    else:
        raise ParseError("a vector without a letter")
    if content.strip() in UNIT_VECTORS:
        out.append(("name", UNIT_VECTORS[content.strip()]))
    else:
        out.extend(tokenize(content))
    return end


def _char(text: str, out: list[Token]) -> None:
    if text == "∠":  # ∠A = 30°: the angle's name
        out.append(("name", "angle"))
    elif text in _CHAR_OPS:
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


_DIGITS = re.compile(r"\d+(?![.,]\d)")


def _index(text: str, pos: int, run: str, out: list[Token]) -> int:
    """Digits written right after a name are its index (``a1``, ``a0²``, ``β0``: a_1, a_0, beta_0), not a factor."""
    digits = _DIGITS.match(text, pos)
    last, before = out[-1], out[-2] if len(out) > 1 else ("", "")
    if digits is None or last[0] not in ("latin", "name") or (last[0] == "latin" and len(last[1]) > 1):
        return pos
    if before[0] == "num" and (len(out) < 3 or out[-3] != ("op", "_")):  # "5 m2": a unit after a number
        return pos
    out.extend([("op", "_"), ("num", digits.group())])
    return digits.end()


def greek_name(letter: str) -> str:
    """The LaTeX name of a Greek letter (``β`` -> ``beta``, ``Δ`` -> ``Delta``), as ``\\beta`` is read."""
    try:
        words = unicodedata.name(letter).split()
    except ValueError:
        return letter
    name = words[-1].lower().replace("lamda", "lambda")
    return name.capitalize() if "CAPITAL" in words else name


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
            pos = _index(text, pos, value, out)
        elif kind == "op2":
            out.append(("op", {"**": "^", "<=": "≤", ">=": "≥", "!=": "≠", "=>": "⇒", "->": "⇒"}[value]))
        elif kind == "greek":
            out.append(("op", "π") if value == "π" else ("name", greek_name(value)))
            pos = _index(text, pos, value, out)
        elif kind == "char":
            _char(value, out)
        elif kind != "ws":
            out.append((kind, value))
        if len(out) > MAX_TOKENS:
            raise ParseError(f"more than {MAX_TOKENS} tokens")
    return _latin_lookalikes(out)


_LOOKALIKES = {"х": "x", "Х": "x", "у": "y", "У": "y"}
_MATH_NEIGHBOURS = ("num", "latin", "name", "cmd")


def _latin_lookalikes(tokens: list[Token]) -> list[Token]:
    """Cyrillic ``х``/``у`` standing alone next to ``=``, an operator or a number are the unknowns x, y
    (``у = 2х + 1``); ``у`` between words stays the preposition."""
    out = list(tokens)
    for index, (kind, text) in enumerate(tokens):
        if kind != "word" or text not in _LOOKALIKES:
            continue
        before = tokens[index - 1] if index else ("", "")
        after = tokens[index + 1] if index + 1 < len(tokens) else ("", "")
        if before[0] in ("op", *_MATH_NEIGHBOURS) or after[0] in ("op", "end") or after == ("", ""):
            out[index] = ("latin", _LOOKALIKES[text])
    return out
