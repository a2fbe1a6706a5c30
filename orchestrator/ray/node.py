"""The node side of the Ray backend: one model job inside a Ray actor, its answers streamed back to the driver.

``ModelActor.run(job)`` is a Ray streaming generator. It runs ``runner.run_model`` -- the same lifecycle as a local
run: start vLLM, wait until ready, ask with the client, grade, stop in ``finally``, restart a dead server -- with
proxies in place of the results directory, the manifest and the progress display, which turn what the job
writes into events for the driver (``rayevents``: frozen dataclasses, the first ``NodeStarted``, the last
``Finished``). Nothing is written on the node except the server's log (under the driver's ``--logs-dir`` path, on
the node's own disk) and the node's server state file.

The server is started with a guard (``guard.py``): if the actor's process dies without running its ``finally``
blocks (``ray.kill``, its raylet killed, the node lost), the guard kills the server's process group.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from ..contract import (
    AnswerRecord,
    ModelConfig,
    ModelState,
    Problem,
    ProgressStatus,
    SeriesScore,
    ServerSpec,
)
from ..errors import ConfigError, ResultsError
from ..hub.prefetch import fetch_now
from ..job import DatasetRun, RunContext, record_grader, run_model
from ..prompts import prompt_fingerprint
from ..results import SeriesState, missing_answers, settings_hash
from ..scheduling.plan import Placement
from ..serving.gpus import discover
from ..serving.guard import spawn_guard
from ..serving.launch import launch_spec, multinode_spec
from ..serving.server import start_server
from ..serving.signals import ServerGroup
from .events import (
    Answer,
    Emit,
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

log = logging.getLogger(__name__)

EVENT_POLL_S = 1.0
# argv: the gate's fd, then the server's command; its first line names it in ps while it waits
GATE = (
    "# guarded-server\nimport os, sys; fd = int(sys.argv[1]); word = os.read(fd, 3); os.close(fd); "
    "word == b'go\\n' or sys.exit(1); os.execvp(sys.argv[2], sys.argv[2:])"
)


@dataclass(frozen=True)
class NodeJob:
    """Everything a node needs for one attempt at one model: the driver's checkpoint is ``done`` (ids per dataset)
    and ``hashes`` (its settings hash per dataset, which the node's own code must reproduce)."""

    placement: Placement
    datasets: tuple[DatasetRun, ...]
    done: Mapping[str, frozenset[str]]
    hashes: Mapping[str, str]
    run_id: str
    logs_dir: str
    grade: bool = True
    multinode: bool = False
    attempt: int = 1

    @property
    def model(self) -> ModelConfig:
        return self.placement.job.model


class ProxyStore:
    """The part of ``SeriesStore`` that ``run_series`` uses; ``append`` sends the record to the driver instead.

    It knows the answer keys (``Problem.key``: the id for sample 0) the driver had answered when the attempt began
    and every one answered since, so an answer is never sent twice; the driver's store deduplicates again."""

    def __init__(self, model_key: str, dataset: str, digest: str, done: frozenset[str], emit: Emit) -> None:
        self.model_key, self.dataset, self.settings_hash = model_key, dataset, digest
        self._done, self._emit = set(done), emit
        self._state = SeriesState(digest)
        self._lock = threading.Lock()

    def missing(self, problems: Sequence[Problem], samples: int = 1) -> list[Problem]:
        with self._lock:
            return missing_answers(problems, samples, self._done.__contains__)

    def append(self, rec: AnswerRecord) -> bool:
        if rec.settings_hash != self.settings_hash:
            raise ResultsError(f"record {rec.id!r} has settings {rec.settings_hash!r}, series {self.settings_hash!r}")
        with self._lock:
            if rec.key in self._done:
                return False
            if rec.error is None:
                self._done.add(rec.key)
            self._state.absorb(rec)
        self._emit(Answer(self.dataset, rec.to_dict()))
        return True

    def records(self) -> list[AnswerRecord]:
        with self._lock:
            return self._state.records()

    def score(self) -> SeriesScore:
        with self._lock:
            return self._state.score({}, self.model_key, self.dataset)

    def add_eval_seconds(self, seconds: float) -> None:
        self._emit(EvalTime(self.dataset, float(seconds)))

    def has_markdown(self) -> bool:
        return True  # the driver writes the markdown; run_series must not ask the node to

    def write_markdown(self) -> None:
        """The driver rewrites the markdown when the ``EvalTime`` event arrives."""


class EventManifest:
    """``Manifest.timing`` and ``set_model`` as events."""

    def __init__(self, emit: Emit) -> None:
        self._emit = emit

    def timing(self, model: str, phase: str, seconds: float) -> None:
        self._emit(PhaseTiming(model, phase, seconds))

    def set_model(self, model: str, **facts: Any) -> None:
        self._emit(ModelFacts(model, facts))


class EventProgress:
    """The progress calls of the job: the status goes to the driver; counts it takes from the records."""

    def __init__(self, emit: Emit) -> None:
        self._emit = emit

    def set_status(self, model: str, status: ProgressStatus) -> None:
        self._emit(StatusChanged(status))

    def add_total(self, model: str, n: int) -> None:
        """The driver counts the totals itself."""

    def sync(self, model: str, dataset: str, done: int, correct: int) -> None:
        """The driver syncs from its own checkpoint."""

    def record(self, model: str, dataset: str, *, correct: bool, tokens: int, error: bool) -> None:
        """The driver counts each ``Answer`` it appends."""

    def note_error(self, model: str, message: str) -> None:
        self._emit(ErrorNoted(message))

    def note_restarts(self, model: str, count: int) -> None:
        self._emit(Restarted(count))

    def set_download(self, label: str, text: str | None) -> None:
        """A download's progress line stays on the node; its status (downloading, weights ok) goes by set_status."""


def node_spec(job: NodeJob, gpus: tuple[int, ...], python: str, address: str = "") -> ServerSpec:
    """The server of ``job`` on this node: its GPUs, this node's Python (unless ``vllm.python`` is set), the
    placement environment, and vLLM's Ray executor for a multi-node model."""
    spec = launch_spec(job.placement.spec, gpus)
    assert spec is not None, "a node job is always a managed model"
    if job.model.vllm is not None and job.model.vllm.python is None:
        spec = dataclasses.replace(spec, python=python)
    return multinode_spec(spec, address) if job.multinode else spec


def guarded_popen(args: list[str], **kwargs: Any) -> subprocess.Popen:
    """``subprocess.Popen`` for ``VllmServer``, plus a guard that kills the server's group if this process dies.

    The server runs only once its guard does: it is spawned as a tiny Python gate that waits on a pipe for "go"
    and then execs the server (same pid, session and group). If this process dies before the guard is up (Ray kills an
    actor and its direct children at once), the pipe closes unwritten and the shell exits without starting anything --
    otherwise the server's engine, no direct child, would outlive everyone.
    """
    gate, go = os.pipe()
    try:
        proc = subprocess.Popen([sys.executable, "-S", "-E", "-c", GATE, str(gate), *args], pass_fds=(gate,), **kwargs)
    finally:
        os.close(gate)
    try:
        spawn_guard(os.getpid(), proc.pid, label=str(getattr(kwargs.get("stdout"), "name", "")))
    except OSError as exc:
        log.error("could not start the guard of server pid %d (%s); it may outlive a killed actor", proc.pid, exc)
    try:
        os.write(go, b"go\n")
    finally:
        os.close(go)
    return proc


def node_name() -> str:
    """This node as the driver reports it: host name and Ray node id."""
    node = "-"
    try:
        import ray

        if ray.is_initialized():  # asking the runtime context outside Ray would start a whole local Ray instance
            node = ray.get_runtime_context().get_node_id()[:12]
    except Exception:  # noqa: BLE001 -- outside Ray (unit tests)
        pass
    return f"{socket.gethostname()} (ray node {node})"


def undo_ray_thread_default(environ: dict | None = None) -> bool:
    """Drop the ``OMP_NUM_THREADS`` that Ray sets in a worker whose node did not set it (1 for an actor without
    CPUs), so that the server inherits the node's environment as a local run's does; True if dropped."""
    environ = os.environ if environ is None else environ
    if "OMP_NUM_THREADS" not in environ or "RAY_RAYLET_PID" not in environ:
        return False
    try:
        if "OMP_NUM_THREADS" in psutil.Process(int(environ["RAY_RAYLET_PID"])).environ():
            return False  # the node's own setting: keep it
    except Exception:  # noqa: BLE001 -- not knowable (raylet gone, not ours): leave the environment alone
        return False
    del environ["OMP_NUM_THREADS"]
    return True


class ModelActor:
    """One model job per actor (``ray.remote(ModelActor)`` in the driver; max_concurrency 2 so ``stop`` runs while
    ``run`` streams)."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._servers = ServerGroup()

    def node(self) -> dict[str, Any]:
        return {"node": node_name(), "pid": os.getpid()}

    def stop(self) -> None:
        """Stop the job: it sees the stop event, the server is stopped now, and no new one starts."""
        self._stop.set()
        self._servers.close()

    def run(self, job: NodeJob) -> Iterator[Event]:
        """Run ``job`` and yield its events; the last one is ``Finished``."""
        undo_ray_thread_default()  # Ray sets it before each task: undo it just before the server starts
        yield NodeStarted(node_name())
        events: queue.Queue = queue.Queue()
        worker = threading.Thread(target=self._work, args=(job, events.put), name="model-job", daemon=True)
        worker.start()
        while True:
            try:
                event = events.get(timeout=EVENT_POLL_S)
            except queue.Empty:
                if worker.is_alive():
                    continue
                event = Finished({"status": str(ModelState.FAILED), "error": "the job thread ended without an outcome"})
            yield event
            if isinstance(event, Finished):
                return

    def _work(self, job: NodeJob, emit: Emit) -> None:
        began = time.monotonic()
        try:
            ctx = node_context(job, emit, self._stop, self._servers)
            spec = node_spec(job, ray_gpus(job), sys.executable, _gcs_address())
            spec = fetch_now(job.model, spec, ctx.manifest, EventProgress(emit))  # hub weights onto this node
            outcome = run_model(ctx, job.model, spec)
            facts = {
                "status": str(outcome.status),
                "error": outcome.error,
                "restarts": outcome.restarts,
                "log_path": outcome.log_path,
            }
        except BaseException as exc:  # noqa: BLE001 -- reported to the driver, which decides
            facts = {"status": str(ModelState.FAILED), "error": f"{type(exc).__name__}: {exc}"}
        facts.update(seconds=time.monotonic() - began, node=node_name())
        emit(Finished(facts))


def node_context(job: NodeJob, emit: Emit, stop: threading.Event, servers: ServerGroup) -> RunContext:
    """A ``RunContext`` whose results, manifest and progress are events, and whose servers are guarded."""
    return RunContext(
        run_id=job.run_id,
        results_dir=Path(os.devnull),
        logs_dir=Path(job.logs_dir),
        datasets=job.datasets,
        stop=stop,
        progress=EventProgress(emit),
        servers=servers,
        manifest=EventManifest(emit),
        grade=record_grader() if job.grade else None,
        start_server=functools.partial(start_server, popen=guarded_popen),
        open_store=functools.partial(proxy_store, job, emit),
    )


def proxy_store(job: NodeJob, emit: Emit, model: ModelConfig, run: DatasetRun) -> ProxyStore:
    name = run.spec.name
    digest = settings_hash(model, name, run.version, prompt_fingerprint())
    if digest != job.hashes[name]:
        raise ConfigError(
            f"{node_name()}: settings hash of {model.key}/{name} is {digest}, the driver's is "
            f"{job.hashes[name]}; install the same deathmath-orchestrate version on every node"
        )
    return ProxyStore(model.key, name, digest, job.done.get(name, frozenset()), emit)


def ray_gpus(job: NodeJob) -> tuple[int, ...]:
    """The GPUs this actor may use: Ray's assignment; for a multi-node model every GPU of this node."""
    if job.multinode:
        return tuple(g.index for g in discover())
    import ray

    ids = ray.get_gpu_ids()
    try:
        return tuple(int(g) for g in ids)
    except ValueError:
        raise ConfigError(
            f"{node_name()}: Ray assigned GPUs {ids}; GPU UUIDs are not supported, "
            "number the node's GPUs (unset CUDA_VISIBLE_DEVICES before `ray start`)"
        ) from None


def _gcs_address() -> str:
    import ray

    return ray.get_runtime_context().gcs_address
