"""Where a series lives on disk, its lock, its meta file, and rotation of old series to ``history/``.

results/details/<model_key>/<dataset>.jsonl        the current series (one settings hash)
results/details/<model_key>/<dataset>.md           readable answers
results/details/<model_key>/<dataset>.meta.json    settings hash, model, dataset, sampling, eval seconds
results/details/<model_key>/<dataset>.lock         the per-series filelock
results/details/<model_key>/history/<dataset>.<hash>[.<n>].{jsonl,md,meta.json}   earlier series
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import filelock

from ..errors import ResultsError
from ..fileio import fsync_dir, read_jsonl
from .hashing import safe_name

log = logging.getLogger(__name__)

LOCK_TIMEOUT = 60.0
SUFFIXES = (".jsonl", ".md", ".meta.json")


@dataclass(frozen=True)
class SeriesPaths:
    """The files of one (model, dataset) series."""

    dir: Path
    name: str

    @classmethod
    def of(cls, results_dir: Path, model_key: str, dataset: str) -> SeriesPaths:
        return cls(Path(results_dir) / "details" / safe_name(model_key), safe_name(dataset))

    @property
    def jsonl(self) -> Path:
        return self.dir / f"{self.name}.jsonl"

    @property
    def md(self) -> Path:
        return self.dir / f"{self.name}.md"

    @property
    def meta(self) -> Path:
        return self.dir / f"{self.name}.meta.json"

    @property
    def lock(self) -> Path:
        return self.dir / f"{self.name}.lock"

    @property
    def history(self) -> Path:
        return self.dir / "history"


def iter_series(results_dir: Path) -> Iterator[SeriesPaths]:
    """Every current series under ``results_dir`` (history excluded), sorted by model then dataset."""
    details = Path(results_dir) / "details"
    if not details.is_dir():
        return
    for model_dir in sorted(p for p in details.iterdir() if p.is_dir()):
        for jsonl in sorted(model_dir.glob("*.jsonl")):
            yield SeriesPaths(model_dir, jsonl.name[: -len(".jsonl")])


def make_series_lock(paths: SeriesPaths, timeout: float = LOCK_TIMEOUT) -> filelock.FileLock:
    """The series' filelock object, for ``series_lock``."""
    return filelock.FileLock(str(paths.lock), timeout=timeout, thread_local=False)


@contextmanager
def series_lock(
    paths: SeriesPaths, timeout: float = LOCK_TIMEOUT, lock: filelock.FileLock | None = None
) -> Iterator[None]:
    """Hold the series' filelock (bounded wait); failures become ``ResultsError``. ``lock``: one made by
    ``make_series_lock`` and kept (a store appends under it once per answer; making it costs more than holding it)."""
    lock = lock if lock is not None else make_series_lock(paths, timeout)
    try:
        lock.acquire(timeout=timeout)
    except filelock.Timeout:
        raise ResultsError(
            f"{paths.lock}: held by another process for over {timeout:.0f}s; "
            "wait for the other run to finish or remove a stale lock"
        ) from None
    except OSError as exc:
        raise ResultsError(f"cannot lock {paths.lock}: {exc.strerror or exc}; make the directory writable") from None
    try:
        yield
    finally:
        lock.release()


def read_meta(path: Path) -> dict[str, Any]:
    """The meta JSON at ``path``, or ``{}`` when it is missing or unreadable."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def current_hash(paths: SeriesPaths) -> str | None:
    """The settings hash of the series now on disk: from its meta, else from its first record."""
    meta_hash = read_meta(paths.meta).get("settings_hash")
    if meta_hash:
        return str(meta_hash)
    records, _ = read_jsonl(paths.jsonl)
    for rec in records:
        if rec.get("settings_hash"):
            return str(rec["settings_hash"])
    return None


def rotate(paths: SeriesPaths, settings_hash: str, *, fresh: bool = False) -> None:
    """Make ``paths`` hold the series of ``settings_hash`` (call under the series lock).

    A series with other settings (or any series, with ``fresh``) moves to ``history/``; without ``fresh`` a series
    of these settings found in ``history/`` moves back, so switching settings back and forth resumes.
    """
    old = current_hash(paths)
    if old is not None and (old != settings_hash or fresh):
        _retire(paths, old)
    elif old is None and fresh and paths.jsonl.exists():
        _retire(paths, "unknown")
    if not fresh and not paths.jsonl.exists():
        _restore_from_history(paths, settings_hash)


def _history_slots(paths: SeriesPaths, digest: str) -> list[tuple[int, str]]:
    """Existing history stems of ``digest`` as (n, stem), n = 0 for the unnumbered one."""
    pattern = re.compile(rf"^{re.escape(paths.name)}\.{re.escape(digest)}(?:\.(\d+))?\.jsonl$")
    found = []
    if paths.history.is_dir():
        for entry in paths.history.iterdir():
            match = pattern.match(entry.name)
            if match:
                found.append((int(match.group(1) or 0), entry.name[: -len(".jsonl")]))
    return sorted(found)


def _retire(paths: SeriesPaths, digest: str) -> None:
    """Move the current series to history; one without a single answer line is simply dropped."""
    if _size(paths.jsonl) > 0:
        _move_to_history(paths, digest)
        return
    for suffix in SUFFIXES:
        try:
            (paths.dir / f"{paths.name}{suffix}").unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise ResultsError(
                f"cannot remove the empty series file {paths.dir / (paths.name + suffix)}: "
                f"{exc.strerror or exc}; make the directory writable"
            ) from None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _move_to_history(paths: SeriesPaths, digest: str) -> None:
    slots = _history_slots(paths, digest)
    n = slots[-1][0] + 1 if slots else 0
    stem = f"{paths.name}.{digest}" + (f".{n}" if n else "")
    ensure_dir(paths.history)
    for suffix in SUFFIXES:
        _move(paths.dir / f"{paths.name}{suffix}", paths.history / f"{stem}{suffix}")
    log.info("series %s/%s (settings %s) moved to %s", paths.dir.name, paths.name, digest, paths.history / stem)


def _restore_from_history(paths: SeriesPaths, digest: str) -> None:
    slots = _history_slots(paths, digest)
    if not slots:
        return
    stem = slots[-1][1]
    for suffix in SUFFIXES:
        _move(paths.history / f"{stem}{suffix}", paths.dir / f"{paths.name}{suffix}")
    log.info("series %s/%s (settings %s) restored from %s", paths.dir.name, paths.name, digest, paths.history / stem)


def _move(src: Path, dst: Path) -> None:
    try:
        os.replace(src, dst)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ResultsError(f"cannot move {src} to {dst}: {exc.strerror or exc}; make the directory writable") from None
    fsync_dir(dst.parent)


def ensure_dir(directory: Path) -> None:
    """``mkdir -p`` that fails with a one-line ``ResultsError``."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ResultsError(
            f"cannot create {directory}: {exc.strerror or exc}; make the results directory writable"
        ) from None
