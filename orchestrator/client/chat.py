"""``ChatClient``: one problem -> one ``AnswerRecord`` over an OpenAI-compatible ``/v1/chat/completions``.

Split by concern: a request's retries, clamps and liveness are ``exchange.Exchanger``'s, the per-thread sessions
``sessions.SessionPool``'s, reasoning (request fields, thinking counted, a budget that still answers, the answer
found in the reasoning) ``thinking.py``'s; this module asks problems and fills records.

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
* ``reasoning`` (``thinking.Reasoning``): its request fields go into every chat request; with a thinking budget each
  answer is asked on its own (``ask_samples`` does not use ``n``) through ``reasoning.ask.BudgetAsker``, whose
  requests travel through the same exchanger (retries, liveness); a failed phase makes the whole answer an error
  record. Every record gets ``reasoning_tokens``, ``answer_tokens``, ``forced``, ``answer_in_reasoning``.
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
from typing import Any

import requests

from ..contract import AnswerRecord, Endpoint, Problem, Sampling, Transport
from ..errors import EndpointError
from ..reasoning.ask import BudgetAsker
from .auth import EndpointAuth, RequestAuth
from .budget import TokenBudget
from .exchange import CHAT, Exchange, Exchanger, Pacing
from .jsoncodec import JsonCodec
from .liveness import ProgressWatch, poll_interval
from .managed import ManagedServer, ServerChecks
from .ratelimit import LIMITER, POLL, RateLimiter
from .replies import Halted, Scrubber, choices_in_order, fill_record
from .sessions import SessionPool
from .thinking import BudgetWay, Reasoning, ask_budgeted, count_thinking, fill_budgeted, mark

log = logging.getLogger(__name__)

TRANSPORT = Transport()  # the defaults: request_timeout 600 s, 5 retries, no delay


class _Failed(Exception):
    """A request of a budgeted answer that came to an error or a halt (``Exchange``), out of the ``BudgetAsker``."""

    def __init__(self, done: Exchange) -> None:
        super().__init__(done.error or "halted")
        self.done = done


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
        reasoning: Reasoning | None = None,
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
        self._server, self._reasoning = server, reasoning or Reasoning()
        self._extra = {**self._reasoning.fields(), **dict(extra_body or {})}
        progress = server.progress if server is not None else None
        watch = (
            None
            if progress is None
            else ProgressWatch(progress, clock=clock, interval=poll_interval(self.timeouts.stall), name=model_name)
        )
        checks = ServerChecks(
            model_name, self.endpoints[0].api_base, self.timeouts.stall, clock=clock, server=server, watch=watch
        )
        self._budget = TokenBudget(model_name, sampling.max_tokens, context_len)
        self._failure_limit = failure_limit
        self._auth = auth if auth is not None else EndpointAuth(self.endpoints)
        self.halted: Callable[[], bool] = lambda: False  # run_series sets it: waits for the limiter end when true
        self.scrub = Scrubber((), more=self._auth.secrets)
        self.sessions = SessionPool(session_factory, [e.api_base for e in self.endpoints])
        # API models stream; a managed server is not: its progress is read from /metrics, and a request of several
        # samples (n > 1) is read whole
        self.exchanger = Exchanger(
            model_name,
            self.endpoints,
            transport,
            sessions=self.sessions,
            auth=self._auth,
            limiter=limiter,
            codec=codec,
            checks=checks,
            watch=watch,
            budget=self._budget,
            scrub=self.scrub,
            pacing=Pacing(sleep=sleep, clock=clock, rng=rng, halt_poll=halt_poll),
            halted=lambda: self.halted(),
            stream=server is None,
        )
        self._asker = self._budget_asker()
        self._lock, self._call = threading.Lock(), threading.local()
        self._turn = itertools.count()
        self._tokenize_ok = True
        self.failure_streak, self.last_error = 0, ""

    # -- sessions ------------------------------------------------------------------------------------------------
    def release_session(self) -> None:
        """Close the calling thread's session (workers call it when they finish)."""
        self.sessions.release()

    def close(self) -> None:
        """Close every pooled session."""
        self.sessions.close()

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
        if rec.error is None and self._reasoning.way is not BudgetWay.NONE:
            done = self._ask_budgeted(rec, messages, max_tokens, prompt_tokens, turn)
        elif rec.error is None:
            done = self.exchanger.run(self._payload(messages, max_tokens, rec.seed), turn, prompt_tokens)
        else:
            done = Exchange(error=rec.error)
        if done.halted:
            return Halted(problem)
        if rec.error is None:
            rec.error, rec.latency_s = done.error, done.latency
            if done.data is not None:
                self._fill(rec, done.data)
            self._note(rec)
        rec.timestamp = time.time()
        return rec

    @property
    def managed(self) -> bool:
        """Whether this client asks a managed vLLM server (``server`` given)."""
        return self._server is not None

    @property
    def asks_n(self) -> bool:
        """Whether a problem's consecutive samples go in one request with ``n`` (``ask_samples``): a managed server's,
        unless a thinking budget asks each answer on its own."""
        return self.managed and self._reasoning.way is BudgetWay.NONE

    def ask_samples(
        self, problems: Sequence[Problem], messages: list[dict], settings_hash: str
    ) -> list[AnswerRecord | Halted]:
        """Consecutive samples of one problem in one request with ``n`` = len(problems) and the first one's seed.

        vLLM seeds the i-th of ``n`` choices with seed + i, so each answer is the one its own request would get.
        Usage covers all choices: completion tokens are split evenly (the remainder to the first ones).
        """
        if len(problems) == 1 or not self.asks_n:
            return [self.ask(p, messages, settings_hash) for p in problems]
        recs = [self._record(p, settings_hash) for p in problems]
        turn = next(self._turn)
        max_tokens, prompt_tokens, error = self._plan(messages, self.endpoints[turn % len(self.endpoints)])
        done = Exchange(error=error)
        if error is None:
            done = self.exchanger.run(
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
                self._fill(rec, data, index, len(recs))
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

    def _sampling(self, seed: int | None) -> dict[str, Any]:
        optional = {k: v for k, v in (("top_p", self.sampling.top_p), ("seed", seed)) if v is not None}
        return {"temperature": self.sampling.temperature, **optional}

    def _payload(self, messages: list[dict], max_tokens: int, seed: int | None = None) -> dict[str, Any]:
        """One request's body; several samples in one request: ``ask_samples``."""
        return {
            **self._extra,
            "model": self.model_name,
            "messages": messages,
            "max_tokens": max_tokens,
            **self._sampling(seed),
        }

    def _fill(self, rec: AnswerRecord, data: Mapping[str, Any], index: int = 0, of: int = 1) -> None:
        fill_record(rec, data, index, of)
        count_thinking(rec, data, index, of, self._asker if self._reasoning.tags is not None else None)
        mark(rec, self._reasoning.settings)

    # -- a thinking budget (``thinking.py``) ---------------------------------------------------------------------
    def _budget_asker(self) -> BudgetAsker | None:
        tags = self._reasoning.tags
        if tags is None:
            return None
        return BudgetAsker(self.endpoints[0].api_base, self.model_name, tags=tags, post=self._send)

    def _ask_budgeted(
        self, rec: AnswerRecord, messages: list[dict], max_tokens: int, prompt_tokens: int | None, turn: int
    ) -> Exchange:
        """One answer within the thinking budget, its requests sent through the exchanger (``_send``)."""
        assert self._asker is not None
        self._call.turn, self._call.prompt_tokens, self._call.latency = turn, prompt_tokens, 0.0
        try:
            answer = ask_budgeted(
                self._asker, self._reasoning, messages, max_tokens, self._sampling(rec.seed), self._extra
            )
        except _Failed as failed:
            return Exchange(error=failed.done.error, latency=self._call.latency, halted=failed.done.halted)
        except EndpointError as exc:
            return Exchange(error=self.scrub(exc), latency=self._call.latency)
        fill_budgeted(rec, answer)
        mark(rec, self._reasoning.settings)
        return Exchange(latency=self._call.latency)

    def _send(self, url: str, body: Mapping[str, Any]) -> Mapping[str, Any]:
        """The ``BudgetAsker``'s requests: chats and completions through the exchanger, ``/tokenize`` directly."""
        api_base = self.endpoints[0].api_base.rstrip("/")
        if not url.startswith(api_base):
            return self._tokenize(url, body)
        done = self.exchanger.run(
            dict(body), getattr(self._call, "turn", 0), getattr(self._call, "prompt_tokens", None),
            url.removeprefix(api_base) or CHAT,
        )  # fmt: skip
        self._call.latency = getattr(self._call, "latency", 0.0) + done.latency
        if done.data is None:
            raise _Failed(done)
        return done.data

    def _tokenize(self, url: str, body: Mapping[str, Any]) -> Mapping[str, Any]:
        endpoint = self.endpoints[0]
        try:
            resp = self.sessions.get().post(
                url,
                json=dict(body),
                headers=self._auth.headers(endpoint),
                timeout=(self.timeouts.connect, self.timeouts.tokenize),
            )
            data = resp.json() if resp.status_code == 200 else None
        except (requests.RequestException, ValueError) as exc:
            raise EndpointError(self.scrub(f"POST /tokenize: {exc}")) from None
        if not isinstance(data, Mapping):
            raise EndpointError(f"POST /tokenize: HTTP {resp.status_code}; the thinking tags could not be tokenised")
        return data

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
            resp = self.sessions.get().post(
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
