"""Process identity: which live process is which, told apart from a reused PID.

A process is named by its pid *and* its creation time (``psutil``'s ``create_time``): ``same_process`` says whether
``pid`` still is the process created at that time, so a PID the kernel handed to someone else is never mistaken for
ours. ``ProcInfo`` is what the rest of the lifecycle reads about one process -- its session and group, the run
markers of its environment (``launch.RUN_ENV`` / ``launch.SERVER_ENV``) and where its stdout points -- and
``ProcessTable`` is the seam that lists, dates and signals processes: ``PsutilProcs`` in production, a scripted
table in tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Protocol

import psutil

from .launch import RUN_ENV, SERVER_ENV

CREATE_TIME_TOLERANCE = 0.05  # seconds: psutil create times of one process agree to the jiffy


@dataclass(frozen=True)
class ProcInfo:
    """What cleanup needs to know about one process."""

    pid: int
    create_time: float
    pgid: int = -1
    sid: int = -1
    run_id: str | None = None
    server_id: str | None = None
    zombie: bool = False
    stdout: str | None = None  # where fd 1 points (resolved path)


class ProcessTable(Protocol):
    """The process-table seam: psutil in production, a scripted table in tests."""

    def list(self) -> list[ProcInfo]: ...

    def create_time(self, pid: int) -> float | None: ...

    def signal(self, pid: int, sig: int) -> None: ...

    def listening(self, pid: int) -> set[int] | None:
        """TCP ports ``pid`` listens on; None when that cannot be known (not our process)."""
        ...


@dataclass
class PsutilProcs:
    """The real process table (only processes of this user have readable environments)."""

    _env_cache: dict[tuple[int, float], dict] = field(default_factory=dict)

    def list(self) -> list[ProcInfo]:
        out = []
        for proc in psutil.process_iter(["pid", "create_time", "status"]):
            info = self._info(proc)
            if info is not None:
                out.append(info)
        return out

    def _info(self, proc: psutil.Process) -> ProcInfo | None:
        try:
            pid, created = proc.info["pid"], proc.info["create_time"]
            zombie = proc.info["status"] == psutil.STATUS_ZOMBIE
            env = {} if zombie else self._environ(proc, created)
            return ProcInfo(
                pid,
                created,
                os.getpgid(pid),
                os.getsid(pid),
                env.get(RUN_ENV),
                env.get(SERVER_ENV),
                zombie,
                None if zombie else _stdout(pid),
            )
        except (psutil.Error, OSError, TypeError):
            return None

    def _environ(self, proc: psutil.Process, created: float) -> dict:
        key = (proc.pid, created)
        if key not in self._env_cache:
            try:
                env = proc.environ()
            except psutil.AccessDenied:
                env = {}
            self._env_cache[key] = {k: env[k] for k in (RUN_ENV, SERVER_ENV) if k in env}
        return self._env_cache[key]

    def create_time(self, pid: int) -> float | None:
        try:
            proc = psutil.Process(pid)
            return None if proc.status() == psutil.STATUS_ZOMBIE else proc.create_time()
        except psutil.Error:
            return None

    def signal(self, pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def listening(self, pid: int) -> set[int] | None:
        try:
            conns = psutil.Process(pid).net_connections("tcp")
        except psutil.AccessDenied:
            return None
        except psutil.Error:
            return set()
        return {c.laddr.port for c in conns if c.status == psutil.CONN_LISTEN}


def _stdout(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/fd/1")
    except OSError:
        return None


def same_process(table: ProcessTable, pid: int, create_time: float) -> bool:
    """Is ``pid`` running and is it the process that was created at ``create_time`` (not a reused PID)?"""
    now = table.create_time(pid)
    return now is not None and abs(now - create_time) <= CREATE_TIME_TOLERANCE


def process_alive(pid: int, create_time: float) -> bool:
    """``same_process`` on the real process table."""
    return same_process(PsutilProcs(), pid, create_time)
