"""The live status of a run: ``results/runs/<run-id>/status.json``, kept up to date by the run, read by ``status``.

The run's ``StatusWriter`` rewrites the file atomically (``fileio.atomic_write_text``) every ``interval`` seconds
from the progress counters and the manifest's facts, together with ``results/status.html`` (``statusview``). It
never talks to a server: everything comes from what the run already counts. At the end ``finish`` records how the
run ended (``finished``, ``failed``, ``interrupted``), its exit code and the manifest's path.

The file (``format`` 1)::

    {"format": 1, "run_id", "host", "pid", "pid_started", "started_at", "updated_at", "ended_at", "interval",
     "state": running | finished | failed | interrupted, "exit_code", "manifest", "results_dir",
     "models": [{"model", "state", "gpus", "port", "endpoints", "answered", "total", "correct", "accuracy",
                 "errors", "tokens", "tok_s", "eta_s", "elapsed_s", "restarts", "last_error", "datasets", "details",
                 "planned_s", "planned_end", "projected_end"}],
     "planned_end", "projected_end", "finish_by"}

The plan's fields (``scheduling.forecast.Forecast``: each model's estimate and planned end, the projected ends, the
``--finish-by`` deadline) are there when the run wrote them; a reader treats them as optional.

A model's ``state`` (``ModelShown``) is queued, downloading, disk wait, weights ok (its hub weights, while
prefetched), starting (also after a restart), running, finished, failed, interrupted or not started (left in the
queue by a run that ended); ``model_state`` maps the progress status (``contract.RunPhase``, ``ModelState``) to
it. Times are Unix seconds. ``load_runs`` reads every run's file (the newest ``MAX_RUNS``) and ``Liveness`` says
whether a run that claims to be running still is: on its own host, by its PID and that process's start time (a
reused PID is not the run); from elsewhere, by how recent the last update is.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import psutil

from ..contract import ModelState, ProgressStatus, RunPhase

FORMAT = 1
FILE = "status.json"
PAGE = "status.html"
INTERVAL = 2.0
MAX_RUNS = 20
ENDED = ("finished", "failed", "interrupted")
ModelShown = Literal[
    "queued",
    "downloading",
    "disk wait",
    "weights ok",
    "starting",
    "running",
    "finished",
    "failed",
    "interrupted",
    "not started",
]
_MODEL_STATES: dict[ProgressStatus, ModelShown] = {
    RunPhase.WAITING: "queued",
    RunPhase.DOWNLOADING: "downloading",
    RunPhase.DISK_WAIT: "disk wait",
    RunPhase.WEIGHTS_OK: "weights ok",
    RunPhase.STARTING: "starting",
    RunPhase.RESTARTING: "starting",
    RunPhase.RESCHEDULED: "starting",
    RunPhase.RUNNING: "running",
    ModelState.FINISHED: "finished",
    ModelState.FAILED: "failed",
    ModelState.INTERRUPTED: "interrupted",
}


def status_path(results_dir: Path, run_id: str) -> Path:
    return Path(results_dir) / "runs" / run_id / FILE


def model_state(status: ProgressStatus | None) -> ModelShown:
    """A model's ``state`` in status.json from its progress status (a restart is starting again; none yet: queued)."""
    return "queued" if status is None else _MODEL_STATES[status]


def process_started(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        return None


# ---------------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Liveness:
    """Whether a run is still going: ``state`` is running, ended (see the run's state), died or stale."""

    state: str
    reason: str = ""

    @property
    def live(self) -> bool:
        return self.state == "running"


@dataclass(frozen=True)
class RunStatus:
    """One run's status file as read back."""

    data: Mapping[str, Any]

    @property
    def run_id(self) -> str:
        return str(self.data.get("run_id"))

    @property
    def state(self) -> str:
        """What the run itself last wrote: running, finished, failed or interrupted (see ``liveness``)."""
        return str(self.data.get("state"))

    @property
    def models(self) -> list[Mapping[str, Any]]:
        return list(self.data.get("models") or [])

    def stale_after(self) -> float:
        """Seconds without an update after which a run seen from another host is called stale."""
        return max(60.0, 10 * float(self.data.get("interval") or INTERVAL))

    def liveness(self, now: float, host: str | None = None) -> Liveness:
        """Whether the run is going: by its PID on this host (``host``: this machine's name), else by age."""
        if self.data.get("state") in ENDED:
            return Liveness("ended")
        here = host if host is not None else platform.node()
        pid = int(self.data.get("pid") or 0)
        if self.data.get("host") == here:
            started = process_started(pid) if pid > 0 else None
            recorded = self.data.get("pid_started")
            if started is None or (recorded is not None and abs(started - float(recorded)) > 1.0):
                return Liveness("died", f"its process {pid} is gone")
            return Liveness("running")
        age = now - float(self.data.get("updated_at") or 0)
        if age > self.stale_after():
            return Liveness("stale", f"no update for {age:.0f} s from host {self.data.get('host')}")
        return Liveness("running")


def read_status(path: Path) -> dict[str, Any] | None:
    """A status file's content, or None when it is missing, unreadable or not ours."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT and data.get("run_id") else None


def newest_status_files(results_dir: Path, limit: int = MAX_RUNS) -> list[dict[str, Any]]:
    runs = Path(results_dir) / "runs"
    if not runs.is_dir():
        return []
    paths = sorted((p / FILE for p in runs.iterdir() if (p / FILE).is_file()), key=lambda p: p.parent.name)
    found = [read_status(p) for p in paths[-limit:]]
    return sorted((d for d in found if d is not None), key=lambda d: float(d.get("started_at") or 0))


def load_runs(results_dir: Path) -> list[RunStatus]:
    """The newest runs' status (at most ``MAX_RUNS``), oldest first."""
    return [RunStatus(d) for d in newest_status_files(results_dir)]


def runs_to_show(runs: Sequence[RunStatus], now: float) -> tuple[list[RunStatus], RunStatus | None]:
    """(the runs still going, the latest run when none is), for ``status``."""
    live = [r for r in runs if r.liveness(now).live]
    return live, (None if live or not runs else runs[-1])


__all__ = [
    "ENDED",
    "FILE",
    "FORMAT",
    "INTERVAL",
    "Liveness",
    "ModelShown",
    "PAGE",
    "RunStatus",
    "load_runs",
    "model_state",
    "newest_status_files",
    "process_started",
    "read_status",
    "runs_to_show",
    "status_path",
]
