"""Request starts shared by every worker: ``request_delay`` and ``Retry-After`` as a provider sees them.

* ``RateLimiter.acquire(key, interval)`` returns once this caller may start a request: at most one start per
  ``interval`` seconds for each key, whatever the number of workers (the chat client's key is the model name and the
  endpoint, so each endpoint of a model has its own pace).
* ``RateLimiter.hold(key, seconds)`` (a 429 or 503 with ``Retry-After``) pauses every start for that key until then;
  a hold never shortens an earlier one and is capped at ``MAX_HOLD``.
* A waiter wakes at least every ``POLL`` seconds to ask ``halted()``: a stopped run (Ctrl-C, a failed series) does not
  sit out a long ``Retry-After``; ``acquire`` then returns ``None`` and no request starts.
* Starts are not queued in order: a waiter sleeps until the earliest possible start, then checks again (a hold may
  have arrived meanwhile). Spacing is exact, fairness is not needed (every worker has the same job).

One process-wide limiter (``LIMITER``) is shared by every client of the process, so a model's datasets and its
restarts keep the pace too; tests build their own with a fake clock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable

log = logging.getLogger(__name__)

MAX_HOLD = 300.0  # seconds: a Retry-After longer than this (a daily quota) is cut to it and retried then
POLL = 0.5  # seconds between checks of ``halted`` while waiting


class RateLimiter:
    """At most one request start per ``interval`` seconds per key, and pauses on ``Retry-After``."""

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._clock, self._sleep = clock, sleep
        self._next: dict[Hashable, float] = {}  # earliest next start per key (last start + interval)
        self._hold: dict[Hashable, float] = {}  # no start before this per key (Retry-After)
        self._lock = threading.Lock()

    def acquire(self, key: Hashable, interval: float, halted: Callable[[], bool] = lambda: False) -> float | None:
        """Wait for this key's next start slot and take it: the seconds waited, or ``None`` once ``halted()``."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                start = max(now, self._next.get(key, now), self._hold.get(key, now))
                if start <= now:
                    if interval > 0:
                        self._next[key] = now + interval
                    return waited
            if halted():
                return None
            nap = min(start - now, POLL)
            self._sleep(nap)
            waited += nap

    def hold(self, key: Hashable, seconds: float) -> None:
        """No start for ``key`` in the next ``seconds`` (capped at ``MAX_HOLD``)."""
        if seconds <= 0:
            return
        if seconds > MAX_HOLD:
            log.warning("Retry-After of %.0f s cut to %.0f s", seconds, MAX_HOLD)
            seconds = MAX_HOLD
        with self._lock:
            until = self._clock() + seconds
            if until > self._hold.get(key, 0.0):
                self._hold[key] = until


LIMITER = RateLimiter()
