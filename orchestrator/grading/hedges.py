"""Remarks in brackets after an answer, and the values they offer (pure string work, safe in the parent).

``Ответ: 12 (или 13)`` offers a second value: an answer that hedges is wrong whatever the reference, so the worker
checks every value offered in a remark against the answer (``compare.consistent``): the same value (``0,5 (то есть
1/2)``, ``7 (семь)``, ``20 м/с (примерно 72 км/ч)``) or its own rounding (``5/3 (≈ 1,67)``) is one answer; another
value (``12 (или 13)``, ``7 (возможно, 8)``, ``6 м/с, может быть 6,5 м/с``) is a hedge. A remark without a value
(``(в метрах)``) offers nothing, nor does a remark about the answer (``12 (2 решения)``): without a leading ``или``,
``≈``, ``то есть``... only a bare value (number, number words, unit) is offered.
"""

from __future__ import annotations

import re

from .numwords import is_number_word
from .units import lookup

PARENS = re.compile(r"(?<![/*·^_])\s*\(([^()]*)\)")
MAX_OFFERS = 4
_CYRILLIC = re.compile(r"[А-Яа-яЁё]")
_WITH_UNIT = re.compile(
    r"\s*[-−]?\d+(?:[.,]\d+)?(?:\s*(?:\\cdot|·)\s*10\^\{?-?\d+\}?)?\s*(\\?%|[A-Za-zµΩ°][A-Za-zµΩ/·^0-9°]*)\s*"
)
_CYRILLIC_WORD = re.compile(r"[А-Яа-яЁё]+\.?")
_APPROX = re.compile(r"\s*(?:≈|\\approx|~|≃)")
_LEAD = re.compile(
    r"(?:\s|,|:|≈|\\approx|~|≃|или|либо|т\.\s?е\.|то\s+есть|примерно|приблизительно|около|возможно|"
    r"(?:а\s+)?может(?:\s+быть)?|и(?=\s)|"
    r"в\s+десятичн\w*\s+виде|or|i\.e\.|approximately|about|maybe|possibly)+",
    re.IGNORECASE,
)
_AFTERWORD = re.compile(r"[,;]\s+(?=[А-Яа-яЁёA-Za-z]{2,})")  # "6,28 с, если считать два колебания": the value ends
_HEDGE = re.compile(r"\s*(?:может\s+быть|возможно|или|либо|а\s+может|хотя|or|maybe|possibly)(?![а-яё])", re.I)
_VALUE_START = re.compile(r"[-−+\d\\√(πA-Za-z]")


def _only_value(text: str) -> bool:
    """Is every Cyrillic word of ``text`` a number word or a unit (``семь``, ``72 км/ч``)?"""
    return all(is_number_word(w) or lookup(w) is not None for w in _CYRILLIC_WORD.findall(text))


def is_remark(inner: str) -> bool:
    """Is the bracketed ``inner`` a remark (words, an approximation sign first, or a value with its unit:
    ``0,4 (40 %)``), not part of the formula?"""
    if _CYRILLIC.search(inner) or _APPROX.match(inner):
        return True
    value = _WITH_UNIT.fullmatch(inner)
    return bool(value) and all(lookup(part) for part in re.findall(r"%|[A-Za-zµΩ°]+", value.group(1)))


def offered(inner: str) -> str:
    """The value a remark offers (``или 13`` -> ``13``, ``≈ 1,67`` -> ``1,67``, ``семь`` -> ``семь``), or ``""``."""
    lead = _LEAD.match(inner)
    rest = inner[lead.end() :] if lead else inner
    rest = _AFTERWORD.split(rest, maxsplit=1)[0].strip(" .;,")
    if not rest or (not lead and not _only_value(rest)):
        return ""  # "12 (2 решения)": a remark about the answer, not another value
    first = rest.split()[0].lower()
    if _VALUE_START.match(rest) and re.search(r"\d|\\|π", rest):
        return rest
    return rest if is_number_word(first) else ""


def offers(text: str, tail: str = "") -> tuple[str, ...]:
    """The values offered by the remarks in ``text`` and by a ``tail`` clause that hedges (``может быть 6,5 м/с``,
    ``или 13``; the commentary cut off after the answer), at most MAX_OFFERS."""
    found = [offered(m.group(1)) for m in PARENS.finditer(text) if is_remark(m.group(1))]
    found += [offered(tail)] if _HEDGE.match(tail) else []
    return tuple(o for o in found if o)[:MAX_OFFERS]
