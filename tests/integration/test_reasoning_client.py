"""Reasoning through the ``ChatClient`` over loopback HTTP: an OpenRouter stand-in asked with ``reasoning: {effort}``
and its ``reasoning`` field and token count kept; an empty content with the answer at the end of the reasoning
(marked, graded as empty unless ``grade_reasoning_tail``); a scripted vLLM with token ids for the two-phase budget
(its second phase retried like any request) and for vLLM's own budget (one request, the template's thinking
tokens added to the budget)."""

from __future__ import annotations

import json

from orchestrator.client import ChatClient, ManagedServer
from orchestrator.client.thinking import BudgetWay, Reasoning
from orchestrator.contract import AnswerRecord, Endpoint, Problem, ReasoningSettings, Sampling, Transport
from orchestrator.job import record_grader
from orchestrator.reasoning.forced import THINK
from standins.chat_apis import Canned, OpenRouterStandIn, ScriptedVllm, completion

KEY = "sk-or-test-key"
MESSAGES = [{"role": "user", "content": "Сколько будет 2+2?"}]
PROBLEM = Problem(id="p1", dataset="d", domain="math", task="2+2?", reference="4")
TOKENS = {"<think>": [90], "</think>": [91], "</think>\n\nОтвет:": [91, 5, 5, 60, 61]}
FAST = Transport(max_retries=2, backoff_base=0.01, backoff_cap=0.01)


def chat(content, reasoning, finish, prompt_ids, token_ids) -> dict:
    message = {"role": "assistant", "content": content, "reasoning": reasoning}
    return {
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "token_ids": token_ids}],
        "prompt_token_ids": prompt_ids,
        "usage": {"prompt_tokens": len(prompt_ids), "completion_tokens": len(token_ids)},
    }


def text(words: str, finish: str, ids: list[int]) -> dict:
    return {
        "choices": [{"index": 0, "text": words, "finish_reason": finish, "token_ids": ids}],
        "usage": {"completion_tokens": len(ids)},
    }


def managed_client(server: ScriptedVllm, reasoning: Reasoning, max_tokens: int = 100) -> ChatClient:
    return ChatClient(
        Endpoint(api_base=server.api_base),
        "m",
        Sampling(max_tokens=max_tokens),
        transport=FAST,
        server=ManagedServer(alive=lambda: True),
        reasoning=reasoning,
    )


def budgeted(budget: int, answer_tokens: int, way: BudgetWay) -> Reasoning:
    settings = ReasoningSettings(parser="deepseek_r1", budget=budget, answer_tokens=answer_tokens)
    return Reasoning.of(settings, "openai", THINK, engine=way is BudgetWay.ENGINE)


def test_openrouter_gets_its_effort_field_and_its_reasoning_and_count_are_kept():
    reply = completion("vendor/model", reasoning="2 + 2: складываем.")
    reply["usage"] |= {"completion_tokens_details": {"reasoning_tokens": 6}}
    server = OpenRouterStandIn(KEY, [Canned(200, reply)])
    try:
        settings = ReasoningSettings(effort="high", template_kwargs={"enable_thinking": True})
        client = ChatClient(
            Endpoint(api_base=server.api_base, api_key=KEY),
            "vendor/model",
            Sampling(),
            reasoning=Reasoning.of(settings, "openrouter", None, engine=False),
        )
        rec = client.ask(PROBLEM, MESSAGES, "h")
        body = json.loads(server.chats()[0]["body"])
        assert body["reasoning"] == {"effort": "high"}
        assert body["chat_template_kwargs"] == {"enable_thinking": True} and "return_token_ids" not in body
        assert rec.reasoning == "2 + 2: складываем." and rec.response.endswith("Ответ: 4")
        assert (rec.reasoning_tokens, rec.answer_tokens, rec.forced, rec.answer_in_reasoning) == (6, 3, False, False)
    finally:
        server.close()


def ask_empty_content(grade_tail: bool) -> AnswerRecord:
    reply = completion("vendor/model", reasoning="Считаем: 2+2 = 4.\n\nОтвет: 4")
    reply["choices"][0]["message"]["content"] = ""
    server = OpenRouterStandIn(KEY, [Canned(200, reply)])
    try:
        settings = ReasoningSettings(grade_reasoning_tail=grade_tail)
        client = ChatClient(
            Endpoint(api_base=server.api_base, api_key=KEY),
            "vendor/model",
            Sampling(),
            reasoning=Reasoning.of(settings, "openrouter", None, engine=False),
        )
        rec = client.ask(PROBLEM, MESSAGES, "h")
    finally:
        server.close()
    assert isinstance(rec, AnswerRecord)
    grade = record_grader()(rec)
    rec.extracted, rec.verdict = grade.extracted, grade.verdict
    return rec


