"""Durable file writes shared by every module.

* ``atomic_write_text`` / ``atomic_write_json``: write a temporary file in the same directory, fsync it, rename it
  over the target and fsync the directory. Readers see the old file or the new one, never a half-written one, and a
  failed write (disk full, read-only directory) leaves the old file intact.
* ``append_jsonl``: one JSON object per line, written with a single ``write`` on an ``O_APPEND`` descriptor, so a
  ``kill -9`` loses at most the line being written (a torn last line, set aside by ``truncate_torn_tail``).
* ``read_jsonl``: tolerant reader from a byte offset: a torn last line is left unread, a corrupt line is skipped.
* ``read_json``: a whole JSON file, or the caller's default when it is missing or unreadable (a warning names the
  file); it never raises, so a damaged state file cannot stop a run.
* ``hold``: a ``filelock`` lock held for a ``with`` block, its directory created first; a lock that stays taken
  past its timeout is a one-line error (the class passed as ``error``) naming what it guards and the lock file.

Write failures raise ``errors.ResultsError`` (or the class passed as ``error``) with a one-line message.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from .errors import OrchestratorError, ResultsError

log = logging.getLogger(__name__)

_READ_CHUNK = 1 << 16


def _failure(path: Path, exc: OSError, error: type[OrchestratorError]) -> OrchestratorError:
    reason = exc.strerror or type(exc).__name__
    return error(f"cannot write {path}: {reason}; free disk space or make the directory writable, then rerun")


def fsync_dir(directory: Path) -> None:
    """Make a rename or file creation in ``directory`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes, *, error: type[OrchestratorError] = ResultsError) -> None:
    """Replace ``path`` with ``data`` atomically (tmp + fsync + rename); the parent directory must exist."""
    path = Path(path)
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, _mode_of(path))
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise _failure(path, exc, error) from None
    finally:
        if tmp is not None:
            _unlink_quietly(Path(tmp))
    fsync_dir(path.parent)


def _mode_of(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        return 0o644


def atomic_write_text(path: Path, text: str, *, error: type[OrchestratorError] = ResultsError) -> None:
    """Replace ``path`` with ``text`` (UTF-8) atomically."""
    atomic_write_bytes(path, text.encode("utf-8"), error=error)


def atomic_write_json(path: Path, obj: Any, *, error: type[OrchestratorError] = ResultsError) -> None:
    """Replace ``path`` with ``obj`` as indented UTF-8 JSON, atomically."""
    atomic_write_text(path, json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=True) + "\n", error=error)


def jsonl_line(obj: Mapping[str, Any]) -> bytes:
    """``obj`` as one JSONL line (UTF-8, newline-terminated; ``json`` escapes embedded newlines)."""
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode("utf-8")


def append_bytes(path: Path, data: bytes, *, fsync: bool = False, error: type[OrchestratorError] = ResultsError) -> int:
    """Append ``data`` to ``path`` with one ``O_APPEND`` write loop; returns the bytes written."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise _failure(Path(path), exc, error) from None
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if fsync:
            os.fsync(fd)
    except OSError as exc:
        raise _failure(Path(path), exc, error) from None
    finally:
        os.close(fd)
    return len(data)


def append_jsonl(
    path: Path, obj: Mapping[str, Any], *, fsync: bool = False, error: type[OrchestratorError] = ResultsError
) -> int:
    """Append ``obj`` as one line to ``path`` (created if missing); returns the bytes written."""
    return append_bytes(path, jsonl_line(obj), fsync=fsync, error=error)


def read_jsonl(path: Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Objects of the complete lines of ``path`` from byte ``offset``, and the offset just past the last one.

    A missing file reads as empty; a last line without its newline (torn by a kill, or being written) is not read;
    a line that is not a JSON object is skipped with a warning.
    """
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    objects = [obj for obj in map(_parse_line, data[:end].splitlines()) if obj is not None]
    return objects, offset + end


def _parse_line(raw: bytes) -> dict[str, Any] | None:
    if not raw.strip():
        return None
    try:
        obj = json.loads(raw)
    except ValueError:
        log.warning("skipping a corrupt JSONL line (%d bytes)", len(raw))
        return None
    return obj if isinstance(obj, dict) else None


def read_json(path: Path, default: object) -> object:
    """The JSON in ``path``; ``default`` if it is missing or unreadable (logged)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable %s (%s)", path, exc)
        return default


@contextmanager
def hold(lock: FileLock, what: str, error: type[OrchestratorError]) -> Iterator[None]:
    """Hold ``lock`` (creating its directory); a timeout becomes a one-line ``error`` naming ``what``."""
    Path(lock.lock_file).parent.mkdir(parents=True, exist_ok=True)
    try:
        lock.acquire()
    except Timeout:
        raise error(
            f"{what} stayed locked for {lock.timeout:.0f} s; another orchestrator hangs holding "
            f"{lock.lock_file}: stop it"
        ) from None
    try:
        yield
    finally:
        lock.release()


def torn_path(path: Path) -> Path:
    """Where ``truncate_torn_tail`` sets torn lines aside: ``<name>.torn`` next to the file."""
    return Path(path).with_name(Path(path).name + ".torn")


def truncate_torn_tail(path: Path, *, error: type[OrchestratorError] = ResultsError) -> int:
    """Move a last line that lacks its newline (left by a kill mid-write) to ``torn_path``; returns its bytes.

    The tail is appended to the side file (fsynced) before it is cut, so nothing is lost even by a crash between
    the two steps. Call it only while holding the file's lock, so the tail cannot be a line another writer is
    still writing.
    """
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            if size == 0 or _ends_with_newline(fh, size):
                return 0
            keep = _last_newline_end(fh, size)
            fh.seek(keep)
            tail = fh.read(size - keep)
        append_bytes(torn_path(path), tail + b"\n", fsync=True, error=error)
        with open(path, "r+b") as fh:
            fh.truncate(keep)
            fh.flush()
            os.fsync(fh.fileno())
    except FileNotFoundError:
        return 0
    except OSError as exc:
        raise _failure(Path(path), exc, error) from None
    log.warning(
        "%s: set a torn last line (%d bytes) left by an interrupted write aside in %s",
        path,
        size - keep,
        torn_path(path).name,
    )
    return size - keep


def _ends_with_newline(fh: Any, size: int) -> bool:
    fh.seek(size - 1)
    return fh.read(1) == b"\n"


def _last_newline_end(fh: Any, size: int) -> int:
    """The offset just past the last newline of an open binary file (0 if none)."""
    pos = size
    while pos > 0:
        start = max(0, pos - _READ_CHUNK)
        fh.seek(start)
        chunk = fh.read(pos - start)
        idx = chunk.rfind(b"\n")
        if idx >= 0:
            return start + idx + 1
        pos = start
    return 0


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "append_bytes",
    "append_jsonl",
    "jsonl_line",
    "read_jsonl",
    "read_json",
    "hold",
    "torn_path",
    "truncate_torn_tail",
    "fsync_dir",
]
