"""Scenario sj's count of the judge's work (benchmarks/gpu/judging.py), on details and checkpoint files written here."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.gpu.judging import audited_once


def write(path: Path, *lines: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def answer(pid: str, verdict: str, judged: bool = True, **extra) -> dict:
    line = {"id": pid, "verdict": verdict, "response": "Ответ: 4", "error": None, **extra}
    return {**line, "judge": {"verdict": "unparsed"}} if judged else line


def test_every_rejected_answer_judged_once_passes_and_a_second_ask_or_a_gap_is_named(tmp_path: Path) -> None:
    details = tmp_path / "details" / "a"
    write(details / "ds.jsonl", answer("q1", "incorrect"), answer("q2", "correct", judged=False),
          answer("q3", "unparsed"), answer("q4", "incorrect", judged=False, error="HTTP 500", response=""))  # fmt: skip
    write(details / "judge" / "ds.jsonl", {"key": "q1"}, {"key": "q3"})
    assert audited_once(tmp_path, ("a",)) == {"needed": 2, "judged": 2, "asked_twice": [], "missing": []}
    write(details / "judge" / "ds.jsonl", {"key": "q1"}, {"key": "q1"})
    found = audited_once(tmp_path, ("a",))
    assert found["asked_twice"] == ["q1"] and found["missing"] == ["q3"]
