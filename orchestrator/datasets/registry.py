"""The registered datasets and where relative dataset paths are found.

Relative paths (the built-in samples ``datasets/sample-*.jsonl`` and any ``path:`` from the config) are looked up
first in the current directory, then under the project root: the nearest directory above this package that holds
``datasets/sample-math.jsonl`` (a source checkout or an editable install), or ``$DEATHMATH_ROOT`` when set (any
other install). So the CLI finds the samples from whatever directory it is started in.
"""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.contract import DatasetSpec
from orchestrator.errors import DatasetError

SAMPLE_MARKER = Path("datasets") / "sample-math.jsonl"
ROOT_ENV = "DEATHMATH_ROOT"

DEMIDOVICH_CONFIGS = (
    "Approximation_by_Polynomials",
    "Continuous_Functions",
    "Convex_Functions",
    "Differentiation",
    "Improper_Integrals",
    "Infinite_Series",
    "Integration",
    "Sequences_and_Limits",
    "Series_of_Functions",
)

REGISTRY: dict[str, DatasetSpec] = {
    "sample-math": DatasetSpec(
        name="sample-math", domain="math", path="datasets/sample-math.jsonl", question="task", answer="answer", id="id"
    ),
    "sample-physics": DatasetSpec(
        name="sample-physics",
        domain="physics",
        path="datasets/sample-physics.jsonl",
        question="task",
        answer="answer",
        id="id",
        tolerance="tolerance",
    ),
    "russianmath": DatasetSpec(
        name="russianmath", domain="math", hub_id="Vikhrmodels/russian_math", question="task", answer="short answer"
    ),
    "russianphysics": DatasetSpec(
        name="russianphysics", domain="physics", hub_id="Vikhrmodels/russian_physics", question="task", answer="answer"
    ),
    "demidovich": DatasetSpec(
        name="demidovich",
        domain="math",
        hub_id="Vikhrmodels/MathDemon_Demidovich",
        hub_configs=DEMIDOVICH_CONFIGS,
        question="problem",
        answer="answer",
    ),
}

# What the default config runs: our own Russian samples, no network, no gated terms.
DEFAULT_DATASETS: tuple[str, ...] = ("sample-math", "sample-physics")


def get_spec(name: str) -> DatasetSpec:
    """The registered spec called ``name``; DatasetError naming the known ones otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise DatasetError(
            f"unknown dataset {name!r}: use one of {known}, or define it with `path:` in the config's `datasets:` block"
        ) from None


def project_root() -> Path | None:
    """``$DEATHMATH_ROOT`` if set, else the nearest directory above this package holding the samples."""
    env = os.environ.get(ROOT_ENV)
    if env:
        return Path(env).expanduser().resolve()
    for parent in Path(__file__).resolve().parents:
        if (parent / SAMPLE_MARKER).is_file():
            return parent
    return None


def resolve_path(path: str, *, cwd: Path | None = None) -> Path:
    """The existing file ``path`` names: absolute as is, relative against ``cwd`` then the project root."""
    given = Path(path).expanduser()
    if given.is_absolute():
        candidates = [given]
    else:
        root = project_root()
        candidates = [(cwd or Path.cwd()) / given] + ([root / given] if root else [])
    for candidate in candidates:
        if candidate.exists():
            return candidate
    looked = " and ".join(str(c) for c in dict.fromkeys(candidates))
    raise DatasetError(
        f"dataset file {path} not found (looked at {looked}); fix `path:` in the config's `datasets:` block"
    )
