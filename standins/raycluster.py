"""A throwaway Ray cluster on this machine: a head and worker nodes, each a separate ``ray start --block`` process.

Each node offers ``{"fakegpu": 1}`` (a custom resource standing in for one GPU) and one CPU, has its own temp dir
under a short ``/tmp/dmr*`` root (Ray's socket paths must stay under 107 characters) and fast node-death detection
(``RAY_health_check_*``). ``stop()`` ends only what these ``ray start`` processes started -- never ``ray stop``,
which would kill every Ray process of the machine -- and ``leftovers()`` finds any process of this cluster still
alive: its command line names the cluster's root, or its stdout is a file under the root (Ray workers, which
retitle themselves ``ray::...``). ``processes_under([logs])`` finds the vLLM servers (their stdout is their log) and
their guards (whose command line names that log).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

RAY = str(Path(sys.executable).with_name("ray"))
FAST_DEATH = {
    "RAY_health_check_initial_delay_ms": "1000",
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "3",
    "RAY_AUTH_MODE": "disabled",
}  # a token another local ray.init() left in ~/.ray must not switch auth on
START_TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalCluster:
    """``LocalCluster(nodes=2).start()``; ``address`` is the head's GCS address."""

    def __init__(self, nodes: int = 2, resources: dict | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="dmr", dir="/tmp"))
        self.count, self.resources = nodes, resources or {"fakegpu": 1}
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen] = []

    def _start_node(self, index: int) -> subprocess.Popen:
        where = (
            [
                "--head",
                f"--port={self.port}",
                f"--ray-client-server-port={free_port()}",
                f"--dashboard-port={free_port()}",
                "--include-dashboard=false",
            ]
            if index == 0
            else [f"--address={self.address}"]
        )
        cmd = [
            RAY,
            "start",
            "--block",
            *where,
            "--node-ip-address=127.0.0.1",
            "--num-cpus=1",
            f"--resources={json.dumps(self.resources)}",
            f"--temp-dir={self.root}/n{index}",
            "--disable-usage-stats",
        ]
        log = open(self.root / f"node{index}.log", "wb")
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **FAST_DEATH},
            start_new_session=True,
        )
        log.close()
        self._wait_log(index, "Ray runtime started")
        return proc

    def _wait_log(self, index: int, text: str) -> None:
        path, deadline = self.root / f"node{index}.log", time.monotonic() + START_TIMEOUT
        while text not in path.read_text(errors="replace"):
            if time.monotonic() > deadline or (self.procs and self.procs[-1].poll() is not None and index == 0):
                raise RuntimeError(f"ray node {index} did not start: {path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.3)

    def start(self) -> LocalCluster:
        try:
            for index in range(self.count):
                self.procs.append(self._start_node(index))
        except BaseException:
            self.stop()
            raise
        return self

    def raylet(self, index: int) -> psutil.Process:
        """The raylet of node ``index``."""
        for child in psutil.Process(self.procs[index].pid).children(recursive=True):
            if child.name() == "raylet":
                return child
        raise LookupError(f"node {index} has no raylet")

    def kill_raylet(self, index: int) -> None:
        self.raylet(index).send_signal(signal.SIGKILL)

    def stop(self, grace: float = 30.0) -> None:
        """SIGTERM each node's ``ray start`` group (it stops its processes), SIGKILL what is left of ours."""
        for proc in reversed(self.procs):
            _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait(10)
        for proc in self.leftovers():
            _kill(proc)

    def leftovers(self) -> list[psutil.Process]:
        """Live processes of this cluster (see the module docstring)."""
        return processes_under([self.root])

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def processes_under(roots: Sequence[Path]) -> list[psutil.Process]:
    """Live processes whose command line names one of ``roots`` or whose stdout is a file under one of them."""
    names = [str(r) for r in roots]
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE or proc.pid == os.getpid():
                continue
            cmd = " ".join(proc.info["cmdline"] or ())
            out = os.readlink(f"/proc/{proc.pid}/fd/1") if os.path.exists(f"/proc/{proc.pid}/fd/1") else ""
            if any(r in cmd or out.startswith(r) for r in names):
                found.append(proc)
        except (OSError, psutil.Error):
            continue
    return found


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _kill(proc: psutil.Process) -> None:
    try:
        proc.kill()
    except psutil.Error:
        pass
