"""Asking a judge model over an OpenAI-compatible chat endpoint (a managed vLLM server or an API).

``ChatJudge`` is the ``JudgeAsk`` the audit uses: one ``/chat/completions`` request per answer at temperature 0,
``response_format`` set to the verdict's JSON schema (vLLM enforces it; an API that ignores it is read strictly
by ``verdict.read_reply``). Authentication and body shaping go through the chat client's ``RequestAuth`` (bearer
keys, OpenRouter headers, GigaChat tokens). A 429, a 5xx or a broken connection is retried with backoff that
ends as soon as ``stop`` is set; a 401 is retried once when the auth says fresh credentials may help. What is
finally raised is an ``EndpointError`` with one line and no secret in it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import requests

from ..client.auth import EndpointAuth, RequestAuth
from ..contract import Endpoint
from ..errors import EndpointError

RETRYABLE = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
MAX_TOKENS = 512


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
        self.stop = stop or threading.Event()
        self._sleep = sleep

    def __call__(self, messages: Sequence[dict[str, str]], response_format: dict[str, Any]) -> str:
        payload: dict[str, Any] = {
            "model": self.model_name,
            "messages": list(messages),
            "temperature": 0,
            "max_tokens": self.max_tokens,
        }
        if self.structured:
            payload["response_format"] = response_format
        body = self.auth.body(self.endpoint, payload)
        url = self.endpoint.api_base.rstrip("/") + "/chat/completions"
        last = "no attempt"
        reauthorized = False
        for attempt in range(self.retries + 1):
            if self.stop.is_set():
                raise EndpointError(f"judge {self.model_name}: stopped before it answered")
            headers = self.auth.headers(self.endpoint)
            try:
                reply = self.session.post(url, json=body, headers=headers, timeout=self.timeout)
            except requests.RequestException as exc:
                last = type(exc).__name__
            else:
                if reply.status_code == 200:
                    return _content(reply)
                last = f"HTTP {reply.status_code}"
                if reply.status_code == 401 and not reauthorized and self.auth.reauthorize(self.endpoint, headers):
                    reauthorized = True
                    continue
                if reply.status_code not in RETRYABLE:
                    break
            if attempt < self.retries:
                self._nap(self.backoff * 2**attempt)
        raise EndpointError(self._scrub(f"judge {self.model_name} at {self.endpoint.api_base} failed: {last}"))

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
