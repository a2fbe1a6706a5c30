"""The rules around the final answer, in-process: split answers, stated units, number and magnitude words,
units written out in words (see orchestrator/grading/context.py and numwords.py)."""

from __future__ import annotations

import pytest
import sympy

from orchestrator.grading import check as C
from orchestrator.grading.context import inline_items, joins, last_sentence, list_items, stated_unit
from orchestrator.grading.extract import extract
from orchestrator.grading.lexer import tokenize
from orchestrator.grading.normalize import normalize
from orchestrator.grading.numwords import magnitude, number_words
from orchestrator.grading.parser import parse
from orchestrator.grading.units import lookup


@pytest.mark.parametrize(
    "response, answer, together",
    [
        ("Корни: \\boxed{3}, \\boxed{1}, \\boxed{2}.", "2", "3; 1; 2"),
        ("$x_1 = \\boxed{3}$ и $x_2 = \\boxed{1}$", "1", "x_1 = 3; x_2 = 1"),
        ("\\[\\boxed{3}\\]\n\\[\\boxed{1}\\]", "1", "3; 1"),
        ("Ответ: 1\nОтвет: 2", "2", "1; 2"),
        ("**Ответ:**\n- $x = 1$\n- $x = 4$\n\nПроверка сделана.", "x = 1; x = 4", "x = 1; x = 4"),
        ("Ответ:\n1) 3\n2) 7", "3; 7", "3; 7"),
        ("Сначала \\boxed{5}. Потом долго считаем и находим \\boxed{7}", "7", ""),
        ("Ответ: 5\nНет, ошибся.\nОтвет: 6", "6", ""),
        ("\\boxed{4}", "4", ""),
        ("Ответ:\n- только один пункт", "- только один пункт", ""),
    ],
)
def test_the_parts_of_a_split_answer_are_the_adjacent_boxes_or_items(response: str, answer: str, together: str) -> None:
    found = extract(response)
    assert (found.answer, found.together) == (answer, together)


def test_items_enumerated_on_the_answer_line_are_parts() -> None:
    found = extract("Ответ: 1) 3; 2) 7")
    assert (found.answer, found.together, found.unit, found.offers) == ("3; 7", "3; 7", "", ())
    assert inline_items("а) 5, б) 7") == ["5", "7"]
    assert inline_items("(x+1) 3") == [] and inline_items("1) 3") == []


@pytest.mark.parametrize(
    "response, unit",
    [
        ("Итак, $\\boxed{20}\\ \\text{м/с}$.", "м / с"),
        ("Итак, $\\boxed{20}$ м/с. Далее проверка.", "м / с"),
        ("Итого \\boxed{2019} г.", ""),
        ("Итак, \\boxed{20}. Дальше идёт текст.", ""),
    ],
)
def test_a_unit_written_right_after_a_box_belongs_to_the_boxed_number(response: str, unit: str) -> None:
    assert extract(response).unit == unit


def test_only_markup_names_and_conjunctions_join_two_parts() -> None:
    assert joins(", ") and joins("$ и $") and joins(", x_2 = ") and joins("\\]\n\\[")
    assert joins("$\nВторой корень: $") and joins("\\text{ или }")
    assert not joins(". Проверим подстановкой: ")
    assert not joins(" не подходит по ОДЗ. Второй корень: ")
    assert not joins(" + 2 = ")
    assert not joins(" " * 81)


def test_list_items_need_two_items_and_stop_at_the_first_other_line() -> None:
    assert list_items(["", "- 1", "* 2", "Итак, всё."]) == ["1", "2"]
    assert list_items(["а) 5", "б) 7", "в) 9"]) == ["5", "7", "9"]
    assert list_items(["- 1", "текст", "- 2"]) == []


@pytest.mark.parametrize(
    "reference, collection",
    [
        ("1; 2", True),
        ("x = 1; y = 2", True),
        ("(1; 2)", True),
        ("\\{1, 2, 3\\}", True),
        ("5", False),
        ("[1; 2)", False),
        ("∅", False),
        ("x = 5", False),
    ],
)
def test_only_a_set_or_a_list_reference_sees_the_parts(reference: str, collection: bool) -> None:
    assert C.is_collection(parse(normalize(reference))) is collection


