"""``run --backend ray``: the same run, with each managed model as a Ray actor on an existing Ray cluster.

The driver (this process) plans as a local run does, then starts one ``ray.node.ModelActor`` per managed model
(driven by a ``ray.driver.JobDriver``) that asks the cluster for the model's resources (``request_for``):
``num_gpus = tensor_parallel_size x pipeline_parallel_size``, or TP x PP units of ``--ray-resource NAME``, or one CPU
for a CPU server. Ray places it on a node that has them; the node runs the local lifecycle (``ray.node``) and streams
every answer back. The driver owns the results: it appends the answers to its own checkpoints (``SeriesStore``),
writes the manifest and the leaderboard exactly as a local run does, so no filesystem is shared. If an actor dies
(its node lost, its raylet killed), the driver recomputes what is missing from its checkpoint and starts a new actor,
at most ``retries`` times: an answer it already holds is never asked again. API models run in the driver, as in a
local run.

A model larger than one node (TP x PP above the GPUs of every node) is served by vLLM's own Ray executor:
a placement group of TP x PP GPU bundles is waited for, its first node hosts the actor, and the group is handed
back just before vLLM (``--distributed-executor-backend ray``) makes its own; see README for the limits.

The LLM judge's job (key ``JUDGE_KEY``) starts when ``scheduling.jobs.may_start`` lets it: once every model it audits
has ended, or alongside them once one has and every other job's actor holds its node; it audits each model as it
ends. Its audit runs in the driver and a managed judge's server in an actor (``ray.judge``).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..contract import ModelConfig
from ..errors import ConfigError, ResultsError, ServerDiedError
from ..job import ModelOutcome, RunContext, run_model, told
from ..judge.job import JudgeTask, run_judge
from ..judge.settings import JUDGE_KEY
from ..scheduling.jobs import may_start
from ..scheduling.plan import Placement
from .driver import GET_TIMEOUT_S, POLL_S, STOP_WAIT_S, JobDriver
from .judge import RayServe
from .node import ModelActor
from .plan import Request, check_fits, ray_placements, render_ray_plan, request_for

log = logging.getLogger(__name__)

DEFAULT_RETRIES = 2  # new actors per model after the first one died
PROBE_TIMEOUT_S = 5.0
INSTALL_HINT = "pip install 'deathmath-orchestrate[ray]'"


def probe(address: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """ConfigError unless the cluster's GCS port answers (``ray.init`` would wait minutes for a dead address)."""
    try:
        from ray._private.services import canonicalize_bootstrap_address

        resolved = canonicalize_bootstrap_address(address)
    except ConnectionError:
        resolved = None
    except Exception:  # noqa: BLE001 -- Ray's private helper changed: let ray.init judge the address
        return
    hint = "start one with `ray start --head` (see README) or pass its HOST:PORT"
    if resolved is None:
        raise ConfigError(f"--ray-address {address}: no running Ray cluster found; {hint}")
    host, _, port = resolved.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--ray-address {address}: nothing answers at {resolved} ({exc}); {hint}") from None


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError(f"--backend ray: the ray package is not installed; {INSTALL_HINT}") from None
    return ray


