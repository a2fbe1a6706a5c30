"""The lifecycle against real vLLM (CPU build, the tiny model). Few and shared: the machine has 2 cores."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace
from pathlib import Path

import psutil
import pytest
import requests

from orchestrator.contract import ServerSpec
from orchestrator.errors import ServerStartError
from orchestrator.serving import logcause
from orchestrator.serving.records import StateFile, cleanup
from orchestrator.serving.server import VllmServer
from orchestrator.serving.signals import ServerGroup
from tests.support.orphans import marked, owner_pids, reap_all, spawn_owner
from tests.support.waiting import wait_for

pytestmark = pytest.mark.vllm


@pytest.fixture(autouse=True)
def need_vllm() -> None:
    from tests.support.vllm_servers import vllm_available

    if not vllm_available():
        pytest.skip("vllm is not importable in this environment")


def session_left(sid: int) -> list[int]:
    return [
        p.pid
        for p in psutil.process_iter(["status"])
        if p.info["status"] != psutil.STATUS_ZOMBIE and _sid(p.pid) == sid
    ]


def _sid(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


def test_session_server_is_ready_recorded_and_reports_its_context(vllm_server: VllmServer) -> None:
    assert vllm_server.alive()
    assert vllm_server.max_model_len() == 4096
    models = requests.get(vllm_server.endpoint.api_base + "/models", timeout=10).json()["data"]
    assert [m["id"] for m in models] == [vllm_server.spec.served_name]
    assert vllm_server.pid in [r.pid for r in StateFile(vllm_server.logs_dir).records()]
    assert "Application startup complete" in vllm_server.log_path.read_text()
    names = {p.name() for p in psutil.Process(vllm_server.pid).children(recursive=True)}
    assert {"VLLM::EngineCore", "VLLM::Worker"} <= names


def test_a_stopped_engine_passes_health_but_fails_the_probe(vllm_server: VllmServer) -> None:
    """SIGSTOP of VLLM::EngineCore: /health still answers 200 (vLLM only checks an error flag), so ``alive()`` is
    True; the 1-token probe times out, so ``responsive()`` is False. SIGCONT: responsive again."""
    engine = next(
        p for p in psutil.Process(vllm_server.pid).children(recursive=True) if p.name().startswith("VLLM::EngineCore")
    )
    assert vllm_server.responsive()
    probe_timeout, vllm_server.probe_timeout = vllm_server.probe_timeout, 3.0
    engine.send_signal(signal.SIGSTOP)
    try:
        assert vllm_server.alive()
        assert not vllm_server.responsive()
    finally:
        engine.send_signal(signal.SIGCONT)
        vllm_server.probe_timeout = probe_timeout
    wait_for(vllm_server.responsive, 60, "the server to answer the probe")


def test_missing_model_path_fails_fast_with_that_cause(tiny_spec: ServerSpec, tmp_path: Path) -> None:
    spec = replace(tiny_spec, name="missing", model=str(tmp_path / "no-such-model"))
    server = VllmServer(spec, "missing", tmp_path / "logs", group=ServerGroup())
    began = time.monotonic()
    with pytest.raises(ServerStartError) as err:
        with server:
            pass
    assert err.value.cause == logcause.MODEL_NOT_FOUND
    assert time.monotonic() - began < 120  # the process exit is noticed; no waiting for the 600 s timeout
    assert "no-such-model" in str(err.value) and "\n" not in str(err.value)
    assert session_left(server.pid) == [] and StateFile(tmp_path / "logs").records() == []


def test_two_servers_engine_death_teardown_and_orphan_cleanup(tiny_spec: ServerSpec, tmp_path: Path) -> None:
    """Two concurrent starts (one by another orchestrator process) get different ports; then SIGKILL of EngineCore
    is reported by alive(), stop() leaves nothing, and SIGKILL of the other orchestrator leaves a server that
    cleanup removes."""
    logs, run_a = tmp_path / "logs", f"vllm-orphan-{os.getpid()}"
    owner = spawn_owner(replace(tiny_spec, name="a"), logs, run_a, count=1)
    mine = VllmServer(replace(tiny_spec, name="b"), "vllm-mine", logs, group=ServerGroup())
    try:
        mine.start()
        [pid_a] = owner_pids(owner)
        mine.wait_ready()
        [rec_a] = [r for r in StateFile(logs).records() if r.pid == pid_a]
        assert rec_a.port != mine.spec.port

        engine = [p for p in psutil.Process(mine.pid).children() if p.name().startswith("VLLM::Engine")][0]
        engine.send_signal(signal.SIGKILL)
        wait_for(lambda: not mine.alive(), 30, "the server to be seen dead")
        # vLLM marks the engine dead (/health 503) a moment before it logs why: give the log line that moment
        wait_for(lambda: mine.diagnose()[0] == logcause.ENGINE_DIED, 10, "the engine-death cause in the log")
        mine.stop()
        assert session_left(mine.pid) == []

        owner.kill()
        owner.wait(10)
        assert len(marked(run_a, logs)) >= 3  # api_server, EngineCore, Worker outlive their orchestrator
        assert [r.pid for r in cleanup(logs)] == [pid_a]
        wait_for(lambda: marked(run_a, logs) == [], 10, "no marked process of run a")
        assert StateFile(logs).records() == []
    finally:
        mine.stop()
        reap_all(owner, logs, run_a)
