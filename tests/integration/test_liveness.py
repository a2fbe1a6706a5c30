"""``request_timeout`` is a stall limit, not a limit on how long an answer may take (issue 12).

Managed servers are waited for while their progress counter grows; a frozen counter is a stall (then the 1-token
probe decides hung or not). API answers stream: silence is the limit, a long answer still arriving is kept. Real HTTP
on 127.0.0.1 (the scripted server of test_client.py).
"""

from __future__ import annotations

import itertools
import logging
import time

import pytest

from orchestrator.client import ManagedServer, run_series
from orchestrator.client.liveness import ProgressWatch, progress_from_metrics
from orchestrator.client.stream import StreamError, read_stream
from orchestrator.contract import Sampling, Timeouts, Transport
from orchestrator.errors import ServerHungError
from orchestrator.job import run_model
from tests.support.client_kit import HASH, MESSAGES, PROBLEM, client, echo_answer, messages_for, new_store, problems
from tests.support.jobs import N, StubServer, answered, context, model_config, spec
from tests.support.scripted_server import Reply, error, ok

# a trimmed copy of what vLLM 0.32 (V1 engine, CPU build) serves on /metrics, two data-parallel engines
METRICS = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="tiny-llama"} 3.0
vllm:num_requests_waiting{engine="0",model_name="tiny-llama"} 0.0
vllm:prompt_tokens_total{engine="0",model_name="tiny-llama"} 20.0
vllm:prompt_tokens_total{engine="1",model_name="tiny-llama"} 5.0
vllm:prompt_tokens_created{engine="0",model_name="tiny-llama"} 1.7960890501461592e+09
vllm:prompt_tokens_by_source_total{engine="0",model_name="tiny-llama",source="local_compute"} 20.0
vllm:generation_tokens_total{engine="0",model_name="tiny-llama"} 400.0
vllm:generation_tokens_created{engine="0",model_name="tiny-llama"} 1.7960890501463299e+09
"""
SLOW = Transport(timeouts=Timeouts.within(0.3), max_retries=3)  # with the helper's Sampling(max_tokens=512)


def growing() -> itertools.count[int]:
    return itertools.count(1)


def test_progress_is_the_sum_of_vllms_prompt_and_generated_token_counters_over_engines():
    assert progress_from_metrics(METRICS) == 425.0
    assert progress_from_metrics("# nothing here\nprocess_cpu_seconds_total 1.5\n") is None


# -- managed servers: progress decides --------------------------------------------------------------------------
def test_an_answer_slower_than_request_timeout_is_kept_while_the_server_progresses(serve):
    srv = serve(default=Reply(delay=1.5, body=ok().body))
    probes: list[int] = []
    counter = growing()
    c = client(
        srv.url,
        transport=SLOW,
        server=ManagedServer(
            alive=lambda: True, responsive=lambda: probes.append(1) or True, progress=lambda: next(counter)
        ),
    )
    rec = c.ask(PROBLEM, MESSAGES, HASH)
    assert rec.error is None and rec.response == "ОТВЕТ: 4" and rec.latency_s >= 1.5 and probes == []
    assert "stream" not in srv.chats()[0]["body"]  # a managed server is asked plainly; /metrics tells progress


def test_a_series_of_slow_answers_stores_every_one_with_no_error(serve, tmp_path):
    """The issue's scenario on a scripted server: answers take 5x request_timeout, the engine keeps generating."""
    srv = serve(default=lambda body: Reply(delay=1.5, body=echo_answer(body).body))
    counter = growing()
    c = client(
        srv.url,
        transport=SLOW,
        server=ManagedServer(alive=lambda: True, responsive=lambda: True, progress=lambda: next(counter)),
    )
    store = new_store(tmp_path, 12)
    score = run_series(problems(12), c, store, messages_for, parallel=12)
    assert score.answered == 12 and score.errors == 0 and len(srv.chats()) == 12
    assert all(rec.error is None for rec in store.records())


def test_a_frozen_counter_with_a_failing_probe_is_a_hung_server(serve, tmp_path):
    srv = serve(default=Reply(delay=30.0, body=ok().body))
    probes: list[int] = []
    c = client(
        srv.url,
        transport=SLOW,
        server=ManagedServer(alive=lambda: True, responsive=lambda: probes.append(1) or False, progress=lambda: 7.0),
    )
    store = new_store(tmp_path, 4)
    began = time.monotonic()
    with pytest.raises(ServerHungError, match="no progress on the server for 0.3 s"):
        run_series(problems(4), c, store, messages_for, parallel=4)
    assert time.monotonic() - began < 25 and store.records() == [] and probes == [1]  # not the 30 s reply


