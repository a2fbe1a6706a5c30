"""The sandbox: real worker processes, real timeouts, a real memory cap, real crashes and a real parent death."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

from orchestrator.errors import GradingError
from orchestrator.grading import GradeRequest, GraderPool, api, grade, grade_many, shutdown

SUPPORT = Path(__file__).resolve().parents[1] / "support"
ROOT = SUPPORT.parents[1]


@pytest.fixture(autouse=True)
def _workers_import_test_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(SUPPORT))


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(pids: list[int], limit: float = 15.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if all(gone(pid) for pid in pids):
            return True
        time.sleep(0.1)
    return False


def test_a_job_that_overruns_is_killed_and_its_worker_replaced() -> None:
    with GraderPool(1, target="grading_slow_check:nap", warm=None) as pool:
        assert pool.run(["sleep:0"], 30).status == "ok"
        [first] = pool.pids()
        outcome = pool.run(["sleep:60"], 0.5)
        assert outcome.status == "timeout" and 0.5 <= outcome.seconds < 5
        assert gone(first)
        [second] = pool.pids()
        assert second != first
        assert pool.run(["sleep:0"], 30).status == "ok"


def test_the_memory_cap_stops_a_hog_and_the_pool_goes_on() -> None:
    with GraderPool(1, target="grading_slow_check:hog", warm=None, memory_mb=256) as pool:
        assert pool.run(1_000_000, 30).value == 1_000_000
        [first] = pool.pids()
        assert pool.run(2_000_000_000, 30).status == "memory"
        assert gone(first)
        assert pool.run(1000, 30).value == 1000


def test_a_crashed_worker_is_replaced() -> None:
    with GraderPool(1, target="grading_slow_check:die", warm=None) as pool:
        [first] = pool.pids()
        assert pool.run("x", 30).status == "crashed"
        assert wait_gone([first])
        assert len(pool.pids()) == 1 and pool.pids() != [first]


def test_a_worker_that_cannot_start_is_a_grading_error() -> None:
    with (
        GraderPool(1, target="no_such_module:check", warm=None, start_timeout=60) as pool,
        pytest.raises(GradingError, match="not importable"),
    ):
        pool.run("x", 5)


def test_close_stops_every_worker_and_refuses_more_work() -> None:
    pool = GraderPool(2, target="grading_slow_check:nap", warm=None)
    assert pool.run(["sleep:0"], 30).status == "ok"
    pids = pool.pids()
    assert len(pids) == 2
    pool.close()
    pool.close()
    assert wait_gone(pids, 5)
    with pytest.raises(GradingError, match="closed"):
        pool.run(["sleep:0"], 30)


def test_threads_share_a_pool() -> None:
    results: list[str] = []
    lock = threading.Lock()
    with GraderPool(2, target="grading_slow_check:nap", warm=None) as pool:

        def work() -> None:
            for _ in range(5):
                status = pool.run(["sleep:0.02"], 30).status
                with lock:
                    results.append(status)

        threads = [threading.Thread(target=work) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert results == ["ok"] * 30


def test_workers_exit_when_their_parent_is_killed() -> None:
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from orchestrator.grading.pool import GraderPool
        pool = GraderPool(2, target="grading_slow_check:nap", warm=None)
        pool.run(["sleep:0"], 60)
        pool.run(["sleep:0"], 60)
        print(" ".join(map(str, pool.pids())), flush=True)
        time.sleep(600)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(p) for p in parent.stdout.readline().split()]  # type: ignore[union-attr]  # stdout=PIPE
        assert len(pids) == 2 and not any(gone(pid) for pid in pids)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
    assert wait_gone(pids)


def test_a_timeout_becomes_the_timeout_verdict() -> None:
    with GraderPool(1, target="grading_slow_check:nap", warm=None) as pool:
        grades = grade_many(
            [GradeRequest("Ответ: sleep:30", "1"), GradeRequest("Ответ: sleep:0", "1")], timeout=0.5, pool=pool
        )
    assert [g.verdict for g in grades] == ["timeout", "correct"]
    assert grades[0].seconds >= 0.5 and grades[0].extracted == "sleep:30"


def test_the_default_pool_starts_on_demand_and_shuts_down() -> None:
    assert grade("Ответ: \\frac{1}{2}", "0,5").verdict == "correct"
    pids = api.default_pool().pids()
    assert pids and not any(gone(pid) for pid in pids)
    shutdown()
    assert wait_gone(pids, 5)
    assert grade("Ответ: \\frac{1}{2}", "0,5").verdict == "correct"


def test_a_private_pool_is_stopped_after_use() -> None:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    assert grade_many([GradeRequest("Ответ: \\sqrt{4}", "2")], workers=1)[0].verdict == "correct"
    after = {p.pid for p in psutil.Process().children(recursive=True) if not gone(p.pid)}
    assert after <= before
