"""A bare asyncio HTTP client for s4: the ceiling of any client at the same concurrency (issue 18's "an async
client in place of threads").

One event loop, one ``aiohttp`` connection pool sized to the concurrency, ``concurrency`` coroutines that take the
next prompt and POST it to ``/v1/chat/completions`` -- the very body ``ChatClient`` sends to a managed server (the
same messages, greedy, ``max_tokens`` with ``ignore_eos``, no streaming) -- and read the reply's usage. Nothing else:
no store, no grading, no liveness watch, no retries. If our client (``run_series`` + ``ChatClient``, threads) comes
as close to the offline engine as this one does, the client is not where the gap is, and an async rewrite of the
client would not close it. A failed request raises: the pass does not count.

aiohttp comes with vLLM (``vllm bench serve`` uses it), so it is there wherever a server is.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

import aiohttp

from benchmarks.client_throughput import Measure
from orchestrator.contract import Problem
from orchestrator.prompts import build_messages

LABEL = "bare async"


def bare_pass(base_url: str, problems: Sequence[Problem], max_tokens: int, concurrency: int, served: str) -> Measure:
    """Every problem once through the bare client; the wall time from the first request to the last reply."""
    bodies = [json.dumps(body(p, max_tokens, served), ensure_ascii=False).encode("utf-8") for p in problems]
    started = time.perf_counter()
    tokens = asyncio.run(_run(base_url.rstrip("/") + "/chat/completions", bodies, concurrency))
    return Measure(LABEL, concurrency, len(bodies), tokens, time.perf_counter() - started)


def body(problem: Problem, max_tokens: int, served: str) -> dict[str, Any]:
    """What ``ChatClient`` sends a managed server in the s4 passes (``ChatClient._payload`` with ``ignore_eos``)."""
    return {
        "ignore_eos": True,
        "model": served,
        "messages": build_messages(problem),
        "temperature": 0.0,
        "max_tokens": max_tokens,
    }


async def _run(url: str, bodies: list[bytes], concurrency: int) -> int:
    queue = iter(bodies)
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        totals = await asyncio.gather(*(_worker(session, url, queue) for _ in range(concurrency)))
    return sum(totals)


async def _worker(session: aiohttp.ClientSession, url: str, queue: Any) -> int:
    tokens = 0
    for data in queue:  # one iterator shared by the coroutines of one thread: each takes the next prompt
        async with session.post(url, data=data, headers={"Content-Type": "application/json"}) as resp:
            text = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"bare async client: HTTP {resp.status}: {text[:300]!r}")
        tokens += json.loads(text)["usage"]["completion_tokens"]
    return tokens
