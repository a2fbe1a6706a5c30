"""The LLM judge on ``--backend ray``: its server in an actor, its audit on the driver.

The driver owns the results (as for models), so the audit itself -- which answers, the checkpoint, the details
lines -- runs on the driver (``judge.job.run_judge``), and only the server goes to the cluster: a ``JudgeActor``
asks for the judge's resources like a model's actor (``ray.plan.request_for``), starts the guarded server on its
node (``node.node_spec``, ``node.guarded_popen``; hub weights fetched there) and answers each question by posting
to that server on its own host (``JudgeActor.ask``), so no node's port has to be reachable from the driver. The
driver calls ``ask`` through ``RemoteAsk`` with the judge's ``parallel`` calls in flight (the actor's
``max_concurrency``). An actor that dies fails the questions in flight (asked again on the next run); the actor is
killed when the audit ends. An API judge needs no actor: it is asked from the driver, as in a local run.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..contract import ModelConfig, ServerSpec
from ..errors import EndpointError, ServerDiedError
from ..hub.prefetch import fetch_now
from ..job import RunContext
from ..judge.ask import ChatJudge, JudgeAsk
from ..judge.job import chat_judge, local_serve
from ..judge.settings import JUDGE_KEY
from ..scheduling.plan import Placement
from ..serving.server import start_server
from ..serving.signals import ServerGroup
from .driver import RemoteServer
from .node import NodeJob, guarded_popen, node_name, node_spec, ray_gpus, undo_ray_thread_default
from .plan import Request

STOP_WAIT_S = 60.0


class JudgeActor:
    """The judge's server on a node (``ray.remote(JudgeActor)`` in the driver)."""

    def __init__(self) -> None:
        self._servers = ServerGroup()
        self._stop = threading.Event()
        self._judge: ChatJudge | None = None

    def start(self, job: NodeJob) -> dict[str, Any]:
        """Start the server of ``job`` here; returns its facts for the manifest."""
        undo_ray_thread_default()
        model = job.model
        spec = node_spec(job, ray_gpus(job), sys.executable)
        spec = fetch_now(model, spec)
        server = start_server(spec, job.run_id, Path(job.logs_dir), group=self._servers, popen=guarded_popen)
        self._judge = chat_judge(model, server.endpoint, self._stop)
        return {"node": node_name(), "pid": os.getpid(), "port": server.spec.port, "log": str(server.log_path)}

    def ask(self, messages: Sequence[dict[str, str]], response_format: dict[str, Any]) -> str:
        if self._judge is None:
            raise EndpointError("the judge's server is not started")
        return self._judge(messages, response_format)

    def stop(self) -> None:
        self._stop.set()
        self._servers.close()


class RemoteAsk:
    """``JudgeAsk`` through the actor; a failure of Ray (the actor gone) is an ``EndpointError`` of one line."""

    def __init__(self, ray: Any, actor: Any) -> None:
        self.ray, self.actor = ray, actor

    def __call__(self, messages: Sequence[dict[str, str]], response_format: dict[str, Any]) -> str:
        try:
            return self.ray.get(self.actor.ask.remote(list(messages), response_format))
        except self.ray.exceptions.RayError as exc:
            raise EndpointError(f"judge actor: {_first_line(exc)}") from None


class RayServe:
    """The ``judge.job.Serve`` of the Ray backend (see the module docstring)."""

    def __init__(self, ray: Any, placement: Placement, request: Request) -> None:
        self.ray, self.placement, self.request = ray, placement, request

    @contextmanager
    def __call__(self, ctx: RunContext, model: ModelConfig, spec: ServerSpec | None) -> Iterator[JudgeAsk]:
        if spec is None:
            with local_serve(ctx, model, None) as ask:
                yield ask
            return
        options = dict(self.request.options(), max_restarts=0, max_concurrency=model.parallel + 2)
        actor = self.ray.remote(JudgeActor).options(**options).remote()
        member = RemoteServer(actor)
        ctx.servers.add(member)
        try:
            yield self._started(ctx, actor)
        finally:
            ctx.servers.discard(member)
            try:
                self.ray.get(actor.stop.remote(), timeout=STOP_WAIT_S)
            except Exception:  # noqa: BLE001 -- killed below either way
                pass
            self.ray.kill(actor)

    def _started(self, ctx: RunContext, actor: Any) -> RemoteAsk:
        job = NodeJob(
            placement=self.placement,
            datasets=(),
            done={},
            hashes={},
            run_id=ctx.run_id,
            logs_dir=str(ctx.logs_dir.resolve()),
            grade=False,
        )
        try:
            facts = self.ray.get(actor.start.remote(job))
        except self.ray.exceptions.RayError as exc:
            raise ServerDiedError(f"the judge's server did not start on the cluster: {_first_line(exc)}") from None
        if ctx.manifest is not None:
            ctx.manifest.set_model(JUDGE_KEY, ray_nodes=[facts.pop("node")], **facts)
        return RemoteAsk(self.ray, actor)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
