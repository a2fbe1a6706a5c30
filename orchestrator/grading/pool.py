"""A pool of long-lived, killable worker processes that run checks with a hard timeout and a memory cap.

Each worker is a fresh interpreter (``python -m orchestrator.grading.worker``, see ``worker.py``) in its own
session: nothing of the parent is inherited or re-imported, so it is safe with threads and from any script. It
caps its address space with ``RLIMIT_AS``, imports the check function once and exits by itself when its parent
dies. A job that overruns its timeout gets its worker killed (SIGKILL) and replaced; so does a worker that ran
out of memory or died. The pool is thread-safe: each thread checks a worker out, uses it and returns it.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import GradingError

log = logging.getLogger(__name__)

CHECK = "orchestrator.grading.check:check"
WARM = "orchestrator.grading.check:warm_up"
DEFAULT_MEMORY_MB = 1536
STOP_GRACE_S = 1.0
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


@dataclass(frozen=True)
class Outcome:
    """What a job came to: ``status`` is ``ok``, ``error`` (an exception, ``value`` says which), ``timeout``,
    ``memory`` (MemoryError under the cap) or ``crashed`` (the worker died)."""

    status: str
    value: Any = None
    seconds: float = 0.0


def _environment(memory_mb: int) -> dict[str, str]:
    env = dict(os.environ, GRADER_MEMORY_MB=str(memory_mb), PYTHONIOENCODING="utf-8")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH", "")) if p)
    return env


class _Worker:
    """One worker process and the parent's ends of its pipes."""

    def __init__(self, memory_mb: int, target: str, warm: str | None) -> None:
        argv = [sys.executable, "-m", "orchestrator.grading.worker", target] + ([warm] if warm else [])
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=_environment(memory_mb),
            start_new_session=True,
            close_fds=True,
        )
        self._buffer = b""
        self.ready = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read_line(self, timeout: float) -> bytes | None:
        """One line from the worker within ``timeout``; None on timeout; EOFError when it closed stdout."""
        deadline = time.monotonic() + timeout
        stdout = self.process.stdout
        assert stdout is not None
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([stdout], [], [], left)[0]:
                return None
            chunk = os.read(stdout.fileno(), 1 << 16)
            if not chunk:
                raise EOFError("worker closed its output")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def wait_ready(self, timeout: float) -> bool:
        if not self.ready:
            try:
                line = self._read_line(timeout)
                self.ready = line is not None and json.loads(line)[0] == "ready"
            except (EOFError, OSError, ValueError):
                self.ready = False
        return self.ready

    def run(self, job: Any, timeout: float) -> list[Any] | None:
        """The worker's reply ``[status, value]``, or None when ``timeout`` passed first."""
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(json.dumps(job, ensure_ascii=False).encode("utf-8") + b"\n")
            self.process.stdin.flush()
            line = self._read_line(timeout)
            return None if line is None else json.loads(line)
        except (EOFError, OSError, ValueError):
            return ["crashed", None]

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(STOP_GRACE_S * 5)
        except subprocess.TimeoutExpired:  # pragma: no cover -- SIGKILL does not fail
            log.error("grader worker %s did not die after SIGKILL", self.pid)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()

    def stop(self) -> None:
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(b"null\n")
            self.process.stdin.flush()
            self.process.wait(STOP_GRACE_S)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
        self.kill()


def default_size() -> int:
    """One worker per usable core, at most 4."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover -- not Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


class GraderPool:
    """``size`` workers running ``target`` (``"module:function"`` taking and returning JSON values).

    Use as a context manager or call ``close()``. ``start_timeout`` bounds a worker's start-up, ``wait_timeout``
    a thread's wait for a free worker (many threads may share few workers).
    """

    def __init__(
        self,
        size: int | None = None,
        *,
        memory_mb: int = DEFAULT_MEMORY_MB,
        target: str = CHECK,
        warm: str | None = WARM,
        start_timeout: float = 120.0,
        wait_timeout: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.size = size or default_size()
        self._args = (memory_mb, target, warm)
        self._start_timeout, self._wait_timeout, self._clock = start_timeout, wait_timeout, clock
        self._idle: queue.Queue[_Worker | None] = queue.Queue()
        self._lock = threading.Lock()
        self._workers: set[_Worker] = set()
        self._closed = False
        for _ in range(self.size):
            self._idle.put(self._spawn())

    def _spawn(self) -> _Worker:
        worker = _Worker(*self._args)
        with self._lock:
            self._workers.add(worker)
        return worker

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            self._workers.discard(worker)
            closed = self._closed
        if not closed:
            self._idle.put(self._spawn())

    def _checkout(self) -> _Worker:
        try:
            worker = self._idle.get(timeout=self._wait_timeout)
        except queue.Empty:
            raise GradingError(
                f"no grader worker became free within {self._wait_timeout:.0f} s; "
                f"use more workers or fewer grading threads"
            ) from None
        if worker is None or self._closed:
            self._idle.put(None)
            raise GradingError("the grader pool is closed; create a new GraderPool")
        if not worker.wait_ready(self._start_timeout):
            self._replace(worker)
            raise GradingError(
                f"a grader worker did not start within {self._start_timeout:.0f} s "
                f"(memory cap {self._args[0]} MiB too small, or {self._args[1]} not importable?)"
            )
        return worker

    def pids(self) -> list[int]:
        """Process ids of the current workers (for tests and diagnostics)."""
        with self._lock:
            return [w.pid for w in self._workers]

    def run(self, job: Any, timeout: float) -> Outcome:
        """Run one job with a hard ``timeout`` in seconds; the worker is replaced if it overran or died."""
        worker = self._checkout()
        start = self._clock()
        reply = worker.run(job, timeout)
        elapsed = self._clock() - start
        if reply is None or reply[0] in ("crashed", "memory"):
            status = "timeout" if reply is None else reply[0]
            log.warning("grader worker %s: %s after %.2f s; replacing it", worker.pid, status, elapsed)
            self._replace(worker)
            return Outcome(status, None, elapsed)
        self._idle.put(worker)
        return Outcome(reply[0], reply[1], elapsed)

    def close(self) -> None:
        """Stop every worker (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            workers = list(self._workers)
            self._workers.clear()
        for worker in workers:
            worker.stop()
        self._idle.put(None)

    def __enter__(self) -> GraderPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
