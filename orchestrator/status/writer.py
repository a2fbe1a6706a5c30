"""``StatusWriter``: the run's side of ``status.py``: rewrites ``runs/<run-id>/status.json`` and ``status.html``.

Created next to the run's ``Progress`` (``orchestrate``): ``start`` writes at once and then every ``interval``
seconds from a daemon thread; ``finish(state, exit_code)`` writes the last time, with how the run ended. Every write
is atomic; a failed write (disk full) is a warning, never the run's end. When a model finishes or fails, its details
page is rebuilt (``on_model_end``), so its answers can be looked at while the other models still run.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote

from ..errors import OrchestratorError
from ..fileio import atomic_write_text
from ..leaderboard import write_model_page
from ..leaderboard.rows import details_link
from ..results.layout import ensure_dir
from .file import (
    ENDED,
    FORMAT,
    INTERVAL,
    PAGE,
    RunStatus,
    model_state,
    newest_status_files,
    process_started,
    status_path,
)
from .view import render_status_html

log = logging.getLogger(__name__)
MIN_ELAPSED = 1.0  # seconds of running before a speed and an ETA mean anything


class ProgressView(Protocol):
    """What the writer reads from ``progress.Progress``."""

    def snapshot(self) -> list[dict]: ...


class ManifestView(Protocol):
    """What the writer reads from ``manifest.Manifest``."""

    path: Path

    def model_facts(self) -> dict[str, dict[str, Any]]: ...


def _model_entry(key: str, counts: Mapping[str, Any] | None, facts: Mapping[str, Any], total: int) -> dict:
    counts = counts or {}
    done, correct = int(counts.get("done", 0)), int(counts.get("correct", 0))
    elapsed = float(counts.get("elapsed") or 0.0)
    tokens = int(counts.get("tokens", 0))
    return {
        "model": key,
        "state": model_state(counts.get("status")),
        "gpus": facts.get("gpus"),
        "port": facts.get("port"),
        "endpoints": facts.get("endpoints"),
        "answered": done,
        "total": max(int(counts.get("total", 0)), total),
        "correct": correct,
        "accuracy": correct / done if done else None,
        "errors": int(counts.get("errors", 0)),
        "tokens": tokens,
        "tok_s": tokens / elapsed if elapsed >= MIN_ELAPSED else None,
        "eta_s": counts.get("eta") if elapsed >= MIN_ELAPSED else None,
        "elapsed_s": elapsed if elapsed > 0 else None,
        "restarts": int(counts.get("restarts", 0)),
        "last_error": counts.get("last_error"),
        "datasets": counts.get("datasets", {}),
        "details": None,
    }


@dataclass
class StatusWriter:
    """Writes the run's status file and ``status.html`` every ``interval`` seconds (``start``), once (``write``),
    and a last time with how the run ended (``finish``, which also stops the thread)."""

    results_dir: Path
    run_id: str
    progress: ProgressView
    manifest: ManifestView
    totals: Mapping[str, int]  # model -> problems it has to answer, in model_list order
    interval: float = INTERVAL
    clock: Callable[[], float] = time.time
    pid: int = field(default_factory=os.getpid)
    on_model_end: Callable[[str], object] | None = None  # e.g. write that model's answers page
    forecast: Callable[[list[dict], float], dict] | None = None  # plan vs run (``scheduling.forecast.Forecast``)

    def __post_init__(self) -> None:
        self.path = status_path(self.results_dir, self.run_id)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._ended_models: set[str] = set()
        self.data: dict[str, Any] = {
            "format": FORMAT,
            "run_id": self.run_id,
            "host": platform.node(),
            "pid": self.pid,
            "pid_started": process_started(self.pid),
            "started_at": self.clock(),
            "updated_at": None,
            "ended_at": None,
            "interval": self.interval,
            "state": "running",
            "exit_code": None,
            "manifest": str(Path(self.manifest.path).resolve()),
            "results_dir": str(Path(self.results_dir).resolve()),
            "models": [],
        }

    @classmethod
    def for_run(
        cls,
        results_dir: Path,
        run_id: str,
        progress: ProgressView,
        manifest: ManifestView,
        problems_per_model: int,
        forecast: Callable[[list[dict], float], dict] | None = None,
    ) -> StatusWriter:
        """The writer of one run: every model of the manifest, the details page rebuilt as each one ends."""
        totals = dict.fromkeys(manifest.model_facts(), problems_per_model)
        return cls(
            Path(results_dir),
            run_id,
            progress,
            manifest,
            totals,
            on_model_end=lambda key: write_model_page(Path(results_dir), key),
            forecast=forecast,
        )

    def start(self) -> StatusWriter:
        self.write()
        self._thread = threading.Thread(target=self._loop, name="status", daemon=True)
        self._thread.start()
        return self

    def write(self) -> None:
        """Refresh from the counters and rewrite both files now."""
        with self._lock:
            self._refresh()
            text = json.dumps(self.data, ensure_ascii=False, indent=1) + "\n"
            ensure_dir(self.path.parent)
            atomic_write_text(self.path, text)
            self._write_page()

    def finish(self, state: str, exit_code: int | None) -> None:
        """Record how the run ended (``finished``/``failed``/``interrupted``, exit code) and stop writing."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        self.data.update(state=state, exit_code=exit_code, ended_at=self.clock())
        try:
            self.write()
        except OrchestratorError as exc:  # the disk: the run's own error already says so
            log.warning("could not write the final run status: %s", exc)

    def _refresh(self) -> None:
        counts = {entry["model"]: entry for entry in self.progress.snapshot()}
        facts = self.manifest.model_facts()
        keys = list(dict.fromkeys([*self.totals, *counts]))
        models = [_model_entry(k, counts.get(k), facts.get(k, {}), self.totals.get(k, 0)) for k in keys]
        ended = self.data["state"] in ENDED
        for entry in models:
            if ended and entry["state"] == "queued":
                entry["state"] = "not started"
            self._note_model_end(entry)
        now = self.clock()
        if self.forecast is not None:
            self.data.update(self.forecast(models, now))
        self.data.update(models=models, updated_at=now)

    def _note_model_end(self, entry: dict) -> None:
        link = details_link(entry["model"]) + "index.html"
        if entry["state"] in ("finished", "failed") and entry["model"] not in self._ended_models:
            self._ended_models.add(entry["model"])
            if self.on_model_end is not None:
                try:
                    self.on_model_end(entry["model"])
                except OrchestratorError as exc:
                    log.warning("could not write the details page of %s: %s", entry["model"], exc)
        if (Path(self.results_dir) / unquote(link)).is_file():
            entry["details"] = link

    def _write_page(self) -> None:
        runs = [RunStatus(d) for d in newest_status_files(Path(self.results_dir)) if d.get("run_id") != self.run_id]
        shown = [r for r in runs if r.liveness(self.clock()).live] + [RunStatus(self.data)]
        atomic_write_text(Path(self.results_dir) / PAGE, render_status_html(shown, self.clock()))

    def _loop(self) -> None:
        failing = False
        while not self._stop.wait(self.interval):
            try:
                self.write()
                failing = False
            except OrchestratorError as exc:  # a full disk must not kill the run from here: warn once, go on
                log.log(logging.DEBUG if failing else logging.WARNING, "could not write the run status: %s", exc)
                failing = True


__all__ = ["ManifestView", "ProgressView", "StatusWriter"]
