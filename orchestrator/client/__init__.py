"""The benchmark client: ``ChatClient`` (one request, retries, clamp) and ``run_series`` (workers + checkpoints).

A managed vLLM server reaches its client as a ``ManagedServer`` (its hooks); a request given up because its series
stopped comes back as ``Halted``.
"""

from __future__ import annotations

from .chat import ChatClient
from .managed import ManagedServer
from .replies import Halted, Scrubber, clamp_from_message, split_reasoning
from .series import Checkpoint, run_series

__all__ = [
    "ChatClient",
    "Checkpoint",
    "Halted",
    "ManagedServer",
    "Scrubber",
    "clamp_from_message",
    "run_series",
    "split_reasoning",
]