def test_the_parts_are_compared_for_a_set_reference_and_never_for_a_single_one() -> None:
    assert C.check(("2", "1; 2; 3", "math", None, "3; 1; 2")) == ("correct", False)
    assert C.check(("5", "1; 2; 3", "math", None, "3; 1; 5"))[0] == "incorrect"
    assert C.check(("7", "5", "math", None, "5; 7"))[0] == "incorrect"
    assert C.check(("x = 7", "5", "math", None, "5"))[0] == "incorrect"
    assert C.check(("2", "1; 2", "math", None))[0] == "incorrect"  # a job without parts still works


@pytest.mark.parametrize(
    "before, answer, unit",
    [
        ("Таким образом, рост среднего брата составляет 172 см.\n\n", "172", "см"),
        ("Решаем.\n\\[ b = 172 \\]\nТаким образом, рост равен 172 см.\n\n", "172", "см"),
        ("Скорость равна 20 м/с.\n", "20", "м / с"),
        ("Масса груза $m = 500\\,\\text{г}$.\n", "500", "г"),
        ("Получаем 1,5 километра.\n", "1,5", "километра"),
        ("Итак, рост 172 см, то есть 1,72 м.\n", "172", "см"),
        ("Скорость 20 метров в секунду.\n", "20", "метров в секунду"),
        ("Рост **172** см.\n", "172", "см"),
        # none: another number, two units, the unit two sentences back, a year, a variable, "с" as a preposition
        ("Рост старшего брата 170 см.\n", "172", ""),
        ("Рост 172 см, шаг 172 мм.\n", "172", ""),
        ("Рост 172 см. Это больше роста младшего.\n", "172", ""),
        ("Это случилось в 2019 г.\n", "2019", ""),
        ("Подставим: 2t = 2.\n", "2", ""),
        ("Прошло 5 с половиной минут.\n", "5", ""),
        ("Рост 172 см.\n", "x = 172", ""),
    ],
)
def test_a_bare_number_takes_the_unit_stated_for_it_in_the_sentence_before(before: str, answer: str, unit: str) -> None:
    assert stated_unit(before, answer) == unit


def test_the_last_sentence_drops_closing_markup_and_stops_at_a_sentence_end() -> None:
    assert last_sentence("Первое. Второе 172 см.\n\n**") == "Второе 172 см"
    assert last_sentence("Итак,\n\\[ 172\\text{ см} \\]\n") == "\\[ 172\\text{ см}"
    assert last_sentence("") == ""


@pytest.mark.parametrize(
    "words, value",
    [
        ("десять", 10),
        ("двадцать пять", 25),
        ("сто двенадцать", 112),
        ("две тысячи двадцать четыре", 2024),
        ("тысяча", 1000),
        ("три миллиона", 3_000_000),
        ("ноль", 0),
        ("полтора", sympy.Rational(3, 2)),
    ],
)
def test_number_words_are_read_as_one_number(words: str, value: object) -> None:
    tokens = tokenize(words)
    assert number_words(tokens, 0) == (value, len(tokens))


def test_nothing_multiplies_a_number_written_in_words() -> None:
    assert C.check(("шесть (6)", "36", "math", None))[0] != "correct"
    assert C.check(("двадцать пять учеников", "25", "math", None))[0] == "correct"


def test_number_words_stop_at_the_first_word_that_does_not_continue_the_number() -> None:
    tokens = tokenize("пять двадцать")
    assert number_words(tokens, 0) == (5, 1)
    assert number_words(tokenize("Петя"), 0) is None
    assert number_words(tokenize("млн"), 0) is None


@pytest.mark.parametrize(
    "word, power",
    [
        ("тыс.", 3),
        ("тысяч", 3),
        ("млн", 6),
        ("миллиона", 6),
        ("млрд", 9),
        ("миллиардов", 9),
        ("трлн", 12),
        ("метров", None),
        ("тысячелетие", None),
    ],
)
def test_magnitude_words(word: str, power: int | None) -> None:
    assert magnitude(tokenize(word)[0]) == power


