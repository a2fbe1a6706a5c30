"""Progress, not the clock, decides whether a managed server is alive.

* ``progress_from_metrics(text)``: one number that grows while a vLLM engine works, from its Prometheus ``/metrics``:
  the sum of ``vllm:generation_tokens_total`` and ``vllm:prompt_tokens_total`` (over every label set: engines, data
  parallel ranks). ``None`` when neither counter is there (another server, or ``--disable-log-stats``).
* ``ProgressWatch``: the time the engine last made progress. Worker threads waiting for an answer ask it; at most
  one reads ``/metrics`` per ``interval``; a request's stall is measured up to the latest reading (a slow read of a
  busy server delays the verdict, never makes a false one).
  A reading that fails or has no counters is no progress: with ``/metrics`` gone, the stall limit runs from the
  request's start, which is the old clock rule.

* ``wait_while_progressing(fn, watch, limit, ...)``: a blocking request in a thread of its own, waited for while the
  server progresses; after ``limit`` seconds without progress its ``confirm`` decides: ``Verdict.BUSY`` (wait on),
  ``ANSWERS`` (wait on, a bounded number of times) or else ``Stalled``.
* ``probe_watching(probe, watch)``: the verdict on a stall: ``BUSY`` when the counters grow by more than the probe's
  own tokens while the 1-token probe runs, else ``ANSWERS`` or ``STALLED`` by the probe.

The chat client cuts a request off only after ``request_timeout`` seconds without progress (the stall limit); the
engine's counters freeze when it is stopped (SIGSTOP) or wedged, so a hung engine is still found within
``request_timeout`` plus one ``interval`` (2 s at most) plus the probe (10 s), and then restarted.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Callable
from enum import StrEnum
from typing import TypeVar, cast

log = logging.getLogger(__name__)
T = TypeVar("T")

PROGRESS_COUNTERS = ("vllm:generation_tokens_total", "vllm:prompt_tokens_total")
MAX_INTERVAL = 2.0
MIN_INTERVAL = 0.05
_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{[^}]*\})?\s+(\S+)")


def progress_from_metrics(text: str) -> float | None:
    """The sum of vLLM's generated and prompt token counters in a Prometheus text exposition, or ``None``."""
    total, seen = 0.0, False
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None or match.group(1) not in PROGRESS_COUNTERS:
            continue
        try:
            value = float(match.group(2))
        except ValueError:
            continue
        if math.isfinite(value):
            total, seen = total + value, True
    return total if seen else None


def poll_interval(stall_limit: float) -> float:
    """How often waiting requests look at the server's progress: a quarter of the stall limit, 50 ms to 2 s."""
    return min(MAX_INTERVAL, max(MIN_INTERVAL, stall_limit / 4))


class ProgressWatch:
    """When a server last made progress, from ``read`` (a counter that grows while it works), read at most once per
    ``interval`` by one thread at a time (the others wait for that reading rather than judge from an old one)."""

    def __init__(
        self, read: Callable[[], float | None], *, clock: Callable[[], float], interval: float, name: str = "server"
    ) -> None:
        self._read, self._clock, self.interval, self._name = read, clock, interval, name
        self._lock = threading.Lock()
        self._value: float | None = None
        self._changed = self._read_at = clock()
        self._fresh = False
        self._warned = False

    def stall(self, start: float) -> float:
        """Seconds without progress, up to the latest reading, of a request sent at ``start``.

        Measured to when the latest reading was taken, not to now: a slow ``/metrics`` (a busy server) delays the
        verdict, never makes a false one.
        """
        with self._lock:
            if not self._fresh or self._clock() - self._read_at >= self.interval:
                self._poll()
            return self._read_at - max(start, self._changed)

    def refresh(self) -> float | None:
        """Read the counter now; its value, or ``None`` when it cannot be read."""
        with self._lock:
            return self._poll()

    def mark(self) -> None:
        """Count now as progress (the server just proved it generates: it answered a probe)."""
        with self._lock:
            self._changed = max(self._changed, self._clock())

    def last_progress(self) -> float:
        """The time of the reading that last saw the counter grow (or when the watch began)."""
        with self._lock:
            return self._changed

    def _poll(self) -> float | None:
        taken = self._clock()
        value = self._read()
        self._read_at, self._fresh = taken, True
        if value is None:
            if not self._warned:
                self._warned = True
                log.warning(
                    "%s: no progress counters on /metrics; a request is cut off after request_timeout "
                    "seconds without an answer",
                    self._name,
                )
            return None
        if self._value is not None and value > self._value:
            self._changed = taken
        self._value = value  # a counter that went down (a restarted server) is a new baseline
        return value


class Stalled(Exception):
    """A request saw no progress of its server for the stall limit (its HTTP thread is left to the server's end)."""


class _Call(threading.Thread):
    def __init__(self, fn: Callable[[], T]) -> None:
        super().__init__(name="http-call", daemon=True)
        self.fn, self.done = fn, threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as exc:  # noqa: BLE001 -- handed to the waiting thread
            self.error = exc
        finally:
            self.done.set()


PROBE_TOKENS = 64  # what a 1-token probe adds to the counters (its prompt and its token), with room


class Verdict(StrEnum):
    """The verdict on a stall of a managed server."""

    BUSY = "busy"  # the counters moved while the server was asked: no stall after all (a slow engine step)
    ANSWERS = "answers"  # the counters stayed still but the server answered a 1-token probe
    STALLED = "stalled"  # nothing to excuse the stall


def probe_watching(probe: Callable[[], bool], watch: ProgressWatch, allowance: float = PROBE_TOKENS) -> Verdict:
    """``BUSY`` as soon as the counters grow by more than the probe's own ``allowance`` of tokens while
    ``probe()`` (a 1-token request) runs, else ``ANSWERS`` or ``STALLED`` by the probe's own verdict: a busy engine
    may answer a probe late, a hung one never moves its counters."""
    base = watch.refresh()
    call = _Call(probe)
    call.start()
    while True:
        finished = call.done.wait(watch.interval)
        now = watch.refresh()
        if base is not None and now is not None and now - base > allowance:
            return Verdict.BUSY
        if finished:
            return Verdict.ANSWERS if call.error is None and call.result else Verdict.STALLED


def wait_while_progressing(
    fn: Callable[[], T],
    watch: ProgressWatch,
    stall_limit: float,
    clock: Callable[[], float],
    confirm: Callable[[], Verdict] = lambda: Verdict.STALLED,
    rescues: int = 0,
) -> T:
    """``fn()`` (a blocking request) run in a thread of its own, waited for however long it takes while the
    server makes progress. After ``stall_limit`` seconds without any, ``confirm()`` asks the server itself (it
    raises when the server is dead or hung): ``BUSY`` waits on; ``ANSWERS`` (work the counters do not show, or this
    request lost) waits on at most ``rescues`` times for this request; else ``Stalled`` is raised."""
    call = _Call(fn)
    start = clock()
    call.start()
    while not call.done.wait(watch.interval):
        if watch.stall(start) < stall_limit:
            continue
        verdict = confirm()
        if verdict is Verdict.ANSWERS and rescues > 0:
            rescues -= 1
        elif verdict is not Verdict.BUSY:
            raise Stalled(f"no progress on the server for {stall_limit:g} s (request_timeout)")
        start = clock()
    if call.error is not None:
        raise call.error
    return cast(T, call.result)
