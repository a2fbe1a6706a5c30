"""What a model's job is handed and what it hands back: ``RunContext`` (everything besides the model; seams as plain
attributes), ``DatasetRun``, ``ModelOutcome`` and ``end_state`` (the one classifier of how a model ended), and the
Protocols the job needs of its collaborators (``ProgressSink``, ``ManifestSink``, ``ServerLike``,
``ServerGroupLike``; ``client.Checkpoint`` for a series' store)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..client import ChatClient, Checkpoint
from ..client.shared import SharedWork
from ..contract import (
    AnswerRecord,
    DatasetSpec,
    Endpoint,
    Grade,
    ModelConfig,
    ModelState,
    Problem,
    ProgressStatus,
    SeriesScore,
    ServerSpec,
)
from ..serving.server import start_server

HUNG_GRACE = 3.0  # seconds a hung server gets to act on SIGTERM before SIGKILL (it generates nothing: no point waiting)


@dataclass(frozen=True)
class DatasetRun:
    """A loaded dataset ready to run: its spec, problems (after --limit) and content version."""

    spec: DatasetSpec
    problems: tuple[Problem, ...]
    version: str


@dataclass
class ModelOutcome:
    """What happened to one model."""

    model: str
    status: ModelState
    scores: list[SeriesScore] = field(default_factory=list)
    seconds: float = 0.0
    log_path: str | None = None
    error: str | None = None
    restarts: int = 0


def end_state(stopping: bool, failed: bool) -> ModelState:
    """The one classifier of how a model ended: interrupted while the run is stopping (a signal: servers die on
    purpose, so no model failed), else failed or finished."""
    if stopping:
        return ModelState.INTERRUPTED
    return ModelState.FAILED if failed else ModelState.FINISHED


class ProgressSink(Protocol):
    """What a job reports to the progress display (``progress.Progress``; on a Ray node, events)."""

    def set_status(self, model: str, status: ProgressStatus) -> None: ...
    def add_total(self, model: str, n: int) -> None: ...
    def sync(self, model: str, dataset: str, done: int, correct: int) -> None: ...
    def record(self, model: str, dataset: str, *, correct: bool, tokens: int, error: bool) -> None: ...
    def set_download(self, label: str, text: str | None) -> None: ...
    def note_error(self, model: str, message: str) -> None: ...
    def note_restarts(self, model: str, count: int) -> None: ...


class ManifestSink(Protocol):
    """What a job records in the run's manifest (``manifest.Manifest``; on a Ray node, events)."""

    def timing(self, model: str, phase: str, seconds: float) -> None: ...
    def set_model(self, model: str, **facts: Any) -> None: ...


class ServerLike(Protocol):
    """The part of ``server.VllmServer`` that a job uses."""

    @property
    def spec(self) -> ServerSpec: ...
    @property
    def log_path(self) -> Path: ...
    @property
    def endpoint(self) -> Endpoint: ...

    grace: float  # seconds between SIGTERM and SIGKILL in stop(); a hung server gets HUNG_GRACE

    def alive(self) -> bool: ...
    def responsive(self) -> bool: ...
    def progress(self) -> float | None: ...
    def stop(self) -> None: ...
    def max_model_len(self) -> int | None: ...


class ServerGroupLike(Protocol):
    """The servers that a signal stops (``signals.ServerGroup``)."""

    def add(self, server: Any) -> None: ...
    def discard(self, server: Any) -> None: ...


@dataclass
class RunContext:
    """Everything a model job needs besides the model; seams for tests are plain attributes."""

    run_id: str
    results_dir: Path
    logs_dir: Path
    datasets: Sequence[DatasetRun]
    stop: threading.Event
    progress: ProgressSink
    servers: ServerGroupLike
    manifest: ManifestSink | None = None
    grade: Callable[[AnswerRecord], Grade] | None = None
    start_server: Callable[..., ServerLike] = start_server
    client_factory: Callable[..., ChatClient] = ChatClient
    fresh: bool = False
    open_store: Callable[[ModelConfig, DatasetRun], Checkpoint] | None = None  # the Ray backend's node-side proxy
    on_outcome: Callable[[ModelOutcome], None] | None = None  # told each model's end on the driver (``told``)
    shares: dict[str, SharedWork] = field(default_factory=dict)  # model key -> its servers' work queue
    _freshened: set = field(default_factory=set, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def share_of(self, model: str) -> SharedWork:
        """The work queue that ``model``'s servers share (made on first use; closed when its job ends)."""
        with self._lock:
            return self.shares.setdefault(model, SharedWork())

    def take_fresh(self, model: str, dataset: str) -> bool:
        """True the first time a series is opened in a --fresh run (a restart must not discard it again)."""
        if not self.fresh or (model, dataset) in self._freshened:
            return False
        self._freshened.add((model, dataset))
        return True


def told(ctx: RunContext, outcome: ModelOutcome) -> ModelOutcome:
    """``outcome``, once ``ctx.on_outcome`` (the run's webhooks, notify.py) has been told; backends call it where a
    model's outcome is final."""
    if ctx.on_outcome is not None:
        ctx.on_outcome(outcome)
    return outcome
