"""Cleaning an answer's text (pure string work, linear time, safe in the parent process).

Wrappers (``$``, ``\\(``, bold, ``\\boxed{}``) go; so do commentary (`` — это ...``, ``, где ...``, ``, оно
достигается при ...``), remarks in brackets (``(в метрах)``, ``(или 13)``: their values are kept apart by
``hedges.py``), the integer parameter of a root series (``, k ∈ Z``), words that link or lead to the value
(``наибольшее значение равно 7``, ``искомое число 34``, ``на седьмом этаже``; never words that bound or change it,
``не менее 34``), and trailing punctuation. ``x — любое число`` becomes the whole real line, ``все x, кроме 2`` the
condition ``x ≠ 2``.
"""

from __future__ import annotations

import re

from .hedges import PARENS, is_remark, offers
from .numwords import BOUND_WORDS, is_number_word

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
_CYRILLIC = re.compile(r"[А-Яа-яЁё]")
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


def content(text: str, box: tuple[int, int]) -> str:
    return text[text.index("{", box[0]) + 1 : box[1] - 1]


def unbox(text: str) -> str:
    """Replace every ``\\boxed{X}`` by ``X``."""
    for box in reversed(boxes(text)):
        text = text[: box[0]] + content(text, box) + text[box[1] :]
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
    if words and not any(w.lower() in BOUND_WORDS or is_number_word(w) for w in words.group().split()):
        return text[words.end() :]  # "искомое число 34" -> "34"; never "не менее 34", "на 5 больше"
    return text


def unwrapped(text: str) -> str:
    return " ".join(_WRAPPERS.sub(" ", unbox(text)).split()).lstrip(_EDGE)  # single spaces keep the regexes linear


def cleaned(answer: str) -> tuple[str, tuple[str, ...], str]:
    """``(clean answer, values its remarks offer, its line for changes in words)`` (see ``clean``,
    ``hedges.offers``; the line is the answer without wrappers and remarks, commentary kept: ``4 м/с, против оси
    Oy``; ``""`` when it has no Cyrillic word to read)."""
    if len(answer) > MAX_CLEAN_CHARS:
        return answer.strip(), (), ""
    line = unwrapped(answer)
    found = offers(line, _tail(line)) if "(" in line or "," in line else ()
    worded = (
        PARENS.sub(lambda m: "" if is_remark(m.group(1)) else m.group(), line).strip() if _CYRILLIC.search(line) else ""
    )
    return _clean_line(line), found, worded


def _tail(line: str) -> str:
    cut = _COMMENTARY.search(line)
    return line[cut.end() :] if cut and cut.start() > 0 else ""


def clean(text: str) -> str:
    """Strip wrappers (``$``, ``\\(``, bold, boxes), commentary, remarks in brackets and trailing punctuation."""
    if len(text) > MAX_CLEAN_CHARS:
        return text.strip()
    return _clean_line(unwrapped(text))


def _clean_line(text: str) -> str:
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
