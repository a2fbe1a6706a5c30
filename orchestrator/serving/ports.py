"""Race-free port reservation across several orchestrators on one host.

A registry ``<state_dir>/ports.json`` (guarded by a filelock) lists the ports that live orchestrators hold; a port is
handed out only if no live owner holds it and a bind test passes. ``default_state_dir()`` is one directory per user
and host (not per logs directory), so orchestrators with different logs directories still see each other's ports. With
every API port comes a ``VLLM_PORT`` base: a block of ``internal.step`` ports from which that server's vLLM picks its
internal ports, so that concurrent servers do not race for the same ones. Reservations of dead owners are reclaimed.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path

import psutil
from filelock import FileLock

from .. import fileio
from ..errors import PortError, ServerError
from .identity import process_alive

log = logging.getLogger(__name__)

REGISTRY_NAME = "ports.json"
STATE_DIR_ENV = "DEATHMATH_PORTS_DIR"
DEFAULT_INTERNAL = range(20000, 32000, 50)  # below Linux's ephemeral range (32768+)


def default_state_dir() -> Path:
    """``$DEATHMATH_PORTS_DIR``, else ``<tmp>/deathmath-orchestrate-<uid>``: shared by all of this user's runs."""
    configured = os.environ.get(STATE_DIR_ENV)
    return Path(configured) if configured else Path(tempfile.gettempdir()) / f"deathmath-orchestrate-{os.getuid()}"


def can_bind(port: int) -> bool:
    """True if a TCP socket can bind ``port`` on all interfaces right now (so it is free on 127.0.0.1 too)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("", port))
        except OSError:
            return False
    return True


def _own_identity() -> tuple[int, float]:
    me = psutil.Process()
    return me.pid, me.create_time()


class PortRegistry:
    """Reserve API ports (and their ``VLLM_PORT`` base blocks) race-free; ``release`` gives them back."""

    def __init__(
        self,
        state_dir: Path,
        low: int = 8100,
        high: int = 8999,
        bind: Callable[[int], bool] = can_bind,
        *,
        internal: range = DEFAULT_INTERNAL,
        alive: Callable[[int, float], bool] = process_alive,
        lock_timeout: float = 30.0,
    ) -> None:
        if not 0 < low <= high < 65536:
            raise PortError(f"port range {low}-{high} is invalid; give 0 < low <= high < 65536")
        self.path = Path(state_dir) / REGISTRY_NAME
        self.low, self.high, self.internal = low, high, internal
        self._bind, self._alive = bind, alive
        self._lock = FileLock(str(self.path) + ".lock", timeout=lock_timeout)
        self._owner = _own_identity()
        self._bases: dict[int, int] = {}

    def reserve(self, preferred: int | None = None, avoid: Iterable[int] = ()) -> int:
        """A free port (``preferred`` if free), held for this process until ``release``; never one of ``avoid``."""
        with self._locked():
            entries = self._live_entries()
            port = self._pick_port(preferred, {e["port"] for e in entries} | set(avoid))
            base = self._pick_base({e["base"] for e in entries})
            entries.append(
                {
                    "port": port,
                    "base": base,
                    "owner_pid": self._owner[0],
                    "owner_create_time": self._owner[1],
                    "time": time.time(),
                }
            )
            fileio.atomic_write_json(self.path, entries, error=ServerError)
        self._bases[port] = base
        log.debug("reserved port %d (VLLM_PORT base %d)", port, base)
        return port

    def vllm_port_base(self, port: int) -> int:
        """The ``VLLM_PORT`` base reserved with ``port`` by this registry."""
        if port not in self._bases:
            raise PortError(f"port {port} was not reserved through {self.path}; call reserve() first")
        return self._bases[port]

    def release(self, port: int) -> None:
        """Give ``port`` back (a no-op if this process does not hold it)."""
        with self._locked():
            entries = self._live_entries()
            kept = [e for e in entries if not (e["port"] == port and self._mine(e))]
            if len(kept) != len(entries):
                fileio.atomic_write_json(self.path, kept, error=ServerError)
        self._bases.pop(port, None)

    def held(self) -> list[int]:
        """Ports currently reserved by live owners (any process)."""
        with self._locked():
            return sorted(e["port"] for e in self._live_entries())

    def _mine(self, entry: dict) -> bool:
        return (entry["owner_pid"], entry["owner_create_time"]) == self._owner

    def _pick_port(self, preferred: int | None, taken: set[int]) -> int:
        candidates = ([preferred] if preferred else []) + list(range(self.low, self.high + 1))
        for port in candidates:
            if port not in taken and self._bind(port):
                return port
        if preferred:
            log.warning("preferred port %d is busy", preferred)
        raise PortError(
            f"no free port in {self.low}-{self.high} (registry {self.path}); stop what holds them or widen the range"
        )

    def _pick_base(self, taken: set[int]) -> int:
        for base in self.internal:
            if base not in taken and self._bind(base):
                return base
        raise PortError(
            f"no free VLLM_PORT block in {self.internal.start}-{self.internal.stop} "
            f"(registry {self.path}); stop other orchestrators' servers"
        )

    def _live_entries(self) -> list[dict]:
        data = fileio.read_json(self.path, [])
        entries = data if isinstance(data, list) else []
        return [e for e in entries if isinstance(e, dict) and self._entry_alive(e)]

    def _entry_alive(self, entry: dict) -> bool:
        try:
            return self._mine(entry) or self._alive(int(entry["owner_pid"]), float(entry["owner_create_time"]))
        except (KeyError, TypeError, ValueError):
            return False

    def _locked(self) -> AbstractContextManager[None]:
        return fileio.hold(self._lock, f"port registry {self.path}", PortError)
