"""``load``: a DatasetSpec -> its Problems, from a local file (``path``) or the hub (``hub_id``)."""

from __future__ import annotations

import logging
from pathlib import Path

from orchestrator.contract import DOMAINS, DatasetSpec, Problem
from orchestrator.datasets.files import MAX_FILE_BYTES, read_rows
from orchestrator.datasets.hub import HubClient
from orchestrator.datasets.problems import to_problems
from orchestrator.datasets.registry import resolve_path
from orchestrator.errors import DatasetError

log = logging.getLogger(__name__)


def load(
    spec: DatasetSpec,
    limit: int | None = None,
    *,
    hub: HubClient | None = None,
    cwd: Path | None = None,
    max_bytes: int = MAX_FILE_BYTES,
) -> list[Problem]:
    """The problems of ``spec`` (the first ``limit`` of them), validated in full.

    ``path`` wins over ``hub_id``, so a registered hub dataset can be pointed at a local copy. ``hub`` is the
    hub seam (default: the real ``huggingface_hub``); relative paths resolve against ``cwd``, then the project root.
    """
    _check(spec, limit)
    if spec.path:
        file = resolve_path(spec.path, cwd=cwd)
        problems = to_problems(read_rows(file, max_bytes=max_bytes), spec)
        source = str(file)
    else:
        fetched = (hub or HubClient()).fetch(spec.hub_id or "", spec.hub_configs, spec.split)
        rows = [row for label, file in fetched for row in read_rows(file, label=label, max_bytes=max_bytes)]
        problems = to_problems(rows, spec, keep_repeats=True)
        source = f"hub dataset {spec.hub_id}"
    if not problems:
        raise DatasetError(
            f"dataset {spec.name!r} ({source}) has no problems; add rows to it or remove it from the run"
        )
    log.info("dataset %s: %d problems from %s", spec.name, len(problems), source)
    return problems[:limit] if limit else problems


def _check(spec: DatasetSpec, limit: int | None) -> None:
    if spec.domain not in DOMAINS:
        raise DatasetError(
            f"dataset {spec.name!r}: domain {spec.domain!r} is unknown; set `domain:` to one of {', '.join(DOMAINS)}"
        )
    if not spec.path and not spec.hub_id:
        raise DatasetError(f"dataset {spec.name!r} has no source; set `path:` in the config's `datasets:` block")
    if limit is not None and limit < 1:
        raise DatasetError(f"dataset {spec.name!r}: limit {limit} must be at least 1; omit it to use all problems")
