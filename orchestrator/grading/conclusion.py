"""The answer of a response without an answer marker or a box (pure string work, linear time).

* Only the answer: a one-line response that opens with its value and has a few words at most (``-5``,
  ``1 000``, ``\\frac{10}{9}``, ``$(3,2,7)$``, ``12 см``) is its own answer, finished or not.
* Otherwise, in a finished text, what the last sentence concludes: the last displayed formula, inline formula
  (``$...$``, ``\\(...\\)``) or number, whichever ends last. A number is read whole: a fraction or a decimal at the
  end of a sentence is one number (``2/3.`` is 2/3, ``3,75.`` is 3.75), digits in groups of three are one number
  (``1 000``); a number inside a formula is the formula's. The unit written right after a number or an inline
  formula (``около 2,5 км.``, ``$F = 20$ Н``) is its unit (``context.unit_after``).
"""

from __future__ import annotations

import bisect
import re

from .context import last_sentence, unit_after

MAX_ONLY_CHARS = 200
MAX_ONLY_WORDS = 2
TAIL_CHARS = 20_000
_FINAL_CHARS = '.!?…»"”*'
_WORD = re.compile(r"(?<![\\A-Za-zА-Яа-яЁё])[A-Za-zА-Яа-яЁё]{3,}")
_NUMBER = re.compile(
    r"(?:(?<![\w)\]}])[-−–])?(?<![\w.,/])(?:\d{1,3}(?:[\u00a0\u202f ]\d{3})+(?![\d.,])|\d+(?:[.,]\d+)?)"
    r"(?:/\d+(?:[.,]\d+)?)?(?![\w,/]|\.\d|\s*[=+*^(-])"
)
_APPROXIMATED = re.compile(r"(-?\d+(?:[.,]\d+)?(?:/\d+)?)\s*(?:≈|\\approx|~)\s*\Z")
_INLINE = re.compile(r"(?<![$\\])\$([^$]{1,400})\$(?!\$)|\\\((.{1,400}?)\\\)")


def finished(text: str) -> bool:
    """Does the response end like a finished text (not cut off mid-word or mid-formula at a token limit)?"""
    tail = text.rstrip()
    if tail.endswith("$"):
        return tail.count("$") % 2 == 0
    return bool(tail) and (tail[-1] in _FINAL_CHARS or tail.endswith(("\\]", "\\)")))


def only_answer(text: str) -> str | None:
    """The whole response when it is one short line of at most MAX_ONLY_WORDS words (units count), else None."""
    stripped = text.strip()
    if not stripped or "\n" in stripped or len(stripped) > MAX_ONLY_CHARS or ":" in stripped:
        return None
    if _WORD.match(stripped) or len(_WORD.findall(stripped)) > MAX_ONLY_WORDS:
        return None  # a sentence, or words before the value
    return stripped


def _inside(position: int, starts: list[int], spans: list[re.Match[str]]) -> bool:
    """Is ``position`` inside one of the (sorted, disjoint) inline formulas?"""
    index = bisect.bisect_right(starts, position) - 1
    return index >= 0 and position < spans[index].end()


def _display(text: str) -> tuple[int, str]:
    """``(end, body)`` of the last displayed formula (``\\[...\\]``, ``$$...$$``); end -1 when there is none."""
    best = (-1, "")
    for opener, closer in (("\\[", "\\]"), ("$$", "$$")):
        end = text.rfind(closer)
        start = text.rfind(opener, 0, end) if end > 0 else -1
        if start >= 0 and end > best[0]:
            best = (end + len(closer), text[start + len(opener) : end])
    return best


def conclusion(text: str) -> tuple[str, str, str]:
    """``(answer, unit, sentence)`` concluded by a finished text: the last formula or number, its unit, and the
    sentence that states it (up to the unit, for a change stated in words: ``wording.py``); empty when none."""
    if not finished(text):
        return "", "", ""
    offset = max(0, len(text) - TAIL_CHARS)
    display_end, display = _display(text)
    inline = [m for m in _INLINE.finditer(text, offset) if "$$" not in m.group()]
    starts = [m.start() for m in inline]
    numbers = [m for m in _NUMBER.finditer(text, offset) if not _inside(m.start(), starts, inline)]
    best: tuple[int, str, int] = (display_end, display, -1)
    for found, body in [(m, m.group(1) or m.group(2)) for m in inline[-1:]] + [(m, m.group()) for m in numbers[-1:]]:
        if found.end() > best[0]:
            best = (found.end(), body, found.end())
    end, answer, after = best
    if end < 0 or not answer.strip():
        return "", "", ""
    chain = _APPROXIMATED.search(text, max(0, after - len(answer) - 80), after - len(answer)) if after >= 0 else None
    if chain:  # "2/3 ≈ 0,67.": the value and its approximation, read as the value
        answer = f"{chain.group(1)} ≈ {answer}"
    unit = unit_after(answer.replace(",", "."), text[after : after + 60]) if after >= 0 else None
    unit_text = unit[1] if unit else ""
    sentence = f"{last_sentence(text[: after - len(answer)])} {answer} {unit_text}" if after >= 0 else ""
    return answer, unit_text, sentence.strip()
