"""The scheduler: pure decisions, the discrete-event simulation, and the threaded Scheduler with a scripted
launcher on real threads and real short sleeps (4 GPUs, mixed TP)."""

from __future__ import annotations

import random
import threading
import time
from itertools import combinations

import pytest

from orchestrator.contract import Endpoint, ModelConfig, Sampling, VllmSettings
from orchestrator.errors import OrchestratorError, PlanError
from orchestrator.scheduling.policy import (
    ORDERINGS,
    Job,
    Running,
    Slots,
    choose_group,
    decide,
    makespan,
    priority_order,
    simulate,
)
from orchestrator.scheduling.runner import Scheduler

GPUS = [0, 1, 2, 3]
U = 0.1  # seconds per time unit in the threaded tests


def job(key: str, tp: int = 1, weight: float = 1.0, kind: str = "gpu") -> Job:
    if kind == "api":
        model = ModelConfig(
            key=key, model_name=key, sampling=Sampling(), endpoints=(Endpoint("http://127.0.0.1:9/v1"),)
        )
        return Job(model, 0, False, weight)
    model = ModelConfig(
        key=key, model_name=key, sampling=Sampling(), vllm=VllmSettings(model=key, tensor_parallel_size=tp)
    )
    return Job(model, tp if kind == "gpu" else 0, kind == "cpu", weight)


def lower_bound(jobs: list[Job], n_gpus: int) -> float:
    return max(sum(j.gpus_needed * j.weight for j in jobs) / n_gpus, max(j.weight for j in jobs))


# ---------------------------------------------------------------------------------------------------- groups


@pytest.mark.parametrize(
    "free,k,avoid,expected",
    [
        ({0, 1, 2, 3}, 2, set(), (0, 1)),
        ({1, 2, 3}, 2, set(), (2, 3)),  # aligned pair, not 1+2
        ({0, 1, 3}, 1, set(), (3,)),  # best fit: keep the pair 0,1 whole
        ({0, 2}, 2, set(), (0, 2)),  # no contiguous pair: any two
        ({0, 1, 2, 3}, 3, {3}, (0, 1, 2)),
        ({0, 1, 2, 3}, 2, {0, 1}, (2, 3)),
        ({4, 5, 6}, 4, set(), None),
        ({1, 2, 5}, 2, set(), (1, 2)),
    ],
)
def test_choose_group(free: set[int], k: int, avoid: set[int], expected: tuple[int, ...] | None) -> None:
    assert choose_group(free, k, frozenset(avoid)) == expected


# ---------------------------------------------------------------------------------------------------- decide


def test_decide_starts_the_highest_priority_jobs_that_fit() -> None:
    pending = [job("pair", 2), job("a"), job("b"), job("c"), job("api", kind="api"), job("cpu", kind="cpu")]
    starts = decide(pending, [], Slots(frozenset(GPUS), cpu=1, api=1), now=0.0)
    assert [(j.key, g) for j, g in starts] == [("pair", (0, 1)), ("a", (2,)), ("b", (3,)), ("api", ()), ("cpu", ())]


def test_decide_reserves_gpus_for_a_blocked_big_job() -> None:
    """GPU 0 is busy until t=3; the TP=4 job reserves all four GPUs from t=3: a single-GPU job estimated to end
    by then may backfill, a longer one may not."""
    running = [Running(job("busy", weight=3.0), (0,), start=0.0)]
    pending = [job("big", 4, weight=10.0), job("long", weight=5.0), job("short", weight=2.0)]
    starts = decide(pending, running, Slots(frozenset({1, 2, 3}), 1, 8), now=0.0)
    assert [j.key for j, _ in starts] == ["short"]


def test_decide_without_the_reservation_would_have_started_the_long_job() -> None:
    starts = decide(
        [job("long", weight=5.0)],
        [Running(job("busy", weight=3.0), (0,), 0.0)],
        Slots(frozenset({1, 2, 3}), 1, 8),
        now=0.0,
    )
    assert [j.key for j, _ in starts] == ["long"]


