"""Load and validate ``configs/run.yaml``.

The original DeathMath format works unchanged::

    model_list: [gpt-4o]
    gpt-4o: {model_name: gpt-4o, endpoints: [{api_base: ..., api_key: env:OPENAI_API_KEY}], api_type: openai,
             parallel: 4, system_prompt: "...", max_tokens: 2048, request_delay: 0}
    temperature: 0.0
    max_tokens: 2048
    num_examples: 190

``api_type`` is ``openai``, ``openrouter`` or ``gigachat`` (endpoint keys per type: endpoints.py). A ``vllm:`` block
makes a model managed; a ``datasets:`` block declares local datasets (or overrides registered
ones). Every problem is reported as one ``ConfigError`` line naming the file, the field and the fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .client.jsoncodec import CODEC_NAMES, MSGSPEC_INSTALLED
from .configload import read_yaml
from .contract import (
    DEFAULT_PIPELINE_PARALLEL_SIZE,
    DEFAULT_STARTUP_TIMEOUT,
    DEFAULT_TENSOR_PARALLEL_SIZE,
    DOMAINS,
    DatasetSpec,
    Endpoint,
    ModelConfig,
    Sampling,
    VllmSettings,
    is_secret_name,
    public_url,
    redact_command,
)
from .datasets import REGISTRY  # the registry of built-in and hub datasets
from .endpoints import API_TYPES, default_entries, parse_endpoint
from .errors import ConfigError
from .notify import Webhook, parse_notify
from .notify import redact as redact_notify
from .serving import apiserver, queueahead

SAMPLING_KEYS = {"samples", "top_p", "seed"}
TOP_KEYS = {
    "model_list",
    "temperature",
    "max_tokens",
    "num_examples",
    "datasets",
    "system_prompt",
    "request_timeout",
    "max_retries",
    "request_delay",
    "parallel",
    "max_cpu_servers",
    "notify",
} | SAMPLING_KEYS
MODEL_KEYS = {
    "model_name",
    "endpoints",
    "api_type",
    "parallel",
    "system_prompt",
    "max_tokens",
    "temperature",
    "request_delay",
    "request_timeout",
    "max_retries",
    "vllm",
} | SAMPLING_KEYS
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
DATASET_KEYS = {"path", "domain", "question", "answer", "id", "tolerance", "hub_id", "configs", "split"}
log = logging.getLogger(__name__)
HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
MANAGED_PARALLEL = 64
API_PARALLEL = 4


@dataclass(frozen=True)
class RunConfig:
    """A validated configuration."""

    path: Path
    models: tuple[ModelConfig, ...]
    datasets: Mapping[str, DatasetSpec] = field(default_factory=dict)
    num_examples: int | None = None
    max_cpu_servers: int = 1
    notify: tuple[Webhook, ...] = ()  # notify.py: webhooks told when a model or the run ends
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def redacted(self) -> dict[str, Any]:
        """The raw config with every literal API key replaced (``env:NAME`` references stay)."""
        return _redact(self.raw)


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> RunConfig:
    """Read, parse and validate a run config; raises ``ConfigError`` with one line."""
    path = Path(path)
    data = read_yaml(path)
    return _Builder(path, data, os.environ if env is None else env).build()


class _Builder:
    def __init__(self, path: Path, data: Any, env: Mapping[str, str]) -> None:
        self.path, self.data, self.env = path, data, env

    def fail(self, where: str, problem: str, fix: str = "") -> ConfigError:
        return ConfigError(f"{self.path}: {where}: {problem}" + (f"; {fix}" if fix else ""))

    def build(self) -> RunConfig:
        if not isinstance(self.data, dict):
            raise self.fail(
                "top level", f"expected a mapping of settings, got {_kind(self.data)}", "start from configs/run.yaml"
            )
        names = self._model_list()
        self._check_top_keys(names)
        models = tuple(self._model(name) for name in names)
        return RunConfig(
            path=self.path,
            models=models,
            datasets=self._datasets(),
            num_examples=self._opt_int(self.data, "num_examples", "num_examples", minimum=1),
            max_cpu_servers=self._opt_int(self.data, "max_cpu_servers", "max_cpu_servers", minimum=1) or 1,
            notify=parse_notify(self.data.get("notify"), self.path, self.env),
            raw=self.data,
        )

    def _model_list(self) -> list[str]:
        names = self.data.get("model_list")
        if names is None:
            raise self.fail("model_list", "missing", "add `model_list: [name, ...]` naming the model blocks to run")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            raise self.fail("model_list", f"expected a non-empty list of model names, got {names!r:.80}")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise self.fail("model_list", f"model {dupes[0]!r} is listed twice", "list each model once")
        return names

    def _check_top_keys(self, names: list[str]) -> None:
        for key, value in self.data.items():
            if key in TOP_KEYS or key in names:
                continue
            if isinstance(value, dict) and ("model_name" in value or "vllm" in value or "endpoints" in value):
                continue  # a model block not selected in model_list: allowed, unused
            hint = _did_you_mean(str(key), TOP_KEYS | set(names))
            raise self.fail(str(key), "unknown top-level key", hint or "remove it or check its spelling")

    def _model(self, name: str) -> ModelConfig:
        block = self.data.get(name)
        if block is None:
            raise self.fail(
                "model_list",
                f"model {name!r} has no block",
                f"add a top-level `{name}:` block with `model_name` and `endpoints` or `vllm`",
            )
        if not isinstance(block, dict):
            raise self.fail(name, f"expected a mapping, got {_kind(block)}")
        self._check_keys(block, MODEL_KEYS, name)
        vllm = self._vllm(name, block["vllm"]) if "vllm" in block else None
        api_type = self._api_type(name, block, vllm is not None)
        endpoints, timeouts = self._endpoints(
            name, block.get("endpoints", default_entries(api_type)), vllm is not None, api_type
        )
        model_name = self._opt_str(block, "model_name", f"{name}.model_name") or name
        sampling = self._sampling(name, block, vllm is not None)
        if timeouts and block.get("request_timeout") is None and self.data.get("request_timeout") is None:
            sampling = dataclasses.replace(sampling, request_timeout=max(timeouts))  # GigaChat's `timeout`
        return ModelConfig(
            key=name, model_name=model_name, sampling=sampling, endpoints=endpoints, vllm=vllm, api_type=api_type
        )

    def _api_type(self, name: str, block: dict, managed: bool) -> str:
        api_type = self._opt_str(block, "api_type", f"{name}.api_type") or "openai"
        if api_type not in API_TYPES:
            raise self.fail(
                f"{name}.api_type",
                f"unsupported value {api_type!r}",
                "use openai (any OpenAI-compatible API), openrouter or gigachat",
            )
        if managed and api_type != "openai":
            raise self.fail(
                f"{name}.api_type",
                f"{api_type} with a `vllm:` block",
                "a managed vLLM server speaks openai: remove api_type or the vllm block",
            )
        return api_type

    def _sampling(self, name: str, block: dict, managed: bool) -> Sampling:
        def pick(key: str, reader, default, **kw):
            for scope, where in ((block, f"{name}.{key}"), (self.data, key)):
                value = reader(scope, key, where, **kw)
                if value is not None:
                    return value
            return default

        return _warn_identical(
            name,
            Sampling(
                temperature=pick("temperature", self._opt_float, 0.0, minimum=0.0),
                max_tokens=pick("max_tokens", self._opt_int, 2048, minimum=1),
                system_prompt=pick("system_prompt", self._opt_str, ""),
                parallel=self._opt_int(block, "parallel", f"{name}.parallel", minimum=1)
                or (
                    MANAGED_PARALLEL
                    if managed
                    else self._opt_int(self.data, "parallel", "parallel", minimum=1) or API_PARALLEL
                ),
                request_delay=pick("request_delay", self._opt_float, 0.0, minimum=0.0),
                request_timeout=pick("request_timeout", self._opt_float, 600.0, minimum=0.001),
                max_retries=pick("max_retries", self._opt_int, 5, minimum=0),
                samples=pick("samples", self._samples, 1),
                top_p=pick("top_p", self._top_p, None),
                seed=pick("seed", self._seed, None),
            ),
        )

    def _samples(self, block: dict, key: str, where: str) -> int | None:
        value = block.get(key)
        if value is not None and not isinstance(value, bool) and isinstance(value, int) and value < 1:
            raise self.fail(
                where,
                f"{value} is not a number of samples",
                "use 1 (one answer per problem) or more, such as 4 for avg@4 and pass@4",
            )
        return self._opt_int(block, key, where, minimum=1)

    def _seed(self, block: dict, key: str, where: str) -> int | None:
        value = block.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise self.fail(
                where,
                f"expected an integer seed, got {value!r:.60}",
                "write a whole number such as 1234 (sample i is asked with seed + i)",
            )
        return self._opt_int(block, key, where, minimum=0)

    def _top_p(self, block: dict, key: str, where: str) -> float | None:
        value = self._opt_float(block, key, where, minimum=0.0)
        if value is not None and not 0.0 < value <= 1.0:
            raise self.fail(where, f"{value} is out of range", "use a probability mass in (0, 1], such as 0.95")
        return value

    def _endpoints(self, name: str, raw: Any, managed: bool, api_type: str) -> tuple[tuple[Endpoint, ...], list[float]]:
        if raw is None:
            if managed:
                return (), []
            entry = (
                "{credentials: env:GIGACHAT_CREDENTIALS}"
                if api_type == "gigachat"
                else "{api_base: ..., api_key: env:NAME}"
            )
            raise self.fail(
                name,
                "has neither `endpoints` nor `vllm`",
                f"add `endpoints: [{entry}]` for an API model, or a `vllm:` block for a managed server",
            )
        if managed:
            raise self.fail(
                name,
                "has both `endpoints` and `vllm`",
                "keep `vllm` for a managed server, or `endpoints` for an API model",
            )
        if not isinstance(raw, list) or not raw:
            raise self.fail(f"{name}.endpoints", f"expected a non-empty list, got {_kind(raw)}")
        parsed = [parse_endpoint(self, api_type, f"{name}.endpoints[{i}]", item) for i, item in enumerate(raw)]
        return tuple(e for e, _ in parsed), [t for _, t in parsed if t is not None]

    def _secret(self, where: str, raw: Any) -> str | None:
        if raw is None or raw == "":
            return None
        if not isinstance(raw, str):
            raise self.fail(where, f"expected a string, got {_kind(raw)}")
        if raw.startswith("env:"):
            var = raw[4:].strip()
            if not var or var not in self.env or not self.env[var]:
                raise self.fail(where, f"environment variable {var!r} is not set", f"export {var}=... before the run")
            return self.env[var]
        return raw

    def _vllm(self, name: str, raw: Any) -> VllmSettings:
        where = f"{name}.vllm"
        if not isinstance(raw, dict):
            raise self.fail(where, f"expected a mapping, got {_kind(raw)}", "see configs/example-gpu.yaml")
        self._check_keys(raw, VLLM_KEYS, where)
        model = self._model_path(where, raw.get("model"))
        if raw.get("revision") is not None and Path(model).is_dir():
            raise self.fail(
                f"{where}.revision",
                f"set for the local directory {model}",
                "a revision applies to hub ids only: remove it, or set model to a hub id",
            )
        return VllmSettings(
            model=model,
            tensor_parallel_size=self._opt_int(raw, "tensor_parallel_size", f"{where}.tensor_parallel_size", minimum=1)
            or DEFAULT_TENSOR_PARALLEL_SIZE,
            pipeline_parallel_size=self._opt_int(
                raw, "pipeline_parallel_size", f"{where}.pipeline_parallel_size", minimum=1
            )
            or DEFAULT_PIPELINE_PARALLEL_SIZE,
            max_model_len=self._opt_int(raw, "max_model_len", f"{where}.max_model_len", minimum=16),
            gpu_memory_utilization=self._fraction(raw, f"{where}.gpu_memory_utilization"),
            startup_timeout=self._opt_float(raw, "startup_timeout", f"{where}.startup_timeout", minimum=1.0)
            or DEFAULT_STARTUP_TIMEOUT,
            python=self._python(f"{where}.python", raw.get("python")),
            args=self._str_list(raw.get("args"), f"{where}.args"),
            env=self._env_map(raw.get("env"), f"{where}.env"),
            host=self._opt_str(raw, "host", f"{where}.host") or "127.0.0.1",
            port=self._opt_int(raw, "port", f"{where}.port", minimum=1, maximum=65535),
            max_restarts=self._opt_int(raw, "max_restarts", f"{where}.max_restarts", minimum=0, maximum=100) or 0
            if "max_restarts" in raw
            else 2,
            revision=self._opt_str(raw, "revision", f"{where}.revision"),
            api_server_count=self._api_servers(raw, where),
            client_codec=self._client_codec(raw, where),
            queue_ahead=self._queue_ahead(raw, where),
        )

    def _client_codec(self, raw: dict, where: str) -> str | None:
        name = self._opt_str(raw, "client_codec", f"{where}.client_codec")
        if name is not None and name not in CODEC_NAMES:
            raise self.fail(f"{where}.client_codec", f"unknown codec {name!r}", f"use one of {', '.join(CODEC_NAMES)}")
        if name == "msgspec" and not MSGSPEC_INSTALLED:
            raise self.fail(
                f"{where}.client_codec",
                "msgspec is not installed in the orchestrator's Python",
                "install msgspec (vLLM brings it) or use `client_codec: json`",
            )
        return name

    def _api_servers(self, raw: dict, where: str) -> int | None:
        if apiserver.flag_in(self._str_list(raw.get("args"), f"{where}.args")):
            raise self.fail(
                f"{where}.args",
                f"sets {apiserver.FLAG}",
                "use `api_server_count: N` in the vllm block instead (it picks the start command that honours it)",
            )
        return self._opt_int(
            raw, "api_server_count", f"{where}.api_server_count", minimum=1, maximum=apiserver.MAX_API_SERVERS
        )

    def _queue_ahead(self, raw: dict, where: str) -> float | None:
        share = self._opt_float(raw, "queue_ahead", f"{where}.queue_ahead", minimum=0.0)
        if share is not None and share > queueahead.MAX_QUEUE_AHEAD:
            raise self.fail(
                f"{where}.queue_ahead",
                f"{share} is out of range",
                f"use 0 to {queueahead.MAX_QUEUE_AHEAD:g} (a share of parallel; 1 queues one whole batch)",
            )
        return share

    def _model_path(self, where: str, raw: Any) -> str:
        if not isinstance(raw, str) or not raw.strip():
            raise self.fail(
                f"{where}.model",
                "missing",
                "set it to a local model directory or a hub id like Qwen/Qwen2.5-7B-Instruct",
            )
        candidates = [Path(raw).expanduser(), self.path.parent / raw]
        for cand in candidates:
            if cand.exists():
                return str(cand.resolve())
        if raw.startswith(("/", ".", "~")) or not HUB_ID.match(raw):
            raise self.fail(
                f"{where}.model",
                f"path {raw!r} does not exist",
                "fix the path (`make smoke-model` writes models/tiny-llama) or use a hub id",
            )
        return raw

    def _python(self, where: str, raw: Any) -> str | None:
        if raw is None:
            return None
        if not isinstance(raw, str) or not os.access(os.path.expanduser(raw), os.X_OK):
            raise self.fail(where, f"{raw!r} is not an executable file", "point it at a python that has vllm installed")
        return os.path.expanduser(raw)

    def _fraction(self, raw: dict, where: str) -> float | None:
        value = self._opt_float(raw, "gpu_memory_utilization", where, minimum=0.01)
        if value is not None and value > 1.0:
            raise self.fail(where, f"{value} is above 1.0", "use a fraction of GPU memory such as 0.90")
        return value

    def _datasets(self) -> dict[str, DatasetSpec]:
        raw = self.data.get("datasets")
        if raw is None:
            return {}
        if not isinstance(raw, dict) or not raw:
            raise self.fail(
                "datasets", f"expected a mapping of dataset names to blocks, got {_kind(raw)}", "see datasets/README.md"
            )
        return {str(name): self._dataset(str(name), block, REGISTRY.get(str(name))) for name, block in raw.items()}

    def _dataset(self, name: str, block: Any, base: DatasetSpec | None) -> DatasetSpec:
        where = f"datasets.{name}"
        block = {} if block is None else block
        if not isinstance(block, dict):
            raise self.fail(where, f"expected a mapping, got {_kind(block)}", "see datasets/README.md")
        self._check_keys(block, DATASET_KEYS, where)
        if base is None and "path" not in block and "hub_id" not in block:
            known = ", ".join(sorted(REGISTRY))
            raise self.fail(
                where, "not a registered dataset and has no `path`", f"add `path: file.jsonl` or use one of: {known}"
            )
        return self._dataset_spec(name, where, block, base or DatasetSpec(name=name))

    def _dataset_spec(self, name: str, where: str, block: dict, base: DatasetSpec) -> DatasetSpec:
        domain = self._opt_str(block, "domain", f"{where}.domain") or base.domain
        if domain not in DOMAINS:
            raise self.fail(f"{where}.domain", f"unknown domain {domain!r}", "use math or physics")
        path = self._opt_str(block, "path", f"{where}.path")
        if path is not None:
            path = self._existing_file(f"{where}.path", path)
        strs = {
            k: self._opt_str(block, k, f"{where}.{k}")
            for k in ("question", "answer", "id", "tolerance", "hub_id", "split")
        }
        return DatasetSpec(
            name=name,
            domain=domain,
            path=path if path is not None else (None if "hub_id" in block else base.path),
            hub_id=strs["hub_id"] or (None if path else base.hub_id),
            hub_configs=self._str_list(block["configs"], f"{where}.configs")
            if "configs" in block
            else base.hub_configs,
            split=strs["split"] or base.split,
            question=strs["question"] or base.question,
            answer=strs["answer"] or base.answer,
            id=strs["id"] or base.id,
            tolerance=strs["tolerance"] or base.tolerance,
        )

    def _existing_file(self, where: str, raw: str) -> str:
        for cand in (Path(raw).expanduser(), self.path.parent / raw):
            if cand.is_file():
                return str(cand.resolve())
        raise self.fail(
            where,
            f"file {raw!r} does not exist",
            "fix the path (relative paths are tried from the current directory, then from the config's directory)",
        )

    # -- typed readers (the public names are endpoints.Fields) -----------------------------------------------------
    def secret(self, where: str, raw: Any) -> str | None:
        return self._secret(where, raw)

    def text(self, block: dict, key: str, where: str) -> str | None:
        return self._opt_str(block, key, where)

    def number(self, block: dict, key: str, where: str, minimum: float | None = None) -> float | None:
        return self._opt_float(block, key, where, minimum=minimum)

    def existing_file(self, where: str, raw: str) -> str:
        return self._existing_file(where, raw)

    def _check_keys(self, block: dict, allowed: set[str], where: str) -> None:
        for key in block:
            if key not in allowed:
                hint = _did_you_mean(str(key), allowed)
                raise self.fail(f"{where}.{key}", "unknown key", hint or f"allowed keys: {', '.join(sorted(allowed))}")

    def _opt_int(
        self, block: dict, key: str, where: str, minimum: int | None = None, maximum: int | None = None
    ) -> int | None:
        value = block.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"expected an integer, got {value!r:.60}", "write a whole number such as 4")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            bounds = f"of at least {minimum}" if maximum is None else f"between {minimum} and {maximum}"
            raise self.fail(where, f"{value} is out of range", f"use a value {bounds}")
        return value

    def _opt_float(self, block: dict, key: str, where: str, minimum: float | None = None) -> float | None:
        value = block.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(where, f"expected a number, got {value!r:.60}", "write a number such as 0.5")
        if not math.isfinite(value):
            raise self.fail(where, f"{value} is not a finite number", "write a number such as 0.5")
        if minimum is not None and value < minimum:
            raise self.fail(where, f"{value} is out of range", f"use a value of at least {minimum}")
        return float(value)

    def _opt_str(self, block: dict, key: str, where: str) -> str | None:
        value = block.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(where, f"expected a string, got {value!r:.60}", "quote the value")
        return value

    def _str_list(self, raw: Any, where: str) -> tuple[str, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list) or not all(
            isinstance(a, (str, int, float)) and not isinstance(a, bool) for a in raw
        ):
            raise self.fail(where, f"expected a list of strings, got {raw!r:.80}", 'e.g. ["--dtype", "bfloat16"]')
        return tuple(str(a) for a in raw)

    def _env_map(self, raw: Any, where: str) -> tuple[tuple[str, str], ...]:
        if raw is None:
            return ()
        if not isinstance(raw, dict) or not all(isinstance(k, str) for k in raw):
            raise self.fail(where, f"expected a mapping of variable names to values, got {_kind(raw)}")
        for key, value in raw.items():
            if isinstance(value, (dict, list)) or value is None:
                raise self.fail(f"{where}.{key}", f"expected a string value, got {_kind(value)}")
        return tuple((k, self._secret(f"{where}.{k}", str(v)) or "") for k, v in raw.items())


def _warn_identical(name: str, sampling: Sampling) -> Sampling:
    """Warn (one line) when k > 1 samples are asked greedily: they will all be the same answer."""
    if sampling.samples > 1 and sampling.temperature == 0.0:
        log.warning(
            "%s: samples: %d with temperature 0 asks %d identical greedy answers (seeds do not change a "
            "greedy answer); set temperature (e.g. 0.6) and seed for avg@k and pass@k, or samples: 1",
            name,
            sampling.samples,
            sampling.samples,
        )
    return sampling


def _did_you_mean(word: str, choices: set[str]) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )


def _redact(value: Any, key: str = "") -> Any:
    if key == "notify":
        return redact_notify(value)
    if isinstance(value, dict):
        return {k: _redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return redact_command([str(v) for v in value]) if key == "args" else [_redact(v, key) for v in value]
    if is_secret_name(key) and isinstance(value, str) and value and not value.startswith("env:"):
        return "<redacted>"
    if key in ("api_base", "base_url", "auth_url") and isinstance(value, str):
        return public_url(value)
    return value
