"""Progress of a run: a line per model (done/total, accuracy so far, tokens/s, ETA).

On a terminal the lines are redrawn in place; otherwise (overnight logs) a plain log line per model is written every
``interval`` seconds. The tracker is thread-safe; rendering is separate from counting.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from ..contract import ModelState, ProgressStatus, RunPhase

log = logging.getLogger(__name__)
ENDED = (ModelState.FINISHED, ModelState.FAILED, ModelState.INTERRUPTED)
COUNTED = (RunPhase.RESTARTING, RunPhase.RESCHEDULED)  # shown with the restart count: ``restart 2``
MIN_SEEN = 16  # answers of this run before its own rate projects a model's end


@dataclass
class ModelProgress:
    """Counters of one model."""

    model: str
    total: int = 0
    errors: int = 0
    tokens: int = 0
    status: ProgressStatus = RunPhase.WAITING
    started: float | None = None
    starting: float | None = None  # when its first server began to start (managed models)
    per_dataset: dict[str, list[int]] = field(default_factory=dict)  # dataset -> [done, correct]
    answered_here: int = 0  # answers received by this run (a resumed checkpoint's are not)
    restarts: int = 0
    last_error: str | None = None
    ended: float | None = None  # when it finished, failed or was interrupted: its speed stops changing

    @property
    def shown(self) -> str:
        """The status as the line shows it: the phase, and the restart count after a restart or a rescheduling."""
        return f"{self.status} {self.restarts}" if self.status in COUNTED else str(self.status)

    @property
    def done(self) -> int:
        return sum(d for d, _ in self.per_dataset.values())

    @property
    def correct(self) -> int:
        return sum(c for _, c in self.per_dataset.values())

    def line(self, now: float) -> str:
        elapsed = (now - self.started) if self.started else 0.0
        acc = f"{100.0 * self.correct / self.done:5.1f}%" if self.done else "   - "
        tps = self.tokens / elapsed if elapsed > 0 else 0.0
        eta_s = self.eta(elapsed)
        eta = _fmt_secs(eta_s) if eta_s is not None else "-"
        err = f" errors {self.errors}" if self.errors else ""
        return (
            f"{self.model:<28.28} {self.shown:<11} {self.done:>5}/{self.total:<5} acc {acc} "
            f"{tps:8.1f} tok/s  ETA {eta}{err}"
        )

    def eta(self, elapsed: float) -> float | None:
        """Seconds left at this run's answer rate (answers resumed from a checkpoint do not count as speed)."""
        rate = self.answered_here / elapsed if elapsed > 0 else 0.0
        return (self.total - self.done) / rate if rate > 0 and self.done < self.total else None

    def left_s(self, now: float) -> float | None:
        """Projected seconds until done from this run's own answer rate, once ``MIN_SEEN`` answers (or 5% of the
        total) came in; None before (the caller's estimate stands) and once it ended."""
        if self.started is None or self.ended is not None or self.answered_here < max(MIN_SEEN, self.total // 20):
            return None
        return self.eta(now - self.started) or 0.0

    def snapshot(self, now: float) -> dict:
        """The counters as plain data, with ``elapsed`` seconds of running (until it ended, if it has)."""
        elapsed = ((self.ended or now) - self.started) if self.started else 0.0
        return {
            "model": self.model,
            "status": self.status,
            "total": self.total,
            "done": self.done,
            "correct": self.correct,
            "errors": self.errors,
            "tokens": self.tokens,
            "elapsed": elapsed,
            "eta": self.eta(elapsed),
            "restarts": self.restarts,
            "last_error": self.last_error,
            "datasets": {name: {"done": d, "correct": c} for name, (d, c) in self.per_dataset.items()},
        }


@dataclass
class Progress:
    """Thread-safe counters plus a renderer thread (``start``/``close``)."""

    stream: TextIO = field(default_factory=lambda: sys.stderr)
    interval: float = 30.0
    clock: Callable[[], float] = time.monotonic
    tty: bool | None = None
    models: dict[str, ModelProgress] = field(default_factory=dict)
    downloads: dict[str, str] = field(default_factory=dict)  # hub repository -> "bytes/total rate ETA"

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._drawn = 0
        if self.tty is None:
            self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def add_total(self, model: str, n: int) -> None:
        with self._lock:
            self._get(model).total += n

    def set_status(self, model: str, status: ProgressStatus) -> None:
        """``model`` is in this phase now (or has ended so); a restart's count comes from ``note_restarts``."""
        with self._lock:
            entry = self._get(model)
            entry.status = status
            if status == RunPhase.STARTING and entry.starting is None:
                entry.starting = self.clock()
            if status == RunPhase.RUNNING and entry.started is None:
                entry.started = self.clock()
            entry.ended = self.clock() if status in ENDED else None

    def note_restarts(self, model: str, count: int) -> None:
        """``model`` has restarted ``count`` times (the larger count wins: a Ray node's and the driver's overlap)."""
        with self._lock:
            entry = self._get(model)
            entry.restarts = max(entry.restarts, count)

    def note_error(self, model: str, message: str) -> None:
        """Remember the latest error of ``model`` (a failed request, a server that died, the model's failure)."""
        with self._lock:
            self._get(model).last_error = message

    def sync(self, model: str, dataset: str, done: int, correct: int) -> None:
        """Set a dataset's counts from its checkpoint (at start, and again after a server restart)."""
        with self._lock:
            self._get(model).per_dataset[dataset] = [done, correct]

    def record(self, model: str, dataset: str, *, correct: bool, tokens: int, error: bool) -> None:
        with self._lock:
            entry = self._get(model)
            if error:
                entry.errors += 1
                return
            counts = entry.per_dataset.setdefault(dataset, [0, 0])
            counts[0] += 1
            counts[1] += int(correct)
            entry.answered_here += 1
            entry.tokens += tokens

    def set_download(self, label: str, text: str | None) -> None:
        """Show (or, with None, drop) the line of a download in flight (prefetch.py)."""
        with self._lock:
            if text is None:
                self.downloads.pop(label, None)
            else:
                self.downloads[label] = text

    def left_s(self, model: str) -> float | None:
        """``ModelProgress.left_s`` of ``model`` now (None for a model not seen)."""
        now = self.clock()
        with self._lock:
            entry = self.models.get(model)
            return entry.left_s(now) if entry is not None else None

    def startup_s(self, model: str) -> float | None:
        """Seconds the first server of ``model`` took to start, from starting to running (None before it ran, and
        for a model that needed no server)."""
        with self._lock:
            entry = self.models.get(model)
            if entry is None or entry.starting is None or entry.started is None:
                return None
            return entry.started - entry.starting

    def left_answers(self, model: str) -> int | None:
        """Answers ``model`` has still to store (None for a model not seen)."""
        with self._lock:
            entry = self.models.get(model)
            return max(0, entry.total - entry.done) if entry is not None else None

    def snapshot(self) -> list[dict]:
        """Every model's counters as plain data (``ModelProgress.snapshot``), in the order models appeared."""
        now = self.clock()
        with self._lock:
            return [m.snapshot(now) for m in self.models.values()]

    def lines(self) -> list[str]:
        now = self.clock()
        with self._lock:
            return [m.line(now) for m in self.models.values()] + [
                f"{label:<28.28} {'download':<11} {text}" for label, text in self.downloads.items()
            ]

    def start(self) -> Progress:
        period = 1.0 if self.tty else self.interval
        self._thread = threading.Thread(target=self._loop, args=(period,), name="progress", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.render()

    def render(self) -> None:
        lines = self.lines()
        if not lines:
            return
        if self.tty:
            up = f"\x1b[{self._drawn}F" if self._drawn else ""
            lines += [""] * (self._drawn - len(lines))  # a finished download's line is blanked, not left behind
            self.stream.write(up + "".join(f"\x1b[2K{line}\n" for line in lines))
            self.stream.flush()
            self._drawn = len(lines)
        else:
            for line in lines:
                log.info("progress: %s", line)

    def _loop(self, period: float) -> None:
        while not self._stop.wait(period):
            self.render()

    def _get(self, model: str) -> ModelProgress:
        if model not in self.models:
            self.models[model] = ModelProgress(model)
        return self.models[model]


def _fmt_secs(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"
