"""A run's inputs, checked before any server starts: the models and datasets chosen (``select_models``,
``select_datasets``: unknown names are a ``ConfigError``), the datasets loaded (bad data is bad input), and the
results and logs directories (``preflight``: they exist and are writable, or can be created)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

from .. import datasets as ds
from ..config import RunConfig
from ..contract import DatasetSpec, ModelConfig
from ..errors import ConfigError
from ..job import DatasetRun

ORIGINAL_DATASETS = ("russianmath", "russianphysics")  # `all` for a config without `datasets:`, as upstream
ALIASES = {"math": "russianmath", "physics": "russianphysics"}


def select_models(cfg: RunConfig, names: Sequence[str] | None, parallel: int | None = None) -> list[ModelConfig]:
    """The models to run, in model_list order (``parallel`` overrides each one's); unknown names are a ConfigError."""
    known = {m.key: m for m in cfg.models}
    for name in names or ():
        if name not in known:
            raise ConfigError(f"--models: {name!r} is not in model_list of {cfg.path}; choose from {', '.join(known)}")
    chosen = [m for m in cfg.models if not names or m.key in set(names)]
    if parallel is None:
        return chosen
    return [dataclasses.replace(m, parallel=parallel) for m in chosen]


def select_datasets(cfg: RunConfig, arg: str) -> list[DatasetSpec]:
    """``all`` = the config's declared datasets (or RussianMath + RussianPhysics); else comma-separated names."""
    if arg.strip() in ("", "all"):
        names = list(cfg.datasets) or list(ORIGINAL_DATASETS)
    else:
        names = [ALIASES.get(n.strip(), n.strip()) for n in arg.split(",") if n.strip()]
    specs = []
    for name in names:
        spec = cfg.datasets.get(name) or ds.REGISTRY.get(name)
        if spec is None:
            choices = ", ".join(sorted(set(cfg.datasets) | set(ds.REGISTRY)))
            raise ConfigError(
                f"--dataset: unknown dataset {name!r}; choose from all, {choices}, "
                "or declare it under `datasets:` in the config"
            )
        specs.append(spec)
    return specs


def load_datasets(specs: Sequence[DatasetSpec], limit: int | None) -> list[DatasetRun]:
    """Load every dataset before any server starts (bad data is bad input: exit 2)."""
    runs = []
    for spec in specs:
        problems = ds.load(spec, limit=None)
        version = ds.dataset_version(problems)
        runs.append(DatasetRun(spec=spec, problems=tuple(problems[:limit] if limit else problems), version=version))
    return runs


def preflight(results_dir: Path, logs_dir: Path) -> None:
    """ConfigError unless both directories exist and are writable, or can be created; changes nothing on disk."""
    for flag, path in (("--results-dir", results_dir), ("--logs-dir", logs_dir)):
        check_creatable(flag, Path(path))


def check_creatable(flag: str, path: Path) -> None:
    target = path
    while not target.exists() and not target.is_symlink() and target != target.parent:
        target = target.parent  # the nearest existing ancestor is where the directory would be created
    if not target.is_dir():
        problem = "is not a directory" if target == path else f"cannot be created: {target} is not a directory"
        raise ConfigError(f"{flag} {path}: {problem}; choose a directory path")
    if not os.access(target, os.W_OK | os.X_OK):
        where = "" if target == path else f" (its parent {target} is read-only)"
        raise ConfigError(f"{flag} {path}: not writable{where}; fix its permissions or choose another directory")


def check_writable(results_dir: Path) -> None:
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"--results-dir {results_dir}: cannot create it ({exc.strerror}); choose a writable directory"
        ) from None
    if not os.access(results_dir, os.W_OK | os.X_OK):
        raise ConfigError(f"--results-dir {results_dir}: not writable; fix its permissions or choose another directory")
