"""Issue 12 against the real vLLM (CPU) session server: a slow server that keeps generating is never a failure, a
SIGSTOPped engine is still found. Uses the shared ``vllm_server`` (no server of its own)."""

from __future__ import annotations

import signal
import threading

import psutil
import pytest

from orchestrator.client import ChatClient, ManagedServer, run_series
from orchestrator.contract import Problem, Sampling, Timeouts, Transport
from orchestrator.errors import ServerHungError
from orchestrator.results import SeriesStore
from tests.support.waiting import wait_for

pytestmark = pytest.mark.vllm

HASH = "e" * 16
STALL_LIMIT = 2.0  # request_timeout: far below what one answer takes with 64 in flight on 2 cores
TOKENS = 512  # per answer: 64 x 128 took 1.9 s on an idle 2-core box, under the limit; 512 keep a 4x margin


def problems(n: int) -> list[Problem]:
    return [Problem(id=f"s{i}", dataset="ds", domain="math", task=f"{i}+{i}?", reference=str(2 * i)) for i in range(n)]


def messages_for(p: Problem) -> list[dict]:
    return [{"role": "user", "content": p.task}]


def managed_client(server, sampling: Sampling, transport: Transport) -> ChatClient:
    """The client exactly as the runner builds it for a managed server (progress from its /metrics)."""
    return ChatClient(
        server.endpoint,
        server.spec.served_name,
        sampling,
        transport=transport,
        server=ManagedServer.of(server),
        context_len=server.max_model_len(),
        extra_body={"ignore_eos": True},
    )


def test_64_parallel_answers_slower_than_request_timeout_are_all_stored(vllm_server, tmp_path):
    """The issue's scenario: parallel 64 with request_timeout far below an answer's time; the engine progresses,
    so every answer is stored, none is an error, and every one ran its full budget (recorded as truncated)."""
    sampling = Sampling(max_tokens=TOKENS)
    store = SeriesStore(tmp_path, "tiny", "ds", HASH, meta={"total": 64})
    before = vllm_server.progress()
    with managed_client(vllm_server, sampling, Transport(Timeouts.within(STALL_LIMIT), max_retries=2)) as client:
        score = run_series(problems(64), client, store, messages_for, parallel=64)
    records = store.records()
    assert score.answered == 64 and score.errors == 0 and all(r.error is None for r in records)
    assert max(r.latency_s for r in records) > STALL_LIMIT  # the scenario is real: answers outlived the limit
    assert {r.finish_reason for r in records} == {"length"} and {r.completion_tokens for r in records} == {TOKENS}
    assert score.truncated == 64
    assert vllm_server.progress() >= before + 64 * TOKENS  # /metrics counted what was generated


def test_a_sigstopped_engine_mid_series_is_found_as_hung(vllm_server, tmp_path):
    """SIGSTOP of VLLM::EngineCore once the first answer is stored: the counters freeze, the series stops with
    ServerHungError (the runner restarts on it); SIGCONT brings the shared server back."""
    engine = next(
        p for p in psutil.Process(vllm_server.pid).children(recursive=True) if p.name().startswith("VLLM::EngineCore")
    )
    stopped = threading.Event()

    def stop_engine(rec) -> None:
        if not stopped.is_set():
            stopped.set()
            engine.send_signal(signal.SIGSTOP)

    sampling = Sampling(max_tokens=60)
    probe_timeout, vllm_server.probe_timeout = vllm_server.probe_timeout, 3.0
    try:
        with managed_client(vllm_server, sampling, Transport(Timeouts.within(STALL_LIMIT), max_retries=2)) as client:
            with pytest.raises(ServerHungError, match="no progress on the server"):
                run_series(
                    problems(40),
                    client,
                    SeriesStore(tmp_path, "tiny", "ds", HASH, meta={"total": 40}),
                    messages_for,
                    parallel=8,
                    on_record=stop_engine,
                )
        assert stopped.is_set()
    finally:
        engine.send_signal(signal.SIGCONT)
        vllm_server.probe_timeout = probe_timeout
    wait_for(vllm_server.responsive, 120, "the server to answer the probe again")
