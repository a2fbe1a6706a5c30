"""The walk over a parsed config: top-level keys, ``model_list`` and each model's block into a ``RunConfig``.

A model's keys are read from its block, else from the top level, else the default: ``Sampling`` (what changes
answers), ``samples``, ``parallel`` (requests in flight: 64 for a managed server, else the top level's or 4) and
``Transport`` (``request_timeout``: GigaChat's endpoint ``timeout`` when neither block nor top level sets it) and
``reasoning`` (a model's ``reasoning:`` block over the top level's, with its ``extra_body``: ``reasoning.settings``).
The ``vllm:`` block is ``managed.py``'s, ``datasets:`` is ``datasets.py``'s, endpoint entries are ``endpoints.py``'s;
values are read by ``reader.Reader``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..contract import (
    API_PARALLEL,
    MANAGED_PARALLEL,
    REQUEST_TIMEOUT,
    Endpoint,
    ModelConfig,
    ReasoningSettings,
    Sampling,
    Timeouts,
    Transport,
)
from ..endpoints import API_TYPES, default_entries, parse_endpoint
from ..judge.settings import JudgeSettings, parse_judge
from ..notify import parse_notify
from ..reasoning.settings import parse_reasoning
from .datasets import read_datasets
from .managed import read_vllm
from .reader import Reader, did_you_mean, kind
from .run import RunConfig

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
    "reasoning",
    "judge",
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
    "reasoning",
    "extra_body",
    "replicas",
} | SAMPLING_KEYS
PARSER_FLAG = "--reasoning-parser"
log = logging.getLogger(__package__)


class ConfigBuilder:
    """Walks the parsed YAML ``data`` of the config at ``read.path`` into a ``RunConfig``."""

    def __init__(self, data: Any, read: Reader) -> None:
        self.data, self.read = data, read

    def build(self) -> RunConfig:
        if not isinstance(self.data, dict):
            raise self.read.fail(
                "top level", f"expected a mapping of settings, got {kind(self.data)}", "start from configs/run.yaml"
            )
        names = self._model_list()
        self._check_top_keys(names)
        models = tuple(self._model(name) for name in names)
        judge = parse_judge(self.data.get("judge"), self._model_blocks(names), self.read.fail)
        return RunConfig(
            path=self.read.path,
            models=models,
            datasets=read_datasets(self.read, self.data.get("datasets")),
            num_examples=self.read.integer(self.data, "num_examples", "num_examples", minimum=1),
            max_cpu_servers=self.read.integer(self.data, "max_cpu_servers", "max_cpu_servers", minimum=1) or 1,
            notify=parse_notify(self.data.get("notify"), self.read.path, self.read.env),
            judge=judge,
            judge_model=self._judge_model(judge, models),
            raw=self.data,
        )

    def _model_blocks(self, names: list[str]) -> set[str]:
        """The file's model blocks: those of model_list and every other top-level block that looks like one."""
        return set(names) | {
            str(k) for k, v in self.data.items() if k not in TOP_KEYS and isinstance(v, dict) and _looks_like_model(v)
        }

    def _judge_model(self, judge: JudgeSettings | None, models: tuple[ModelConfig, ...]) -> ModelConfig | None:
        """The judge's ``ModelConfig``: its block, in model_list or not (``judge.settings``)."""
        if judge is None:
            return None
        return next((m for m in models if m.key == judge.model), None) or self._model(judge.model)

    def _model_list(self) -> list[str]:
        names = self.data.get("model_list")
        if names is None:
            raise self.read.fail(
                "model_list", "missing", "add `model_list: [name, ...]` naming the model blocks to run"
            )
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            raise self.read.fail("model_list", f"expected a non-empty list of model names, got {names!r:.80}")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise self.read.fail("model_list", f"model {dupes[0]!r} is listed twice", "list each model once")
        return names

    def _check_top_keys(self, names: list[str]) -> None:
        for key, value in self.data.items():
            if key in TOP_KEYS or key in names:
                continue
            if isinstance(value, dict) and _looks_like_model(value):
                continue  # a model block not selected in model_list: allowed, unused
            hint = did_you_mean(str(key), TOP_KEYS | set(names))
            raise self.read.fail(str(key), "unknown top-level key", hint or "remove it or check its spelling")

    def _model(self, name: str) -> ModelConfig:
        block = self.data.get(name)
        if block is None:
            raise self.read.fail(
                "model_list",
                f"model {name!r} has no block",
                f"add a top-level `{name}:` block with `model_name` and `endpoints` or `vllm`",
            )
        if not isinstance(block, dict):
            raise self.read.fail(name, f"expected a mapping, got {kind(block)}")
        self.read.check_keys(block, MODEL_KEYS, name)
        vllm = read_vllm(self.read, name, block["vllm"]) if "vllm" in block else None
        api_type = self._api_type(name, block, vllm is not None)
        endpoints, timeouts = self._endpoints(
            name, block.get("endpoints", default_entries(api_type)), vllm is not None, api_type
        )
        model_name = self.read.text(block, "model_name", f"{name}.model_name") or name
        return ModelSettings(self, name, block, vllm is not None).model(
            key=name, model_name=model_name, endpoints=endpoints, vllm=vllm, api_type=api_type, timeouts=timeouts
        )

    def _api_type(self, name: str, block: dict, managed: bool) -> str:
        api_type = self.read.text(block, "api_type", f"{name}.api_type") or "openai"
        if api_type not in API_TYPES:
            raise self.read.fail(
                f"{name}.api_type",
                f"unsupported value {api_type!r}",
                "use openai (any OpenAI-compatible API), openrouter or gigachat",
            )
        if managed and api_type != "openai":
            raise self.read.fail(
                f"{name}.api_type",
                f"{api_type} with a `vllm:` block",
                "a managed vLLM server speaks openai: remove api_type or the vllm block",
            )
        return api_type

    def _endpoints(self, name: str, raw: Any, managed: bool, api_type: str) -> tuple[tuple[Endpoint, ...], list[float]]:
        if raw is None:
            if managed:
                return (), []
            entry = (
                "{credentials: env:GIGACHAT_CREDENTIALS}"
                if api_type == "gigachat"
                else "{api_base: ..., api_key: env:NAME}"
            )
            raise self.read.fail(
                name,
                "has neither `endpoints` nor `vllm`",
                f"add `endpoints: [{entry}]` for an API model, or a `vllm:` block for a managed server",
            )
        if managed:
            raise self.read.fail(
                name,
                "has both `endpoints` and `vllm`",
                "keep `vllm` for a managed server, or `endpoints` for an API model",
            )
        if not isinstance(raw, list) or not raw:
            raise self.read.fail(f"{name}.endpoints", f"expected a non-empty list, got {kind(raw)}")
        parsed = [parse_endpoint(self.read, api_type, f"{name}.endpoints[{i}]", item) for i, item in enumerate(raw)]
        return tuple(e for e, _ in parsed), [t for _, t in parsed if t is not None]


