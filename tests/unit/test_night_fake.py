"""The night benchmark's fake vLLM engine and the overhead-free replay its fidelity check compares against."""

from __future__ import annotations

import threading

import pytest

from benchmarks.night.fakeserver import Engine, rate_at
from benchmarks.night.fidelity import ideal

FLAT = [(1, 10.0), (2, 20.0)]  # 10 tok/s per sequence (batches of at most two here)


def test_the_rate_is_proportional_below_the_first_point_and_flat_after_the_last() -> None:
    points = [(16, 160.0), (256, 1000.0)]
    assert rate_at(points, 8) == pytest.approx(80.0)
    assert rate_at(points, 512) == 1000.0
    assert 160.0 < rate_at(points, 64) < 1000.0


def test_a_request_waiting_for_its_longest_choice_holds_no_slot_the_replay_frees_each_choice() -> None:
    # one slot: request A (choices 10 and 30 tokens) then B (10): B's choice runs once A's short choice ends
    # and the slot it frees is taken, so the engine never idles: 50 tokens at 10 tok/s
    assert ideal([[10, 30], [10]], in_flight=2, points=FLAT, seqs=1) == pytest.approx(5.0)


def test_the_replay_sends_the_next_request_only_when_one_ends() -> None:
    # two slots, one request in flight: B starts only when A's longest choice (30 tokens) ends
    assert ideal([[10, 30], [10, 10]], in_flight=1, points=FLAT, seqs=2) == pytest.approx(4.0)


class ManualClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_each_choice_frees_its_slot_when_it_ends_and_the_engine_counts_the_tokens() -> None:
    clock = ManualClock()
    engine = Engine(FLAT, max_seqs=1, scale=1.0, clock=clock)
    done = threading.Event()
    threading.Thread(target=lambda: (engine.generate_all([10, 30], 0), done.set()), daemon=True).start()
    while not engine.requests:
        threading.Event().wait(0.001)
    with engine.lock:
        assert len(engine.running) == 1 and len(engine.waiting) == 1  # one slot: the second choice waits
    clock.now = 1.0  # the first choice's 10 tokens
    with engine.lock:
        engine.lock.notify()
    while True:
        with engine.lock:
            if len(engine.waiting) == 0:
                break
        threading.Event().wait(0.001)
    clock.now = 4.0
    with engine.lock:
        engine.lock.notify()
    assert done.wait(5)
    assert engine.snapshot()["tokens"] == pytest.approx(40.0)
