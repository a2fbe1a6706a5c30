"""The ``datasets:`` block: local datasets, or overrides of registered ones, read into ``DatasetSpec``."""

from __future__ import annotations

from typing import Any

from ..contract import DOMAINS, DatasetSpec
from ..datasets import REGISTRY  # the registry of built-in and hub datasets
from .reader import Reader, kind

DATASET_KEYS = {"path", "domain", "question", "answer", "id", "tolerance", "hub_id", "configs", "split"}


def read_datasets(read: Reader, raw: Any) -> dict[str, DatasetSpec]:
    """The ``datasets:`` mapping (``None``: none declared)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not raw:
        raise read.fail(
            "datasets", f"expected a mapping of dataset names to blocks, got {kind(raw)}", "see datasets/README.md"
        )
    return {str(name): _dataset(read, str(name), block, REGISTRY.get(str(name))) for name, block in raw.items()}


def _dataset(read: Reader, name: str, block: Any, base: DatasetSpec | None) -> DatasetSpec:
    where = f"datasets.{name}"
    block = {} if block is None else block
    if not isinstance(block, dict):
        raise read.fail(where, f"expected a mapping, got {kind(block)}", "see datasets/README.md")
    read.check_keys(block, DATASET_KEYS, where)
    if base is None and "path" not in block and "hub_id" not in block:
        known = ", ".join(sorted(REGISTRY))
        raise read.fail(
            where, "not a registered dataset and has no `path`", f"add `path: file.jsonl` or use one of: {known}"
        )
    return _dataset_spec(read, name, where, block, base or DatasetSpec(name=name))


def _dataset_spec(read: Reader, name: str, where: str, block: dict, base: DatasetSpec) -> DatasetSpec:
    domain = read.text(block, "domain", f"{where}.domain") or base.domain
    if domain not in DOMAINS:
        raise read.fail(f"{where}.domain", f"unknown domain {domain!r}", "use math or physics")
    path = read.text(block, "path", f"{where}.path")
    if path is not None:
        path = read.existing_file(f"{where}.path", path)
    strs = {
        k: read.text(block, k, f"{where}.{k}") for k in ("question", "answer", "id", "tolerance", "hub_id", "split")
    }
    return DatasetSpec(
        name=name,
        domain=domain,
        path=path if path is not None else (None if "hub_id" in block else base.path),
        hub_id=strs["hub_id"] or (None if path else base.hub_id),
        hub_configs=read.strings(block["configs"], f"{where}.configs") if "configs" in block else base.hub_configs,
        split=strs["split"] or base.split,
        question=strs["question"] or base.question,
        answer=strs["answer"] or base.answer,
        id=strs["id"] or base.id,
        tolerance=strs["tolerance"] or base.tolerance,
    )
