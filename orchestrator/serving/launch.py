"""One launch: everything that decides how a vLLM server is started -- its spec, its argv and its environment.

Every path that starts a server builds it here, and ``--dry-run`` prints what these functions build:

* ``server_spec(model, gpus, port, python)``: a managed model's server as planned (``scheduling.plan`` for the local
  backend, ``ray.plan`` for the Ray backend); ``max_num_seqs`` is ``engine_batch(model)``.
* ``launch_spec(spec, gpus)``: that server finished at launch: the GPUs it got, a generated key when it listens
  beyond this host, and the placement environment (``placement_env``). The local launcher, the Ray node and the
  dry run call it.
* ``offline_spec(spec, path)``: a hub model served from its downloaded snapshot, offline (``hub.prefetch``).
* ``multinode_spec(spec, address)``: served through vLLM's own Ray executor on several nodes (``ray.node``).
* ``command(spec)``: the exact argv (no secrets: the key travels in the environment), ``--reasoning-parser`` included
  (``reasoning_parser``: ``auto`` picked from the model's folder, or the hub model's snapshot once it is served
  from it) and, for the engine's own thinking budget, its ``--reasoning-config``.
* ``environment(spec, run_id, server_id, vllm_port, api_key)``: the exact environment of the server process:
  ``default_env`` (and ``cpu_server_env`` for a CPU server) < the inherited environment < ``pinned_env(spec)`` (the
  spec's own env and ``CUDA_VISIBLE_DEVICES``) < the run markers ``RUN_ENV`` / ``SERVER_ENV`` and ``VLLM_PORT``.
* ``shown_words(spec)``: the words ``--dry-run`` prints for a server: ``pinned_env(spec)`` and ``command(spec)``,
  secrets masked; a spawned server's argv equals that command word for word.

The port: ``spec.port`` is the planned one (``scheduling.plan``); ``VllmServer.start`` reserves it when it is free
(``ports.PortRegistry``), else the next free port, and the argv carries the port it got. A spec with port 0 (a Ray
job: its node picks) shows ``ANY_PORT`` in place of the number.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..contract import LOCAL_HOSTS, ModelConfig, ServerSpec, is_secret_name, redact_command
from ..reasoning.auto import pick_parser, tags_for
from ..reasoning.forced import engine_launch_args
from ..reasoning.settings import AUTO
from . import apiserver, queueahead

RUN_ENV = "DEATHMATH_RUN_ID"  # run marker every process of a server inherits (``records.belongs`` reads it back)
SERVER_ENV = "DEATHMATH_SERVER_ID"
VISIBLE_GPUS = "CUDA_VISIBLE_DEVICES"
ANY_PORT = "<free-port>"  # what a dry run shows for a port that is chosen when the server starts
# vLLM's CPU build kills its engine when a seeded request's prefill is chunked (its CPU torch.Generator cannot
# rewind: "CPU Generator does not use offset"); without chunked prefill every prompt is prefilled whole.
CPU_SEEDED_ARGS = ("--no-enable-chunked-prefill",)
RAY_EXECUTOR = ("--distributed-executor-backend", "ray")
HUB_OFFLINE = "HF_HUB_OFFLINE"


# ---------------------------------------------------------------------------------------------------- specs


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
        max_num_seqs=engine_batch(model),
        queue_ahead=v.queue_ahead,
        reasoning_parser=model.reasoning.parser,
        engine_budget=model.reasoning.budget_by == "engine",
    )


def seeded_cpu_args(model: ModelConfig, gpus: tuple[int, ...]) -> tuple[str, ...]:
    """``CPU_SEEDED_ARGS`` for a seeded model on a CPU server, unless its args set chunked prefill themselves."""
    args = model.vllm.args if model.vllm is not None else ()
    if gpus or model.sampling.seed is None or any("chunked-prefill" in a for a in args):
        return ()
    return CPU_SEEDED_ARGS


def engine_batch(model: ModelConfig) -> int:
    """The engine's batch in sequences: ``parallel`` requests, each asking ``samples`` choices (``n``) of a
    managed server (``client/series.py`` sends a problem's consecutive samples in one request)."""
    return model.parallel * model.samples


def launch_spec(
    spec: ServerSpec | None, gpus: tuple[int, ...], cores: Sequence[int] | None = None
) -> ServerSpec | None:
    """The planned server finished at launch: the GPUs it got, a generated key when it listens beyond this host, and
    the placement environment (``placement_env``) before the spec's own. ``None`` for an API model."""
    if spec is None:
        return None
    spec = dataclasses.replace(spec, gpus=tuple(gpus))
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


def offline_spec(spec: ServerSpec, path: Path | str) -> ServerSpec:
    """``spec`` serving the downloaded snapshot at ``path`` with the hub offline (same served name)."""
    env = tuple(kv for kv in spec.env if kv[0] != HUB_OFFLINE) + ((HUB_OFFLINE, "1"),)
    return dataclasses.replace(spec, model=str(path), env=env)


def multinode_spec(spec: ServerSpec, address: str) -> ServerSpec:
    """``spec`` served through vLLM's own Ray executor on the cluster at ``address`` (workers on several nodes)."""
    args = spec.args if "--distributed-executor-backend" in spec.args else spec.args + RAY_EXECUTOR
    return dataclasses.replace(spec, args=args, env=spec.env + (("RAY_ADDRESS", address),))


# ---------------------------------------------------------------------------------------------------- front end


def api_servers(spec: ServerSpec) -> int:
    """How many API processes this server runs (``apiserver.api_servers``)."""
    return apiserver.api_servers(spec.api_server_count, spec.gpus)


def queued_share(spec: ServerSpec) -> float:
    """The share of ``parallel`` that this server's client queues ahead (``queueahead.queue_ahead``)."""
    return queueahead.queue_ahead(spec.queue_ahead, spec.gpus)


def in_flight(spec: ServerSpec, parallel: int) -> int:
    """How many requests a client of this server keeps in flight for a model's ``parallel``."""
    return queueahead.in_flight(parallel, queued_share(spec))


# ---------------------------------------------------------------------------------------------------- argv, env


def command(spec: ServerSpec) -> list[str]:
    """The exact argv that starts this server (no secrets: the key travels in the environment)."""
    cmd = [
        *apiserver.launch_words(spec.python, api_servers(spec)),
        "--model",
        spec.model,
        "--served-model-name",
        spec.served_name,
        "--host",
        spec.host,
        "--port",
        str(spec.port),
    ]
    if spec.tensor_parallel_size != 1:
        cmd += ["--tensor-parallel-size", str(spec.tensor_parallel_size)]
    if spec.pipeline_parallel_size != 1:
        cmd += ["--pipeline-parallel-size", str(spec.pipeline_parallel_size)]
    if spec.max_model_len:
        cmd += ["--max-model-len", str(spec.max_model_len)]
    if spec.gpu_memory_utilization is not None and spec.gpus:
        cmd += ["--gpu-memory-utilization", str(spec.gpu_memory_utilization)]
    return (
        cmd
        + apiserver.count_words(api_servers(spec))
        + queueahead.batch_words(spec.max_num_seqs, queued_share(spec), spec.args)
        + reasoning_words(spec)
        + list(spec.args)
    )


def reasoning_parser(spec: ServerSpec) -> tuple[str | None, str]:
    """The ``--reasoning-parser`` this server gets and why: ``reasoning.parser`` as set, or for ``auto`` the pick
    from the model's folder (the local one, or the downloaded snapshot a hub model is served from)."""
    if spec.reasoning_parser is None:
        return None, "no reasoning.parser"
    if spec.reasoning_parser != AUTO:
        return spec.reasoning_parser, "reasoning.parser"
    return _picked(spec.model)


def reasoning_words(spec: ServerSpec) -> list[str]:
    """The reasoning flags: the parser, and with the engine's own budget (``engine_budget``) the reasoning config
    that forces the closing tag and the answer lead (``forced.engine_launch_args``)."""
    parser, _ = reasoning_parser(spec)
    if parser is None:
        return []
    tags = tags_for(parser)
    if spec.engine_budget and tags is not None:
        return engine_launch_args(parser, tags)
    return ["--reasoning-parser", parser]


@functools.lru_cache(maxsize=64)
def _picked(folder: str) -> tuple[str | None, str]:
    parser, why = pick_parser(folder)
    return parser, f"auto: {why}"


def cpu_server_env() -> dict[str, str]:
    """Environment for a vLLM CPU server that shares a small machine: 1 GiB KV cache, no thread pinning, eager."""
    return {
        "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB; the default (4) would not let several servers fit
        "VLLM_CPU_OMP_THREADS_BIND": "nobind",  # pinning would put every server on the same cores
        "VLLM_CPU_CI_ENV": "1",  # dynamo+eager instead of inductor compilation: starts much faster
        "VLLM_HOST_IP": "127.0.0.1",  # internal sockets on loopback
    }


def default_env() -> dict[str, str]:
    """Defaults for every server: no usage statistics leave the host, unbuffered logs."""
    return {"VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "PYTHONUNBUFFERED": "1"}


def engine_budget_env(spec: ServerSpec) -> dict[str, str]:
    """A server started for the engine's own thinking budget (``reasoning_words`` gives it ``--reasoning-config``)
    runs vLLM's V1 model runner: the V2 one, the GPU default since vLLM 0.23, answers every request that carries
    ``thinking_token_budget`` with HTTP 400 ("not yet supported by the V2 model runner"; measured on an H100 with
    vLLM 0.26). A default: the environment or the model's ``vllm.env`` may say otherwise."""
    return {"VLLM_USE_V2_MODEL_RUNNER": "0"} if "--reasoning-config" in reasoning_words(spec) else {}


def pinned_env(spec: ServerSpec) -> dict[str, str]:
    """What the launch sets over the inherited environment that is known before the run: the spec's own env and
    the GPUs the server may see (none for a CPU server)."""
    return {**dict(spec.env), VISIBLE_GPUS: ",".join(str(g) for g in spec.gpus)}


def environment(
    spec: ServerSpec,
    run_id: str,
    server_id: str,
    vllm_port: int,
    api_key: str | None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The server's environment: defaults < ``base`` (os.environ) < ``pinned_env`` < what the run owns."""
    env = {**default_env(), **({} if spec.gpus else cpu_server_env()), **engine_budget_env(spec)}
    env.update(os.environ if base is None else base)
    env.pop("VLLM_API_KEY", None)
    env.update(pinned_env(spec))
    env.update({"VLLM_PORT": str(vllm_port), RUN_ENV: run_id, SERVER_ENV: server_id})
    if api_key:
        env["VLLM_API_KEY"] = api_key
    return env


# ---------------------------------------------------------------------------------------------------- dry run


def shown_command(spec: ServerSpec) -> list[str]:
    """``command(spec)`` as a dry run prints it: secrets masked, port 0 as ``ANY_PORT``."""
    words = redact_command(command(spec))
    if spec.port == 0:
        words[words.index("--port") + 1] = ANY_PORT
    return words


def shown_words(spec: ServerSpec) -> list[str]:
    """``NAME=value`` of ``pinned_env(spec)`` (secret names masked), then ``shown_command(spec)``."""
    env = [f"{k}={'***' if is_secret_name(k) else v}" for k, v in pinned_env(spec).items()]
    return env + shown_command(spec)
