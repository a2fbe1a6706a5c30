"""Answers cut off by max_tokens (finish_reason "length") are counted per series and shown on the leaderboard."""

from __future__ import annotations

import json

from orchestrator.contract import AnswerRecord
from orchestrator.leaderboard import write_leaderboard
from orchestrator.results import SeriesStore

HASH = "f" * 16


def record(i: int, finish: str | None, error: str | None = None) -> AnswerRecord:
    return AnswerRecord(
        id=f"p{i}",
        dataset="russianmath",
        model="m",
        task="t",
        reference="1",
        response="1",
        reasoning="long thoughts" if finish == "length" else "",
        verdict="correct",
        finish_reason=finish,
        completion_tokens=10,
        settings_hash=HASH,
        error=error,
    )


def series(tmp_path, finishes: list, total: int) -> SeriesStore:
    store = SeriesStore(tmp_path, "m", "russianmath", HASH, meta={"total": total})
    for i, finish in enumerate(finishes):
        store.append(record(i, finish))
    store.append(record(99, "length", error="no progress on the server for 60 s (request_timeout)"))
    return store


def test_a_series_counts_its_truncated_answers_but_not_failed_requests(tmp_path):
    store = series(tmp_path, ["length", "stop", "length", None], total=4)
    score = store.score()
    assert (score.answered, score.truncated, score.errors) == (4, 2, 1)
    store.write_markdown()
    assert "cut off by max_tokens 2" in store.paths.md.read_text()


def test_the_leaderboard_shows_truncated_counts_per_model_and_dataset(tmp_path):
    complete = series(tmp_path / "a", ["length", "stop", "length"], total=3).score()
    partial = series(tmp_path / "b", ["length"], total=5).score()
    clean = series(tmp_path / "c", ["stop", "stop"], total=2).score()
    paths = write_leaderboard(tmp_path / "out", [complete], ["russianmath"])
    md = paths["md"].read_text()
    assert "100.0% (2 truncated)" in md and "truncated`: answers cut off by max_tokens" in md
    assert "100.0% (2 truncated)" in paths["html"].read_text()
    data = json.loads(paths["json"].read_text())
    assert data["rows"][0]["datasets"]["russianmath"]["truncated"] == 2 and data["rows"][0]["truncated"] == 2
    assert "(1/5, incomplete, 1 truncated)" in write_leaderboard(tmp_path / "p", [partial])["md"].read_text()
    assert "| 100.0% |" in write_leaderboard(tmp_path / "q", [clean])["md"].read_text()
