"""The driver's side of one managed model on the Ray cluster (``JobDriver``): attempts (new actors) until its series
are complete or the retries run out. It asks the node only the answers its own checkpoints lack
(``Checkpoint.missing``), appends every streamed answer to them, applies the node's events (progress, manifest) and,
when an actor dies (its node lost, its raylet killed), starts a new one that resumes from what it holds. What it
needs of the backend is the ``Cluster`` Protocol (``backend.RayBackend`` is the one)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from ..contract import AnswerRecord, ModelState, Problem, RunPhase, with_samples
from ..errors import OrchestratorError, ResultsError, ServerDiedError
from ..job import Checkpoint, ModelOutcome, RunContext, count_done, end_state, on_record, open_store
from ..scheduling.plan import Placement
from .events import (
    Answer,
    ErrorNoted,
    EvalTime,
    Event,
    Finished,
    ModelFacts,
    NodeStarted,
    PhaseTiming,
    Restarted,
    StatusChanged,
)
from .node import NodeJob
from .plan import Request, check_fits

log = logging.getLogger(__name__)

STOP_WAIT_S = 60.0  # after a stop, how long the driver waits for an actor's last events
GET_TIMEOUT_S = 60.0  # a ready stream item is fetched within this
POLL_S = 1.0


class Cluster(Protocol):
    """What a ``JobDriver`` needs of its backend (``backend.RayBackend``)."""

    retries: int
    ray: Any

    def nodes(self) -> list[dict[str, float]]: ...
    def placed(self, key: str) -> None: ...
    def new_actor(self, request: Request, strategy: Any = None) -> Any: ...
    def kill(self, actor: Any) -> None: ...
    def multinode_strategy(self, gpus: int, stop: threading.Event) -> Any: ...


class RemoteServer:
    """An actor (a model's or the judge's) as a member of the driver's ``ServerGroup``: a signal's ``stop_all`` asks
    it to stop its server."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    def stop(self) -> None:
        try:
            self.actor.stop.remote()
        except Exception:  # noqa: BLE001 -- gone already
            pass


