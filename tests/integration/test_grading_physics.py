"""Physics answers in real models' styles (tests/data/grading/physics.jsonl) through the whole grader."""

from __future__ import annotations

import pytest

from orchestrator.contract import Grade
from orchestrator.grading import GradeRequest, grade_many
from tests.support.grading_gold import GoldCase, load_cases

PHYSICS_CASES = load_cases("physics.jsonl")


@pytest.fixture(scope="module")
def graded() -> list[Grade]:
    return grade_many([GradeRequest(c.response, c.reference, "physics", c.tolerance) for c in PHYSICS_CASES])


def test_the_physics_set_is_large_and_has_both_labels_and_reasons() -> None:
    assert len(PHYSICS_CASES) >= 60
    assert {c.verdict for c in PHYSICS_CASES} == {"correct", "incorrect"}
    assert sum(c.verdict == "incorrect" for c in PHYSICS_CASES) >= 20
    assert all(c.why.strip() for c in PHYSICS_CASES)
    assert len({(c.response, c.reference) for c in PHYSICS_CASES}) == len(PHYSICS_CASES)


@pytest.mark.parametrize("index", range(len(PHYSICS_CASES)), ids=[f"physics-{i}" for i in range(len(PHYSICS_CASES))])
def test_physics_answer(index: int, graded: list[Grade]) -> None:
    case: GoldCase = PHYSICS_CASES[index]
    got = graded[index]
    assert (got.verdict == "correct") == (case.verdict == "correct"), (
        f"{case.response[-80:]!r} vs {case.reference!r} ({case.why}): extracted {got.extracted!r}, {got.verdict}"
    )


def test_no_physics_answer_times_out(graded: list[Grade]) -> None:
    assert all(g.verdict != "timeout" for g in graded)
