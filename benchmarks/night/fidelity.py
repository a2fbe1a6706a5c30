"""The fake server's fidelity under the real client: ``python -m benchmarks.night.fidelity [--scale S] [--model K]``.

One model of the night (``world``) alone on one fake GPU, on one series, run by the real orchestrator (scheduler,
server, client with its queue-ahead, checkpoint). The fake server records every request's choices' lengths in
order of arrival; ``ideal`` replays them through the same processor-sharing engine with a client that has no
overhead at all (``in_flight`` requests kept at the server, the next one sent the instant one ends). Fidelity =
ideal seconds / the real run's seconds (first arrival to last end, simulated): 1 when the client's and the
machine's per-request costs (HTTP, checkpoint, threads, on a loaded CPU with time compressed x ``--scale``) cost
nothing. Target >= 0.9. It also prints the share of the full-batch rate the ideal itself reaches (the series'
tail, a request waiting for its longest choice: what no client overhead explains).
"""

from __future__ import annotations

import argparse
import collections
import heapq
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from orchestrator.serving import queueahead

from .fakeserver import rate_at

TARGET = 0.9
PARALLEL = 64  # a managed model's default parallel (config/build.py)


def ideal(requests: Sequence[Sequence[int]], in_flight: int, points: Sequence[tuple[float, float]], seqs: int) -> float:
    """Simulated seconds for ``requests`` through a processor-sharing engine of ``seqs`` slots with a client that
    keeps ``in_flight`` requests at the server and sends the next the instant one ends (each choice frees its slot
    when it ends; a request ends with its last choice)."""
    pending = collections.deque(requests)
    waiting: collections.deque[tuple[float, int]] = collections.deque()
    running: list[tuple[float, int, int]] = []
    left: dict[int, int] = {}
    clock = virtual = 0.0
    serial = 0

    def send() -> None:
        nonlocal serial
        rid = len(left)
        lengths = pending.popleft()
        left[rid] = len(lengths)
        waiting.extend((float(t), rid) for t in lengths)

    for _ in range(min(in_flight, len(pending))):
        send()
    while waiting or running:
        while waiting and len(running) < seqs:
            tokens, rid = waiting.popleft()
            serial += 1
            heapq.heappush(running, (virtual + tokens, serial, rid))
        n = len(running)
        end = running[0][0]
        clock += (end - virtual) / (rate_at(list(points), n) / n)
        virtual = end
        while running and running[0][0] <= virtual + 1e-9:
            rid = heapq.heappop(running)[2]
            left[rid] -= 1
            if not left[rid] and pending:
                send()
    return clock


def check(scale: float, model: str, seed: int = 0) -> dict:
    """Run the one-model night; returns the real and the ideal seconds and their ratio."""
    with tempfile.TemporaryDirectory(prefix="night-fidelity-") as tmp:
        out = Path(tmp) / "out.json"
        cmd = [sys.executable, "-m", "benchmarks.night.one", "--dir", f"{tmp}/w", "--seed", str(seed)]
        cmd += ["--scale", str(scale), "--replicas", "1", "--out", str(out), "--only", model, "--gpus", "1"]
        cmd += ["--series", "1"]
        began = time.monotonic()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=1800)
        result = json.loads(out.read_text())
    (server,) = result["servers"]
    (spec,) = [m for m in result["models"] if m["key"] == model]
    points = [tuple(p) for p in spec["points"]]
    best = ideal(server["requests"], queueahead.in_flight(PARALLEL, queueahead.DEFAULT_GPU_QUEUE_AHEAD), points, 256)
    tokens = sum(sum(r) for r in server["requests"])
    return {
        "model": model,
        "scale": scale,
        "wall_s": round(time.monotonic() - began, 1),
        "real_s": round(server["served_s"], 1),
        "ideal_s": round(best, 1),
        "fidelity": round(best / server["served_s"], 3),
        "ideal_fill": round(tokens / (best * spec["full_rate"]), 3),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.night.fidelity", description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=100.0)
    ap.add_argument("--model", default="qwen2.5-7b")
    args = ap.parse_args(argv)
    figures = check(args.scale, args.model)
    print(json.dumps(figures))
    return 0 if figures["fidelity"] >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
