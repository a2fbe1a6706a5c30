"""The chat client and run_series against real HTTP servers on 127.0.0.1 with scripted timelines."""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from orchestrator.client import ChatClient, Halted, ManagedServer, clamp_from_message, run_series, split_reasoning
from orchestrator.client.jsoncodec import MsgspecJson, StdlibJson
from orchestrator.client.ratelimit import RateLimiter
from orchestrator.contract import AnswerRecord, Endpoint, Grade, Problem, Sampling, Timeouts, Transport
from orchestrator.errors import EndpointError, GradingError, ServerDiedError
from orchestrator.results import SeriesStore
from tests.support.client_kit import (
    HASH,
    KEY,
    MESSAGES,
    PROBLEM,
    client,
    echo_answer,
    messages_for,
    new_store,
    problems,
)
from tests.support.scripted_server import Reply, error, ok


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- one request --------------------------------------------------------------------------------------------------
def test_answer_is_recorded_with_tokens_latency_and_the_key_in_the_header_only(serve):
    srv = serve([ok(prompt=21, completion=9, finish="length")])
    rec = client(srv.url).ask(PROBLEM, MESSAGES, HASH)
    got = (rec.response, rec.finish_reason, rec.prompt_tokens, rec.completion_tokens)
    assert got == ("ОТВЕТ: 4", "length", 21, 9)
    assert rec.error is None and rec.latency_s > 0 and rec.settings_hash == HASH and rec.timestamp > 0
    assert (rec.id, rec.dataset, rec.task, rec.reference, rec.model) == ("p1", "ds", "2+2?", "4", "m")
    sent = srv.chats()[0]
    assert sent["headers"]["Authorization"] == f"Bearer {KEY}"
    assert sent["body"] == {
        "model": "m",
        "messages": MESSAGES,
        "temperature": 0.0,
        "max_tokens": 512,
        "stream": True,
        "stream_options": {"include_usage": True},
    }  # an API model streams


def test_429_then_200_retries_after_backoff_honouring_retry_after(serve):
    srv = serve([error(429, "slow down"), error(429, "slow down", headers={"Retry-After": "7"}), ok()])
    sleeps: list[float] = []
    rec = client(srv.url, sleeps).ask(PROBLEM, MESSAGES, HASH)
    assert rec.error is None and rec.response == "ОТВЕТ: 4"
    assert len(srv.chats()) == 3 and sleeps == [1.0, 7.0]


def test_5xx_until_the_limit_gives_an_error_record_with_exponential_jittered_backoff(serve):
    srv = serve(default=error(500, "engine hiccup"))
    sleeps: list[float] = []
    c = ChatClient(
        Endpoint(srv.url),
        "m",
        Sampling(),
        transport=Transport(max_retries=4, backoff_base=2.0, backoff_cap=10.0),
        sleep=sleeps.append,
        rng=lambda: 0.0,
        halt_poll=3600.0,
    )
    rec = c.ask(PROBLEM, MESSAGES, HASH)
    assert len(srv.chats()) == 5
    assert sleeps == [1.0, 2.0, 4.0, 5.0]  # 2 * 2**n, capped at 10, times jitter 0.5..1
    assert rec.error.startswith("HTTP 500: engine hiccup") and "gave up after 5 attempts" in rec.error
    assert rec.response == "" and rec.verdict == ""


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_other_4xx_are_not_retried(serve, status):
    srv = serve(default=error(status, "nope"))
    sleeps: list[float] = []
    rec = client(srv.url, sleeps).ask(PROBLEM, MESSAGES, HASH)
    assert len(srv.chats()) == 1 and sleeps == [] and rec.error == f"HTTP {status}: nope"


def test_connection_refused_is_retried_then_recorded():
    sleeps: list[float] = []
    rec = client(f"http://127.0.0.1:{free_port()}/v1", sleeps).ask(PROBLEM, MESSAGES, HASH)
    assert rec.error.startswith("connection error") and "gave up after 4 attempts" in rec.error
    assert sleeps == [1.0, 2.0, 4.0]


def test_dropped_connection_is_retried(serve):
    srv = serve([Reply(drop=True), ok()])
    rec = client(srv.url).ask(PROBLEM, MESSAGES, HASH)
    assert rec.error is None and len(srv.chats()) == 2


