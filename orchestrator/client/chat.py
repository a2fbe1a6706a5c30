"""``ChatClient``: one problem -> one ``AnswerRecord`` over an OpenAI-compatible ``/v1/chat/completions``.

* One pooled ``requests`` session per worker thread (keep-alive), proxies ignored for loopback servers.
* Bounded retries with exponential backoff and jitter on connection errors, 429 and 5xx (``Retry-After`` honoured);
  other 4xx are final. A timeout is final for this run (the series' retry pass and the resume ask again). With
  several endpoints, retries move to the next one.
* ``sampling`` (``contract.Sampling``) is what the request asks with; ``transport`` (``contract.Transport``) how it
  travels: retries, backoff, ``request_delay`` and the named ``Timeouts``.
* ``request_timeout`` (``Timeouts.stall`` and ``.read``) is a limit on silence, never on how long an answer may take:
  - a managed server (``server`` given with ``progress``: its ``/metrics`` token counters) is waited for as long as
    its engine makes progress (``liveness.py``); a request is cut off only after ``stall`` seconds without any;
  - an API model's answer is streamed (``stream.py``): the ``read`` limit is on silence between chunks, so a long
    answer still arriving is never cut off, while a dead endpoint fails as fast as before.
* A managed server (``server``: a ``managed.ManagedServer``) is checked after every failure (``ServerChecks``): dead
  raises ``ServerDiedError`` at once; a stall with no answer to a 1-token probe either raises ``ServerHungError``,
  so the job restarts it; a probe answered excuses a request's stall up to ``MAX_RESCUES`` times (then a timeout
  record).
* ``context_len`` known: ``max_tokens`` is clamped to what the prompt leaves (``budget.TokenBudget``, the prompt
  counted through vLLM's ``POST /tokenize`` only when it might not fit). A 400 "maximum context length" reply is
  clamped from its numbers (twice at most) whatever the server.
* A retry's backoff and a rate-limited start end early once the series stops (``halted``): the request comes back as
  ``Halted`` (never stored), asked again on resume.
* Keys reach nothing but the ``Authorization`` header: every error text is scrubbed.
* ``codec`` (``client/jsoncodec.py``): request bodies encoded and replies decoded by it instead of ``requests``'
  stdlib JSON (UTF-8 bytes, msgspec where installed); ``None`` keeps requests' own ``json=`` / ``.json()``.
* Seams for other protocols: ``auth`` (``client/auth.py``) gives each attempt's headers and body and decides
  whether a 401 earns one more try with fresh credentials (GigaChat's OAuth tokens); ``limiter``
  (``client/ratelimit.py``) spaces request starts by ``request_delay`` per model and endpoint across every worker,
  and a 429/503 with ``Retry-After`` pauses them all.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from ..contract import LOCAL_HOSTS, AnswerRecord, Endpoint, Problem, Sampling, Transport, public_url
from ..errors import AuthError, EndpointError
from .auth import EndpointAuth, RequestAuth
from .budget import TokenBudget
from .gigachat import tls_failure
from .jsoncodec import JsonCodec
from .liveness import ProgressWatch, Stalled, poll_interval, wait_while_progressing
from .managed import ManagedServer, ServerChecks
from .ratelimit import LIMITER, POLL, RateLimiter
from .replies import (
    Attempt,
    Halted,
    Outcome,
    Scrubber,
    choices_in_order,
    clamp_from_message,
    error_message,
    fill_record,
    retry_after,
    valid_reply,
)
from .stream import StreamError, read_stream

log = logging.getLogger(__name__)

TRANSPORT = Transport()  # the defaults: request_timeout 600 s, 5 retries, no delay
MAX_CLAMPS = 2
MAX_RESCUES = 3  # stalls of one request that a 1-token probe may excuse (the server answers, the counters lag)


@dataclass(frozen=True)
class _Exchange:
    """What a request came to after its retries: the reply, or the error (``None`` with the reply), or ``halted``."""

    data: Mapping[str, Any] | None = None
    error: str | None = None
    latency: float = 0.0
    halted: bool = False


class ChatClient:
    """Asks one model; thread-safe (``run_series`` calls ``ask`` from ``parallel`` threads)."""

    def __init__(
        self,
        endpoint: Endpoint | Sequence[Endpoint],
        model_name: str,
        sampling: Sampling,
        *,
        transport: Transport = TRANSPORT,
        server: ManagedServer | None = None,
        context_len: int | None = None,
        extra_body: Mapping[str, Any] | None = None,
        auth: RequestAuth | None = None,
        limiter: RateLimiter = LIMITER,
        codec: JsonCodec | None = None,
        failure_limit: int = 16,
        session_factory: Callable[[], requests.Session] = requests.Session,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
        halt_poll: float = POLL,
    ) -> None:
        self.endpoints = (endpoint,) if isinstance(endpoint, Endpoint) else tuple(endpoint)
        if not self.endpoints:
            raise EndpointError(f"model {model_name!r} has no endpoint; give it `endpoints` or a `vllm` block")
        self.model_name, self.sampling, self.transport, self.context_len = model_name, sampling, transport, context_len
        self.timeouts = transport.timeouts
        self._session_factory, self._sleep, self._clock, self._rng = session_factory, sleep, clock, rng
        self._server, self._extra = server, dict(extra_body or {})
        progress = server.progress if server is not None else None
        self._watch = (
            None
            if progress is None
            else ProgressWatch(progress, clock=clock, interval=poll_interval(self.timeouts.stall), name=model_name)
        )
        self._checks = ServerChecks(
            model_name, self.endpoints[0].api_base, self.timeouts.stall, clock=clock, server=server, watch=self._watch
        )
        self._budget = TokenBudget(model_name, sampling.max_tokens, context_len)
        # API models stream; a managed server is not: its progress is read from /metrics, and a request of several
        # samples (n > 1) is read whole
        self._stream = server is None
        self._failure_limit = failure_limit
        self._auth = auth if auth is not None else EndpointAuth(self.endpoints)
        self._limiter, self._codec, self._halt_poll = limiter, codec, halt_poll
        self.halted: Callable[[], bool] = lambda: False  # run_series sets it: waits for the limiter end when true
        self.scrub = Scrubber((), more=self._auth.secrets)
        self._local, self._lock = threading.local(), threading.Lock()
        self._sessions: list[requests.Session] = []
        self._turn = itertools.count()
        self._tokenize_ok = True
        self.failure_streak, self.last_error = 0, ""

    # -- sessions ------------------------------------------------------------------------------------------------
    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._session_factory()
            if all(_is_loopback(e.api_base) for e in self.endpoints):
                session.trust_env = False  # never route loopback traffic through an HTTP(S)_PROXY
            with self._lock:
                self._sessions.append(session)
            self._local.session = session
        return session

    def release_session(self) -> None:
        """Close the calling thread's session (workers call it when they finish)."""
        session = getattr(self._local, "session", None)
        if session is not None:
            self._local.session = None
            with self._lock:
                if session in self._sessions:
                    self._sessions.remove(session)
            session.close()

    def close(self) -> None:
        """Close every pooled session."""
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- asking --------------------------------------------------------------------------------------------------
    def ask(self, problem: Problem, messages: list[dict], settings_hash: str) -> AnswerRecord | Halted:
        """The answer to ``problem``; transport failures come back as a record with ``error`` set, a request given
        up because the series stopped as ``Halted``.

        Raises ``ServerDiedError`` when the managed server (``server.alive``) is dead.
        """
        rec = self._record(problem, settings_hash)
        turn = next(self._turn)
        max_tokens, prompt_tokens, rec.error = self._plan(messages, self.endpoints[turn % len(self.endpoints)])
        rec.prompt_tokens = prompt_tokens or 0
        if rec.error is None:
            done = self._exchange(self._payload(messages, max_tokens, rec.seed), turn, prompt_tokens)
            if done.halted:
                return Halted(problem)
            rec.error, rec.latency_s = done.error, done.latency
            if done.data is not None:
                fill_record(rec, done.data)
            self._note(rec)
        rec.timestamp = time.time()
        return rec

    @property
    def managed(self) -> bool:
        """Whether this client asks a managed vLLM server (``server`` given): it takes ``n`` > 1 (``ask_samples``)."""
        return self._server is not None

    def ask_samples(
        self, problems: Sequence[Problem], messages: list[dict], settings_hash: str
    ) -> list[AnswerRecord | Halted]:
        """Consecutive samples of one problem in one request with ``n`` = len(problems) and the first one's seed.

        vLLM seeds the i-th of ``n`` choices with seed + i, so each answer is the one its own request would get.
        Usage covers all choices: completion tokens are split evenly (the remainder to the first ones).
        """
        if len(problems) == 1:
            return [self.ask(problems[0], messages, settings_hash)]
        recs = [self._record(p, settings_hash) for p in problems]
        turn = next(self._turn)
        max_tokens, prompt_tokens, error = self._plan(messages, self.endpoints[turn % len(self.endpoints)])
        done = _Exchange(error=error)
        if error is None:
            done = self._exchange(
                {**self._payload(messages, max_tokens, recs[0].seed), "n": len(recs)}, turn, prompt_tokens
            )
            if done.halted:
                return [Halted(p) for p in problems]
        data, error = done.data, done.error
        if data is not None:
            data, error = choices_in_order(data, len(recs))
        for index, rec in enumerate(recs):
            rec.prompt_tokens, rec.error, rec.latency_s = prompt_tokens or 0, error, done.latency
            rec.timestamp = time.time()
            if data is not None:
                fill_record(rec, data, index, len(recs))
            self._note(rec)
        return list(recs)

    def _record(self, problem: Problem, settings_hash: str) -> AnswerRecord:
        return AnswerRecord(
            id=problem.id,
            dataset=problem.dataset,
            model=self.model_name,
            task=problem.task,
            reference=problem.reference,
            settings_hash=settings_hash,
            domain=problem.domain,
            tolerance=problem.tolerance,
            sample=problem.sample,
            seed=self.sampling.seed_of(problem.sample),
        )

    def _payload(self, messages: list[dict], max_tokens: int, seed: int | None = None) -> dict[str, Any]:
        """One request's body; several samples in one request: ``ask_samples``."""
        optional = {k: v for k, v in (("top_p", self.sampling.top_p), ("seed", seed)) if v is not None}
        return {
            **self._extra,
            "model": self.model_name,
            "messages": messages,
            "temperature": self.sampling.temperature,
            "max_tokens": max_tokens,
            **optional,
        }

    def _exchange(self, payload: dict[str, Any], turn: int, prompt_tokens: int | None) -> _Exchange:
        attempt = clamps = 0
        reauthorized = False
        retries = self.transport.max_retries
        while True:
            endpoint = self.endpoints[(turn + attempt + clamps) % len(self.endpoints)]
            out, latency = self._attempt(endpoint, payload, prompt_tokens)
            if out.kind is Attempt.OK:
                return _Exchange(data=out.data, latency=latency)
            if out.kind is Attempt.HALTED:
                return _Exchange(latency=latency, halted=True)
            if out.kind is Attempt.CLAMP and clamps < MAX_CLAMPS:
                self._budget.report_clamp(out.max_tokens or 0, prompt_tokens)
                payload, clamps = {**payload, "max_tokens": out.max_tokens}, clamps + 1
                continue
            if out.kind is Attempt.REAUTH and not reauthorized:  # a 401 with a token just dropped: once more
                reauthorized = True
                continue
            if out.kind in (Attempt.FATAL, Attempt.CLAMP, Attempt.REAUTH):
                return _Exchange(error=out.error, latency=latency)
            self._checks.check_alive(out.error)
            if out.kind is Attempt.TIMEOUT:
                self._checks.check_responsive(out.error)
            if out.kind is Attempt.TIMEOUT or attempt >= retries:
                suffix = f" (gave up after {attempt + 1} attempts)" if out.kind is Attempt.RETRY else ""
                return _Exchange(error=out.error + suffix, latency=latency)
            delay = self._backoff(attempt, out.retry_after)
            log.info("%s: %s; retry %d of %d in %.1f s", self.model_name, out.error, attempt + 1, retries, delay)
            if not self._pause(delay):
                return _Exchange(latency=latency, halted=True)
            attempt += 1

    def _pause(self, seconds: float) -> bool:
        """Sleep out a retry's backoff, waking every ``halt_poll`` seconds to ask ``halted``: False once the series
        stopped (the request is given up unstored, as one waiting for its rate-limited start)."""
        left = seconds
        while left > 0:
            if self.halted():
                return False
            nap = min(left, self._halt_poll)
            self._sleep(nap)
            left -= nap
        return not self.halted()

    def _attempt(self, endpoint: Endpoint, payload: dict[str, Any], prompt_tokens: int | None) -> tuple[Outcome, float]:
        if (
            self._limiter.acquire((self.model_name, endpoint.api_base), self.transport.request_delay, self.halted)
            is None
        ):
            return Outcome(Attempt.HALTED), 0.0
        start = self._clock()
        headers: dict[str, str] = {}
        status: int | None = None
        try:
            headers = self._auth.headers(endpoint)
            with self._post(endpoint, self._auth.body(endpoint, payload), headers) as resp:
                out = self._classify(resp, payload["max_tokens"], prompt_tokens)
                status = resp.status_code
        except AuthError as exc:
            if not exc.retryable:
                raise
            return Outcome(Attempt.RETRY, error=self.scrub(exc)), self._clock() - start
        except requests.exceptions.SSLError as exc:
            raise EndpointError(tls_failure(public_url(endpoint.api_base), exc)) from None
        except (requests.Timeout, Stalled):
            out = Outcome(Attempt.TIMEOUT, error=self._timeout_text())
        except StreamError as exc:
            out = Outcome(Attempt.RETRY, error=self.scrub(f"streamed reply broken off: {exc}"))
        except requests.ConnectionError as exc:
            out = Outcome(Attempt.RETRY, error=self.scrub(f"connection error: {exc}"))
        except requests.RequestException as exc:
            out = Outcome(Attempt.RETRY, error=self.scrub(f"{type(exc).__name__}: {exc}"))
        return self._after(endpoint, headers, status, out), self._clock() - start

    def _after(self, endpoint: Endpoint, headers: dict[str, str], status: int | None, out: Outcome) -> Outcome:
        """A 401 that the auth can renew is asked again; a 429/503 with Retry-After holds every worker's starts."""
        if status == 401 and self._auth.reauthorize(endpoint, headers):
            return Outcome(Attempt.REAUTH, error=out.error)
        if out.retry_after is not None and status in (429, 503):
            self._limiter.hold((self.model_name, endpoint.api_base), out.retry_after)
        return out

    def _body(self, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        """``post`` keywords: ``json=`` for requests' own encoder, else the codec's bytes (``codec``)."""
        if self._codec is None:
            return {"json": body, "headers": headers}
        return {"data": self._codec.encode(body), "headers": {**headers, "Content-Type": "application/json"}}

    def _post(self, endpoint: Endpoint, payload: dict[str, Any], headers: dict[str, str]) -> requests.Response:
        """POST the chat request: streamed for API models, watched through the server's progress when managed."""
        session, stream = self._session(), self._stream
        body = {**payload, "stream": True, "stream_options": {"include_usage": True}} if stream else payload
        url = endpoint.api_base.rstrip("/") + "/chat/completions"
        if self._watch is None:
            timeout = (self.timeouts.connect, self.timeouts.read)
            return session.post(
                url, **self._body(body, headers), timeout=timeout, stream=stream, verify=endpoint.verify
            )

        def send() -> requests.Response:  # no read timeout: the watch decides, from the server's progress
            return session.post(
                url, **self._body(body, headers), timeout=(self.timeouts.connect, None), verify=endpoint.verify
            )

        try:
            return wait_while_progressing(
                send,
                self._watch,
                self.timeouts.stall,
                self._clock,
                confirm=self._checks.confirm_stall,
                rescues=MAX_RESCUES,
            )
        except Stalled:
            self._forget_session()  # its thread still waits on it, until the server answers or is stopped
            raise

    def _timeout_text(self) -> str:
        if self._watch is not None:
            return f"no progress on the server for {self.timeouts.stall:g} s (request_timeout)"
        if self._stream:
            return f"nothing arrived for {self.timeouts.read:g} s (request_timeout)"
        return f"no reply within {self.timeouts.read:g} s (request_timeout)"

    def _read_body(self, resp: requests.Response) -> Any:
        """The JSON body, or what a 200 stream of server-sent events adds up to (a silent stream: ``Timeout``)."""
        if resp.status_code != 200 or "text/event-stream" not in resp.headers.get("Content-Type", ""):
            return _json(resp, self._codec)
        try:
            return read_stream(resp.iter_lines())
        except requests.ConnectionError as exc:  # requests reports a read timeout mid-stream as a connection error
            if "timed out" in str(exc).lower():
                raise requests.ReadTimeout(str(exc)) from None
            raise

    def _classify(self, resp: requests.Response, max_tokens: int, prompt_tokens: int | None) -> Outcome:
        body = self._read_body(resp)
        if resp.status_code == 200:
            if valid_reply(body):
                return Outcome(Attempt.OK, data=body)
            return Outcome(Attempt.RETRY, error="HTTP 200 without choices[0].message")
        text = self.scrub(f"HTTP {resp.status_code}: {error_message(body, resp.text[:500])}")
        if resp.status_code == 429 or resp.status_code >= 500:
            return Outcome(Attempt.RETRY, error=text, retry_after=retry_after(resp.headers.get("Retry-After")))
        if resp.status_code == 400 and self._stream and "stream" in error_message(body, resp.text).lower():
            self._stream = False  # an API that refuses streaming (or its options) is asked without
            log.warning(
                "%s: the endpoint refused a streamed request (%s); asking without streaming", self.model_name, text
            )
            return Outcome(Attempt.RETRY, error=text, retry_after=0.0)
        if resp.status_code == 400:
            new_max = clamp_from_message(error_message(body, resp.text), max_tokens, prompt_tokens)
            if new_max == 0:
                return Outcome(Attempt.FATAL, error=f"prompt does not fit the context: {text}")
            if new_max is not None and new_max < max_tokens:
                return Outcome(Attempt.CLAMP, error=text, max_tokens=new_max)
        return Outcome(Attempt.FATAL, error=text)

    def _backoff(self, attempt: int, hinted: float | None) -> float:
        base, cap = self.transport.backoff_base, self.transport.backoff_cap
        delay = min(cap, base * 2**attempt) * (0.5 + 0.5 * self._rng())
        return max(delay, min(hinted, cap)) if hinted is not None else delay

    def _forget_session(self) -> None:
        """Drop the calling thread's session without closing it (an abandoned request still uses it)."""
        session = getattr(self._local, "session", None)
        self._local.session = None
        with self._lock:
            if session in self._sessions:
                self._sessions.remove(session)

    # -- token budget --------------------------------------------------------------------------------------------
    def _plan(self, messages: list[dict], endpoint: Endpoint) -> tuple[int, int | None, str | None]:
        """(max_tokens to send, prompt tokens if counted, error if the prompt alone does not fit): ``budget.py``."""
        return self._budget.of(messages, lambda: self._count_prompt(messages, endpoint))

    def _count_prompt(self, messages: list[dict], endpoint: Endpoint) -> int | None:
        """Prompt tokens (chat template applied) from vLLM's ``POST /tokenize``; ``None`` if it cannot say."""
        if not self._tokenize_ok:
            return None
        url = endpoint.api_base.rstrip("/").removesuffix("/v1") + "/tokenize"
        timeout = (self.timeouts.connect, self.timeouts.tokenize)
        try:
            resp = self._session().post(
                url,
                json={"model": self.model_name, "messages": messages},
                headers=self._auth.headers(endpoint),
                timeout=timeout,
            )
            count = resp.json().get("count") if resp.status_code == 200 else None
        except (requests.RequestException, ValueError, AttributeError) as exc:
            log.debug("%s: /tokenize failed: %s", self.model_name, self.scrub(exc))
            return None
        if resp.status_code == 404:
            self._tokenize_ok = False
            log.warning("%s: the server has no /tokenize; max_tokens is clamped from 400 replies only", self.model_name)
        return int(count) if isinstance(count, int) else None

    # -- failure streak ------------------------------------------------------------------------------------------
    def _note(self, rec: AnswerRecord) -> None:
        with self._lock:
            if rec.error is None:
                self.failure_streak = 0
            else:
                self.failure_streak += 1
                self.last_error = rec.error
                log.warning("%s: problem %s failed: %s", self.model_name, rec.id, rec.error)

    def streak_error(self) -> EndpointError | None:
        """An ``EndpointError`` once ``failure_limit`` requests in a row have failed, else ``None``."""
        with self._lock:
            if self.failure_streak < self._failure_limit:
                return None
            return EndpointError(
                f"{self.endpoints[0].api_base} ({self.model_name}): {self.failure_streak} requests "
                f"failed in a row, last: {self.last_error}; check the endpoint, rerun to resume"
            )


def _is_loopback(url: str) -> bool:
    return urlsplit(url).hostname in LOCAL_HOSTS


def _json(resp: requests.Response, codec: JsonCodec | None = None) -> Any:
    try:
        return resp.json() if codec is None else codec.decode(resp.content)
    except ValueError:
        return None
