"""One model's job: start its server (managed models), run each dataset, stop the server -- always, in ``finally``.

A server that dies mid-run is restarted up to ``max_restarts`` times and the series resumes from its checkpoint.
One model's failure never stops the others: the job returns a ``ModelOutcome`` instead of raising.

Replicas: ``run_replica`` starts one more server of a running managed model and serves the model's shared work
queue (``client.shared.SharedWork``, one per model in ``RunContext.shares``) until it is empty; the model's own job
(``run_model``) publishes its series' passes there, waits for the replicas' answers in flight and closes the share
when it ends. A replica that fails or dies is logged and ends; its batch goes back to the queue.

What the job needs of its collaborators is written as Protocols (``ProgressSink``, ``ManifestSink``, ``ServerLike``,
``ServerGroupLike``, and ``client.Checkpoint`` for a series' store), so the local run passes the real ``Progress``,
``Manifest``, ``VllmServer`` and ``SeriesStore``, and the Ray node passes its event-emitting proxies.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .client import ChatClient, Checkpoint, ManagedServer, run_series
from .client.jsoncodec import codec_named
from .client.shared import SharedWork
from .client.thinking import Reasoning
from .contract import (
    AnswerRecord,
    DatasetSpec,
    Endpoint,
    Grade,
    ModelConfig,
    ModelState,
    Problem,
    ProgressStatus,
    RunPhase,
    SeriesScore,
    ServerSpec,
    public_url,
    redact_command,
)
from .errors import (
    EndpointError,
    OrchestratorError,
    ResultsError,
    ServerDiedError,
    ServerError,
    ServerHungError,
    ServerStartError,
)
from .grading import grade
from .prompts import build_messages, prompt_fingerprint
from .reasoning.auto import tags_for
from .reasoning.forced import THINK, graded_text
from .results import SeriesStore, settings_hash
from .serving import launch
from .serving.server import start_server

log = logging.getLogger(__name__)

HUNG_GRACE = 3.0  # seconds a hung server gets to act on SIGTERM before SIGKILL (it generates nothing: no point waiting)


@dataclass(frozen=True)
class DatasetRun:
    """A loaded dataset ready to run: its spec, problems (after --limit) and content version."""

    spec: DatasetSpec
    problems: tuple[Problem, ...]
    version: str


@dataclass
class ModelOutcome:
    """What happened to one model."""

    model: str
    status: ModelState
    scores: list[SeriesScore] = field(default_factory=list)
    seconds: float = 0.0
    log_path: str | None = None
    error: str | None = None
    restarts: int = 0


def end_state(stopping: bool, failed: bool) -> ModelState:
    """The one classifier of how a model ended: interrupted while the run is stopping (a signal: servers die on
    purpose, so no model failed), else failed or finished."""
    if stopping:
        return ModelState.INTERRUPTED
    return ModelState.FAILED if failed else ModelState.FINISHED


class ProgressSink(Protocol):
    """What a job reports to the progress display (``progress.Progress``; on a Ray node, events)."""

    def set_status(self, model: str, status: ProgressStatus) -> None: ...
    def add_total(self, model: str, n: int) -> None: ...
    def sync(self, model: str, dataset: str, done: int, correct: int) -> None: ...
    def record(self, model: str, dataset: str, *, correct: bool, tokens: int, error: bool) -> None: ...
    def set_download(self, label: str, text: str | None) -> None: ...
    def note_error(self, model: str, message: str) -> None: ...
    def note_restarts(self, model: str, count: int) -> None: ...


class ManifestSink(Protocol):
    """What a job records in the run's manifest (``manifest.Manifest``; on a Ray node, events)."""

    def timing(self, model: str, phase: str, seconds: float) -> None: ...
    def set_model(self, model: str, **facts: Any) -> None: ...


