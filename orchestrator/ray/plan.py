"""The pure part of the Ray backend's plan: what each model job asks the cluster for, and whether it can fit.

No Ray import: unit-testable, and ``--dry-run`` shows it. See ``raybackend`` for the rules.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..contract import ModelConfig, ServerSpec
from ..errors import PlanError
from ..scheduling.plan import Placement, fits, make_jobs, redact_command, server_spec
from ..scheduling.policy import Job

RAY_EXECUTOR = ("--distributed-executor-backend", "ray")


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
    models: Sequence[ModelConfig], have_gpus: bool, weights: Mapping[str, float], python: str = sys.executable
) -> list[Placement]:
    """One placement per model, longest (by weight) and largest first; GPUs are chosen on the node."""
    jobs = sorted(make_jobs(models, have_gpus, weights), key=lambda j: (-j.size, -j.weight))
    return [Placement(job=j, gpus=(), port=0, wave_start=0.0, spec=server_spec(j.model, (), 0, python)) for j in jobs]


def multinode_spec(spec: ServerSpec, address: str) -> ServerSpec:
    """``spec`` served through vLLM's own Ray executor on the cluster at ``address`` (workers on several nodes)."""
    args = spec.args if "--distributed-executor-backend" in spec.args else spec.args + RAY_EXECUTOR
    return dataclasses.replace(spec, args=args, env=spec.env + (("RAY_ADDRESS", address),))


def render_ray_plan(placements: Sequence[Placement], requests: Mapping[str, Request], cluster: str) -> str:
    """The ``--dry-run`` text of a Ray run: per model what it asks the cluster for and its command."""
    lines = [f"plan: {len(placements)} model(s) on the Ray cluster {cluster}"]
    for p in placements:
        req = requests.get(p.job.key)
        lines.append(f"  {p.job.key}: " + (f"Ray actor asking for {req.describe()}" if req else "API model (driver)"))
        if p.spec is not None and req is not None:
            spec = multinode_spec(p.spec, "<cluster>") if req.multinode else p.spec
            lines.append("    " + " ".join(redact_command(spec.command())))
    return "\n".join(lines)
