"""How the chat client authenticates and shapes a request for one endpoint: the ``RequestAuth`` seam.

``ChatClient`` asks its ``RequestAuth`` for the headers of each attempt, the body to send, and -- after a 401 --
whether fresh credentials are worth one more try. ``EndpointAuth``, the default, reads everything from the
``Endpoint``:

* an OpenAI-compatible endpoint (``openai``, ``openrouter``, a managed vLLM server): ``Authorization: Bearer
  <api_key>`` when a key is set, plus the endpoint's extra headers (OpenRouter's ``HTTP-Referer`` / ``X-Title``);
  a 401 is final (a wrong key stays wrong).
* a GigaChat endpoint (``Endpoint.gigachat``): ``Authorization: Bearer <token>`` from the process-wide
  ``TokenSource`` of its credentials or login; the body goes through ``greedy_body`` (temperature 0 as GigaChat takes
  it, ``profanity_check``); a 401 drops the token and asks for one more try.

``secrets()`` lists what must be scrubbed from every error text: keys, credentials and every token handed out.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import urllib3

from ..contract import Endpoint, GigaChatAuth
from .gigachat import TokenSource, greedy_body, token_source

log = logging.getLogger(__name__)

_warned: set[str] = set()
_warned_lock = threading.Lock()


class RequestAuth(Protocol):
    """What the chat client needs to authenticate and shape a request."""

    def headers(self, endpoint: Endpoint) -> dict[str, str]: ...

    def body(self, endpoint: Endpoint, payload: dict[str, Any]) -> dict[str, Any]: ...

    def reauthorize(self, endpoint: Endpoint, sent: Mapping[str, str]) -> bool: ...

    def secrets(self) -> list[str]: ...


class EndpointAuth:
    """The default ``RequestAuth``: static bearer keys, or GigaChat's shared OAuth tokens."""

    def __init__(
        self, endpoints: Sequence[Endpoint], tokens: Callable[[GigaChatAuth, bool | str], TokenSource] = token_source
    ) -> None:
        self._endpoints = tuple(endpoints)
        self._tokens = tokens
        for endpoint in self._endpoints:
            if endpoint.verify is False:
                warn_unverified(endpoint)

    def headers(self, endpoint: Endpoint) -> dict[str, str]:
        out = dict(endpoint.headers)
        if endpoint.gigachat is not None:
            out["Authorization"] = f"Bearer {self._source(endpoint).token()}"
        elif endpoint.api_key:
            out["Authorization"] = f"Bearer {endpoint.api_key}"
        return out

    def body(self, endpoint: Endpoint, payload: dict[str, Any]) -> dict[str, Any]:
        return greedy_body(payload, endpoint.gigachat) if endpoint.gigachat is not None else payload

    def reauthorize(self, endpoint: Endpoint, sent: Mapping[str, str]) -> bool:
        if endpoint.gigachat is None:
            return False
        self._source(endpoint).reject(sent.get("Authorization", "").removeprefix("Bearer "))
        return True

    def secrets(self) -> list[str]:
        out = [s for e in self._endpoints for s in e.secrets]
        for endpoint in self._endpoints:
            if endpoint.gigachat is not None:
                out += self._source(endpoint).secrets()
        return out

    def _source(self, endpoint: Endpoint) -> TokenSource:
        assert endpoint.gigachat is not None
        return self._tokens(endpoint.gigachat, endpoint.verify)


def warn_unverified(endpoint: Endpoint) -> None:
    """One warning per endpoint and process for ``verify_ssl_certs: false`` (urllib3's own, per request, silenced)."""
    with _warned_lock:
        if endpoint.api_base in _warned:
            return
        _warned.add(endpoint.api_base)
    warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
    log.warning(
        "%s: verify_ssl_certs is false: its TLS certificate is not checked (anyone on the path can read "
        "the credentials); prefer `ca_bundle: <path to the CA .pem>`",
        endpoint.api_base,
    )
