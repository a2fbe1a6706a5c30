"""TERM-then-KILL: stop every process of a server, including those it forks while it is being stopped.

``terminate(find, send, grace)`` sends SIGTERM to what ``find()`` returns, waits up to ``grace`` seconds, sends
SIGKILL to what is left and returns what survives even that. ``find`` and ``send`` are the caller's: a live server
finds its session (``session.session_procs``), ``records.cleanup`` finds an orphan's members. ``wait_gone`` polls
until a set of processes is gone; ``GroupSender`` is the ``send`` of a server we spawned (its group at once, while
that id is surely ours). Nothing here decides which processes belong to whom (``records.belongs``).
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from typing import Any

from .identity import ProcessTable, ProcInfo, same_process

log = logging.getLogger(__name__)


def terminate(
    find: Callable[[], list[ProcInfo]],
    send: Callable[[int, list[ProcInfo]], None],
    grace: float,
    *,
    table: ProcessTable | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    kill_wait: float = 5.0,
    poll: float = 0.1,
) -> list[ProcInfo]:
    """SIGTERM what ``find()`` returns, wait up to ``grace``, SIGKILL what is left; return what survives that.

    Complete, not one look: a process can fork while it is being stopped (vLLM's API server spawns its engine early
    in start-up, the engine its workers), so ``find()`` is asked again until two looks in a row find nothing, and
    every newcomer gets the signals the others got. Nothing of the server can be born once a look finds no live
    process of it (only a live process forks); the second look covers a child whose pid was listed before its
    parent's. With ``table``, the waits between looks watch only the processes already found (cheap on a busy
    machine: no full scan while vLLM shuts down).
    """
    term = _Phase(find, send, table, clock, sleep, poll)
    if not term.run(signal.SIGTERM, grace):
        return []
    log.warning("%d process(es) still there %.1f s after SIGTERM; sending SIGKILL", len(term.left), grace)
    kill = _Phase(find, send, None, clock, sleep, poll)
    kill.run(signal.SIGKILL, kill_wait)
    return kill.left


class _Phase:
    """One signal over and over to whatever ``find()`` shows, until two looks in a row are empty or time is up."""

    def __init__(
        self,
        find: Callable[[], list[ProcInfo]],
        send: Callable[[int, list[ProcInfo]], None],
        table: ProcessTable | None,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        poll: float,
    ) -> None:
        self.find, self.send, self.table, self.clock, self.sleep, self.poll = find, send, table, clock, sleep, poll
        self.signalled: set[tuple[int, float]] = set()
        self.left: list[ProcInfo] = []

    def run(self, sig: int, timeout: float) -> bool:
        """True if something is left after ``timeout`` seconds (then ``self.left`` says what)."""
        deadline = self.clock() + timeout
        while True:
            self.left = self.find() or self.find()  # an empty look is confirmed by a second one, at once
            if not self.left:
                return False
            fresh = [p for p in self.left if (p.pid, p.create_time) not in self.signalled]
            if fresh:
                self.signalled.update((p.pid, p.create_time) for p in fresh)
                self.send(sig, fresh)
            if self.clock() >= deadline:
                return bool(self.left)
            self._wait(deadline)

    def _wait(self, deadline: float) -> None:
        """Until the processes found are gone (cheaply, with a table), or one poll interval without one."""
        if self.table is None:
            if self.find():  # a look right after the signal: often enough, nothing is left
                self.sleep(self.poll)
            return
        table, known = self.table, self.left
        wait_gone(
            lambda: [p for p in known if same_process(table, p.pid, p.create_time)],
            max(0.0, deadline - self.clock()),
            clock=self.clock,
            sleep=self.sleep,
            poll=self.poll,
        )


def wait_gone(
    find: Callable[[], list[ProcInfo]],
    timeout: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    poll: float = 0.1,
) -> list[ProcInfo]:
    """Poll ``find()`` until it is empty or ``timeout`` passes; return what is still there."""
    deadline = clock() + timeout
    left = find()
    while left and clock() < deadline:
        sleep(poll)
        left = find()
    return left


def unreaped(proc: Any) -> bool:
    """Our child ``proc`` (a ``Popen``) is not reaped yet, so its pid (= its session and group id) cannot belong to
    anyone else."""
    return proc.returncode is None


class GroupSender:
    """A ``send`` for ``terminate`` of a server we spawned (``proc``, leader of its own session and group): each
    signal once, to the whole group while its id is surely ours, else (and to strays) process by process."""

    def __init__(self, proc: Any, procs: ProcessTable) -> None:
        self._proc, self._procs = proc, procs
        self._sent: set[tuple[int, int]] = set()  # (pid or -pgid, signal)

    def __call__(self, sig: int, targets: list[ProcInfo]) -> None:
        pgid = self._proc.pid
        grouped = unreaped(self._proc) and self._group(pgid, sig)
        for p in targets:
            if not (grouped and p.pgid == pgid) and (p.pid, sig) not in self._sent:
                self._sent.add((p.pid, sig))
                self._procs.signal(p.pid, sig)

    def _group(self, pgid: int, sig: int) -> bool:
        if (-pgid, sig) in self._sent:
            return True
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            return False
        self._sent.add((-pgid, sig))
        return True
