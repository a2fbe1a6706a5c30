"""Talking to the Hugging Face hub quietly and failing fast when it cannot be reached (datasets and weights).

``huggingface_hub`` retries a refused or timed-out connection five times with back-off and logs each attempt
(about a dozen warning lines over ~24 s) before it gives up. So before any hub call, ``probe`` asks the endpoint
once, through ``huggingface_hub``'s own HTTP session (proxies and a custom client factory apply), with a short
connect timeout: when that fails the caller goes straight to the cache or to its one-line error. ``quiet`` keeps
the library's warnings and progress bars out of the terminal while we talk to the hub (our own progress lines
report downloads); real errors still reach the caller as exceptions.

Contract:
    probe(endpoint=None, connect_timeout=CONNECT_TIMEOUT_S) -> None      raises HubUnreachable; cached 30 s
    quiet()                                                             context manager, thread-safe, re-entrant
    endpoint() -> str                                                   HF_ENDPOINT or https://huggingface.co
    offline() -> bool                                                   HF_HUB_OFFLINE is set
    summary(exc) -> str                                                 one line of a hub error, tokens scrubbed
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator

CONNECT_TIMEOUT_S = 5.0
PROBE_TTL_S = 30.0
_TRUE = ("1", "true", "yes", "on")
_TOKEN_RE = re.compile(r"hf_[A-Za-z0-9]{6,}")


class HubUnreachable(ConnectionError):
    """The hub's endpoint did not answer (or offline mode is on): the cache is all there is."""


def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "").strip().rstrip("/") or "https://huggingface.co"


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


class _Probe:
    """One probe per endpoint per ``PROBE_TTL_S``: a run of ten models asks once, a run that lasts all night asks
    again later (the network may come back)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._seen: dict[str, tuple[float, str | None]] = {}

    def __call__(self, url: str | None = None, connect_timeout: float = CONNECT_TIMEOUT_S) -> None:
        if offline():
            raise HubUnreachable("offline mode is on: HF_HUB_OFFLINE is set")
        url = url or endpoint()
        with self._lock:
            when, error = self._seen.get(url, (float("-inf"), None))
            if self._clock() - when > PROBE_TTL_S:
                error = _ask(url, connect_timeout)
                self._seen[url] = (self._clock(), error)
        if error is not None:
            raise HubUnreachable(error)

    def forget(self) -> None:
        with self._lock:
            self._seen.clear()


def _ask(url: str, connect_timeout: float) -> str | None:
    """None when ``url`` answers anything at all over HTTP, else why not (one short phrase)."""
    import httpx2
    from huggingface_hub.utils import get_session

    try:
        get_session().head(url, timeout=httpx2.Timeout(connect_timeout * 2, connect=connect_timeout))
    except httpx2.ProxyError as exc:
        return f"the proxy refused: {exc}"
    except httpx2.TransportError as exc:
        return f"{type(exc).__name__}: {exc or f'no answer within {connect_timeout:g} s'}"
    return None


probe = _Probe()

_quiet_lock = threading.Lock()
_quiet_depth = 0
_saved: tuple[int, int, bool] = (logging.NOTSET, logging.NOTSET, False)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """``huggingface_hub``'s retry warnings and progress bars off while the block runs (every thread)."""
    global _quiet_depth, _saved
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    hub_log, http_log = logging.getLogger("huggingface_hub"), logging.getLogger("httpx2")
    with _quiet_lock:
        if _quiet_depth == 0:
            _saved = (hub_log.level, http_log.level, are_progress_bars_disabled())
            hub_log.setLevel(logging.ERROR)
            http_log.setLevel(logging.WARNING)  # one INFO line per request otherwise (with -v)
            disable_progress_bars()
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                hub_log.setLevel(_saved[0])
                http_log.setLevel(_saved[1])
                if not _saved[2]:
                    enable_progress_bars()


def summary(exc: BaseException) -> str:
    """``Type: message`` on one line, tokens scrubbed (HF_TOKEN's value, any ``hf_...``), at most 200 characters:
    the hub errors of datasets and weights alike."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    line = _scrub(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)
    return line if len(line) <= 200 else line[:199] + "…"


def _scrub(text: str) -> str:
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if token and len(token) >= 4:
        text = text.replace(token, "***")
    return _TOKEN_RE.sub("hf_***", text)