class JobDriver:
    """One managed model on the cluster: attempts (new actors) until its series are complete or retries run out."""

    def __init__(self, backend: Cluster, ctx: RunContext, placement: Placement, request: Request) -> None:
        self.backend, self.ctx, self.placement, self.request = backend, ctx, placement, request
        self.model = placement.job.model
        self.key = self.model.key
        self.nodes: list[str] = []  # where each attempt ran

    def run(self) -> ModelOutcome:
        outcome = ModelOutcome(model=self.key, status=ModelState.RUNNING)
        began = time.monotonic()
        self.ctx.progress.set_status(self.key, RunPhase.WAITING)
        self.ctx.progress.add_total(self.key, sum(len(run.problems) for run in self.ctx.datasets) * self.model.samples)
        stores = {run.spec.name: open_store(self.ctx, self.model, run) for run in self.ctx.datasets}
        try:
            self._attempts(outcome, stores)
        except ResultsError:
            raise
        except OrchestratorError as exc:
            outcome.status = end_state(self.ctx.stop.is_set(), failed=True)
            outcome.error = str(exc) if outcome.status is ModelState.FAILED else None
            log.log(logging.ERROR if outcome.error else logging.INFO, "model %s: %s", self.key, exc)
        finally:
            outcome.seconds = time.monotonic() - began
            self.ctx.progress.set_status(self.key, outcome.status)
        for store in stores.values():
            if not store.has_markdown():
                store.write_markdown()
        outcome.scores = [store.score() for store in stores.values()]
        return outcome

    def _attempts(self, outcome: ModelOutcome, stores: Mapping[str, Checkpoint]) -> None:
        for attempt in range(1, self.backend.retries + 2):
            missing = self._missing(stores)
            if not any(missing.values()):
                log.info("model %s: every answer is in the checkpoint; no actor needed", self.key)
                outcome.status = end_state(self.ctx.stop.is_set(), failed=False)
                return
            if self.ctx.stop.is_set():
                outcome.status = ModelState.INTERRUPTED
                return
            check_fits({self.key: self.request}, self.backend.nodes())  # the nodes that could hold it may be gone
            try:
                facts = self._attempt(self._node_job(self._done(missing), stores, attempt), stores)
            except self.backend.ray.exceptions.RayTaskError:
                raise
            except self.backend.ray.exceptions.RayError as exc:
                if attempt > self.backend.retries or self.ctx.stop.is_set():
                    raise ServerDiedError(f"its Ray actor died {attempt} time(s), last: {_first_line(exc)}") from None
                outcome.restarts += 1
                log.warning(
                    "model %s: its Ray actor died (%s); rescheduling it (%d of %d), resuming from the "
                    "driver's checkpoint",
                    self.key,
                    _first_line(exc),
                    attempt,
                    self.backend.retries,
                )
                self.ctx.progress.note_restarts(self.key, attempt)
                self.ctx.progress.set_status(self.key, RunPhase.RESCHEDULED)
                continue
            _apply_outcome(outcome, facts)
            return

    def _missing(self, stores: Mapping[str, Checkpoint]) -> dict[str, list[Problem]]:
        """Per dataset, the answers the driver's checkpoint still lacks (none anywhere: the model is complete)."""
        missing = {}
        for run in self.ctx.datasets:
            store = stores[run.spec.name]
            count_done(self.ctx.progress, self.key, store, run.problems)
            missing[run.spec.name] = store.missing(run.problems, self.model.samples)
        return missing

    def _done(self, missing: Mapping[str, Sequence[Problem]]) -> dict[str, frozenset[str]]:
        """Per dataset, the answer keys this run asks that the driver already holds (the node asks the rest)."""
        done = {}
        for run in self.ctx.datasets:
            wanted = {p.key for p in with_samples(run.problems, self.model.samples)}
            done[run.spec.name] = frozenset(wanted - {p.key for p in missing[run.spec.name]})
        return done

    def _node_job(self, done: dict[str, frozenset[str]], stores: Mapping[str, Checkpoint], attempt: int) -> NodeJob:
        return NodeJob(
            placement=self.placement,
            datasets=tuple(self.ctx.datasets),
            done=done,
            hashes={name: store.settings_hash for name, store in stores.items()},
            run_id=self.ctx.run_id,
            logs_dir=str(self.ctx.logs_dir.resolve()),
            grade=self.ctx.grade is not None,
            multinode=bool(self.request.multinode),
            attempt=attempt,
        )

    def _attempt(self, job: NodeJob, stores: Mapping[str, Checkpoint]) -> dict[str, Any]:
        strategy = self.backend.multinode_strategy(self.request.multinode, self.ctx.stop) if job.multinode else None
        actor = self.backend.new_actor(self.request, strategy)
        member = RemoteServer(actor)
        self.ctx.servers.add(member)
        try:
            for event in self._events(actor, actor.run.remote(job)):
                if isinstance(event, Finished):
                    return dict(event.facts)
                self._apply(event, stores)
            raise ServerDiedError("the actor's event stream ended without an outcome")
        finally:
            self.ctx.servers.discard(member)
            self.backend.kill(actor)

    def _events(self, actor: Any, stream: Any) -> Iterator[Event]:
        """The actor's events; after a stop, ask it to stop and wait at most STOP_WAIT_S for the rest."""
        ray, deadline = self.backend.ray, None
        while True:
            if self.ctx.stop.is_set() and deadline is None:
                deadline = time.monotonic() + STOP_WAIT_S
                RemoteServer(actor).stop()
            if deadline is not None and time.monotonic() > deadline:
                raise ServerDiedError(f"the actor did not stop within {STOP_WAIT_S:.0f} s; killed it")
            if not ray.wait([stream], timeout=POLL_S)[0]:
                continue
            try:
                ref = next(stream)
            except StopIteration:
                return
            yield ray.get(ref, timeout=GET_TIMEOUT_S)

    def _apply(self, event: Event, stores: Mapping[str, Checkpoint]) -> None:
        match event:
            case Answer(dataset, record):
                rec = _record(record)
                if stores[dataset].append(rec):
                    on_record(self.ctx.progress, self.key, rec)
            case EvalTime(dataset, seconds):
                stores[dataset].add_eval_seconds(float(seconds))
                stores[dataset].write_markdown()
            case StatusChanged(status):
                self.ctx.progress.set_status(self.key, status)
            case ErrorNoted(message):
                self.ctx.progress.note_error(self.key, message)
            case Restarted(count):
                self.ctx.progress.note_restarts(self.key, count)
            case NodeStarted(node):
                self._node_started(node)
            case PhaseTiming(model, phase, seconds) if self.ctx.manifest is not None:
                self.ctx.manifest.timing(model, phase, seconds)
            case ModelFacts(model, facts) if self.ctx.manifest is not None:
                self.ctx.manifest.set_model(model, **facts)

    def _node_started(self, node: str) -> None:
        self.backend.placed(self.key)
        self.nodes.append(node)
        log.info("model %s: attempt %d runs on %s", self.key, len(self.nodes), node)
        if self.ctx.manifest is not None:
            self.ctx.manifest.set_model(self.key, ray_nodes=list(self.nodes))


def _record(data: Mapping[str, Any]) -> AnswerRecord:
    try:
        return AnswerRecord.from_dict(data)
    except TypeError:
        raise ServerDiedError(f"a node sent a malformed answer record (id {data.get('id')!r})") from None


def _apply_outcome(outcome: ModelOutcome, facts: Mapping[str, Any]) -> None:
    outcome.status = ModelState(facts.get("status") or ModelState.FAILED)
    outcome.error = facts.get("error")
    outcome.restarts += int(facts.get("restarts") or 0)
    if facts.get("log_path"):
        outcome.log_path = f"{facts.get('node')}: {facts['log_path']}"
    if outcome.error:
        log.error("model %s failed on %s: %s", outcome.model, facts.get("node"), outcome.error)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    for line in text.splitlines():
        if "died" in line.lower():
            return line.strip()
    return text.splitlines()[0] if text else type(exc).__name__
