"""One check, as the sandboxed worker runs it: parse reference and answer, compare, return a verdict.

Inputs are already extracted and normalised strings (the parent does that); this is where sympy runs.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence

import sympy

from . import values as V
from .compare import Rules, consistent, equivalent
from .lexer import ParseError
from .parser import parse
from .plaintext import denominators

log = logging.getLogger(__name__)

PHYSICS_TOLERANCE = 0.01
Job = tuple  # (answer, reference, domain, tolerance[, together[, offers[, worded]]]): see ``check``

_EMPTY = re.compile(
    r"нет\s+(?:ни\s+одного\s+)?(?:решени|корн|таких|подходящ|действительн|целых|натуральн)|не\s+имеет\s+(?:\w+\s+)?"
    r"(?:решени|корн)|решени[йяе]\s+нет|корней\s+нет|не\s+существует|невозможн|пустое\s+множество|∅|"
    r"no\s+(?:real\s+)?(?:solutions?|roots?)|empty\s+set|has\s+no\s+solutions?|impossible"
)
_INFINITE = re.compile(r"бесконечн|infinitely\s+many|infinite")
_CODE = re.compile(r"[_'\"`=\\{}\[\]*^<>|#@$&]")
_SYNONYMS = {
    "да": "да",
    "yes": "да",
    "верно": "да",
    "можно": "да",
    "может": "да",
    "нет": "нет",
    "no": "нет",
    "неверно": "нет",
    "нельзя": "нет",
    "не может": "нет",
}


def text_value(text: str) -> V.Value | None:
    """A worded answer: the empty set, infinity, yes/no, or normalised text; None if there are no words."""
    if _CODE.search(text):
        return None
    lowered = text.lower().replace("ё", "е")
    if _EMPTY.search(lowered):
        return V.EMPTY
    if _INFINITE.search(lowered):
        return V.Scalar(V.Num(sympy.oo))
    words = re.findall(r"[a-zа-я]+", lowered)
    if not any(len(w) >= 2 for w in words):
        return None
    joined = " ".join(words)
    return V.Text(_SYNONYMS.get(joined, joined))


_FAILURES = (ParseError, RecursionError, ArithmeticError, TypeError, ValueError, AttributeError)


def _parse_math(text: str, units: bool) -> V.Value | None:
    try:
        return parse(denominators(text), units)
    except _FAILURES as exc:
        log.debug("not parsed as math (%s): %.80r", exc, text)
        return None


def _parse_value(text: str, units: bool) -> V.Value | None:
    value = _parse_math(text, units)
    return value if value is not None else text_value(text)


@functools.lru_cache(maxsize=4096)
def parse_reference(reference: str) -> V.Value | None:
    """The reference's value (cached: the same reference is graded for every model). A reference that reads
    as math only without letter units is a formula in letters (``\\sqrt{2gh}``, ``\\frac{1}{2} m v^2``)."""
    value = _parse_math(reference, True)
    if value is None:
        value = _parse_math(reference, False)
    return value if value is not None else text_value(reference)


def has_unknowns(value: V.Value) -> bool:
    """Does the value contain symbols (then the answer's letters are unknowns, never units)?"""
    if isinstance(value, V.Scalar):
        nums = [n for n in (value.num, value.si) if n is not None]
        return any(n.expr.free_symbols - {V.HUGE} for n in nums)
    if isinstance(value, V.Equation):
        return True
    if isinstance(value, V.Named):
        return has_unknowns(value.value)
    if isinstance(value, (V.Items, V.Bracket)):
        return any(has_unknowns(v) for v in value.values)
    return False


def is_collection(value: V.Value) -> bool:
    """Is the reference a set or a list of several values (roots, named unknowns, a tuple)?"""
    while isinstance(value, V.Named):
        value = value.value
    if isinstance(value, V.Items):
        return len(value.values) >= 2
    return isinstance(value, V.Bracket) and value.left + value.right == "()" and len(value.values) >= 2


def _compare(value: V.Value, ref: V.Value, rules: Rules) -> tuple[str, bool]:
    try:
        match = equivalent(value, ref, rules)
    except (ArithmeticError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        log.debug("comparison failed (%s)", exc)
        return "incorrect", False
    return ("correct" if match.ok else "incorrect"), match.approximate


def check(job: Job) -> tuple[str, bool]:
    """``(verdict, approximate)`` for a normalised ``(answer, reference, domain, tolerance[, together])``.

    ``together`` (the parts of an answer split over several boxes or items, see ``context.py``) is compared
    only when the reference is a set or a list and the answer alone is not correct. ``offers`` (the values offered
    in remarks, see ``hedges.py``) turn a correct answer incorrect when one of them is another value; ``worded``
    (the values a change in words stands for, see ``wording.py``) replace the answer as written.
    """
    answer, reference, domain, tolerance = job[:4]
    together = job[4] if len(job) > 4 else None
    offers = job[5] if len(job) > 5 else ()
    worded = job[6] if len(job) > 6 else ()
    ref = parse_reference(reference)
    if ref is None:
        same = answer.strip().lower() == reference.strip().lower()
        return ("correct" if same else "incorrect"), False
    units = not has_unknowns(ref)
    value = _parse_value(answer, units)
    if tolerance is None and domain == "physics":
        tolerance = PHYSICS_TOLERANCE
    rules = Rules(tolerance)
    verdict = _compare(value, ref, rules) if value is not None else ("unparsed", False)
    if verdict[0] != "correct" and together and is_collection(ref):
        parts = _parse_value(together, units)
        joined = _compare(parts, ref, rules) if parts is not None else verdict
        return joined if joined[0] == "correct" else verdict
    if verdict[0] == "correct" and value is not None and _hedged(value, offers, units):
        return "incorrect", False
    return _worded(worded, ref, rules, units) or verdict


def _worded(worded: Sequence[Sequence], ref: V.Value, rules: Rules, units: bool) -> tuple[str, bool] | None:
    """The verdict of a change stated in words: any of its readings (``wording.py``); a reference that names the
    change (``\\Delta E = -150 Дж``) takes the signed reading only. None when no reading parses."""
    strict, parsed = isinstance(ref, V.Named), False
    for text, lenient in worded:
        read = _parse_math(text, units)
        parsed = parsed or read is not None
        found = _compare(read, ref, rules) if read is not None and not (strict and lenient) else ("incorrect", False)
        if found[0] == "correct":
            return found
    return ("incorrect", False) if parsed else None


def _hedged(value: V.Value, offers: Sequence[str], units: bool) -> bool:
    """Does a remark offer a value other than the answer (``12 (или 13)``)? See ``hedges.py``."""
    for offer in offers:
        other = _parse_math(offer, units)
        try:
            if other is not None and not consistent(other, value):
                return True
        except (ArithmeticError, TypeError, ValueError, AttributeError, RecursionError):
            return True
    return False


def warm_up() -> None:
    """Import and exercise sympy once, so a fresh worker answers its first job fast."""
    check(("x = \\frac{\\sqrt{12}}{2} ≈ 1.732", "\\sqrt{3}", "math", None))
    check(("54 км/ч", "15 м/с", "physics", None))
