"""Run model jobs on disjoint GPU groups as GPUs free up.

The decision of what to start is one pure function, ``decide``, shared by the threaded ``Scheduler`` and by the
discrete-event ``simulate`` (used by the plan's ``--dry-run`` timeline and ``benchmarks/scheduling.py``).

Policy: greedy list scheduling in priority order with one reservation (EASY backfilling). At every free-up the
pending jobs are scanned in priority order and each one that fits starts. The first GPU job that does not fit
reserves the GPU group it will get when running jobs end (their estimated ends, ``start + weight``); a later job
may start on that group only if its own estimate ends before then. So a big job is never starved by a stream of
small ones: it waits for the jobs already running on its group plus backfills that were estimated to finish
first, and once an estimate is overrun nothing new starts on its group.

``priority_order`` picks the priority list: larger then slower jobs first, unless a simulation with the weights
(estimated durations) finds a shorter makespan with another order (bounded local search).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ..contract import ModelConfig
from ..errors import OrchestratorError, PlanError

log = logging.getLogger(__name__)

T = TypeVar("T")
SEARCH_BUDGET = 400  # simulations the priority search may run
_EPS = 1e-9


@dataclass(frozen=True)
class Job:
    """One model to run: ``gpus_needed`` > 0 for a GPU server, ``cpu`` for a CPU server, neither for an API model.

    ``weight`` is the estimated duration in seconds (1.0 when unknown: then only sizes order the jobs).
    """

    model: ModelConfig
    gpus_needed: int
    cpu: bool = False
    weight: float = 1.0

    @property
    def key(self) -> str:
        return self.model.key

    @property
    def size(self) -> int:
        """The model's configured TP x PP (1 for API models): orders CPU-server jobs larger first too."""
        return self.model.vllm.gpus_needed if self.model.vllm is not None else 1

    @property
    def kind(self) -> str:
        return "gpu" if self.gpus_needed > 0 else "cpu" if self.cpu else "api"


@dataclass(frozen=True)
class Slots:
    """Free resources: GPU indices, CPU-server slots, API-job slots."""

    gpus: frozenset[int]
    cpu: int
    api: int

    def take(self, job: Job, group: Iterable[int]) -> Slots:
        return Slots(self.gpus - set(group), self.cpu - (job.kind == "cpu"), self.api - (job.kind == "api"))

    def give(self, job: Job, group: Iterable[int]) -> Slots:
        return Slots(self.gpus | set(group), self.cpu + (job.kind == "cpu"), self.api + (job.kind == "api"))


@dataclass(frozen=True)
class Running:
    """A started job; its estimated end is ``start + weight`` (never in the past)."""

    job: Job
    gpus: tuple[int, ...]
    start: float

    def est_end(self, now: float) -> float:
        return max(now, self.start + self.job.weight)


@dataclass(frozen=True)
class Slot:
    """One job's run: the GPUs it held from ``start`` to ``end``."""

    job: Job
    gpus: tuple[int, ...]
    start: float
    end: float


# ---------------------------------------------------------------------------------------------------- decisions


def choose_group(free: Iterable[int], k: int, avoid: frozenset[int] = frozenset()) -> tuple[int, ...] | None:
    """``k`` GPUs out of ``free``, or ``None``: contiguous indices (NVLink pairs) when possible, then fewest of
    ``avoid``, aligned (index % k == 0), and best fit (fewest free neighbours, so larger runs stay whole)."""
    pool = frozenset(free)
    if len(pool) < k:
        return None
    if k <= 0:
        return ()
    runs = [tuple(range(g, g + k)) for g in sorted(pool) if all(g + i in pool for i in range(k))]
    candidates = runs or [_spread(pool, k)]
    return min(
        candidates, key=lambda grp: (len(avoid.intersection(grp)), grp[0] % k != 0, _free_neighbours(grp, pool), grp)
    )


def _free_neighbours(group: Sequence[int], pool: frozenset[int]) -> int:
    members = set(group)
    return sum(1 for g in group for n in (g - 1, g + 1) if n in pool and n not in members)


def _spread(pool: frozenset[int], k: int) -> tuple[int, ...]:
    """No contiguous run: take the GPUs with fewest free neighbours (keeps contiguous runs for later jobs)."""
    ranked = sorted(pool, key=lambda g: (_free_neighbours((g,), pool), g))
    return tuple(sorted(ranked[:k]))


