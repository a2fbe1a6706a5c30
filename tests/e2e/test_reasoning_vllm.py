"""A thinking budget on a real vLLM (CPU) server: the tiny model given ``<think>`` tokens and a template that opens
them (``thinking_model``), served with ``--reasoning-parser deepseek_r1`` and a reasoning config that forces the
closing tag and the answer lead (``ask.engine_launch_args``). Its output rows for the tags are zero, so it never
closes its thinking: with a budget every answer must be forced and answered within budget + answer tokens, without
one every answer is cut at max_tokens with an empty content; vLLM's own ``thinking_token_budget`` is asked too."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import pytest

from orchestrator.reasoning.ask import BudgetAsker, engine_launch_args
from orchestrator.reasoning.forced import Ending
from orchestrator.reasoning.settings import ANSWER_LEAD
from orchestrator.reasoning.thinking_model import write_thinking_model
from tests.support.vllm_servers import own_server

pytestmark = pytest.mark.vllm

BUDGET, ANSWER, MAX_TOKENS = 24, 8, 64
GREEDY = {"temperature": 0.0}
TASKS = [f"Задача {i}: найдите {i} + {i}." for i in range(8)]
CLOSING = 5  # "</think>\n\nОтвет:" in the tiny tokenizer: </think>, \n, \n, Ответ, :


def say(task: str) -> list[dict]:
    return [{"role": "user", "content": task}]


@pytest.fixture(scope="module")
def thinking_server(tiny_spec, tmp_path_factory):
    model = write_thinking_model(tiny_spec.model, tmp_path_factory.mktemp("thinking") / "tiny-thinking")
    spec = dataclasses.replace(
        tiny_spec,
        name="tiny-thinking",
        model=str(model),
        max_model_len=1024,
        args=tuple(engine_launch_args("deepseek_r1")),
    )
    yield from own_server(spec, "pytest-reasoning")


@pytest.fixture(scope="module")
def asker(thinking_server):
    return BudgetAsker(thinking_server.spec.endpoint.api_base, thinking_server.spec.served_name)


def ask_all(call) -> list:
    with ThreadPoolExecutor(len(TASKS)) as pool:
        return list(pool.map(call, TASKS))


def test_with_a_budget_every_answer_is_forced_and_answered_within_budget_and_answer_tokens(asker):
    answers = ask_all(lambda t: asker.ask(say(t), MAX_TOKENS, budget=BUDGET, answer_tokens=ANSWER, sampling=GREEDY))
    for answer in answers:
        assert answer.ending is Ending.FORCED and answer.requests == 2
        assert answer.reasoning_tokens == BUDGET and 0 < answer.answer_tokens <= ANSWER
        assert answer.completion_tokens <= BUDGET + ANSWER
        assert answer.content.startswith(ANSWER_LEAD.strip()) and len(answer.content) > len(ANSWER_LEAD.strip())
        assert answer.reasoning and "</think>" not in answer.reasoning
        assert not answer.answer_in_reasoning
    assert sum(a.forced for a in answers) == len(TASKS)


def test_without_a_budget_every_answer_is_truncated_with_an_empty_content_and_counted_so(asker):
    answers = ask_all(lambda t: asker.ask(say(t), 32, sampling=GREEDY))
    for answer in answers:
        assert answer.finish_reason == "length" and answer.truncated
        assert answer.content == "" and answer.reasoning and not answer.forced
        assert (answer.reasoning_tokens, answer.answer_tokens) == (32, 0)
    assert sum(a.truncated for a in answers) == len(TASKS)


def test_the_engine_s_own_thinking_budget_forces_the_tag_and_the_lead(asker):
    answers = ask_all(lambda t: asker.ask_engine(say(t), budget=BUDGET, answer_tokens=ANSWER, sampling=GREEDY))
    for answer in answers:
        assert answer.ending is Ending.FORCED
        # vLLM counts the template's "\n" after <think> in the prompt as a thinking token
        assert answer.reasoning_tokens == BUDGET - 1
        assert answer.completion_tokens <= BUDGET + CLOSING + ANSWER
        assert answer.content.lstrip().startswith(ANSWER_LEAD.strip())


def test_the_engine_and_the_client_give_the_same_tokens_for_the_same_thinking(asker):
    task = say(TASKS[0])
    client = asker.ask(task, MAX_TOKENS, budget=BUDGET, answer_tokens=ANSWER, sampling=GREEDY)
    # the engine counts the prompt's "\n" after <think>: one more budget token gives the same 24 generated ones
    engine = asker.ask_engine(task, budget=BUDGET + 1, answer_tokens=ANSWER, sampling=GREEDY)
    assert engine.reasoning == client.reasoning and engine.reasoning_tokens == client.reasoning_tokens
    # the engine generates the closing itself, so its max_tokens leaves one answer token more than the client's
    assert engine.content.strip().startswith(client.content.strip())
    assert len(engine.content.strip()) > len(client.content.strip()) > len("Ответ:")


def test_thinking_switched_off_is_not_forced_and_its_text_lands_in_the_reasoning(asker):
    off = {"chat_template_kwargs": {"enable_thinking": False}}
    answer = asker.ask(say(TASKS[1]), 40, budget=BUDGET, answer_tokens=ANSWER, sampling=GREEDY, chat_fields=off)
    # deepseek_r1 calls every token before a </think> reasoning, though the template closed the block (vLLM #19222)
    assert answer.ending is Ending.CONTINUED and not answer.forced
    assert answer.content == "" and answer.reasoning and answer.reasoning_tokens == 0
    assert answer.answer_tokens == 40 and answer.truncated
