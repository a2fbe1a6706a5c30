"""Where model jobs run: the ``Backend`` Protocol, and ``LocalBackend`` (this host's GPUs, or CPU servers).

``orchestrate.execute`` does the steps every run shares -- select models and datasets, preflight, weights, manifest,
progress, signals, leaderboard -- and hands the placements to a backend:

    reserve(logs_dir)                 claim what the run needs before planning (local: kill orphans of earlier
                                      runs, lock the GPU pool; Ray: nothing, the cluster owns its resources)
    plan(models, weights)             the placements (pure planning once the resources are known); PlanError if a
                                      model can never be placed
    render(placements)                the ``--dry-run`` text
    describe()                        the resources, one line each, for the manifest
    run(ctx, placements, stop)        run every job; model key -> ``ModelOutcome`` or the exception that ended it
    close()                           release what ``reserve`` claimed (idempotent)

``LocalBackend.run`` gates the scheduler on ``prefetch.Prefetcher``: a job is placed on GPUs only once its hub
weights are in, and the next models' weights download meanwhile. GPUs left idle get replicas of running models
(``job.run_replica``; the policy's ``fill`` decides from each model's projected end, ``Progress.left_s``, and its
first server's measured start-up). The LLM judge (``judge.job``, key ``JUDGE_KEY``) is one more job, whose ``after``
names the models it audits: it starts once they have all ended, or alongside them once one has and no other job
waits to start (``scheduling.jobs.may_start``), runs like a model (a managed judge on its GPUs, an API judge beside;
never replicated), audits each model as it ends, and frees its GPUs when its audit is done.
``ray.backend.RayBackend`` is the other implementation (weights are fetched on the node that runs the model). No
backend imports ``orchestrate``.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from .contract import ModelConfig, ModelState
from .errors import PlanError, ResultsError, WeightsError
from .hub.prefetch import Prefetcher, answered_models
from .job import ModelOutcome, RunContext, run_model, run_replica, told
from .judge.job import JudgeTask, run_judge
from .judge.settings import JUDGE_KEY
from .scheduling.dryrun import render_plan
from .scheduling.plan import Placement, plan
from .scheduling.policy import Job
from .scheduling.runner import Scheduler
from .serving import gpus as gpumod
from .serving.launch import launch_spec
from .serving.records import cleanup

log = logging.getLogger(__name__)

PLAN_PORTS = range(8100, 9000)  # the ports a plan assigns; a server binds its own when free at start, else any free


class Backend(Protocol):
    """See the module docstring."""

    def reserve(self, logs_dir: Path) -> None: ...
    def plan(
        self,
        models: Sequence[ModelConfig],
        weights: Mapping[str, float],
        startups: Mapping[str, float] | None = None,
        after: Mapping[str, Iterable[str]] | None = None,
    ) -> list[Placement]: ...
    def gpu_name(self) -> str | None: ...
    def render(self, placements: Sequence[Placement]) -> str: ...
    def describe(self) -> list[str]: ...
    def run(self, ctx: RunContext, placements: Sequence[Placement], stop: threading.Event) -> dict[str, object]: ...
    def close(self) -> None: ...


class LocalBackend:
    """Jobs on this host: managed models on disjoint groups of the GPU pool (or CPU servers), API models beside."""

    def __init__(
        self,
        models: Sequence[ModelConfig],
        gpus: list[int] | None,
        max_cpu_servers: int,
        *,
        python: str = sys.executable,
        prefetch: int = 1,
        delete_weights_after: bool = False,
        judge: JudgeTask | None = None,
    ) -> None:
        self.models, self.wanted, self.max_cpu, self.python = list(models), gpus, max_cpu_servers, python
        self.judge = judge  # its model is among ``models`` (key JUDGE_KEY); it waits for the models it audits
        self.prefetch, self.delete_weights_after = prefetch, delete_weights_after
        self.pool: list[int] | None = None  # set by reserve(); before that a plan is a preview
        self.gpu_names: list[str] = []
        self._locks: gpumod.GpuLocks | None = None

    def reserve(self, logs_dir: Path) -> None:
        for rec in cleanup(logs_dir):
            log.warning(
                "cleanup: killed orphaned server %s (pid %s, port %s) of run %s",
                rec.name,
                rec.pid,
                rec.port,
                rec.run_id,
            )
        self.pool, self.gpu_names, self._locks = gpu_pool(self.models, self.wanted)

    def plan(
        self,
        models: Sequence[ModelConfig],
        weights: Mapping[str, float],
        startups: Mapping[str, float] | None = None,
        after: Mapping[str, Iterable[str]] | None = None,
    ) -> list[Placement]:
        pool = self.pool if self.pool is not None else self._preview_pool()
        return plan(
            models,
            pool,
            PLAN_PORTS,
            max_cpu_servers=self.max_cpu,
            python=self.python,
            weights=weights,
            startups=startups,
            after=after,
        )

    def gpu_name(self) -> str | None:
        """The kind of GPU the models run on (``nvidia-smi``'s name of the pool's first), None without GPUs."""
        pool = self.pool if self.pool is not None else self._preview_pool()
        names = {g.index: g.name for g in gpumod.discover()} if pool else {}
        return names.get(pool[0]) if pool else None

    def _preview_pool(self) -> list[int]:
        """The pool a dry run shows: ``--gpus`` as given, else every GPU found (nothing is locked)."""
        return self.wanted if self.wanted is not None else [g.index for g in gpumod.discover()]

    def render(self, placements: Sequence[Placement]) -> str:
        return render_plan(placements)

    def describe(self) -> list[str]:
        return list(self.gpu_names)

    def run(self, ctx: RunContext, placements: Sequence[Placement], stop: threading.Event) -> dict[str, object]:
        """The scheduler places a job only once its hub weights are in; the prefetcher fetches ahead meanwhile."""
        fetcher = self._prefetcher(ctx, placements, stop)
        launch = _Launcher(ctx, {p.job.key: p for p in placements}, fetcher, stop, self.judge)
        scheduler = Scheduler(
            [p.job for p in placements],
            self.pool or [],
            launch,
            max_cpu_servers=self.max_cpu,
            ready=lambda job: fetcher.ready(job.key),
            replica=launch.replica if self.pool or self.max_cpu > 1 else None,
            remaining=_reader(ctx, "left_s"),
            untaken=_untaken(ctx),
            startup=_reader(ctx, "startup_s"),
        )
        fetcher.on_change = scheduler.wake
        fetcher.start()
        try:
            return dict(scheduler.run(stop))
        finally:
            fetcher.close()

    def _prefetcher(self, ctx: RunContext, placements: Sequence[Placement], stop: threading.Event) -> Prefetcher:
        models = [p.job.model for p in placements]
        done = answered_models(ctx.results_dir, models, ctx.datasets, ctx.fresh)
        return Prefetcher(
            [m for m in models if m.key not in done],
            ahead=self.prefetch,
            delete_after=self.delete_weights_after,
            progress=ctx.progress,
            manifest=ctx.manifest,
            stop=stop,
        )

    def close(self) -> None:
        if self._locks is not None:
            self._locks.release_all()
            self._locks = None


class _Launcher:
    """The scheduler's ``launch``: one model's job on its GPUs, on local weights; what ends it becomes its result."""

    def __init__(
        self,
        ctx: RunContext,
        by_key: Mapping[str, Placement],
        fetcher: Prefetcher,
        stop: threading.Event,
        judge: JudgeTask | None = None,
    ) -> None:
        self.ctx, self.by_key, self.fetcher, self.stop, self.judge = ctx, by_key, fetcher, stop, judge
        self.ended: set[str] = set()  # jobs that returned (the judge audits those of its models)
        self.replicas: Counter[str] = Counter()
        self.lock = threading.Lock()

    def __call__(self, job: Job, gpus: tuple[int, ...]) -> object:
        self.fetcher.placed(job.key)
        try:
            spec = self.fetcher.local_spec(job.key, launch_spec(self.by_key[job.key].spec, gpus))
            if job.key == JUDGE_KEY and self.judge is not None:
                ended = self.judge.ended_of(lambda: self.ended, self.by_key)
                return told(self.ctx, run_judge(self.ctx, self.judge, spec, ended=ended))
            return told(self.ctx, run_model(self.ctx, job.model, spec))
        except WeightsError as exc:  # this model's weights: it fails alone
            self.ctx.progress.set_status(job.key, ModelState.FAILED)
            return told(self.ctx, ModelOutcome(model=job.key, status=ModelState.FAILED, error=str(exc)))
        except ResultsError as exc:  # the disk failed: every model would fail on it; stop the run, report once
            log.debug("model %s: %s; stopping the run", job.key, exc)
            self.stop.set()
            return exc
        finally:
            self.fetcher.released(job.key)
            self.ended.add(job.key)

    def replica(self, job: Job, gpus: tuple[int, ...]) -> None:
        """One more server of a running model on ``gpus`` (its weights are in: it runs); see ``job.run_replica``.
        Its server is named ``<name>-replica<i>`` (its own log, ``logs/<run id>/<name>-replica<i>.log``)."""
        spec = self.fetcher.local_spec(job.key, launch_spec(self.by_key[job.key].spec, gpus))
        if spec is None:
            return
        with self.lock:
            self.replicas[job.key] += 1
            spec = dataclasses.replace(spec, name=f"{spec.name}-replica{self.replicas[job.key]}")
        self.fetcher.placed(job.key)
        try:
            run_replica(self.ctx, job.model, spec)
        finally:
            self.fetcher.released(job.key)


def _reader(ctx: RunContext, name: str) -> Callable[[str], float | None]:
    """A per-model reading of the run's ``Progress`` (``left_s``: the projected seconds left from the model's own
    answer rate; ``startup_s``: its first server's measured start-up); None for each model where the progress is not
    a ``Progress``."""
    read = getattr(ctx.progress, name, None)
    return read if read is not None else (lambda key: None)


def _untaken(ctx: RunContext) -> Callable[[str], float | None]:
    """The share of each model's remaining answers that no server has taken yet (its queue, the series to come):
    ``SharedWork.untaken`` over ``Progress.left_answers``; None while either is unknown."""
    left_answers = getattr(ctx.progress, "left_answers", None)

    def share(key: str) -> float | None:
        queued = ctx.share_of(key).untaken()
        left = left_answers(key) if left_answers is not None else None
        return None if queued is None or not left else queued / left

    return share


def gpu_pool(
    models: Sequence[ModelConfig], wanted: list[int] | None
) -> tuple[list[int], list[str], gpumod.GpuLocks | None]:
    """Discover and lock the GPU pool; ([], [], None) for a CPU-only machine or API-only runs."""
    if not any(m.managed for m in models):
        return [], [], None
    found = gpumod.discover()
    if not found:
        if wanted:
            raise PlanError(
                f"--gpus {','.join(map(str, wanted))}: no GPU found (nvidia-smi lists none); "
                "drop --gpus to serve models on the CPU"
            )
        return [], [], None
    chosen = gpumod.select(found, wanted)
    locks = gpumod.GpuLocks.for_gpus(chosen)
    held = locks.acquire_available([g.index for g in chosen])
    if not held:
        raise PlanError(
            "every GPU of the pool is locked by another deathmath-orchestrate on this host; "
            "wait for it or choose other GPUs with --gpus"
        )
    names = [f"{g.index}: {g.name}" for g in chosen if g.index in held]
    return sorted(held), names, locks


__all__ = ["Backend", "LocalBackend", "PLAN_PORTS", "gpu_pool"]
