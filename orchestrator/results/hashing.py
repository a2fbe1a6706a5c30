"""The settings hash that names a series, and file-system-safe names for model keys and datasets."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

from ..contract import ModelConfig, Sampling

# vLLM flags that change what the model answers (weights, numerics, template, context); others (batching, ports,
# memory) do not start a new series when changed.
ANSWER_FLAGS = frozenset(
    {
        "--dtype",
        "--quantization",
        "-q",
        "--revision",
        "--tokenizer",
        "--tokenizer-revision",
        "--tokenizer-mode",
        "--chat-template",
        "--chat-template-content-format",
        "--kv-cache-dtype",
        "--generation-config",
        "--override-generation-config",
        "--reasoning-parser",
        "--seed",
        "--hf-overrides",
        "--max-model-len",
        "--default-chat-template-kwargs",
    }
)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str) -> str:
    """``name`` as one path component: runs of characters outside ``[A-Za-z0-9._-]`` become ``_``."""
    cleaned = _UNSAFE.sub("_", name).strip()
    return cleaned if cleaned.strip(".") else "_" + cleaned


def answer_args(args: Sequence[str]) -> list[str]:
    """The answer-changing flags of a vLLM argument list, each as ``--flag=value``."""
    picked: list[str] = []
    for i, arg in enumerate(args):
        flag, eq, value = arg.partition("=")
        if flag not in ANSWER_FLAGS:
            continue
        if not eq:
            nxt = args[i + 1] if i + 1 < len(args) else ""
            value = "" if nxt.startswith("-") else nxt
        picked.append(f"{flag}={value}")
    return picked


def settings_payload(
    model: ModelConfig, dataset_name: str, dataset_version: str, prompt_fingerprint: str
) -> dict[str, Any]:
    """Everything that changes the answers of a series (no secrets, no concurrency, transport or samples).

    ``Sampling`` enters whole, each of its fields that is set (``top_p`` and ``seed`` are ``None`` unless given, so
    series written before they existed keep their hash); the number of samples never does (raising it asks only the
    new samples, lowering it scores the first k). The reasoning settings enter as ``hash_fields()``: nothing when a
    model has none, so existing series keep their hash.
    """
    vllm = model.vllm
    censors = sorted({str(e.gigachat.profanity_check) for e in model.endpoints if e.gigachat is not None})
    payload = {"profanity_check": censors} if censors else {}  # GigaChat's filter changes answers; absent elsewhere
    return (
        payload
        | sampling_payload(model.sampling)
        | model.reasoning.hash_fields()
        | {
            "model_name": model.model_name,
            "weights": (f"{vllm.model}@{vllm.revision}" if vllm.revision else vllm.model) if vllm else None,
            "max_model_len": vllm.max_model_len if vllm else None,
            "vllm_args": answer_args(vllm.args) if vllm else [],
            "dataset": dataset_name,
            "dataset_version": dataset_version,
            "prompt": prompt_fingerprint,
        }
    )


def sampling_payload(sampling: Sampling) -> dict[str, Any]:
    """Every field of ``sampling`` that is set, by its name."""
    fields = ((f.name, getattr(sampling, f.name)) for f in dataclasses.fields(sampling))
    return {name: value for name, value in fields if value is not None}


def settings_hash(model: ModelConfig, dataset_name: str, dataset_version: str, prompt_fingerprint: str) -> str:
    """A 16-hex digest of ``settings_payload``: equal settings, equal series."""
    payload = settings_payload(model, dataset_name, dataset_version, prompt_fingerprint)
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]
