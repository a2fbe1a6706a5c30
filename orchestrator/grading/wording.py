"""Changes stated in words, read as values (pure string work, safe in the parent process).

An answer may give a ratio or a sign in words instead of a number. Each reading below is tried against the
reference (any may match); the answer as written is always tried first.

* ``уменьшится в 4 раза`` -> ``1/4`` or ``4`` (the factor asked for); ``увеличится в 4 раза``, ``в 2 раза
  больше``, ``возрастёт вдвое``, ``в два раза больше`` -> ``4``, ``2`` only.
* ``уменьшилась на 150 Дж`` -> ``-150 Дж`` (the change) or ``150 Дж`` (the decrease asked for); ``увеличилась на
  150 Дж`` -> ``150 Дж`` only.
* ``4 м/с против оси Oy`` -> ``-4 м/с`` or ``4 м/с`` (the speed); ``4 м/с вдоль оси Oy`` -> ``4 м/с`` only.

* ``не изменится`` -> the ratio ``1`` or the change ``0``.

An increase never reads as a negative value or a reciprocal: that is the near miss each reading keeps out. The
second reading of a decrease (the factor, the amount, the speed) is ``lenient``: it counts only against a bare
reference; a reference that names the change or the ratio (``\\Delta E = -150 Дж``, ``F_2/F_1 = 4``,
``v_y = -4 м/с``) takes the signed reading only. When an answer states a change in words, its readings replace
the number as written (``check.py``).
"""

from __future__ import annotations

import re

from .numwords import is_number_word

_DOWN = r"(?:уменьш|сниз|сократ|упад|упал|убыв|меньш|пониз|потер|ослаб)"
_UP = r"(?:увелич|возраст|вырос|выраст|больш|повыс|усил|прибав)"
_VALUE = r"(-?\d+(?:[.,]\d+)?(?:/\d+)?|\\frac\{\d+\}\{\d+\}|\d+\s+\d+/\d+|[а-яё]+(?:\s+[а-яё]+)?)"
_TIMES = re.compile(r"(?:^|\s)(?:в\s+)?" + _VALUE + r"\s+раз(?:а|ов)?(?![а-яё])", re.IGNORECASE)
_FOLD = re.compile(r"(?<![а-яё])в(дв|тр|четвер|пятер|шестер|десятер)о[её](?![а-яё])", re.IGNORECASE)
_FOLDS = {"дв": "2", "тр": "3", "четвер": "4", "пятер": "5", "шестер": "6", "десятер": "10"}
_BY = re.compile(r"(?:^|\s)на\s+(-?\d.*)$", re.IGNORECASE)
_AXIS = re.compile(r"^(.*?\d.*?)\s+(против|противоположно|вдоль|по\s+направлению)\b", re.IGNORECASE)
_DOWN_RE = re.compile(_DOWN, re.IGNORECASE)
_UP_RE = re.compile(_UP, re.IGNORECASE)
MAX_READING_CHARS = 200


_SAME = re.compile(r"не\s+измен\w*|останется\s+(?:прежн|тем\s+же|неизменн)\w*|не\s+поменя\w*", re.IGNORECASE)
_CLAUSE = re.compile(r",|\s+и\s+")  # "4 м/с и направлена вниз, против оси": the value ends


def _factor(answer: str) -> str:
    """The factor of ``в 4 раза``, ``в два раза``, ``вдвое``; ``""`` when there is none (words must be a number)."""
    fold = _FOLD.search(answer)
    if fold:
        return _FOLDS[fold.group(1).lower()]
    times = _TIMES.search(answer)
    if times is None:
        return ""
    factor = times.group(1)
    words = factor.split()
    if factor[0].isalpha() and not all(is_number_word(w) for w in words):
        return is_number_word(words[-1]) and words[-1] or ""
    return factor


def _direction(text: str) -> int:
    """-1 when the text says decrease, 1 increase, 0 neither or both."""
    down, up = bool(_DOWN_RE.search(text)), bool(_UP_RE.search(text))
    return 0 if down == up else (-1 if down else 1)


Reading = tuple[str, bool]  # (value text, lenient)


def _pair(signed: str, plain: str, negative: bool) -> tuple[Reading, ...]:
    return ((signed, False), (plain, True)) if negative else ((plain, False),)


_FIRST_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def readings(answer: str, value: str = "") -> tuple[Reading, ...]:
    """``(value, lenient)`` for each value the worded ``answer`` may stand for, or () when it states no change.
    ``value``: the answer as extracted; when it holds a number, a reading of another number is not its change
    (``5 км, на 2 км меньше``: the answer is 5 km)."""
    found = _readings(answer)
    number = _FIRST_NUMBER.search(value)
    if number is None:
        return found
    return tuple(r for r in found if not _FIRST_NUMBER.search(r[0]) or number.group() in _FIRST_NUMBER.findall(r[0]))


def _readings(answer: str) -> tuple[Reading, ...]:
    if len(answer) > MAX_READING_CHARS or not re.search(r"[А-Яа-яЁё]", answer):
        return ()
    if _SAME.search(answer):
        return (("1", False), ("0", False))
    direction = _direction(answer)
    factor = _factor(answer)
    if factor and direction:
        return _pair(f"1/({factor})", factor, direction < 0)
    by = _BY.search(answer)
    if by and direction:
        amount = by.group(1).strip()
        return _pair(f"-{amount}", amount, direction < 0)
    axis = _AXIS.search(answer)
    if axis:
        before = axis.group(1)
        digit = re.search(r"-?\d", before)
        start = digit.start()  # type: ignore[union-attr]  # _AXIS's first group holds a digit
        value = _CLAUSE.split(before[start:], maxsplit=1)[0].strip()
        return _pair(f"-{value}", value, axis.group(2).lower().startswith("против"))
    return ()