def decide(
    pending: Sequence[Job], running: Sequence[Running], free: Slots, now: float
) -> list[tuple[Job, tuple[int, ...]]]:
    """The jobs to start at ``now`` (``pending`` is in priority order), each with its GPU group. Pure."""
    decision = _Decision(free, running, now)
    for job in pending:
        decision.consider(job)
    return decision.starts


class _Decision:
    """One pass over the pending jobs: greedy in priority order, one EASY reservation for the first blocked job."""

    def __init__(self, free: Slots, running: Sequence[Running], now: float) -> None:
        self.gpus, self.cpu, self.api = set(free.gpus), free.cpu, free.api
        self.busy = [r for r in running if r.gpus]
        self.now = now
        self.reservation: tuple[float, frozenset[int]] | None = None
        self.starts: list[tuple[Job, tuple[int, ...]]] = []

    def consider(self, job: Job) -> None:
        if job.kind == "api" and self.api > 0:
            self.api -= 1
            self.starts.append((job, ()))
        elif job.kind == "cpu" and self.cpu > 0:
            self.cpu -= 1
            self.starts.append((job, ()))
        elif job.kind == "gpu":
            self._consider_gpu(job)

    def _consider_gpu(self, job: Job) -> None:
        group = self._fit(job)
        if group is not None:
            self.gpus -= set(group)
            self.busy.append(Running(job, group, self.now))
            self.starts.append((job, group))
        elif self.reservation is None:
            self.reservation = self._reserve(job)

    def _fit(self, job: Job) -> tuple[int, ...] | None:
        if self.reservation is None:
            return choose_group(self.gpus, job.gpus_needed)
        shadow, reserved = self.reservation
        outside = choose_group(self.gpus - reserved, job.gpus_needed)
        if outside is not None or self.now + job.weight > shadow + _EPS:
            return outside
        return choose_group(self.gpus, job.gpus_needed)

    def _reserve(self, job: Job) -> tuple[float, frozenset[int]] | None:
        """When and where ``job`` will fit as running jobs end; it prefers GPUs busy now, leaving free ones."""
        avail, free_now = set(self.gpus), frozenset(self.gpus)
        for run in sorted(self.busy, key=lambda r: r.est_end(self.now)):
            avail |= set(run.gpus)
            group = choose_group(avail, job.gpus_needed, avoid=free_now)
            if group is not None:
                return run.est_end(self.now), frozenset(group)
        return None  # larger than the pool: the plan rejects such a job before anything starts


# ---------------------------------------------------------------------------------------------------- simulation


def simulate(
    order: Sequence[Job],
    gpus: Iterable[int],
    *,
    max_cpu_servers: int = 1,
    max_api_concurrency: int = 8,
    durations: Mapping[str, float] | None = None,
) -> list[Slot]:
    """Discrete-event run of ``decide``: jobs take ``durations[key]`` (default: their weight); returns the slots
    in start order (ties in priority order). Decisions see only the weights, so durations unlike the weights
    model estimation error."""
    actual = {j.key: float((durations or {}).get(j.key, j.weight)) for j in order}
    free = Slots(frozenset(gpus), max_cpu_servers, max_api_concurrency)
    pending, running, slots, now = list(order), list[Running](), list[Slot](), 0.0
    while pending or running:
        for job, group in decide(pending, running, free, now):
            pending = [p for p in pending if p is not job]
            running.append(Running(job, group, now))
            free = free.take(job, group)
        if not running:
            raise PlanError(
                f"model '{pending[0].key}' can never start on GPUs {sorted(free.gpus)}; "
                "lower its tensor_parallel_size or add GPUs"
            )
        now, free = _finish_next(running, actual, free, slots)
    rank = {job.key: i for i, job in enumerate(order)}
    return sorted(slots, key=lambda s: (s.start, rank[s.job.key]))


def _finish_next(
    running: list[Running], actual: Mapping[str, float], free: Slots, slots: list[Slot]
) -> tuple[float, Slots]:
    """Advance to the next end: move the jobs ending then from ``running`` to ``slots``; returns (now, free)."""
    now = min(r.start + actual[r.job.key] for r in running)
    for run in [r for r in running if r.start + actual[r.job.key] <= now + _EPS]:
        running.remove(run)
        free = free.give(run.job, run.gpus)
        slots.append(Slot(run.job, run.gpus, run.start, now))
    return now, free


