"""The answers page of a model (``details/<model>/index.html``) as files: counts per dataset, escaping, long texts
cut with a note, written with the leaderboard and rebuilt by `regrade` (the browser tests drive the page itself)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from orchestrator.contract import AnswerRecord
from orchestrator.leaderboard import write_leaderboard
from orchestrator.leaderboard.details_page import FULL_CHARS, counts, write_model_page
from orchestrator.results import SeriesStore, load_scores

REPO = Path(__file__).resolve().parents[2]


def rec(n: int, verdict: str = "incorrect", **extra) -> AnswerRecord:
    fields = {
        "id": f"q{n}",
        "dataset": "ds",
        "model": "m",
        "task": f"Сколько будет 2+{n}?",
        "reference": str(2 + n),
        "response": f"Ответ: \\boxed{{{2 + n}}}",
        "extracted": str(2 + n),
        "verdict": verdict,
        "settings_hash": "h",
    }
    fields.update(extra)
    return AnswerRecord(**fields)


def store(results: Path, *records: AnswerRecord, total: int = 4) -> None:
    s = SeriesStore(results, "m", "ds", "h", meta={"total": total})
    for r in records:
        s.append(r)


def test_counts_split_verdicts_and_count_truncated_and_failed_requests_apart() -> None:
    found = counts(
        [
            rec(0, "correct"),
            rec(1, "correct", finish_reason="length"),
            rec(2, "unparsed"),
            rec(3, "", error="HTTP 500"),
            rec(4, "timeout"),
        ]
    )
    assert (found["correct"], found["unparsed"], found["timeout"], found["error"], found["truncated"]) == (
        2,
        1,
        1,
        1,
        1,
    )


def test_page_is_written_with_the_leaderboard_and_linked_from_it(tmp_path: Path) -> None:
    results = tmp_path / "results"
    store(results, rec(0, "correct"), rec(1, response="<script>alert(1)</script>", reasoning="x" * (FULL_CHARS + 5)))
    write_leaderboard(results, load_scores(results))
    page = (results / "details" / "m" / "index.html").read_text()
    assert 'href="details/m/index.html"' in (results / "leaderboard.html").read_text()
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<script>") == 1 and "http" not in page.split("<script>")[1].split("</script>")[0]
    assert f"cut at {FULL_CHARS:,} of {FULL_CHARS + 5:,} characters" in page
    assert "\\boxed{2}" in page and "50.0% (2/4, incomplete)" in page


def test_a_model_without_answers_gets_no_page(tmp_path: Path) -> None:
    assert write_model_page(tmp_path, "nobody") is None


def test_regrade_rebuilds_the_page_with_the_new_verdicts(tmp_path: Path) -> None:
    results = tmp_path / "results"
    store(results, rec(0, "incorrect"), total=1)  # "Ответ: \boxed{2}" for 2+0 is correct
    write_leaderboard(results, load_scores(results))
    assert 'data-v="incorrect"' in (results / "details" / "m" / "index.html").read_text()
    out = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "regrade", "--results-dir", str(results)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert out.returncode == 0, out.stderr
    assert 'data-v="correct"' in (results / "details" / "m" / "index.html").read_text()


def test_only_pages_whose_answers_changed_are_rewritten(tmp_path: Path) -> None:
    results = tmp_path / "results"
    store(results, rec(0, "correct"), total=2)
    write_leaderboard(results, load_scores(results))
    page = results / "details" / "m" / "index.html"
    page.write_text("kept")  # newer than the answers: nothing changed since it was written
    write_leaderboard(results, load_scores(results))
    assert page.read_text() == "kept"
    store(results, rec(1, "correct"), total=2)
    write_leaderboard(results, load_scores(results))
    assert 'data-v="correct"' in page.read_text() and "q1" in page.read_text()
