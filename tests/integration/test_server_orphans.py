"""No orphans: real owner processes that die by SIGKILL or stop on SIGINT/SIGTERM/SIGHUP (with the fake vLLM)."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from orchestrator.contract import ServerSpec
from orchestrator.serving.records import StateFile, cleanup
from orchestrator.serving.server import VllmServer
from orchestrator.serving.signals import ServerGroup
from tests.support.orphans import marked, owner_pids, reap_all, spawn_owner
from tests.support.waiting import wait_for


def start_owner(spec: ServerSpec, logs: Path, run_id: str, count: int) -> tuple[subprocess.Popen, list[int]]:
    owner = spawn_owner(spec, logs, run_id, count)
    return owner, owner_pids(owner)


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
