"""Rows -> Problems: column mapping, stable ids, duplicates, and the dataset version hash."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
from collections.abc import Iterable
from typing import Any

from orchestrator.contract import DatasetSpec, Problem
from orchestrator.datasets.files import Row
from orchestrator.errors import DatasetError

log = logging.getLogger(__name__)


def task_id(task: str) -> str:
    """The id of a problem without an id column: the first 12 hex digits of sha1 of its text."""
    return hashlib.sha1(task.encode("utf-8")).hexdigest()[:12]


def to_problems(rows: Iterable[Row], spec: DatasetSpec, *, keep_repeats: bool = False) -> list[Problem]:
    """Map ``rows`` through ``spec``'s columns; duplicates are errors naming both rows.

    ``keep_repeats`` (hub datasets, which the user cannot edit): a task repeated verbatim with the same answer
    and no id column is kept as a separate problem with id ``<hash>-2``, ``<hash>-3``... as the source counts it.
    """
    problems: list[Problem] = []
    seen: dict[str, tuple[str, str]] = {}  # id -> (where, reference)
    for row in rows:
        problem = _problem(row, spec)
        problem = _unique(problem, row.where, seen, spec, keep_repeats)
        seen[problem.id] = (row.where, problem.reference)
        problems.append(problem)
    return problems


def _problem(row: Row, spec: DatasetSpec) -> Problem:
    task = _text(row, spec.question, "question")
    reference = _text(row, spec.answer, "answer")
    pid = _text(row, spec.id, "id") if spec.id else task_id(task)
    tolerance = _tolerance(row, spec.tolerance) if spec.tolerance else None
    return Problem(id=pid, dataset=spec.name, domain=spec.domain, task=task, reference=reference, tolerance=tolerance)


def _unique(
    problem: Problem, where: str, seen: dict[str, tuple[str, str]], spec: DatasetSpec, keep_repeats: bool
) -> Problem:
    if problem.id not in seen:
        return problem
    first, first_reference = seen[problem.id]
    if spec.id:
        raise DatasetError(
            f"{where}, column {spec.id!r}: id {problem.id!r} is already used at {first}; make the ids unique"
        )
    if keep_repeats and first_reference == problem.reference:
        repeat = 2
        while f"{problem.id}-{repeat}" in seen:
            repeat += 1
        log.warning("%s repeats the task of %s; kept as id %s-%d", where, first, problem.id, repeat)
        return dataclasses.replace(problem, id=f"{problem.id}-{repeat}")
    raise DatasetError(
        f"{where}, column {spec.question!r}: the same task text as {first} "
        f"(id {problem.id}); remove the duplicate, or add an id column and map it with `id:`"
    )


def _text(row: Row, column: str, role: str) -> str:
    if column not in row.data:
        names = ", ".join(repr(name) for name in row.data) or "none"
        raise DatasetError(
            f"{row.where}: no column {column!r} (columns: {names}); set `{role}:` in the config's "
            f"`datasets:` block to the column that holds the {role}"
        )
    text = _cell_text(row.data[column])
    if text is None:
        raise DatasetError(
            f"{row.where}, column {column!r}: a {type(row.data[column]).__name__} where text "
            f"or a number is expected; write the {role} as a string"
        )
    if not text:
        raise DatasetError(f"{row.where}, column {column!r}: the {role} is empty; fill it in or remove the row")
    return text


def _cell_text(value: Any) -> str | None:
    """Text of a cell: strings stripped, numbers as written (12.0 -> "12"), NaN/None empty; None if not scalar."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (str, int, float)):
        return str(value).strip()
    return None


def _tolerance(row: Row, column: str) -> float | None:
    value = row.data.get(column)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        tolerance = float(str(value).replace(",", ".")) if not isinstance(value, bool) else math.nan
    except ValueError:
        tolerance = math.nan
    if not math.isfinite(tolerance) or tolerance < 0:
        raise DatasetError(
            f"{row.where}, column {column!r}: tolerance {value!r} is not a number >= 0; "
            f"write a relative tolerance such as 0.01, or leave it empty"
        )
    return tolerance


def dataset_version(problems: list[Problem]) -> str:
    """A short hash over ids, tasks, references and tolerances: any edit of the data starts a new series.

    The order of the problems does not matter (they are sorted by id first).
    """
    items = sorted(([p.id, p.task, p.reference, p.tolerance] for p in problems), key=lambda item: item[0])
    blob = json.dumps(items, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12]
