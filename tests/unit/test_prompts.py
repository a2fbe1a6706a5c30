"""Prompt templates: message layout, verbatim tasks, answer-format rules, the fingerprint."""

from __future__ import annotations

import re

import pytest

from orchestrator import prompts
from orchestrator.contract import DOMAINS, Problem
from orchestrator.errors import DatasetError
from orchestrator.prompts import TEMPLATES, build_messages, prompt_fingerprint, render


def problem(task: str = "Найдите $x$, если $2x = 6$.", domain: str = "math") -> Problem:
    return Problem(id="q1", dataset="toy", domain=domain, task=task, reference="3")


def test_system_prompt_comes_first_then_the_templated_task():
    messages = build_messages(problem(), "Ты — аккуратный решатель олимпиадных задач.")
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"] == "Ты — аккуратный решатель олимпиадных задач."
    assert "Найдите $x$, если $2x = 6$." in messages[1]["content"]


@pytest.mark.parametrize("system_prompt", ["", "   \n"])
def test_blank_system_prompt_is_left_out(system_prompt):
    messages = build_messages(problem(), system_prompt)
    assert [m["role"] for m in messages] == ["user"]


def test_task_with_braces_and_placeholder_text_is_inserted_verbatim():
    task = r"Вычислите $\frac{1}{x}$ при {x} = 2; строка {task} и {0} остаются как есть."
    text = render(problem(task))
    assert task in text
    assert text.count(task) == 1
    assert text.count(prompts.PLACEHOLDER) == 1  # only the task's own: the template's one was replaced


def test_every_domain_has_a_russian_template_with_one_placeholder():
    assert set(TEMPLATES) == set(DOMAINS)
    for template in TEMPLATES.values():
        assert template.count(prompts.PLACEHOLDER) == 1
        assert len(re.findall(r"[а-яё]", template.lower())) > 200


@pytest.mark.parametrize("domain", DOMAINS)
def test_templates_ask_for_steps_and_a_last_answer_line(domain):
    text = render(problem(domain=domain))
    assert "по шагам" in text
    assert "Последней строкой" in text
    assert "\nОтвет: <" in text
    assert "через точку с запятой" in text
    assert text.rstrip().endswith("после строки с ответом.")


def test_math_wants_exact_irreducible_values_and_no_units():
    text = render(problem(domain="math"))
    for rule in (
        "точное значение",
        "несократимая",
        "x = 2; y = -1",
        "-2; 3",
        "нет решений",
        r"\cup",
        "Единицы измерения в ответе не пишите",
    ):
        assert rule in text


def test_physics_wants_units():
    text = render(problem(domain="physics"))
    assert "Ответ: <число> <единицы измерения>" in text
    assert "15 м/с" in text and "СИ" in text


def test_unknown_domain_is_a_one_line_dataset_error():
    with pytest.raises(DatasetError) as info:
        build_messages(problem(domain="chemistry"))
    message = str(info.value)
    assert "chemistry" in message and "math" in message and "physics" in message and "\n" not in message


def test_fingerprint_is_stable_and_follows_any_template_change(monkeypatch):
    first = prompt_fingerprint()
    assert re.fullmatch(r"[0-9a-f]{12}", first)
    assert prompt_fingerprint() == first
    monkeypatch.setitem(TEMPLATES, "physics", TEMPLATES["physics"].replace("по шагам", "кратко"))
    changed = prompt_fingerprint()
    assert changed != first
    monkeypatch.undo()
    assert prompt_fingerprint() == first
