"""Whole-directory operations: ``regrade`` every current series, ``load_scores`` for the leaderboard; and
``rewrite_series``, the one way a series' lines are changed in place (the judge's verdicts go in through it)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ..contract import AnswerRecord, Grade, Problem, SeriesScore
from ..fileio import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    jsonl_line,
    read_jsonl,
    truncate_torn_tail,
)
from .layout import SeriesPaths, current_hash, iter_series, read_meta, series_lock
from .markdown import render_markdown
from .series import SeriesState, to_record

log = logging.getLogger(__name__)


def _read_series(paths: SeriesPaths) -> tuple[dict, SeriesState, list[AnswerRecord]]:
    """Meta, state and every record (all lines, in file order) of one series."""
    meta = read_meta(paths.meta)
    digest = meta.get("settings_hash") or current_hash(paths)
    objects, _ = read_jsonl(paths.jsonl)
    records = [r for r in map(to_record, objects) if r is not None]
    state = SeriesState(digest)
    for rec in records:
        state.absorb(rec)
    return meta, state, records


def _names(paths: SeriesPaths, meta: dict) -> tuple[str, str]:
    return str(meta.get("model_key") or paths.dir.name), str(meta.get("dataset") or paths.name)


def _apply(rec: AnswerRecord, grade: Grade) -> None:
    rec.extracted, rec.verdict, rec.approximate = grade.extracted, grade.verdict, grade.approximate


GradeBatch = Callable[[Sequence[AnswerRecord]], Sequence[Grade]]


def _per_record(grade_fn: Callable[[AnswerRecord], Grade]) -> GradeBatch:
    return lambda records: [grade_fn(rec) for rec in records]


def regrade_series(paths: SeriesPaths, grade_batch: GradeBatch) -> int:
    """Re-grade every successful answer of one series; rewrite its JSONL and .md atomically under its lock."""
    with series_lock(paths):
        truncate_torn_tail(paths.jsonl)
        meta, state, records = _read_series(paths)  # state holds the same record objects, graded below
        answers = [r for r in records if r.error is None]
        for rec, grade in zip(answers, grade_batch(answers), strict=True):
            _apply(rec, grade)
        atomic_write_bytes(paths.jsonl, b"".join(jsonl_line(r.to_dict()) for r in records))
        model, dataset = _names(paths, meta)
        atomic_write_text(paths.md, render_markdown(meta, state.score(meta, model, dataset), state.records()))
    log.info("regraded %d answer(s) of %s", len(answers), paths.jsonl)
    return len(answers)


def rewrite_series(
    paths: SeriesPaths,
    change: Callable[[list[AnswerRecord]], list[AnswerRecord]],
    meta_update: Mapping[str, object] | None = None,
) -> bool:
    """Replace every line of one series by ``change(lines)`` and merge ``meta_update`` into its meta, atomically
    under its lock (as ``regrade_series``), the .md rewritten too; False (nothing written) when nothing changed."""
    with series_lock(paths):
        truncate_torn_tail(paths.jsonl)
        meta, state, records = _read_series(paths)
        changed = change(list(records))
        new_meta = {**meta, **meta_update} if meta_update else meta
        if changed == records and new_meta == meta:
            return False
        atomic_write_bytes(paths.jsonl, b"".join(jsonl_line(r.to_dict()) for r in changed))
        if new_meta != meta:
            atomic_write_json(paths.meta, new_meta)
        state = SeriesState(state.settings_hash)
        for rec in changed:
            state.absorb(rec)
        model, dataset = _names(paths, new_meta)
        atomic_write_text(paths.md, render_markdown(new_meta, state.score(new_meta, model, dataset), state.records()))
    return True


def regrade(
    results_dir: Path, grade_fn: Callable[[AnswerRecord], Grade] | None = None, *, grade_batch: GradeBatch | None = None
) -> int:
    """Re-grade every current series under ``results_dir`` with ``grade_batch`` (a whole series at once, so the
    grader's workers run in parallel) or ``grade_fn`` per record; returns the number of answers re-graded."""
    batch = grade_batch or _per_record(grade_fn)  # type: ignore[arg-type]  # callers give one of the two
    return sum(regrade_series(paths, batch) for paths in iter_series(Path(results_dir)))


def load_scores(results_dir: Path) -> list[SeriesScore]:
    """The score of every current series under ``results_dir`` (lock-free read; a torn tail is ignored)."""
    scores = []
    for paths in iter_series(Path(results_dir)):
        meta, state, _ = _read_series(paths)
        model, dataset = _names(paths, meta)
        scores.append(state.score(meta, model, dataset))
    return scores


def missing_in(
    results_dir: Path, model_key: str, dataset: str, settings_hash: str, problems: Sequence[Problem], samples: int
) -> list[Problem]:
    """The answers the series of ``model_key`` on ``dataset`` with ``settings_hash`` still lacks (``SeriesState.
    missing``), from a lock-free read; all of them when the series on disk has other settings or is absent."""
    objects, _ = read_jsonl(SeriesPaths.of(Path(results_dir), model_key, dataset).jsonl)
    state = SeriesState(settings_hash)
    state.absorb_dicts(objects)
    return state.missing(problems, samples)


def read_series(paths: SeriesPaths) -> tuple[dict, SeriesScore, list[AnswerRecord]]:
    """Meta, score and the best record per id (in order of first appearance) of one series; a lock-free read."""
    meta, state, _ = _read_series(paths)
    model, dataset = _names(paths, meta)
    return meta, state.score(meta, model, dataset), state.records()
