"""``wait_for(predicate, timeout, what)``: poll until ``predicate()`` is truthy and return its value, or fail the
test with an AssertionError naming ``what``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """The first truthy value of ``predicate()`` within ``timeout`` seconds; AssertionError naming ``what`` if none."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)
