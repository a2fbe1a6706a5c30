"""`regrade` re-scores stored details with the current grader and rebuilds the leaderboard, sending no request."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.contract import AnswerRecord
from orchestrator.results import SeriesStore

ANSWERS = [
    ("p1", "42", "Решение...\nОтвет: 42", "correct"),
    ("p2", "1/3", "Ответ: 0,33", "incorrect"),
    ("p3", "15 м/с", "Ответ: 54 км/ч", "correct"),
    ("p4", "7", "ничего не знаю", "unparsed"),
]


def test_regrade_fills_verdicts_and_builds_the_leaderboard(tmp_path: Path) -> None:
    store = SeriesStore(tmp_path, "model-x", "mix", "h" * 16, meta={"total": len(ANSWERS)})
    for pid, ref, response, _ in ANSWERS:
        domain = "physics" if "м/с" in ref else "math"
        store.append(
            AnswerRecord(
                id=pid,
                dataset="mix",
                model="model-x",
                task="t",
                reference=ref,
                response=response,
                domain=domain,
                settings_hash="h" * 16,
                completion_tokens=5,
            )
        )
    store.append(
        AnswerRecord(
            id="p5", dataset="mix", model="model-x", task="t", reference="1", error="HTTP 503", settings_hash="h" * 16
        )
    )
    result = CliRunner().invoke(main, ["regrade", "--results-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "regraded 4 answer(s)" in result.output
    rows = [json.loads(line) for line in (tmp_path / "details" / "model-x" / "mix.jsonl").read_text().splitlines()]
    verdicts = {r["id"]: r["verdict"] for r in rows if r["error"] is None}
    assert verdicts == {pid: verdict for pid, _, _, verdict in ANSWERS}
    assert [r["error"] for r in rows if r["id"] == "p5"] == ["HTTP 503"]  # transport errors stay errors, unscored
    board = json.loads((tmp_path / "leaderboard.json").read_text())
    assert board["rows"][0]["model"] == "model-x"
    assert (tmp_path / "leaderboard.md").is_file() and (tmp_path / "leaderboard.html").is_file()
