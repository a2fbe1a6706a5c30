"""The pure scheduling policy: which jobs start where and when, with no threads, clocks or I/O.

The decision of what to start is one pure function, ``decide``, shared by the threaded ``runner.Scheduler`` and by
the discrete-event ``simulate`` (used by the plan's ``--dry-run`` timeline and ``benchmarks/scheduling.py``); what
to start besides, on GPUs left idle, is ``fill`` (replicas), shared the same way.

Policy: greedy list scheduling in priority order with one reservation (EASY backfilling). At every free-up the
pending jobs are scanned in priority order and each one that fits starts. The first GPU job that does not fit
reserves the GPU group it will get when running jobs end (their estimated ends: ``start + weight``, or the caller's
projection ``remaining``); a later job may start on that group only if its own estimate ends before then. So a big
job is never starved by a stream of small ones: it waits for the jobs already running on its group plus backfills
that were estimated to finish first, and once an estimate is overrun nothing new starts on its group.

Replicas (``fill``): GPUs that no waiting job can take now get another server of a running model (its weights are
on disk), the model whose projected end is latest first. A model's servers share its remaining work and all end
when it is done; only the work no server has taken yet (``untaken``: its queue, not its answers in flight) is work
for a replica. With ``s`` servers, ``U`` seconds of that work and a start-up of ``u``, a replica is ready when
``U - u`` is left and shares it with the others: it saves ``(U - u) / (s + 1)``, so one that would find the queue
empty is never started. While jobs are ready and wait for GPUs, a replica must save at least ``u``; once none
does, idle GPUs cost nothing and any saving will do. On a reserved group a replica starts only if its model then
ends before the reservation's time. A CPU server's model gets a replica on a free CPU-server slot the same way
(``max_cpu_servers`` counts every CPU server). ``replicas`` per model bounds its servers (``Job.max_servers``).

``priority_order`` picks the priority list: larger then slower jobs first, unless a simulation with the weights
(estimated durations) finds a shorter makespan with another order (bounded local search). Whether a job fits the
GPU pool at all is the planner's decision (``plan.check_fits``), made before any of this runs.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ..errors import PlanError
from .jobs import Job, Running, Slot, Slots, choose_group, may_start

SEARCH_BUDGET = 400  # simulations the priority search may run
_EPS = 1e-9

__all__ = [
    "ORDERINGS",
    "Job",
    "Running",
    "Slot",
    "Slots",
    "check_limits",
    "choose_group",
    "decide",
    "fill",
    "makespan",
    "may_start",
    "priority_order",
    "simulate",
]


def decide(
    pending: Sequence[Job],
    running: Sequence[Running],
    free: Slots,
    now: float,
    remaining: Mapping[str, float] | None = None,
) -> list[tuple[Job, tuple[int, ...]]]:
    """The jobs to start at ``now`` (``pending`` is in priority order), each with its GPU group. ``remaining``:
    the projected seconds until each running model ends (default: its estimate, ``start + weight``). Pure."""
    decision = _Decision(free, running, now, remaining or {})
    for job in pending:
        decision.consider(job)
    return decision.starts


def fill(
    pending: Sequence[Job],
    running: Sequence[Running],
    free: Slots,
    now: float,
    remaining: Mapping[str, float],
    untaken: Mapping[str, float] | None = None,
    startups: Mapping[str, float] | None = None,
) -> list[tuple[Job, tuple[int, ...]]]:
    """The replicas to start at ``now`` on GPUs that ``decide`` left free (call it after starting what ``decide``
    chose): per replica its model's job and GPU group. ``remaining``: the projected seconds until each running
    model ends with its servers now (a model without one gets none); ``untaken``: the seconds of that which no
    server has taken yet (its queue; default: all of it), the only work a replica can get; ``startups``: a replica's
    start-up per model (default: the job's). While ``pending`` (the jobs ready to start) is not empty, a replica
    must gain its start-up, else any gain will do. See the module docstring. Pure."""
    decision = _Decision(free, running, now, remaining)
    for job in pending:  # the reservation of the first blocked job
        decision.consider(job)
    if decision.starts:
        return []  # a waiting job fits: decide's to start first
    served = [r for r in running if r.job.kind in ("gpu", "cpu")]
    servers = Counter(r.job.key for r in served)
    left = {k: v for k, v in remaining.items() if k in servers}
    todo = {k: min(v, (untaken or {}).get(k, v)) for k, v in left.items()}
    jobs = {r.job.key: r.job for r in served}
    starts: list[tuple[Job, tuple[int, ...]]] = []
    done: set[str] = set()
    while options := [k for k in left if k not in done and servers[k] < jobs[k].max_servers]:
        key = max(options, key=lambda k: left[k])  # the model that ends last
        job = jobs[key]
        startup = (startups or {}).get(key, job.startup)
        gain = _gain(todo[key], servers[key], startup)
        pays = gain > 0 and (not pending or gain >= startup)
        group = decision.replica_group(job, now + left[key] - gain) if pays else None
        if group is None:
            done.add(key)
            continue
        decision.gpus -= set(group)
        decision.cpu -= job.kind == "cpu"
        starts.append((job, group))
        servers[key] += 1
        left[key], todo[key] = left[key] - gain, todo[key] - gain
    return starts


def _gain(untaken: float, servers: int, startup: float) -> float:
    """Seconds one more server saves a model whose ``servers`` would take ``untaken`` seconds to empty its queue: it
    helps once started, with the queue left then (``servers`` x (untaken - startup) seconds of one server's work,
    now shared by one more)."""
    return max(0.0, untaken - startup) / (servers + 1)


class _Decision:
    """One pass over the pending jobs: greedy in priority order, one EASY reservation for the first blocked job."""

    def __init__(self, free: Slots, running: Sequence[Running], now: float, remaining: Mapping[str, float]) -> None:
        self.gpus, self.cpu, self.api = set(free.gpus), free.cpu, free.api
        self.busy = [r for r in running if r.gpus]
        self.now, self.remaining = now, remaining
        self.reservation: tuple[float, frozenset[int]] | None = None
        self.starts: list[tuple[Job, tuple[int, ...]]] = []

    def end_of(self, run: Running) -> float:
        left = self.remaining.get(run.job.key)
        return self.now + left if left is not None else run.est_end(self.now)

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
        return self._group(job.gpus_needed, self.now + job.weight)

    def replica_group(self, job: Job, end: float) -> tuple[int, ...] | None:
        """A group for a replica of ``job`` whose model would then end at ``end`` (``()`` for a CPU server while a
        CPU-server slot is free), or None."""
        if job.kind == "cpu":
            return () if self.cpu > 0 else None
        return self._group(job.gpus_needed, end)

    def _group(self, k: int, end: float) -> tuple[int, ...] | None:
        """``k`` free GPUs for something ending at ``end``: outside the reservation, or inside if it ends first."""
        if self.reservation is None:
            return choose_group(self.gpus, k)
        shadow, reserved = self.reservation
        outside = choose_group(self.gpus - reserved, k)
        if outside is not None or end > shadow + _EPS:
            return outside
        return choose_group(self.gpus, k)

    def _reserve(self, job: Job) -> tuple[float, frozenset[int]] | None:
        """When and where ``job`` will fit as running jobs end; it prefers GPUs busy now, leaving free ones."""
        avail, free_now = set(self.gpus), frozenset(self.gpus)
        for run in sorted(self.busy, key=self.end_of):
            avail |= set(run.gpus)
            group = choose_group(avail, job.gpus_needed, avoid=free_now)
            if group is not None:
                return self.end_of(run), frozenset(group)
        return None  # larger than the pool: the plan rejects such a job before anything starts


# ---------------------------------------------------------------------------------------------------- simulation


@dataclass
class _Model:
    """A model in the simulation: its work left (seconds of one server's generation) and its servers."""

    work: float
    servers: list[tuple[Running, float]] = field(default_factory=list)  # (server, when it is ready to generate)

    def generating(self, now: float) -> int:
        return sum(ready <= now + _EPS for _, ready in self.servers)


def simulate(
    order: Sequence[Job],
    gpus: Iterable[int],
    *,
    max_cpu_servers: int = 1,
    max_api_concurrency: int = 8,
    durations: Mapping[str, float] | None = None,
    replicas: bool = False,
) -> list[Slot]:
    """Discrete-event run of ``decide``: jobs take ``durations[key]`` (default: their weight) on one server, ``startup``
    of it starting, a job with ``after`` once ``jobs.may_start`` lets it; returns one slot per server in start order
    (ties in priority order). Decisions see only the weights, so durations unlike the weights model estimation error.
    With ``replicas`` (the live run), ``fill`` starts replicas too and decisions see a model's true remaining time once
    it generates (the live projection from its own rate), its estimate before; like the live run, ``fill`` sees only
    generating models while any job waits, and every model once none does."""
    actual = {j.key: float((durations or {}).get(j.key, j.weight)) for j in order}
    free = Slots(frozenset(gpus), max_cpu_servers, max_api_concurrency)
    pending, models, slots, now = list(order), dict[str, _Model](), list[Slot](), 0.0
    while pending or models:
        running = [r for m in models.values() for r, _ in m.servers]
        seen = {k: _seen_left(m, now) for k, m in models.items()} if replicas else {}
        ready = _startable(pending, slots)
        starts = [(j, g, False) for j, g in decide(ready, running, free, now, seen)]
        for job, _group, _ in starts:
            pending.remove(job)
            models[job.key] = _Model(max(0.0, actual[job.key] - job.startup))
        for job, group, replica in starts:
            models[job.key].servers.append((Running(job, group, now, replica), now + job.startup))
            free = free.take(job, group, replica)
        if replicas:
            running = [r for m in models.values() for r, _ in m.servers]
            seen = {k: _seen_left(m, now) for k, m in models.items() if m.generating(now) or not pending}
            for job, group in fill(_startable(pending, slots), running, free, now, seen):
                models[job.key].servers.append((Running(job, group, now, True), now + job.startup))
                free = free.take(job, group, True)
        if not models:
            raise PlanError(
                f"model '{pending[0].key}' can never start on GPUs {sorted(free.gpus)}; "
                "lower its tensor_parallel_size or add GPUs"
            )
        now, free = _advance(models, now, free, slots)
    rank = {job.key: i for i, job in enumerate(order)}
    return sorted(slots, key=lambda s: (s.start, rank[s.job.key], s.replica))


def _startable(pending: Sequence[Job], slots: Sequence[Slot]) -> list[Job]:
    """The pending jobs that ``jobs.may_start`` lets start, the models of ``slots`` having ended."""
    ended, waiting = {s.job.key for s in slots}, [j.key for j in pending]
    return [j for j in pending if may_start(j, ended, waiting)]


def _seen_left(model: _Model, now: float) -> float:
    """What the policy sees of a model's remaining time: its estimate until it generates, then the truth."""
    first, ready = model.servers[0]
    if ready > now + _EPS:
        return ready - now + max(0.0, first.job.weight - first.job.startup)
    return model.work / max(1, model.generating(now))


def _advance(models: dict[str, _Model], now: float, free: Slots, slots: list[Slot]) -> tuple[float, Slots]:
    """Advance to the next event (a server ready, a model done); a model done ends all its servers."""
    events = [ready for m in models.values() for _, ready in m.servers if ready > now + _EPS]
    events += [now + m.work / m.generating(now) for m in models.values() if m.generating(now)]
    later = min(events)
    for key, model in list(models.items()):
        model.work -= model.generating(now) * (later - now)
        if model.work <= _EPS * max(1.0, later) and model.generating(later):
            for run, _ in model.servers:
                free = free.give(run.job, run.gpus, run.replica)
                slots.append(Slot(run.job, run.gpus, run.start, later, run.replica))
            del models[key]
    return later, free


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

    def score(order: Sequence[Job]) -> tuple[float, float]:
        slots = simulate(order, pool, max_cpu_servers=max_cpu_servers, max_api_concurrency=max_api_concurrency)
        return makespan(slots), makespan(s for s in slots if s.gpus)

    best, best_score = candidates[0], score(candidates[0])
    for candidate in candidates[1:]:
        if _better(value := score(candidate), best_score):
            best, best_score = candidate, value
    return tuple(_improve(best, best_score, score, budget - len(candidates)))


def _improve(
    order: list[Job], best: tuple[float, float], score: Callable[[Sequence[Job]], tuple[float, float]], budget: int
) -> list[Job]:
    """First-improvement local search over single moves (take one job, insert it elsewhere), ``budget`` bounded;
    a score is (makespan, the GPU jobs' makespan): an API model estimated longer than every GPU job leaves the
    order of the GPU jobs to the second."""
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
            if _better(value, best):
                order, best, improved = trial, value, True
                break
    return order


def _better(value: tuple[float, float], best: tuple[float, float]) -> bool:
    """``value`` is shorter than ``best``: in makespan, or equal in it and shorter in the GPU jobs' makespan."""
    if value[0] < best[0] - _EPS:
        return True
    return value[0] <= best[0] + _EPS and value[1] < best[1] - _EPS


def check_limits(jobs: Sequence[Job], max_cpu_servers: int, max_api_concurrency: int) -> None:
    """``PlanError`` for a zero limit that would block jobs (CPU servers, API models)."""
    if max_cpu_servers < 1 and any(j.kind == "cpu" for j in jobs):
        raise PlanError(f"--max-cpu-servers {max_cpu_servers}: must be at least 1 to serve models on the CPU")
    if max_api_concurrency < 1 and any(j.kind == "api" for j in jobs):
        raise PlanError(f"max_api_concurrency {max_api_concurrency}: must be at least 1 to run API models")
