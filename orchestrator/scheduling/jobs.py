"""The scheduling policy's values: jobs, free resources, running servers, finished slots, and GPU group choice.

Pure data and two pure functions (``choose_group``, ``may_start``); ``policy`` decides with them, ``runner`` and
``simulate`` keep them. A model may run on several servers at once (replicas, ``policy.fill``): each server is one
``Running`` (the first one's ``replica`` is False) and one ``Slot`` when it ends. A job that reads other jobs' results
(the LLM judge: the series of the models it audits) names them in ``after``; ``may_start`` is the one rule of when it
may start, which the threaded scheduler, the simulation and the Ray backend all ask.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from ..contract import ModelConfig

AUTO_SERVERS = 64  # ``replicas: auto``: as many servers as free GPUs allow (this bounds the count, never reached)


@dataclass(frozen=True)
class Job:
    """One model to run: ``gpus_needed`` > 0 for a GPU server, ``cpu`` for a CPU server, neither for an API model.

    ``weight`` is the estimated duration in seconds (1.0 when unknown: then only sizes order the jobs), start-up
    included; ``startup`` the part of it a server spends starting (what a replica costs before it helps);
    ``after`` the jobs whose results it reads (``may_start``).
    """

    model: ModelConfig
    gpus_needed: int
    cpu: bool = False
    weight: float = 1.0
    startup: float = 0.0
    after: frozenset[str] = frozenset()

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

    @property
    def max_servers(self) -> int:
        """How many servers this model may run at once: its ``replicas`` (None, ``auto``: no limit but the GPUs, or
        ``max_cpu_servers`` for a CPU server: a second CPU server is a replica too); one for API models."""
        if self.kind == "api":
            return 1
        return self.model.replicas if self.model.replicas is not None else AUTO_SERVERS


@dataclass(frozen=True)
class Slots:
    """Free resources: GPU indices, CPU-server slots, API-job slots."""

    gpus: frozenset[int]
    cpu: int
    api: int

    def take(self, job: Job, group: Iterable[int], replica: bool = False) -> Slots:
        """Less what one server of ``job`` holds (a CPU replica holds a CPU-server slot as its first server does)."""
        first = not replica
        return Slots(self.gpus - set(group), self.cpu - (job.kind == "cpu"), self.api - (first and job.kind == "api"))

    def give(self, job: Job, group: Iterable[int], replica: bool = False) -> Slots:
        first = not replica
        return Slots(self.gpus | set(group), self.cpu + (job.kind == "cpu"), self.api + (first and job.kind == "api"))


@dataclass(frozen=True)
class Running:
    """A started server of a job (``replica``: a model's second or later server); its estimated end is
    ``start + weight`` (never in the past) unless the caller's projection says otherwise."""

    job: Job
    gpus: tuple[int, ...]
    start: float
    replica: bool = False

    def est_end(self, now: float) -> float:
        return max(now, self.start + self.job.weight)


@dataclass(frozen=True)
class Slot:
    """One server's run: the GPUs it held from ``start`` to ``end``."""

    job: Job
    gpus: tuple[int, ...]
    start: float
    end: float
    replica: bool = False


def may_start(job: Job, ended: Collection[str], waiting: Collection[str]) -> bool:
    """Whether ``job`` may start now, given the jobs that have ``ended`` and those ``waiting`` to start (not yet
    started; ``job`` itself may be among them). A job with nothing in ``after`` may; one with ``after`` may once
    every job there has ended, or earlier, alongside them, once at least one has ended and it holds nothing another
    job could take: an API job (an API slot), or any job once no other waits to start (then its GPUs or CPU-server
    slot would stay idle, or go to replicas). It then takes the rest of ``after`` as they end (the judge's loop)."""
    if not job.after:
        return True
    done = job.after.intersection(ended)
    if done == job.after:
        return True
    return bool(done) and (job.kind == "api" or not set(waiting) - {job.key})


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
