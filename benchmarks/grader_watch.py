"""Watching a grader pool's workers: peak memory and the address-space cap each runs under.

Used by tests/integration/test_grading_adversarial.py and benchmarks/grader_adversarial.py.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from orchestrator.grading import GraderPool


def address_space_limit(pid: int) -> int | None:
    """The soft RLIMIT_AS of ``pid`` in bytes (None: unlimited or unreadable)."""
    try:
        for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
            if line.startswith("Max address space"):
                soft = line.split()[3]
                return None if soft == "unlimited" else int(soft)
    except OSError:
        return None
    return None


@dataclass
class WorkerWatch:
    """Samples every worker of a pool: peak RSS and VMS, and the address-space cap each one runs under."""

    pool: GraderPool
    interval: float = 0.005
    peak_rss: dict[int, int] = field(default_factory=dict)
    peak_vms: dict[int, int] = field(default_factory=dict)
    caps: dict[int, int | None] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> WorkerWatch:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in self.pool.pids():
                self._sample(pid)
            time.sleep(self.interval)

    def _sample(self, pid: int) -> None:
        try:
            mem = psutil.Process(pid).memory_info()
        except psutil.Error:
            return
        self.peak_rss[pid] = max(self.peak_rss.get(pid, 0), mem.rss)
        self.peak_vms[pid] = max(self.peak_vms.get(pid, 0), mem.vms)
        if self.caps.get(pid) is None:  # a starting worker sets its cap first thing: read until it has
            self.caps[pid] = address_space_limit(pid)
