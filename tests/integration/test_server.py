"""Server lifecycle against the fake vLLM (standins/fake_vllm): real processes, real HTTP on 127.0.0.1, real signals."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from dataclasses import replace
from pathlib import Path

import psutil
import pytest
import requests

from orchestrator.contract import ServerSpec
from orchestrator.errors import ServerError, ServerStartError
from orchestrator.serving import logcause
from orchestrator.serving.identity import ProcInfo
from orchestrator.serving.launch import RUN_ENV, SERVER_ENV, cpu_server_env, environment
from orchestrator.serving.ports import PortRegistry, default_state_dir
from orchestrator.serving.records import StateFile
from orchestrator.serving.server import PYTHON_NOT_FOUND, VllmServer, log_name, start_server
from orchestrator.serving.signals import ServerGroup


def with_env(spec: ServerSpec, **env: str) -> ServerSpec:
    return replace(spec, env=spec.env + tuple(env.items()))


def session_left(sid: int) -> list[int]:
    """Live (non-zombie) processes of session ``sid``."""
    left = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getsid(proc.pid) == sid:
                left.append(proc.pid)
        except (ProcessLookupError, psutil.Error):
            pass
    return left


def engine_of(server: VllmServer) -> psutil.Process:
    return psutil.Process(server.pid).children()[0]


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    return tmp_path / "logs"


def make(spec: ServerSpec, logs: Path, **kw) -> VllmServer:
    return VllmServer(spec, "run-1", logs, group=ServerGroup(), **kw)


def test_start_ready_stop_leaves_nothing(fake_spec: ServerSpec, logs: Path) -> None:
    with make(fake_spec, logs) as server:
        pid, port = server.pid, server.spec.port
        assert server.alive()
        assert server.max_model_len() == 4096
        assert server.endpoint.api_base == f"http://127.0.0.1:{port}/v1" and server.endpoint.api_key is None
        assert [r.pid for r in StateFile(logs).records()] == [pid]
        assert port in PortRegistry(default_state_dir()).held()
        env = psutil.Process(pid).environ()
        assert env[RUN_ENV] == "run-1" and env[SERVER_ENV] == server.server_id
        assert env["CUDA_VISIBLE_DEVICES"] == "" and env["VLLM_CPU_KVCACHE_SPACE"] == "1"
        assert int(env["VLLM_PORT"]) in PortRegistry(default_state_dir()).internal
        assert psutil.Process(pid).cmdline()[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
        assert os.getsid(pid) == pid != os.getsid(0)
    assert not server.alive()
    assert session_left(pid) == []
    assert StateFile(logs).records() == [] and port not in PortRegistry(default_state_dir()).held()
    assert "fake vLLM listening" in (logs / "run-1" / "fake.log").read_text()


def test_exit_before_ready_names_the_cause_and_quotes_the_log(fake_spec: ServerSpec, logs: Path) -> None:
    spec = with_env(fake_spec, FAKE_VLLM_FAIL="OSError: Repo id must be in the form 'repo_name': '/models/fake'.")
    server = make(spec, logs)
    server.start()
    with pytest.raises(ServerStartError) as err:
        server.wait_ready()
    assert err.value.cause == logcause.MODEL_NOT_FOUND
    msg = str(err.value)
    assert "\n" not in msg and "exited with code 1" in msg and "Repo id must be" in msg and "fake.log" in msg
    assert "Repo id must be" in err.value.log_tail
    assert session_left(server.pid) == [] and StateFile(logs).records() == []


def test_startup_timeout_stops_the_server(fake_spec: ServerSpec, logs: Path) -> None:
    spec = replace(with_env(fake_spec, FAKE_VLLM_DELAY="60"), startup_timeout=1.0)
    server = make(spec, logs)
    server.start()
    with pytest.raises(ServerStartError) as err:
        server.wait_ready()
    assert err.value.cause == logcause.TIMEOUT and "not ready within 1 s" in str(err.value)
    assert session_left(server.pid) == []


def test_alive_notices_an_engine_that_died_under_a_live_api(fake_spec: ServerSpec, logs: Path) -> None:
    with make(fake_spec, logs) as server:
        engine_of(server).kill()
        deadline = time.monotonic() + 10
        while server.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not server.alive()
        assert psutil.Process(server.pid).is_running()
        assert requests.get(server.spec.base_url + "/v1/models", timeout=5).status_code == 200


def test_sigterm_ignored_means_sigkill_after_the_grace(fake_spec: ServerSpec, logs: Path) -> None:
    server = make(with_env(fake_spec, FAKE_VLLM_IGNORE_TERM="1"), logs, grace=0.5)
    server.start()
    server.wait_ready()
    began = time.monotonic()
    server.stop()
    assert 0.5 <= time.monotonic() - began < 5.0
    assert session_left(server.pid) == []


def test_a_child_that_left_the_session_is_found_by_its_marker(fake_spec: ServerSpec, logs: Path) -> None:
    with make(with_env(fake_spec, FAKE_VLLM_SETSID="1"), logs) as server:
        engine = engine_of(server)
        deadline = time.monotonic() + 10
        while os.getsid(engine.pid) == server.pid and time.monotonic() < deadline:
            time.sleep(0.05)
        assert os.getsid(engine.pid) == engine.pid
    assert gone(engine.pid)


def test_stop_is_idempotent_and_safe_from_several_threads(fake_spec: ServerSpec, logs: Path) -> None:
    server = make(fake_spec, logs)
    server.stop()  # never started: a no-op
    server.start()
    server.wait_ready()
    threads = [threading.Thread(target=server.stop) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    server.stop()
    assert session_left(server.pid) == [] and StateFile(logs).records() == []
    with pytest.raises(ServerError, match="already started"):
        server.start()


def test_stop_from_a_signal_handler_during_wait_ready(fake_spec: ServerSpec, logs: Path) -> None:
    server = make(with_env(fake_spec, FAKE_VLLM_DELAY="60"), logs)
    previous = signal.signal(signal.SIGALRM, lambda *a: server.stop())
    try:
        server.start()
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        with pytest.raises(ServerStartError):
            server.wait_ready()
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert session_left(server.pid) == [] and StateFile(logs).records() == []


def test_address_in_use_is_retried_once_on_another_port(fake_spec: ServerSpec, logs: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        # the registry's bind test is blind here, as it is to a process that grabs the port after reservation
        ports = PortRegistry(logs, taken, min(taken + 200, 65535), bind=lambda p: True)
        server = start_server(replace(fake_spec, port=taken), "run-1", logs, ports=ports, group=ServerGroup())
        try:
            assert server.spec.port != taken and server.alive()
        finally:
            server.stop()
        log_text = (logs / "run-1" / "fake.log").read_text()
        assert log_text.count("=== deathmath-orchestrate") == 2 and "Address already in use" in log_text


def test_address_in_use_twice_gives_up(fake_spec: ServerSpec, logs: Path) -> None:
    spec = with_env(fake_spec, FAKE_VLLM_FAIL="OSError: [Errno 98] Address already in use")
    with pytest.raises(ServerStartError) as err:
        start_server(spec, "run-1", logs, group=ServerGroup())
    assert err.value.cause == logcause.ADDRESS_IN_USE
    assert (logs / "run-1" / "fake.log").read_text().count("=== deathmath-orchestrate") == 2


def test_cause_is_read_from_this_attempt_only(fake_spec: ServerSpec, logs: Path) -> None:
    first = with_env(fake_spec, FAKE_VLLM_FAIL="OSError: [Errno 98] Address already in use")
    with pytest.raises(ServerStartError):
        with make(first, logs):
            pass
    second = with_env(fake_spec, FAKE_VLLM_FAIL="ValueError: Model architectures ['X'] are not supported for now.")
    with pytest.raises(ServerStartError) as err:
        with make(second, logs):
            pass
    assert err.value.cause == logcause.UNSUPPORTED and "Errno 98" not in err.value.log_tail


def test_missing_python_is_a_start_error(fake_spec: ServerSpec, logs: Path) -> None:
    server = make(replace(fake_spec, python="/nonexistent/python3"), logs)
    with pytest.raises(ServerStartError, match="vllm.python") as err:
        server.start()
    assert err.value.cause == PYTHON_NOT_FOUND
    assert server.spec.port not in PortRegistry(default_state_dir()).held() and StateFile(logs).records() == []


def test_api_key_travels_in_the_environment_and_bearer_header(fake_spec: ServerSpec, logs: Path) -> None:
    spec = replace(fake_spec, host="0.0.0.0", api_key="sk-secret-123")
    with make(spec, logs) as server:  # ready only if the checks send the key (the fake answers 401 otherwise)
        proc = psutil.Process(server.pid)
        assert "sk-secret-123" not in " ".join(proc.cmdline())
        assert proc.environ()["VLLM_API_KEY"] == "sk-secret-123"
        assert server.endpoint.api_key == "sk-secret-123" and "sk-secret" not in repr(server.endpoint)
        assert server.max_model_len() == 4096


def test_local_server_gets_no_key_even_if_the_orchestrator_has_one(
    fake_spec: ServerSpec, logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VLLM_API_KEY", "leaked-from-shell")
    with make(replace(fake_spec, api_key="sk-local"), logs) as server:
        assert "VLLM_API_KEY" not in psutil.Process(server.pid).environ()
        assert server.endpoint.api_key is None


def test_secret_is_redacted_from_start_errors(fake_spec: ServerSpec, logs: Path) -> None:
    spec = replace(
        with_env(fake_spec, FAKE_VLLM_FAIL="ValueError: bad key sk-secret-123 is not supported"),
        host="0.0.0.0",
        api_key="sk-secret-123",
    )
    with pytest.raises(ServerStartError) as err:
        with make(spec, logs):
            pass
    assert "sk-secret-123" not in str(err.value) and "sk-secret-123" not in err.value.log_tail
    assert "***" in err.value.log_tail


def test_group_membership_follows_the_server(fake_spec: ServerSpec, logs: Path) -> None:
    group = ServerGroup()
    server = VllmServer(fake_spec, "run-1", logs, group=group)
    server.start()
    assert group.servers() == [server]
    group.stop_all()
    assert group.servers() == [] and session_left(server.pid) == []


# -- pure helpers and scripted timelines --------------------------------------------------------------------------


def test_server_env_layers() -> None:
    spec = ServerSpec(
        name="m",
        model="m",
        served_name="m",
        gpus=(2, 3),
        env=(("VLLM_PORT", "1"), ("HF_HOME", "/hf"), ("DO_NOT_TRACK", "0")),
    )
    env = environment(spec, "r", "s", 20050, None, base={"PATH": "/bin", "VLLM_API_KEY": "x", "HF_HOME": "/old"})
    assert env["CUDA_VISIBLE_DEVICES"] == "2,3" and env["VLLM_PORT"] == "20050"
    assert env["HF_HOME"] == "/hf" and env["DO_NOT_TRACK"] == "0" and env["PATH"] == "/bin"
    assert "VLLM_API_KEY" not in env and "VLLM_CPU_KVCACHE_SPACE" not in env
    assert env["VLLM_NO_USAGE_STATS"] == "1" and (env[RUN_ENV], env[SERVER_ENV]) == ("r", "s")
    cpu = environment(replace(spec, gpus=(), env=()), "r", "s", 1, "k", base={"VLLM_CPU_KVCACHE_SPACE": "8"})
    assert cpu["VLLM_CPU_KVCACHE_SPACE"] == "8" and cpu["VLLM_API_KEY"] == "k"
    assert set(cpu_server_env()) <= set(cpu)


def test_log_name_is_file_safe() -> None:
    assert log_name("Qwen/Qwen2.5-7B-Instruct") == "Qwen_Qwen2.5-7B-Instruct"
    assert log_name("../..") == "server"


class ScriptedProc:
    pid = 424242

    def __init__(self, exit_at: float | None, clock: Clock) -> None:
        self.exit_at, self.clock, self.returncode = exit_at, clock, None

    def poll(self) -> int | None:
        if self.exit_at is not None and self.clock.now >= self.exit_at:
            self.returncode = 3
        return self.returncode


class Clock:
    def __init__(self) -> None:
        self.now, self.sleeps = 0.0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


class ScriptedSession:
    """/health answers from ``health_at``, /v1/models lists the name from ``models_at`` (scripted seconds)."""

    def __init__(self, clock: Clock, health_at: float, models_at: float) -> None:
        self.clock, self.health_at, self.models_at = clock, health_at, models_at

    def get(self, url: str, **kw) -> requests.Response:
        if self.clock.now < self.health_at:
            raise requests.ConnectionError("refused")
        resp = requests.Response()
        resp.status_code = 200
        listed = [{"id": "fake-model", "max_model_len": 2048}] if self.clock.now >= self.models_at else []
        resp._content = b'{"data": %s}' % str(listed).replace("'", '"').encode()
        return resp


class ScriptedTable:
    """The scripted process is there (listening on any port) until it is signalled."""

    def __init__(self) -> None:
        self.running = True

    def list(self) -> list[ProcInfo]:
        return [ProcInfo(ScriptedProc.pid, 1.0, pgid=-1, sid=ScriptedProc.pid)] if self.running else []

    def create_time(self, pid: int) -> None:
        return None

    def signal(self, pid: int, sig: int) -> None:
        self.running = False

    def listening(self, pid: int) -> None:
        return None


def scripted(fake_spec: ServerSpec, logs: Path, clock: Clock, exit_at: float | None, session) -> VllmServer:
    return VllmServer(
        fake_spec,
        "run-1",
        logs,
        popen=lambda *a, **k: ScriptedProc(exit_at, clock),
        session=session,
        clock=clock,
        sleep=clock.sleep,
        procs=ScriptedTable(),
        group=ServerGroup(),
        ports=PortRegistry(logs, bind=lambda p: True),
    )


def test_ready_is_noticed_within_one_poll_interval(fake_spec: ServerSpec, logs: Path) -> None:
    clock = Clock()
    server = scripted(
        replace(fake_spec, startup_timeout=900.0),
        logs,
        clock,
        None,
        ScriptedSession(clock, health_at=40.0, models_at=41.1),
    )
    server.start()
    server.wait_ready()
    assert 41.1 <= clock.now < 41.1 + server.poll_interval
    assert set(clock.sleeps) == {0.25}
    assert server.max_model_len() == 2048


def test_exit_is_noticed_within_one_poll_interval(fake_spec: ServerSpec, logs: Path) -> None:
    clock = Clock()
    server = scripted(fake_spec, logs, clock, 7.0, ScriptedSession(clock, health_at=1e9, models_at=1e9))
    server.start()
    with pytest.raises(ServerStartError, match="exited with code 3"):
        server.wait_ready()
    assert 7.0 <= clock.now < 7.0 + server.poll_interval + 1e-9


def test_models_must_list_the_served_name(fake_spec: ServerSpec, logs: Path) -> None:
    clock = Clock()
    server = scripted(
        replace(fake_spec, startup_timeout=5.0), logs, clock, None, ScriptedSession(clock, health_at=0.0, models_at=1e9)
    )
    server.start()
    with pytest.raises(ServerStartError) as err:
        server.wait_ready()
    assert err.value.cause == logcause.TIMEOUT and 5.0 <= clock.now < 5.3


def test_a_foreign_listener_on_the_port_never_passes_for_ready(fake_spec: ServerSpec, tmp_path: Path) -> None:
    """Another server answers /health and lists the same name on our port: we must wait for our own, which fails."""
    with make(fake_spec, tmp_path / "other") as other:
        ports = PortRegistry(tmp_path / "logs", bind=lambda p: True)
        late = replace(with_env(fake_spec, FAKE_VLLM_DELAY="1.5"), port=other.spec.port)
        with pytest.raises(ServerStartError) as err:
            with make(late, tmp_path / "logs", ports=ports):
                pass
        assert err.value.cause == logcause.ADDRESS_IN_USE
        assert other.alive()


def test_group_stop_all_keeps_going_after_a_failure() -> None:
    stopped = []

    class Server:
        def __init__(self, name: str, fails: bool = False) -> None:
            self.name, self.fails = name, fails

        def stop(self) -> None:
            stopped.append(self.name)
            if self.fails:
                raise ServerError("boom")

    group = ServerGroup()
    first, broken, last = Server("first"), Server("broken", fails=True), Server("last")
    for s in (first, broken, last, first):
        group.add(s)
    assert group.servers() == [first, broken, last]
    group.stop_all()
    assert stopped == ["last", "broken", "first"] and group.servers() == []
    group.stop_all()
    assert len(stopped) == 3
