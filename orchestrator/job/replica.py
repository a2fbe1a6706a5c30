"""Replicas: ``run_replica`` starts one more server of a running managed model and serves the model's shared work
queue (``client.shared.SharedWork``, one per model in ``RunContext.shares``) until it is empty; the model's own job
(``lifecycle.run_model``) publishes its series' passes there, waits for the replicas' answers in flight and closes
the share when it ends. A replica that fails or dies is logged and ends; its batch goes back to the queue."""

from __future__ import annotations

import logging

from ..contract import ModelConfig, ServerSpec
from ..errors import OrchestratorError, ServerStartError
from ..serving import launch
from .context import RunContext, ServerLike
from .series import client_maker

log = logging.getLogger(__name__)


def run_replica(ctx: RunContext, model: ModelConfig, spec: ServerSpec) -> None:
    """One more server of ``model`` (already running, weights on disk) that serves its shared work queue until it
    is empty; never raises for its own failures (its batch goes back to the queue, the model goes on)."""
    share = ctx.share_of(model.key)
    if share.closed or ctx.stop.is_set():
        return
    try:
        server = ctx.start_server(spec, ctx.run_id, ctx.logs_dir, group=ctx.servers)
    except ServerStartError as exc:
        log.warning("model %s: a replica on GPUs %s did not start: %s", model.key, list(spec.gpus), exc)
        return
    log.info(
        "model %s: replica on GPUs %s (port %s) joins its work queue", model.key, list(spec.gpus), server.spec.port
    )
    try:
        new_client = client_maker(ctx, model, server.endpoint, server)
        share.serve(new_client, launch.in_flight(server.spec, model.parallel), ctx.stop)
    except OrchestratorError as exc:
        log.warning("model %s: the replica on GPUs %s ended: %s", model.key, list(spec.gpus), exc)
    finally:
        _stop_server(ctx, server)


def _stop_server(ctx: RunContext, server: ServerLike) -> None:
    try:
        server.stop()
    finally:
        ctx.servers.discard(server)
