"""The state file of spawned vLLM servers, and ``cleanup`` of orphans.

Every server is recorded in ``<logs_dir>/servers.json`` (written atomically under a filelock, ``fileio``) while it
runs. A process belongs to a recorded server (``belongs``) only if it was created no earlier than the server and
carries its run marker: either ``DEATHMATH_RUN_ID=<run id>`` and ``DEATHMATH_SERVER_ID=<server id>`` in its
environment (``launch.RUN_ENV`` / ``launch.SERVER_ENV``), or -- because ``VLLM::EngineCore`` and ``VLLM::Worker``
rename themselves with setproctitle, which blanks ``/proc/<pid>/environ`` -- the server's session id together with
stdout open on the server's log ``logs/<run id>/<name>.log``. ``cleanup`` signals (``terminate``) only such
processes of records whose owner (the orchestrator) is gone: a reused PID (``identity.same_process``), or anything
this tool did not start, is never touched.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from filelock import FileLock

from .. import fileio
from ..errors import ServerError
from .identity import CREATE_TIME_TOLERANCE, ProcessTable, ProcInfo, PsutilProcs, same_process
from .terminate import terminate

log = logging.getLogger(__name__)

STATE_NAME = "servers.json"


@dataclass(frozen=True)
class ServerRecord:
    """One spawned server, as the state file keeps it."""

    pid: int
    pgid: int
    create_time: float
    run_id: str
    owner_pid: int
    owner_create_time: float
    name: str
    gpus: tuple[int, ...] = ()
    port: int = 0
    log_path: str = ""
    server_id: str = ""

    def to_dict(self) -> dict:
        data = asdict(self)
        data["gpus"] = list(self.gpus)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ServerRecord:
        names = {f.name for f in fields(cls)}
        kept = {k: v for k, v in data.items() if k in names}
        kept["gpus"] = tuple(kept.get("gpus", ()))
        return cls(**kept)

    def describe(self) -> str:
        """One line for ``cleanup``'s report."""
        return (
            f"server {self.name!r} pid {self.pid} port {self.port} gpus {list(self.gpus)} run {self.run_id} "
            f"(owner pid {self.owner_pid} gone)"
        )


def belongs(p: ProcInfo, rec: ServerRecord) -> bool:
    """Is ``p`` a live process of the recorded server? (see the module docstring)"""
    if p.zombie or p.create_time < rec.create_time - CREATE_TIME_TOLERANCE:
        return False
    if p.run_id is not None or p.server_id is not None:
        return p.run_id == rec.run_id and p.server_id == rec.server_id
    return p.sid == rec.pgid and p.stdout is not None and p.stdout == rec.log_path


def members(procs: list[ProcInfo], rec: ServerRecord) -> list[ProcInfo]:
    """The live processes of a recorded server."""
    return [p for p in procs if belongs(p, rec)]


class StateFile:
    """``<logs_dir>/servers.json``: the servers this host's orchestrators have running."""

    def __init__(self, logs_dir: Path, lock_timeout: float = 30.0) -> None:
        self.path = Path(logs_dir) / STATE_NAME
        self._lock = FileLock(str(self.path) + ".lock", timeout=lock_timeout)

    def add(self, rec: ServerRecord) -> None:
        """Record a started server (replacing any stale record of the same pid)."""
        with self._locked():
            self._save([r for r in self._load() if r.pid != rec.pid] + [rec])

    def remove(self, pid: int) -> None:
        """Forget the server ``pid``; a no-op when it is not recorded."""
        with self._locked():
            recs = self._load()
            kept = [r for r in recs if r.pid != pid]
            if len(kept) != len(recs):
                self._save(kept)

    def records(self) -> list[ServerRecord]:
        """All recorded servers."""
        with self._locked():
            return self._load()

    def _locked(self) -> AbstractContextManager[None]:
        return fileio.hold(self._lock, f"state file {self.path}", ServerError)

    def _load(self) -> list[ServerRecord]:
        data = fileio.read_json(self.path, [])
        try:
            return [ServerRecord.from_dict(d) for d in data]  # type: ignore[attr-defined]  # bad JSON: caught below
        except (TypeError, AttributeError) as exc:
            log.warning("ignoring malformed %s (%s)", self.path, exc)
            return []

    def _save(self, recs: list[ServerRecord]) -> None:
        fileio.atomic_write_json(self.path, [r.to_dict() for r in recs], error=ServerError)


def cleanup(
    logs_dir: Path,
    procs: ProcessTable | None = None,
    *,
    grace: float = 10.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[ServerRecord]:
    """Kill the recorded servers whose owner is gone; return the records of those that had processes to kill.

    Records of servers owned by a live orchestrator are left alone; records of orphans are removed (unless a process
    survived SIGKILL: then the record stays for the next cleanup).
    """
    state = StateFile(logs_dir)
    table = procs if procs is not None else PsutilProcs()
    killed = []
    for rec in _orphans(state, table):
        found, left = _kill_orphan(rec, table, grace, clock, sleep)
        if found:
            killed.append(rec)
        if not left:
            state.remove(rec.pid)
    return killed


def _orphans(state: StateFile, table: ProcessTable) -> Iterator[ServerRecord]:
    for rec in state.records():
        if not same_process(table, rec.owner_pid, rec.owner_create_time):
            yield rec


def _kill_orphan(
    rec: ServerRecord, table: ProcessTable, grace: float, clock: Callable[[], float], sleep: Callable[[float], None]
) -> tuple[bool, list[ProcInfo]]:
    """(were there processes to kill, which survived)"""

    def find() -> list[ProcInfo]:
        return members(table.list(), rec)

    def send(sig: int, targets: list[ProcInfo]) -> None:
        for p in targets:
            table.signal(p.pid, sig)

    if not find():
        log.info("dropping stale record of %s: no process left", rec.describe())
        return False, []
    left = terminate(find, send, grace, table=table, clock=clock, sleep=sleep)
    if left:
        log.error("could not kill %s: pids %s survive SIGKILL", rec.describe(), [p.pid for p in left])
    else:
        log.info("killed orphan %s", rec.describe())
    return True, left