def makespan(slots: Iterable[Slot]) -> float:
    """When the last job ends (0 for none), measured from the first start."""
    slots = list(slots)
    return max(s.end for s in slots) - min(s.start for s in slots) if slots else 0.0


ORDERINGS: tuple[Callable[[Job], tuple[float, ...]], ...] = (
    lambda j: (-j.gpus_needed, -j.weight, -j.size),  # larger, then slower, first
    lambda j: (-j.weight * max(j.gpus_needed, 1), -j.gpus_needed),  # most GPU-seconds first
    lambda j: (-j.weight, -j.gpus_needed),  # slowest first
)


def priority_order(
    jobs: Sequence[Job],
    gpus: Iterable[int],
    *,
    max_cpu_servers: int = 1,
    max_api_concurrency: int = 8,
    budget: int = SEARCH_BUDGET,
) -> list[Job]:
    """The priority list: larger then slower first, or the order whose simulation (with the weights as
    durations) has the shortest makespan; ties keep the earlier candidate. Independent of the order of ``jobs``
    (equal jobs go by key), so the plan and the scheduler agree whatever order they pass; cached."""
    canonical = tuple(sorted(jobs, key=lambda j: j.key))
    return list(_priority_order(canonical, tuple(sorted(set(gpus))), max_cpu_servers, max_api_concurrency, budget))


@functools.lru_cache(maxsize=16)
def _priority_order(
    jobs: tuple[Job, ...], pool: tuple[int, ...], max_cpu_servers: int, max_api_concurrency: int, budget: int
) -> tuple[Job, ...]:
    candidates = [sorted(jobs, key=key) for key in ORDERINGS]
    if len({j.weight for j in jobs}) <= 1:
        return tuple(candidates[0])  # no duration information: sizes alone decide

    def score(order: Sequence[Job]) -> float:
        return makespan(simulate(order, pool, max_cpu_servers=max_cpu_servers, max_api_concurrency=max_api_concurrency))

    scored = [(score(c), i, c) for i, c in enumerate(candidates)]
    best_score, _, best = min(scored, key=lambda t: (t[0], t[1]))
    return tuple(_improve(best, best_score, score, budget - len(candidates)))


def _improve(order: list[Job], best: float, score: Callable[[Sequence[Job]], float], budget: int) -> list[Job]:
    """First-improvement local search over single moves (take one job, insert it elsewhere), ``budget`` bounded."""
    improved = True
    while improved and budget > 0:
        improved = False
        for i, j in ((i, j) for i in range(len(order)) for j in range(len(order)) if i != j):
            if budget <= 0:
                break
            trial = order[:i] + order[i + 1 :]
            trial.insert(j, order[i])
            budget -= 1
            value = score(trial)
            if value < best - _EPS:
                order, best, improved = trial, value, True
                break
    return order


# ---------------------------------------------------------------------------------------------------- threads


def check_jobs(jobs: Sequence[Job], gpus: Sequence[int], max_cpu_servers: int, max_api_concurrency: int) -> None:
    """``PlanError`` for duplicate keys, a job larger than the pool, or a zero limit that would block jobs."""
    keys = [j.key for j in jobs]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise PlanError(f"model '{dupes[0]}' appears twice in model_list; give each entry a distinct name")
    for job in jobs:
        if job.gpus_needed > len(gpus):
            raise PlanError(
                f"model '{job.key}' needs {job.gpus_needed} GPUs but the pool has {len(gpus)} "
                f"(--gpus {','.join(map(str, gpus))}); lower tensor_parallel_size or add GPUs"
            )
    if max_cpu_servers < 1 and any(j.kind == "cpu" for j in jobs):
        raise PlanError(f"--max-cpu-servers {max_cpu_servers}: must be at least 1 to serve models on the CPU")
    if max_api_concurrency < 1 and any(j.kind == "api" for j in jobs):
        raise PlanError(f"max_api_concurrency {max_api_concurrency}: must be at least 1 to run API models")


@dataclass
class _Finished:
    run: Running
    value: object
    end: float