def test_decide_is_pure() -> None:
    free = Slots(frozenset(GPUS), 1, 1)
    pending = [job("a", 2), job("b")]
    decide(pending, [], free, 0.0)
    assert free == Slots(frozenset(GPUS), 1, 1) and [j.key for j in pending] == ["a", "b"]


# ---------------------------------------------------------------------------------------------------- simulate


def test_big_job_is_not_starved_when_estimates_are_overrun() -> None:
    """Priority: long (est. 0.1, really 10), big TP=4, then small jobs (est. 0.05, really 3). Backfills happen
    only while estimates say they end in time; once the long job overruns nothing new starts on the reserved
    GPUs, so big starts when the jobs running at that moment end (t=10), not after all small jobs."""
    order = [job("long", weight=0.1), job("big", 4, weight=1.0)] + [job(f"s{i}", weight=0.05) for i in range(9)]
    actual = {"long": 10.0, "big": 1.0, **{f"s{i}": 3.0 for i in range(9)}}
    slots = {s.job.key: s for s in simulate(order, GPUS, durations=actual)}
    assert slots["big"].start == 10.0
    assert [slots[f"s{i}"].start for i in range(3)] == [0.0, 0.0, 0.0]
    assert all(slots[f"s{i}"].start >= slots["big"].end for i in range(3, 9))


def test_pure_greedy_would_starve_the_big_job() -> None:
    """The same mix with no reservation (the big job last in priority) runs every small job first."""
    order = [job("long", weight=0.1)] + [job(f"s{i}", weight=0.05) for i in range(9)] + [job("big", 4, weight=1.0)]
    actual = {"long": 10.0, "big": 1.0, **{f"s{i}": 3.0 for i in range(9)}}
    slots = {s.job.key: s for s in simulate(order, GPUS, durations=actual)}
    assert slots["big"].start >= max(s.end for k, s in slots.items() if k != "big")


def test_simulation_never_double_books_and_respects_limits() -> None:
    rng = random.Random(7)
    jobs = [job(f"g{i}", rng.choice([1, 2, 4]), rng.uniform(1, 9)) for i in range(10)]
    jobs += [job(f"c{i}", weight=rng.uniform(1, 3), kind="cpu") for i in range(3)]
    jobs += [job(f"a{i}", weight=rng.uniform(1, 3), kind="api") for i in range(5)]
    slots = simulate(
        priority_order(jobs, GPUS, max_cpu_servers=2, max_api_concurrency=3),
        GPUS,
        max_cpu_servers=2,
        max_api_concurrency=3,
    )
    assert sorted(s.job.key for s in slots) == sorted(j.key for j in jobs)
    for a, b in combinations(slots, 2):
        if a.start < b.end and b.start < a.end:
            assert not set(a.gpus) & set(b.gpus)
    for kind, limit in (("cpu", 2), ("api", 3)):
        for s in slots:
            assert sum(1 for o in slots if o.job.kind == kind and o.start <= s.start < o.end) <= limit


def test_scheduling_efficiency_on_random_mixes() -> None:
    """12 models of TP 1, 2 and 4 on 4 GPUs: makespan within 10% of its lower bound on every seeded mix."""
    rng = random.Random(2024)
    for _ in range(15):
        jobs = [job(f"m{i}", rng.choice([1, 1, 2, 2, 4]), round(rng.uniform(0.5, 8.0), 2)) for i in range(12)]
        span = makespan(simulate(priority_order(jobs, GPUS), GPUS))
        assert span <= 1.10 * lower_bound(jobs, 4) + 1e-9


