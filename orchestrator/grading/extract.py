"""Find the final answer in a model's response (pure string work, linear time, safe in the parent process).

Order: the last ``Ответ:``/``Answer:``/``The answer is`` line (any case, bold or not; when it is empty, the next
line or display block, or the list that opens there) or the last ``\\boxed{}``, whichever comes later (a corrected
answer counts as the later one); else the whole response when it is only the answer, else what the last sentence
concludes (``conclusion.py``). The answer is cleaned (``cleaning.py``); ``extract`` also returns the parts of an
answer split over several boxes or ``Ответ:`` items and the unit stated for a bare number (``context.py``), the
values its remarks offer (``hedges.py``) and its line for changes in words (``wording.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .cleaning import boxes, clean, cleaned, content
from .conclusion import conclusion, only_answer
from .context import inline_items, is_bare_number, list_items, run_before, stated_unit, unit_after

MAX_RESPONSE_CHARS = 100_000
MAX_BLOCK_LINES = 12
MAX_CANDIDATES = 32  # only the last answer markers and boxes can hold the final answer

_MARKER = re.compile(
    r"(?<!\w)(?:(?:окончательн|итогов|финальн|правильн)\w{0,4}\s+|final\s+)?(?:ответ|answer)(?:ы|s)?"
    r"(?:\s+на\s+(?:задачу|вопрос(?:\s+задачи)?|эту\s+задачу))?[ \t]*(?:\*\*|__|\*|\})?[ \t]*"
    r"(?::|：|[ \t][—–][ \t]|(?<=\s)(?:is|равен)[ \t]*:?[ \t])",
    re.IGNORECASE,
)
_BARE_MARKER = re.compile(  # "Ответ 42"; "Ответ 1: 5" numbers answers: the colon marks those
    r"^[ \t#*]*(?:ответ|answer)[ \t*]+(?=[-−\d$\\(])(?!\d{1,2}[ \t]*(?::|\)|\.(?!\d)))", re.IGNORECASE | re.MULTILINE
)
_KEYWORDS = ("ответ", "answer")
MAX_PREFIX_CHARS = 40
MAX_KEYWORDS = 500
_PREFIX = re.compile(r"(?<!\w)(?:(?:окончательн|итогов|финальн|правильн)\w{0,4}\s+|final\s+)\Z", re.IGNORECASE)
_HEADING_HEAD = re.compile(r"^[ \t]*#{1,6}[ \t]*\**[ \t]*\Z", re.MULTILINE)
_HEADING = re.compile(
    r"^[ \t]*#{1,6}[ \t]*\**[ \t]*(?:ответ|answer)\w*[ \t]*\**[ \t]*:?[ \t]*\**[ \t]*$", re.IGNORECASE | re.MULTILINE
)
_OPENERS = {"\\[": "\\]", "$$": "$$", "\\begin{equation*}": "\\end{equation*}", "\\begin{equation}": "\\end{equation}"}


def _block(lines: list[str]) -> str:
    """The first non-empty line, or a whole display block when it opens one."""
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            continue
        closer = _OPENERS.get(stripped)
        if closer is None:
            return stripped
        body = []
        for inner in lines[index + 1 : index + 1 + MAX_BLOCK_LINES]:
            if inner.strip() == closer:
                break
            body.append(inner.strip())
        return " ".join(body)
    return ""


@dataclass(frozen=True)
class Extraction:
    """The final answer (``""``: none); ``together``: its parts when it is split over several boxes or ``Ответ:``
    items, joined by ``"; "`` (``""`` when it is not); ``unit``: the unit stated for a bare number in the sentence
    before (``context.py``); ``offers``: the values its remarks offer (``12 (или 13)``, ``hedges.py``); ``worded``:
    the answer line before commentary is cut, or the sentence that states an answer found without a marker (a
    change in words there, ``уменьшилась на 100 Дж``, ``4 м/с, против оси Oy``, is read by ``wording.py``)."""

    answer: str
    together: str = ""
    unit: str = ""
    offers: tuple[str, ...] = ()
    worded: str = ""


@dataclass(frozen=True)
class _Marker:
    start: int
    end: int
    answer: str
    items: tuple[str, ...] = ()  # the list under an empty marker line


def _keyword_positions(text: str) -> list[int] | None:
    """Where ``ответ``/``answer`` occurs (any case), or None when lower-casing changes the text's length."""
    lowered = text.lower()
    if len(lowered) != len(text):
        return None
    found = []
    for word in _KEYWORDS:
        position = lowered.find(word)
        while position >= 0:
            found.append(position)
            position = lowered.find(word, position + len(word))
    return sorted(found)


def _markers_at(text: str, position: int) -> list[tuple[int, int]]:
    """The marker and the heading whose keyword is at ``position`` (what ``finditer`` over the whole text finds;
    a heading's ``#`` must stand within MAX_PREFIX_CHARS of its keyword)."""
    found = []
    window = max(0, position - MAX_PREFIX_CHARS)
    prefix = _PREFIX.search(text, window, position)
    for start in ([prefix.start()] if prefix else []) + [position]:
        match = _MARKER.match(text, start)
        if match:
            found.append((match.start(), match.end()))
            break
    bare = _BARE_MARKER.match(text, text.rfind("\n", 0, position) + 1)
    if bare and bare.start() <= position < bare.end():  # "Ответ 42" opening a line
        found.append((bare.start(), bare.end()))
    head = _HEADING_HEAD.search(text, window, position)
    if head:
        line_end = text.find("\n", position)
        heading = _HEADING.match(text, head.start(), len(text) if line_end < 0 else line_end)
        found += [(heading.start(), heading.end())] if heading else []
    return found