def test_a_reply_slower_than_the_timeout_is_an_error_without_retry(serve):
    srv = serve([Reply(delay=3.0, body=ok().body)])
    sleeps: list[float] = []
    c = client(srv.url, sleeps, sampling=Sampling(), transport=Transport(timeouts=Timeouts.within(0.3), max_retries=3))
    started = time.monotonic()
    rec = c.ask(PROBLEM, MESSAGES, HASH)
    assert time.monotonic() - started < 2.5 and 0.25 < rec.latency_s < 2.5
    assert "request_timeout" in rec.error and sleeps == [] and len(srv.chats()) == 1


def test_malformed_200_is_retried(serve):
    srv = serve([Reply(body={"object": "error"}), Reply(body="not json"), ok()])
    assert client(srv.url).ask(PROBLEM, MESSAGES, HASH).error is None and len(srv.chats()) == 3


@pytest.mark.parametrize(
    "message,expected",
    [
        ({"content": "ОТВЕТ: 4", "reasoning_content": "думаю"}, ("ОТВЕТ: 4", "думаю")),
        ({"content": "ОТВЕТ: 4", "reasoning": "думаю"}, ("ОТВЕТ: 4", "думаю")),
        ({"content": "<think>думаю</think>\n\nОТВЕТ: 4"}, ("ОТВЕТ: 4", "думаю")),
        ({"content": "думаю</think>ОТВЕТ: 4"}, ("ОТВЕТ: 4", "думаю")),
        ({"content": None, "reasoning_content": "всё думаю"}, ("", "всё думаю")),
    ],
)
def test_reasoning_is_kept_apart_from_the_answer(serve, message, expected):
    srv = serve([ok(**message)])
    rec = client(srv.url).ask(PROBLEM, MESSAGES, HASH)
    assert (rec.response, rec.reasoning) == expected and rec.error is None


@pytest.mark.parametrize("codec", [StdlibJson(), MsgspecJson()], ids=["json", "msgspec"])
def test_a_codec_sends_utf8_json_and_reads_the_reply_and_malformed_replies_are_still_retried(serve, codec):
    srv = serve([Reply(body="not json"), ok("ОТВЕТ: 4", completion=5)])
    rec = client(srv.url, codec=codec).ask(PROBLEM, [{"role": "user", "content": "Сколько будет 2+2?"}], HASH)
    assert (rec.error, rec.response, rec.completion_tokens) == (None, "ОТВЕТ: 4", 5)
    sent = srv.chats()[-1]
    assert sent["headers"]["Content-Type"] == "application/json" and sent["headers"]["Authorization"] == f"Bearer {KEY}"
    assert sent["body"]["messages"][0]["content"] == "Сколько будет 2+2?" and sent["raw"].count(b"\\u") == 0
    assert len(srv.chats()) == 2


def test_extra_body_is_sent_but_cannot_override_the_request(serve):
    srv = serve()
    client(srv.url, extra_body={"ignore_eos": True, "max_tokens": 1}).ask(PROBLEM, MESSAGES, HASH)
    body = srv.chats()[0]["body"]
    assert body["ignore_eos"] is True and body["max_tokens"] == 512


def test_several_endpoints_share_the_load_and_fail_over(serve):
    a, b = serve(), serve()
    dead = f"http://127.0.0.1:{free_port()}/v1"
    c = client([a.url, b.url])
    for _ in range(4):
        c.ask(PROBLEM, MESSAGES, HASH)
    assert len(a.chats()) == 2 and len(b.chats()) == 2
    sleeps: list[float] = []
    failover = client([dead, a.url], sleeps)
    recs = [failover.ask(PROBLEM, MESSAGES, HASH) for _ in range(2)]  # dead first, then a first
    assert all(r.error is None for r in recs) and len(sleeps) == 1


# -- the key never leaks ------------------------------------------------------------------------------------------
def test_the_key_never_reaches_errors_or_logs(serve, caplog, tmp_path):
    srv = serve(default=lambda body: error(401, f"invalid key {KEY} (Authorization: Bearer {KEY})"))
    caplog.set_level(logging.DEBUG)
    store = SeriesStore(tmp_path, "m", "ds", HASH, meta={"total": 1})
    run_series([PROBLEM], client(srv.url), store, lambda p: MESSAGES, parallel=1)
    rec = store.records()[0]
    assert rec.error.startswith("HTTP 401: invalid key ***") and KEY not in rec.error
    assert KEY not in caplog.text
    assert all(KEY not in p.read_text() for p in store.paths.dir.iterdir() if p.is_file())
    assert "Endpoint(api_base=" in repr(Endpoint("u", KEY)) and KEY not in repr(Endpoint("u", KEY))


