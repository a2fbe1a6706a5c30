"""What surrounds the final answer: the other parts of an answer split over several boxes or ``Ответ:`` items,
and the unit the text stated for a bare-number answer in the sentence just before it (pure string work).

* Parts: the boxes right before the final ``\\boxed{}`` (``\\boxed{3}, \\boxed{1}, \\boxed{2}``; ``x_1 =
  \\boxed{3}`` and ``и`` between them), the ``Ответ:`` lines right before the final one, the list items under
  an empty ``Ответ:`` line, or items enumerated on the answer line (``1) 3; 2) 7``). Only markup, names, ``=``,
  commas, ``и``/``или`` and labels such as ``Второй корень:`` may stand between two parts: a box in the middle
  of the reasoning is never a part. The grader compares the parts taken together only when the reference is a
  set or a list (``check.py``); a single reference never sees them.
* Stated unit: for an answer that is a bare number, the unit written right after that same number in the last
  sentence before the answer (``...рост среднего брата 172 см.`` then ``Ответ: 172``). Every occurrence of the
  number in that sentence that has a unit must have the same unit; otherwise there is none. (A unit written right
  after a boxed number, ``\\boxed{20}\\ \\text{м/с}``, is that number's own unit: ``unit_after``.)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

from .lexer import ParseError, tokenize
from .normalize import normalize
from .units import UnitCursor, parse_unit

MAX_GAP_CHARS = 80
MAX_PARTS = 12
SENTENCE_WINDOW = 800

_GAP = re.compile(r"[\s$,;.:()\[\]\\{}_=a-zA-Z0-9*#>•\-]*")
_GAP_WORDS = re.compile(
    r"(?<![А-Яа-яЁё])(?:и|или|а также|также|а|(?:корен|корн|решени|значени|перв|втор|трет|четв[её]рт)"
    r"[а-яё]{0,4})(?![А-Яа-яЁё])",
    re.IGNORECASE,
)
_LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)]|[a-zа-я]\))\s+(.+?)\s*$")
_ENUMERATOR = re.compile(r"(?:^|(?<=[;,]))\s*(?:\d{1,2}|[a-zа-я])\)\s+")
_BARE = re.compile(r"-?\d+(?:[.,]\d+)?")
_CLOSERS = ("**", "__", "\\]", "\\)", "$")
_BOUNDARY = re.compile(r"[.!?…](?=\s)")
_NUMBER = re.compile(r"(?<![\d.,])-?\d+(?:(?:[.,]|\{,\})\d+)?(?!\d|[.,]\d)")
_UNIT_TEXT = re.compile(r"[^\n,;=:!?«»\"“”']{0,40}")
_SPACING = re.compile(r"\\[,;: !]|~|\$|\*\*|\\\)|\\\]")
_SENTENCE_END = re.compile(r"\.(?=\s*$|\s+[А-ЯЁA-Z])")
_LATIN_LETTER = re.compile(r"[A-Za-z]")
_SINGLE_LETTER = re.compile(r"[А-Яа-яЁё]\.?")
_ABBREVIATIONS = ("г.", "т.", "с.")  # "г." year, "т.е.", "с." page
_PREPOSITIONS = ("с", "в", "к", "о", "у")  # "5 с половиной"; but "0,15 м от линзы" is metres
_YEAR = re.compile(r"1\d{3}|20\d{2}")


def joins(gap: str) -> bool:
    """May ``gap`` stand between two parts of one answer (markup, names, commas, ``и``)?"""
    if len(gap) > MAX_GAP_CHARS:
        return False
    return _GAP.fullmatch(_GAP_WORDS.sub(" ", gap)) is not None


def run_before(text: str, spans: Sequence[tuple[int, int]], last: int) -> list[int]:
    """Indices of the spans that form one run ending with ``spans[last]`` (joined by ``joins`` gaps)."""
    run = [last]
    while run[0] > 0 and len(run) < MAX_PARTS:
        gap_start, gap_end = spans[run[0] - 1][1], spans[run[0]][0]
        if gap_start > gap_end or not joins(text[gap_start:gap_end]):
            break
        run.insert(0, run[0] - 1)
    return run


def list_items(lines: Sequence[str]) -> list[str]:
    """The items of the list that opens ``lines`` (blank lines skipped): ``- x = 1``, ``2) 5``, ``б) 7``."""
    items = []
    for line in lines:
        if not line.strip():
            continue
        match = _LIST_ITEM.match(line)
        if match is None:
            break
        items.append(match.group(1))
    return items if len(items) >= 2 else []


def inline_items(answer: str) -> list[str]:
    """The items of an answer enumerated on one line: ``1) 3; 2) 7``, ``а) 5, б) 7`` (two or more), else []."""
    if not _ENUMERATOR.match(answer):
        return []
    items = [item.strip(" ;,") for item in _ENUMERATOR.split(answer)[1:]]
    return items if len(items) >= 2 and all(items) else []


def last_sentence(before: str) -> str:
    """The last sentence (or line) of ``before``, without the markup that closes it."""
    tail = before[-SENTENCE_WINDOW:]
    while True:
        stripped = tail.rstrip().rstrip(".!?…:")
        for closer in _CLOSERS:
            stripped = stripped.removesuffix(closer)
        if stripped == tail:
            break
        tail = stripped
    line = tail[tail.rfind("\n") + 1 :]
    cuts = [m.end() for m in _BOUNDARY.finditer(line)]
    return (line[cuts[-1] :] if cuts else line).strip()


def unit_after(number: str, snippet: str) -> tuple[object, str] | None:
    """The unit written at the start of ``snippet`` (right after ``number``): ``(what it is, parseable text)``,
    or None. One Cyrillic letter is not a unit when it is also a preposition and a word follows it (``5 с
    половиной``; ``0,15 м от линзы`` is metres), when it is an abbreviation (``т.е.``) or when it is ``г`` after a
    year (``в 2019 г``)."""
    try:
        text = _UNIT_TEXT.match(_SPACING.sub(" ", snippet)).group()  # type: ignore[union-attr]  # {0,40} always matches
        tokens = tokenize(_SENTENCE_END.split(text, maxsplit=1)[0])
    except ParseError:
        return None
    cursor = UnitCursor(tokens, 0)
    unit = parse_unit(cursor)
    if unit is None:
        return None
    used = [text for _, text in tokens[: cursor.pos]]
    if len(used) == 1 and _LATIN_LETTER.fullmatch(used[0]):  # "2t", "5 m": a letter after a number is a variable
        return None
    if len(used) == 1 and _SINGLE_LETTER.fullmatch(used[0]):
        year = used[0].rstrip(".") == "г" and _YEAR.fullmatch(number)
        preposition = used[0] in _PREPOSITIONS and cursor.peek()[0] == "word"
        if year or used[0].lower() in _ABBREVIATIONS or preposition:
            return None
    return (unit.scale, unit.dims, unit.offset), " ".join(used)


def _number_value(text: str) -> Decimal | None:
    try:
        return Decimal(text.replace("{,}", ".").replace(",", "."))
    except InvalidOperation:
        return None


def is_bare_number(answer: str) -> bool:
    """Is ``answer`` a number with nothing else (``172``, ``-1,5``)?"""
    return _BARE.fullmatch(answer) is not None


def stated_unit(before: str, answer: str) -> str:
    """The unit stated for the bare number ``answer`` in the last sentence of ``before``, or ``""``."""
    if not is_bare_number(answer):
        return ""
    sentence = last_sentence(before)
    if answer.lstrip("-").split(",")[0].split(".")[0] not in sentence:
        return ""
    target = _number_value(answer)
    units: dict[object, str] = {}
    for match in _NUMBER.finditer(sentence):
        if _number_value(match.group()) == target:
            found = unit_after(match.group(), normalize(sentence[match.end() : match.end() + 80]) or "")
            if found is not None:
                units.setdefault(*found)
    return next(iter(units.values())) if len(units) == 1 else ""
