"""The written test set (tests/data/grading/cases.jsonl) through the whole grader: extraction, parent, workers."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from orchestrator.contract import Grade
from orchestrator.grading import GradeRequest, grade_many
from tests.support.grading_gold import GoldCase, load_cases

CASES = load_cases("cases.jsonl")


@pytest.fixture(scope="module")
def graded() -> list[Grade]:
    return grade_many([GradeRequest(c.response, c.reference, c.domain, c.tolerance) for c in CASES])


def test_the_set_is_large_and_covers_every_group() -> None:
    groups = collections.Counter(c.group for c in CASES)
    assert len(CASES) >= 200
    assert set(groups) == {
        "extraction",
        "russian-formats",
        "exact",
        "approximate",
        "near-misses",
        "structures",
        "text",
        "units",
        "adversarial",
        "split-answers",
        "magnitudes",
        "unit-words",
        "stated-unit",
    }
    assert min(groups.values()) >= 10


@pytest.mark.parametrize("index", range(len(CASES)), ids=[f"{c.group}-{i}" for i, c in enumerate(CASES)])
def test_case(index: int, graded: list[Grade]) -> None:
    case: GoldCase = CASES[index]
    got = graded[index]
    assert got.verdict == case.verdict, f"{case.response[:80]!r} vs {case.reference!r}: extracted {got.extracted!r}"
    if case.approximate is not None:
        assert got.approximate == case.approximate


def test_no_case_is_graded_slowly_or_times_out(graded: list[Grade]) -> None:
    assert all(g.verdict != "timeout" for g in graded)
    assert max(g.seconds for g in graded) < 2.5  # half the default per-check timeout, on a loaded 2-core box


def test_an_answer_that_runs_code_does_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    response = f"Ответ: __import__('os').system('touch {marker}')"
    grade = grade_many([GradeRequest(response, "0")])[0]
    assert grade.verdict == "unparsed"
    assert not marker.exists()
