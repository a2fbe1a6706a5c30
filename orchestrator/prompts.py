"""Russian prompt templates per domain, in our own words, and the messages sent for one problem.

The templates are the one place the wording lives; ``prompt_fingerprint()`` hashes them into the settings hash,
so changing a word starts a new results series.
"""

from __future__ import annotations

import hashlib
import json

from orchestrator.contract import Problem
from orchestrator.errors import DatasetError

PLACEHOLDER = "{task}"

_MATH = """\
Решите задачу. Рассуждайте последовательно: запишите решение по шагам, приводя ключевые преобразования \
и вычисления, а в конце проверьте полученный результат.

Задача:
{task}

Последней строкой напишите итог в таком виде:
Ответ: <ответ>
Требования к ответу:
- точное значение без округления, если в условии не сказано иное (например, 2\\sqrt{3}, а не 3.46);
- обыкновенная дробь — несократимая, через косую черту: 7/3;
- десятичная дробь — с точкой: 2.5;
- несколько корней или значений — через точку с запятой в порядке возрастания: -2; 3;
- несколько неизвестных — через точку с запятой: x = 2; y = -1;
- промежутки — в обычной записи: (-\\infty; 2] \\cup [5; +\\infty);
- если решений нет, так и напишите: Ответ: нет решений.
Единицы измерения в ответе не пишите. Не используйте \\boxed и ничего не добавляйте после строки с ответом."""

_PHYSICS = """\
Решите задачу по физике. Сначала назовите законы и формулы, которые нужны, выведите из них расчётное \
выражение и только потом подставляйте числа; решение пишите по шагам.

Задача:
{task}

Последней строкой напишите итог в таком виде:
Ответ: <число> <единицы измерения>
Требования к ответу:
- единицы — те, что просит условие, а если оно их не называет, то единицы СИ: например, Ответ: 15 м/с;
- десятичная дробь — с точкой: 2.5;
- если значение не выражается короткой десятичной дробью, округлите его до трёх значащих цифр \
или до точности, указанной в условии;
- несколько искомых величин — через точку с запятой: v = 2 м/с; t = 3 с.
Не используйте \\boxed и ничего не добавляйте после строки с ответом."""

TEMPLATES: dict[str, str] = {"math": _MATH, "physics": _PHYSICS}


def render(problem: Problem) -> str:
    """The user message for ``problem``: its domain's template with the task put in verbatim."""
    template = TEMPLATES.get(problem.domain)
    if template is None:
        raise DatasetError(
            f"problem {problem.id} of dataset {problem.dataset!r}: domain {problem.domain!r} has "
            f"no prompt template; set the dataset's `domain:` to one of {', '.join(TEMPLATES)}"
        )
    before, after = template.split(PLACEHOLDER, 1)
    return before + problem.task + after


def build_messages(problem: Problem, system_prompt: str = "") -> list[dict[str, str]]:
    """Chat messages: the model's system prompt first (when not blank), then the templated task."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
    return messages + [{"role": "user", "content": render(problem)}]


def prompt_fingerprint() -> str:
    """A short hash of all templates: part of the settings hash."""
    blob = json.dumps(TEMPLATES, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12]
