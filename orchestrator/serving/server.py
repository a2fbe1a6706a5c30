"""vLLM server lifecycle: start in its own session, wait until ready, watch, stop TERM -> grace -> KILL.

``VllmServer(spec, run_id, logs_dir)`` starts the argv and environment that ``launch.py`` builds for ``spec``
(``launch.command`` / ``launch.environment``: its GPUs, a ``VLLM_PORT`` block of its own, the run markers) on the
port it reserves (``spec.port`` when free), with its output in ``logs/<run-id>/<name>.log``. It is recorded in the
state file (``records.py``) while it runs and is a member of ``signals.SERVERS``; ``stop`` is TERM -> grace -> KILL
of its session (``session.py``, ``terminate.py``). Its HTTP checks (ready, ``alive``, ``responsive``, ``progress``)
are asked through ``probe.ServerProbe``. ``start_server`` adds the one retry on another port after "address already
in use".
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from ..contract import LOCAL_HOSTS, Endpoint, ServerSpec
from ..errors import ServerError, ServerStartError
from . import launch, logcause, session
from .identity import ProcessTable, PsutilProcs
from .ports import PortRegistry, default_state_dir
from .probe import ServerProbe
from .records import ServerRecord, StateFile
from .session import KILL_WAIT
from .signals import SERVERS, ServerGroup

log = logging.getLogger(__name__)

SPAWN_WAIT = 30.0  # seconds a stop waits for a spawn in progress (it holds the lock while it records the server)
STOPPED = "stopped during start-up"
PYTHON_NOT_FOUND = "python not found"


def log_name(name: str) -> str:
    """A file-name-safe form of a model key (hub ids have slashes)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "server"


