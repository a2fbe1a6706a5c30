"""Asking a judge model over an OpenAI-compatible chat endpoint (a managed vLLM server or an API).

``ChatJudge`` is the ``JudgeAsk`` the audit uses: one ``/chat/completions`` request per answer at temperature 0,
``response_format`` set to the verdict's JSON schema (vLLM enforces it; an API that ignores it is read strictly by
``verdict.read_reply``). Authentication and body shaping go through the chat client's ``RequestAuth`` (bearer keys,
OpenRouter headers, GigaChat tokens), TLS through the endpoint's ``verify`` (a CA bundle). A 429, a 5xx or a broken
connection is retried with backoff that ends as soon as ``stop`` is set; a 401 is retried once when the auth says
fresh credentials may help. What is finally raised is an ``EndpointError`` with one line, the server's own message
in it and no secret.

An endpoint that fails a request with ``response_format`` (HTTP 400, 422, 500 or 501 after the retries: it
rejects the schema, or its structured-output backend breaks) is asked the same question once without it; when
that answers, the judge stops sending ``response_format`` to it, says so once in the log with the server's
message, and reads every reply strictly, as for an API that ignores the field.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import requests

from ..client.auth import EndpointAuth, RequestAuth
from ..client.replies import error_message
from ..contract import Endpoint
from ..errors import EndpointError

RETRYABLE = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
SCHEMA_REFUSALS = frozenset({400, 422, 500, 501})  # a structured request failing so: asked once without the schema
MAX_TOKENS = 512
MESSAGE_CHARS = 240  # of the server's error message kept in an error's text

log = logging.getLogger(__name__)


class _Failed(EndpointError):
    """A request that failed for good, with the last HTTP status it got (None: no answer at all)."""

    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.status = status


class JudgeAsk(Protocol):
    """Ask the judge one question; returns the reply's text (raises ``EndpointError`` when it cannot)."""

    def __call__(self, messages: Sequence[dict[str, str]], response_format: dict[str, Any]) -> str: ...


class ChatJudge:
    """A judge behind an OpenAI-compatible endpoint; see the module docstring."""

    def __init__(
        self,
        endpoint: Endpoint,
        model_name: str,
        *,
        auth: RequestAuth | None = None,
        session: requests.Session | None = None,
        timeout: float = 300.0,
        retries: int = 4,
        backoff: float = 1.0,
        max_tokens: int = MAX_TOKENS,
        structured: bool = True,
        stop: threading.Event | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.endpoint, self.model_name = endpoint, model_name
        self.auth = auth or EndpointAuth([endpoint])
        self.session = session or requests.Session()
        self.timeout, self.retries, self.backoff, self.max_tokens = timeout, retries, backoff, max_tokens
        self.structured = structured
        self._lock = threading.Lock()
        self.stop = stop or threading.Event()
        self._sleep = sleep

    def __call__(self, messages: Sequence[dict[str, str]], response_format: dict[str, Any]) -> str:
        payload: dict[str, Any] = {
            "model": self.model_name,
            "messages": list(messages),
            "temperature": 0,
            "max_tokens": self.max_tokens,
        }
        if not self.structured:
            return self._post(payload)
        try:
            return self._post({**payload, "response_format": response_format})
        except _Failed as exc:
            if exc.status not in SCHEMA_REFUSALS:
                raise
            refusal = str(exc)
        text = self._post(payload)
        with self._lock:
            said, self.structured = self.structured, False
        if said:
            log.warning("%s; it answers without response_format, so the judge asks without it from now on", refusal)
        return text

    def _post(self, payload: dict[str, Any]) -> str:
        """One question, retried as the module docstring says; the reply's text or ``_Failed``."""
        body = self.auth.body(self.endpoint, payload)
        url = self.endpoint.api_base.rstrip("/") + "/chat/completions"
        last, status = "no attempt", None
        reauthorized = False
        for attempt in range(self.retries + 1):
            if self.stop.is_set():
                raise EndpointError(f"judge {self.model_name}: stopped before it answered")
            headers = self.auth.headers(self.endpoint)
            try:
                reply = self.session.post(
                    url, json=body, headers=headers, timeout=self.timeout, verify=self.endpoint.verify
                )
            except requests.RequestException as exc:
                last, status = type(exc).__name__, None
            else:
                if reply.status_code == 200:
                    return _content(reply)
                status = reply.status_code
                last = f"HTTP {status}" + (f": {said}" if (said := _server_message(reply)) else "")
                if status == 401 and not reauthorized and self.auth.reauthorize(self.endpoint, headers):
                    reauthorized = True
                    continue
                if status not in RETRYABLE:
                    break
            if attempt < self.retries:
                self._nap(self.backoff * 2**attempt)
        where = " with response_format" if "response_format" in payload else ""
        text = f"judge {self.model_name} at {self.endpoint.api_base} failed{where}: {last}"
        raise _Failed(self._scrub(text), status)

    def _nap(self, seconds: float) -> None:
        """Back off for ``seconds``, in short naps that end as soon as ``stop`` is set."""
        end = time.monotonic() + seconds
        while not self.stop.is_set() and (left := end - time.monotonic()) > 0:
            self._sleep(min(left, 0.2))

    def _scrub(self, text: str) -> str:
        for secret in self.auth.secrets():
            if secret:
                text = text.replace(secret, "***")
        return text


def _content(reply: requests.Response) -> str:
    """The text of a chat completion (an empty string when the reply has none, which reads as unparsed)."""
    try:
        message = reply.json()["choices"][0]["message"]
    except (ValueError, KeyError, IndexError, TypeError):
        return ""
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, str) else ""


def _server_message(reply: requests.Response) -> str:
    """The server's own error message (``replies.error_message``; else the body's text), on one line and cut to
    ``MESSAGE_CHARS``."""
    try:
        body: Any = reply.json()
    except ValueError:
        body = None
    text = " ".join(error_message(body, reply.text).split())
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 3] + "..."
