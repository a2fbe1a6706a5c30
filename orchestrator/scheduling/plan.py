"""The pure plan: models x GPU pool -> placements (jobs, GPU groups, ports, server specs, estimated starts).

``plan`` does no I/O: it validates that every managed model fits the pool (``PlanError`` before anything starts),
orders the jobs with ``scheduler.priority_order`` and simulates the schedule with the same decision function the
threaded ``Scheduler`` uses, so ``--dry-run`` shows what the run will do. ``render_plan`` is the ``--dry-run`` text.
"""

from __future__ import annotations

import dataclasses
import math
import os
import secrets
import shlex
import statistics
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from ..contract import LOCAL_HOSTS, ModelConfig, SeriesScore, ServerSpec, is_secret_name, public_url, redact_command
from ..errors import PlanError, PortError
from ..serving.gpus import gpu_env
from .runner import Job, check_jobs, priority_order, simulate

DEFAULT_WEIGHT = 1.0

__all__ = [
    "Job",
    "Placement",
    "make_jobs",
    "plan",
    "render_plan",
    "estimate_weights",
    "redact_command",
    "server_spec",
    "launch_spec",
]


@dataclass(frozen=True)
class Placement:
    """One model in the plan: its GPUs (``()`` for CPU servers and API models), port (0 for API models), the
    simulated start (``wave_start``, in weight units) and the server to start (``None`` for API models)."""

    job: Job
    gpus: tuple[int, ...]
    port: int
    wave_start: float
    spec: ServerSpec | None


def make_jobs(models: Sequence[ModelConfig], have_gpus: bool, weights: Mapping[str, float] | None = None) -> list[Job]:
    """One job per model; managed models become CPU-server jobs when there is no GPU. A model without a weight
    (looked up by key, then model_name) gets the median of the known ones."""
    weights = _checked_weights(weights or {})
    fallback = statistics.median(weights.values()) if weights else DEFAULT_WEIGHT
    jobs = []
    for model in models:
        weight = weights.get(model.key, weights.get(model.model_name, fallback))
        needed = model.vllm.gpus_needed if model.vllm is not None and have_gpus else 0
        jobs.append(Job(model=model, gpus_needed=needed, cpu=model.managed and not have_gpus, weight=weight))
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
) -> list[Placement]:
    """Placements in simulated start order. ``ports`` is a sequence of candidate ports or a callable returning
    the next one; a model's own ``vllm.port`` wins. Raises ``PlanError`` if a model needs more GPUs than ``gpus``."""
    pool = tuple(sorted(set(gpus)))
    jobs = make_jobs(models, bool(pool), weights)
    for job in jobs:
        _check_fits(job, pool)
    check_jobs(jobs, pool, max_cpu_servers, max_api_concurrency)
    order = priority_order(jobs, pool, max_cpu_servers=max_cpu_servers, max_api_concurrency=max_api_concurrency)
    slots = simulate(order, pool, max_cpu_servers=max_cpu_servers, max_api_concurrency=max_api_concurrency)
    port_of = _assign_ports([s.job.model for s in slots], ports)
    return [
        Placement(
            job=s.job,
            gpus=s.gpus,
            port=port_of.get(s.job.key, 0),
            wave_start=s.start,
            spec=server_spec(s.job.model, s.gpus, port_of.get(s.job.key, 0), python),
        )
        for s in slots
    ]


def _check_fits(job: Job, pool: tuple[int, ...]) -> None:
    vllm = job.model.vllm
    if vllm is None or job.gpus_needed <= len(pool):
        return
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
    source: Iterator[int] = iter(ports) if not callable(ports) else iter(ports, None)  # type: ignore[arg-type]
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


# vLLM's CPU build kills its engine when a seeded request's prefill is chunked (its CPU torch.Generator cannot
# rewind: "CPU Generator does not use offset"); without chunked prefill every prompt is prefilled whole.
CPU_SEEDED_ARGS = ("--no-enable-chunked-prefill",)


def seeded_cpu_args(model: ModelConfig, gpus: tuple[int, ...]) -> tuple[str, ...]:
    """``CPU_SEEDED_ARGS`` for a seeded model on a CPU server, unless its args set chunked prefill themselves."""
    args = model.vllm.args if model.vllm is not None else ()
    if gpus or model.sampling.seed is None or any("chunked-prefill" in a for a in args):
        return ()
    return CPU_SEEDED_ARGS


def server_spec(model: ModelConfig, gpus: tuple[int, ...], port: int, python: str) -> ServerSpec | None:
    """The server of a managed model as planned (``None`` for an API model): ``launch_spec`` finishes it."""
    v = model.vllm
    if v is None:
        return None
    return ServerSpec(
        name=model.key,
        model=v.model,
        served_name=model.model_name,
        gpus=gpus,
        port=port,
        host=v.host,
        tensor_parallel_size=v.tensor_parallel_size,
        pipeline_parallel_size=v.pipeline_parallel_size,
        max_model_len=v.max_model_len,
        gpu_memory_utilization=v.gpu_memory_utilization,
        args=tuple(v.args) + seeded_cpu_args(model, gpus),
        env=tuple(v.env),
        python=v.python or python,
        startup_timeout=v.startup_timeout,
        api_server_count=v.api_server_count,
        parallel=engine_batch(model),
        queue_ahead=v.queue_ahead,
    )


