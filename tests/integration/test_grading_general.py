"""Answers nobody wrote for the grader (issue 29's classes) through the whole grader: extraction, parent, workers.

``general.jsonl`` (the developer's own set, each acceptance beside its near miss) must agree case by case.
``blind_general.jsonl`` (written blind) is the held-out measure: it is never pinned case by case, but it must keep
every false positive out and agree on nearly all.
"""

from __future__ import annotations

import collections

import pytest

from orchestrator.contract import Grade
from orchestrator.grading import GradeRequest, grade_many
from tests.support.grading_gold import GoldCase, load_cases

GENERAL = load_cases("general.jsonl")
BLIND = load_cases("blind_general.jsonl")


def _grade(cases: list[GoldCase]) -> list[Grade]:
    return grade_many([GradeRequest(c.response, c.reference, c.domain, c.tolerance) for c in cases])


@pytest.fixture(scope="module")
def general() -> list[Grade]:
    return _grade(GENERAL)


@pytest.fixture(scope="module")
def blind() -> list[Grade]:
    return _grade(BLIND)


def test_every_class_has_acceptances_and_near_misses() -> None:
    for cases in (GENERAL, BLIND):
        by_class = collections.defaultdict(set)
        for case in cases:
            by_class[case.klass].add(case.verdict)
        assert set(by_class) == set(range(1, 15))
        assert all("incorrect" in verdicts and "correct" in verdicts for verdicts in by_class.values())


@pytest.mark.parametrize("index", range(len(GENERAL)), ids=[f"class{c.klass}-{i}" for i, c in enumerate(GENERAL)])
def test_general_case(index: int, general: list[Grade]) -> None:
    case, got = GENERAL[index], general[index]
    assert (got.verdict == "correct") == (case.verdict == "correct"), (
        f"{case.response[-80:]!r} vs {case.reference!r} ({case.why}): extracted {got.extracted!r}, {got.verdict}"
    )


def test_the_blind_set_gets_no_false_positive_and_nearly_all_verdicts(blind: list[Grade]) -> None:
    false_pos = [c.response[-60:] for c, g in zip(BLIND, blind) if g.verdict == "correct" and c.verdict != "correct"]
    agree = sum((g.verdict == "correct") == (c.verdict == "correct") for c, g in zip(BLIND, blind))
    assert not false_pos
    assert agree / len(BLIND) >= 0.95


def test_no_answer_times_out_or_is_slow(general: list[Grade], blind: list[Grade]) -> None:
    grades = general + blind
    assert all(g.verdict != "timeout" for g in grades)
    assert max(g.seconds for g in grades) < 2.5  # half the default per-check timeout, on a loaded 2-core box
