"""The pure plan: models x GPU pool -> placements (jobs, GPU groups, ports, server specs, estimated starts).

``plan`` does no I/O: it validates that every managed model fits the pool (``PlanError`` before anything starts),
orders the jobs with ``policy.priority_order`` and simulates the schedule with the same decision function the
threaded ``Scheduler`` uses, so ``--dry-run`` shows what the run will do. ``fits`` is the one home of GPU fit: the
plan, the threaded ``Scheduler`` and the Ray backend's requests ask it. Each managed model gets a distinct port
(its own ``vllm.port``, else the next candidate), which its server binds when it is free at start (else the next
free one: ``ports.PortRegistry``). The server specs come from ``serving.launch.server_spec``; the ``--dry-run`` text
is ``dryrun.render_plan``, the weights from earlier runs ``history.estimate_weights``.
"""

from __future__ import annotations

import math
import statistics
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from ..contract import ModelConfig, ServerSpec
from ..errors import PlanError, PortError
from ..serving.launch import server_spec
from .policy import Job, Slot, check_limits, priority_order, simulate

DEFAULT_WEIGHT = 1.0

__all__ = ["DEFAULT_WEIGHT", "Job", "Placement", "check_fits", "fits", "make_jobs", "plan"]


@dataclass(frozen=True)
class Placement:
    """One model in the plan: its GPUs (``()`` for CPU servers and API models), port (0 for API models), the
    simulated start (``wave_start``, in weight units) and the server to start (``None`` for API models)."""

    job: Job
    gpus: tuple[int, ...]
    port: int
    wave_start: float
    spec: ServerSpec | None
    end: float = 0.0  # the simulated end (with estimates: seconds from the run's start)
    replicas: tuple[Slot, ...] = ()  # the replicas the simulation started for it (GPUs, start, end)


def make_jobs(
    models: Sequence[ModelConfig],
    have_gpus: bool,
    weights: Mapping[str, float] | None = None,
    startups: Mapping[str, float] | None = None,
    after: Mapping[str, Iterable[str]] | None = None,
) -> list[Job]:
    """One job per model; managed models become CPU-server jobs when there is no GPU. A model without a weight
    (looked up by key, then model_name) gets the median of the known ones; ``startups`` the start-up part;
    ``after`` per key the keys of the jobs whose results it reads (``jobs.may_start``; keys of no model dropped)."""
    weights = _checked_weights(weights or {})
    fallback = statistics.median(weights.values()) if weights else DEFAULT_WEIGHT
    keys = {m.key for m in models}
    jobs = []
    for model in models:
        weight = weights.get(model.key, weights.get(model.model_name, fallback))
        needed = model.vllm.gpus_needed if model.vllm is not None and have_gpus else 0
        startup = min(weight, (startups or {}).get(model.key, 0.0))
        reads = frozenset((after or {}).get(model.key, ())) & keys - {model.key}
        cpu = model.managed and not have_gpus
        jobs.append(Job(model, needed, cpu=cpu, weight=weight, startup=startup, after=reads))
    return jobs


def _checked_weights(weights: Mapping[str, float]) -> dict[str, float]:
    for name, value in weights.items():
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise PlanError(f"weight of model '{name}' is {value!r}; weights are estimated durations in seconds > 0")
    return {k: float(v) for k, v in weights.items()}


def plan(
    models: Sequence[ModelConfig],
    gpus: Sequence[int],
    ports: Sequence[int] | Callable[[], int],
    *,
    max_cpu_servers: int = 1,
    python: str = sys.executable,
    weights: Mapping[str, float] | None = None,
    max_api_concurrency: int = 8,
    startups: Mapping[str, float] | None = None,
    after: Mapping[str, Iterable[str]] | None = None,
) -> list[Placement]:
    """Placements in simulated start order. ``ports`` is a sequence of candidate ports or a callable returning
    the next one; a model's own ``vllm.port`` wins. Raises ``PlanError`` if a model needs more GPUs than ``gpus``.
    With ``startups`` (estimates, not units) the simulation starts replicas as the run will (``policy.fill``);
    ``after``: per key the jobs whose results it reads (the judge's audited models: ``make_jobs``)."""
    pool = tuple(sorted(set(gpus)))
    jobs = make_jobs(models, bool(pool), weights, startups, after)
    check_fits(jobs, pool)
    check_limits(jobs, max_cpu_servers, max_api_concurrency)
    order = priority_order(jobs, pool, max_cpu_servers=max_cpu_servers, max_api_concurrency=max_api_concurrency)
    slots = simulate(
        order,
        pool,
        max_cpu_servers=max_cpu_servers,
        max_api_concurrency=max_api_concurrency,
        replicas=bool(startups) and bool(pool),
    )
    firsts = [s for s in slots if not s.replica]
    port_of = _assign_ports([s.job.model for s in firsts], ports)
    return [
        Placement(
            job=s.job,
            gpus=s.gpus,
            port=port_of.get(s.job.key, 0),
            wave_start=s.start,
            spec=server_spec(s.job.model, s.gpus, port_of.get(s.job.key, 0), python),
            end=s.end,
            replicas=tuple(r for r in slots if r.replica and r.job.key == s.job.key),
        )
        for s in firsts
    ]


def fits(gpus_needed: float, gpus: float) -> bool:
    """Whether a model needing ``gpus_needed`` GPUs (TP x PP; 0 for CPU servers and API models) fits in ``gpus``."""
    return gpus_needed <= gpus


def check_fits(jobs: Sequence[Job], pool: Sequence[int]) -> None:
    """``PlanError`` naming the first managed model of ``jobs`` that does not fit the GPU ``pool`` (``fits``)."""
    for job in jobs:
        vllm = job.model.vllm
        if vllm is None or fits(job.gpus_needed, len(pool)):
            continue
        raise PlanError(
            f"model '{job.key}' needs {job.gpus_needed} GPUs (tensor_parallel_size "
            f"{vllm.tensor_parallel_size} x pipeline_parallel_size {vllm.pipeline_parallel_size}) but the pool "
            f"has {len(pool)} (--gpus {','.join(map(str, pool))}); lower tensor_parallel_size or add GPUs"
        )


def _assign_ports(models: Sequence[ModelConfig], ports: Sequence[int] | Callable[[], int]) -> dict[str, int]:
    """A distinct port per managed model: its fixed ``vllm.port``, else the next candidate not fixed by another."""
    managed = [m for m in models if m.vllm is not None]
    fixed: dict[int, str] = {}
    for model in managed:
        port = model.vllm.port if model.vllm else None
        if port is not None and port in fixed:
            raise PlanError(
                f"models '{fixed[port]}' and '{model.key}' both set vllm.port {port}; "
                "give each a distinct port or leave it out"
            )
        if port is not None:
            fixed[port] = model.key
    candidates = _candidates(ports, set(fixed))
    return {
        m.key: (m.vllm.port if m.vllm and m.vllm.port is not None else _next_port(candidates, m.key)) for m in managed
    }


def _candidates(ports: Sequence[int] | Callable[[], int], taken: set[int]) -> Iterator[int]:
    source: Iterator[int] = iter(ports) if not callable(ports) else iter(ports, None)
    for port in source:
        if port not in taken:
            taken.add(port)
            yield port


def _next_port(candidates: Iterator[int], key: str) -> int:
    try:
        return next(candidates)
    except StopIteration:
        raise PortError(
            f"no port left for model '{key}': the candidate port range is exhausted; widen the range or free ports"
        ) from None
