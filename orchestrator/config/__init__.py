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

The package: ``yamlfile`` reads the file defensively, ``build`` walks it (``managed`` the ``vllm:`` block,
``datasets`` the ``datasets:`` block), ``reader.Reader`` reads and checks each value, ``run.RunConfig`` holds the
result.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from .build import build_config
from .run import RunConfig
from .yamlfile import read_yaml


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> RunConfig:
    """Read, parse and validate a run config; raises ``ConfigError`` with one line."""
    path = Path(path)
    data = read_yaml(path)
    return build_config(path, data, os.environ if env is None else env)


__all__ = ["RunConfig", "load_config"]