class ModelSettings:
    """The per-model keys that may also be set at the top level: sampling, samples, parallel and transport."""

    def __init__(self, builder: ConfigBuilder, name: str, block: dict, managed: bool) -> None:
        self.read, self.top, self.name, self.block, self.managed = builder.read, builder.data, name, block, managed

    def pick(self, key: str, reader: Callable[..., Any], default: Any, **kw: Any) -> Any:
        """The model block's value of ``key``, else the top level's, else ``default``."""
        for scope, where in ((self.block, f"{self.name}.{key}"), (self.top, key)):
            value = reader(scope, key, where, **kw)
            if value is not None:
                return value
        return default

    def model(self, *, timeouts: list[float], **fields: Any) -> ModelConfig:
        """The ``ModelConfig``; its keys are read in the order that decides which of several errors is reported."""
        read = self.read
        temperature = self.pick("temperature", read.number, 0.0, minimum=0.0)
        max_tokens = self.pick("max_tokens", read.integer, 2048, minimum=1)
        system_prompt = self.pick("system_prompt", read.text, "")
        parallel = self._parallel()
        request_delay = self.pick("request_delay", read.number, 0.0, minimum=0.0)
        request_timeout = self.pick("request_timeout", read.number, REQUEST_TIMEOUT, minimum=0.001)
        max_retries = self.pick("max_retries", read.integer, 5, minimum=0)
        samples = self.pick("samples", self._samples, 1)
        sampling = Sampling(
            temperature=temperature,
            max_tokens=max_tokens,
            system_prompt=system_prompt,
            top_p=self.pick("top_p", self._top_p, None),
            seed=self.pick("seed", self._seed, None),
        )
        _warn_identical(self.name, samples, sampling)
        if timeouts and self.block.get("request_timeout") is None and self.top.get("request_timeout") is None:
            request_timeout = max(timeouts)  # GigaChat's `timeout`
        transport = Transport(
            timeouts=Timeouts.within(request_timeout), max_retries=max_retries, request_delay=request_delay
        )
        reasoning = self._reasoning(max_tokens, fields.get("vllm"), fields.get("api_type", "openai"))
        return ModelConfig(
            sampling=sampling,
            samples=samples,
            parallel=parallel,
            transport=transport,
            reasoning=reasoning,
            replicas=self._replicas(),
            **fields,
        )

    def _reasoning(self, max_tokens: int, vllm: Any, api_type: str) -> ReasoningSettings:
        """The model's ``reasoning:`` over the top level's, and its ``extra_body`` (``reasoning.settings``)."""
        path = self.read.path
        settings = parse_reasoning(
            self.block.get("reasoning"),
            f"{path}: {self.name}.reasoning",
            max_tokens,
            vllm.max_model_len if vllm is not None else None,
            default=self.top.get("reasoning"),
            default_where=f"{path}: reasoning",
            managed=self.managed,
            api_type=api_type,
            extra_body=self.block.get("extra_body"),
        )
        if settings.parser is not None and vllm is not None and any(a.split("=")[0] == PARSER_FLAG for a in vllm.args):
            raise self.read.fail(
                f"{self.name}.vllm.args", f"{PARSER_FLAG} is set here and in reasoning.parser", "keep one of the two"
            )
        if settings.budget is not None and not self.managed:
            raise self.read.fail(
                f"{self.name}.reasoning.budget",
                f"{settings.budget} is set for an API model; a forced budget needs a managed vLLM server",
                "remove it (an API's thinking is bounded by reasoning.effort and max_tokens)",
            )
        return settings

    def _replicas(self) -> int | None:
        """``replicas: auto`` (the default: None) or N >= 1 servers of a managed model at once (1: no replicas)."""
        value = self.block.get("replicas", "auto")
        if value == "auto":
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.read.fail(
                f"{self.name}.replicas",
                f"{value!r:.60} is not auto or a number of servers",
                "use auto (fill idle GPUs), 1 (one server) or a whole number N >= 1 (at most N servers)",
            )
        return value

    def _parallel(self) -> int:
        """The model's own ``parallel``, else 64 for a managed server, else the top level's, else 4."""
        own = self.read.integer(self.block, "parallel", f"{self.name}.parallel", minimum=1)
        if own:
            return own
        if self.managed:
            return MANAGED_PARALLEL
        return self.read.integer(self.top, "parallel", "parallel", minimum=1) or API_PARALLEL

    def _samples(self, block: dict, key: str, where: str) -> int | None:
        value = block.get(key)
        if value is not None and not isinstance(value, bool) and isinstance(value, int) and value < 1:
            raise self.read.fail(
                where,
                f"{value} is not a number of samples",
                "use 1 (one answer per problem) or more, such as 4 for avg@4 and pass@4",
            )
        return self.read.integer(block, key, where, minimum=1)

    def _seed(self, block: dict, key: str, where: str) -> int | None:
        value = block.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise self.read.fail(
                where,
                f"expected an integer seed, got {value!r:.60}",
                "write a whole number such as 1234 (sample i is asked with seed + i)",
            )
        return self.read.integer(block, key, where, minimum=0)

    def _top_p(self, block: dict, key: str, where: str) -> float | None:
        value = self.read.number(block, key, where, minimum=0.0)
        if value is not None and not 0.0 < value <= 1.0:
            raise self.read.fail(where, f"{value} is out of range", "use a probability mass in (0, 1], such as 0.95")
        return value


def _looks_like_model(block: dict) -> bool:
    return "model_name" in block or "vllm" in block or "endpoints" in block


def build_config(path: Path, data: Any, env: Mapping[str, str]) -> RunConfig:
    """The ``RunConfig`` of the parsed YAML ``data`` read from ``path``; raises ``ConfigError`` with one line."""
    return ConfigBuilder(data, Reader(path, env)).build()


def _warn_identical(name: str, samples: int, sampling: Sampling) -> None:
    """Warn (one line) when k > 1 samples are asked greedily: they will all be the same answer."""
    if samples > 1 and sampling.temperature == 0.0:
        log.warning(
            "%s: samples: %d with temperature 0 asks %d identical greedy answers (seeds do not change a "
            "greedy answer); set temperature (e.g. 0.6) and seed for avg@k and pass@k, or samples: 1",
            name,
            samples,
            samples,
        )
