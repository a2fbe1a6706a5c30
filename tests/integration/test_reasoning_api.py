"""Reasoning over real HTTP on loopback: an OpenRouter stand-in (``reasoning: {effort}`` asked, its ``reasoning``
field read), a vLLM-like stand-in answering ``reasoning_content`` (and an empty content with the answer in the
reasoning), and a scripted vLLM with token ids for the exact continuation of a forced or a cut answer."""

from __future__ import annotations

import json

import pytest

from orchestrator.errors import EndpointError
from orchestrator.reasoning.ask import BudgetAsker, engine_launch_args
from orchestrator.reasoning.forced import Ending
from orchestrator.reasoning.settings import parse_reasoning, request_fields
from standins.chat_apis import Canned, OpenRouterStandIn, StandIn, completion
from standins.chat_apis import ScriptedVllm as ScriptedStandIn

KEY = "sk-or-test-key"
MESSAGES = [{"role": "user", "content": "Сколько будет 2+2?"}]
TOKENS = {"<think>": [90], "</think>": [91], "</think>\n\nОтвет:": [91, 5, 5, 60, 61]}


def ScriptedVllm(replies: dict[str, list[dict]]) -> StandIn:  # noqa: N802 -- the stand-in with this module's tokens
    return ScriptedStandIn(replies, TOKENS)


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


@pytest.fixture
def openrouter():
    server = OpenRouterStandIn(KEY)
    yield server
    server.close()


def test_openrouter_is_asked_with_reasoning_effort_and_its_reasoning_field_is_kept(openrouter):
    settings = parse_reasoning({"effort": "high"}, "m.reasoning", 4096, None, managed=False, api_type="openrouter")
    asker = BudgetAsker(
        openrouter.api_base, "vendor/model", headers={"Authorization": f"Bearer {KEY}"}, token_ids=False
    )
    answer = asker.ask(MESSAGES, 4096, chat_fields=request_fields(settings, "openrouter"))
    sent = json.loads(openrouter.chats()[0]["body"])
    assert sent["reasoning"] == {"effort": "high"} and "reasoning_effort" not in sent
    assert "return_token_ids" not in sent
    assert answer.reasoning == "2 + 2: складываем." and answer.content.endswith("Ответ: 4")
    assert not answer.forced and not answer.answer_in_reasoning and not answer.truncated


def test_an_api_s_own_reasoning_token_count_is_used(openrouter):
    reply = completion("vendor/model", reasoning="долго думал")
    reply["usage"] = {
        "prompt_tokens": 20,
        "completion_tokens": 120,
        "completion_tokens_details": {"reasoning_tokens": 100},
    }
    openrouter.script.append(Canned(200, reply))
    answer = BudgetAsker(
        openrouter.api_base, "vendor/model", headers={"Authorization": f"Bearer {KEY}"}, token_ids=False
    ).ask(MESSAGES, 4096)
    assert (answer.reasoning_tokens, answer.answer_tokens) == (100, 20)


def test_a_budget_on_an_api_without_token_ids_is_one_request_never_a_continuation(openrouter):
    reply = completion("vendor/model", reasoning="думаю и думаю")
    reply["choices"][0].update(finish_reason="length")
    reply["choices"][0]["message"]["content"] = ""
    openrouter.script.append(Canned(200, reply))
    asker = BudgetAsker(
        openrouter.api_base, "vendor/model", headers={"Authorization": f"Bearer {KEY}"}, token_ids=False
    )
    answer = asker.ask(MESSAGES, 4096, budget=100, answer_tokens=50)
    assert answer.truncated and not answer.forced and answer.requests == 1
    assert len(openrouter.requests) == 1


def test_reasoning_content_with_an_empty_content_and_the_answer_in_it_is_marked():
    server = ScriptedVllm({})
    reply = completion("m", reasoning_content="Считаем: 2+2 = 4.\n\n**Ответ:** 4")
    reply["choices"][0]["message"]["content"] = None
    server.replies["/chat/completions"] = [reply, completion("m", reasoning_content="просто мысли")]
    try:
        asker = BudgetAsker(server.api_base, "m")
        found = asker.ask(MESSAGES, 512)
        assert found.content == "" and found.reasoning.endswith("**Ответ:** 4")
        assert found.answer_in_reasoning
        assert not asker.ask(MESSAGES, 512).answer_in_reasoning  # content present
    finally:
        server.close()


