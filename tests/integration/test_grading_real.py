"""Real model answers from ../shared/upstream-data (read at run time; skipped when the folder is absent), against
the hand labels of tests/data/grading/real_labels.jsonl."""

from __future__ import annotations

import collections

import pytest

from orchestrator.contract import Grade
from orchestrator.grading import GradeRequest, grade_many
from standins.upstream import UpstreamAnswer, available, load_upstream
from tests.support.grading_gold import real_labels

pytestmark = pytest.mark.skipif(not available(), reason="../shared/upstream-data is not present")
LABELS = real_labels("labels")
BLIND = real_labels("blind")


@pytest.fixture(scope="module")
def upstream() -> list[UpstreamAnswer]:
    return load_upstream()


@pytest.fixture(scope="module")
def graded(upstream: list[UpstreamAnswer]) -> dict[tuple[str, int], Grade]:
    grades = grade_many([GradeRequest(a.response, a.reference) for a in upstream])
    return {a.key: g for a, g in zip(upstream, grades)}


@pytest.mark.timeout(600)
def test_every_real_answer_is_graded_without_timeout(
    upstream: list[UpstreamAnswer], graded: dict[tuple[str, int], Grade]
) -> None:
    assert len(upstream) >= 2000
    verdicts = collections.Counter(g.verdict for g in graded.values())
    assert verdicts["timeout"] == 0
    assert verdicts["correct"] > 500 and verdicts["incorrect"] > 1000
    assert max(g.seconds for g in graded.values()) < 2.5


def test_the_labels_point_at_real_answers(upstream: list[UpstreamAnswer]) -> None:
    keys = {a.key for a in upstream}
    assert len(LABELS) >= 600
    assert len({label.key for label in LABELS}) == len(LABELS)
    assert all(label.key in keys and label.verdict in ("correct", "incorrect") for label in LABELS)


def test_agreement_with_hand_labels(graded: dict[tuple[str, int], Grade]) -> None:
    false_pos = [x.key for x in LABELS if x.verdict == "incorrect" and graded[x.key].verdict == "correct"]
    false_neg = [x.key for x in LABELS if x.verdict == "correct" and graded[x.key].verdict != "correct"]
    agreement = 1 - (len(false_pos) + len(false_neg)) / len(LABELS)
    assert agreement >= 0.99, f"false positives {false_pos}, false negatives {false_neg}"
    assert len(false_pos) <= 1


def test_the_blind_sample_is_disjoint_from_the_labels_and_points_at_real_answers(
    upstream: list[UpstreamAnswer],
) -> None:
    keys = {a.key for a in upstream}
    labelled = {x.key for x in LABELS}
    assert len(BLIND) == 40 and len({x.key for x in BLIND}) == 40
    assert all(x.key in keys and x.key not in labelled and x.verdict in ("correct", "incorrect") for x in BLIND)


def test_agreement_with_the_blind_sample(graded: dict[tuple[str, int], Grade]) -> None:
    wrong = [x.key for x in BLIND if (graded[x.key].verdict == "correct") != (x.verdict == "correct")]
    assert not wrong, f"grader and blind labels differ on {wrong}"
