"""The commands on stored results that start nothing: the leaderboard rebuilt, the judge-vs-grader review, a
regrade with the current grader."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..contract import AnswerRecord, Grade
from ..grading import GradeRequest, grade_many
from ..judge import write_review
from ..leaderboard import write_leaderboard
from ..reasoning.forced import graded_text
from ..results import iter_series, load_scores, read_series, regrade


def rebuild_leaderboard(results_dir: Path, datasets: Sequence[str] | None = None) -> dict[str, Path]:
    """Aggregate the current series under ``results_dir`` and write leaderboard.md/.json/.html."""
    return write_leaderboard(results_dir, load_scores(results_dir), datasets)


def review(results_dir: Path, out: Path) -> int:
    """``review --out``: the answers where the judge and the rule grader disagree, as cases to label
    (``judge.review``); returns how many."""
    records = [rec for paths in iter_series(results_dir) for rec in read_series(paths)[2]]
    return write_review(records, out)


def regrade_all(results_dir: Path) -> int:
    """Re-score every current series under ``results_dir`` with the current grader; returns answers re-scored."""

    def batch(records: Sequence[AnswerRecord]) -> list[Grade]:
        return grade_many(
            [
                GradeRequest(graded_text(r.response, r.reasoning, r.graded_tail), r.reference, r.domain, r.tolerance)
                for r in records
            ]
        )

    return regrade(results_dir, grade_batch=batch)
