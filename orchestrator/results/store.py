"""``SeriesStore``: the checkpointed details file of one (model, dataset, settings) series.

Every append happens under the per-series filelock after catching up with what other processes appended, so two
orchestrators on one results directory never interleave lines and never store a second successful answer for an id.
A torn last line (a writer killed mid-line) is truncated away under the lock before anything is appended.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..contract import AnswerRecord, Problem, SeriesScore, is_secret_name
from ..errors import ResultsError
from ..fileio import append_bytes, atomic_write_json, atomic_write_text, jsonl_line, read_jsonl, truncate_torn_tail
from .layout import LOCK_TIMEOUT, SeriesPaths, ensure_dir, make_series_lock, read_meta, rotate, series_lock
from .markdown import render_markdown
from .series import SeriesState

log = logging.getLogger(__name__)


def without_secrets(value: Any) -> Any:
    """``value`` with every mapping entry named like a secret removed, recursively."""
    if isinstance(value, Mapping):
        return {k: without_secrets(v) for k, v in value.items() if not is_secret_name(str(k))}
    if isinstance(value, (list, tuple)):
        return [without_secrets(v) for v in value]
    return value


class SeriesStore:
    """The current series of ``model_key`` on ``dataset`` with ``settings_hash``; see the module docstring.

    Opening it (under the lock) moves a series of other settings to ``history/`` (any series, with ``fresh``),
    repairs a torn tail and writes the meta file.
    """

    def __init__(
        self,
        results_dir: Path,
        model_key: str,
        dataset: str,
        settings_hash: str,
        *,
        meta: Mapping[str, Any],
        fresh: bool = False,
        lock_timeout: float = LOCK_TIMEOUT,
    ) -> None:
        self.model_key, self.dataset, self.settings_hash = model_key, dataset, settings_hash
        self.paths = SeriesPaths.of(Path(results_dir), model_key, dataset)
        self.path = self.paths.jsonl
        self._lock_timeout = lock_timeout
        self._mutex = threading.RLock()
        self._state = SeriesState(settings_hash)
        self._offset, self._ino = 0, -1
        self._meta_seen: tuple[int, int, int] | None = None  # the meta file last found ours (inode, mtime, size)
        ensure_dir(self.paths.dir)
        self._filelock = make_series_lock(self.paths, lock_timeout)
        with self._locked():
            rotate(self.paths, settings_hash, fresh=fresh)
            self._meta = self._merged_meta(meta)
            atomic_write_json(self.paths.meta, self._meta)
            self._sync()

    # -- locking and catching up ---------------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._mutex, series_lock(self.paths, self._lock_timeout, self._filelock):
            yield

    def _sync(self) -> None:
        """Catch up with the file (call under the lock): reload if it was replaced, read what others appended."""
        self._check_still_ours()
        st = _stat(self.path)
        if st is None or st.st_ino != self._ino or st.st_size < self._offset:
            if st is None:
                append_bytes(self.path, b"")
                st = os.stat(self.path)
            self._state, self._offset, self._ino = SeriesState(self.settings_hash), 0, st.st_ino
        if st.st_size > self._offset:
            truncate_torn_tail(self.path)
            objects, self._offset = read_jsonl(self.path, self._offset)
            self._state.absorb_dicts(objects)

    def _check_still_ours(self) -> None:
        """Refuse to go on when another run has replaced this series with other settings (never mix series). The
        meta file is read again only when it changed (a rewrite is a rename: a new inode)."""
        st = _stat(self.paths.meta)
        seen = None if st is None else (st.st_ino, st.st_mtime_ns, st.st_size)
        if seen is not None and seen == self._meta_seen:
            return
        theirs = read_meta(self.paths.meta).get("settings_hash")
        if theirs and theirs != self.settings_hash:
            raise ResultsError(
                f"{self.path}: another run replaced this series with settings {theirs}; "
                f"this run's answers (settings {self.settings_hash}) are in history/, rerun to resume"
            )
        self._meta_seen = seen

    def _merged_meta(self, given: Mapping[str, Any]) -> dict[str, Any]:
        old = read_meta(self.paths.meta)
        if old.get("settings_hash") != self.settings_hash:
            old = {}
        now = time.time()
        meta = {**old, **without_secrets(dict(given))}
        meta.update(
            settings_hash=self.settings_hash,
            model_key=self.model_key,
            dataset=self.dataset,
            total=max(int(given.get("total") or 0), int(old.get("total") or 0)),
            eval_seconds=float(old.get("eval_seconds") or 0.0),
            created=old.get("created", now),
            updated=now,
        )
        return meta

    # -- public API ----------------------------------------------------------------------------------------------
    def missing(self, problems: Sequence[Problem], samples: int = 1) -> list[Problem]:
        """The answers still to ask: each problem ``samples`` times, those without a successful answer, in order
        (``series.missing_answers``; empty: the series is complete)."""
        with self._locked():
            self._sync()
            return self._state.missing(problems, samples)

    def append(self, rec: AnswerRecord) -> bool:
        """Append ``rec`` as one flushed line; ``False`` (nothing written) when its id is already answered."""
        if rec.settings_hash != self.settings_hash:
            raise ResultsError(
                f"record {rec.id!r} has settings {rec.settings_hash!r} but series {self.path} is "
                f"{self.settings_hash!r}; build the client's requests with the store's settings hash"
            )
        with self._locked():
            self._sync()
            if self._state.done(rec.key):
                log.info("%s: %s already answered by another run; not stored twice", self.path, rec.key)
                return False
            try:
                self._offset += append_bytes(self.path, jsonl_line(rec.to_dict()))
            except ResultsError:
                _truncate_quietly(self.path, self._offset)  # no partial line left behind by a full disk
                raise
            self._state.absorb(rec)
            return True

    def records(self) -> list[AnswerRecord]:
        """The best record per answer key (latest successful one, else latest error), in order of first appearance."""
        with self._locked():
            self._sync()
            return self._state.records()

    def add_eval_seconds(self, seconds: float) -> None:
        """Add ``seconds`` of wall time to the series' accumulated evaluation time (meta, atomic)."""
        with self._locked():
            meta = self._fresh_meta()
            meta["eval_seconds"] = float(meta.get("eval_seconds") or 0.0) + max(0.0, seconds)
            meta["updated"] = time.time()
            atomic_write_json(self.paths.meta, meta)
            self._meta = meta

    def has_markdown(self) -> bool:
        return self.paths.md.exists()

    def write_markdown(self) -> Path:
        """Rewrite ``<dataset>.md`` atomically from the current records."""
        with self._locked():
            self._sync()
            meta = self._fresh_meta()
            text = render_markdown(meta, self._state.score(meta, self.model_key, self.dataset), self._state.records())
            atomic_write_text(self.paths.md, text)
        return self.paths.md

    def score(self) -> SeriesScore:
        """The aggregate of the series as it stands."""
        with self._locked():
            self._sync()
            return self._state.score(self._fresh_meta(), self.model_key, self.dataset)

    @property
    def meta(self) -> dict[str, Any]:
        return dict(self._meta)

    def _fresh_meta(self) -> dict[str, Any]:
        """The meta on disk when it is still this series' (another process may have added eval time)."""
        disk = read_meta(self.paths.meta)
        return disk if disk.get("settings_hash") == self.settings_hash else dict(self._meta)


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def _truncate_quietly(path: Path, size: int) -> None:
    try:
        os.truncate(path, size)
    except OSError:
        pass
