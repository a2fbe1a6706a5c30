"""GigaChat and OpenRouter through the chat client against loopback stand-ins that enforce each protocol
(standins/chat_apis.py), and the shared rate limiter on a fake clock."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid

import pytest
import requests

from orchestrator.client import ChatClient, run_series
from orchestrator.client.gigachat import TokenSource
from orchestrator.client.ratelimit import MAX_HOLD, POLL, RateLimiter
from orchestrator.contract import Endpoint, GigaChatAuth, Problem, Sampling, Timeouts, Transport
from orchestrator.errors import AuthError
from standins.chat_apis import ANSWER, Canned, GigaChatStandIn, OpenRouterStandIn, self_signed
from tests.support.gigachat import CREDENTIALS, ask_all, giga_client, problems, store

PROBLEM = Problem(id="p1", dataset="ds", domain="math", task="2+2?", reference="4")
MESSAGES = [{"role": "user", "content": "2+2?"}]


class FakeClock:
    """Epoch seconds that move only when told (a token's age without waiting for it)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def endpoint(srv: GigaChatStandIn, scope: str = "GIGACHAT_API_PERS", credentials: str = CREDENTIALS) -> Endpoint:
    return Endpoint(
        api_base=srv.api_base,
        gigachat=GigaChatAuth(credentials=credentials, scope=scope, auth_url=srv.auth_url, profanity_check=False),
    )


# -- OAuth --------------------------------------------------------------------------------------------------------
def test_parallel_workers_share_one_token_fetched_with_basic_auth_rquid_and_scope(giga, tmp_path):
    srv = giga(token_delay=0.3)  # a slow OAuth: every worker wants a token at once
    score = ask_all(giga_client(endpoint(srv)), tmp_path, 8, parallel=8)
    assert score.answered == 8 and score.errors == 0
    assert srv.token_fetches() == 1 and len(srv.chats()) == 8
    (token,) = srv.tokens
    assert all(r["headers"]["Authorization"] == f"Bearer {token}" for r in srv.chats())
    assert uuid.UUID(srv.rquids[0]).version == 4


def test_temperature_zero_is_sent_as_temperature_1_with_top_p_0_which_gigachat_accepts(giga):
    srv = giga()
    raw = requests.post(
        srv.api_base + "/chat/completions",
        json={"model": "GigaChat", "messages": MESSAGES, "temperature": 0.0},
        timeout=10,
    )
    assert raw.status_code == 401  # no token: refused before anything else
    rec = giga_client(endpoint(srv)).ask(PROBLEM, MESSAGES, "h")
    assert rec.error is None and rec.response == ANSWER and rec.completion_tokens == 9
    sent = srv.chats()[-1]["body"]
    assert '"temperature": 1.0' in sent and '"top_p": 0.0' in sent and '"profanity_check": false' in sent
    token = next(iter(srv.tokens))
    refused = requests.post(
        srv.api_base + "/chat/completions",
        headers={"Authorization": f"Bearer {token}"},
        json={"model": "GigaChat", "messages": MESSAGES, "temperature": 0.0},
        timeout=10,
    )
    assert refused.status_code == 422 and "temperature" in refused.json()["message"]


def test_a_token_near_its_expiry_is_renewed_before_the_api_refuses_it(giga, tmp_path):
    srv = giga(ttl=1800)
    ep, clock = endpoint(srv), FakeClock()
    assert ep.gigachat is not None
    source = TokenSource(ep.gigachat, clock=clock)
    client = giga_client(ep, source)
    assert all(client.ask(PROBLEM, MESSAGES, "h").error is None for _ in range(3))
    clock.now += 1800 - 30  # 30 s left: inside the renewal margin
    assert all(client.ask(PROBLEM, MESSAGES, "h").error is None for _ in range(3))
    assert srv.token_fetches() == 2 and srv.refusals() == 0 and source.fetches == 2
    first, second = srv.tokens
    assert [r["headers"]["Authorization"] for r in srv.chats()] == [f"Bearer {first}"] * 3 + [f"Bearer {second}"] * 3


def test_a_401_on_an_expired_token_fetches_one_new_token_for_all_workers_and_loses_no_answer(giga, tmp_path):
    srv = giga()
    client = giga_client(endpoint(srv))
    assert client.ask(PROBLEM, MESSAGES, "h").error is None
    srv.expire_tokens()  # the server expires it early (a revoked or rotated token)
    score = ask_all(client, tmp_path, 8, parallel=4)
    assert score.answered == 8 and score.errors == 0
    assert srv.token_fetches() == 2 and 1 <= srv.refusals() <= 4


def test_a_token_refused_again_after_renewal_is_an_error_record_not_a_loop(giga):
    srv = giga(ttl=-1)  # every token it issues is already expired
    rec = giga_client(endpoint(srv)).ask(PROBLEM, MESSAGES, "h")
    assert rec.error is not None and rec.error.startswith("HTTP 401: Token has expired")
    assert srv.token_fetches() == 2 and len(srv.chats()) == 2


def test_a_wrong_scope_fails_at_once_with_a_line_naming_scope_and_no_secret(giga, caplog):
    srv = giga(scope="GIGACHAT_API_PERS")
    client = giga_client(endpoint(srv, scope="GIGACHAT_API_CORP"))
    with pytest.raises(AuthError) as err, caplog.at_level(logging.DEBUG):
        client.ask(PROBLEM, MESSAGES, "h")
    text = str(err.value)
    assert "HTTP 400" in text and "check `scope` (GIGACHAT_API_CORP)" in text and not err.value.retryable
    assert srv.chats() == [] and CREDENTIALS not in text + caplog.text


def test_refused_credentials_fail_at_once_naming_credentials_without_printing_them(giga, caplog):
    srv = giga()
    wrong = "d3Jvbmc6Y3JlZGVudGlhbHMtOTg3NjU0MzIx"
    with pytest.raises(AuthError) as err, caplog.at_level(logging.DEBUG):
        giga_client(endpoint(srv, credentials=wrong)).ask(PROBLEM, MESSAGES, "h")
    assert "HTTP 401" in str(err.value) and "check `credentials`" in str(err.value)
    assert wrong not in str(err.value) + caplog.text and CREDENTIALS not in str(err.value)


def test_the_stand_in_refuses_a_token_request_without_rquid_and_the_client_always_sends_a_new_one(giga):
    srv = giga()
    bare = requests.post(
        srv.auth_url, data={"scope": "GIGACHAT_API_PERS"}, timeout=10, headers={"Authorization": f"Basic {CREDENTIALS}"}
    )
    assert bare.status_code == 400 and "RqUID" in bare.json()["message"]
    ep = endpoint(srv)
    assert ep.gigachat is not None
    source = TokenSource(ep.gigachat)
    source.token()
    source.reject(source.token())
    source.token()
    assert srv.token_fetches() == 3 and len(srv.rquids) == 2 and len(set(srv.rquids)) == 2


def test_an_oauth_endpoint_that_is_down_gives_error_records_not_a_crash(giga, caplog):
    srv = giga()
    ep = Endpoint(
        api_base=srv.api_base,
        gigachat=GigaChatAuth(CREDENTIALS, "GIGACHAT_API_PERS", auth_url="http://127.0.0.1:9/api/v2/oauth"),
    )
    with caplog.at_level(logging.DEBUG):
        rec = giga_client(
            ep,
            sampling=Sampling(),
            transport=Transport(timeouts=Timeouts.within(5), max_retries=1),
            sleep=lambda s: None,
        ).ask(PROBLEM, MESSAGES, "h")
    assert rec.error is not None and "GigaChat OAuth at http://127.0.0.1:9/api/v2/oauth" in rec.error
    assert "gave up after 2 attempts" in rec.error and CREDENTIALS not in rec.error + caplog.text


def test_429_with_retry_after_from_gigachat_holds_the_endpoint_then_the_answer_comes(giga):
    srv = giga(script=[Canned(429, {"status": 429, "message": "Too many requests"}, {"Retry-After": "3"})])
    clock, sleeps = [0.0], []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds

    limiter = RateLimiter(clock=lambda: clock[0], sleep=sleep)
    rec = giga_client(endpoint(srv), limiter=limiter, sleep=lambda s: None).ask(PROBLEM, MESSAGES, "h")
    assert rec.error is None and len(srv.chats()) == 2 and sum(sleeps) == 3.0


def test_stopping_the_series_during_a_long_retry_after_ends_it_without_waiting_it_out(giga, tmp_path):
    srv = giga(script=[Canned(429, {"status": 429, "message": "Too many requests"}, {"Retry-After": "120"})])
    stop = threading.Event()

    def stop_after_the_429() -> None:
        deadline = time.monotonic() + 60
        while not any(r["status"] == 429 for r in srv.requests) and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()

    threading.Thread(target=stop_after_the_429, daemon=True).start()
    began = time.monotonic()
    score = run_series(
        problems(4),
        giga_client(endpoint(srv), sleep=lambda s: None),
        store(tmp_path, 4),
        lambda p: [{"role": "user", "content": p.task}],
        parallel=2,
        stop=stop,
    )
    assert time.monotonic() - began < 60 and stop.is_set()  # the hold is 120 s
    assert score.answered < 4 and score.errors == 0  # nothing stored for the waiters: asked on resume


# -- OpenRouter ---------------------------------------------------------------------------------------------------
def test_openrouter_gets_its_key_attribution_headers_and_reasoning_is_stored_apart():
    key = "sk-or-v1-" + "5" * 32
    srv = OpenRouterStandIn(key)
    try:
        ep = Endpoint(
            api_base=srv.api_base,
            api_key=key,
            headers=(("HTTP-Referer", "https://lab.example"), ("X-Title", "DeathMath")),
        )
        rec = ChatClient(ep, "qwen/qwen3-8b", Sampling(max_tokens=64), limiter=RateLimiter()).ask(
            PROBLEM, MESSAGES, "h"
        )
        assert rec.error is None and rec.response == ANSWER and rec.reasoning == "2 + 2: складываем."
        headers = srv.chats()[0]["headers"]
        assert headers["HTTP-Referer"] == "https://lab.example" and headers["X-Title"] == "DeathMath"
        bad = ChatClient(
            Endpoint(srv.api_base, api_key="sk-or-wrong"), "qwen/qwen3-8b", Sampling(), limiter=RateLimiter()
        ).ask(PROBLEM, MESSAGES, "h")
        assert bad.error == "HTTP 401: No auth credentials found" and "sk-or-wrong" not in bad.error
    finally:
        srv.close()


# -- the rate limiter ---------------------------------------------------------------------------------------------
class Timeline:
    def __init__(self) -> None:
        self.now, self.sleeps = 100.0, []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_the_limiter_spaces_starts_per_key_and_keys_are_independent():
    t = Timeline()
    limiter = RateLimiter(clock=t.clock, sleep=t.sleep)
    starts = []
    for key in ["a", "a", "b", "a"]:
        limiter.acquire(key, 2.0)
        starts.append((key, t.now))
    assert starts == [("a", 100.0), ("a", 102.0), ("b", 102.0), ("a", 104.0)]
    limiter.acquire("c", 0.0)
    limiter.acquire("c", 0.0)
    assert t.now == 104.0 and sum(t.sleeps) == 4.0  # no delay: no wait


def test_a_hold_pauses_a_key_never_shortens_and_is_capped():
    t = Timeline()
    limiter = RateLimiter(clock=t.clock, sleep=t.sleep)
    limiter.hold("a", 10.0)
    limiter.hold("a", 2.0)  # a shorter Retry-After does not cut the longer pause
    limiter.acquire("b", 0.0)
    assert t.now == 100.0
    limiter.acquire("a", 0.0)
    assert t.now == 110.0
    limiter.hold("a", 86400.0)
    limiter.acquire("a", 0.0)
    assert t.now == 110.0 + MAX_HOLD


def test_a_waiter_gives_up_when_the_run_halts_and_no_request_starts():
    t = Timeline()
    limiter = RateLimiter(clock=t.clock, sleep=t.sleep)
    limiter.hold("a", 120.0)
    assert limiter.acquire("a", 0.0, halted=lambda: t.now >= 101.0) is None
    assert t.now == 101.0 and max(t.sleeps) <= POLL


# -- TLS ----------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory):
    return self_signed(tmp_path_factory.mktemp("tls"))


def test_a_certificate_no_system_ca_trusts_fails_with_a_line_naming_ca_bundle(giga, tls_pair):
    srv = giga(tls=tls_pair)
    with pytest.raises(AuthError) as err:
        giga_client(endpoint(srv)).ask(PROBLEM, MESSAGES, "h")
    assert "TLS certificate check failed" in str(err.value) and "ca_bundle" in str(err.value)
    assert not err.value.retryable and srv.chats() == []


def test_ca_bundle_trusts_the_certificate_and_verify_false_works_with_one_warning(giga, tls_pair, caplog):
    srv = giga(tls=tls_pair)
    trusted = dataclasses.replace(endpoint(srv), verify=str(tls_pair[0]))
    assert giga_client(trusted).ask(PROBLEM, MESSAGES, "h").error is None
    unchecked = dataclasses.replace(endpoint(srv), verify=False)
    with caplog.at_level(logging.WARNING):
        for _ in range(2):  # two clients (two datasets, say): still one warning
            assert giga_client(unchecked).ask(PROBLEM, MESSAGES, "h").error is None
    warnings = [r for r in caplog.records if "verify_ssl_certs is false" in r.getMessage()]
    assert len(warnings) == 1 and "ca_bundle" in warnings[0].getMessage()
    assert "InsecureRequestWarning" not in caplog.text, caplog.text
