"""GigaChat clients against the loopback stand-in of ``standins.chat_apis``: the ``giga`` fixture (registered for
every test by ``tests/conftest.py``) starts ``GigaChatStandIn``s for ``CREDENTIALS`` and closes them after the test;
``giga_client(endpoint)`` is a ``ChatClient`` with its own token source; ``ask_all`` runs a series of ``n`` problems.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.client import ChatClient, run_series
from orchestrator.client.auth import EndpointAuth
from orchestrator.client.gigachat import TokenSource
from orchestrator.client.ratelimit import RateLimiter
from orchestrator.contract import Endpoint, Problem, Sampling, Timeouts, Transport
from orchestrator.results import SeriesStore
from standins.chat_apis import GigaChatStandIn

CREDENTIALS = "Y2xpZW50LWlkOmNsaWVudC1zZWNyZXQtMDEyMzQ1Njc4OQ=="


@pytest.fixture
def giga():
    servers: list[GigaChatStandIn] = []

    def start(**kw: Any) -> GigaChatStandIn:
        servers.append(GigaChatStandIn(CREDENTIALS, **kw))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def giga_client(ep: Endpoint, source: TokenSource | None = None, **kw: Any) -> ChatClient:
    """A client of ``ep`` with its own token source (the process-wide one is shared across tests otherwise)."""
    assert ep.gigachat is not None
    source = source or TokenSource(ep.gigachat, ep.verify)
    sampling = kw.pop("sampling", Sampling(max_tokens=64))
    transport = kw.pop("transport", Transport(timeouts=Timeouts.within(10), max_retries=2))
    return ChatClient(
        ep,
        "GigaChat-2-Max",
        sampling,
        transport=transport,
        auth=EndpointAuth([ep], tokens=lambda auth, verify: source),
        limiter=kw.pop("limiter", RateLimiter()),
        **kw,
    )


def problems(n: int) -> list[Problem]:
    return [Problem(id=f"p{i}", dataset="ds", domain="math", task=f"{i}+4?", reference="4") for i in range(n)]


def store(tmp_path: Path, n: int) -> SeriesStore:
    return SeriesStore(tmp_path / "results", "GigaChat-2-Max", "ds", "g" * 16, meta={"total": n})


def ask_all(client: ChatClient, tmp_path: Path, n: int, parallel: int):
    return run_series(
        problems(n), client, store(tmp_path, n), lambda p: [{"role": "user", "content": p.task}], parallel=parallel
    )
