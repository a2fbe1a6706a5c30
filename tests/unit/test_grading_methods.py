"""Issue 29's methods in-process, each acceptance beside its near miss: finding the answer (conclusion.py),
remarks that hedge (hedges.py), changes in words (wording.py), plain-text formulas (plaintext.py), expressions,
series and equations (symbolic.py), sets of reals (conditions.py), and the checks that use them (check.py)."""

from __future__ import annotations

import pytest
import sympy

from orchestrator.grading import check as C
from orchestrator.grading.conclusion import conclusion, only_answer
from orchestrator.grading.extract import extract
from orchestrator.grading.hedges import offers
from orchestrator.grading.lexer import greek_name, tokenize
from orchestrator.grading.normalize import normalize
from orchestrator.grading.plaintext import denominators
from orchestrator.grading.symbolic import same_equation, same_expression, same_series, same_series_sets
from orchestrator.grading.wording import readings

n, k, x, y = sympy.symbols("n k x y")
pi = sympy.pi


def verdict(answer: str, reference: str, domain: str = "math", offered: tuple = (), worded: tuple = ()) -> str:
    job = (normalize(answer), normalize(reference), domain, None, None, [normalize(o) for o in offered], worded)
    return C.check(job)[0]


@pytest.mark.parametrize(
    "text, whole",
    [("-5", "-5"), ("$(3,2,7)$", "$(3,2,7)$"), ("12 см", "12 см"), ("Ответ будет позже", None)],
)
def test_a_short_line_that_opens_with_its_value_is_the_whole_answer(text: str, whole: str | None) -> None:
    assert only_answer(text) == whole


def test_a_sentence_is_not_an_answer_by_itself() -> None:
    assert only_answer("Сила тяжести $F = 20$ Н.") is None
    assert only_answer("Error during API call. Please try again.") is None
    assert only_answer("5\n6") is None


@pytest.mark.parametrize(
    "text, answer, unit",
    [
        ("Поэтому вероятность равна 2/3.", "2/3", ""),
        ("Искомое расстояние около 2,5 км.", "2,5", "км"),
        ("Итого $\\frac{3}{8}$.", "\\frac{3}{8}", ""),
        ("Получили 1 000 деталей.", "1 000", ""),
        ("Сила $F = 20$ Н.", "F = 20", "Н"),
    ],
)
def test_without_a_marker_the_last_sentence_concludes_one_whole_value(text: str, answer: str, unit: str) -> None:
    assert conclusion(text)[:2] == (answer, unit)


def test_a_text_cut_off_concludes_nothing() -> None:
    assert conclusion("Поэтому вероятность равна 2/3 и") == ("", "", "")


@pytest.mark.parametrize(
    "answer, offered",
    [
        ("12 (или 13)", ("13",)),
        ("5/3 (≈ 1,67)", ("1,67",)),
        ("7 (семь)", ("семь",)),
        ("15 (в метрах)", ()),
        ("6 м/с (или 6,5 м/с, если с запасом)", ("6,5 м/с",)),
    ],
)
def test_remarks_offer_their_values(answer: str, offered: tuple) -> None:
    assert offers(answer) == offered


@pytest.mark.parametrize(
    "answer, offered, ref, expected",
    [
        ("12", ("13",), "12", "incorrect"),
        ("5/3", ("1,67",), "5/3", "correct"),
        ("5/3", ("1,7",), "5/3", "correct"),
        ("5/3", ("1,8",), "5/3", "incorrect"),
        ("7", ("семь",), "7", "correct"),
        ("7", ("восемь",), "7", "incorrect"),
        ("20 м/с", ("72 км/ч",), "20 м/с", "correct"),
        ("20 м/с", ("30 м/с",), "20 м/с", "incorrect"),
    ],
)
def test_an_answer_that_offers_another_value_is_a_hedge(answer: str, offered: tuple, ref: str, expected: str) -> None:
    domain = "physics" if "м" in ref else "math"
    assert verdict(answer, ref, domain, offered) == expected


def test_a_hedge_after_a_comma_is_found_by_extraction() -> None:
    assert extract("Ответ: примерно 6 м/с, может быть 6,5 м/с").offers == ("6,5 м/с",)
    assert extract("Ответ: 7, оно достигается при x = 2").offers == ()