def _marker_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end of marker)`` of the last answer markers and headings (at least MAX_CANDIDATES of them when
    there are that many), in order; only the keywords' surroundings are matched, from the end backwards."""
    positions = _keyword_positions(text)
    if positions is None or len(positions) > MAX_KEYWORDS:  # a whole-text scan is cheaper then
        spans = [(m.start(), m.end()) for m in _MARKER.finditer(text)]
        spans += [(m.start(), m.end()) for m in _BARE_MARKER.finditer(text)]
        return sorted(spans + [(m.start(), m.end()) for m in _HEADING.finditer(text)])
    found: set[tuple[int, int]] = set()
    for position in reversed(positions):
        found.update(_markers_at(text, position))
        if len(found) > MAX_CANDIDATES:
            break
    return sorted(found)


def _marker_answers(text: str) -> list[_Marker]:
    """The last MAX_CANDIDATES answer markers; an empty line after a marker takes the next line or display
    block (and the list that opens there, if any)."""
    found = []
    for start, body in _marker_spans(text)[-MAX_CANDIDATES:]:
        line_end = text.find("\n", body)
        line_end = len(text) if line_end < 0 else line_end
        answer, end, items = text[body:line_end], line_end, []
        if not clean(answer):
            following = text[line_end + 1 : line_end + 4000].split("\n")[: MAX_BLOCK_LINES + 4]
            items = list_items(following)
            answer = "; ".join(clean(item) for item in items) if items else _block(following)
            end = line_end + 1 + len("\n".join(following))
        found.append(_Marker(start, end, answer, tuple(items)))
    return found


def _together(parts: list[str]) -> str:
    if len(parts) < 2:
        return ""
    cleaned = [clean(part) for part in parts]
    return "; ".join(cleaned) if all(cleaned) else ""


def _marker_parts(text: str, markers: list[_Marker], index: int) -> list[str]:
    if markers[index].items:
        return list(markers[index].items)
    spans = [(m.start, m.end) for m in markers]
    return [markers[i].answer for i in run_before(text, spans, index)]


_BOX_NAME = re.compile(r"([a-zA-Z](?:_\{?\w{1,3}\}?)?)\s*=\s*\$?\s*$")


def _box_parts(text: str, spans: list[tuple[int, int]], index: int) -> list[str]:
    """The boxes of the run ending at ``spans[index]``, each with the name written before it (``x = \\boxed{1}``)."""
    parts = []
    for i in run_before(text, spans, index):
        name = _BOX_NAME.search(text, max(0, spans[i][0] - 20), spans[i][0])
        parts.append(f"{name.group(1)} = {content(text, spans[i])}" if name else content(text, spans[i]))
    return parts


def _unit(text: str, start: int, box_end: int, answer: str) -> str:
    """The unit of a bare-number answer: written right after its box (``\\boxed{20}\\ \\text{м/с}``), else
    stated in the sentence before it."""
    if box_end >= 0 and is_bare_number(answer):
        found = unit_after(answer.replace(",", "."), text[box_end : box_end + 60])
        if found is not None:
            return found[1]
    return stated_unit(text[:start], answer)


def extract(response: str) -> Extraction:
    """The final answer stated in ``response`` (cleaned of wrappers), with its parts and stated unit."""
    text = response[-MAX_RESPONSE_CHARS:]
    markers = _marker_answers(text)
    spans = [box for box in boxes(text, MAX_CANDIDATES) if not any(m.start <= box[0] < m.end for m in markers)]
    candidates = [(m.start, m.answer, "marker", i) for i, m in enumerate(markers)]
    candidates += [(box[0], content(text, box), "box", i) for i, box in enumerate(spans)]
    for start, answer, kind, index in sorted(candidates, key=lambda c: c[0], reverse=True):
        found, offered, line = cleaned(answer)
        if found:
            enumerated = _together(inline_items(found))  # "1) 3; 2) 7" is the list 3; 7
            found = enumerated or found
            parts = _marker_parts(text, markers, index) if kind == "marker" else _box_parts(text, spans, index)
            together = _together(parts) or enumerated
            unit = _unit(text, start, spans[index][1] if kind == "box" else -1, found)
            return Extraction(found, together, unit, offered, line)
    if markers:  # only empty markers: the answer is what the text concluded just before the last one
        text = text[: markers[-1].start]
    elif (whole := only_answer(text)) is not None:
        found, offered, _ = cleaned(whole)
        return Extraction(found, offers=offered)
    answer, unit, sentence = conclusion(text)
    return Extraction(clean(answer), unit=unit, worded=sentence)


def extract_answer(response: str) -> str:
    """The final answer stated in ``response``, cleaned of wrappers; ``""`` when there is none."""
    return extract(response).answer
