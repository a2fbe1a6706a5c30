"""Shared session fixtures: the tiny smoke model and one real vLLM (CPU) server on it.

* ``tiny_model``  -- Path of the smoke model: ``models/tiny-llama`` if ``make smoke-model`` wrote it, else one written
  once per session under a temporary directory.
* ``tiny_spec``   -- a ``ServerSpec`` for the tiny model (port 0 = any free port, this interpreter's Python).
* ``vllm_server`` -- one real ``VllmServer`` on the tiny model, started once per session and stopped at its end.
  Skips cleanly when ``vllm`` is not importable. Tests that use it must be marked ``@pytest.mark.vllm``.
* ``own_server(spec, label)`` -- a test module's own real server (for a module-scoped fixture to ``yield from``).
* ``wait_for(predicate, timeout, what)`` -- poll until ``predicate()`` is truthy and return its value, or fail the
  test naming ``what`` (import it: ``from conftest import wait_for``).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from orchestrator.contract import ServerSpec
from orchestrator.smoke_model import write_smoke_model

if TYPE_CHECKING:
    from orchestrator.serving.server import VllmServer

REPO = Path(__file__).resolve().parent.parent
REPO_MODEL = REPO / "models" / "tiny-llama"
TINY_SERVED_NAME = "tiny-llama"
VLLM_STARTUP_TIMEOUT = 600.0  # a tiny CPU server takes ~45 s alone, several minutes on a loaded 2-core machine


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """The first truthy value of ``predicate()`` within ``timeout`` seconds; AssertionError naming ``what`` if none."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def vllm_available() -> bool:
    """True if the ``vllm`` package can be imported by this interpreter."""
    return importlib.util.find_spec("vllm") is not None


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random Llama (reuses models/tiny-llama when present)."""
    if (REPO_MODEL / "config.json").is_file() and (REPO_MODEL / "model.safetensors").is_file():
        return REPO_MODEL
    return write_smoke_model(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture(scope="session")
def tiny_spec(tiny_model: Path) -> ServerSpec:
    """A CPU ServerSpec for the tiny model; ``dataclasses.replace`` it for variants."""
    return ServerSpec(
        name="tiny-llama",
        model=str(tiny_model),
        served_name=TINY_SERVED_NAME,
        python=sys.executable,
        startup_timeout=VLLM_STARTUP_TIMEOUT,
        max_model_len=4096,
    )


@pytest.fixture(scope="session")
def vllm_server(tiny_spec: ServerSpec) -> Iterator[VllmServer]:
    """One real vLLM server on the tiny model for the whole session (started, ready).

    Its logs dir is fixed per user (``<ports dir>/pytest-vllm-logs``), so a session that was killed outright leaves a
    record that the next session's ``cleanup`` uses to kill the orphan; servers of sessions still running are kept.
    """
    if not vllm_available():
        pytest.skip("vllm is not importable in this environment")
    from orchestrator.serving.ports import default_state_dir
    from orchestrator.serving.records import cleanup
    from orchestrator.serving.server import VllmServer

    logs = default_state_dir() / "pytest-vllm-logs"
    for rec in cleanup(logs):
        print(f"killed an orphan of an earlier test session: {rec.describe()}")
    server = VllmServer(tiny_spec, run_id=f"pytest-session-{os.getpid()}", logs_dir=logs)
    with server:
        yield server


def own_server(spec: ServerSpec, label: str) -> Iterator[VllmServer]:
    """A real vLLM server of a test module's own (``yield from`` it in a module-scoped fixture): started and ready,
    stopped afterwards. Its logs dir is fixed per ``label`` (``<ports dir>/<label>-logs``), so a session that was
    killed outright leaves a record that the next session's ``cleanup`` uses to kill the orphan."""
    if not vllm_available():
        pytest.skip("vllm is not importable in this environment")
    from orchestrator.serving.ports import default_state_dir
    from orchestrator.serving.records import cleanup
    from orchestrator.serving.server import start_server

    logs = default_state_dir() / f"{label}-logs"
    for rec in cleanup(logs):
        print(f"killed an orphan of an earlier test session: {rec.describe()}")
    server = start_server(spec, f"{label}-{os.getpid()}", logs)
    try:
        yield server
    finally:
        server.stop()


