"""Plain-text formulas as physics texts write them (pure string work, run before parsing).

After ``/``, a product written without spaces or signs is the whole denominator: ``v^2/2g`` is v²/(2g),
``a_0^2/3g`` is a_0²/(3g), ``kq/rm`` is kq/(rm). A single factor (``/2``, ``/g``, ``/r^2``) and anything with a
function name in it (``/sin x``) are left as they are; so is ``4/3 \\pi R^3``, where a space follows the number.
"""

from __future__ import annotations

import re

_FACTOR = r"(?:[A-Za-zα-ωΑ-Ω]|\\[A-Za-z]+)(?:_\{[^{}\s]{1,8}\}|_[A-Za-z0-9])?(?:\^\(\d{1,2}\)|\^\{\d{1,2}\}|\^\d)?"
_DENOMINATOR = re.compile(r"/((?:\d+(?:\.\d+)?)?(?:" + _FACTOR + r")+)(?![\w(\\{^_])")
_COUNT = re.compile(_FACTOR)
_FUNCTION_WORDS = re.compile(r"sin|cos|tan|tg|cot|ctg|ln|lg|log|exp|sqrt|arc|frac|pi(?![a-z])")


def _grouped(match: re.Match[str]) -> str:
    body = match.group(1)
    factors = len(_COUNT.findall(body)) + (1 if body[0].isdigit() else 0)
    if factors < 2 or _FUNCTION_WORDS.search(body):
        return match.group()
    return f"/({body})"


def denominators(text: str) -> str:
    """``text`` with every juxtaposed denominator after ``/`` in parentheses."""
    return _DENOMINATOR.sub(_grouped, text) if "/" in text else text
