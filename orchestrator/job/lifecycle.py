"""One model's job: start its server (managed models), run each dataset, stop the server -- always, in ``finally``.

A server that dies mid-run is restarted up to ``max_restarts`` times and the series resumes from its checkpoint.
One model's failure never stops the others: the job returns a ``ModelOutcome`` instead of raising. A rerun whose
checkpoints are all complete starts no server.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from ..contract import Endpoint, ModelConfig, ModelState, RunPhase, SeriesScore, ServerSpec, redact_command
from ..errors import OrchestratorError, ResultsError, ServerDiedError, ServerError, ServerHungError, ServerStartError
from ..serving import launch
from .context import HUNG_GRACE, ModelOutcome, RunContext, ServerLike, end_state
from .series import count_done, open_store, run_datasets

log = logging.getLogger(__name__)


def run_model(ctx: RunContext, model: ModelConfig, spec: ServerSpec | None) -> ModelOutcome:
    """Run every dataset of ``ctx`` for ``model``; never raises for the model's own failures."""
    outcome = ModelOutcome(model=model.key, status=ModelState.RUNNING)
    share = ctx.share_of(model.key)
    started = time.monotonic()
    ctx.progress.set_status(model.key, RunPhase.STARTING if spec else RunPhase.RUNNING)
    ctx.progress.add_total(model.key, sum(len(run.problems) for run in ctx.datasets) * model.samples)
    try:
        if spec is None:
            outcome.scores = run_datasets(ctx, model, _pick_endpoint(model))
        else:
            outcome.scores = _already_done(ctx, model) or _run_managed(ctx, model, spec, outcome)
        outcome.status = end_state(ctx.stop.is_set(), failed=False)
    except ResultsError:
        raise  # the disk is the run's problem, not this model's: stop everything
    except OrchestratorError as exc:
        outcome.status = end_state(ctx.stop.is_set(), failed=True)
        if outcome.status is ModelState.INTERRUPTED:
            log.info("model %s interrupted: %s", model.key, exc)
        else:
            outcome.error = str(exc)
            log.error("model %s failed: %s", model.key, exc)
            ctx.progress.note_error(model.key, str(exc))
    finally:
        share.close()
        outcome.seconds = time.monotonic() - started
        ctx.progress.set_status(model.key, outcome.status)
    return outcome


def _pick_endpoint(model: ModelConfig) -> Endpoint | Sequence[Endpoint]:
    return model.endpoints if len(model.endpoints) > 1 else model.endpoints[0]


def _run_managed(ctx: RunContext, model: ModelConfig, spec: ServerSpec, outcome: ModelOutcome) -> list[SeriesScore]:
    assert model.vllm is not None
    while True:
        try:
            server = start_for(ctx, model, spec)
        except ServerStartError as exc:
            if outcome.restarts == 0:
                raise  # a first start that fails (bad model, OOM) fails the same way again: no retry
            _note_restart(ctx, model, outcome, exc, "restart failed to start")
            continue
        outcome.log_path = str(server.log_path)
        try:
            ctx.progress.set_status(model.key, RunPhase.RUNNING)
            return run_datasets(ctx, model, server.endpoint, server)
        except ServerDiedError as exc:
            hung = isinstance(exc, ServerHungError)
            if hung:
                server.grace = HUNG_GRACE
            _note_restart(ctx, model, outcome, exc, "server hung" if hung else "server died")
        finally:
            stop_for(ctx, model, server)


def _note_restart(ctx: RunContext, model: ModelConfig, outcome: ModelOutcome, exc: ServerError, what: str) -> None:
    """Count one more restart, or re-raise ``exc`` when none is left (or the run is stopping)."""
    assert model.vllm is not None
    if outcome.restarts >= model.vllm.max_restarts or ctx.stop.is_set():
        raise exc
    outcome.restarts += 1
    log.warning(
        "model %s: %s (%s); restart %d of %d, resuming from the checkpoint",
        model.key,
        what,
        exc,
        outcome.restarts,
        model.vllm.max_restarts,
    )
    ctx.progress.note_error(model.key, f"{what}: {exc}")
    ctx.progress.note_restarts(model.key, outcome.restarts)
    ctx.progress.set_status(model.key, RunPhase.RESTARTING)


def _already_done(ctx: RunContext, model: ModelConfig) -> list[SeriesScore] | None:
    """The scores when every dataset's checkpoint is complete (a rerun then starts no server), else None."""
    if ctx.fresh:
        return None
    scores = []
    for run in ctx.datasets:
        store = open_store(ctx, model, run)
        if store.missing(run.problems, model.samples):
            return None
        count_done(ctx.progress, model.key, store, run.problems)
        scores.append(store.score())
    log.info("model %s: every answer is in the checkpoint; no server needed", model.key)
    return scores


def start_for(ctx: RunContext, model: ModelConfig, spec: ServerSpec) -> ServerLike:
    """Start the server of ``model`` (a model's or the judge's), its start-up time and facts in the manifest."""
    began = time.monotonic()
    server = ctx.start_server(spec, ctx.run_id, ctx.logs_dir, group=ctx.servers)
    if ctx.manifest is not None:
        ctx.manifest.timing(model.key, "startup", time.monotonic() - began)
        ctx.manifest.set_model(
            model.key,
            port=server.spec.port,
            gpus=list(server.spec.gpus),
            command=redact_command(launch.command(server.spec)),
            log=str(server.log_path),
        )
    return server


def stop_for(ctx: RunContext, model: ModelConfig, server: ServerLike) -> None:
    """Stop ``server`` (always out of the signal group), its teardown time in the manifest."""
    began = time.monotonic()
    try:
        server.stop()
    finally:
        ctx.servers.discard(server)
        if ctx.manifest is not None:
            ctx.manifest.timing(model.key, "teardown", time.monotonic() - began)