def test_an_empty_content_with_the_answer_in_the_reasoning_is_marked_and_graded_as_empty_by_default():
    rec = ask_empty_content(grade_tail=False)
    assert rec.response == "" and rec.answer_in_reasoning and not rec.graded_tail
    assert rec.verdict == "unparsed"


def test_grade_reasoning_tail_grades_the_reasoning_s_last_part_and_says_so():
    rec = ask_empty_content(grade_tail=True)
    assert rec.answer_in_reasoning and rec.graded_tail
    assert (rec.extracted, rec.verdict) == ("4", "correct")


def test_the_two_phase_budget_forces_the_answer_and_its_second_phase_is_retried_on_a_503():
    prompt, thought = [1, 2, 90, 7], [10, 11, 12, 13]
    busy = Canned(503, {"error": {"message": "busy"}})
    server = ScriptedVllm(
        {
            "/chat/completions": [chat(None, "думаю", "length", prompt, thought)],
            "/v1/completions": [busy, text(" 4", "stop", [40, 41])],
        },
        TOKENS,
    )
    try:
        rec = managed_client(server, budgeted(4, 16, BudgetWay.CLIENT)).ask(PROBLEM, MESSAGES, "h")
        first = server.bodies("/chat/completions")[0]
        seconds = server.bodies("/v1/completions")
        assert first["max_tokens"] == 4 and "thinking_token_budget" not in first
        assert len(seconds) == 2 and seconds[1]["prompt"] == [*prompt, *thought, 91, 5, 5, 60, 61]
        assert rec.error is None and rec.forced and rec.response == "Ответ: 4" and rec.reasoning == "думаю"
        assert (rec.reasoning_tokens, rec.answer_tokens, rec.completion_tokens) == (4, 2, 6)
    finally:
        server.close()


def test_a_second_phase_that_keeps_failing_makes_the_answer_an_error_record():
    prompt, thought = [1, 90], [10, 11]
    busy = Canned(503, {"error": {"message": "busy"}})
    server = ScriptedVllm(
        {"/chat/completions": [chat(None, "думаю", "length", prompt, thought)], "/v1/completions": [busy] * 3},
        TOKENS,
    )
    try:
        rec = managed_client(server, budgeted(2, 8, BudgetWay.CLIENT)).ask(PROBLEM, MESSAGES, "h")
        assert rec.error is not None and "503" in rec.error and "gave up after 3 attempts" in rec.error
    finally:
        server.close()


def test_the_engine_s_budget_is_one_request_with_the_template_s_thinking_tokens_added():
    prompt = [1, 2, 90, 5]  # the template opens <think> and writes "\n": one thinking token already
    out = [10, 11, 12, 91, 5, 5, 60, 61, 40]
    server = ScriptedVllm(
        {"/chat/completions": [chat("\n\nОтвет: 4", "мысли", "stop", prompt, out)]}, TOKENS, chat_prompt=prompt
    )
    try:
        rec = managed_client(server, budgeted(3, 8, BudgetWay.ENGINE)).ask(PROBLEM, MESSAGES, "h")
        (body,) = server.bodies("/chat/completions")
        assert body["thinking_token_budget"] == 4 and body["max_tokens"] == 3 + 5 + 8
        assert server.bodies("/v1/completions") == []
        assert rec.error is None and rec.forced and rec.reasoning_tokens == 3
    finally:
        server.close()


def test_without_a_budget_a_managed_server_s_thinking_is_counted_from_its_token_ids():
    prompt, out = [1, 90], [10, 11, 12]
    server = ScriptedVllm({"/chat/completions": [chat(None, "думаю", "length", prompt, out)]}, TOKENS)
    try:
        reasoning = Reasoning.of(ReasoningSettings(parser="deepseek_r1"), "openai", THINK, engine=False)
        client = managed_client(server, reasoning, max_tokens=3)
        assert client.asks_n and reasoning.way is BudgetWay.NONE
        rec = client.ask(PROBLEM, MESSAGES, "h")
        (body,) = server.bodies("/chat/completions")
        assert body["return_token_ids"] is True and body["max_tokens"] == 3
        assert rec.finish_reason == "length" and (rec.reasoning_tokens, rec.answer_tokens) == (3, 0)
        assert not rec.forced and rec.response == ""
    finally:
        server.close()
