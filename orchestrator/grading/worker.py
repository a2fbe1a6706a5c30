"""The sandboxed worker process: ``python -m orchestrator.grading.worker TARGET [WARM]``.

Protocol: one JSON value per line on stdin (a job; ``null`` ends the worker), one JSON line per job on stdout:
``["ok", result]``, ``["error", "what"]`` or ``["memory", null]`` (the worker then exits). The first line it
writes is ``["ready", pid]``. Before importing anything heavy it caps its address space (``GRADER_MEMORY_MB``),
ignores SIGINT and starts a thread that ends the process when its parent goes away.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

PARENT_POLL_S = 0.5


def resolve(spec: str) -> Callable[..., Any]:
    """``"package.module:function"`` -> the function."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def _limit_memory() -> None:
    megabytes = int(os.environ.get("GRADER_MEMORY_MB", "0") or 0)
    if megabytes > 0:
        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        resource.setrlimit(resource.RLIMIT_AS, (megabytes * 1024 * 1024, hard))


def _watch_parent() -> None:
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _send(channel: TextIO, message: list[Any]) -> None:
    channel.write(json.dumps(message, ensure_ascii=False) + "\n")
    channel.flush()


def serve(func: Callable[[Any], Any], source: TextIO, channel: TextIO) -> None:
    """Answer jobs from ``source`` on ``channel`` until ``null`` or end of input."""
    for line in source:
        job = json.loads(line)
        if job is None:
            return
        try:
            _send(channel, ["ok", func(job)])
        except MemoryError:
            _send(channel, ["memory", None])
            return
        except Exception as exc:  # noqa: BLE001 -- reported to the parent, never raised here
            _send(channel, ["error", f"{type(exc).__name__}: {exc}"[:300]])


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _limit_memory()
    _watch_parent()
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    sys.stdout = sys.stderr  # a stray print must not corrupt the protocol
    func = resolve(argv[0])
    if len(argv) > 1:
        resolve(argv[1])()
    _send(channel, ["ready", os.getpid()])
    serve(func, sys.stdin, channel)


if __name__ == "__main__":
    main(sys.argv[1:])