def test_an_api_model_estimated_longer_than_every_gpu_job_does_not_blind_the_order_search() -> None:
    """With the API model's makespan equal for every order, the GPU jobs' own makespan still decides: never worse
    than the first candidate (larger, then slower, first), better on some mixes, as without the API model."""
    rng = random.Random(7)
    gains = []
    for _ in range(10):
        gpu_jobs = [job(f"m{i}", rng.choice([1, 1, 2, 4]), round(rng.uniform(0.5, 8.0), 2)) for i in range(10)]
        first = makespan(simulate(sorted(gpu_jobs, key=ORDERINGS[0]), GPUS))
        slots = simulate(priority_order([*gpu_jobs, job("api", weight=1000.0, kind="api")], GPUS), GPUS)
        assert makespan(slots) == pytest.approx(1000.0)
        gains.append(first - makespan(s for s in slots if s.gpus))
    assert min(gains) >= -1e-9 and max(gains) > 0.1


# ---------------------------------------------------------------------------------------------------- threads


class ScriptedLauncher:
    """A launch function that holds its GPUs for a scripted time and records who held which GPU when."""

    def __init__(self, durations: dict[str, float], fail: set[str] = frozenset(), on_start=None) -> None:
        self.durations, self.fail, self.on_start = durations, fail, on_start
        self.lock = threading.Lock()
        self.owner: dict[int, str] = {}
        self.violations: list[tuple[int, str, str]] = []
        self.spans: dict[str, tuple[float, float, tuple[int, ...]]] = {}
        self.active: dict[str, int] = {"gpu": 0, "cpu": 0, "api": 0}
        self.peak: dict[str, int] = {"gpu": 0, "cpu": 0, "api": 0}

    def __call__(self, j: Job, gpus: tuple[int, ...]) -> str:
        began = time.monotonic()
        self._enter(j, gpus)
        if self.on_start:
            self.on_start(j)
        time.sleep(self.durations[j.key])
        self._leave(j, gpus)
        self.spans[j.key] = (began, time.monotonic(), gpus)
        if j.key in self.fail:
            raise RuntimeError(f"scripted failure of {j.key}")
        return f"ok {j.key}"

    def _enter(self, j: Job, gpus: tuple[int, ...]) -> None:
        with self.lock:
            for g in gpus:
                if g in self.owner:
                    self.violations.append((g, self.owner[g], j.key))
                self.owner[g] = j.key
            self.active[j.kind] += 1
            self.peak[j.kind] = max(self.peak[j.kind], self.active[j.kind])

    def _leave(self, j: Job, gpus: tuple[int, ...]) -> None:
        with self.lock:
            for g in gpus:
                if self.owner.get(g) == j.key:
                    del self.owner[g]
            self.active[j.kind] -= 1


def test_threaded_scheduler_on_4_gpus_mixed_tp_never_double_books_and_hits_the_makespan() -> None:
    """TP=4 (2 units), two TP=2 (3 units), four TP=1 (2 units): the lower bound is 28/4 = 7 units, which the
    plan reaches: TP=4 first, then both pairs, then the four singles."""
    jobs = [
        job("s1", 1, 2 * U),
        job("p1", 2, 3 * U),
        job("s2", 1, 2 * U),
        job("big", 4, 2 * U),
        job("s3", 1, 2 * U),
        job("p2", 2, 3 * U),
        job("s4", 1, 2 * U),
    ]
    launcher = ScriptedLauncher({j.key: j.weight for j in jobs})
    scheduler = Scheduler(jobs, GPUS, launcher)
    results = scheduler.run()
    assert results == {j.key: f"ok {j.key}" for j in jobs}
    assert launcher.violations == []
    spans = launcher.spans
    for a, b in combinations(spans, 2):
        (a0, a1, ga), (b0, b1, gb) = spans[a], spans[b]
        if a0 < b1 and b0 < a1:
            assert not set(ga) & set(gb), (a, b)
    real = max(e for _, e, _ in spans.values()) - min(s for s, _, _ in spans.values())
    assert makespan(simulate(scheduler.order, GPUS)) == pytest.approx(7 * U)
    assert 7 * U - 0.02 <= real <= 7 * U + 0.35, real
    assert spans["big"][2] == (0, 1, 2, 3) and spans["big"][0] < spans["p1"][0]
    assert sorted(s.job.key for s in scheduler.history) == sorted(j.key for j in jobs)


