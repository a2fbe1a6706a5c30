"""``grade_file`` (the body of ``deathmath-orchestrate grade``): JSONL in, JSONL out in order, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.errors import InputError, ResultsError
from orchestrator.grading import GradeRequest, grade, grade_file, grade_many

LINES = [
    {"reference": "12", "response": "Решение...\nОтвет: 12", "id": "a"},
    {"reference": "15 м/с", "response": "Ответ: 54 км/ч", "domain": "physics"},
    {"reference": "100", "response": "Ответ: 104", "domain": "physics", "tolerance": 0.05},
    {"reference": "1/3", "response": "Ответ: 0,33"},
    {"reference": 7, "response": "обрыв на полуслове \\( x ="},
]


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_output_lines_keep_input_order_and_fields(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", LINES)
    out = tmp_path / "out.jsonl"
    assert grade_file(src, out) == 5
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["verdict"] for r in rows] == ["correct", "correct", "correct", "incorrect", "unparsed"]
    assert rows[0]["id"] == "a" and rows[0]["extracted"] == "12"
    assert rows[2]["approximate"] is True
    assert all(isinstance(r["seconds"], float) and r["seconds"] >= 0 for r in rows)
    assert not list(tmp_path.glob(".out.jsonl.*"))


def test_blank_lines_are_skipped_and_stdout_is_the_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('\n{"reference": "2", "response": "Ответ: 2"}\n\n', encoding="utf-8")
    assert grade_file(src, None) == 1
    assert json.loads(capsys.readouterr().out)["verdict"] == "correct"


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", r"in\.jsonl:2: not valid JSON"),
        ('["a", "b"]', r"in\.jsonl:2: expected a JSON object"),
        ('{"response": "Ответ: 1"}', r"in\.jsonl:2: missing 'reference'"),
        ('{"reference": "1"}', r"in\.jsonl:2: missing 'response'"),
        (
            '{"reference": "1", "response": "1", "domain": "chemistry"}',
            r"in\.jsonl:2: domain 'chemistry' is not one of",
        ),
        ('{"reference": "1", "response": "1", "tolerance": 5}', r"in\.jsonl:2: tolerance 5 must be a relative"),
        ('{"reference": ["1"], "response": "1"}', r"in\.jsonl:2: response and reference must be strings"),
    ],
)
def test_a_malformed_line_names_the_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"reference": "1", "response": "Ответ: 1"}\n' + line + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    with pytest.raises(InputError, match=message) as info:
        grade_file(src, out)
    assert "\n" not in str(info.value)
    assert not out.exists()


def test_a_missing_input_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"missing\.jsonl: cannot read"):
        grade_file(tmp_path / "missing.jsonl", None)


def test_an_unwritable_output(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", LINES[:1])
    with pytest.raises(ResultsError, match="cannot write"):
        grade_file(src, tmp_path / "no-such-dir" / "out.jsonl")


def test_bad_arguments_to_the_library() -> None:
    with pytest.raises(InputError, match="domain 'bio'"):
        grade("Ответ: 1", "1", domain="bio")
    with pytest.raises(InputError, match="tolerance"):
        grade("Ответ: 1", "1", tolerance=0)
    with pytest.raises(InputError, match="timeout"):
        grade_many([GradeRequest("Ответ: 1", "1")], timeout=0)
    assert grade_many([]) == []


def test_the_cli_command(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", LINES[:2])
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(main, ["grade", "--input", str(src), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["verdict"] for line in out.read_text(encoding="utf-8").splitlines()] == ["correct"] * 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["grade", "--input", str(bad)])
    assert result.exit_code == 2 and "bad.jsonl:1: not valid JSON" in result.output