@pytest.mark.parametrize(
    "answer, expected",
    [
        ("период уменьшится в 4 раза", (("1/(4)", False), ("4", True))),
        ("период увеличится в 4 раза", (("4", False),)),
        ("давление возрастёт вдвое", (("2", False),)),
        ("энергия уменьшилась на 150 Дж", (("-150 Дж", False), ("150 Дж", True))),
        ("4 м/с и направлена вниз, против оси Oy", (("-4 м/с", False), ("4 м/с", True))),
        ("4 м/с вдоль оси Oy", (("4 м/с", False),)),
        ("в 1,5 раза", ()),
        ("15 Дж", ()),
    ],
)
def test_changes_in_words_read_as_signed_values_and_ratios(answer: str, expected: tuple) -> None:
    assert readings(answer) == expected


@pytest.mark.parametrize(
    "worded, ref, expected",
    [
        ((("1/(4)", False), ("4", True)), "T_2/T_1 = 1/4", "correct"),
        ((("1/(4)", False), ("4", True)), "F_2/F_1 = 4", "incorrect"),
        ((("1/(4)", False), ("4", True)), "4", "correct"),
        ((("4", False),), "1/4", "incorrect"),
        ((("-150 Дж", False), ("150 Дж", True)), "\\Delta E = -150 Дж", "correct"),
        ((("-150 Дж", False), ("150 Дж", True)), "\\Delta E = 150 Дж", "incorrect"),
        ((("150 Дж", False),), "\\Delta E = -150 Дж", "incorrect"),
    ],
)
def test_a_reference_that_names_the_change_takes_the_signed_reading_only(
    worded: tuple, ref: str, expected: str
) -> None:
    assert verdict("изменение", ref, "physics", worded=worded) == expected


@pytest.mark.parametrize(
    "text, grouped",
    [
        ("v^(2)/2g", "v^(2)/(2g)"),
        ("kq/rm", "kq/(rm)"),
        ("kq/r^(2)", "kq/r^(2)"),
        ("4/3 πR^3", "4/3 πR^3"),
        ("\\pi/2 + \\pi k", "\\pi/2 + \\pi k"),
        ("1/sin x", "1/sin x"),
    ],
)
def test_a_juxtaposed_product_after_a_slash_is_the_whole_denominator(text: str, grouped: str) -> None:
    assert denominators(text) == grouped


def test_names_read_as_latex_names_them() -> None:
    assert greek_name("β") == "beta" and greek_name("Δ") == "Delta" and greek_name("λ") == "lambda"
    assert tokenize("a1")[1:] == [("op", "_"), ("num", "1")]
    assert tokenize("5 m2")[1:] == [("latin", "m"), ("num", "2")]  # a unit after a number keeps its digits


@pytest.mark.parametrize(
    "text, normal",
    [("3 1/4", "(3+1/4)"), ("3 5/4", "3 5/4"), ("на 7-м этаже", "на 7 этаже"), ("5-7", "5-7"), ("]0, 9[", "(0, 9)")],
)
def test_mixed_numbers_ordinals_and_outward_brackets(text: str, normal: str) -> None:
    assert normalize(text) == normal


def test_expressions_series_and_equations_compare_by_value() -> None:
    assert same_expression(2 * sympy.sin(x) * sympy.cos(x), sympy.sin(2 * x))
    assert not same_expression(sympy.sin(x) * sympy.cos(x), sympy.sin(2 * x))
    assert same_series(-pi / 2 + pi * k, pi / 2 + pi * n)
    assert not same_series(pi / 2 + 2 * pi * k, pi / 2 + pi * n)
    assert not same_series(n - 1, n + 1)  # a step without pi is no series of roots
    assert same_series_sets([2 * pi * n, pi + 2 * pi * n], [pi * n])
    assert not same_series_sets([2 * pi * n, pi / 2 + pi * n], [pi * n / 2])
    assert same_equation(2 * x + 6 * y, x + 3 * y)
    assert not same_equation(x - 3 * y, x + 3 * y)