def test_a_failing_job_never_stops_the_others() -> None:
    jobs = [job("a", 2, U), job("bad", 2, U), job("c", 2, U)]
    launcher = ScriptedLauncher({j.key: j.weight for j in jobs}, fail={"bad"})
    results = Scheduler(jobs, [0, 1], launcher).run()
    assert results["a"] == "ok a" and results["c"] == "ok c"
    assert isinstance(results["bad"], RuntimeError) and "scripted failure" in str(results["bad"])


def test_stop_starts_nothing_new_and_waits_for_running_jobs() -> None:
    stop = threading.Event()
    jobs = [job(k, 2, 2 * U) for k in ("first", "second", "third")]
    launcher = ScriptedLauncher({j.key: j.weight for j in jobs}, on_start=lambda j: stop.set())
    results = Scheduler(jobs, [0, 1], launcher).run(stop)
    (ran,) = launcher.spans
    assert results[ran] == f"ok {ran}" and launcher.spans[ran][1] > launcher.spans[ran][0] + 1.5 * U
    for key in set(results) - {ran}:
        assert isinstance(results[key], OrchestratorError) and "was not started" in str(results[key])


def test_api_jobs_run_concurrently_up_to_the_limit_beside_gpu_jobs() -> None:
    jobs = [job(f"api{i}", weight=U, kind="api") for i in range(5)] + [job("g", 4, 2 * U)]
    launcher = ScriptedLauncher({j.key: j.weight for j in jobs})
    began = time.monotonic()
    Scheduler(jobs, GPUS, launcher, max_api_concurrency=2).run()
    assert launcher.peak["api"] == 2
    assert launcher.spans["g"][0] - began < U  # the GPU job did not wait for API jobs


@pytest.mark.parametrize("limit", [1, 2])
def test_cpu_servers_at_most_max_cpu_servers_at_once(limit: int) -> None:
    jobs = [job(f"c{i}", weight=U, kind="cpu") for i in range(4)]
    launcher = ScriptedLauncher({j.key: j.weight for j in jobs})
    Scheduler(jobs, [], launcher, max_cpu_servers=limit).run()
    assert launcher.peak["cpu"] == limit and len(launcher.spans) == 4


def test_threaded_big_job_starts_when_its_reserved_gpus_free_up() -> None:
    """Given priority [long single, TP=4, small singles], the TP=4 job starts right after the long job: the
    small ones (estimated longer than the wait) do not backfill ahead of it."""
    jobs = [job("long", 1, 3 * U), job("big", 4, U)] + [job(f"s{i}", 1, 5 * U) for i in range(3)]
    launcher = ScriptedLauncher({**{j.key: j.weight for j in jobs}, **{f"s{i}": U for i in range(3)}})
    Scheduler(jobs, GPUS, launcher, priority=list).run()
    spans = launcher.spans
    assert spans["big"][0] - spans["long"][1] < 0.15
    assert all(spans[f"s{i}"][0] >= spans["big"][1] - 0.01 for i in range(3))
    assert launcher.violations == []


def test_scheduler_rejects_oversized_jobs_with_the_planners_check() -> None:
    """Duplicate keys never reach it: the config rejects them (test_config)."""
    with pytest.raises(
        PlanError, match=r"needs 8 GPUs \(tensor_parallel_size 8 x pipeline_parallel_size 1\) but the pool has 4"
    ):
        Scheduler([job("x", 8)], GPUS, lambda j, g: None)


def test_priority_order_does_not_depend_on_the_order_jobs_are_passed_in() -> None:
    """The runner hands the Scheduler the plan's jobs in start order: it must pick the same priority list."""
    rng = random.Random(3)
    jobs = [job(f"m{i:02d}", rng.choice([1, 2, 4]), rng.choice([1.0, 2.0, 5.0])) for i in range(10)]
    shuffled = jobs[:]
    rng.shuffle(shuffled)
    assert priority_order(jobs, GPUS) == priority_order(shuffled, GPUS) == Scheduler(shuffled, GPUS, print).order
