"""``Exchanger``: one request of a ``ChatClient`` through its retries -- what the request came to (``Exchange``).

* Bounded retries with exponential backoff and jitter on connection errors, 429 and 5xx (``Retry-After`` honoured,
  and a 429/503 with it holds every worker's starts through the ``limiter``); other 4xx are final. A timeout is
  final for this run. With several endpoints, retries move to the next one.
* A context-length 400 that names a smaller ``max_tokens`` is asked again with it (``MAX_CLAMPS`` times at most).
* A 401 that the ``auth`` can renew is asked once more.
* A managed server is watched through its progress (``liveness.wait_while_progressing``) and checked after every
  failure (``managed.ServerChecks``); an API model's chat answer is streamed (``stream.py``).
* A retry's backoff ends early once ``halted()`` says the series stopped: ``Exchange.halted``.

``run(payload, turn, prompt_tokens, path)`` posts to ``<api_base><path>``: ``/chat/completions`` (the default) or
``/completions`` (the forced answer of a thinking budget: never streamed, its reply has ``choices[0].text``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from ..contract import Endpoint, Transport, public_url
from ..errors import AuthError, EndpointError
from .auth import RequestAuth
from .budget import TokenBudget
from .gigachat import tls_failure
from .jsoncodec import JsonCodec
from .liveness import ProgressWatch, Stalled, wait_while_progressing
from .managed import ServerChecks
from .ratelimit import RateLimiter
from .replies import Attempt, Outcome, Scrubber, clamp_from_message, error_message, retry_after, valid_reply
from .sessions import SessionPool
from .stream import StreamError, read_stream

log = logging.getLogger(__name__)

MAX_CLAMPS = 2
MAX_RESCUES = 3  # stalls of one request that a 1-token probe may excuse (the server answers, the counters lag)
CHAT = "/chat/completions"
COMPLETIONS = "/completions"


@dataclass(frozen=True)
class Exchange:
    """What a request came to after its retries: the reply, or the error (``None`` with the reply), or ``halted``."""

    data: Mapping[str, Any] | None = None
    error: str | None = None
    latency: float = 0.0
    halted: bool = False


@dataclass(frozen=True)
class Pacing:
    """The clock, sleep, jitter and halt poll of one client (seams for tests)."""

    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    rng: Callable[[], float] = lambda: 0.5
    halt_poll: float = 0.05


class Exchanger:
    """Sends one client's requests; thread-safe (its state: whether the API still streams)."""

    def __init__(
        self,
        model_name: str,
        endpoints: Sequence[Endpoint],
        transport: Transport,
        *,
        sessions: SessionPool,
        auth: RequestAuth,
        limiter: RateLimiter,
        codec: JsonCodec | None,
        checks: ServerChecks,
        watch: ProgressWatch | None,
        budget: TokenBudget,
        scrub: Scrubber,
        pacing: Pacing,
        halted: Callable[[], bool],
        stream: bool,
    ) -> None:
        self.model_name, self.endpoints, self.transport = model_name, tuple(endpoints), transport
        self.timeouts = transport.timeouts
        self.sessions, self.auth, self.limiter, self.codec = sessions, auth, limiter, codec
        self.checks, self.watch, self.budget, self.scrub = checks, watch, budget, scrub
        self.pacing, self.halted = pacing, halted
        self.stream = stream  # API models stream; turned off for an API that refuses it

    def run(self, payload: dict[str, Any], turn: int, prompt_tokens: int | None, path: str = CHAT) -> Exchange:
        attempt = clamps = 0
        reauthorized = False
        retries = self.transport.max_retries
        while True:
            endpoint = self.endpoints[(turn + attempt + clamps) % len(self.endpoints)]
            out, latency = self._attempt(endpoint, payload, prompt_tokens, path)
            if out.kind is Attempt.OK:
                return Exchange(data=out.data, latency=latency)
            if out.kind is Attempt.HALTED:
                return Exchange(latency=latency, halted=True)
            if out.kind is Attempt.CLAMP and clamps < MAX_CLAMPS:
                self.budget.report_clamp(out.max_tokens or 0, prompt_tokens)
                payload, clamps = {**payload, "max_tokens": out.max_tokens}, clamps + 1
                continue
            if out.kind is Attempt.REAUTH and not reauthorized:  # a 401 with a token just dropped: once more
                reauthorized = True
                continue
            if out.kind in (Attempt.FATAL, Attempt.CLAMP, Attempt.REAUTH):
                return Exchange(error=out.error, latency=latency)
            self.checks.check_alive(out.error)
            if out.kind is Attempt.TIMEOUT:
                self.checks.check_responsive(out.error)
            if out.kind is Attempt.TIMEOUT or attempt >= retries:
                suffix = f" (gave up after {attempt + 1} attempts)" if out.kind is Attempt.RETRY else ""
                return Exchange(error=out.error + suffix, latency=latency)
            delay = self._backoff(attempt, out.retry_after)
            log.info("%s: %s; retry %d of %d in %.1f s", self.model_name, out.error, attempt + 1, retries, delay)
            if not self._pause(delay):
                return Exchange(latency=latency, halted=True)
            attempt += 1

    def _pause(self, seconds: float) -> bool:
        """Sleep out a retry's backoff, waking every ``halt_poll`` seconds to ask ``halted``: False once the series
        stopped (the request is given up unstored, as one waiting for its rate-limited start)."""
        left = seconds
        while left > 0:
            if self.halted():
                return False
            nap = min(left, self.pacing.halt_poll)
            self.pacing.sleep(nap)
            left -= nap
        return not self.halted()

    def _attempt(
        self, endpoint: Endpoint, payload: dict[str, Any], prompt_tokens: int | None, path: str
    ) -> tuple[Outcome, float]:
        clock = self.pacing.clock
        if (
            self.limiter.acquire((self.model_name, endpoint.api_base), self.transport.request_delay, self.halted)
            is None
        ):
            return Outcome(Attempt.HALTED), 0.0
        start = clock()
        headers: dict[str, str] = {}
        status: int | None = None
        try:
            headers = self.auth.headers(endpoint)
            with self._post(endpoint, self.auth.body(endpoint, payload), headers, path) as resp:
                out = self._classify(resp, payload["max_tokens"], prompt_tokens, path)
                status = resp.status_code
        except AuthError as exc:
            if not exc.retryable:
                raise
            return Outcome(Attempt.RETRY, error=self.scrub(exc)), clock() - start
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
        return self._after(endpoint, headers, status, out), clock() - start

    def _after(self, endpoint: Endpoint, headers: dict[str, str], status: int | None, out: Outcome) -> Outcome:
        """A 401 that the auth can renew is asked again; a 429/503 with Retry-After holds every worker's starts."""
        if status == 401 and self.auth.reauthorize(endpoint, headers):
            return Outcome(Attempt.REAUTH, error=out.error)
        if out.retry_after is not None and status in (429, 503):
            self.limiter.hold((self.model_name, endpoint.api_base), out.retry_after)
        return out

    def encoded(self, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        """``post`` keywords: ``json=`` for requests' own encoder, else the codec's bytes (``codec``)."""
        if self.codec is None:
            return {"json": body, "headers": headers}
        return {"data": self.codec.encode(body), "headers": {**headers, "Content-Type": "application/json"}}

    def _post(
        self, endpoint: Endpoint, payload: dict[str, Any], headers: dict[str, str], path: str
    ) -> requests.Response:
        """POST the request: streamed for API chats, watched through the server's progress when managed."""
        session, stream = self.sessions.get(), self.stream and path == CHAT
        body = {**payload, "stream": True, "stream_options": {"include_usage": True}} if stream else payload
        url = endpoint.api_base.rstrip("/") + path
        if self.watch is None:
            timeout = (self.timeouts.connect, self.timeouts.read)
            return session.post(
                url, **self.encoded(body, headers), timeout=timeout, stream=stream, verify=endpoint.verify
            )

        def send() -> requests.Response:  # no read timeout: the watch decides, from the server's progress
            return session.post(
                url, **self.encoded(body, headers), timeout=(self.timeouts.connect, None), verify=endpoint.verify
            )

        try:
            return wait_while_progressing(
                send,
                self.watch,
                self.timeouts.stall,
                self.pacing.clock,
                confirm=self.checks.confirm_stall,
                rescues=MAX_RESCUES,
            )
        except Stalled:
            self.sessions.forget()  # its thread still waits on it, until the server answers or is stopped
            raise

    def _timeout_text(self) -> str:
        if self.watch is not None:
            return f"no progress on the server for {self.timeouts.stall:g} s (request_timeout)"
        if self.stream:
            return f"nothing arrived for {self.timeouts.read:g} s (request_timeout)"
        return f"no reply within {self.timeouts.read:g} s (request_timeout)"

    def _read_body(self, resp: requests.Response) -> Any:
        """The JSON body, or what a 200 stream of server-sent events adds up to (a silent stream: ``Timeout``)."""
        if resp.status_code != 200 or "text/event-stream" not in resp.headers.get("Content-Type", ""):
            return decoded(resp, self.codec)
        try:
            return read_stream(resp.iter_lines())
        except requests.ConnectionError as exc:  # requests reports a read timeout mid-stream as a connection error
            if "timed out" in str(exc).lower():
                raise requests.ReadTimeout(str(exc)) from None
            raise

    def _classify(self, resp: requests.Response, max_tokens: int, prompt_tokens: int | None, path: str) -> Outcome:
        body = self._read_body(resp)
        if resp.status_code == 200:
            if valid_reply(body, text=path == COMPLETIONS):
                return Outcome(Attempt.OK, data=body)
            return Outcome(
                Attempt.RETRY, error=f"HTTP 200 without choices[0].{'text' if path == COMPLETIONS else 'message'}"
            )
        text = self.scrub(f"HTTP {resp.status_code}: {error_message(body, resp.text[:500])}")
        if resp.status_code == 429 or resp.status_code >= 500:
            return Outcome(Attempt.RETRY, error=text, retry_after=retry_after(resp.headers.get("Retry-After")))
        if resp.status_code == 400 and self.stream and "stream" in error_message(body, resp.text).lower():
            self.stream = False  # an API that refuses streaming (or its options) is asked without
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
        delay = min(cap, base * 2**attempt) * (0.5 + 0.5 * self.pacing.rng())
        return max(delay, min(hinted, cap)) if hinted is not None else delay


def decoded(resp: requests.Response, codec: JsonCodec | None = None) -> Any:
    """The reply's JSON (through ``codec`` when given), ``None`` when it is not JSON."""
    try:
        return resp.json() if codec is None else codec.decode(resp.content)
    except ValueError:
        return None
