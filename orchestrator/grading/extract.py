"""Find the final answer in a model's response (pure string work, linear time, safe in the parent process).

Order: the last ``Ответ:``/``Answer:``/``The answer is`` line (any case, bold or not; when it is empty, the next
line or display block, or the list that opens there) or the last ``\\boxed{}``, whichever comes later (a corrected
answer counts as the later one); else the whole response when it is only the answer, else what the last sentence
concludes (``conclusion.py``). ``extract`` also returns the parts of an answer
split over several boxes or ``Ответ:`` items and the unit stated for a bare number (``context.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .conclusion import conclusion, only_answer
from .context import inline_items, is_bare_number, list_items, run_before, stated_unit, unit_after
from .hedges import PARENS, is_remark, offers
from .numwords import is_number_word

MAX_RESPONSE_CHARS = 100_000
MAX_BLOCK_LINES = 12
MAX_CANDIDATES = 32  # only the last answer markers and boxes can hold the final answer

_MARKER = re.compile(
    r"(?<!\w)(?:(?:окончательн|итогов|финальн|правильн)\w{0,4}\s+|final\s+)?(?:ответ|answer)(?:ы|s)?"
    r"(?:\s+на\s+(?:задачу|вопрос(?:\s+задачи)?|эту\s+задачу))?[ \t]*(?:\*\*|__|\*|\})?[ \t]*"
    r"(?::|：|[ \t][—–][ \t]|(?<=\s)(?:is|равен)[ \t])",
    re.IGNORECASE,
)
_BARE_MARKER = re.compile(r"^[ \t#*]*(?:ответ|answer)[ \t*]+(?=[-−\d$\\(])", re.IGNORECASE | re.MULTILINE)
_KEYWORDS = ("ответ", "answer")
MAX_PREFIX_CHARS = 40
MAX_KEYWORDS = 500
_PREFIX = re.compile(r"(?<!\w)(?:(?:окончательн|итогов|финальн|правильн)\w{0,4}\s+|final\s+)\Z", re.IGNORECASE)
_HEADING_HEAD = re.compile(r"^[ \t]*#{1,6}[ \t]*\**[ \t]*\Z", re.MULTILINE)
_HEADING = re.compile(
    r"^[ \t]*#{1,6}[ \t]*\**[ \t]*(?:ответ|answer)\w*[ \t]*\**[ \t]*:?[ \t]*\**[ \t]*$", re.IGNORECASE | re.MULTILINE
)
_OPENERS = {"\\[": "\\]", "$$": "$$", "\\begin{equation*}": "\\end{equation*}", "\\begin{equation}": "\\end{equation}"}
_COMMENTARY = re.compile(
    r"[ \t]+[—–-][ \t]+(?=[А-Яа-яЁё])|,?[ \t]+где[ \t]|,?[ \t]+(?:т\.[ \t]?е\.|то есть|i\.e\.)"
    # "7, оно достигается при x = 2": a clause after a comma, opened by one of its words
    r"|,[ \t]+(?=(?:оно|она|он|они|это|что|так|поскольку|потому|причём|причем|если|когда|при|где|котор\w*|"
    r"достига\w*|получ\w*|значит|следовательно|откуда|то|на|чем|в|по|а\s+может|может|возможно)(?![а-яё]))"
)
_INTEGER_PARAMETER = re.compile(
    r",?(?:\s|\\[ ,;:!]|~)*[a-zA-Z](?:\s|\\[ ,;:!])*(?:\\in|∈)\s*(?:\\mathbb\s*\{?\s*[ZN]\s*\}?|ℤ|ℕ|[ZN](?![A-Za-z]))"
)
_LINKED = re.compile(
    r"[А-Яа-яЁё][А-Яа-яЁёA-Za-z_{} ,]{0,80}? "
    r"(?:равн[аоы]?|равен|составля\w{0,3}|составит|будет|получается|есть) (?=[-\d\\(a-zA-Z])",
    re.IGNORECASE,
)
_LINKED_EN = re.compile(
    r"[A-Za-z][A-Za-z ,]{0,80}? (?:is|equals|are|will be) (?=[-\d\\(a-zA-Z])",
    re.IGNORECASE,
)
_LEAD = re.compile(
    r"(?:всего|итого|ровно|при|в|во|на|около|примерно|приблизительно|лишь|только|по) "
    r"(?=[-\d\\(a-zA-Z])",
    re.IGNORECASE,
)
MAX_CLEAN_CHARS = 4000
_ANY_NUMBER = re.compile(
    r"(?:[a-zA-Z]\s*(?:[—–:-]|[—–-]\s*это)?\s*)?(?:любое|любые|все|всё|any)\s+(?:действительн\w*\s+|real\s+)?"
    r"(?:числ\w*|значени\w*|numbers?|values?|x)",
    re.IGNORECASE,
)
_ALL_BUT = re.compile(
    r"(?:([a-zA-Z])\s*[—–:-]?\s*)?(?:все|любые|любое|всё|any|all)\s+(?:действительн\w*\s+|real\s+)?"
    r"(?:числа|число|значения|[a-zA-Z]|numbers?)?\s*,?\s*(?:кроме|except)\s+(.{1,80})",
    re.IGNORECASE,
)
_LEAD_WORD = re.compile(r"(?:при|в|во|на|около|примерно|по) ([А-Яа-яЁё]+)", re.IGNORECASE)  # "на седьмом этаже"
_WORDS_BEFORE = re.compile(r"(?:[А-Яа-яЁё]+ ){1,5}(?=[-−\d\\(]|[a-zA-Z]\s*=)")
_BOUNDS = frozenset(
    "не ни более менее больше меньше свыше от до после с кроме между хотя или либо чем минимум максимум на в "
    "плюс минус нет".split()
)
_WRAPPERS = re.compile(
    r"\$|\\\(|\\\)|\\\[|\\\]|(?<![\w)])\*\*|\*\*(?![\w(])|\\displaystyle"
    r"|\\begin\{equation\*?\}|\\end\{equation\*?\}"
)
_EDGE = ' \t\n:*#=}>«»"“”'
_TRAILING = ' \t\n.;,:*«»"“”'


def _brace_pairs(text: str) -> dict[int, int]:
    """``{index of "{": index after its "}"}`` for every balanced pair (one linear pass)."""
    pairs, stack = {}, []
    for index, char in enumerate(text):
        if char == "{":
            stack.append(index)
        elif char == "}" and stack:
            pairs[stack.pop()] = index + 1
    return pairs


def boxes(text: str, last: int | None = None) -> list[tuple[int, int]]:
    """``(start, end)`` of every balanced ``\\boxed{...}``/``\\fbox{...}`` (only the ``last`` ones if given)."""
    opens = [(m.start(), m.end()) for m in re.finditer(r"\\(?:boxed|fbox)\s*(?=\{)", text)]
    if not opens:
        return []
    pairs = _brace_pairs(text)
    found = [(start, pairs[brace]) for start, brace in opens if brace in pairs]
    return found[-last:] if last else found


def _content(text: str, box: tuple[int, int]) -> str:
    return text[text.index("{", box[0]) + 1 : box[1] - 1]


def unbox(text: str) -> str:
    """Replace every ``\\boxed{X}`` by ``X``."""
    for box in reversed(boxes(text)):
        text = text[: box[0]] + _content(text, box) + text[box[1] :]
    return text


def _strip_words(text: str) -> str:
    """Drop words around a stated value: ``наибольшее значение равно 7`` -> ``7``, ``в 1,5 раза`` -> ``1,5 раза``,
    ``искомое число 34`` -> ``34``, ``x = π/2 + πk, k ∈ Z`` -> ``x = π/2 + πk``; words that bound or change the
    value stay (``не менее 34``, ``на 5 больше``)."""
    text = _INTEGER_PARAMETER.sub("", text)
    linked = _LINKED.match(text) or _LINKED_EN.match(text)
    if linked:
        return text[linked.end() :]
    lead = _LEAD.match(text)
    if lead:
        return text[lead.end() :]
    word = _LEAD_WORD.match(text)
    if word and is_number_word(word.group(1)):
        return text[word.start(1) :]
    words = _WORDS_BEFORE.match(text)
    if words and not any(w.lower() in _BOUNDS or is_number_word(w) for w in words.group().split()):
        return text[words.end() :]  # "искомое число 34" -> "34"; never "не менее 34", "на 5 больше"
    return text


def _unwrapped(text: str) -> str:
    return " ".join(_WRAPPERS.sub(" ", unbox(text)).split()).lstrip(_EDGE)  # single spaces keep the regexes linear


def _sentence(answer: str) -> str:
    """The answer line without wrappers and remarks, commentary kept (``4 м/с, против оси Oy``)."""
    if len(answer) > MAX_CLEAN_CHARS:
        return ""
    return PARENS.sub(lambda m: "" if is_remark(m.group(1)) else m.group(), _unwrapped(answer)).strip()


def _offers(answer: str) -> tuple[str, ...]:
    if len(answer) > MAX_CLEAN_CHARS:
        return ()
    text = _unwrapped(answer)
    cut = _COMMENTARY.search(text)
    return offers(text, text[cut.end() :] if cut and cut.start() > 0 else "")


def clean(text: str) -> str:
    """Strip wrappers (``$``, ``\\(``, bold, boxes), commentary, remarks in brackets and trailing punctuation."""
    if len(text) > MAX_CLEAN_CHARS:
        return text.strip()
    text = _unwrapped(text)
    if _ANY_NUMBER.fullmatch(text.rstrip(_TRAILING)):
        return "(-\\infty; +\\infty)"
    but = _ALL_BUT.fullmatch(text.rstrip(_TRAILING))
    if but:  # "все x, кроме 2 и 3" -> "x ≠ 2, x ≠ 3"
        letter = but.group(1) or "x"
        return ", ".join(f"{letter} ≠ {v}" for v in re.split(r"\s*(?:,|;|\sи\s)\s*", but.group(2)) if v)
    cut = _COMMENTARY.search(text)
    if cut and cut.start() > 0:
        text = text[: cut.start()]
    remarks = PARENS.sub(lambda m: "" if is_remark(m.group(1)) else m.group(), text)
    text = _strip_words((remarks if remarks.strip(_TRAILING) else text).strip())
    while text and text[-1] in _TRAILING and not text.endswith(".."):
        text = text[:-1].rstrip()
    return text.lstrip(_EDGE)


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
        parts.append(f"{name.group(1)} = {_content(text, spans[i])}" if name else _content(text, spans[i]))
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
    candidates += [(box[0], _content(text, box), "box", i) for i, box in enumerate(spans)]
    for start, answer, kind, index in sorted(candidates, key=lambda c: c[0], reverse=True):
        cleaned = clean(answer)
        if cleaned:
            enumerated = _together(inline_items(cleaned))  # "1) 3; 2) 7" is the list 3; 7
            cleaned = enumerated or cleaned
            parts = _marker_parts(text, markers, index) if kind == "marker" else _box_parts(text, spans, index)
            together = _together(parts) or enumerated
            unit = _unit(text, start, spans[index][1] if kind == "box" else -1, cleaned)
            return Extraction(cleaned, together, unit, _offers(answer), _sentence(answer))
    if markers:  # only empty markers: the answer is what the text concluded just before the last one
        text = text[: markers[-1].start]
    elif (whole := only_answer(text)) is not None:
        return Extraction(clean(whole), offers=_offers(whole))
    answer, unit, sentence = conclusion(text)
    return Extraction(clean(answer), unit=unit, worded=sentence)


def extract_answer(response: str) -> str:
    """The final answer stated in ``response``, cleaned of wrappers; ``""`` when there is none."""
    return extract(response).answer
