"""Datasets: registered hub datasets, built-in Russian samples, local JSONL/CSV/Parquet files.

Public API::

    REGISTRY: dict[str, DatasetSpec]            sample-math, sample-physics, russianmath, russianphysics, demidovich
    DEFAULT_DATASETS: tuple[str, ...]           what the default config runs (the built-in samples)
    get_spec(name) -> DatasetSpec
    load(spec, limit=None, *, hub=None, cwd=None, max_bytes=MAX_FILE_BYTES) -> list[Problem]
    dataset_version(problems) -> str            short hash over ids/tasks/references/tolerances
    resolve_path(path, *, cwd=None) -> Path     relative: cwd, then the project root
    HubClient(list_repo_files=, hf_hub_download=, snapshot_download=, timeout=)   the hub seam

Every malformed input raises ``orchestrator.errors.DatasetError`` with one line naming the file, line and column.
"""

from orchestrator.datasets.files import MAX_FILE_BYTES
from orchestrator.datasets.hub import HubClient
from orchestrator.datasets.loader import load
from orchestrator.datasets.problems import dataset_version, task_id
from orchestrator.datasets.registry import DEFAULT_DATASETS, REGISTRY, get_spec, project_root, resolve_path

__all__ = [
    "DEFAULT_DATASETS",
    "MAX_FILE_BYTES",
    "REGISTRY",
    "HubClient",
    "dataset_version",
    "get_spec",
    "load",
    "project_root",
    "resolve_path",
    "task_id",
]