@pytest.mark.parametrize(
    "answer, ref, expected",
    [
        ("R = 15 Ом, I = 0.4 А", "15 Ом", "correct"),
        ("R_1 = 15 Ом, R_2 = 20 Ом", "15 Ом", "incorrect"),
        ("15, 20", "15", "incorrect"),
        ("p_1 = 7, p_2 = 3", "p_1 = 3, p_2 = 7", "incorrect"),
        ("p_2 = 7, p_1 = 3", "p_1 = 3, p_2 = 7", "correct"),
        ("\\{2, 5\\}", "(2; 5)", "incorrect"),
        ("0", "a + 3z = 0", "incorrect"),
        ("a = -3z", "a + 3z = 0", "correct"),
        ("2x - y - 1 = 0", "y = 2x - 1", "correct"),
        ("2x - y + 1 = 0", "y = 2x - 1", "incorrect"),
        ("x > 1, x ≠ 2", "(1; 2) \\cup (2; +\\infty)", "correct"),
        ("x > 1", "(1; 2) \\cup (2; +\\infty)", "incorrect"),
        ("|b| < 3", "(-3; 3)", "correct"),
        ("|b| \\le 3", "(-3; 3)", "incorrect"),
        ("x < 1, x > 3", "(-\\infty; 1) \\cup (3; +\\infty)", "correct"),
        ("3\\vec{i} + 4\\vec{j}", "F_x = 3; F_y = 4", "correct"),
        ("4\\vec{i} + 3\\vec{j}", "F_x = 3; F_y = 4", "incorrect"),
        ("40 %", "0.4", "correct"),
        ("0.4 %", "0.4", "incorrect"),
        ("28 %", "28", "correct"),
    ],
)
def test_structures_compare_by_name_unit_equation_and_set(answer: str, ref: str, expected: str) -> None:
    domain = "physics" if "Ом" in ref else "math"
    assert verdict(answer, ref, domain) == expected


@pytest.mark.parametrize(
    "response, answer",
    [
        ("Решение.\nОтвет 42", "42"),
        ("Решение.\n**Ответ** -7", "-7"),
        ("В ответе 3 числа. Итого 5.", "5"),  # "ответе" mid-sentence is no marker
        ("Решение.\nОтвет 2.5", "2.5"),
        ("Решение.\nОтвет 1: 5\nОтвет 2: 7", ""),  # numbered answers are no bare marker: "2: 7" is not 2/7
        ("Получаем 2/3 ≈ 0,67.", "2/3 ≈ 0,67"),
    ],
)
def test_an_answer_line_without_a_colon_and_an_approximation_in_prose(response: str, answer: str) -> None:
    assert extract(response).answer == answer


@pytest.mark.parametrize(
    "answer, ref, expected",
    [
        ("две пятых", "0.4", "correct"),
        ("две пятых", "0.2", "incorrect"),
        ("половина", "1/2", "correct"),
        ("двадцать пять", "25", "correct"),
        ("∠A = 30°", "30", "correct"),
        ("∠A = 60°", "30", "incorrect"),
        ("(-1)^n \\frac{\\pi}{6} + \\pi n", "\\frac{\\pi}{6} + 2\\pi n; \\frac{5\\pi}{6} + 2\\pi n", "correct"),
        ("(-1)^n \\frac{\\pi}{6} + \\pi n", "\\frac{\\pi}{6} + 2\\pi n", "incorrect"),
    ],
)
def test_fractions_in_words_angles_and_alternating_series(answer: str, ref: str, expected: str) -> None:
    assert verdict(answer, ref) == expected


def test_unchanged_reads_as_ratio_one_or_change_zero() -> None:
    assert readings("период не изменится") == (("1", False), ("0", False))
    assert readings("период увеличится") == ()


@pytest.mark.parametrize(
    "answer, ref, expected",
    [
        ("сила тока I = 0.4 А, напряжение U = 6 В", "6 В", "correct"),
        ("сила тока I = 0.4 А, напряжение U = 5 В", "6 В", "incorrect"),
        ("время 2 с, дальность 40 м", "40 м", "correct"),
        ("время 2 с, не менее 40 м", "40 м", "incorrect"),  # a bound is no label
        ("\\frac{1}{2} или 0.5", "1/2", "correct"),
        ("\\frac{1}{2} или 0.6", "1/2", "incorrect"),
        ("2 с и 40 м", "2 с", "correct"),
    ],
)
def test_labels_before_items_and_one_value_in_two_forms(answer: str, ref: str, expected: str) -> None:
    assert verdict(answer, ref, "physics" if "В" in ref or "м" in ref or "с" in ref else "math") == expected


@pytest.mark.parametrize(
    "answer, offered",
    [("0,4 (40 %)", ("40 %",)), ("0,4 (45 %)", ("45 %",)), ("√(2gh)", ()), ("2 (3)", ())],
)
def test_a_value_with_its_unit_in_brackets_is_a_remark(answer: str, offered: tuple) -> None:
    assert offers(answer) == offered


def test_a_remark_agrees_when_it_rounds_or_cuts_off_the_answer() -> None:
    assert verdict("0.4", "0.4", offered=("40 %",)) == "correct"
    assert verdict("0.4", "0.4", offered=("45 %",)) == "incorrect"  # 0.45 is not 0.4 rounded
    assert verdict("5/3", "5/3", offered=("1,666",)) == "correct"  # cut off at 4 digits
    assert verdict("5/3", "5/3", offered=("1,6",)) == "incorrect"  # cut off at 2 digits is another value