def test_a_frozen_counter_with_a_live_probe_is_a_timeout_record(serve):
    srv = serve(default=Reply(delay=30.0, body=ok().body))
    c = client(
        srv.url, transport=SLOW, server=ManagedServer(alive=lambda: True, responsive=lambda: True, progress=lambda: 7.0)
    )
    rec = c.ask(PROBLEM, MESSAGES, HASH)
    assert rec.error == "no progress on the server for 0.3 s (request_timeout)"


def test_a_frozen_counter_is_excused_while_the_server_answers_the_probe(serve):
    """Work the counters do not show (a long prefill, a slow /metrics): the probe proves the engine generates, so
    the request waits on instead of failing."""
    srv = serve(default=Reply(delay=0.8, body=ok().body))
    probes: list[int] = []
    c = client(
        srv.url,
        transport=SLOW,
        server=ManagedServer(alive=lambda: True, responsive=lambda: probes.append(1) or True, progress=lambda: 7.0),
    )
    rec = c.ask(PROBLEM, MESSAGES, HASH)
    assert rec.error is None and rec.response == "ОТВЕТ: 4" and 1 <= len(probes) <= 3


def test_a_probe_answered_late_by_a_busy_engine_is_no_hang(serve):
    """The counters freeze for longer than the limit (a slow engine step), the probe is slow too, but the counters
    move while it runs: busy, not hung; the request waits on without using up its allowance."""
    srv = serve(default=Reply(delay=2.0, body=ok().body))
    frozen_until = time.monotonic() + 0.8
    ticks = itertools.count()

    def progress() -> float:
        return 0.0 if time.monotonic() < frozen_until else 100.0 * next(ticks)  # 64 sequences decoding

    def slow_probe() -> bool:
        time.sleep(5.0)
        return False  # it would have timed out: a verdict on the probe alone would say hung

    c = client(
        srv.url, transport=SLOW, server=ManagedServer(alive=lambda: True, responsive=slow_probe, progress=progress)
    )
    rec = c.ask(PROBLEM, MESSAGES, HASH)
    assert rec.error is None and rec.response == "ОТВЕТ: 4"


def test_unreadable_metrics_fall_back_to_the_clock(serve, caplog):
    srv = serve(default=Reply(delay=30.0, body=ok().body))
    c = client(
        srv.url,
        transport=SLOW,
        server=ManagedServer(alive=lambda: True, responsive=lambda: True, progress=lambda: None),
    )
    with caplog.at_level(logging.WARNING):
        rec = c.ask(PROBLEM, MESSAGES, HASH)
    assert "request_timeout" in rec.error and "no progress counters on /metrics" in caplog.text


def test_the_stall_limit_runs_from_the_last_progress_not_from_the_start():
    """A request that waited long while the engine worked is cut off ``limit`` after the counter froze; the counter
    is read at most once per interval, and a stall is measured up to when the latest reading was taken."""
    now, reads = [0.0], []
    values = {1.0: 10.0, 2.0: 20.0, 3.0: 30.0}

    def read() -> float:
        reads.append(now[0])
        value = values.get(now[0], 30.0)
        now[0] += 0.25  # a reading takes a while (a busy server)
        return value

    watch = ProgressWatch(read, clock=lambda: now[0], interval=1.0)
    stalls = []
    for t in (1.0, 1.5, 2.0, 3.0, 4.0, 7.0):
        now[0] = t
        stalls.append(watch.stall(0.0))
    assert reads == [1.0, 2.0, 3.0, 4.0, 7.0] and watch.last_progress() == 3.0
    assert stalls == [1.0, 1.0, 0.0, 0.0, 1.0, 4.0]
    assert watch.stall(5.0) == 2.0  # a request sent at 5.0 has waited 2 s without progress


# -- API models: streamed, silence is the limit ---------------------------------------------------------------
def chunk(content: str = "", finish: str | None = None, **delta: str) -> dict:
    return {"choices": [{"index": 0, "delta": {"content": content, **delta}, "finish_reason": finish}]}


