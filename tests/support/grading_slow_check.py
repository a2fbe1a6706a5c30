"""Worker targets for tests/integration/test_grading_pool.py (imported by the worker processes via PYTHONPATH)."""

from __future__ import annotations

import time
from typing import Any


def nap(job: Any) -> list[Any]:
    """Sleep ``job[0]`` seconds when the answer starts with ``sleep:``, then answer like the real check."""
    answer = job[0] if isinstance(job, list) else str(job)
    if answer.startswith("sleep:"):
        time.sleep(float(answer[6:]))
    return ["correct", False]  # the real check's (verdict, approximate), as JSON carries it


def hog(job: Any) -> int:
    """Allocate ``job`` bytes (hits the worker's memory cap for large values)."""
    return len(bytearray(int(job)))


def die(job: Any) -> None:
    """Exit the worker abruptly, as a crash would."""
    import os

    os._exit(3)
