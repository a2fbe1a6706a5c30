"""The grader's worker limits under adversarial answers graded in parallel.

Run: ``.venv/bin/python -m benchmarks.grader_adversarial [--copies N] [--callers C]``; prints the figures and writes
``benchmarks/results/grader_adversarial.md``.

The adversarial answers of tests/data/grading/cases.jsonl (exponent towers, factorials of towers, code injection,
5000-digit numbers, 400-deep parentheses...), ``copies`` times each, are graded by ``callers`` concurrent
``grade_many`` calls sharing one pool (as the series of a run share it), with the production time budget and
memory cap. Measured: the slowest check against the time budget, peak worker RSS / address space against the cap,
timeouts, replaced workers. Baseline in the same run: as many ordinary answers (the other groups of the written
set) the same way. A last pass with a budget far below what the checks need shows the kill-and-replace path.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from benchmarks import publish
from benchmarks.grader_gold import request, rows
from benchmarks.grader_watch import WorkerWatch
from orchestrator.grading import GradeRequest, GraderPool, grade_many
from orchestrator.grading.api import DEFAULT_TIMEOUT
from orchestrator.grading.pool import DEFAULT_MEMORY_MB

RESULTS = Path(__file__).resolve().parent / "results" / "grader_adversarial.md"
MB = 2**20
TIGHT_BUDGET = 0.01  # seconds: below what a sympy check of a tower needs
CASES = rows("cases.jsonl")


@dataclass
class Pass:
    """One measured pass: ``answers`` graded by several callers through one pool."""

    name: str
    answers: int
    wall: float
    slowest: float
    timeouts: int
    replaced: int
    peak_rss: int
    peak_vms: int
    caps: set

    def row(self, budget: float) -> str:
        return (
            f"| {self.name} | {self.answers} | {self.wall:.2f} | {self.answers / self.wall:.0f} "
            f"| {self.slowest * 1000:.0f} ms / {budget * 1000:.0f} ms | {self.timeouts} | {self.replaced} "
            f"| {self.peak_rss / MB:.0f} MB | {self.peak_vms / MB:.0f} MB |"
        )


def _requests(group: str | None, count: int) -> list[GradeRequest]:
    """``count`` requests from the adversarial group (``group``) or from every other group (None), cycled."""
    chosen = [c for c in CASES if (c["group"] == group if group else c["group"] != "adversarial")]
    cycled = itertools.islice(itertools.cycle(chosen), count)
    return [request(c) for c in cycled]


def measure(name: str, requests: list[GradeRequest], pool: GraderPool, callers: int, budget: float) -> Pass:
    """Grade ``requests`` split over ``callers`` concurrent grade_many calls; watch the workers throughout."""
    shares = [requests[i::callers] for i in range(callers)]
    before = set(pool.pids())
    with WorkerWatch(pool) as watch, ThreadPoolExecutor(callers) as executor:
        start = time.perf_counter()
        grades = [
            g for share in executor.map(lambda s: grade_many(s, timeout=budget, pool=pool), shares) for g in share
        ]
        wall = time.perf_counter() - start
    replaced = len((before | set(watch.caps)) - set(pool.pids()))  # workers seen that are gone now
    return Pass(
        name,
        len(requests),
        wall,
        max(g.seconds for g in grades),
        sum(g.verdict == "timeout" for g in grades),
        replaced,
        max(watch.peak_rss.values()),
        max(watch.peak_vms.values()),
        {c for c in watch.caps.values() if c is not None},
    )


def best_of(
    repeats: int, name: str, requests: list[GradeRequest], pool: GraderPool, callers: int, budget: float
) -> Pass:
    """The pass with the least wall time of ``repeats`` (the machine is shared: the others were disturbed)."""
    return min((measure(name, requests, pool, callers, budget) for _ in range(repeats)), key=lambda p: p.wall)


def run(copies: int, callers: int, workers: int | None, repeats: int) -> str:
    adversarial = _requests("adversarial", len([c for c in CASES if c["group"] == "adversarial"]) * copies)
    ordinary = _requests(None, len(adversarial))
    with GraderPool(workers, memory_mb=DEFAULT_MEMORY_MB) as pool:
        grade_many([GradeRequest("Ответ: \\sqrt{4}", "2")], pool=pool)  # workers up and warm
        base = best_of(repeats, "baseline: ordinary answers", ordinary, pool, callers, DEFAULT_TIMEOUT)
        hostile = best_of(repeats, "adversarial answers", adversarial, pool, callers, DEFAULT_TIMEOUT)
        tight = measure(
            f"adversarial, budget {TIGHT_BUDGET * 1000:.0f} ms",
            adversarial[: len(adversarial) // copies],
            pool,
            callers,
            TIGHT_BUDGET,
        )
        size = pool.size
    cap = DEFAULT_MEMORY_MB * MB
    caps = hostile.caps | base.caps | tight.caps
    lines = [
        "## Grader limits under adversarial answers (orchestrator/grading/pool.py)",
        "",
        f"Command: `.venv/bin/python -m benchmarks.grader_adversarial --copies {copies} --callers {callers} "
        f"--repeats {repeats}` on this machine ({os.cpu_count()} cores, shared; the first two passes: best of "
        f"{repeats}): {size} worker processes, {callers} concurrent `grade_many` "
        f"callers sharing them, memory cap {DEFAULT_MEMORY_MB} MiB (RLIMIT_AS) per worker, time budget "
        f"{DEFAULT_TIMEOUT:.0f} s per check. Worker memory sampled every 5 ms.",
        "",
        "| pass | answers | seconds | answers/s | slowest check / budget | timeouts | workers replaced "
        "| peak worker RSS | peak worker address space |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        base.row(DEFAULT_TIMEOUT),
        hostile.row(DEFAULT_TIMEOUT),
        tight.row(TIGHT_BUDGET),
        "",
        f"Adversarial vs ordinary: {hostile.answers / hostile.wall / (base.answers / base.wall):.2f}x the throughput; "
        f"slowest adversarial check {hostile.slowest / DEFAULT_TIMEOUT:.1%} of the budget; peak worker RSS "
        f"{hostile.peak_rss / cap:.1%} of the cap (address space {hostile.peak_vms / cap:.1%}). Every worker ran "
        f"under a cap of {', '.join(f'{c / MB:.0f} MiB' for c in sorted(caps)) or 'unknown'} (read from "
        "/proc/<pid>/limits). With the tight budget an overrunning check got its `timeout` verdict "
        f"{max(0.0, tight.slowest - TIGHT_BUDGET) * 1000:.0f} ms after the budget ran out, and its worker was killed "
        "and replaced by a fresh one (which must import sympy before it takes a check: the cost of a kill).",
    ]
    text = "\n".join(lines) + "\n"
    return publish(RESULTS, text)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=8, help="times each adversarial answer is graded")
    parser.add_argument("--callers", type=int, default=4, help="concurrent grade_many callers")
    parser.add_argument("--workers", type=int, default=None, help="pool size (default: one per core, at most 4)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of the timed passes; the fastest is reported")
    args = parser.parse_args(argv)
    logging.getLogger("orchestrator.grading").setLevel(logging.ERROR)  # one warning per killed worker otherwise
    return run(args.copies, args.callers, args.workers, args.repeats)


if __name__ == "__main__":
    main()
