"""Reading dataset files (JSONL, CSV, Parquet) into rows, with one-line errors for every malformed input."""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import DatasetError

MAX_FILE_BYTES = 200 * 1024 * 1024
SUFFIXES = (".jsonl", ".csv", ".parquet")
_UTF16_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


@dataclass(frozen=True)
class Row:
    """One record of a dataset file: ``where`` is ``"<file>, line N"`` or ``"<file>, row N"``."""

    where: str
    data: Mapping[str, Any]


def read_rows(path: Path, *, label: str | None = None, max_bytes: int = MAX_FILE_BYTES) -> list[Row]:
    """All records of ``path`` (``label`` names it in messages); DatasetError on anything malformed."""
    label = label or str(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DatasetError(f"{label}: unsupported file type {suffix or '(none)'!r}; use .jsonl, .csv or .parquet")
    _check_size(path, label, max_bytes)
    if suffix == ".parquet":
        return _parquet_rows(path, label)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(
            f"{label}: cannot read the file ({exc.strerror or exc}); check the path and its permissions"
        ) from None
    lines = _decode_lines(data, label)
    if suffix == ".jsonl":
        return _jsonl_rows(lines, data.endswith(b"\n"), label)
    return _csv_rows(lines, label)


def _check_size(path: Path, label: str, max_bytes: int) -> None:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DatasetError(f"{label}: cannot read the file ({exc.strerror or exc}); check the path") from None
    if size > max_bytes:
        raise DatasetError(
            f"{label}: the file is {size / 2**20:.0f} MB, over the {max_bytes / 2**20:.0f} MB "
            f"limit for a dataset; split it or keep only the problems to evaluate"
        )


def _decode_lines(data: bytes, label: str) -> list[str]:
    """UTF-8 lines without their line ends; the exact line of a bad byte, BOM or UTF-16 in the message."""
    if data.startswith(codecs.BOM_UTF8):
        raise DatasetError(
            f"{label}, line 1: the file starts with a UTF-8 byte-order mark (BOM); re-save it as UTF-8 without BOM"
        )
    if data.startswith(_UTF16_BOMS) or b"\x00" in data[:4096]:
        raise DatasetError(
            f"{label}, line 1: the file is UTF-16/UTF-32 (or binary), not UTF-8; "
            f"convert it, e.g. `iconv -f UTF-16 -t UTF-8 in > out`"
        )
    raw_lines = data.split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    return [_decode_line(raw, number, label) for number, raw in enumerate(raw_lines, 1)]


def _decode_line(raw: bytes, number: int, label: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        column = len(raw[: exc.start].decode("utf-8", "replace")) + 1
        raise DatasetError(
            f"{label}, line {number}: byte 0x{raw[exc.start]:02x} at column {column} is not "
            f"valid UTF-8; re-save the file as UTF-8"
        ) from None
    if "\x00" in text:
        raise DatasetError(
            f"{label}, line {number}: contains a NUL byte (UTF-16 or a binary file?); convert the file to UTF-8 text"
        )
    return text.removesuffix("\r")


def _jsonl_rows(lines: list[str], terminated: bool, label: str) -> list[Row]:
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        torn = number == len(lines) and not terminated
        rows.append(Row(f"{label}, line {number}", _json_object(line, f"{label}, line {number}", torn)))
    return rows


def _json_object(line: str, where: str, torn: bool) -> Mapping[str, Any]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        if torn:
            raise DatasetError(
                f"{where}: the last line is incomplete JSON with no line end (a truncated file?); "
                f"restore the file or remove the torn line"
            ) from None
        raise DatasetError(
            f"{where}, column {exc.colno}: invalid JSON ({exc.msg}); fix the line or remove it"
        ) from None
    if not isinstance(value, dict):
        raise DatasetError(
            f"{where}: expected a JSON object {{...}}, got {type(value).__name__}; write one object per line"
        )
    return value


def _csv_rows(lines: list[str], label: str) -> list[Row]:
    if not lines:
        return []
    reader = csv.reader(io.StringIO("\n".join(lines)), delimiter=_delimiter(lines[0]), strict=True)
    try:
        header = next(reader)
        return [row for row in (_csv_row(header, fields, reader.line_num, label) for fields in reader) if row]
    except csv.Error as exc:
        raise DatasetError(
            f"{label}, line {reader.line_num}: malformed CSV ({exc}); "
            f"quote fields that contain the delimiter, quotes or line breaks"
        ) from None


def _delimiter(header: str) -> str:
    """Comma unless the header line only has semicolons or tabs (Excel in a Russian locale writes ``;``)."""
    if "," in header:
        return ","
    return ";" if ";" in header else ("\t" if "\t" in header else ",")


def _csv_row(header: list[str], fields: list[str], line: int, label: str) -> Row | None:
    if not any(field.strip() for field in fields):
        return None
    if len(fields) != len(header):
        raise DatasetError(
            f"{label}, line {line}: {len(fields)} fields but the header has {len(header)}; "
            f"quote fields that contain the delimiter"
        )
    return Row(f"{label}, line {line}", dict(zip(header, fields)))


def _import_parquet() -> Any:
    import pyarrow.parquet as pq  # optional dependency

    return pq


def _parquet_rows(path: Path, label: str) -> list[Row]:
    try:
        pq = _import_parquet()
    except ImportError:
        raise DatasetError(
            f"{label}: reading Parquet needs pyarrow, which is not installed; "
            f"run `pip install pyarrow` (or convert the file to JSONL)"
        ) from None
    try:
        records = pq.read_table(path).to_pylist()
    except Exception as exc:  # noqa: BLE001 -- pyarrow raises its own ArrowInvalid/OSError family
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DatasetError(f"{label}: not a readable Parquet file ({first}); re-export it or use JSONL/CSV") from None
    return [Row(f"{label}, row {number}", record) for number, record in enumerate(records, 1)]