# -- managed servers: clamp and death -----------------------------------------------------------------------------
def test_max_tokens_is_clamped_to_the_context_left_after_the_prompt(serve):
    srv = serve(
        tokenize=lambda body: Reply(body={"count": 100 + len(body["messages"]), "max_model_len": 1000, "tokens": []})
    )
    rec = client(srv.url, context_len=600).ask(PROBLEM, MESSAGES, HASH)
    tok = [r for r in srv.requests if r["path"] == "/tokenize"][0]
    assert tok["body"] == {"model": "m", "messages": MESSAGES}
    assert srv.chats()[0]["body"]["max_tokens"] == 600 - 101 and rec.error is None
    roomy = client(srv.url, context_len=100_000).ask(PROBLEM, MESSAGES, HASH)  # surely fits: no /tokenize
    assert srv.chats()[1]["body"]["max_tokens"] == 512 and roomy.error is None and roomy.prompt_tokens == 11
    assert [r["path"] for r in srv.requests].count("/tokenize") == 1


def test_a_prompt_longer_than_the_context_is_an_error_without_a_request(serve):
    srv = serve(tokenize=Reply(body={"count": 1200, "max_model_len": 600, "tokens": []}))
    sleeps: list[float] = []
    rec = client(srv.url, sleeps, context_len=600).ask(PROBLEM, MESSAGES, HASH)
    assert srv.chats() == [] and sleeps == [] and rec.prompt_tokens == 1200
    assert "prompt is 1200 tokens but the server's context is 600" in rec.error


def test_a_context_length_400_is_clamped_from_its_numbers_once(serve):
    msg = (
        "This model's maximum context length is 2048 tokens. However, you requested 2100 tokens "
        "(300 in the messages, 1800 in the completion). Please reduce the length of the messages or completion."
    )
    srv = serve([error(400, msg), ok()])
    rec = client(srv.url, sampling=Sampling(max_tokens=1800), transport=Transport()).ask(PROBLEM, MESSAGES, HASH)
    assert [r["body"]["max_tokens"] for r in srv.chats()] == [1800, 1748] and rec.error is None
    srv2 = serve(default=error(400, msg))
    rec2 = client(srv2.url, sampling=Sampling(max_tokens=1800), transport=Transport()).ask(PROBLEM, MESSAGES, HASH)
    assert len(srv2.chats()) == 2 and rec2.error.startswith("HTTP 400")  # no loop


@pytest.mark.parametrize(
    "message,max_tokens,prompt,expected",
    [
        (
            "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (1000 in the "
            "messages, 4000 in the completion).",
            4000,
            None,
            3096,
        ),
        (
            "'max_tokens' or 'max_completion_tokens' is too large: 3000. This model's maximum context length is 2048 "
            "tokens and your request has 100 input tokens (3000 > 2048 - 100).",
            3000,
            None,
            1948,
        ),
        (
            "max_tokens=9000 cannot be greater than max_model_len=8192. Please request fewer output tokens.",
            9000,
            192,
            8000,
        ),
        (
            "This model's maximum context length is 1024 tokens. However, your prompt contains 2000 input tokens, "
            "which exceeds this limit even without any output tokens.",
            100,
            None,
            0,
        ),
        (
            "max_tokens is too large: 9000. This model supports at most 4096 completion tokens, "
            "whereas you provided 9000.",
            9000,
            None,
            4096,
        ),
        ("temperature must be non-negative", 100, None, None),
    ],
)
def test_clamp_from_message(message, max_tokens, prompt, expected):
    assert clamp_from_message(message, max_tokens, prompt) == expected


def test_a_prompt_too_long_400_is_final(serve):
    msg = "This model's maximum context length is 1024 tokens. However, your prompt contains 2000 input tokens."
    srv = serve(default=error(400, msg))
    rec = client(srv.url).ask(PROBLEM, MESSAGES, HASH)
    assert len(srv.chats()) == 1 and rec.error.startswith("prompt does not fit the context")


