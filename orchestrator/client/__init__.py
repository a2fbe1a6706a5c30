"""The benchmark client: ``ChatClient`` (one request, retries, clamp) and ``run_series`` (workers + checkpoints)."""

from __future__ import annotations

from .chat import MANAGED_PARALLEL, ChatClient
from .replies import Scrubber, clamp_from_message, split_reasoning
from .series import Checkpoint, run_series

__all__ = [
    "MANAGED_PARALLEL",
    "ChatClient",
    "Checkpoint",
    "Scrubber",
    "clamp_from_message",
    "run_series",
    "split_reasoning",
]