def engine_batch(model: ModelConfig) -> int:
    """The engine's batch in sequences: ``parallel`` requests, each asking ``samples`` choices (``n``) of a
    managed server (``client/series.py`` sends a problem's consecutive samples in one request)."""
    return model.parallel * model.samples


def launch_spec(placement: Placement, gpus: tuple[int, ...], cores: Sequence[int] | None = None) -> ServerSpec | None:
    """The planned server finished at launch: the GPUs it got, its fixed port (else any), a generated key when it
    listens beyond this host, and the placement environment (``placement_env``). ``None`` for an API model."""
    if placement.spec is None:
        return None
    vllm = placement.job.model.vllm
    spec = dataclasses.replace(placement.spec, gpus=tuple(gpus), port=(vllm.port if vllm else None) or 0)
    if spec.host not in LOCAL_HOSTS and not spec.api_key:
        spec = dataclasses.replace(spec, api_key=secrets.token_urlsafe(32))  # reachable from outside: require a key
    return dataclasses.replace(spec, env=tuple(placement_env(spec, cores).items()) + spec.env)


def placement_env(spec: ServerSpec, cores: Sequence[int] | None = None) -> dict[str, str]:
    """GPU servers: CUDA numbering as nvidia-smi's. CPU servers with TP > 1: one core range (of ``cores``, default
    this process's affinity) per worker, unless the model's own env binds them."""
    if spec.gpus:
        return {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    workers = spec.tensor_parallel_size * spec.pipeline_parallel_size
    if workers == 1 or any(k == "VLLM_CPU_OMP_THREADS_BIND" for k, _ in spec.env):
        return {}
    cores = sorted(os.sched_getaffinity(0) if cores is None else cores)
    share = max(1, len(cores) // workers)
    ranges = [cores[i * share : (i + 1) * share] or cores[-1:] for i in range(workers)]
    return {"VLLM_CPU_OMP_THREADS_BIND": "|".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in ranges)}


# ---------------------------------------------------------------------------------------------------- rendering


def render_plan(placements: Sequence[Placement]) -> str:
    """The ``--dry-run`` text: per model its GPUs, port, estimated start and the exact command (secrets masked)."""
    timed = any(p.job.weight != DEFAULT_WEIGHT for p in placements)
    pool = sorted({g for p in placements for g in p.gpus})
    head = (
        f"plan: {len(placements)} model(s); GPU pool: {','.join(map(str, pool)) or 'none (CPU servers)'}; "
        f"start = {'estimated start from the weights' if timed else 'wave (one unit per job: durations unknown)'}"
    )
    lines = [head]
    for p in placements:
        lines.append(f"  {p.job.key}: {_where(p)}  start {_when(p.wave_start, timed)}")
        if p.spec is not None:
            lines.append("    " + shlex.join(_env_words(p.spec) + redact_command(p.spec.command())))
    return "\n".join(lines)


def _where(p: Placement) -> str:
    if p.spec is None:
        bases = ", ".join(public_url(e.api_base) for e in p.job.model.endpoints) or "no endpoint"
        return f"API model ({bases})"
    return f"{'GPUs ' + ','.join(map(str, p.gpus)) if p.gpus else 'CPU server'}  port {p.port}"


def _when(start: float, timed: bool) -> str:
    if not timed:
        return f"wave {int(start) + 1}"
    minutes, seconds = divmod(int(round(start)), 60)
    return f"+{minutes // 60}h{minutes % 60:02d}m{seconds:02d}s"


def _env_words(spec: ServerSpec) -> list[str]:
    env = dict(spec.env)
    if spec.gpus:
        env.update(gpu_env(spec.gpus))
    return [f"{k}={'***' if is_secret_name(k) else v}" for k, v in env.items()]


# ---------------------------------------------------------------------------------------------------- weights


def estimate_weights(scores: Sequence[SeriesScore]) -> dict[str, float]:
    """Estimated seconds per model from earlier series (the last one per dataset, extrapolated to the full
    dataset when incomplete): pass it as ``plan(..., weights=...)`` so long jobs start first on later runs."""
    last: dict[tuple[str, str], SeriesScore] = {}
    for score in scores:
        last[(score.model, score.dataset)] = score
    totals: dict[str, float] = {}
    for (model, _), score in last.items():
        done = min(score.answered, score.total)
        if done > 0 and score.eval_seconds > 0:
            totals[model] = totals.get(model, 0.0) + score.eval_seconds * score.total / done
    return totals
