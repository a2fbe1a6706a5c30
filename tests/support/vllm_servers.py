"""Real vLLM (CPU build) servers for tests: ``vllm_available()`` and ``own_server(spec, label)``, a test module's own
server (the session-wide one is the ``vllm_server`` fixture of ``tests/conftest.py``)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from orchestrator.contract import ServerSpec

if TYPE_CHECKING:
    from orchestrator.serving.server import VllmServer


def vllm_available() -> bool:
    """True if the ``vllm`` package can be imported by this interpreter."""
    return importlib.util.find_spec("vllm") is not None


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