@dataclass
class RayBackend:
    """A connection to a Ray cluster and the model jobs run on it."""

    address: str
    resource: str | None = None
    retries: int = DEFAULT_RETRIES
    ray: Any = None
    requests: dict[str, Request] = field(default_factory=dict)
    judge: JudgeTask | None = None  # its model is among the planned ones (key JUDGE_KEY)
    _actor_class: Any = None
    _jobs: list[threading.Thread] = field(default_factory=list)
    _ended: dict[str, threading.Event] = field(default_factory=dict)  # per job: it returned (the judge waits)
    _placed: set[str] = field(default_factory=set)  # jobs whose actor got a node, or that need none

    @classmethod
    def connect(cls, address: str | None, resource: str | None = None, retries: int = DEFAULT_RETRIES) -> RayBackend:
        """Join the cluster at ``address`` (``auto``: the one started on this host); ConfigError if there is none."""
        ray = _import_ray()
        address = address or "auto"
        probe(address)
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=False, namespace="deathmath")
        except Exception as exc:  # noqa: BLE001 -- Ray raises several kinds; each means the same to the user
            raise ConfigError(
                f"--ray-address {address}: cannot join a Ray cluster ({str(exc).splitlines()[0]}); "
                "start one with `ray start --head` (see README) or pass its HOST:PORT"
            ) from None
        return cls(address=address, resource=resource, retries=retries, ray=ray)

    def nodes(self) -> list[dict[str, float]]:
        return [dict(n.get("Resources", {})) for n in self.ray.nodes() if n.get("Alive")]

    def describe(self) -> list[str]:
        """One line per live node (for the manifest)."""
        return [
            f"ray node {i}: " + ", ".join(f"{r.get(k, 0):g} {k}" for k in ("GPU", "CPU") + _custom(r))
            for i, r in enumerate(self.nodes())
        ]

    def reserve(self, logs_dir: Path) -> None:
        """Nothing to claim: the cluster owns its resources and each actor asks for its own."""

    def render(self, placements: Sequence[Placement]) -> str:
        return render_ray_plan(placements, self.requests, self.address)

    def gpu_name(self) -> str | None:
        return None  # the cluster's GPUs are the nodes' business: estimates say so

    def plan(
        self,
        models: Sequence[ModelConfig],
        weights: Mapping[str, float],
        startups: Mapping[str, float] | None = None,
        after: Mapping[str, Iterable[str]] | None = None,
    ) -> list[Placement]:
        """Placements and their requests; PlanError if a model can never be placed."""
        nodes = self.nodes()
        have_gpus = self.resource is None and any(n.get("GPU", 0) for n in nodes)
        placements = ray_placements(models, have_gpus, weights, after=after)
        per_node = max((n.get("GPU", 0.0) for n in nodes), default=0.0)
        self.requests = {p.job.key: request_for(p.job, self.resource, per_node) for p in placements if p.spec}
        check_fits(self.requests, nodes)
        return placements

    def run(self, ctx: RunContext, placements: Sequence[Placement], stop: threading.Event) -> dict[str, object]:
        """Run every job (managed: on the cluster; API: here) and return key -> ModelOutcome or exception."""
        results: dict[str, object] = {}
        threads = [
            threading.Thread(target=self._job, args=(ctx, p, stop, results), name=f"ray-{p.job.key}", daemon=True)
            for p in placements
        ]
        self._jobs = threads
        self._ended = {p.job.key: threading.Event() for p in placements}
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(POLL_S)
        return results

    def _job(self, ctx: RunContext, placement: Placement, stop: threading.Event, results: dict[str, object]) -> None:
        key = placement.job.key
        try:
            if key == JUDGE_KEY and self.judge is not None:
                results[key] = told(ctx, self._judge(ctx, placement))
            elif placement.spec is None:
                self.placed(key)
                results[key] = told(ctx, run_model(ctx, placement.job.model, None))
            else:
                results[key] = told(ctx, JobDriver(self, ctx, placement, self.requests[key]).run())
        except ResultsError as exc:  # the driver's disk: stop the run, as a local run does
            stop.set()
            results[key] = exc
        except BaseException as exc:  # reported as this model's failure
            log.exception("model %s: the Ray job failed", key)
            results[key] = exc
        finally:
            self._ended[key].set()

    def placed(self, key: str) -> None:
        """``key``'s job holds what it asked the cluster for (its actor is on a node), or needs nothing."""
        self._placed.add(key)

    def _ended_keys(self) -> set[str]:
        return {key for key, ended in self._ended.items() if ended.is_set()}

    def _judge(self, ctx: RunContext, placement: Placement) -> ModelOutcome:
        """The judge, once ``scheduling.jobs.may_start`` lets it (see the module docstring); it audits each model as
        it ends. A stop ends the model jobs too; the judge then asks nothing (``run_judge``)."""
        assert self.judge is not None
        while not ctx.stop.is_set():
            ended = self._ended_keys()
            waiting = [key for key in self._ended if key not in ended and key not in self._placed]
            if may_start(placement.job, ended, waiting):
                break
            ctx.stop.wait(POLL_S)
        serve = RayServe(self.ray, placement, self.requests.get(JUDGE_KEY, Request()))
        ended = self.judge.ended_of(self._ended_keys, self._ended)
        return run_judge(ctx, self.judge, placement.spec, serve=serve, ended=ended)

    def new_actor(self, request: Request, strategy: Any = None) -> Any:
        if self._actor_class is None:
            self._actor_class = self.ray.remote(ModelActor)
        options = dict(request.options(), max_restarts=0, max_concurrency=2)
        if strategy is not None:
            options["scheduling_strategy"] = strategy
        return self._actor_class.options(**options).remote()

    def kill(self, actor: Any) -> None:
        try:
            self.ray.kill(actor)
        except Exception:  # noqa: BLE001 -- already gone
            pass

    def multinode_strategy(self, gpus: int, stop: threading.Event) -> Any:
        """Wait until ``gpus`` GPU bundles fit, pin the actor to the first one's node, hand the bundles back."""
        from ray.util.placement_group import placement_group, placement_group_table, remove_placement_group
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        group = placement_group([{"GPU": 1.0}] * gpus, strategy="PACK")
        try:
            while not self.ray.wait([group.ready()], timeout=POLL_S)[0]:
                if stop.is_set():
                    raise ServerDiedError("stopped while waiting for GPUs")
            node = placement_group_table(group)["bundles_to_node_id"][0]
        finally:
            remove_placement_group(group)
        return NodeAffinitySchedulingStrategy(node_id=node, soft=False)

    def close(self) -> None:
        """Wait for the jobs (after a stop: until each actor has reported its server stopped, or was killed), then
        leave the cluster: leaving first would have Ray kill the actors in the middle of stopping their servers."""
        deadline = time.monotonic() + STOP_WAIT_S + GET_TIMEOUT_S
        for thread in self._jobs:
            thread.join(max(0.0, deadline - time.monotonic()))
        try:
            self.ray.shutdown()
        except Exception:  # leaving anyway
            log.debug("ray.shutdown failed", exc_info=True)


def _custom(resources: Mapping[str, float]) -> tuple[str, ...]:
    internal = ("GPU", "CPU", "memory", "object_store_memory")
    return tuple(k for k in resources if k not in internal and not k.startswith(("node:", "accelerator_type")))
