"""A watchdog that kills a server's process group once the process that owns the server is gone.

A server started by a Ray actor lives in its own session (``start_new_session``), so nothing takes it down when the
actor's worker process dies without running its ``finally`` blocks: ``ray.kill``, the raylet's death (its workers
exit at once), the OOM killer. Ray's own clean-up (``RAY_kill_child_processes_on_worker_exit``) SIGKILLs only the
worker's direct children -- vLLM's API process, not its engine -- so the guard must not be one: ``spawn_guard(owner_pid,
pgid)`` starts ``python -m orchestrator.serving.guard --detach``, which forks into a session of its own and leaves its
parent at once. The guard polls the owner every ``POLL_S`` seconds and, when the owner is gone (or its pid was reused),
sends SIGTERM to the group, then SIGKILL after ``grace`` seconds. It exits by itself as soon as the group is empty, so
after a normal ``VllmServer.stop()`` it is gone within one poll.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

import psutil

log = logging.getLogger(__name__)

POLL_S = 0.5
GRACE_S = 10.0
KILL_WAIT_S = 10.0


def group_alive(pgid: int) -> bool:
    """True while any process of group ``pgid`` exists."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_alive(pid: int, create_time: float) -> bool:
    """True while ``pid`` is the same (not reaped, not reused) process that was created at ``create_time``."""
    try:
        proc = psutil.Process(pid)
        return abs(proc.create_time() - create_time) < 0.05 and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def spawn_guard(owner_pid: int, pgid: int, *, label: str = "", grace: float = GRACE_S) -> subprocess.Popen:
    """Start the watchdog of group ``pgid`` for ``owner_pid`` (normally this process); returns the launcher, which
    has already exited (the guard itself is no child of ours)."""
    created = psutil.Process(owner_pid).create_time()
    argv = [
        sys.executable,
        "-m",
        "orchestrator.serving.guard",
        "--owner",
        str(owner_pid),
        "--owner-created",
        repr(created),
        "--pgid",
        str(pgid),
        "--grace",
        str(grace),
    ] + (["--label", label] if label else [])
    launcher = subprocess.Popen(
        argv + ["--detach"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )
    launcher.wait(timeout=30)  # it forks the guard and exits at once
    return launcher


def watch(owner_pid: int, owner_created: float, pgid: int, grace: float, poll: float = POLL_S) -> bool:
    """Block until the group is empty; returns True if it had to kill it (the owner died first)."""
    while group_alive(pgid):
        if not owner_alive(owner_pid, owner_created):
            kill_group(pgid, grace, poll)
            return True
        time.sleep(poll)
    return False


def kill_group(pgid: int, grace: float, poll: float = POLL_S, kill_wait: float = KILL_WAIT_S) -> bool:
    """SIGTERM the group, wait up to ``grace`` seconds, then SIGKILL it until it is empty (a member forked during
    the stop belongs to the group too and gets the same signals); True when the group is empty."""
    _signal_group(pgid, signal.SIGTERM)  # once: a graceful shutdown must not be interrupted by more of them
    deadline = time.monotonic() + grace
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(min(poll, 0.1))
    deadline = time.monotonic() + kill_wait
    while group_alive(pgid) and time.monotonic() < deadline:
        _signal_group(pgid, signal.SIGKILL)  # each round: it also reaches members born since the last one
        time.sleep(min(poll, 0.1))
    return not group_alive(pgid)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.serving.guard", description=__doc__.splitlines()[0])
    parser.add_argument("--owner", type=int, required=True)
    parser.add_argument("--owner-created", type=float, required=True)
    parser.add_argument("--pgid", type=int, required=True)
    parser.add_argument("--grace", type=float, default=GRACE_S)
    parser.add_argument("--label", default="", help="what the group is (shown in ps only)")
    parser.add_argument("--detach", action="store_true", help="fork, let the parent exit, watch in the child")
    args = parser.parse_args(argv)
    if args.detach and os.fork() > 0:
        os._exit(0)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    watch(args.owner, args.owner_created, args.pgid, args.grace)
    return 0


if __name__ == "__main__":
    sys.exit(main())
