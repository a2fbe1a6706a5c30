"""Numbers written in Russian words and magnitude words after a number (pure functions over lexer tokens).

* ``десять``, ``двадцать пять``, ``сто двенадцать``, ``две тысячи двадцать четыре``, ``полтора``: nominative
  cardinal numbers (the form an answer is written in), read as one integer (or 3/2).
* ``тыс.``, ``тысяч``, ``млн``, ``миллиона``, ``млрд``, ``трлн`` after a number multiply it exactly
  (``2,5 тыс.`` is 2500, a decimal with its last written digit in the hundreds; ``150 млн км`` is 1.5·10^8 km).
  A magnitude is part of the number, never a unit: ``150 млн`` is 1.5·10^8 (the parser keeps the 150 as written,
  which counts only against a bare reference without a magnitude: ``compare.py``). The parser applies them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sympy

Token = tuple[str, str]

_SMALL = {
    "ноль": 0,
    "нуль": 0,
    "один": 1,
    "одна": 1,
    "одно": 1,
    "два": 2,
    "две": 2,
    "три": 3,
    "четыре": 4,
    "пять": 5,
    "шесть": 6,
    "семь": 7,
    "восемь": 8,
    "девять": 9,
    "десять": 10,
    "одиннадцать": 11,
    "двенадцать": 12,
    "тринадцать": 13,
    "четырнадцать": 14,
    "пятнадцать": 15,
    "шестнадцать": 16,
    "семнадцать": 17,
    "восемнадцать": 18,
    "девятнадцать": 19,
}
_TENS = {
    "двадцать": 20,
    "тридцать": 30,
    "сорок": 40,
    "пятьдесят": 50,
    "шестьдесят": 60,
    "семьдесят": 70,
    "восемьдесят": 80,
    "девяносто": 90,
}
_HUNDREDS = {
    "сто": 100,
    "двести": 200,
    "триста": 300,
    "четыреста": 400,
    "пятьсот": 500,
    "шестьсот": 600,
    "семьсот": 700,
    "восемьсот": 800,
    "девятьсот": 900,
}
_HALF = {"полтора": sympy.Rational(3, 2), "полторы": sympy.Rational(3, 2)}
_PARTS = {"половин": 2, "трет": 3, "четверт": 4}  # "половина", "треть", "три четверти": a part alone or counted
_PARTS_RE = re.compile(r"(половин|трет|четв[её]рт)(?:ь|и|а|у|ей|ью|ям)?", re.IGNORECASE)
_ORDINALS = {"перв": 1, "втор": 2, "трет": 3, "четверт": 4, "пят": 5, "шест": 6, "седьм": 7, "восьм": 8, "девят": 9}
_ORDINALS |= {"десят": 10}
_ORDINAL_RE = re.compile(
    r"(перв|втор|трет|четв[её]рт|пят|шест|седьм|восьм|девят|десят)"
    r"(?:ый|ой|ий|ая|ое|ые|ого|ому|ом|ую|ых|ым|ыми|ья|ье|ьего|ьему|ьем|ью|ьи|ьих)",
)
_DENOMINATORS = {"пят": 5, "шест": 6, "седьм": 7, "восьм": 8, "девят": 9, "десят": 10, "сот": 100, "тысячн": 1000}
_DENOMINATOR_RE = re.compile(
    r"(трет|четв[её]рт|пят|шест|седьм|восьм|девят|десят|сот|тысячн)(?:ая|ую|ой|ых|ые|ым|ыми|ья|ьих)", re.IGNORECASE
)
_MAGNITUDE = [
    (re.compile(r"тыс\.?|тысяч[аиу]?", re.IGNORECASE), 3),
    (re.compile(r"млн\.?|миллион(?:а|ов)?", re.IGNORECASE), 6),
    (re.compile(r"млрд\.?|миллиард(?:а|ов)?", re.IGNORECASE), 9),
    (re.compile(r"трлн\.?|триллион(?:а|ов)?", re.IGNORECASE), 12),
]
_ONE_MAGNITUDE = ("тысяча", "миллион", "миллиард")  # "тысяча" alone is 1000
_ORDER = ((_HUNDREDS, 3), (_TENS, 2), (_SMALL, 1))  # within a group: hundreds, then tens, then units


def magnitude(token: Token) -> int | None:
    """The power of ten a magnitude word stands for (``млн`` -> 6), or None."""
    if token[0] != "word":
        return None
    for regex, power in _MAGNITUDE:
        if regex.fullmatch(token[1]):
            return power
    return None


def _group_value(word: str) -> tuple[int, int] | None:
    """``(value, rank)`` of one number word: rank 3 hundreds, 2 tens, 1 units and teens."""
    for table, rank in _ORDER:
        if word in table:
            return table[word], rank
    return None


def number_words(tokens: Sequence[Token], pos: int) -> tuple[sympy.Expr, int] | None:
    """The number written in words from ``tokens[pos]`` on and the position after it, or None.

    Words must descend (``сто двадцать пять``, not ``пять двадцать``); a magnitude word closes a group
    (``две тысячи двадцать четыре``); a group with nothing after it ends the number. A fraction in words is one
    number: ``две пятых``, ``одна восьмая``, ``три четверти``, ``половина``, ``треть``; an ordinal alone is its number
    (``седьмом``, ``третьего``).
    """
    first = tokens[pos][1].lower() if pos < len(tokens) and tokens[pos][0] == "word" else ""
    if first in _HALF:
        return _HALF[first], pos + 1
    ordinal = _ORDINAL_RE.fullmatch(first)
    if ordinal:  # "на седьмом этаже": an ordinal alone is its number
        return sympy.Integer(_ORDINALS[ordinal.group(1).replace("ё", "е")]), pos + 1
    part = _PARTS_RE.fullmatch(first)
    if part:
        return sympy.Rational(1, _PARTS[part.group(1).lower().replace("ё", "е")]), pos + 1
    found = _cardinal(tokens, pos)
    if found is None:
        return None
    value, pos = found
    below = _denominator(tokens[pos][1]) if pos < len(tokens) and tokens[pos][0] == "word" else None
    return (value / below, pos + 1) if below else (value, pos)


def _denominator(word: str) -> int | None:
    """``пятых``, ``восьмая``, ``трети``, ``четвёртых``: a fraction's denominator in words, or None."""
    match = _DENOMINATOR_RE.fullmatch(word) or _PARTS_RE.fullmatch(word)
    if match is None:
        return None
    stem = match.group(1).lower().replace("ё", "е")
    return _DENOMINATORS.get(stem) or _PARTS.get(stem)


