"""The whole run, once for every backend (``run``: ``execute`` is what the CLI calls), its inputs checked before any
server starts (``inputs``), and the commands on stored results that start nothing (``offline``: leaderboard, review,
regrade). This package re-exports what the CLI, the benchmarks and the tests use."""

from __future__ import annotations

from .inputs import load_datasets, preflight, select_datasets, select_models
from .offline import rebuild_leaderboard, regrade_all, review
from .run import RunOptions, RunSummary, execute, run_placements

__all__ = [
    "RunOptions",
    "RunSummary",
    "execute",
    "load_datasets",
    "preflight",
    "rebuild_leaderboard",
    "regrade_all",
    "review",
    "run_placements",
    "select_datasets",
    "select_models",
]
