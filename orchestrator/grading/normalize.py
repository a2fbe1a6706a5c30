"""String normalisation for Russian mathematical writing (pure string work, safe in the parent process).

Decimal comma and ``{,}``, thousands separators (space, NBSP, thin space, ``\\,``), unicode minus and en dash,
superscripts (``10⁵`` -> ``10^(5)``), vulgar fractions, degrees, periodic decimals (``0,(3)``, ``0.\\overline{3}``),
mixed numbers (``3 1/4`` -> ``(3+1/4)``), ordinal endings (``7-м`` -> ``7``), outward interval brackets
(``]0, 9[`` -> ``(0, 9)``).
Every regular expression here is linear-time: no nested quantifiers.
"""

from __future__ import annotations

import re
from fractions import Fraction

MAX_ANSWER_CHARS = 2000
MAX_PERIOD_DIGITS = 60

_SPACES = dict.fromkeys(map(ord, "\u00a0\u202f\u2009\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u200a\u3000\t"), " ")
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\ufeff\u00ad"), None)
_MINUS = dict.fromkeys(map(ord, "\u2212\u2013\u2012\ufe63\uff0d\u2010\u2011"), "-")
_SUPER = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻", "0123456789+-")
_SUB = str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789")
_VULGAR = {
    "½": "1/2",
    "⅓": "1/3",
    "⅔": "2/3",
    "¼": "1/4",
    "¾": "3/4",
    "⅕": "1/5",
    "⅖": "2/5",
    "⅗": "3/5",
    "⅘": "4/5",
    "⅙": "1/6",
    "⅚": "5/6",
    "⅛": "1/8",
    "⅜": "3/8",
    "⅝": "5/8",
    "⅞": "7/8",
}

_EM_MINUS = re.compile(r"(?:^|(?<=[\s(\[=;,]))\u2014(?=\d)")
_SUPERSCRIPTS = re.compile(r"[⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻]+")
_SUBSCRIPTS = re.compile(r"[₀₁₂₃₄₅₆₇₈₉]+")
_VULGAR_RE = re.compile("[" + "".join(_VULGAR) + "]")
_DEGREE = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\textdegree|\\degree|º")
_MMHG = re.compile(r"мм\.?\s*рт\.?\s*ст\.?|mm\s*Hg", re.IGNORECASE)
_CELSIUS = re.compile(r"°\s*(?:\\(?:text|mathrm)\s*\{\s*[CС]\s*\}|[CС](?![A-Za-zА-Яа-яЁё]))|℃")
_LATEX_DECIMAL = re.compile(r"(?<=\d)\{([,.])\}(?=\d)")
_PERIODIC = re.compile(r"(\d+)[.,](\d*)(?:\\overline\s*\{(\d+)\}|\((\d+)\))")
_THOUSANDS = re.compile(r"(?<![\d.,])\d{1,3}(?:(?:\\[,;: ]|\\thinspace|[ ~])\d{3})+(?!\d)")
_THOUSANDS_SEP = re.compile(r"\\[,;: ]|\\thinspace|[ ~]")
_EN_THOUSANDS = re.compile(r"(?<![\d.,])\d{1,3}(?:,\d{3}){2,}(?![\d,])")
_DECIMAL_COMMA = re.compile(r"(?<![\d,])(\d+),(\d+)(?!\d|,\d)")
_FRENCH = re.compile(r"([\[\]])([^\[\]()]{1,80}?[,;][^\[\]()]{1,80}?)([\[\]])")
_MIXED = re.compile(r"(?<![\d.,/^_{])(\d+) (\d+)/(\d+)(?![\d.,/^])")
_ORDINAL = re.compile(
    r"(?<=\d)-(?:ый|ой|ий|ая|ое|ые|ого|его|ому|ему|ом|ем|ых|их|ым|им|ыми|ими|го|му|й|я|е|м|х|ю|ти|ми)(?![А-Яа-яЁё])"
)


def _french(match: re.Match[str]) -> str:
    """``]0, 9[`` is (0, 9), ``[0, 9[`` is [0, 9): an outward bracket is an open end."""
    left, body, right = match.groups()
    if left == "[" and right == "]":
        return match.group()
    return ("(" if left == "]" else "[") + body + (")" if right == "[" else "]")


def _mixed(match: re.Match[str]) -> str:
    """``3 1/4`` is 3 + 1/4 when the fraction is proper; anything else is left as written."""
    whole, top, bottom = (int(g) for g in match.groups())
    return f"({whole}+{top}/{bottom})" if 0 < top < bottom else match.group()


def _periodic(match: re.Match[str]) -> str:
    whole, fixed, period = match.group(1), match.group(2), match.group(3) or match.group(4)
    if len(fixed) + len(period) > MAX_PERIOD_DIGITS:
        return match.group()
    value = int(whole) + (Fraction(int(fixed or "0")) + Fraction(int(period), 10 ** len(period) - 1)) / 10 ** len(fixed)
    return f"({value.numerator}/{value.denominator})"


def _unicode(text: str) -> str:
    text = text.translate(_SPACES).translate(_ZERO_WIDTH).translate(_MINUS)
    text = _EM_MINUS.sub("-", text)
    text = _SUPERSCRIPTS.sub(lambda m: "^(" + m.group().translate(_SUPER) + ")", text)
    text = _SUBSCRIPTS.sub(lambda m: "_{" + m.group().translate(_SUB) + "}", text)
    return _VULGAR_RE.sub(lambda m: "\\frac{" + "}{".join(_VULGAR[m.group()].split("/")) + "}", text)


def _numbers(text: str) -> str:
    text = _LATEX_DECIMAL.sub(".", text)
    text = _PERIODIC.sub(_periodic, text)
    text = _THOUSANDS.sub(lambda m: _THOUSANDS_SEP.sub("", m.group()), text)
    text = _EN_THOUSANDS.sub(lambda m: m.group().replace(",", ""), text)
    text = _MIXED.sub(_mixed, _ORDINAL.sub("", text))
    return _DECIMAL_COMMA.sub(r"\1.\2", text)


def normalize(text: str) -> str | None:
    """The parser-ready form of an extracted answer or a reference; None when it is too long to be an answer."""
    if len(text) > MAX_ANSWER_CHARS:
        return None
    text = _unicode(text)
    text = _DEGREE.sub("°", text)
    text = _CELSIUS.sub("℃", text)
    text = _MMHG.sub(" mmHg", text)
    text = _FRENCH.sub(_french, text.replace("\\%", "%"))
    return " ".join(_numbers(text).split())