# -- a fake vLLM for fast lifecycle tests -------------------------------------------------------------------------
# A real process with real HTTP on 127.0.0.1, started exactly like vLLM (`python -m vllm.entrypoints.openai.api_server`)
# because its package shadows the real one through PYTHONPATH. Like vLLM it runs an "engine" child in its session,
# retitled with setproctitle (which blanks its /proc/<pid>/environ, as vLLM's VLLM::EngineCore's is); /health
# answers 503 once that child is dead while /v1/models keeps answering. Behaviour knobs (environment):
#   FAKE_VLLM_DELAY=<s>      seconds before it listens (default 0.2)
#   FAKE_VLLM_FAIL=<text>    print <text> to stderr and exit 1 instead of serving
#   FAKE_VLLM_IGNORE_TERM=1  the API process and its engine ignore SIGTERM (only SIGKILL stops them)
#   FAKE_VLLM_SETSID=1       the engine leaves the session (setsid) and keeps its environment (no retitling)
#   FAKE_VLLM_HANG_AFTER=<k> chat requests after the k-th are never answered (a server stuck mid-run)
# A chat request with `n` gets n choices, as from vLLM.
FAKE_API_SERVER = r"""
import argparse, json, os, signal, subprocess, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ap = argparse.ArgumentParser()
for flag in ("--model", "--served-model-name", "--host", "--port", "--max-model-len"):
    ap.add_argument(flag)
args, _ = ap.parse_known_args()
print("fake vLLM starting", flush=True)
if os.environ.get("FAKE_VLLM_IGNORE_TERM"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if os.environ.get("FAKE_VLLM_FAIL"):
    print(os.environ["FAKE_VLLM_FAIL"], file=sys.stderr, flush=True)
    sys.exit(1)
engine = subprocess.Popen([sys.executable, "-c", (
    "import os, signal, time, setproctitle\n"
    "if os.environ.get('FAKE_VLLM_SETSID'): os.setsid()\n"
    "else: setproctitle.setproctitle('FAKE::EngineCore')\n"  # like vLLM: this blanks /proc/<pid>/environ
    "if os.environ.get('FAKE_VLLM_IGNORE_TERM'): signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "time.sleep(3600)\n")])
time.sleep(float(os.environ.get("FAKE_VLLM_DELAY", "0.2")))
KEY = os.environ.get("VLLM_API_KEY")
NAME = args.served_model_name or args.model
HANG_AFTER, ASKED, LOCK = os.environ.get("FAKE_VLLM_HANG_AFTER"), 0, threading.Lock()

class Handler(BaseHTTPRequestHandler):
    def _send(self, code, body=None):
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self):
        return KEY is None or self.headers.get("Authorization") == "Bearer " + KEY

    def do_GET(self):
        if self.path == "/health":
            return self._send(200 if engine.poll() is None else 503)
        if self.path == "/v1/models":
            if not self._authorized():
                return self._send(401, {"error": "unauthorized"})
            return self._send(200, {"data": [{"id": NAME, "max_model_len": int(args.max_model_len or 4096)}]})
        self._send(404)

    def do_POST(self):
        global ASKED
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if not self._authorized():
            return self._send(401, {"error": "unauthorized"})
        with LOCK:
            ASKED += self.path.endswith("/chat/completions")
            hang = HANG_AFTER is not None and ASKED > int(HANG_AFTER)
        while hang:
            time.sleep(3600)
        n = int(body.get("n") or 1)
        self._send(200, {"choices": [{"index": i, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": "Ответ: \\boxed{4}"}}
                                     for i in range(n)],
                         "usage": {"prompt_tokens": 5, "completion_tokens": 4 * n}})

    def log_message(self, *a):
        pass

server = ThreadingHTTPServer((args.host, int(args.port)), Handler)
print("fake vLLM listening on port", args.port, flush=True)
server.serve_forever()
"""


@pytest.fixture(scope="session")
def fake_vllm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory to put first on PYTHONPATH so that `python -m vllm.entrypoints.openai.api_server` is the fake."""
    root = tmp_path_factory.mktemp("fake-vllm")
    pkg = root / "vllm" / "entrypoints" / "openai"
    pkg.mkdir(parents=True)
    for folder in (root / "vllm", root / "vllm" / "entrypoints", pkg):
        (folder / "__init__.py").write_text("")
    (pkg / "api_server.py").write_text(FAKE_API_SERVER)
    return root


@pytest.fixture
def fake_spec(fake_vllm: Path) -> ServerSpec:
    """A ServerSpec that starts the fake vLLM (add FAKE_VLLM_* knobs to ``env`` with ``dataclasses.replace``)."""
    return ServerSpec(
        name="fake",
        model="/models/fake",
        served_name="fake-model",
        python=sys.executable,
        startup_timeout=30.0,
        env=(("PYTHONPATH", str(fake_vllm)),),
    )
