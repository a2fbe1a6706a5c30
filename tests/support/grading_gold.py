"""The grader's gold sets: the labelled answers under tests/data/grading/ (JSON Lines), read as typed cases.

Each line of a case file is one answer: ``response``, ``reference``, ``verdict`` (``correct``, ``incorrect`` or
``unparsed``) and optionally ``domain`` (``math`` when absent), ``tolerance``, ``approximate`` (None: not checked),
``group``, ``class`` (the issue-29 class it exercises) and ``why``. ``real_labels.jsonl`` holds hand labels of real
upstream answers by file and index only (their texts are eval-only and stay in ../shared). Where each set comes
from and whether it was written blind: tests/data/grading/README.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data" / "grading"


@dataclass(frozen=True)
class GoldCase:
    """One labelled answer."""

    response: str
    reference: str
    verdict: str
    domain: str = "math"
    tolerance: float | None = None
    approximate: bool | None = None
    group: str = ""
    klass: int = 0
    why: str = ""


@dataclass(frozen=True)
class RealLabel:
    """A hand label of the real answer at ``index`` of upstream details ``file``; ``set`` is ``labels`` or ``blind``."""

    file: str
    index: int
    verdict: str
    set: str
    note: str = ""

    @property
    def key(self) -> tuple[str, int]:
        return (self.file, self.index)


def _lines(name: str) -> list[dict]:
    text = (DATA / name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def load_cases(name: str) -> list[GoldCase]:
    """The cases of ``tests/data/grading/<name>`` (``cases.jsonl``, ``physics.jsonl``, ``general.jsonl``...)."""
    out = []
    for row in _lines(name):
        out.append(
            GoldCase(
                row["response"],
                row["reference"],
                row["verdict"],
                row.get("domain") or "math",
                row.get("tolerance"),
                row.get("approximate"),
                row.get("group", ""),
                int(row.get("class", 0)),
                row.get("why", ""),
            )
        )
    return out


def real_labels(which: str) -> list[RealLabel]:
    """The hand labels of real upstream answers in set ``which`` (``labels`` or ``blind``)."""
    return [RealLabel(**row) for row in _lines("real_labels.jsonl") if row["set"] == which]
