"""The chat client against a real vLLM (CPU) server on the tiny model: answers, token counts, the context clamp
through ``/tokenize`` and through vLLM's real 400 messages, and a resumed series."""

from __future__ import annotations

import json

import pytest
import requests

from orchestrator.client import ChatClient, ManagedServer, run_series
from orchestrator.contract import Problem, Sampling, Timeouts, Transport
from orchestrator.results import SeriesStore

pytestmark = pytest.mark.vllm

HASH = "d" * 16
WORD = "Ответ "


def problem(i: int, task: str = "Сколько будет 2+2?") -> Problem:
    return Problem(id=f"v{i}", dataset="ds", domain="math", task=task, reference="4")


def say(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def count(server, messages: list[dict]) -> int:
    base = server.endpoint.api_base.removesuffix("/v1")
    resp = requests.post(f"{base}/tokenize", json={"model": server.spec.served_name, "messages": messages}, timeout=60)
    resp.raise_for_status()
    return resp.json()["count"]


def prompt_near(server, tokens: int) -> tuple[list[dict], int]:
    """Messages whose chat-templated prompt is a little under ``tokens`` long, and its exact length."""
    base, per = count(server, say("")), count(server, say(WORD * 11)) - count(server, say(WORD * 10))
    n = (tokens - base) // per
    while count(server, say(WORD * n)) > tokens:
        n -= 1
    actual = count(server, say(WORD * n))
    assert tokens - 3 * per <= actual <= tokens
    return say(WORD * n), actual


def make(server, max_tokens: int, *, clamp: bool = True) -> ChatClient:
    return ChatClient(
        server.endpoint,
        server.spec.served_name,
        Sampling(max_tokens=max_tokens),
        transport=Transport(timeouts=Timeouts.within(300)),
        server=ManagedServer(alive=server.alive),
        context_len=server.max_model_len() if clamp else None,
    )


def test_a_real_answer_has_content_tokens_and_finish_reason(vllm_server):
    rec = make(vllm_server, 12).ask(problem(0), say("Сколько будет 2+2?"), HASH)
    assert rec.error is None and rec.response and rec.reasoning == ""
    assert rec.completion_tokens == 12 and rec.finish_reason == "length"  # the random model never stops early
    assert rec.prompt_tokens == count(vllm_server, say("Сколько будет 2+2?")) and rec.latency_s > 0


def test_max_tokens_is_clamped_to_the_real_context(vllm_server):
    ctx = vllm_server.max_model_len()
    messages, prompt = prompt_near(vllm_server, ctx - 5)
    rec = make(vllm_server, 512).ask(problem(1), messages, HASH)
    assert rec.error is None and rec.prompt_tokens == prompt and rec.completion_tokens == ctx - prompt


def test_a_prompt_over_the_real_context_is_an_error_record(vllm_server):
    ctx = vllm_server.max_model_len()
    messages = say(WORD * (ctx + 50))
    rec = make(vllm_server, 16).ask(problem(2), messages, HASH)
    assert rec.error.startswith("prompt is ") and f"context is {ctx}" in rec.error and rec.completion_tokens == 0
    blind = make(vllm_server, 16, clamp=False).ask(problem(2), messages, HASH)  # vLLM's own 400, not retried
    assert blind.error.startswith("prompt does not fit the context: HTTP 400")


def test_vllm_real_400_for_too_many_tokens_is_clamped_from_its_message(vllm_server):
    ctx = vllm_server.max_model_len()
    messages, prompt = prompt_near(vllm_server, ctx - 4)
    rec = make(vllm_server, ctx + 100, clamp=False).ask(problem(3), messages, HASH)
    assert rec.error is None and rec.completion_tokens == ctx - prompt


def test_a_series_against_the_real_server_resumes_without_asking_twice(vllm_server, tmp_path):
    problems = [problem(i, f"Задача номер {i}: сколько будет {i}+{i}?") for i in range(6)]
    store = SeriesStore(tmp_path, "tiny", "ds", HASH, meta={"total": 6})
    first = run_series(problems[:4], make(vllm_server, 8), store, lambda p: say(p.task), parallel=3)
    assert (first.answered, first.errors, first.completion_tokens) == (4, 0, 32)
    store = SeriesStore(tmp_path, "tiny", "ds", HASH, meta={"total": 6})
    second = run_series(problems, make(vllm_server, 8), store, lambda p: say(p.task), parallel=3)
    lines = [json.loads(x) for x in store.path.read_text(encoding="utf-8").splitlines()]
    assert second.answered == 6 and sorted(x["id"] for x in lines) == [f"v{i}" for i in range(6)]
    assert all(x["finish_reason"] == "length" and x["completion_tokens"] == 8 for x in lines)