def _cardinal(tokens: Sequence[Token], pos: int) -> tuple[sympy.Expr, int] | None:
    total, group, rank, last_power, start = 0, 0, 4, 99, pos
    while pos < len(tokens) and tokens[pos][0] == "word":
        word = tokens[pos][1].lower()
        found = _group_value(word)
        power = magnitude(tokens[pos]) if found is None else None
        if found is not None and found[1] < rank and not (rank == 1 and found[1] == 1):
            group, rank = group + found[0], found[1]
        elif power is not None and power < last_power and (group or word in _ONE_MAGNITUDE):
            total, group, rank, last_power = total + (group or 1) * 10**power, 0, 4, power
        else:
            break
        pos += 1
    if pos == start or (rank == 4 and total == 0):
        return None
    return sympy.Integer(total + group), pos


BOUND_WORDS = frozenset(  # words before a number that bound or change it: "не менее 5", "на 5 больше"
    "не ни более менее больше меньше свыше от до после с кроме между хотя или либо чем минимум максимум на в "
    "плюс минус нет".split()
)


def is_number_word(word: str) -> bool:
    """Is ``word`` a number word (``семь``, ``двадцать``, ``полтора``, ``седьмом``, ``треть``)?"""
    word = word.lower()
    return (
        word in _HALF
        or _group_value(word) is not None
        or bool(_ORDINAL_RE.fullmatch(word) or _PARTS_RE.fullmatch(word))
    )
