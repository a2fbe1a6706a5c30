"""The state file of spawned vLLM servers, and ``cleanup`` of orphans.

Every server is recorded in ``<logs_dir>/servers.json`` (written atomically under a filelock) while it runs.
A process belongs to a recorded server only if it was created no earlier than the server and carries its run marker:
either ``DEATHMATH_RUN_ID=<run id>`` and ``DEATHMATH_SERVER_ID=<server id>`` in its environment, or -- because
``VLLM::EngineCore`` and ``VLLM::Worker`` rename themselves with setproctitle, which blanks ``/proc/<pid>/environ`` --
the server's session id together with stdout open on the server's log ``logs/<run id>/<name>.log``. ``cleanup``
signals only such processes of records whose owner (the orchestrator) is gone: a reused PID, or anything this tool did
not start, is never touched.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Protocol

import psutil
from filelock import FileLock, Timeout

from .. import fileio
from ..errors import OrchestratorError, ServerError

log = logging.getLogger(__name__)

RUN_ENV = "DEATHMATH_RUN_ID"
SERVER_ENV = "DEATHMATH_SERVER_ID"
STATE_NAME = "servers.json"
CREATE_TIME_TOLERANCE = 0.05  # seconds: psutil create times of one process agree to the jiffy


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


def atomic_write_json(path: Path, data: object) -> None:
    """Write JSON atomically (``fileio``); a failed write is a one-line ``ServerError`` naming the file."""
    fileio.atomic_write_json(path, data, error=ServerError)


def read_json(path: Path, default: object) -> object:
    """The JSON in ``path``; ``default`` if it is missing or unreadable (logged)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable %s (%s)", path, exc)
        return default


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
        return hold(self._lock, f"state file {self.path}", ServerError)

    def _load(self) -> list[ServerRecord]:
        data = read_json(self.path, [])
        try:
            return [ServerRecord.from_dict(d) for d in data]  # type: ignore[attr-defined]  # bad JSON: caught below
        except (TypeError, AttributeError) as exc:
            log.warning("ignoring malformed %s (%s)", self.path, exc)
            return []

    def _save(self, recs: list[ServerRecord]) -> None:
        atomic_write_json(self.path, [r.to_dict() for r in recs])


@contextmanager
def hold(lock: FileLock, what: str, error: type[OrchestratorError]) -> Iterator[None]:
    """Hold ``lock`` (creating its directory); a timeout becomes a one-line ``error`` naming ``what``."""
    Path(lock.lock_file).parent.mkdir(parents=True, exist_ok=True)
    try:
        lock.acquire()
    except Timeout:
        raise error(
            f"{what} stayed locked for {lock.timeout:.0f} s; another orchestrator hangs holding "
            f"{lock.lock_file}: stop it"
        ) from None
    try:
        yield
    finally:
        lock.release()


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
