"""The judge's checkpoint: one JSONL file per series, ``details/<model>/judge/<dataset>.jsonl``.

Each reply is appended as it arrives (``fileio``'s single-write lines, under the file's own lock, a torn tail set
aside first), so a killed run keeps every verdict it had and a resumed one never asks twice: ``done`` answers by
the answer's key and judge hash. The file lives in a subfolder so that nothing that lists series takes it for one.
A later line for the same key replaces an earlier one (``--rejudge`` appends new verdicts).
"""

from __future__ import annotations

import threading
from pathlib import Path

import filelock

from ..fileio import append_bytes, jsonl_line, read_jsonl, truncate_torn_tail
from ..results.layout import LOCK_TIMEOUT, SeriesPaths, ensure_dir
from .verdict import JudgeRecord


def judge_path(paths: SeriesPaths) -> Path:
    return paths.dir / "judge" / f"{paths.name}.jsonl"


class JudgeStore:
    """The judge verdicts of one series (see the module docstring)."""

    def __init__(self, paths: SeriesPaths, *, lock_timeout: float = LOCK_TIMEOUT) -> None:
        self.path = judge_path(paths)
        self._lock = filelock.FileLock(str(self.path) + ".lock", timeout=lock_timeout)
        self._mutex = threading.Lock()
        self._records: dict[str, JudgeRecord] = {}
        self._offset = 0

    def _catch_up(self) -> None:
        objects, self._offset = read_jsonl(self.path, self._offset)
        for obj in objects:
            rec = JudgeRecord.from_dict(obj)
            if rec is not None:
                self._records[rec.key] = rec

    def load(self) -> dict[str, JudgeRecord]:
        """Every verdict on file, the latest per answer key."""
        with self._mutex:
            self._catch_up()
            return dict(self._records)

    def done(self, key: str, digest: str) -> JudgeRecord | None:
        """The stored verdict on answer ``key`` judged as ``digest``, if there is one."""
        rec = self.load().get(key)
        return rec if rec is not None and rec.hash == digest else None

    def append(self, rec: JudgeRecord) -> None:
        ensure_dir(self.path.parent)
        with self._mutex, self._lock:
            truncate_torn_tail(self.path)
            self._catch_up()
            append_bytes(self.path, jsonl_line(rec.to_dict()))
            self._catch_up()
