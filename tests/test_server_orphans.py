"""No orphans: real owner processes that die by SIGKILL or stop on SIGINT/SIGTERM/SIGHUP (with the fake vLLM)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import psutil
import pytest
from conftest import wait_for

from orchestrator.contract import ServerSpec
from orchestrator.serving.launch import RUN_ENV
from orchestrator.serving.records import StateFile, cleanup
from orchestrator.serving.server import VllmServer
from orchestrator.serving.signals import ServerGroup

REPO = Path(__file__).resolve().parent.parent

# An orchestrator in miniature: start N servers, print their pids, wait to be killed or signalled.
OWNER = r"""
import json, logging, sys, time
from pathlib import Path
from orchestrator.contract import ServerSpec
from orchestrator.serving.server import VllmServer
from orchestrator.serving.signals import SERVERS, install_signal_handlers

logging.basicConfig(level=logging.INFO)
cfg = json.loads(sys.argv[1])
install_signal_handlers(SERVERS.stop_all)
servers = []
for i in range(cfg["count"]):
    spec = ServerSpec(**{**cfg["spec"], "name": f"m{i}", "env": tuple(map(tuple, cfg["spec"]["env"]))})
    servers.append(VllmServer(spec, cfg["run_id"], Path(cfg["logs"])))
for s in servers:
    s.start()
for s in servers:
    s.wait_ready()
print(json.dumps([s.pid for s in servers]), flush=True)
time.sleep(600)
"""


def spawn_owner(spec: ServerSpec, logs: Path, run_id: str, count: int) -> subprocess.Popen:
    """A separate orchestrator process that starts ``count`` servers; ``owner_pids`` waits until they are ready."""
    cfg = {"spec": asdict(spec), "logs": str(logs), "run_id": run_id, "count": count}
    return subprocess.Popen([sys.executable, "-c", OWNER, json.dumps(cfg)], stdout=subprocess.PIPE, cwd=REPO, text=True)


def owner_pids(owner: subprocess.Popen) -> list[int]:
    line = owner.stdout.readline()
    assert line, f"owner exited with {owner.wait(10)} before its servers were ready"
    return json.loads(line)


def start_owner(spec: ServerSpec, logs: Path, run_id: str, count: int) -> tuple[subprocess.Popen, list[int]]:
    owner = spawn_owner(spec, logs, run_id, count)
    return owner, owner_pids(owner)


def marked(run_id: str, logs: Path) -> list[int]:
    """Live processes of this run: its marker in their environment, or stdout on one of its logs (retitled ones)."""
    run_logs = str((logs / run_id).resolve()) + os.sep
    found = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if proc.environ().get(RUN_ENV) == run_id or os.readlink(f"/proc/{proc.pid}/fd/1").startswith(run_logs):
                found.append(proc.pid)
        except (psutil.Error, OSError):
            pass
    return found


def reap_all(owner: subprocess.Popen, logs: Path, run_id: str) -> None:
    """For `finally`: whatever an assertion left behind goes (the owner, then every server it recorded)."""
    owner.kill()
    owner.wait(10)
    cleanup(logs, grace=2.0)
    for pid in marked(run_id, logs):
        os.kill(pid, signal.SIGKILL)


def test_sigkilled_owner_leaves_servers_that_cleanup_removes(fake_spec: ServerSpec, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    run_id = f"orphans-{os.getpid()}"
    owner, pids = start_owner(fake_spec, logs, run_id, count=2)
    mine = VllmServer(replace(fake_spec, name="mine"), "live-run", logs, group=ServerGroup())
    mine.start()
    try:
        owner.kill()
        owner.wait(10)
        assert len(marked(run_id, logs)) == 4  # two API processes and their engines outlive the owner
        os.kill(pids[0], signal.SIGKILL)  # and an engine outlives its API process: re-parented, retitled
        wait_for(lambda: len(marked(run_id, logs)) == 3, 10, "three marked processes")
        killed = cleanup(logs)
        assert sorted(r.pid for r in killed) == sorted(pids)
        assert {r.name for r in killed} == {"m0", "m1"}
        wait_for(lambda: marked(run_id, logs) == [], 10, "no marked process left")
        assert [r.pid for r in StateFile(logs).records()] == [mine.pid]  # a live owner's server is left alone
        assert psutil.Process(mine.pid).is_running() and cleanup(logs) == []
    finally:
        mine.stop()
        reap_all(owner, logs, run_id)


@pytest.mark.parametrize(
    "sig, code",
    [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)],
    ids=["SIGINT", "SIGTERM", "SIGHUP"],
)
def test_signals_stop_all_servers_then_exit_with_the_conventional_code(
    fake_spec: ServerSpec, tmp_path: Path, sig: int, code: int
) -> None:
    logs = tmp_path / "logs"
    run_id = f"signal-{sig}-{os.getpid()}"
    owner, pids = start_owner(fake_spec, logs, run_id, count=2)
    try:
        assert len(marked(run_id, logs)) == 4
        owner.send_signal(sig)
        assert owner.wait(30) == code
        assert marked(run_id, logs) == []  # stopped before the owner exited, not after
        assert StateFile(logs).records() == []
    finally:
        reap_all(owner, logs, run_id)
