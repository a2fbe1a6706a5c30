"""A ``ChatClient`` for client tests and what they ask it: ``client(url, sleeps)`` on a fake clock (``Timeline``:
its sleeps are recorded, not slept) with a test key, the one problem ``PROBLEM`` / ``MESSAGES`` under ``HASH``, and
for series ``problems(n)``, ``messages_for``, ``echo_answer`` (a ``Reply`` right for two problems in three) and
``new_store``."""

from __future__ import annotations

from typing import Any

from orchestrator.client import ChatClient
from orchestrator.client.ratelimit import RateLimiter
from orchestrator.contract import Endpoint, Problem, Sampling, Timeouts, Transport
from orchestrator.results import SeriesStore
from tests.support.scripted_server import Reply, ok

KEY = "sk-test-0123456789abcdef"
HASH = "c" * 16


PROBLEM = Problem(id="p1", dataset="ds", domain="math", task="2+2?", reference="4")
MESSAGES = [{"role": "user", "content": "2+2?"}]


class Timeline:
    """A fake clock whose ``sleep`` records the delay and moves the clock on (backoff and rate limiter share it)."""

    def __init__(self, sleeps: list) -> None:
        self.now, self.sleeps = 0.0, sleeps

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def client(url: str | list[str], sleeps: list | None = None, key: str | None = KEY, **kw: Any) -> ChatClient:
    sampling = kw.pop("sampling", Sampling(max_tokens=512))
    kw.setdefault("transport", Transport(timeouts=Timeouts.within(5), max_retries=3))
    urls = [url] if isinstance(url, str) else url
    endpoints = [Endpoint(api_base=u, api_key=key) for u in urls]
    time_ = Timeline(sleeps if sleeps is not None else [])
    kw.setdefault("limiter", RateLimiter(clock=time_.clock, sleep=time_.sleep))
    kw.setdefault("halt_poll", 3600.0)  # a backoff slept in one piece: ``sleeps`` lists the backoffs
    return ChatClient(
        endpoints if len(endpoints) > 1 else endpoints[0], "m", sampling, sleep=time_.sleep, rng=lambda: 1.0, **kw
    )


def problems(n: int) -> list[Problem]:
    return [Problem(id=f"p{i}", dataset="ds", domain="math", task=f"{i}+{i}?", reference=str(2 * i)) for i in range(n)]


def messages_for(p: Problem) -> list[dict]:
    return [{"role": "user", "content": p.task}]


def echo_answer(body: dict) -> Reply:
    i = int(body["messages"][0]["content"].split("+")[0])
    return ok(f"ОТВЕТ: {2 * i if i % 3 else -1}")


def new_store(tmp_path, total: int = 10) -> SeriesStore:
    return SeriesStore(tmp_path, "m", "ds", HASH, meta={"total": total})
