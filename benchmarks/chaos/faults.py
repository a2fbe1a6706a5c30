"""Fault injectors of the chaos soak: find a round's processes and break them.

A round's servers are found through their stdout: every process of a managed server (the API server, and
``VLLM::EngineCore`` / ``VLLM::Worker``, which rename themselves and blank their environment) writes to the server's
log under the round's logs directory, so ``/proc/<pid>/fd/1`` names the model (the log is ``<model>.log``).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

SERVER_KINDS = ("kill_api", "kill_engine", "kill_worker", "hang_engine", "port_taken")
ORCHESTRATOR_KINDS = ("kill_orchestrator", "term_orchestrator")
KINDS = SERVER_KINDS + ORCHESTRATOR_KINDS
ROLE_OF_KIND = {"kill_api": "api", "kill_engine": "engine", "kill_worker": "worker", "hang_engine": "engine"}
SIGNAL_OF_KIND = {
    "kill_api": signal.SIGKILL,
    "kill_engine": signal.SIGKILL,
    "kill_worker": signal.SIGKILL,
    "hang_engine": signal.SIGSTOP,
}


@dataclass
class Fault:
    """One planned fault: its kind, the model it targets (None: the orchestrator) and when, after the target's first
    answer, to inject it. Filled in as the round goes: when it was injected, on what, and when work resumed."""

    kind: str
    model: str | None
    delay: float
    injected_at: float | None = None
    target: str = ""
    recovered_at: float | None = None
    missed: str = ""

    @property
    def recovery_s(self) -> float | None:
        if self.injected_at is None or self.recovered_at is None:
            return None
        return self.recovered_at - self.injected_at

    def describe(self) -> dict:
        return {
            "kind": self.kind,
            "model": self.model,
            "target": self.target,
            "missed": self.missed,
            "recovery_s": None if self.recovery_s is None else round(self.recovery_s, 1),
        }


def role(name: str, cmdline: str) -> str | None:
    """api | engine | worker for a vLLM server process, from its (re)title."""
    if name.startswith("VLLM::EngineCore") or cmdline.startswith("VLLM::EngineCore"):
        return "engine"
    if name.startswith("VLLM::Worker") or cmdline.startswith("VLLM::Worker"):
        return "worker"
    if "vllm.entrypoints.openai.api_server" in cmdline:
        return "api"
    return None


def server_processes(logs_dir: Path) -> list[tuple[int, str, str | None]]:
    """(pid, model, role) of every live process whose stdout is a server log under ``logs_dir``."""
    root = str(Path(logs_dir).resolve())
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            out = os.readlink(f"/proc/{entry}/fd/1")
            if not out.startswith(root + os.sep) or _state(entry) == "Z":
                continue
            name = Path(f"/proc/{entry}/comm").read_text().strip()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        found.append((int(entry), Path(out).stem, role(name, cmdline)))
    return found


def _state(pid: str) -> str:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2]


def inject_signal(fault: Fault, logs_dir: Path) -> bool:
    """Send the fault's signal to its model's process of the right role; False when there is none (yet)."""
    wanted = ROLE_OF_KIND[fault.kind]
    for pid, model, proc_role in server_processes(logs_dir):
        if model == fault.model and proc_role == wanted:
            try:
                os.kill(pid, SIGNAL_OF_KIND[fault.kind])
            except ProcessLookupError:
                continue
            fault.injected_at, fault.target = time.monotonic(), f"{wanted} pid {pid}"
            log.info("chaos: %s -> %s of %s", fault.kind, fault.target, fault.model)
            return True
    return False


@dataclass
class PortThief:
    """An unrelated listener that grabs a server's port between the orchestrator's choice and vLLM's bind.

    It watches the state file (``servers.json``), which the orchestrator writes right after spawning a server and
    before vLLM (seconds of imports later) binds its port, and binds that port first. It answers every connection
    with ``HTTP 200 {}``, like a stranger's web server that would fool a health check that only asks ``/health``.
    """

    logs_dir: Path
    fault: Fault
    poll: float = 0.01
    _stop: threading.Event = field(default_factory=threading.Event)
    _sock: socket.socket | None = None
    _seen: set = field(default_factory=set)

    def start(self) -> PortThief:
        self._seen = {rec.get("pid") for rec in self._records()}
        threading.Thread(target=self._watch, name="port-thief", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._sock is not None:
            self._sock.close()

    def _records(self) -> list[dict]:
        try:
            data = json.loads((Path(self.logs_dir) / "servers.json").read_text())
        except (OSError, ValueError):
            return []
        records = data.get("servers", data) if isinstance(data, dict) else data
        return [r for r in records if isinstance(r, dict)]

    def _watch(self) -> None:
        while not self._stop.wait(self.poll) and self._sock is None:
            for rec in self._records():
                if rec.get("pid") not in self._seen and rec.get("name") == self.fault.model and rec.get("port"):
                    self._grab(int(rec["port"]))
                    return

    def _grab(self, port: int) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            self.fault.missed = f"port {port}: vLLM bound it first ({exc.strerror})"
            sock.close()
            return
        sock.listen(16)
        self._sock = sock
        self.fault.injected_at, self.fault.target = time.monotonic(), f"port {port}"
        log.info("chaos: port_taken -> %d of %s", port, self.fault.model)
        threading.Thread(target=self._serve, name="port-thief-serve", daemon=True).start()

    def _serve(self) -> None:
        assert self._sock is not None
        self._sock.settimeout(0.5)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1.0)
                try:
                    conn.recv(4096)
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
                except OSError:
                    pass
