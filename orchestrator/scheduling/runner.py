"""Run model jobs on disjoint GPU groups as GPUs free up: the threaded ``Scheduler``.

What to start, where and when is the pure policy's (``policy.decide``, the same function ``simulate`` runs for the
``--dry-run`` timeline, and ``policy.fill`` for replicas); this module adds the threads, the clock and the ``ready``
gate (with ``jobs.may_start`` for a job that reads others' results, the judge). Jobs that cannot fit the pool are
rejected up front by the planner's ``plan.check_fits``. With a ``replica`` launcher and a ``remaining`` projection, idle
GPUs get replicas of running models: ``replica(job, gpus)`` runs one more server of the model until its work queue is
empty; the model's result is its first server's (``launch``). While models are ready and wait for GPUs, replicas go by
measured time only: a model gets one once ``remaining`` projects its end from its own answer rate (an estimate before
that takes ``max_tokens`` as every answer's length, and a replica started on it may hold GPUs a waiting model needs);
once none waits, idle GPUs cost nothing and the estimate will do. Either way only the share of that time its queue still
holds work nobody has taken counts (``untaken``): a model in its tail (every answer asked, the longest still generating)
has nothing a new server could do.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ..errors import OrchestratorError, PlanError
from .plan import check_fits
from .policy import Job, Running, Slot, Slots, check_limits, decide, fill, may_start, priority_order

log = logging.getLogger(__name__)

T = TypeVar("T")


# ---------------------------------------------------------------------------------------------------- threads


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
    holds a GPU); whoever makes a job ready calls ``wake()``. ``replica`` and ``remaining`` (model key -> projected
    seconds left, None before there is one: then its estimate) turn replicas on (see the module docstring);
    ``untaken(key)``: the share of the model's remaining answers no server has taken yet (None: unknown);
    ``startup(key)``: its first server's measured start-up, what a replica's costs (None: the job's estimate).
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
        replica: Callable[[Job, tuple[int, ...]], object] | None = None,
        remaining: Callable[[str], float | None] | None = None,
        untaken: Callable[[str], float | None] | None = None,
        startup: Callable[[str], float | None] | None = None,
    ) -> None:
        self._gpus = tuple(sorted(set(gpus)))
        check_fits(jobs, self._gpus)
        check_limits(jobs, max_cpu_servers, max_api_concurrency)
        self._jobs, self._launch, self._clock, self._wait = list(jobs), launch, clock, wait_timeout
        self._ready = ready or (lambda job: True)
        self._replica, self._remaining = replica, remaining
        self._untaken = untaken or (lambda key: None)
        self._startup = startup or (lambda key: None)
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
        left = self._projected(state, now)
        for job, group in decide(self._startable(state), state.running, state.free, now, left):
            self._begin(state, Running(job, group, now))
        if self._replica is None:
            return
        ready = self._startable(state)
        left, todo = self._replica_view(state, now, waiting=bool(ready))
        startups = {key: s for key in left if (s := self._startup(key)) is not None}
        for job, group in fill(ready, state.running, state.free, now, left, todo, startups):
            self._begin(state, Running(job, group, now, replica=True))

    def _startable(self, state: _RunState) -> list[Job]:
        """The pending jobs that are ``ready`` and that ``jobs.may_start`` lets start (the jobs of ``results`` have
        ended)."""
        waiting = [j.key for j in state.pending]
        return [j for j in state.pending if may_start(j, state.results, waiting) and self._ready(j)]

    def _projected(self, state: _RunState, now: float, *, estimated: bool = True) -> dict[str, float]:
        """Seconds left per running model: the ``remaining`` projection, else (``estimated``) its estimate (start +
        weight); nothing without a projection."""
        if self._remaining is None:
            return {}
        left = {}
        for run in (r for r in state.running if not r.replica):  # a model whose first server ended has none
            value = self._remaining(run.job.key)
            if value is None and estimated:
                value = run.est_end(now) - now
            if value is not None:
                left[run.job.key] = value
        return left

    def _replica_view(self, state: _RunState, now: float, waiting: bool) -> tuple[dict[str, float], dict[str, float]]:
        """Per running model whose end is measured (``remaining``; unless a ready job is ``waiting``, its estimate
        will do): its seconds left, and the seconds of them its queue still holds (``untaken``'s share; all while
        unknown)."""
        left = self._projected(state, now, estimated=not waiting)
        todo = {}
        for key, seconds in left.items():
            share = self._untaken(key)
            todo[key] = seconds * (1.0 if share is None else max(0.0, min(1.0, share)))
        return left, todo

    def _begin(self, state: _RunState, run: Running) -> None:
        if not run.replica:
            state.pending.remove(run.job)
        state.running.append(run)
        state.free = state.free.take(run.job, run.gpus, run.replica)
        where = f"GPUs {list(run.gpus)}" if run.gpus else run.job.kind
        log.info("starting %s %s on %s", "a replica of model" if run.replica else "model", run.job.key, where)
        threading.Thread(target=self._work, args=(run,), name=f"job-{run.job.key}", daemon=False).start()

    def _work(self, run: Running) -> None:
        launch = self._replica if run.replica and self._replica is not None else self._launch
        try:
            value: object = launch(run.job, run.gpus)
        except BaseException as exc:  # noqa: BLE001 - one job's failure never stops the others
            log.error("model %s failed: %s: %s", run.job.key, type(exc).__name__, exc)
            value = exc
        with self._cond:
            self._finished.append(_Finished(run, value, self._clock()))
            self._cond.notify_all()

    def _reap(self, state: _RunState) -> None:
        for done in self._finished:
            run = done.run
            state.running.remove(run)
            state.free = state.free.give(run.job, run.gpus, run.replica)
            if not run.replica:  # a model's outcome is its first server's; a replica's end is logged by its job
                state.results[run.job.key] = done.value
            self.history.append(Slot(run.job, run.gpus, run.start, done.end, run.replica))
        self._finished.clear()


@dataclass
class _RunState:
    pending: list[Job]
    free: Slots
    running: list[Running] = field(default_factory=list)
    results: dict[str, object] = field(default_factory=dict)