class Scheduler(Generic[T]):
    """Runs ``launch(job, gpus)`` for every job in its own thread, on disjoint GPU groups, as GPUs free up.

    ``priority`` maps the jobs to the priority list (default ``priority_order``). API jobs run concurrently (at
    most ``max_api_concurrency``), CPU-server jobs at most ``max_cpu_servers`` at once. ``history`` records every
    run's GPUs and ``clock`` times. ``ready(job)`` gates a start (a hub model's weights must be in: a download never
    holds a GPU); whoever makes a job ready calls ``wake()``.
    """

    def __init__(
        self,
        jobs: Sequence[Job],
        gpus: Sequence[int],
        launch: Callable[[Job, tuple[int, ...]], T],
        *,
        max_cpu_servers: int = 1,
        max_api_concurrency: int = 8,
        clock: Callable[[], float] = time.monotonic,
        priority: Callable[[Sequence[Job]], Sequence[Job]] | None = None,
        wait_timeout: float = 1.0,
        ready: Callable[[Job], bool] | None = None,
    ) -> None:
        self._gpus = tuple(sorted(set(gpus)))
        check_jobs(jobs, self._gpus, max_cpu_servers, max_api_concurrency)
        self._jobs, self._launch, self._clock, self._wait = list(jobs), launch, clock, wait_timeout
        self._ready = ready or (lambda job: True)
        self._limits = (max_cpu_servers, max_api_concurrency)
        self.order = list(
            priority(jobs)
            if priority
            else priority_order(
                jobs, self._gpus, max_cpu_servers=max_cpu_servers, max_api_concurrency=max_api_concurrency
            )
        )
        self.history: list[Slot] = []
        self._cond = threading.Condition()
        self._finished: list[_Finished] = []

    def run(self, stop: threading.Event | None = None) -> dict[str, T | BaseException]:
        """Run every job; returns key -> launch's value or the exception it raised. Once ``stop`` is set nothing
        new starts and jobs never started map to an ``OrchestratorError`` saying so; running ones are awaited."""
        stop = stop if stop is not None else threading.Event()
        state = _RunState(list(self.order), Slots(frozenset(self._gpus), *self._limits))
        with self._cond:
            try:
                self._loop(state, stop)
            except BaseException:
                stop.set()  # e.g. KeyboardInterrupt: the launch functions watch the same event
                raise
        for job in state.pending:
            state.results[job.key] = OrchestratorError(
                f"model '{job.key}' was not started: the run was stopped first; rerun to resume it"
            )
        return {j.key: state.results[j.key] for j in self._jobs}  # type: ignore[misc]  # T or an exception

    def _loop(self, state: _RunState, stop: threading.Event) -> None:
        while state.pending or state.running:
            if not stop.is_set():
                self._start_ready(state)
            if not state.running:
                if stop.is_set():
                    return
                if all(self._ready(job) for job in state.pending):
                    raise PlanError(f"model '{state.pending[0].key}' cannot start on GPUs {list(self._gpus)}")
            if not self._finished:
                self._cond.wait(timeout=self._wait)
            self._reap(state)

    def wake(self) -> None:
        """Look at the pending jobs now (a job became ready)."""
        with self._cond:
            self._cond.notify_all()

    def _start_ready(self, state: _RunState) -> None:
        now = self._clock()
        for job, group in decide([j for j in state.pending if self._ready(j)], state.running, state.free, now):
            run = Running(job, group, now)
            state.pending.remove(job)
            state.running.append(run)
            state.free = state.free.take(job, group)
            log.info("starting model %s on %s", job.key, f"GPUs {list(group)}" if group else job.kind)
            threading.Thread(target=self._work, args=(run,), name=f"job-{job.key}", daemon=False).start()

    def _work(self, run: Running) -> None:
        try:
            value: object = self._launch(run.job, run.gpus)
        except BaseException as exc:
            log.error("model %s failed: %s: %s", run.job.key, type(exc).__name__, exc)
            value = exc
        with self._cond:
            self._finished.append(_Finished(run, value, self._clock()))
            self._cond.notify_all()

    def _reap(self, state: _RunState) -> None:
        for done in self._finished:
            state.running.remove(done.run)
            state.free = state.free.give(done.run.job, done.run.gpus)
            state.results[done.run.job.key] = done.value
            self.history.append(Slot(done.run.job, done.run.gpus, done.run.start, done.end))
        self._finished.clear()


@dataclass
class _RunState:
    pending: list[Job]
    free: Slots
    running: list[Running] = field(default_factory=list)
    results: dict[str, object] = field(default_factory=dict)
