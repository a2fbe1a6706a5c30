"""Stop every server of this process on SIGINT, SIGTERM or SIGHUP, then exit 130 / 143 / 129.

``SERVERS`` is the process-wide ``ServerGroup``: a ``VllmServer`` joins it when it starts and leaves it when it
stops, so ``install_signal_handlers(SERVERS.stop_all)`` is all the CLI needs.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Protocol

from ..errors import ServerStartError

log = logging.getLogger(__name__)

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}
STOPPING = "the run is stopping"
EXIT_DEADLINE = 120.0  # seconds after a signal by which the process is gone even if something hangs


class Stoppable(Protocol):
    def stop(self) -> None: ...


class ServerGroup:
    """The live servers of this process. ``stop_all`` is thread-safe, idempotent and safe in a signal handler.

    ``close()`` stops them all and admits no new one: once a run is stopping, a server that a job thread was about
    to start is refused (``add`` raises ``ServerStartError``) instead of outliving the run."""

    def __init__(self) -> None:
        self._servers: list[Stoppable] = []
        self._lock = threading.RLock()  # re-entrant: a signal handler may interrupt add() on the main thread
        self.closed = False

    def add(self, server: Stoppable) -> None:
        with self._lock:
            if self.closed:
                raise ServerStartError(f"{server!r} not started: the run is stopping", cause=STOPPING)
            if not any(s is server for s in self._servers):
                self._servers.append(server)

    def discard(self, server: Stoppable) -> None:
        with self._lock:
            self._servers = [s for s in self._servers if s is not server]

    def servers(self) -> list[Stoppable]:
        with self._lock:
            return list(self._servers)

    def close(self) -> None:
        """Admit no new server, then stop every tracked one."""
        with self._lock:
            self.closed = True
        self.stop_all()

    def stop_all(self) -> None:
        """Stop every tracked server (newest first); one failure does not keep the others running."""
        for server in reversed(self.servers()):
            try:
                server.stop()
            except Exception:  # keep stopping the rest, and say what failed
                log.exception("stopping %r failed", server)
            self.discard(server)


SERVERS = ServerGroup()


def install_signal_handlers(stop_all: Callable[[], None], *, exit_deadline: float = EXIT_DEADLINE) -> None:
    """On SIGINT/SIGTERM/SIGHUP: ignore further ones, call ``stop_all()``, exit 130/143/129.

    Must be called from the main thread. The exit is ``SystemExit`` (so ``finally`` blocks run); a daemon timer
    forces ``os._exit`` if the process is still there ``exit_deadline`` seconds after the signal.
    """

    def handler(signum: int, frame: object) -> None:
        code = EXIT_CODES[signal.Signals(signum)]
        for sig in EXIT_CODES:
            signal.signal(sig, signal.SIG_IGN)
        _arm_watchdog(code, exit_deadline)
        log.warning("received %s: stopping all servers, then exiting with %d", signal.Signals(signum).name, code)
        try:
            stop_all()
        finally:
            sys.exit(code)

    for sig in EXIT_CODES:
        signal.signal(sig, handler)


def _arm_watchdog(code: int, deadline: float) -> None:
    timer = threading.Timer(deadline, os._exit, (code,))
    timer.daemon = True
    timer.start()
