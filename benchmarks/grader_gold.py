"""The grader's gold sets as the benchmarks read them: tests/data/grading/*.jsonl, one labelled answer a line.

Read here directly (benchmarks import nothing from tests/): each row is a dict with ``response``, ``reference``,
``verdict`` and optionally ``domain``, ``tolerance``, ``group``, ``class``; see tests/data/grading/README.md.
"""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.grading import GradeRequest

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "grading"


def rows(name: str) -> list[dict]:
    """The rows of ``tests/data/grading/<name>`` ([] when the file is absent)."""
    path = DATA / name
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def request(row: dict) -> GradeRequest:
    """The grade request of one labelled row."""
    return GradeRequest(row["response"], row["reference"], row.get("domain") or "math", row.get("tolerance"))
