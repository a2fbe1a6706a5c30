"""Security, end to end: generated API keys for servers reachable from outside, no secret in any file a run
produced, scrubbed exception text, and ``cleanup`` that never signals a process it did not start.

Runs the real CLI against the fake vLLM of conftest (real processes, real HTTP, real /proc); no real vLLM.
Elsewhere (tests/integration/): test_server.py::test_api_key_travels_in_the_environment_and_bearer_header (one server,
no run), test_client.py::test_the_key_never_reaches_errors_or_logs (a server echoing the key),
test_state.py (cleanup against a scripted process table).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import requests

from orchestrator.client import ChatClient
from orchestrator.contract import Endpoint, Problem, Sampling, Timeouts, Transport
from orchestrator.serving.launch import RUN_ENV, SERVER_ENV
from orchestrator.serving.records import ServerRecord, StateFile, cleanup
from tests.support.waiting import wait_for
from tests.support.workspace import ROWS, Workspace, make_workspace

PROBLEM = Problem(id="p1", dataset="ds", domain="math", task="2+2?", reference="4")


def files_holding(root: Path, *secrets: str) -> list[str]:
    """Every file under ``root`` whose bytes contain one of ``secrets``."""
    needles = [s.encode() for s in secrets]
    return [str(p) for p in root.rglob("*") if p.is_file() and any(n in p.read_bytes() for n in needles)]


def proc_environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode(errors="replace").split("=", 1) for item in raw if b"=" in item)


def recorded_pid(logs: Path) -> int | None:
    try:
        records = json.loads((logs / "servers.json").read_text())
    except (OSError, ValueError):
        return None
    return records[0]["pid"] if records else None


@pytest.fixture
def ws(tmp_path: Path, fake_vllm: Path) -> Workspace:
    return make_workspace(tmp_path / "ws", fake_vllm, tmp_path / "assets")


def _stop(proc: subprocess.Popen, logs: Path) -> None:
    """For ``finally``: the orchestrator and whatever servers it left."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    cleanup(logs, grace=2.0)


# -- a managed server on a non-loopback address -------------------------------------------------------------------
def test_server_on_all_interfaces_gets_a_generated_key_through_the_environment_only(ws: Workspace) -> None:
    hf_secret = "hf_SECRET_" + os.urandom(8).hex()
    env_block = f"env: {{PYTHONPATH: {ws.fake}}}"
    ws.config.write_text(
        ws.good()
        .replace("vllm: {", "vllm: {host: 0.0.0.0, ")
        .replace(
            env_block, f'env: {{PYTHONPATH: {ws.fake}, FAKE_VLLM_DELAY: "2", HF_TOKEN: "env:DM_SECURITY_HF_TOKEN"}}'
        )
    )
    proc = ws.popen("-vv", env={"DM_SECURITY_HF_TOKEN": hf_secret})
    try:
        pid = wait_for(lambda: recorded_pid(ws.logs), 120, "the server's record in the state file")
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        environ = proc_environ(pid)
        out, err = proc.communicate(timeout=300)
    finally:
        _stop(proc, ws.logs)
    assert proc.returncode == 0, out + err
    key = environ.get("VLLM_API_KEY", "")
    assert len(key) >= 32  # generated, strong
    assert cmdline[cmdline.index("--host") + 1] == "0.0.0.0"
    assert key not in " ".join(cmdline) and not any("api-key" in arg for arg in cmdline)  # not visible in `ps`
    assert environ["HF_TOKEN"] == hf_secret  # the config's env: reference reached it
    rows = ws.details()  # the fake answers 401 without the key:
    assert len(rows) == len(ROWS) and all(r["error"] is None for r in rows)  # so the client used it
    assert files_holding(ws.root, key, hf_secret) == []  # results, logs, manifest, state, config
    assert key not in out + err and hf_secret not in out + err  # the console, with -vv debug logging


def test_server_on_loopback_gets_no_key(ws: Workspace) -> None:
    ws.config.write_text(
        ws.good().replace(f"env: {{PYTHONPATH: {ws.fake}}}", f'env: {{PYTHONPATH: {ws.fake}, FAKE_VLLM_DELAY: "2"}}')
    )
    proc = ws.popen(env={"VLLM_API_KEY": "inherited-from-the-shell"})
    try:
        pid = wait_for(lambda: recorded_pid(ws.logs), 120, "the server's record in the state file")
        cmdline, environ = psutil.Process(pid).cmdline(), proc_environ(pid)
        out, err = proc.communicate(timeout=300)
    finally:
        _stop(proc, ws.logs)
    assert proc.returncode == 0, out + err
    assert cmdline[cmdline.index("--host") + 1] == "127.0.0.1" and "VLLM_API_KEY" not in environ


# -- an API model whose key is an env: reference ------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def keyed_endpoint(fake_vllm: Path):
    """The fake vLLM as a standalone OpenAI endpoint that demands a key: yields (api_base, key)."""
    key, port = "sk-endpoint-SECRET-" + os.urandom(8).hex(), free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--served-model-name",
            "m",
        ],
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(fake_vllm), "VLLM_API_KEY": key, "FAKE_VLLM_DELAY": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: _healthy(port), 60, "the fake endpoint")
        yield f"http://127.0.0.1:{port}/v1", key
    finally:
        os.killpg(server.pid, signal.SIGKILL)  # the fake and its engine child share the session
        server.wait(timeout=30)