USAGE = {"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 40}}


def test_a_long_streamed_answer_is_kept_however_long_it_takes(serve):
    """20 chunks 0.1 s apart (2 s in all) under a 0.5 s limit: nothing is cut off; reasoning is kept apart."""
    events = (
        [chunk(reasoning_content="думаю ") for _ in range(10)]
        + [chunk(f"{i}") for i in range(9)]
        + [chunk("!", finish="length"), USAGE, "data: [DONE]"]
    )
    srv = serve(default=Reply(events=tuple(events), event_delay=0.1))
    rec = client(srv.url, transport=Transport(timeouts=Timeouts.within(0.5), max_retries=3)).ask(
        PROBLEM, MESSAGES, HASH
    )
    assert rec.error is None and rec.latency_s >= 2.0
    assert rec.response == "012345678!" and rec.reasoning == "думаю " * 10  # never graded: not in the response
    assert (rec.finish_reason, rec.prompt_tokens, rec.completion_tokens) == ("length", 11, 40)


def test_a_stream_that_falls_silent_fails_within_the_limit(serve):
    srv = serve(default=Reply(events=(chunk("a"), chunk("b")), event_delay=3.0))
    sleeps: list[float] = []
    rec = client(srv.url, sleeps, transport=SLOW).ask(PROBLEM, MESSAGES, HASH)
    assert rec.error == "nothing arrived for 0.3 s (request_timeout)" and sleeps == [] and rec.latency_s < 2.5


def test_a_stream_cut_off_mid_answer_is_retried(serve):
    srv = serve([Reply(events=(chunk("a"),))], default=Reply(events=(chunk("42", finish="stop"), "data: [DONE]")))
    rec = client(srv.url).ask(PROBLEM, MESSAGES, HASH)
    assert rec.error is None and rec.response == "42" and len(srv.chats()) == 2


def test_an_endpoint_that_refuses_streaming_is_asked_without(serve):
    srv = serve([error(400, "stream_options is not supported")], default=ok("ОТВЕТ: 5"))
    c = client(srv.url)
    first, second = c.ask(PROBLEM, MESSAGES, HASH), c.ask(PROBLEM, MESSAGES, HASH)
    assert first.response == second.response == "ОТВЕТ: 5"
    assert ["stream" in r["body"] for r in srv.chats()] == [True, False, False]


def test_an_error_event_in_the_stream_is_an_error():
    with pytest.raises(StreamError, match="engine died"):
        read_stream(
            [
                b'data: {"choices": [{"index": 0, "delta": {"content": "a"}}]}',
                b"",
                b'data: {"error": {"message": "engine died", "code": 500}}',
            ]
        )
    body = read_stream(
        [
            b": keep-alive",
            b'data: {"choices": [{"index": 0, "delta": {"reasoning": "r"}}]}',
            b'data: {"choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": "stop"}]}',
        ]
    )
    assert body["choices"][0] == {
        "index": 0,
        "finish_reason": "stop",
        "message": {"role": "assistant", "content": "x", "reasoning_content": "r"},
    }


# -- the clamp is said once ----------------------------------------------------------------------------------------
def test_a_clamp_that_cuts_the_budget_is_logged_once_per_model(serve, caplog):
    srv = serve(tokenize=lambda body: Reply(body={"count": 150, "max_model_len": 1000, "tokens": []}))
    with caplog.at_level(logging.WARNING, logger="orchestrator.client.chat"):
        for _ in range(2):
            c = client(srv.url, context_len=600, sampling=Sampling(max_tokens=512 + 7), transport=Transport())
            for _ in range(3):
                assert c.ask(PROBLEM, MESSAGES, HASH).error is None
    said = [r.getMessage() for r in caplog.records if "does not fit" in r.getMessage()]
    assert len(said) == 1 and "max_tokens 519" in said[0] and "cut to 450" in said[0]
    assert [r["body"]["max_tokens"] for r in srv.chats()] == [450] * 6


# -- the runner wires a managed server's progress into its client ------------------------------------------------
class ProgressingServer(StubServer):
    """A stub managed server whose /metrics counter grows on every reading (an engine at work)."""

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.readings = itertools.count(1)
        self.probes = 0

    def progress(self) -> float:
        return float(next(self.readings))

    def responsive(self) -> bool:
        self.probes += 1
        return super().responsive()


def test_the_runner_waits_for_a_progressing_managed_server_past_request_timeout(tmp_path, stubs):
    """request_timeout 0.5 s in the config, answers take 1 s: all stored, no restart, no probe."""
    server = ProgressingServer(spec(), stubs(default=Reply(delay=1.0, body=ok().body)).url)
    outcome = run_model(context(tmp_path, [server]), model_config(tmp_path), spec())
    assert outcome.status == "finished" and outcome.restarts == 0 and server.probes == 0
    assert sorted(answered(tmp_path)) == sorted(f"p{i}" for i in range(N))
