"""What the judge is asked: a Russian prompt and the JSON schema of its reply.

The judge sees the problem, the reference answer, the last part of the model's response (its final answer is
there; the whole response can be longer than the judge's context) and the answer the rule grader extracted. It
replies with one JSON object ``{"verdict": "correct" | "incorrect", "reason": "..."}``; ``response_format`` asks
for it with a JSON schema, which vLLM enforces with structured output. ``PROMPT_VERSION`` enters every judge
hash: a change of the wording asks every judged answer again.
"""

from __future__ import annotations

from typing import Any

PROMPT_VERSION = "judge-ru-1"
TAIL_CHARS = 3000  # the end of the response shown to the judge
TASK_CHARS = 4000

SYSTEM = (
    "Ты — строгий и внимательный экзаменатор олимпиады по математике и физике. Тебе дают условие задачи, "
    "эталонный ответ и решение участника. Реши только одно: совпадает ли окончательный ответ участника с эталонным "
    "по смыслу. Допустимы другая форма записи (дроби, корни, порядок множителей, равносильные уравнения и "
    "промежутки), другие единицы измерения при равной величине и округление до точности эталона. Ответ неверен, "
    "если он отличается по значению, знаку, скобкам промежутка, содержит лишние или не все решения, предлагает "
    "несколько разных окончательных ответов или если окончательного ответа нет. Ход решения не оценивай."
)

USER = """Условие задачи:
{task}

Эталонный ответ: {reference}

Конец решения участника:
{tail}

Ответ, который извлёк автоматический проверяющий: {extracted}

Верни только JSON вида {{"verdict": "correct" или "incorrect", "reason": "одна короткая фраза по-русски"}}."""

RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "verdict": {"type": "string", "enum": ["correct", "incorrect"]},
        "reason": {"type": "string", "maxLength": 400},
    },
    "required": ["verdict", "reason"],
    "additionalProperties": False,
}

RESPONSE_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {"name": "judge_verdict", "schema": RESPONSE_SCHEMA, "strict": True},
}


def tail_of(text: str, limit: int = TAIL_CHARS) -> str:
    """The last ``limit`` characters of ``text``, cut at a line start where one is near, marked when cut."""
    if len(text) <= limit:
        return text
    cut = text[-limit:]
    newline = cut.find("\n")
    if 0 <= newline < limit // 4:
        cut = cut[newline + 1 :]
    return "…\n" + cut


def build_messages(task: str, reference: str, response: str, extracted: str) -> list[dict[str, str]]:
    """The chat messages that ask the judge about one answer."""
    user = USER.format(
        task=task[:TASK_CHARS] or "(условие не сохранено)",
        reference=reference,
        tail=tail_of(response) or "(пустой ответ)",
        extracted=extracted or "(не найден)",
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