def test_no_tokenize_endpoint_falls_back_to_the_configured_max_tokens(serve):
    srv = serve()  # /tokenize answers 404
    c = client(srv.url, context_len=700)
    for _ in range(3):
        assert c.ask(PROBLEM, MESSAGES, HASH).error is None
    assert [r["path"] for r in srv.requests].count("/tokenize") == 1
    assert [r["body"]["max_tokens"] for r in srv.chats()] == [512] * 3


@pytest.fixture
def real_server():
    """A real server process (python's http.server answers POST with 501) that a test may kill."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield proc, f"http://127.0.0.1:{port}/v1"
    proc.kill()
    proc.wait()


def test_a_dead_managed_server_stops_at_once_with_server_died(real_server):
    proc, url = real_server
    sleeps: list[float] = []
    c = client(url, sleeps, server=ManagedServer(alive=lambda: proc.poll() is None))
    assert "HTTP 501" in c.ask(PROBLEM, MESSAGES, HASH).error and sleeps == [1.0, 2.0, 4.0]  # alive: retried
    proc.kill()
    proc.wait()
    sleeps.clear()
    with pytest.raises(ServerDiedError, match="died") as info:
        c.ask(PROBLEM, MESSAGES, HASH)
    assert sleeps == [] and "\n" not in str(info.value)  # no retry loop against a corpse


# -- run_series ---------------------------------------------------------------------------------------------------


def grade(rec) -> Grade:
    got = rec.response.removeprefix("ОТВЕТ: ")
    return Grade(extracted=got, verdict="correct" if got == rec.reference else "incorrect")


def test_run_series_honours_parallel_grades_before_appending_and_resumes(serve, tmp_path):
    srv = serve(default=lambda body: Reply(delay=0.15, body=echo_answer(body).body))
    seen: list[str] = []
    store = new_store(tmp_path, 12)
    score = run_series(
        problems(12),
        client(srv.url),
        store,
        messages_for,
        grade=grade,
        parallel=4,
        on_record=lambda r: seen.append(r.id),
    )
    assert srv.max_inflight == 4 and len(srv.chats()) == 12 and sorted(seen) == sorted(p.id for p in problems(12))
    assert (score.total, score.answered, score.correct, score.errors) == (12, 12, 8, 0)
    lines = [json.loads(x) for x in store.path.read_text().splitlines()]
    assert all(x["verdict"] in ("correct", "incorrect") and x["extracted"] for x in lines)  # each line is final
    assert "ОТВЕТ" in store.paths.md.read_text() and json.loads(store.paths.meta.read_text())["eval_seconds"] > 0.3
    again = run_series(problems(12), client(srv.url), new_store(tmp_path, 12), messages_for, grade=grade, parallel=4)
    assert len(srv.chats()) == 12 and again == score  # nothing asked twice


def test_transport_errors_are_stored_unscored_and_retried_on_resume(serve, tmp_path):
    srv = serve(
        default=lambda body: error(503, "busy") if body["messages"][0]["content"] == "1+1?" else echo_answer(body)
    )
    c = client(srv.url, sampling=Sampling(), transport=Transport(max_retries=1))
    score = run_series(problems(3), c, new_store(tmp_path, 3), messages_for, grade=grade, parallel=2)
    assert (score.answered, score.errors, score.correct) == (2, 1, 1)
    err = [r for r in new_store(tmp_path, 3).records() if r.error][0]
    assert err.id == "p1" and err.verdict == "" and "HTTP 503" in err.error
    srv.default = echo_answer
    before = len(srv.chats())
    score = run_series(problems(3), c, new_store(tmp_path, 3), messages_for, grade=grade, parallel=2)
    assert len(srv.chats()) == before + 1 and (score.answered, score.errors, score.correct) == (3, 0, 2)


def test_request_delay_spaces_request_starts_across_all_workers(serve, tmp_path):
    """``parallel: 4`` with ``request_delay: 0.2`` starts one request per 0.2 s in all, not four."""
    srv = serve()
    starts: list[float] = []

    class Timed(requests.Session):  # when the client sends, not when the server gets to it
        def post(self, *args: Any, **kw: Any) -> requests.Response:
            starts.append(time.monotonic())
            return super().post(*args, **kw)

    c = client(
        srv.url,
        sampling=Sampling(),
        transport=Transport(request_delay=0.2),
        session_factory=Timed,
        limiter=RateLimiter(),
    )
    run_series(problems(6), c, new_store(tmp_path, 6), messages_for, parallel=4)
    assert len(srv.chats()) == 6 and srv.max_inflight >= 1
    starts.sort()
    assert len(starts) == 6 and all(b - a >= 0.19 for a, b in zip(starts, starts[1:]))


def test_retry_after_on_429_pauses_every_worker_of_the_endpoint(serve, tmp_path):
    """A 429 with ``Retry-After: 2`` to one worker holds back every start of the endpoint for 2 s, not just its own."""
    srv = serve([error(429, "rate limit", headers={"Retry-After": "2"}), dataclasses.replace(ok(), delay=1.0)])

    class Recording(RateLimiter):
        def __init__(self) -> None:
            super().__init__()
            self.holds: list[tuple[float, float]] = []
            self.starts: list[tuple[float, float]] = []  # (asked, allowed)

        def hold(self, key: Any, seconds: float) -> None:
            self.holds.append((time.monotonic(), seconds))
            super().hold(key, seconds)

        def acquire(self, key: Any, interval: float, halted: Callable[[], bool] = lambda: False) -> float | None:
            asked = time.monotonic()
            waited = super().acquire(key, interval, halted)
            self.starts.append((asked, time.monotonic()))
            return waited

    limiter = Recording()
    score = run_series(problems(4), client(srv.url, limiter=limiter), new_store(tmp_path, 4), messages_for, parallel=2)
    assert score.answered == 4 and score.errors == 0 and len(srv.chats()) == 5
    ((held_at, seconds),) = limiter.holds
    after = [allowed for asked, allowed in limiter.starts if asked >= held_at]
    assert seconds == 2.0 and after and all(allowed >= held_at + 2.0 for allowed in after)


def test_a_server_dying_mid_series_raises_and_keeps_what_was_answered(serve, tmp_path):
    state = {"alive": True, "n": 0}

    def reply(body: dict) -> Reply:
        state["n"] += 1
        if state["n"] > 4:
            state["alive"] = False
            return Reply(drop=True)
        return echo_answer(body)

    srv = serve(default=reply)
    sleeps: list[float] = []
    c = client(srv.url, sleeps, server=ManagedServer(alive=lambda: state["alive"]))
    with pytest.raises(ServerDiedError):
        run_series(problems(10), c, new_store(tmp_path), messages_for, grade=grade, parallel=2)
    store = new_store(tmp_path)
    assert len(store.records()) == 4 and all(r.error is None for r in store.records()) and sleeps == []
    assert json.loads(store.paths.meta.read_text())["eval_seconds"] > 0
    srv.default, state["alive"] = echo_answer, True
    before = len(srv.chats())
    score = run_series(problems(10), c, store, messages_for, grade=grade, parallel=2)
    assert score.answered == 10 and len(srv.chats()) == before + 6  # the resume asks only the missing six


def test_an_endpoint_failing_again_and_again_stops_the_series(serve, tmp_path):
    srv = serve(default=error(401, "bad key"))
    c = client(srv.url, failure_limit=3)
    with pytest.raises(EndpointError, match="3 requests failed in a row") as info:
        run_series(problems(20), c, new_store(tmp_path, 20), messages_for, parallel=1)
    assert len(srv.chats()) == 3 and KEY not in str(info.value)
    assert len(new_store(tmp_path).records()) == 3


def test_stop_ends_the_series_early_without_error(serve, tmp_path):
    srv = serve()
    stop = threading.Event()
    seen: list[str] = []

    def on_record(rec) -> None:
        seen.append(rec.id)
        if len(seen) == 2:
            stop.set()

    score = run_series(
        problems(10), client(srv.url), new_store(tmp_path), messages_for, parallel=1, on_record=on_record, stop=stop
    )
    assert 2 <= score.answered <= 3 and len(srv.chats()) == score.answered


def test_a_series_stopped_during_a_retry_backoff_gives_the_request_up_at_once_and_stores_nothing(serve, tmp_path):
    stop = threading.Event()

    def reply(body: dict) -> Reply:
        stop.set()  # the run is stopped (Ctrl-C, SIGTERM) while this request's 30 s backoff begins
        return error(500, "engine hiccup")

    srv = serve(default=reply)
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        time.sleep(seconds)

    c = ChatClient(
        Endpoint(srv.url),
        "m",
        Sampling(),
        transport=Transport(max_retries=3, backoff_base=30.0),
        rng=lambda: 1.0,
        limiter=RateLimiter(),
        sleep=sleep,
    )
    store = new_store(tmp_path, 1)
    score = run_series(problems(1), c, store, messages_for, parallel=1, stop=stop)
    assert len(srv.chats()) == 1 and naps == [] and store.records() == [] and score.errors == 0


def test_a_backoff_asks_halted_between_naps_of_halt_poll_seconds(serve):
    srv = serve(default=error(500, "engine hiccup"))
    sleeps: list[float] = []
    c = client(srv.url, sleeps, halt_poll=0.5)
    asked = {"n": 0}

    def halted() -> bool:
        asked["n"] += 1
        return len(sleeps) >= 3  # stopped 1.5 s into the first backoff (1 s) and the second (2 s)

    c.halted = halted
    rec = c.ask(PROBLEM, MESSAGES, HASH)
    assert sleeps == [0.5, 0.5, 0.5] and len(srv.chats()) == 2 and asked["n"] >= 4
    assert isinstance(rec, Halted) and "stopped" in rec.reason  # the series drops it, nothing is stored


def test_a_server_torn_down_after_stop_is_not_an_error(serve, tmp_path):
    state = {"alive": True, "n": 0}
    stop = threading.Event()

    def reply(body: dict) -> Reply:
        state["n"] += 1
        if state["n"] == 1:
            return ok()
        time.sleep(0.5)  # in flight when the caller stops and tears down
        state["alive"] = False
        return Reply(drop=True)

    srv = serve(default=reply)
    score = run_series(
        problems(10),
        client(srv.url, server=ManagedServer(alive=lambda: state["alive"])),
        new_store(tmp_path),
        messages_for,
        parallel=2,
        stop=stop,
        on_record=lambda rec: stop.set(),
    )
    assert score.answered == 1 and 2 <= len(srv.chats()) <= 3 and not state["alive"]


def test_a_grader_that_cannot_run_stops_the_series_and_stores_nothing_ungraded(serve, tmp_path):
    srv = serve()

    def broken(rec) -> Grade:
        raise GradingError("grader worker could not start")

    with pytest.raises(GradingError):
        run_series(problems(5), client(srv.url), new_store(tmp_path), messages_for, grade=broken, parallel=1)
    assert new_store(tmp_path).records() == []


def test_split_reasoning_leaves_plain_content_alone():
    assert split_reasoning("ОТВЕТ: 4", "") == ("ОТВЕТ: 4", "")


def test_a_hung_managed_server_raises_server_hung_and_stores_nothing(serve, tmp_path):
    """A request timeout plus a failed 1-token probe: ServerHungError (the runner restarts), no timeout records."""
    from orchestrator.errors import ServerHungError

    srv = serve(default=lambda body: Reply(delay=3.0, body=echo_answer(body).body))
    probes: list[int] = []
    slow = Transport(timeouts=Timeouts.within(0.3), max_retries=3)
    c = client(
        srv.url, transport=slow, server=ManagedServer(lambda: True, responsive=lambda: probes.append(1) or False)
    )
    store = new_store(tmp_path)
    with pytest.raises(ServerHungError, match="hung"):
        run_series(problems(6), c, store, messages_for, parallel=3)
    assert store.records() == [] and len(probes) == 1  # threads timing out together probe once


def test_a_slow_but_responsive_server_gets_a_timeout_record_not_a_restart(serve):
    srv = serve(default=lambda body: Reply(delay=1.0, body=echo_answer(body).body))
    probes: list[int] = []
    slow = Transport(timeouts=Timeouts.within(0.3), max_retries=3)
    c = client(srv.url, transport=slow, server=ManagedServer(lambda: True, responsive=lambda: probes.append(1) or True))
    rec = c.ask(PROBLEM, MESSAGES, HASH)
    assert "request_timeout" in rec.error and probes == [1]


def test_a_failed_request_is_asked_once_more_at_the_end_of_the_series(serve, tmp_path):
    """A transient failure (here a 400 the first time) does not leave a hole until the next run."""
    srv = serve(script=[error(400, "try again later")], default=echo_answer)
    store = new_store(tmp_path, 3)
    score = run_series(problems(3), client(srv.url), store, messages_for, grade=grade, parallel=1)
    assert score.answered == 3 and len(srv.chats()) == 4
    assert len(store.path.read_text().splitlines()) == 4  # the failure stays on record


def test_a_request_that_keeps_failing_is_asked_only_twice(serve, tmp_path):
    srv = serve(default=error(400, "never"))
    score = run_series(problems(2), client(srv.url), new_store(tmp_path, 2), messages_for, parallel=1)
    assert score.answered == 0 and len(srv.chats()) == 4


# -- k samples per problem ----------------------------------------------------------------------------------------
def seeded(body: dict) -> Reply:
    """Like vLLM: choice i of n answers with the request's seed + i; usage covers every choice."""
    n = body.get("n", 1)
    choices = [
        {"index": i, "message": {"role": "assistant", "content": f"ОТВЕТ: {body['seed'] + i}"}, "finish_reason": "stop"}
        for i in reversed(range(n))
    ]  # out of order: sorted by index
    return Reply(body={"choices": choices, "usage": {"prompt_tokens": 5, "completion_tokens": 3 * n + 1}})


