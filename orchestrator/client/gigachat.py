"""GigaChat's OAuth, spoken directly over ``requests`` (the vendor's ``gigachat`` package is not used, see README).

* A token comes from ``POST <auth_url>`` with ``Authorization: Basic <credentials>``, a fresh ``RqUID`` (uuid4) and
  the form body ``scope=<scope>``; the reply is ``{"access_token", "expires_at"}`` with ``expires_at`` in
  milliseconds since the epoch. Chat requests carry ``Authorization: Bearer <token>``.
* With ``user`` and ``password`` instead (``GigaChatAuth.user`` set), the token comes from ``POST <api_base>/token``
  with HTTP basic auth of the two and no body, as the vendor's SDK logs in; the reply is ``{"tok", "exp"}``, ``exp``
  in milliseconds too. Everything else -- sharing, renewal, 401s, errors -- is the same.
* ``TokenSource.token()`` is shared by every worker of every client with the same credentials, scope and URL
  (``token_source``): one fetch at a time under a lock, so parallel requests never stampede the OAuth endpoint.
* A token is renewed before it expires (``REFRESH_MARGIN`` seconds, or a tenth of its life when that is shorter),
  and once more when the API answers 401 (``reject``: only the rejected token is dropped, so a burst of 401s costs
  one fetch).
* Failures raise ``AuthError``: refused credentials or login (401/403) or a refused scope (400) are final and name
  the field to fix; a network error, 429 or 5xx is ``retryable`` (the chat client retries the request). The credentials
  and tokens never reach an error text: every message is scrubbed.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import requests

from ..contract import GigaChatAuth, public_url
from ..errors import AuthError
from .replies import Scrubber, error_message

log = logging.getLogger(__name__)

REFRESH_MARGIN = 60.0  # seconds before expiry at which a token is renewed
AUTH_TIMEOUT = (10.0, 30.0)  # connect, read
SCOPES = ("GIGACHAT_API_PERS", "GIGACHAT_API_B2B", "GIGACHAT_API_CORP")
TLS_FIX = (
    "add `ca_bundle: <path to the Russian Trusted Root CA .pem>` to the endpoint "
    "(or `verify_ssl_certs: false`, as the original did)"
)


class TokenSource:
    """One GigaChat access token, shared and renewed; thread-safe."""

    def __init__(
        self,
        auth: GigaChatAuth,
        verify: bool | str = True,
        *,
        session_factory: Callable[[], requests.Session] = requests.Session,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self.auth, self.verify = auth, verify
        self._session_factory, self._clock, self._new_id = session_factory, clock, new_id
        self._token: str | None = None
        self._renew_at = 0.0
        self._issued: list[str] = []  # every token handed out (for scrubbing), newest last
        self._lock = threading.Lock()
        self.fetches = 0
        self.scrub = Scrubber(list(auth.secrets), more=lambda: self._issued)

    def token(self) -> str:
        """A token valid for a while yet: the current one, or a new one (only one thread fetches)."""
        with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                self._token, self._renew_at = self._fetch()
            return self._token

    def reject(self, token: str) -> None:
        """The API refused ``token`` (401): the next ``token()`` fetches a new one, unless that already happened."""
        with self._lock:
            if token == self._token:
                self._token = None

    def secrets(self) -> list[str]:
        """The credentials or password and every token handed out (no lock: a scrub never waits for a fetch)."""
        return [*self.auth.secrets, *self._issued]

    def _fetch(self) -> tuple[str, float]:
        self.fetches += 1
        where, request = self._login() if self.auth.user is not None else self._oauth()
        try:
            with self._session_factory() as session:
                resp = session.post(timeout=AUTH_TIMEOUT, verify=self.verify, **request)
        except requests.exceptions.SSLError as exc:
            raise AuthError(tls_failure(where, exc)) from None
        except requests.RequestException as exc:
            raise AuthError(self.scrub(f"{where}: {type(exc).__name__}: {exc}"), retryable=True) from None
        return self._accept(where, resp)

    def _oauth(self) -> tuple[str, dict[str, Any]]:
        headers = {
            "Authorization": f"Basic {self.auth.credentials}",
            "RqUID": self._new_id(),
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        return (
            f"GigaChat OAuth at {public_url(self.auth.auth_url)}",
            {"url": self.auth.auth_url, "data": {"scope": self.auth.scope}, "headers": headers},
        )

    def _login(self) -> tuple[str, dict[str, Any]]:
        return (
            f"GigaChat login at {public_url(self.auth.token_url)}",
            {
                "url": self.auth.token_url,
                "auth": (self.auth.user, self.auth.password or ""),
                "headers": {"Accept": "application/json"},
            },
        )

    def _accept(self, where: str, resp: requests.Response) -> tuple[str, float]:
        try:
            body = resp.json()
        except ValueError:
            body = None
        if resp.status_code != 200:
            raise self._refusal(where, resp.status_code, error_message(body, resp.text[:300]))
        token, expires_at = _token_fields(body)
        if not isinstance(token, str) or not token or not isinstance(expires_at, (int, float)):
            found = (
                "tok and exp; check `api_base`"
                if self.auth.user is not None
                else "access_token and expires_at; check `auth_url`"
            )
            raise AuthError(f"{where}: HTTP 200 without {found}", retryable=True)
        self._issued = (self._issued + [token])[-16:]
        now = self._clock()
        expiry = expires_at / 1000.0 if expires_at > 1e11 else float(expires_at)  # ms, as GigaChat; seconds tolerated
        margin = min(REFRESH_MARGIN, max(0.0, expiry - now) / 10)
        log.debug("%s: new token, valid for %.0f s", where, expiry - now)
        return token, expiry - margin

    def _refusal(self, where: str, status: int, message: str) -> AuthError:
        text = self.scrub(f"{where}: HTTP {status}: {message}")
        if status in (401, 403) and self.auth.user is not None:
            return AuthError(f"{text}; check `user` and `password` (your GigaChat login)")
        if status in (401, 403):
            return AuthError(f"{text}; check `credentials` (the authorization key of your GigaChat API project)")
        if status == 400 and self.auth.user is None:
            return AuthError(
                f"{text}; check `scope` ({self.auth.scope}): use the scope your key was issued for, "
                f"one of {', '.join(SCOPES)}"
            )
        return AuthError(text, retryable=status == 429 or status >= 500)


def _token_fields(body: Any) -> tuple[Any, Any]:
    """The token and its expiry from an OAuth reply (``access_token``, ``expires_at``) or a login (``tok``, ``exp``)."""
    if not isinstance(body, dict):
        return None, None
    if "tok" in body:
        return body.get("tok"), body.get("exp")
    return body.get("access_token"), body.get("expires_at")


def tls_failure(where: str, exc: Exception) -> str:
    """One line for a failed TLS handshake: the reason in short, and the fix (which a long text must not cut)."""
    found = _TLS_REASON.search(str(exc))
    reason = found.group(1).strip() if found else type(exc).__name__
    return f"{where}: TLS certificate check failed ({reason}); {TLS_FIX}"


_TLS_REASON = re.compile(r"certificate verify failed: ([^'\"()]{1,120})")
_SOURCES: dict[tuple[Any, ...], TokenSource] = {}
_SOURCES_LOCK = threading.Lock()


def token_source(auth: GigaChatAuth, verify: bool | str = True) -> TokenSource:
    """The process-wide ``TokenSource`` for these credentials (or login), scope, URLs and TLS setting."""
    digest = hashlib.sha256("\0".join((auth.credentials, auth.user or "", auth.password or "")).encode()).hexdigest()
    key = (auth.auth_url, auth.token_url, auth.scope, digest, verify)
    with _SOURCES_LOCK:
        source = _SOURCES.get(key)
        if source is None:
            source = _SOURCES[key] = TokenSource(auth, verify)
        return source


def greedy_body(payload: dict[str, Any], auth: GigaChatAuth) -> dict[str, Any]:
    """``payload`` as GigaChat takes it: temperature 0 (which it refuses) becomes temperature 1 with ``top_p`` 0.

    ``top_p`` 0 keeps only the most likely token, so the answer is greedy whatever the temperature: the original
    DeathMath sent exactly this. Other temperatures go with ``top_p`` 1 (no nucleus cut, as the original).
    """
    out = dict(payload)
    temperature = float(out.get("temperature") or 0.0)
    out["temperature"], out["top_p"] = (1.0, 0.0) if temperature <= 0 else (temperature, 1.0)
    if auth.profanity_check is not None:
        out["profanity_check"] = auth.profanity_check
    return out