class ServerLike(Protocol):
    """The part of ``server.VllmServer`` that a job uses."""

    @property
    def spec(self) -> ServerSpec: ...
    @property
    def log_path(self) -> Path: ...
    @property
    def endpoint(self) -> Endpoint: ...

    grace: float  # seconds between SIGTERM and SIGKILL in stop(); a hung server gets HUNG_GRACE

    def alive(self) -> bool: ...
    def responsive(self) -> bool: ...
    def progress(self) -> float | None: ...
    def stop(self) -> None: ...
    def max_model_len(self) -> int | None: ...


class ServerGroupLike(Protocol):
    """The servers that a signal stops (``signals.ServerGroup``)."""

    def add(self, server: Any) -> None: ...
    def discard(self, server: Any) -> None: ...


@dataclass
class RunContext:
    """Everything a model job needs besides the model; seams for tests are plain attributes."""

    run_id: str
    results_dir: Path
    logs_dir: Path
    datasets: Sequence[DatasetRun]
    stop: threading.Event
    progress: ProgressSink
    servers: ServerGroupLike
    manifest: ManifestSink | None = None
    grade: Callable[[AnswerRecord], Grade] | None = None
    start_server: Callable[..., ServerLike] = start_server
    client_factory: Callable[..., ChatClient] = ChatClient
    fresh: bool = False
    open_store: Callable[[ModelConfig, DatasetRun], Checkpoint] | None = None  # the Ray backend's node-side proxy
    on_outcome: Callable[[ModelOutcome], None] | None = None  # told each model's end on the driver (``told``)
    shares: dict[str, SharedWork] = field(default_factory=dict)  # model key -> its servers' work queue
    _freshened: set = field(default_factory=set, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def share_of(self, model: str) -> SharedWork:
        """The work queue that ``model``'s servers share (made on first use; closed when its job ends)."""
        with self._lock:
            return self.shares.setdefault(model, SharedWork())

    def take_fresh(self, model: str, dataset: str) -> bool:
        """True the first time a series is opened in a --fresh run (a restart must not discard it again)."""
        if not self.fresh or (model, dataset) in self._freshened:
            return False
        self._freshened.add((model, dataset))
        return True


def told(ctx: RunContext, outcome: ModelOutcome) -> ModelOutcome:
    """``outcome``, once ``ctx.on_outcome`` (the run's webhooks, notify.py) has been told; backends call it where a
    model's outcome is final."""
    if ctx.on_outcome is not None:
        ctx.on_outcome(outcome)
    return outcome


def record_grader() -> Callable[[AnswerRecord], Grade]:
    """Grade one answer record with the grader (``RunContext.grade``)."""

    def grade_record(rec: AnswerRecord) -> Grade:
        return grade(
            graded_text(rec.response, rec.reasoning, rec.graded_tail), rec.reference, rec.domain, rec.tolerance
        )

    return grade_record


def run_model(ctx: RunContext, model: ModelConfig, spec: ServerSpec | None) -> ModelOutcome:
    """Run every dataset of ``ctx`` for ``model``; never raises for the model's own failures."""
    outcome = ModelOutcome(model=model.key, status=ModelState.RUNNING)
    share = ctx.share_of(model.key)
    started = time.monotonic()
    ctx.progress.set_status(model.key, RunPhase.STARTING if spec else RunPhase.RUNNING)
    ctx.progress.add_total(model.key, sum(len(run.problems) for run in ctx.datasets) * model.samples)
    try:
        if spec is None:
            outcome.scores = _run_datasets(ctx, model, _pick_endpoint(model))
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
        new_client = _client_maker(ctx, model, server.endpoint, server)
        share.serve(new_client, launch.in_flight(server.spec, model.parallel), ctx.stop)
    except OrchestratorError as exc:
        log.warning("model %s: the replica on GPUs %s ended: %s", model.key, list(spec.gpus), exc)
    finally:
        _stop_server(ctx, server)


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
            return _run_datasets(ctx, model, server.endpoint, server)
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


def open_store(ctx: RunContext, model: ModelConfig, run: DatasetRun) -> Checkpoint:
    """The checkpoint of ``model`` on ``run``: the node's proxy if ``ctx.open_store`` is set, else the store on disk."""
    if ctx.open_store is not None:
        return ctx.open_store(model, run)
    digest = settings_hash(model, run.spec.name, run.version, prompt_fingerprint())
    return SeriesStore(
        ctx.results_dir,
        model.key,
        run.spec.name,
        digest,
        meta=_series_meta(model, run),
        fresh=ctx.take_fresh(model.key, run.spec.name),
    )


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


def _stop_server(ctx: RunContext, server: ServerLike) -> None:
    try:
        server.stop()
    finally:
        ctx.servers.discard(server)


def stop_for(ctx: RunContext, model: ModelConfig, server: ServerLike) -> None:
    """Stop ``server`` (always out of the signal group), its teardown time in the manifest."""
    began = time.monotonic()
    try:
        server.stop()
    finally:
        ctx.servers.discard(server)
        if ctx.manifest is not None:
            ctx.manifest.timing(model.key, "teardown", time.monotonic() - began)


def _run_datasets(
    ctx: RunContext, model: ModelConfig, endpoint: Endpoint | Sequence[Endpoint], server: ServerLike | None = None
) -> list[SeriesScore]:
    """Each dataset's series: an API model's with ``parallel`` requests at a time, one after another; a managed
    ``server``'s with its queue ahead too (``launch.in_flight``), watched and checked by its client
    (``client.ManagedServer``), each series starting as soon as the one before has handed out its last request
    (``_overlapped``): the engine's batch stays full while the earlier series' longest answers finish."""
    new_client = _client_maker(ctx, model, endpoint, server)
    if server is None:
        return [
            _run_dataset(ctx, model, run, new_client, model.parallel) for run in ctx.datasets if not ctx.stop.is_set()
        ]
    return _overlapped(ctx, model, new_client, launch.in_flight(server.spec, model.parallel))


def _overlapped(
    ctx: RunContext, model: ModelConfig, new_client: Callable[[], ChatClient], in_flight: int
) -> list[SeriesScore]:
    """The managed server's series, each in its own thread, started when the previous one is drained (or over);
    returns the scores in order, re-raises the first failure (the series after it are not started)."""
    share = ctx.share_of(model.key)
    results: list[SeriesScore | BaseException | None] = [None] * len(ctx.datasets)
    threads: list[threading.Thread] = []

    def one(i: int, drained: threading.Event) -> None:
        try:
            last = i == len(ctx.datasets) - 1
            results[i] = _run_dataset(ctx, model, ctx.datasets[i], new_client, in_flight, share, last, drained)
        except BaseException as exc:  # noqa: BLE001 -- re-raised in the job's thread, in order
            results[i] = exc
        finally:
            drained.set()

    for i in range(len(ctx.datasets)):
        if ctx.stop.is_set() or any(isinstance(r, BaseException) for r in results):
            break
        drained = threading.Event()
        threads.append(threading.Thread(target=one, args=(i, drained), name=f"series-{model.key}-{i}", daemon=True))
        threads[-1].start()
        drained.wait()
    for thread in threads:
        thread.join()
    scores = []
    for result in results[: len(threads)]:
        if isinstance(result, BaseException):
            raise result
        scores.append(result)
    return scores


def _client_maker(
    ctx: RunContext, model: ModelConfig, endpoint: Endpoint | Sequence[Endpoint], server: ServerLike | None
) -> Callable[[], ChatClient]:
    """Makes the clients of ``model``; a managed server's are watched through its progress (request_timeout is a
    stall limit: no progress on its /metrics), know its context length and decode with its codec (default msgspec)."""
    make = functools.partial(ctx.client_factory, endpoint, model.model_name, model.sampling, transport=model.transport)
    if server is None:
        return functools.partial(make, reasoning=Reasoning.of(model.reasoning, model.api_type, None, False))
    return functools.partial(
        make,
        reasoning=_server_reasoning(model, server.spec),
        server=ManagedServer.of(server),
        context_len=server.max_model_len(),
        codec=codec_named(model.vllm.client_codec if model.vllm else None),
    )


def _server_reasoning(model: ModelConfig, spec: ServerSpec) -> Reasoning:
    """The client's reasoning for a managed server: the tags of the parser it was started with (``<think>`` for a
    budget without one), the engine's own budget where it was started with its flags (``launch.reasoning_words``)."""
    parser, _ = launch.reasoning_parser(spec)
    tags = tags_for(parser) if parser is not None else (THINK if model.reasoning.budget is not None else None)
    engine = spec.engine_budget and parser is not None and tags is not None
    return Reasoning.of(model.reasoning, model.api_type, tags, engine)


def _run_dataset(
    ctx: RunContext,
    model: ModelConfig,
    run: DatasetRun,
    new_client: Callable[[], ChatClient],
    in_flight: int,
    share: SharedWork | None = None,
    last: bool = True,
    drained: threading.Event | None = None,
) -> SeriesScore:
    store = open_store(ctx, model, run)
    count_done(ctx.progress, model.key, store, run.problems)
    client = new_client()
    began = time.monotonic()
    try:
        return run_series(
            run.problems,
            client,
            store,
            lambda p: build_messages(p, model.sampling.system_prompt),
            grade=ctx.grade,
            parallel=in_flight,
            samples=model.samples,
            stop=ctx.stop,
            on_record=lambda rec: on_record(ctx.progress, model.key, rec),
            share=share,
            last=last,
            drained=drained,
        )
    finally:
        client.close()
        if ctx.manifest is not None:
            ctx.manifest.timing(model.key, run.spec.name, time.monotonic() - began)


def _series_meta(model: ModelConfig, run: DatasetRun) -> dict:
    return {
        "model_name": model.model_name,
        "dataset_version": run.version,
        "domain": run.spec.domain,
        "total": len(run.problems),
        "sampling": _sampling_meta(model),
        "model": model.vllm.model if model.vllm else [public_url(e.api_base) for e in model.endpoints],
    }


def _sampling_meta(model: ModelConfig) -> dict[str, Any]:
    """The meta's ``sampling`` block as series have always had it (``results.samples`` reads its ``samples``)."""
    s, t = model.sampling, model.transport
    return {
        "temperature": s.temperature,
        "max_tokens": s.max_tokens,
        "system_prompt": s.system_prompt,
        "parallel": model.parallel,
        "request_delay": t.request_delay,
        "request_timeout": t.timeouts.stall,
        "max_retries": t.max_retries,
        "samples": model.samples,
        "top_p": s.top_p,
        "seed": s.seed,
    }


def count_done(progress: ProgressSink, key: str, store: Checkpoint, problems: Sequence[Problem]) -> None:
    """Set the progress counts of this dataset from the checkpoint (so a restart never counts twice)."""
    wanted = {p.id for p in problems}
    done = [rec for rec in store.records() if rec.error is None and rec.id in wanted]
    progress.sync(key, store.dataset, len(done), sum(rec.verdict == "correct" for rec in done))


def on_record(progress: ProgressSink, key: str, rec: AnswerRecord) -> None:
    progress.record(
        key, rec.dataset, correct=rec.verdict == "correct", tokens=rec.completion_tokens, error=rec.error is not None
    )
    if rec.error:
        progress.note_error(key, f"{rec.dataset} {rec.id}: {rec.error}")


__all__ = [
    "Checkpoint",
    "DatasetRun",
    "ManifestSink",
    "ModelOutcome",
    "ModelState",
    "ProgressSink",
    "RunContext",
    "ServerGroupLike",
    "ServerLike",
    "count_done",
    "end_state",
    "on_record",
    "open_store",
    "record_grader",
    "run_model",
    "start_for",
    "stop_for",
    "run_replica",
    "EndpointError",
    "ServerError",
]
