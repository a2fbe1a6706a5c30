"""The ``vllm:`` block of a managed model, read into ``VllmSettings`` (errors: ``reader.Reader``'s one line)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ..client.jsoncodec import CODEC_NAMES, MSGSPEC_INSTALLED
from ..contract import (
    DEFAULT_PIPELINE_PARALLEL_SIZE,
    DEFAULT_STARTUP_TIMEOUT,
    DEFAULT_TENSOR_PARALLEL_SIZE,
    VllmSettings,
)
from ..serving import apiserver, queueahead
from .reader import Reader, kind

VLLM_KEYS = {
    "model",
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "max_model_len",
    "gpu_memory_utilization",
    "startup_timeout",
    "python",
    "args",
    "env",
    "host",
    "port",
    "max_restarts",
    "revision",
    "api_server_count",
    "client_codec",
    "queue_ahead",
}
HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def read_vllm(read: Reader, name: str, raw: Any) -> VllmSettings:
    """The ``vllm:`` block of model ``name``."""
    where = f"{name}.vllm"
    if not isinstance(raw, dict):
        raise read.fail(where, f"expected a mapping, got {kind(raw)}", "see configs/example-gpu.yaml")
    read.check_keys(raw, VLLM_KEYS, where)
    model = _model_path(read, where, raw.get("model"))
    if raw.get("revision") is not None and Path(model).is_dir():
        raise read.fail(
            f"{where}.revision",
            f"set for the local directory {model}",
            "a revision applies to hub ids only: remove it, or set model to a hub id",
        )
    return VllmSettings(
        model=model,
        tensor_parallel_size=read.integer(raw, "tensor_parallel_size", f"{where}.tensor_parallel_size", minimum=1)
        or DEFAULT_TENSOR_PARALLEL_SIZE,
        pipeline_parallel_size=read.integer(raw, "pipeline_parallel_size", f"{where}.pipeline_parallel_size", minimum=1)
        or DEFAULT_PIPELINE_PARALLEL_SIZE,
        max_model_len=read.integer(raw, "max_model_len", f"{where}.max_model_len", minimum=16),
        gpu_memory_utilization=_fraction(read, raw, f"{where}.gpu_memory_utilization"),
        startup_timeout=read.number(raw, "startup_timeout", f"{where}.startup_timeout", minimum=1.0)
        or DEFAULT_STARTUP_TIMEOUT,
        python=_python(read, f"{where}.python", raw.get("python")),
        args=read.strings(raw.get("args"), f"{where}.args"),
        env=read.env_map(raw.get("env"), f"{where}.env"),
        host=read.text(raw, "host", f"{where}.host") or "127.0.0.1",
        port=read.integer(raw, "port", f"{where}.port", minimum=1, maximum=65535),
        max_restarts=read.integer(raw, "max_restarts", f"{where}.max_restarts", minimum=0, maximum=100) or 0
        if "max_restarts" in raw
        else 2,
        revision=read.text(raw, "revision", f"{where}.revision"),
        api_server_count=_api_servers(read, raw, where),
        client_codec=_client_codec(read, raw, where),
        queue_ahead=_queue_ahead(read, raw, where),
    )


def _client_codec(read: Reader, raw: dict, where: str) -> str | None:
    name = read.text(raw, "client_codec", f"{where}.client_codec")
    if name is not None and name not in CODEC_NAMES:
        raise read.fail(f"{where}.client_codec", f"unknown codec {name!r}", f"use one of {', '.join(CODEC_NAMES)}")
    if name == "msgspec" and not MSGSPEC_INSTALLED:
        raise read.fail(
            f"{where}.client_codec",
            "msgspec is not installed in the orchestrator's Python",
            "install msgspec (vLLM brings it) or use `client_codec: json`",
        )
    return name


def _api_servers(read: Reader, raw: dict, where: str) -> int | None:
    if apiserver.flag_in(read.strings(raw.get("args"), f"{where}.args")):
        raise read.fail(
            f"{where}.args",
            f"sets {apiserver.FLAG}",
            "use `api_server_count: N` in the vllm block instead (it picks the start command that honours it)",
        )
    return read.integer(
        raw, "api_server_count", f"{where}.api_server_count", minimum=1, maximum=apiserver.MAX_API_SERVERS
    )


def _queue_ahead(read: Reader, raw: dict, where: str) -> float | None:
    share = read.number(raw, "queue_ahead", f"{where}.queue_ahead", minimum=0.0)
    if share is not None and share > queueahead.MAX_QUEUE_AHEAD:
        raise read.fail(
            f"{where}.queue_ahead",
            f"{share} is out of range",
            f"use 0 to {queueahead.MAX_QUEUE_AHEAD:g} (a share of parallel; 1 queues one whole batch)",
        )
    return share


def _model_path(read: Reader, where: str, raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise read.fail(
            f"{where}.model",
            "missing",
            "set it to a local model directory or a hub id like Qwen/Qwen2.5-7B-Instruct",
        )
    for cand in (Path(raw).expanduser(), read.path.parent / raw):
        if cand.exists():
            return str(cand.resolve())
    if raw.startswith(("/", ".", "~")) or not HUB_ID.match(raw):
        raise read.fail(
            f"{where}.model",
            f"path {raw!r} does not exist",
            "fix the path (`make smoke-model` writes models/tiny-llama) or use a hub id",
        )
    return raw


def _python(read: Reader, where: str, raw: Any) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or not os.access(os.path.expanduser(raw), os.X_OK):
        raise read.fail(where, f"{raw!r} is not an executable file", "point it at a python that has vllm installed")
    return os.path.expanduser(raw)


def _fraction(read: Reader, raw: dict, where: str) -> float | None:
    value = read.number(raw, "gpu_memory_utilization", where, minimum=0.01)
    if value is not None and value > 1.0:
        raise read.fail(where, f"{value} is above 1.0", "use a fraction of GPU memory such as 0.90")
    return value