def test_a_managed_server_gets_a_problems_missing_samples_in_one_request_with_n(serve, tmp_path) -> None:
    srv = serve(default=seeded)
    sampling = Sampling(seed=10, temperature=0.7, top_p=0.9, max_tokens=64)
    store = SeriesStore(tmp_path, "m", "ds", HASH, meta={"total": 2, "sampling": {"samples": 3}})
    store.append(
        AnswerRecord(
            id="p1",
            dataset="ds",
            model="m",
            task="t",
            reference="4",
            sample=1,
            response="ОТВЕТ: 11",
            settings_hash=HASH,
        )
    )  # checkpointed already
    problems = [Problem(id=f"p{i}", dataset="ds", domain="math", task="t", reference="4") for i in (1, 2)]
    with client(srv.url, sampling=sampling, server=ManagedServer(alive=lambda: True)) as c:
        run_series(problems, c, store, lambda p: MESSAGES, parallel=2, samples=3)
    asked = sorted((b["body"].get("n", 1), b["body"]["seed"], b["body"]["top_p"]) for b in srv.chats())
    assert asked == [(1, 10, 0.9), (1, 12, 0.9), (3, 10, 0.9)]  # p1: samples 0 and 2 apart; p2: n = 3
    recs = {(r.id, r.sample): r for r in store.records()}
    assert {k: (r.seed, r.response) for k, r in recs.items()} == {
        ("p1", 0): (10, "ОТВЕТ: 10"),
        ("p1", 1): (None, "ОТВЕТ: 11"),
        ("p1", 2): (12, "ОТВЕТ: 12"),
        ("p2", 0): (10, "ОТВЕТ: 10"),
        ("p2", 1): (11, "ОТВЕТ: 11"),
        ("p2", 2): (12, "ОТВЕТ: 12"),
    }
    assert [recs[("p2", i)].completion_tokens for i in range(3)] == [4, 3, 3]  # 10 tokens shared out


def test_an_api_model_gets_one_request_per_sample_and_never_n(serve, tmp_path) -> None:
    srv = serve(default=seeded)
    store = SeriesStore(tmp_path, "m", "ds", HASH, meta={"total": 1, "sampling": {"samples": 4}})
    with client(srv.url, sampling=Sampling(seed=0, temperature=0.7), transport=Transport()) as c:
        run_series([PROBLEM], c, store, lambda p: MESSAGES, parallel=4, samples=4)
    assert sorted(b["body"]["seed"] for b in srv.chats()) == [0, 1, 2, 3]
    assert all("n" not in b["body"] for b in srv.chats())
    assert sorted(r.response for r in store.records()) == [f"ОТВЕТ: {i}" for i in range(4)]


def test_a_reply_with_too_few_choices_is_an_error_record_for_every_sample(serve) -> None:
    srv = serve(default=ok())
    problems = [Problem(id="p", dataset="ds", domain="math", task="t", reference="4", sample=i) for i in range(2)]
    with client(srv.url, server=ManagedServer(alive=lambda: True)) as c:
        recs = c.ask_samples(problems, MESSAGES, HASH)
    assert [r.sample for r in recs] == [0, 1] and all("n=2" in (r.error or "") for r in recs)
