"""``RunConfig``: a validated configuration, and its raw form with every literal secret redacted."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..contract import DatasetSpec, ModelConfig, is_secret_name, public_url, redact_command
from ..judge.settings import JudgeSettings
from ..notify import Webhook
from ..notify import redact as redact_notify


@dataclass(frozen=True)
class RunConfig:
    """A validated configuration."""

    path: Path
    models: tuple[ModelConfig, ...]
    datasets: Mapping[str, DatasetSpec] = field(default_factory=dict)
    num_examples: int | None = None
    max_cpu_servers: int = 1
    notify: tuple[Webhook, ...] = ()  # notify.py: webhooks told when a model or the run ends
    judge: JudgeSettings | None = None  # the `judge:` block (judge/settings.py)
    judge_model: ModelConfig | None = None  # the judge's model block, in model_list or not
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def redacted(self) -> dict[str, Any]:
        """The raw config with every literal API key replaced (``env:NAME`` references stay)."""
        return _redact(self.raw)


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