def _healthy(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def test_api_key_from_the_environment_reaches_no_file_and_no_output(ws: Workspace, keyed_endpoint) -> None:
    base, key = keyed_endpoint
    ws.config.write_text(
        ws.good().replace(
            ws.good().splitlines()[3], f'  endpoints: [{{api_base: "{base}", api_key: "env:DM_SECURITY_API_KEY"}}]'
        )
    )
    run = ws.cli("-vv", env={"DM_SECURITY_API_KEY": key})
    assert run.returncode == 0, run.stdout + run.stderr
    rows = ws.details()
    assert len(rows) == len(ROWS) and all(r["error"] is None for r in rows)  # the key was sent (401 otherwise)
    assert files_holding(ws.root, key) == []
    assert key not in run.stdout + run.stderr
    wrong = ws.cli("--fresh", env={"DM_SECURITY_API_KEY": key + "-wrong"})  # refused: errors stored, no key
    assert "HTTP 401" in ws.details()[0]["error"]
    assert files_holding(ws.root, key) == [] and key not in wrong.stdout + wrong.stderr


def test_a_key_written_into_the_api_base_url_reaches_no_file(ws: Workspace, keyed_endpoint) -> None:
    """Credentials in the URL (``user:key@host``) are cut from the series meta, the manifest and the plan."""
    base, key = keyed_endpoint
    url_key = "sk-in-url-SECRET-" + os.urandom(6).hex()
    in_url = base.replace("http://", f"http://user:{url_key}@")
    ws.config.write_text(
        ws.good().replace(
            ws.good().splitlines()[3], f'  endpoints: [{{api_base: "{in_url}", api_key: "env:DM_SECURITY_API_KEY"}}]'
        )
    )
    run = ws.cli("-vv", env={"DM_SECURITY_API_KEY": key})
    assert ws.details(), run.stdout + run.stderr  # the run went through to the details
    assert files_holding(ws.root, url_key) == [str(ws.config)]  # only the user's own config holds it
    assert url_key not in run.stdout + run.stderr


# -- exception text of the HTTP library ---------------------------------------------------------------------------
KEY = "sk-test-SECRET-0123456789abcdef"


@pytest.mark.parametrize(
    "api_base, api_key",
    [
        ("http://user:{key}@127.0.0.1:{port}/v1", KEY),  # the key in the URL's userinfo
        ("http://127.0.0.1:{port}/v1?api_key={key}", KEY),  # ... in its query (echoed by urllib3's message)
        ("http://127.0.0.1:{port}/v1", KEY + "\n"),  # ... in a header requests refuses (InvalidHeader)
        ("http://127.0.0.1:{port}/v1", KEY + " trailing"),  # ... with a space (the value is quoted back)
    ],
    ids=["userinfo", "query", "newline-header", "space-header"],
)
def test_exception_text_of_requests_is_scrubbed_of_the_key(api_base: str, api_key: str, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    endpoint = Endpoint(api_base.format(key=KEY, port=free_port()), api_key)
    client = ChatClient(
        endpoint, "m", Sampling(), transport=Transport(timeouts=Timeouts.within(2), max_retries=1), sleep=lambda s: None
    )
    rec = client.ask(PROBLEM, [{"role": "user", "content": "2+2?"}], "h" * 16)
    assert rec.error and KEY not in rec.error and KEY not in repr(rec)
    assert KEY not in caplog.text and KEY[:12] in api_base.format(key=KEY, port=0) + api_key  # it was there


# -- cleanup signals only what it started -------------------------------------------------------------------------
def _sleeper(marker: tuple[str, str] | None = None) -> psutil.Process:
    env = dict(os.environ)
    if marker:
        env.update({RUN_ENV: marker[0], SERVER_ENV: marker[1]})
    proc = subprocess.Popen(["sleep", "300"], env=env, start_new_session=True, stdout=subprocess.DEVNULL)
    return psutil.Process(proc.pid)


def _record(proc: psutil.Process, run_id: str, server_id: str, created: float, log: Path) -> ServerRecord:
    """A record whose owner is gone (pid 1 never has create time 0)."""
    return ServerRecord(
        pid=proc.pid,
        pgid=proc.pid,
        create_time=created,
        run_id=run_id,
        owner_pid=1,
        owner_create_time=0.0,
        name=run_id,
        log_path=str(log),
        server_id=server_id,
    )


def test_cleanup_never_signals_a_live_process_it_did_not_start(tmp_path: Path) -> None:
    unmarked = _sleeper()  # the recorded pid and create time, but no run marker
    older = _sleeper(("run-old", "s-old"))  # the run marker, but created before the server was
    ours = _sleeper(("run-ours", "s-ours"))  # control: a real orphan of ours
    strangers = [unmarked, older]
    state = StateFile(tmp_path)
    records = [
        _record(unmarked, "run-unmarked", "s-unmarked", unmarked.create_time(), tmp_path / "a.log"),
        _record(older, "run-old", "s-old", older.create_time() + 60, tmp_path / "b.log"),
        _record(ours, "run-ours", "s-ours", ours.create_time(), tmp_path / "c.log"),
    ]
    for rec in records:
        state.add(rec)
    try:
        killed = cleanup(tmp_path, grace=5.0)
        assert [r.run_id for r in killed] == ["run-ours"]
        assert all(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in strangers)
        assert not ours.is_running() or ours.status() == psutil.STATUS_ZOMBIE
    finally:
        for proc in (unmarked, older, ours):
            if proc.is_running():
                proc.kill()
            try:
                proc.wait(timeout=10)
            except psutil.NoSuchProcess:
                pass
