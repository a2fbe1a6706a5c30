"""``SessionPool``: one pooled ``requests`` session per worker thread (keep-alive), proxies ignored for loopback.

``get()`` gives the calling thread's session (made by ``factory`` on first use), ``release()`` closes it when the
thread is done, ``forget()`` drops it unclosed (a request abandoned by a stall still waits on it), ``close()``
closes them all.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

import requests

from ..contract import LOCAL_HOSTS


class SessionPool:
    """Per-thread sessions of one client; thread-safe."""

    def __init__(self, factory: Callable[[], requests.Session], api_bases: Sequence[str]) -> None:
        self._factory = factory
        self._loopback = all(is_loopback(url) for url in api_bases)
        self._local, self._lock = threading.local(), threading.Lock()
        self._sessions: list[requests.Session] = []

    def get(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._factory()
            if self._loopback:
                session.trust_env = False  # never route loopback traffic through an HTTP(S)_PROXY
            with self._lock:
                self._sessions.append(session)
            self._local.session = session
        return session

    def release(self) -> None:
        """Close the calling thread's session (workers call it when they finish)."""
        session = self._drop()
        if session is not None:
            session.close()

    def forget(self) -> None:
        """Drop the calling thread's session without closing it (an abandoned request still uses it)."""
        self._drop()

    def close(self) -> None:
        """Close every pooled session."""
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()

    def _drop(self) -> requests.Session | None:
        session = getattr(self._local, "session", None)
        self._local.session = None
        with self._lock:
            if session in self._sessions:
                self._sessions.remove(session)
        return session


def is_loopback(url: str) -> bool:
    return urlsplit(url).hostname in LOCAL_HOSTS
