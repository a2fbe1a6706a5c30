"""``deathmath-orchestrate grade``: grade a JSONL file of ``{reference, response[, domain, tolerance]}`` lines."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..contract import Grade
from ..errors import InputError, ResultsError
from .api import DEFAULT_TIMEOUT, GradeRequest, grade_many, validate


def _request(obj: Any, where: str) -> GradeRequest:
    if not isinstance(obj, dict):
        raise InputError(f"{where}: expected a JSON object with 'reference' and 'response'")
    for key in ("reference", "response"):
        if key not in obj:
            raise InputError(f"{where}: missing {key!r}; each line needs 'reference' and 'response'")
    reference = obj["reference"]
    if isinstance(reference, (int, float)) and not isinstance(reference, bool):
        reference = str(reference)
    response = "" if obj["response"] is None else obj["response"]
    request = GradeRequest(response, reference, obj.get("domain") or "math", obj.get("tolerance"))
    validate(request, where)
    return request


def read_requests(path: Path) -> list[tuple[dict[str, Any], GradeRequest]]:
    """Every non-blank line of ``path`` with its request; InputError names the file and line of a bad one."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc}); check --input") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text; save the JSONL as UTF-8") from None
    out = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: not valid JSON ({exc.msg}); each line must be one JSON object") from None
        out.append((obj, _request(obj, where)))
    return out


def _line(obj: dict[str, Any], grade: Grade) -> str:
    out = dict(
        obj,
        extracted=grade.extracted,
        verdict=grade.verdict,
        seconds=round(grade.seconds, 4),
        approximate=grade.approximate,
    )
    return json.dumps(out, ensure_ascii=False)


def _write(path: Path | None, lines: list[str]) -> None:
    text = "".join(line + "\n" for line in lines)
    if path is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise ResultsError(f"{path}: cannot write ({exc.strerror or exc}); choose a writable --output") from None


def grade_file(input_path: Path, output_path: Path | None, timeout: float = DEFAULT_TIMEOUT) -> int:
    """Grade ``input_path`` into ``output_path`` (stdout when None), in input order; returns the line count."""
    records = read_requests(Path(input_path))
    grades = grade_many([request for _, request in records], timeout=timeout)
    _write(
        Path(output_path) if output_path is not None else None,
        [_line(obj, grade) for (obj, _), grade in zip(records, grades)],
    )
    return len(records)