def test_thinking_open_at_the_budget_is_closed_and_the_answer_asked_as_the_same_turn():
    prompt, thought = [1, 2, 90, 7], [10, 11, 12, 13]
    server = ScriptedVllm(
        {
            "/chat/completions": [chat(None, "думаю", "length", prompt, thought)],
            "/completions": [text(" 4", "stop", [40])],
        }
    )
    try:
        answer = BudgetAsker(server.api_base, "m").ask(
            MESSAGES, 100, budget=4, answer_tokens=16, sampling={"temperature": 0.0, "seed": 3}
        )
        first, second = server.bodies("/chat/completions")[0], server.bodies("/v1/completions")[0]
        assert first["max_tokens"] == 4 and first["return_token_ids"] is True
        assert second["prompt"] == [*prompt, *thought, 91, 5, 5, 60, 61]
        assert (second["max_tokens"], second["temperature"], second["seed"]) == (16, 0.0, 3)
        assert "messages" not in second
        assert answer.ending is Ending.FORCED and answer.content == "Ответ: 4" and answer.reasoning == "думаю"
        assert (answer.reasoning_tokens, answer.answer_tokens, answer.finish_reason) == (4, 1, "stop")
    finally:
        server.close()


def test_an_answer_cut_at_the_budget_after_its_thinking_closed_goes_on_to_max_tokens_unforced():
    prompt, out = [1, 2, 90], [10, 11, 91, 20, 21]
    server = ScriptedVllm(
        {
            "/chat/completions": [chat("Реше", "хм", "length", prompt, out)],
            "/completions": [text("ние. Ответ: 4", "stop", [22, 23, 24])],
        }
    )
    try:
        answer = BudgetAsker(server.api_base, "m").ask(MESSAGES, 50, budget=5, answer_tokens=16)
        second = server.bodies("/v1/completions")[0]
        assert second["prompt"] == [*prompt, *out] and second["max_tokens"] == 45
        assert answer.ending is Ending.CONTINUED and not answer.forced
        assert answer.content == "Решение. Ответ: 4" and answer.reasoning == "хм"
        assert (answer.reasoning_tokens, answer.answer_tokens) == (2, 5)
    finally:
        server.close()


def test_an_answer_within_the_budget_is_one_request():
    server = ScriptedVllm({"/chat/completions": [chat("Ответ: 4", "хм", "stop", [1, 90], [10, 91, 30])]})
    try:
        answer = BudgetAsker(server.api_base, "m").ask(MESSAGES, 50, budget=40)
        assert answer.ending is Ending.NATURAL and answer.requests == 1
        assert (answer.reasoning_tokens, answer.answer_tokens) == (1, 1)
        assert server.bodies("/v1/completions") == []
    finally:
        server.close()


def test_a_refused_request_raises_naming_the_path_and_the_server_message():
    server = ScriptedVllm({})
    try:
        with pytest.raises(EndpointError, match=r"^POST /v1/chat/completions: HTTP 404: nothing scripted"):
            BudgetAsker(server.api_base, "m").ask(MESSAGES, 10)
    finally:
        server.close()


def test_the_engine_budget_flags_force_the_tag_and_the_lead():
    args = engine_launch_args("deepseek_r1")
    assert args[:3] == ["--reasoning-parser", "deepseek_r1", "--reasoning-config"]
    assert json.loads(args[3]) == {"reasoning_start_str": "<think>", "reasoning_end_str": "</think>\n\nОтвет:"}


def test_a_server_without_a_reasoning_parser_gets_its_forced_thinking_split_off_the_content():
    prompt, thought = [1, 2, 90], [10, 11]
    server = ScriptedVllm(
        {
            "/chat/completions": [chat("думаю дальше", None, "length", prompt, thought)],
            "/completions": [text(" 4", "length", [40])],
        }
    )
    try:
        answer = BudgetAsker(server.api_base, "m").ask(MESSAGES, 100, budget=2, answer_tokens=1)
        assert answer.forced and answer.truncated
        assert (answer.content, answer.reasoning) == ("Ответ: 4", "думаю дальше")
    finally:
        server.close()