@pytest.mark.parametrize(
    "text, value, si",
    [
        ("2,5 тыс.", 2500, None),
        ("150 млн км", 150_000_000, 150_000_000_000),
        ("3 млрд", 3_000_000_000, None),
        ("двадцать пять учеников", 25, None),
        ("полтора часа", sympy.Rational(3, 2), 5400),
    ],
)
def test_magnitudes_multiply_the_number_and_keep_the_unit(text: str, value: object, si: object) -> None:
    scalar = parse(normalize(text))
    assert scalar.num.expr == value  # type: ignore[union-attr]  # a Scalar
    assert (scalar.si.expr if scalar.si else None) == si  # type: ignore[union-attr]  # a Scalar


def test_a_magnitude_keeps_the_number_as_written_for_a_bare_reference_only() -> None:
    scalar = parse(normalize("150 млн км"))
    assert scalar.written.expr == 150  # type: ignore[union-attr]  # a Scalar
    assert C.check(("150 млн км", "150", "math", None))[0] == "correct"
    assert C.check(("150 млн км", "150 км", "physics", None))[0] == "incorrect"
    assert C.check(("2.5 млн", "2.5 тыс.", "math", None))[0] == "incorrect"
    assert parse(normalize("150 км")).written is None  # type: ignore[union-attr]  # a Scalar


@pytest.mark.parametrize(
    "word, scale",
    [
        ("метров", 1),
        ("километров", 1000),
        ("сантиметра", sympy.Rational(1, 100)),
        ("килограмм", 1),
        ("граммов", sympy.Rational(1, 1000)),
        ("миллиампер", sympy.Rational(1, 1000)),
        ("килоджоулей", 1000),
        ("мегапаскаля", 10**6),
        ("часа", 3600),
        ("минуты", 60),
        ("суток", 86400),
        ("Ньютонов", 1),
    ],
)
def test_units_written_out_in_words(word: str, scale: object) -> None:
    unit = lookup(word)
    assert unit is not None and unit.scale == scale


@pytest.mark.parametrize("word", ["в", "на", "метро", "часть", "мол", "кило", "ниже", "домом"])
def test_ordinary_words_are_not_units(word: str) -> None:
    assert lookup(word) is None


@pytest.mark.parametrize(
    "text, si, dims",
    [
        ("20 метров в секунду", 20, (1, 0, -1, 0, 0, 0, 0)),
        ("72 километра в час", 20, (1, 0, -1, 0, 0, 0, 0)),
        ("9,8 метра в секунду в квадрате", sympy.Rational(49, 5), (1, 0, -2, 0, 0, 0, 0)),
        ("3 квадратных метра", 3, (2, 0, 0, 0, 0, 0, 0)),
        ("2 кубических сантиметра", sympy.Rational(2, 10**6), (3, 0, 0, 0, 0, 0, 0)),
        ("5 джоулей на килограмм", 5, (2, 0, -2, 0, 0, 0, 0)),
        ("10 meters per second", 10, (1, 0, -1, 0, 0, 0, 0)),
        ("20 градусов Цельсия", sympy.Rational(5863, 20), (0, 0, 0, 0, 1, 0, 0)),
    ],
)
def test_compound_units_in_words(text: str, si: object, dims: tuple) -> None:
    scalar = parse(normalize(text))
    assert scalar.si.expr == si and scalar.unit.dims == dims  # type: ignore[union-attr]  # a Scalar


@pytest.mark.parametrize(
    "response, answer",
    [
        ("Итак.\nОкончательный ответ: 4\n\nПроверка: 2 + 2 = 4.", "4"),
        ("Итоговый  ответ —  5\n\nГотово.", "5"),
        ("ОТВЕТ: 7\n\nПроверка: 7 = 7.", "7"),
        ("## Ответ\n\n8\n\nПроверка: 8 = 8.", "8"),
        ("ответ: 5, окончательный ответ: 6\n\nПроверка 1.", "6"),
        ("İstanbul: 9 и ещё 10.\nОтвет: 11\n\nПроверка 12.", "11"),  # lower() changes the length: whole-text scan
        ("FINAL ANSWER: 3\n\nCheck 4.", "3"),
        ("Переответ: 3\n\nИтого 4.", "4"),
        ("ответ " * 600 + "\n## Ответ\n\n12\n\nПроверка 13.", "12"),  # many keywords: whole-text scan
        ("Ответ: 1\n" * 40 + "Ответ: 2\n\nПроверка 3.", "2"),
    ],
)
def test_markers_are_found_around_every_keyword_in_any_case(response: str, answer: str) -> None:
    assert extract(response).answer == answer
