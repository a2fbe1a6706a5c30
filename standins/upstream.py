"""Real model answers from the upstream DeathMath repository, read from ``../shared`` at run time (eval-only:
nothing of it is copied into the project). Used by tests/integration/test_grading_real.py and benchmarks/grader.py."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

_DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "upstream-data" / "VikhrModels_DeathMath"
UPSTREAM = Path(os.environ.get("DEATHMATH_UPSTREAM", _DEFAULT))
DETAILS = UPSTREAM / "results_history" / "results" / "details"


@dataclass(frozen=True)
class UpstreamAnswer:
    """One stored answer: ``file`` is relative to DETAILS, ``index`` its position in that file."""

    file: str
    index: int
    reference: str
    response: str
    upstream_score: float

    @property
    def key(self) -> tuple[str, int]:
        return (self.file, self.index)


def available() -> bool:
    return DETAILS.is_dir()


def _examples(data: object) -> list[tuple[str, str, float]]:
    """``(reference, response, score)`` from either upstream details format."""
    if isinstance(data, dict):
        return [(e["correct_answer"], e["model_response"] or "", float(e["score"])) for e in data["examples"]]
    assert isinstance(data, list)
    return [(e["correct_answer"], e["convo"][-1]["content"] or "", float(e["score"])) for e in data]


def load_upstream(details: Path = DETAILS) -> list[UpstreamAnswer]:
    """Every answer of every details file, in a stable order."""
    out = []
    for path in sorted(details.glob("*/*.json")):
        rel = path.relative_to(details).as_posix()
        examples = _examples(json.loads(path.read_text(encoding="utf-8")))
        out.extend(UpstreamAnswer(rel, i, ref, resp, score) for i, (ref, resp, score) in enumerate(examples))
    return out
