"""Shared session fixtures: the tiny smoke model, one real vLLM (CPU) server on it, and the fake vLLM.

Tests live by kind: ``tests/unit`` (fast: no subprocess, no server), ``tests/integration`` (HTTP stand-ins, the fake
vLLM, CLI workspaces, other subprocesses), ``tests/e2e`` (real vLLM, a Ray cluster, Chromium, chaos). Helpers are
modules of ``tests/support`` (``wait_for`` in ``tests.support.waiting``, ``own_server`` in
``tests.support.vllm_servers``); stand-ins shared with benchmarks are in ``standins/``. No test module imports another.
Test file basenames are unique across tests/ (pytest's default prepend import mode needs it).

* ``tiny_model``  -- Path of the smoke model: ``models/tiny-llama`` if ``make smoke-model`` wrote it, else one written
  once per session under a temporary directory.
* ``tiny_spec``   -- a ``ServerSpec`` for the tiny model (port 0 = any free port, this interpreter's Python).
* ``vllm_server`` -- one real ``VllmServer`` on the tiny model, started once per session and stopped at its end.
  Skips cleanly when ``vllm`` is not importable. Tests that use it must be marked ``@pytest.mark.vllm``.
* ``fake_vllm``   -- the directory to put first on PYTHONPATH so that vLLM's launch command starts the fake
  (``standins/fake_vllm``); ``fake_spec`` -- a ``ServerSpec`` that starts it.
* ``serve``, ``stubs``, ``giga`` -- from the support modules registered below (``pytest_plugins``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from orchestrator.contract import ServerSpec
from orchestrator.smoke_model import write_smoke_model
from standins.fake_vllm import ROOT as FAKE_VLLM_ROOT
from tests.support.vllm_servers import vllm_available

if TYPE_CHECKING:
    from orchestrator.serving.server import VllmServer

REPO = Path(__file__).resolve().parent.parent
REPO_MODEL = REPO / "models" / "tiny-llama"
TINY_SERVED_NAME = "tiny-llama"
VLLM_STARTUP_TIMEOUT = 600.0  # a tiny CPU server takes ~45 s alone, several minutes on a loaded 2-core machine

# fixtures of the support modules, for every test below tests/ (``serve``, ``stubs``, ``giga``)
pytest_plugins = ["tests.support.scripted_server", "tests.support.jobs", "tests.support.gigachat"]


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


@pytest.fixture(scope="session")
def fake_vllm() -> Path:
    """A directory to put first on PYTHONPATH so that `python -m vllm.entrypoints.openai.api_server` is the fake."""
    return FAKE_VLLM_ROOT


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
