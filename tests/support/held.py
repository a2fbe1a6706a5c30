"""``while_held(proc, release, check)``: run ``check()`` while a fake vLLM started with ``FAKE_VLLM_HOLD_UNTIL=release``
holds its answers, then let them go and wait for ``proc`` (the orchestrator's CLI); the output comes back. Whatever
``check`` raises, the answers are let go and ``proc`` never outlives the test: a CLI still running is stopped with
SIGTERM, as Ctrl-C would (it then stops its servers; a SIGKILL would leave them running), and killed only if it has
not ended within ``STOP_S``."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

STOP_S = 60.0


def while_held(proc: subprocess.Popen, release: Path, check: Callable[[], None], timeout: float = 300) -> str:
    """``check()`` while held, then release and wait up to ``timeout`` s; ``proc``'s stdout and stderr together."""
    out = err = ""
    try:
        check()
        release.touch()
        out, err = proc.communicate(timeout=timeout)
    finally:
        release.touch()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.communicate(timeout=STOP_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
    return (out or "") + (err or "")
