"""The pure part of the Ray backend's plan: what each model job asks the cluster for, and whether it can fit.

No Ray import: unit-testable, and ``--dry-run`` shows it. See ``ray.backend`` for the rules. The server specs and their
commands come from ``serving.launch`` (``ray.node`` finishes them on the node with ``launch_spec`` and, for a model
over several nodes, ``multinode_spec``); the dry run shows the command built the same way, with the GPUs and the
port that the node picks marked as such.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..contract import ModelConfig, ServerSpec
from ..errors import PlanError
from ..scheduling.plan import Placement, fits, make_jobs
from ..scheduling.policy import Job
from ..serving.launch import launch_spec, multinode_spec, server_spec, shown_command


@dataclass(frozen=True)
class Request:
    """What one model job asks the cluster for."""

    num_gpus: float = 0.0
    num_cpus: float = 0.0
    resources: tuple[tuple[str, float], ...] = ()
    multinode: int = 0  # > 0: GPUs of a model spread over nodes by vLLM's Ray executor

    def options(self) -> dict[str, Any]:
        return {"num_gpus": self.num_gpus, "num_cpus": self.num_cpus, "resources": dict(self.resources)}

    def describe(self) -> str:
        if self.multinode:
            return f"{self.multinode} GPUs over several nodes (vLLM Ray executor)"
        parts = [f"{v:g} {k}" for k, v in (("GPU", self.num_gpus), ("CPU", self.num_cpus)) if v]
        return ", ".join(parts + [f"{v:g} {k}" for k, v in self.resources]) or "nothing"


def request_for(job: Job, resource: str | None, gpus_per_node: float) -> Request:
    """The resources of ``job``: see the module docstring. ``gpus_per_node`` is the largest node's GPU count."""
    if resource:
        return Request(resources=((resource, float(job.size)),))
    if not fits(job.gpus_needed, gpus_per_node):
        return Request(multinode=job.gpus_needed)
    if job.gpus_needed:
        return Request(num_gpus=float(job.gpus_needed))
    return Request(num_cpus=1.0)


def check_fits(requests: Mapping[str, Request], nodes: Sequence[Mapping[str, float]]) -> None:
    """``PlanError`` for a job that no live node (or, multi-node, the whole cluster) could ever hold."""
    total_gpus = sum(n.get("GPU", 0.0) for n in nodes)
    for key, req in requests.items():
        if req.multinode:
            if not fits(req.multinode, total_gpus):
                raise PlanError(
                    f"model '{key}' needs {req.multinode} GPUs but the Ray cluster has {total_gpus:g}; "
                    "add nodes or lower tensor_parallel_size x pipeline_parallel_size"
                )
            continue
        wanted = {"GPU": req.num_gpus, "CPU": req.num_cpus, **dict(req.resources)}
        if not any(all(n.get(k, 0.0) >= v for k, v in wanted.items() if v) for n in nodes):
            raise PlanError(
                f"model '{key}' asks for {req.describe()} but no node of the Ray cluster offers that; "
                "start nodes with those resources (`ray start --num-gpus N` or --resources) "
                "or check --ray-resource"
            )


def ray_placements(
    models: Sequence[ModelConfig],
    have_gpus: bool,
    weights: Mapping[str, float],
    python: str = sys.executable,
    after: Mapping[str, Iterable[str]] | None = None,
) -> list[Placement]:
    """One placement per model, longest (by weight) and largest first; GPUs are chosen on the node. ``after``: per
    key the jobs whose results it reads (``plan.make_jobs``)."""
    jobs = sorted(make_jobs(models, have_gpus, weights, after=after), key=lambda j: (-j.size, -j.weight))
    return [
        Placement(job=j, gpus=(), port=0, wave_start=0.0, spec=server_spec(j.model, (), _port(j), python)) for j in jobs
    ]


def _port(job: Job) -> int:
    """A model's own ``vllm.port``, else 0: its node picks a free one."""
    vllm = job.model.vllm
    return vllm.port if vllm is not None and vllm.port is not None else 0


def shown_spec(placement: Placement, req: Request) -> ServerSpec | None:
    """The server as its node will build it, for the dry run: GPUs numbered 0.. as stand-ins for Ray's choice."""
    spec = launch_spec(placement.spec, tuple(range(placement.job.gpus_needed)))
    return multinode_spec(spec, "<cluster>") if spec is not None and req.multinode else spec


def render_ray_plan(placements: Sequence[Placement], requests: Mapping[str, Request], cluster: str) -> str:
    """The ``--dry-run`` text of a Ray run: per model what it asks the cluster for and its command."""
    lines = [f"plan: {len(placements)} model(s) on the Ray cluster {cluster}"]
    for p in placements:
        req = requests.get(p.job.key)
        lines.append(f"  {p.job.key}: " + (f"Ray actor asking for {req.describe()}" if req else "API model (driver)"))
        spec = shown_spec(p, req) if req is not None else None
        if spec is not None:
            lines.append("    " + shlex.join(shown_command(spec)))
    return "\n".join(lines)
