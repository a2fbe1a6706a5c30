"""Checkpointed results: one details JSONL per (model, dataset) holding the current settings' series.

See ``store.SeriesStore`` (append, resume, rotation, locking), ``hashing.settings_hash``,
``maintenance.regrade`` / ``maintenance.load_scores``, and ``series.missing_answers`` (is a series complete?).
"""

from __future__ import annotations

from .hashing import ANSWER_FLAGS, safe_name, settings_hash, settings_payload
from .layout import SeriesPaths, iter_series
from .maintenance import load_scores, missing_in, read_series, regrade, regrade_series, rewrite_series
from .markdown import render_markdown
from .series import SeriesState, missing_answers
from .store import SeriesStore, without_secrets

__all__ = [
    "ANSWER_FLAGS",
    "SeriesPaths",
    "SeriesState",
    "SeriesStore",
    "iter_series",
    "load_scores",
    "missing_answers",
    "missing_in",
    "read_series",
    "regrade",
    "regrade_series",
    "rewrite_series",
    "render_markdown",
    "safe_name",
    "settings_hash",
    "settings_payload",
    "without_secrets",
]