class VllmServer:
    """One managed vLLM server. A context manager: ``__enter__`` starts and waits until ready, ``__exit__`` stops."""

    def __init__(
        self,
        spec: ServerSpec,
        run_id: str,
        logs_dir: Path,
        *,
        state: StateFile | None = None,
        ports: PortRegistry | None = None,
        popen: Callable[..., Any] = subprocess.Popen,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        poll_interval: float = 0.25,
        grace: float = 20.0,
        procs: ProcessTable | None = None,
        group: ServerGroup | None = None,
        avoid_ports: tuple[int, ...] = (),
        health_timeout: float = 5.0,
        probe_timeout: float = 10.0,
    ) -> None:
        self.spec, self.run_id, self.logs_dir = spec, run_id, Path(logs_dir)
        self.log_path = (self.logs_dir / run_id / f"{log_name(spec.name)}.log").resolve()
        self.server_id = uuid.uuid4().hex
        self.poll_interval, self.grace, self.health_timeout = poll_interval, grace, health_timeout
        self.probe_timeout = probe_timeout
        self._state = state if state is not None else StateFile(self.logs_dir)
        self._ports = ports if ports is not None else PortRegistry(default_state_dir())
        self._popen, self._clock, self._sleep = popen, clock, sleep
        self._procs = procs if procs is not None else PsutilProcs()
        self._group = group if group is not None else SERVERS
        self._avoid = avoid_ports
        self._api_key = spec.api_key if spec.api_key and spec.host not in LOCAL_HOSTS else None
        self._probe = ServerProbe(session, self._api_key)
        self._proc: Any = None
        self._rec: ServerRecord | None = None
        self._log: Any = None
        self._log_offset = 0
        self._started_at = 0.0
        self._stopped = False
        self._stop_lock = threading.RLock()

    # -- public ---------------------------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(api_base=self.spec.base_url + "/v1", api_key=self._api_key)

    def start(self) -> None:
        """Reserve a port and spawn the server in its own session; returns at once (see ``wait_ready``).

        Spawning holds the stop lock, so a ``stop()`` that comes meanwhile (a signal) waits for the spawn and then
        stops the new session; a closed group (the run is stopping) makes this raise instead of spawning."""
        with self._stop_lock:
            if self._proc is not None or self._stopped:
                raise ServerError(
                    f"server {self.spec.name!r} was already started or stopped (pid {self.pid}); create a new one"
                )
            port = self._ports.reserve(self.spec.port or None, avoid=self._avoid)
            self.spec = dataclasses.replace(self.spec, port=port)
            try:
                self._group.add(self)  # before the spawn: a signal handler's stop_all() must see it
                self._spawn(self._ports.vllm_port_base(port))
                self._record()
            except BaseException:
                self._abort_start()
                raise
        log.info(
            "started vLLM server %r (pid %d, port %d, gpus %s), log %s",
            self.spec.name,
            self.pid,
            port,
            list(self.spec.gpus),
            self.log_path,
        )

    def wait_ready(self) -> None:
        """Poll until alive, ``/health`` 200 and ``/v1/models`` lists the served name; stop and raise on failure."""
        if self._proc is None:
            raise ServerError(f"server {self.spec.name!r} was not started; call start() before wait_ready()")
        deadline = self._started_at + self.spec.startup_timeout
        while True:
            code = self._exit_code()
            if self._stopped:  # read after the exit code: an exit that our own stop caused is no failure
                raise ServerStartError(f"vLLM server {self.spec.name!r} was stopped before it was ready", cause=STOPPED)
            if code is not None:
                self._fail(f"exited with code {code} before it was ready", timed_out=False)
            if self._ready():
                log.info(
                    "vLLM server %r ready on %s after %.1f s",
                    self.spec.name,
                    self.spec.base_url,
                    self._clock() - self._started_at,
                )
                return
            if self._clock() >= deadline:
                self._fail(f"was not ready within {self.spec.startup_timeout:.0f} s", timed_out=True)
            self._sleep(self.poll_interval)

    def alive(self) -> bool:
        """The process runs and ``/health`` answers 200 (503 means its engine died under a live API process)."""
        if self._proc is None or self._stopped or self._exit_code() is not None:
            return False
        return self._get("/health") is not None

    def responsive(self) -> bool:
        """Does the engine still generate? A 1-token completion within ``probe_timeout`` (``/health`` cannot tell:
        it answers 200 while a stopped or wedged engine generates nothing)."""
        timeout = (self.health_timeout, self.probe_timeout)
        return self.alive() and self._probe.completes_one_token(self.spec.base_url, self.spec.served_name, timeout)

    def progress(self) -> float | None:
        """Tokens the engine has processed (prompt + generated, from ``/metrics``); grows while it works. ``None``
        when unreadable: the chat client then waits no longer than ``request_timeout`` without an answer."""
        return self._probe.progress(self.spec.base_url, self.health_timeout)

    def max_model_len(self) -> int | None:
        """The context length vLLM serves the model with (from ``/v1/models``), or None if unknown."""
        for entry in self._models():
            if entry.get("id") == self.spec.served_name and isinstance(entry.get("max_model_len"), int):
                return entry["max_model_len"]
        return None

    def diagnose(self) -> tuple[str, str]:
        """(cause, last log lines) of this start attempt, e.g. to explain why ``alive()`` turned False."""
        text = self._redact(logcause.read_since(self.log_path, self._log_offset))
        return logcause.detect_cause(text), logcause.tail_lines(text)

    def stop(self) -> None:
        """SIGTERM the session, wait ``grace``, SIGKILL it; return when no process of it is left (or log by pid what
        survived SIGKILL). Idempotent, signal-safe; a no-op before ``start()``. A spawn in progress is waited for
        (it holds the lock), so the new session is stopped too."""
        if self._stopped:
            return
        if not self._stop_lock.acquire(timeout=self.grace + 2 * KILL_WAIT + SPAWN_WAIT):
            log.error("gave up waiting for another thread to stop server %r", self.spec.name)
            return
        try:
            if self._stopped:
                return
            if self._proc is None:  # not spawned: nothing to kill (a signal's stop comes through the group, whose
                self._group.discard(self)  # close() makes a start that has not begun yet refuse)
                return
            self._stopped = True
            all_gone = self._kill_session()
            self._forget(keep_record=not all_gone)
        finally:
            self._stop_lock.release()

    def __enter__(self) -> VllmServer:
        self.start()
        self.wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"VllmServer({self.spec.name!r}, pid={self.pid}, port={self.spec.port})"

    # -- start --------------------------------------------------------------------------------------------------

    def _spawn(self, vllm_port: int) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self._log_offset = self._log.tell()
        cmd = launch.command(self.spec)
        self._log.write(
            f"=== deathmath-orchestrate: {time.strftime('%Y-%m-%d %H:%M:%S')} starting {' '.join(cmd)}\n".encode()
        )
        self._log.flush()
        self._spawn_wall = time.time()
        env = launch.environment(self.spec, self.run_id, self.server_id, vllm_port, self._api_key)
        try:
            self._proc = self._popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            raise ServerStartError(
                f"cannot run {self.spec.python!r} for server {self.spec.name!r} ({exc}); "
                "set vllm.python to a Python with vLLM installed",
                cause=PYTHON_NOT_FOUND,
            ) from None
        self._started_at = self._clock()

    def _abort_start(self) -> None:
        if self._proc is not None:
            self.stop()
            return
        self._stopped = True
        self._ports.release(self.spec.port)
        self._group.discard(self)
        self._close_log()

    def _exit_code(self) -> int | None:
        return session.exit_code(self._proc)

    def _record(self) -> None:
        me = os.getpid()
        created = self._procs.create_time(self._proc.pid)
        self._rec = ServerRecord(
            pid=self._proc.pid,
            pgid=self._proc.pid,
            server_id=self.server_id,
            run_id=self.run_id,
            create_time=created if created is not None else self._spawn_wall - 1.0,
            owner_pid=me,
            owner_create_time=self._procs.create_time(me) or 0.0,
            name=self.spec.name,
            gpus=tuple(self.spec.gpus),
            port=self.spec.port,
            log_path=str(self.log_path),
        )
        self._state.add(self._rec)

    def _ready(self) -> bool:
        if not self._listens() or self._get("/health") is None:
            return False
        return any(m.get("id") == self.spec.served_name for m in self._models())

    def _listens(self) -> bool:
        """Does our server hold the listening socket? (else another process would answer /health on our port)

        vLLM's API process binds it (with --api-server-count > 1 it binds it and hands it to its children), so one
        cheap look at that process suffices; None (not knowable) counts as yes.
        """
        ports = self._procs.listening(self._proc.pid)
        return ports is None or self.spec.port in ports

    def _fail(self, what: str, *, timed_out: bool) -> None:
        cause, tail = self.diagnose()
        if cause == logcause.UNKNOWN and timed_out:
            cause = logcause.TIMEOUT
        self.stop()
        raise ServerStartError(
            f"vLLM server {self.spec.name!r} (model {self.spec.model}, port {self.spec.port}) {what}: {cause}; "
            f"{logcause.HINTS[cause]}; log {self.log_path}; last lines: {logcause.one_line_quote(tail)}",
            cause=cause,
            log_tail=tail,
        )

    # -- HTTP ---------------------------------------------------------------------------------------------------

    def _get(self, path: str) -> requests.Response | None:
        return self._probe.get(self.spec.base_url, path, self.health_timeout)

    def _models(self) -> list[dict]:
        return self._probe.models(self.spec.base_url, self.health_timeout)

    def _redact(self, text: str) -> str:
        return text.replace(self.spec.api_key, "***") if self.spec.api_key else text

    # -- stop ---------------------------------------------------------------------------------------------------

    def _kill_session(self) -> bool:
        """TERM -> grace -> KILL; True when no process of the server is left."""
        return session.stop_session(
            self._proc,
            self._rec,
            self._procs,
            self.grace,
            name=self.spec.name,
            state_path=self._state.path,
            clock=self._clock,
            sleep=self._sleep,
        )

    def _forget(self, keep_record: bool = False) -> None:
        steps = [lambda: self._ports.release(self.spec.port)]
        if not keep_record:
            steps.append(lambda: self._state.remove(self._proc.pid))
        for step in steps:
            try:
                step()
            except Exception:  # the processes are gone; bookkeeping must not mask that
                log.exception("bookkeeping after stopping server %r failed", self.spec.name)
        self._group.discard(self)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def start_server(spec: ServerSpec, run_id: str, logs_dir: Path, **kw: Any) -> VllmServer:
    """Start a server and wait until ready; after "address already in use", retry once on another port."""
    server = VllmServer(spec, run_id, logs_dir, **kw)
    try:
        server.start()
        server.wait_ready()
        return server
    except ServerStartError as exc:
        if exc.cause != logcause.ADDRESS_IN_USE:
            raise
        log.warning("port %d of server %r was taken; retrying once on another port", server.spec.port, spec.name)
    retry = VllmServer(
        dataclasses.replace(spec, port=0),
        run_id,
        logs_dir,
        **{**kw, "avoid_ports": (*kw.get("avoid_ports", ()), server.spec.port)},
    )
    retry.start()
    retry.wait_ready()
    return retry
