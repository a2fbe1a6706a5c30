"""The grader's worker limits under the adversarial answers of tests/data/grading/cases.jsonl, graded in parallel.

Several callers share one pool of real sandboxed workers (as several series of a run do). Every answer gets a
verdict; every worker runs under its address-space cap (read back from /proc/<pid>/limits) and stays below it;
a check that overruns its time limit has its worker killed and replaced, and the pool goes on. The figures (wall
time per answer against the budget, peak worker memory against the cap) are in benchmarks/grader_adversarial.py.
"""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

from benchmarks.grader_watch import WorkerWatch
from orchestrator.contract import Grade
from orchestrator.grading import GradeRequest, GraderPool, grade_many
from tests.support.grading_gold import load_cases

ADVERSARIAL = [c for c in load_cases("cases.jsonl") if c.group == "adversarial"]
REQUESTS = [GradeRequest(c.response, c.reference, c.domain, c.tolerance) for c in ADVERSARIAL]
CALLERS = 3  # concurrent grade_many callers
WORKERS = 4  # more workers than this machine's cores: they really run at once
MEMORY_MB = 768
TOWERS = 6  # the first adversarial answers: exponent towers, each a sympy check in a worker


def grade_in_parallel(pool: GraderPool, timeout: float, count: int = len(REQUESTS)) -> list[list[Grade]]:
    """Every caller grades the first ``count`` adversarial answers at once, through the same pool."""
    with ThreadPoolExecutor(CALLERS) as callers:
        return list(callers.map(lambda _: grade_many(REQUESTS[:count], timeout=timeout, pool=pool), range(CALLERS)))


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_adversarial_answers_in_parallel_get_their_verdicts_under_the_memory_cap() -> None:
    with GraderPool(WORKERS, memory_mb=MEMORY_MB) as pool, WorkerWatch(pool) as watch:
        results = grade_in_parallel(pool, timeout=5.0)
    for grades in results:
        for case, got in zip(ADVERSARIAL, grades, strict=True):
            assert got.verdict in (case.verdict, "timeout"), (case.response[:60], got)
    assert len(watch.caps) >= WORKERS  # every worker was seen
    assert set(watch.caps.values()) == {MEMORY_MB * 2**20}  # ... each under the cap it was given
    assert max(watch.peak_vms.values()) <= MEMORY_MB * 2**20
    assert max(watch.peak_rss.values()) < MEMORY_MB * 2**20


def test_overrunning_checks_are_killed_their_workers_replaced_and_the_pool_goes_on() -> None:
    with GraderPool(WORKERS, memory_mb=MEMORY_MB) as pool:
        for _ in range(WORKERS):  # idle workers queue up in turn: one check each, so every one has started
            grade_many([GradeRequest("Ответ: \\sqrt{4}", "2")], pool=pool)
        first = set(pool.pids())
        for pid in first:  # the guards answer even the towers in about a millisecond: a stopped worker overruns
            os.kill(pid, signal.SIGSTOP)  # whatever the load, as a stuck check does
        results = grade_in_parallel(pool, timeout=0.5, count=TOWERS)
        verdicts = [g.verdict for grades in results for g in grades]
        for grades in results:
            for case, got in zip(ADVERSARIAL[:TOWERS], grades, strict=True):
                assert got.verdict in (case.verdict, "timeout"), (case.response[:60], got)
        now = set(pool.pids())
        replaced = first - now
        assert verdicts.count("timeout") >= 1 and replaced  # overran: killed, replaced
        assert len(now) == WORKERS  # ... by as many fresh workers
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in replaced) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(pid) for pid in replaced)  # the killed ones are gone
        again = grade_many(REQUESTS, timeout=5.0, pool=pool)  # and the pool still grades right
        assert [g.verdict for g in again] == [c.verdict for c in ADVERSARIAL]


def test_code_in_an_answer_never_runs_even_in_parallel(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payloads = [
        c.response.replace("/tmp/grader-pwned", str(marker)).replace("'id'", f"'touch {marker}'")
        for c in ADVERSARIAL
        if "import" in c.response
    ]
    assert len(payloads) == 2 and all(str(marker) in p for p in payloads)
    with GraderPool(WORKERS, memory_mb=MEMORY_MB) as pool:
        grades = grade_many([GradeRequest(p, "0") for p in payloads] * 8, pool=pool)
    assert {g.verdict for g in grades} == {"unparsed"} and not marker.exists()
