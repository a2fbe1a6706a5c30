"""``run_model`` on scripted server timelines: ``StubServer`` (what the runner needs of a ``VllmServer``, in front of
a ``FakeServer`` of ``tests.support.scripted_server``), ``context(tmp_path, timeline)`` (a ``RunContext`` of ``N``
problems whose ``start_server`` returns, or raises, the timeline's steps in turn), ``model_config``, ``spec`` and
``answered`` (the ids answered without error). The ``stubs`` fixture (registered for every test by
``tests/conftest.py``) starts ``FakeServer``s and closes them after the test.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from orchestrator.config import load_config
from orchestrator.contract import DatasetSpec, Endpoint, Problem, ServerSpec
from orchestrator.job import DatasetRun, RunContext
from orchestrator.serving.signals import ServerGroup
from orchestrator.status.progress import Progress
from tests.support.scripted_server import FakeServer

N = 6


class StubServer:
    """What the runner needs of a VllmServer, in front of an HTTP stub."""

    def __init__(self, spec: ServerSpec, url: str, *, alive: bool = True, responsive: bool = True) -> None:
        self.spec, self.log_path = spec, Path("/dev/null")
        self.endpoint = Endpoint(api_base=url)
        self.is_alive, self.is_responsive, self.stopped = alive, responsive, False
        self.grace = 20.0

    def alive(self) -> bool:
        return self.is_alive

    def responsive(self) -> bool:
        return self.is_responsive

    def progress(self) -> float | None:
        return None  # no /metrics: the stall limit runs from each request's start (the clock rule)

    def stop(self) -> None:
        self.stopped = True

    def max_model_len(self) -> int | None:
        return None


@pytest.fixture
def stubs():
    made: list[FakeServer] = []

    def make(**kw: Any) -> FakeServer:
        made.append(FakeServer(**kw))
        return made[-1]

    yield make
    for srv in made:
        srv.httpd.shutdown()
        srv.httpd.server_close()


def model_config(tmp_path: Path, restarts: int = 2, vllm: str = ""):
    path = tmp_path / "run.yaml"
    path.write_text(
        f"model_list: [m]\nm:\n  model_name: m\n  vllm: {{model: org/model, max_restarts: {restarts}{vllm}}}\n"
        "  parallel: 2\n  request_timeout: 0.5\n  max_retries: 1\n"
    )
    return load_config(path).models[0]


def context(tmp_path: Path, timeline: list[Any], task: str = "{i}+{i}?") -> RunContext:
    problems = tuple(
        Problem(id=f"p{i}", dataset="ds", domain="math", task=task.format(i=i), reference=str(2 * i)) for i in range(N)
    )
    run = DatasetRun(spec=DatasetSpec(name="ds"), problems=problems, version="v1")
    script = iter(timeline)

    def start_server(spec, run_id, logs_dir, group):
        step = next(script)
        if isinstance(step, Exception):
            raise step
        return step

    return RunContext(
        run_id="r",
        results_dir=tmp_path / "results",
        logs_dir=tmp_path / "logs",
        datasets=[run],
        stop=threading.Event(),
        progress=Progress(interval=3600),
        servers=ServerGroup(),
        start_server=start_server,
    )


def answered(tmp_path: Path) -> list[str]:
    import json

    lines = (tmp_path / "results" / "details" / "m" / "ds.jsonl").read_text().splitlines()
    return [json.loads(line)["id"] for line in lines if json.loads(line).get("error") is None]


def spec() -> ServerSpec:
    return ServerSpec(name="m", model="/nowhere", served_name="m", python="python")
