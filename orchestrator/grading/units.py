"""Physical units: a table of Russian and English unit names, SI prefixes, and a parser for unit expressions.

A unit is a scale to SI, a dimension vector over (m, kg, s, A, K, mol, cd) and an offset (only degrees Celsius).
``54 км/ч`` is ``Unit(scale=5/18, dims=(1, 0, -1, 0, 0, 0, 0))``; every scale is an exact sympy number.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import sympy

Dims = tuple[int, int, int, int, int, int, int]
NONE: Dims = (0, 0, 0, 0, 0, 0, 0)


def _dims(values: Iterable[int]) -> Dims:
    """Base dimensions computed from one or two ``Dims``: seven in, seven out."""
    return tuple(values)  # type: ignore[return-value]  # seven, zipped from Dims: mypy cannot count them


def _d(m: int = 0, kg: int = 0, s: int = 0, a: int = 0, k: int = 0, mol: int = 0) -> Dims:
    return (m, kg, s, a, k, mol, 0)


@dataclass(frozen=True)
class Unit:
    """A unit: ``si = value * scale + offset``; ``label`` is what was written."""

    scale: sympy.Expr
    dims: Dims
    offset: sympy.Expr = field(default=sympy.Integer(0))
    label: str = field(default="", compare=False)

    @property
    def dimensionless(self) -> bool:
        return self.dims == NONE

    def times(self, other: Unit, power: int = 1) -> Unit:
        """This unit multiplied by ``other**power`` (an offset does not survive a product)."""
        dims = _dims(a + power * b for a, b in zip(self.dims, other.dims))
        return Unit(self.scale * other.scale**power, dims, sympy.Integer(0), f"{self.label}{other.label}")

    def raised(self, power: int) -> Unit:
        return Unit(self.scale**power, _dims(power * d for d in self.dims), sympy.Integer(0), self.label)


R = sympy.Rational
_J = _d(m=2, kg=1, s=-2)
# canonical symbol -> (scale, dims, takes SI prefixes)
_BASE: dict[str, tuple[sympy.Expr, Dims, bool]] = {
    "m": (R(1), _d(m=1), True),
    "g": (R(1, 1000), _d(kg=1), True),
    "s": (R(1), _d(s=1), True),
    "A": (R(1), _d(a=1), True),
    "K": (R(1), _d(k=1), False),
    "mol": (R(1), _d(mol=1), True),
    "N": (R(1), _d(m=1, kg=1, s=-2), True),
    "J": (R(1), _J, True),
    "W": (R(1), _d(m=2, kg=1, s=-3), True),
    "Pa": (R(1), _d(m=-1, kg=1, s=-2), True),
    "C": (R(1), _d(s=1, a=1), True),
    "V": (R(1), _d(m=2, kg=1, s=-3, a=-1), True),
    "Ohm": (R(1), _d(m=2, kg=1, s=-3, a=-2), True),
    "F": (R(1), _d(m=-2, kg=-1, s=4, a=2), True),
    "H": (R(1), _d(m=2, kg=1, s=-2, a=-2), True),
    "T": (R(1), _d(kg=1, s=-2, a=-1), True),
    "Wb": (R(1), _d(m=2, kg=1, s=-2, a=-1), True),
    "Hz": (R(1), _d(s=-1), True),
    "eV": (R("1.602176634e-19"), _J, True),
    "L": (R(1, 1000), _d(m=3), True),
    "cal": (R("4.184"), _J, True),
    "rad": (R(1), NONE, False),
    "deg": (sympy.pi / 180, NONE, False),
    "%": (R(1, 100), NONE, False),
    "min": (R(60), _d(s=1), False),
    "h": (R(3600), _d(s=1), False),
    "day": (R(86400), _d(s=1), False),
    "t": (R(1000), _d(kg=1), False),
    "ц": (R(100), _d(kg=1), False),
    "atm": (R(101325), _d(m=-1, kg=1, s=-2), False),
    "bar": (R(100000), _d(m=-1, kg=1, s=-2), True),
    "mmHg": (R(101325, 760), _d(m=-1, kg=1, s=-2), False),
}
_ALIASES = {
    "м": "m",
    "г": "g",
    "с": "s",
    "сек": "s",
    "А": "A",
    "К": "K",
    "моль": "mol",
    "Н": "N",
    "Дж": "J",
    "Вт": "W",
    "Па": "Pa",
    "Кл": "C",
    "В": "V",
    "Ом": "Ohm",
    "Ω": "Ohm",
    "ohm": "Ohm",
    "Ф": "F",
    "Гн": "H",
    "Тл": "T",
    "Вб": "Wb",
    "Гц": "Hz",
    "эВ": "eV",
    "л": "L",
    "l": "L",
    "кал": "cal",
    "рад": "rad",
    "°": "deg",
    "мин": "min",
    "ч": "h",
    "сут": "day",
    "т": "t",
    "атм": "atm",
    "бар": "bar",
    "mmHg": "mmHg",
    "ммртст": "mmHg",
    "sec": "s",
    "hr": "h",
    "моля": "mol",
    "молей": "mol",
}
_PREFIXES = {
    "Т": 12,
    "Г": 9,
    "М": 6,
    "к": 3,
    "д": -1,
    "с": -2,
    "м": -3,
    "мк": -6,
    "н": -9,
    "п": -12,
    "T": 12,
    "G": 9,
    "M": 6,
    "k": 3,
    "d": -1,
    "c": -2,
    "m": -3,
    "µ": -6,
    "μ": -6,
    "u": -6,
    "n": -9,
    "p": -12,
}
# Units written out in words (any case, any common ending): SI prefixes as words, then the unit's stem.
_WORD_PREFIXES = {
    "тера": 12,
    "гига": 9,
    "мега": 6,
    "кило": 3,
    "деци": -1,
    "санти": -2,
    "милли": -3,
    "микро": -6,
    "нано": -9,
    "пико": -12,
}
_PREFIXABLE_WORDS = {
    "метр": "m",
    "грамм": "g",
    "секунд": "s",
    "джоул": "J",
    "ватт": "W",
    "вольт": "V",
    "ампер": "A",
    "паскал": "Pa",
    "ньютон": "N",
    "герц": "Hz",
    "ом": "Ohm",
    "кулон": "C",
    "фарад": "F",
    "генри": "H",
    "тесл": "T",
    "литр": "L",
    "электронвольт": "eV",
    "вебер": "Wb",
    "калори": "cal",
}
_PLAIN_WORDS = {
    "минут": "min",
    "час": "h",
    "сут": "day",
    "тонн": "t",
    "градус": "deg",
    "процент": "%",
    "кельвин": "K",
    "атмосфер": "atm",
    "радиан": "rad",
    "бар": "bar",
}
_ENDINGS = r"(?:а|ам|ами|ах|е|ей|ом|ов|у|ы|ь|ю|я|ям|и|ки|ок)?"
_RU_WORD = re.compile(
    r"({})?({}){}\.?".format(
        "|".join(_WORD_PREFIXES), "|".join(sorted(_PREFIXABLE_WORDS, key=len, reverse=True)), _ENDINGS
    ),
    re.IGNORECASE,
)
_RU_PLAIN = re.compile(r"({}){}\.?".format("|".join(_PLAIN_WORDS), _ENDINGS), re.IGNORECASE)
_EN_WORDS = [
    (r"(meter|metre)s?", "m"),
    (r"seconds?", "s"),
    (r"minutes?", "min"),
    (r"hours?", "h"),
    (r"grams?", "g"),
    (r"kilograms?", "kg"),
    (r"degrees?", "°"),
    (r"percent", "%"),
    (r"joules?", "J"),
    (r"newtons?", "N"),
]
_EN_RES = [(re.compile(pattern + r"\.?", re.IGNORECASE), target) for pattern, target in _EN_WORDS]
CELSIUS = Unit(R(1), _d(k=1), R("273.15"), "℃")


def _symbol(name: str) -> Unit | None:
    base = _BASE.get(_ALIASES.get(name, name))
    if base is None:
        return None
    return Unit(base[0], base[1], sympy.Integer(0), name)


def _prefixed(name: str) -> Unit | None:
    for prefix in sorted(_PREFIXES, key=len, reverse=True):
        if name.startswith(prefix) and len(name) > len(prefix):
            rest = name[len(prefix) :]
            canonical = _ALIASES.get(rest, rest)
            base = _BASE.get(canonical)
            if base is not None and base[2]:
                return Unit(base[0] * sympy.Integer(10) ** _PREFIXES[prefix], base[1], sympy.Integer(0), name)
    return None


def _word(name: str) -> Unit | None:
    """``метров``, ``килоджоулей``, ``миллиампер``, ``часа``, ``seconds``: a unit written out in words."""
    match = _RU_WORD.fullmatch(name)
    if match:
        scale, dims, _ = _BASE[_PREFIXABLE_WORDS[match.group(2).lower()]]
        power = _WORD_PREFIXES[match.group(1).lower()] if match.group(1) else 0
        return Unit(scale * sympy.Integer(10) ** power, dims, sympy.Integer(0), name)
    match = _RU_PLAIN.fullmatch(name)
    if match:
        return _symbol(_PLAIN_WORDS[match.group(1).lower()])
    for regex, target in _EN_RES:
        if regex.fullmatch(name):
            return lookup(target)
    return None


def lookup(name: str) -> Unit | None:
    """The unit called ``name`` (``км``, ``kPa``, ``метров``, ``%``), or None."""
    if name == "℃":
        return CELSIUS
    name = name[:-1] if name.endswith(".") and len(name) > 1 else name
    return _symbol(name) or _prefixed(name) or _word(name)


def is_unit_name(name: str) -> bool:
    return lookup(name) is not None


@dataclass
class UnitCursor:
    """Tokens ``(kind, text)`` and a position: what the unit-expression parser reads."""

    tokens: Sequence[tuple[str, str]]
    pos: int

    def peek(self, ahead: int = 0) -> tuple[str, str]:
        index = self.pos + ahead
        return self.tokens[index] if index < len(self.tokens) else ("end", "")


_UNIT_KINDS = ("word", "latin", "name", "op")


def _atom(cur: UnitCursor) -> Unit | None:
    kind, text = cur.peek()
    if kind == "op" and text == "(":
        save = cur.pos
        cur.pos += 1
        inner = parse_unit(cur)
        if inner is not None and cur.peek() == ("op", ")"):
            cur.pos += 1
            return inner
        cur.pos = save
        return None
    if kind not in _UNIT_KINDS or (kind == "op" and text not in ("%", "°", "℃", "Ω")):
        return None
    unit = lookup(text)
    if unit is not None:
        cur.pos += 1
    return unit


_EXP_SHAPES = (("#",), ("(", "#", ")"), ("(", "-", "#", ")"), ("-", "#"))
_CLOSE = {"{": "(", "}": ")"}


def _exponent(cur: UnitCursor) -> int:
    """An integer exponent after ``^``: ``^2``, ``^(2)``, ``^{-1}``, ``^-1``; 1 when there is none."""
    if cur.peek() != ("op", "^"):
        return 1
    texts = [_CLOSE.get(cur.peek(i)[1], cur.peek(i)[1]) for i in range(1, 5)]
    for shape in _EXP_SHAPES:
        if all((t.isascii() and t.isdigit()) if s == "#" else t == s for t, s in zip(texts, shape)):
            value = int(texts[shape.index("#")])
            cur.pos += 1 + len(shape)
            return -value if "-" in shape else value
    return 1


_POWER_WORDS = {"квадрате": 2, "кубе": 3}
_POWER_ADJECTIVES = re.compile(r"(квадратн|кубическ)\w{1,3}", re.IGNORECASE)
_PER = ("в", "на", "per")


def _word_at(cur: UnitCursor, ahead: int = 0) -> str:
    kind, text = cur.peek(ahead)
    return text.lower() if kind in ("word", "latin") else ""


def _word_power(cur: UnitCursor) -> int:
    """``в квадрате`` / ``в кубе`` after a unit (``метров в секунду в квадрате``); 1 when there is none."""
    power = _POWER_WORDS.get(_word_at(cur, 1), 1) if _word_at(cur) == "в" else 1
    cur.pos += 2 if power != 1 else 0
    return power


def _factor(cur: UnitCursor) -> Unit | None:
    adjective = _POWER_ADJECTIVES.fullmatch(_word_at(cur))
    start = cur.pos
    cur.pos += 1 if adjective else 0
    unit = _atom(cur)
    if unit is None:
        cur.pos = start
        return None
    if unit.label and _word_at(cur) == "цельсия" and unit.dims == NONE and unit.scale == sympy.pi / 180:
        cur.pos += 1
        return CELSIUS
    power = (
        _exponent(cur)
        * _word_power(cur)
        * (2 if adjective and adjective.group(1).lower() == "квадратн" else 3 if adjective else 1)
    )
    return unit if power == 1 else unit.raised(power)


def parse_unit(cur: UnitCursor) -> Unit | None:
    """Parse ``км/ч``, ``Дж/(кг·К)``, ``м/с^(2)``, ``Н·м``, ``метров в секунду``, ``квадратных метров``;
    advances ``cur`` only on success.

    After ``/`` (or the words ``в``, ``на``, ``per`` between units) every following factor divides
    (``Дж/кг·К`` is J/(kg K), as physics texts mean it).
    """
    start = cur.pos
    unit = _factor(cur)
    if unit is None:
        cur.pos = start
        return None
    sign = 1
    while True:
        save = cur.pos
        kind, text = cur.peek()
        if kind == "op" and text in ("*", "/"):
            sign = -1 if text == "/" else sign
            cur.pos += 1
        elif _word_at(cur) in _PER:
            sign = -1
            cur.pos += 1
        nxt = _factor(cur)
        if nxt is None:
            cur.pos = save
            return unit
        unit = unit.times(nxt, sign)
