"""``SharedWork``: one model's work queue across its servers -- the first server's series and its replicas.

The model's job (``job.run_model``) runs its series one after another on its first server; each pass of a series
(``series._SeriesRun``) publishes its queue here. A replica (``job.run_replica``) ``serve``s: it joins every pass
published while it runs, taking batches from the same queue with its own client, so the model's servers share
what is left and each answer is asked once. A replica leaves when the model's last series has no batch left for
it (its queue is empty), when its own server fails (its batch goes back to the queue), or when the model's job
closes the share (the model is done, failed or stopped).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

WAIT = 0.5  # seconds between looks at ``stop`` while a replica waits for the next pass


class Pass(Protocol):
    """What a replica needs of a published pass (``series._SeriesRun``)."""

    def help(self, client: object, parallel: int, stop: threading.Event) -> BaseException | None: ...

    def queued(self) -> int: ...  # answers no server has taken yet


class SharedWork:
    """See the module docstring. Thread-safe."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pass: Pass | None = None
        self._last = False
        self._serial = 0
        self._later = 0  # answers of the series after the current one (``announce``)
        self.closed = False

    def publish(self, work: Pass, last: bool) -> None:
        """A pass of the model's series has its queue filled (``last``: of the model's last series)."""
        with self._cond:
            self._pass, self._last = work, last
            self._serial += 1
            self._cond.notify_all()

    def retire(self, work: Pass) -> None:
        with self._cond:
            if self._pass is work:
                self._pass = None

    def announce(self, later: int) -> None:
        """The model's job is about to start a series; ``later``: the answers of its series after that one."""
        with self._cond:
            self._later = later

    def untaken(self) -> int | None:
        """The answers a server joining now could still take: the open pass's queued answers plus those of the
        series announced after it; None before the first pass is published (not known yet). The model's tail, its
        answers in flight, is no work for another server."""
        with self._cond:
            if self.closed:
                return 0
            if self._serial == 0:
                return None
            queued = self._pass.queued() if self._pass is not None else 0
            return queued + (0 if self._last else self._later)

    def close(self) -> None:
        """The model's job is over: replicas leave."""
        with self._cond:
            self.closed = True
            self._pass = None
            self._cond.notify_all()

    def serve(self, new_client: Callable[[], object], parallel: int, stop: threading.Event) -> None:
        """Help every pass published from now on with a client of ``new_client`` (closed after each pass) and
        ``parallel`` workers; returns when the share closes, ``stop`` is set or the last series' queue is empty;
        raises what made this server fail (the batch it held is back in the queue)."""
        seen = 0
        while not stop.is_set():
            with self._cond:
                while not self.closed and (self._pass is None or self._serial == seen) and not stop.is_set():
                    self._cond.wait(WAIT)
                if self.closed or stop.is_set():
                    return
                work, last, seen = self._pass, self._last, self._serial
            assert work is not None
            client = new_client()
            try:
                failure = work.help(client, parallel, stop)
            finally:
                close = getattr(client, "close", None)
                if close is not None:
                    close()
            if failure is not None:
                raise failure
            if last:
                return
