"""Sampling profiles with py-spy (issue 18: where the time goes during an s4 pass, measured rather than guessed).

``Recording(binary, pid, out)`` runs ``py-spy record --format raw --nolineno --nonblocking --subprocesses`` against a
live process (and its children) until ``stop()``: SIGINT, on which py-spy writes its file. ``--nonblocking`` reads
the target's memory without pausing it, so the profiled pass runs at (nearly) its normal speed; py-spy leaves idle
threads out, so a profile counts where CPU time goes. ``gil=True`` (``--gil``) samples only the thread holding the
GIL: for a process of many Python threads (the client) that is where its one effective core goes.

``summarise(text)`` reads py-spy's collapsed stacks (``frame;frame;... count`` per distinct stack; with
``--subprocesses`` a stack begins with ``process PID:"command line"`` frames, the last naming the process that was
sampled) into one ``Profile`` per process: its samples and the functions with the largest self share (the leaf
frame: the Python function that was running, C code it called included) and inclusive share (on the stack at all;
standard-library frames such as ``asyncio`` and ``threading``, on nearly every stack, are left out of that list).

``find_pyspy()`` is None where py-spy is not installed (``pip install py-spy``; the GPU bundle carries its wheel,
see benchmarks/gpu/README.md); the scenario then says so and runs without a profile.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

RATE = 100  # samples per second
GIL_RATE = 50  # for a process of hundreds of threads (the client): py-spy reads every thread at each sample
TOP = 12  # functions kept per list
STOP_WAIT_S = 60.0  # py-spy writes its file on SIGINT; a large profile takes a few seconds
_PROCESS = re.compile(r'process (\d+):"(.*?)"(?=;| \d+$)', re.S | re.M)  # a command line may hold newlines and ';'
_FRAME = re.compile(r'process (\d+):"(.*)"')


def find_pyspy() -> str | None:
    """py-spy's binary: on PATH, or in a ``bin`` folder next to an entry of ``sys.path`` (``pip --target``)."""
    found = shutil.which("py-spy")
    if found:
        return found
    for entry in sys.path:
        cand = Path(entry or ".") / "bin" / "py-spy"
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    return None


class Recording:
    """One py-spy recording of ``pid`` and its children, written to ``out`` (raw collapsed stacks) on ``stop()``."""

    def __init__(
        self, binary: str, pid: int, out: Path, rate: int = RATE, subprocesses: bool = True, gil: bool = False
    ) -> None:
        self.out = out
        self.log = out.with_suffix(".log")
        argv = [
            binary,
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--nolineno",
            "--nonblocking",
            "--output",
            str(out),
            *(["--subprocesses"] if subprocesses else []),
            *(["--gil"] if gil else []),
        ]
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> str:
        """Stop sampling and return the collapsed stacks ('' with the reason in ``.log`` where py-spy failed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.out.read_text(encoding="utf-8", errors="replace") if self.out.exists() else ""

    def failure(self) -> str:
        """py-spy's own last words, for a recording that wrote nothing."""
        return self.log.read_text(encoding="utf-8", errors="replace")[-600:] if self.log.exists() else ""


@dataclass
class Profile:
    """One process's samples: where its CPU time went."""

    pid: int
    command: str
    samples: int = 0
    self_counts: Counter = field(default_factory=Counter)
    inclusive: Counter = field(default_factory=Counter)

    def top(self, seconds: float, rate: int = RATE) -> dict:
        """The summary kept in the results: busy cores (samples / (rate x seconds); a sample per busy thread) and
        shares of this process's samples, largest first."""

        def share(counts: Counter) -> list[dict]:
            return [{"function": fn, "share": round(n / max(self.samples, 1), 3)} for fn, n in counts.most_common(TOP)]

        return {
            "pid": self.pid,
            "command": self.command[:160],
            "samples": self.samples,
            "cores": round(self.samples / max(rate * seconds, 1e-6), 2),
            "self": share(self.self_counts),
            "inclusive": share(self.inclusive),
        }


def summarise(text: str, root: int | None = None) -> dict[int, Profile]:
    """Per process (pid), its samples and functions; stacks without a process frame are ``root``'s."""
    flat = _PROCESS.sub(lambda m: f'process {m[1]}:"{" ".join(m[2].split()).replace(";", ",")}"', text)
    profiles: dict[int, Profile] = {}
    for line in flat.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        pid, command, frames = _split(stack.split(";"), root)
        if pid is None or not frames:
            continue
        prof = profiles.setdefault(pid, Profile(pid, command))
        prof.samples += int(count)
        prof.self_counts[frames[-1]] += int(count)
        for fn in set(frames) - {f for f in frames if _plumbing(f)}:
            prof.inclusive[fn] += int(count)
    return profiles


def _plumbing(frame: str) -> bool:
    """A frame of the standard library or of no file (``<frozen runpy>``): on every stack, telling nothing."""
    file = frame[frame.rfind("(") + 1 :].rstrip(")")
    return file.startswith("<") or file.split("/")[0].removesuffix(".py") in sys.stdlib_module_names


def _split(frames: list[str], root: int | None) -> tuple[int | None, str, list[str]]:
    pid, command, rest = root, "", []
    for frame in frames:
        found = _FRAME.fullmatch(frame)
        if found:
            pid, command, rest = int(found[1]), found[2], []
        else:
            rest.append(frame)
    return pid, command, rest


__all__ = ["Profile", "Recording", "find_pyspy", "summarise"]
