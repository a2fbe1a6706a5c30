"""A spawned server's session, as processes: its exit code read without reaping it (``exit_code``), its live
processes (``session_procs``: its session while that id is surely ours, and all that carry its marker), and
``stop_session``: TERM -> grace -> KILL of them all (``terminate.py``), reaping our child. ``server.VllmServer``
calls these; which processes belong to a server is ``records.belongs``' decision."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .identity import ProcessTable, ProcInfo
from .records import ServerRecord, belongs
from .terminate import GroupSender, terminate, unreaped

log = logging.getLogger(__name__)

KILL_WAIT = 5.0  # seconds to wait for SIGKILLed processes to vanish


def exit_code(proc: Any) -> int | None:
    """The server's exit code, or None while it runs -- without reaping it: until ``stop()`` reaps it, the
    exited API process keeps its pid, and so its session and group id, from being reused, and the session of
    the server (its engine and workers) stays findable by that id."""
    try:
        result = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:  # not our child (a test's stand-in), or already reaped
        return proc.poll()
    if result is None:
        return None
    return result.si_status if result.si_code == os.CLD_EXITED else -result.si_status


def session_procs(proc: Any, rec: ServerRecord | None, procs: ProcessTable) -> list[ProcInfo]:
    """Live processes of this server: its session (while that id is surely ours) and all that carry its marker."""
    sid, ours = proc.pid, unreaped(proc)
    return [
        p for p in procs.list() if (rec is not None and belongs(p, rec)) or (ours and not p.zombie and p.sid == sid)
    ]


def stop_session(
    proc: Any,
    rec: ServerRecord | None,
    procs: ProcessTable,
    grace: float,
    *,
    name: str,
    state_path: Path,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> bool:
    """TERM -> grace -> KILL; True when no process of the server is left (else they are logged by pid)."""
    began = clock()
    send = GroupSender(proc, procs)
    send(signal.SIGTERM, [])  # the whole group at once, before the first (slower) process-table scan
    send(signal.SIGCONT, [])  # a stopped (SIGSTOP, hung) process acts on its SIGTERM only once continued
    left = terminate(
        lambda: session_procs(proc, rec, procs),
        send,
        grace,
        table=procs,
        clock=clock,
        sleep=sleep,
        kill_wait=KILL_WAIT,
    )
    proc.poll()  # reap our child
    if left:
        log.error(
            "server %r: pids %s of session %d survive SIGKILL; its record stays in %s for `cleanup`",
            name,
            [p.pid for p in left],
            proc.pid,
            state_path,
        )
    else:
        log.info("stopped vLLM server %r (session %d) in %.1f s", name, proc.pid, clock() - began)
    return not left
