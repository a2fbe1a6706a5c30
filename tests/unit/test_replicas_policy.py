"""When the pure policy starts a replica (``policy.fill``) and what the simulation makes of it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from orchestrator.config.build import build_config
from orchestrator.contract import ModelConfig, Sampling, VllmSettings
from orchestrator.errors import ConfigError
from orchestrator.judge.job import JudgeTask
from orchestrator.judge.settings import JudgeSettings
from orchestrator.scheduling.policy import Job, Running, Slots, fill, makespan, simulate
from orchestrator.scheduling.runner import Scheduler

GPUS = frozenset(range(8))


def job(key: str, tp: int = 1, weight: float = 1000.0, startup: float = 100.0, replicas: int | None = None) -> Job:
    model = ModelConfig(
        key=key,
        model_name=key,
        sampling=Sampling(),
        vllm=VllmSettings(model=key, tensor_parallel_size=tp),
        replicas=replicas,
    )
    return Job(model, tp, False, weight, startup)


def free(*gpus: int) -> Slots:
    return Slots(frozenset(gpus), 1, 8)


WAITING = [job("wide", tp=16)]  # a ready model that waits (it never fits here): replicas must repay their start-up


def test_a_replica_starts_on_idle_gpus_when_it_pays_for_its_startup() -> None:
    big = job("big")
    starts = fill([], [Running(big, (0,), 0.0)], free(1), now=0.0, remaining={"big": 1000.0})
    assert starts == [(big, (1,))]


def test_no_replica_when_the_model_ends_before_a_replica_would_help_while_a_model_waits() -> None:
    big = job("big")
    assert fill(WAITING, [Running(big, (0,), 0.0)], free(1), now=0.0, remaining={"big": 250.0}) == []


def test_once_no_model_waits_any_gain_will_do_but_not_none() -> None:
    big = job("big")
    assert fill([], [Running(big, (0,), 0.0)], free(1), now=0.0, remaining={"big": 250.0}) == [(big, (1,))]
    assert fill([], [Running(big, (0,), 0.0)], free(1), now=0.0, remaining={"big": 90.0}) == []


def test_replicas_one_turns_them_off() -> None:
    big = job("big", replicas=1)
    assert fill([], [Running(big, (0,), 0.0)], free(1, 2, 3), now=0.0, remaining={"big": 5000.0}) == []


def test_replicas_n_bounds_the_servers_of_a_model() -> None:
    big = job("big", replicas=2)
    starts = fill([], [Running(big, (0,), 0.0)], free(1, 2, 3), now=0.0, remaining={"big": 50000.0})
    assert starts == [(big, (1,))]


def test_the_model_that_ends_last_gets_the_replica_first() -> None:
    short, long = job("short"), job("long")
    running = [Running(short, (0,), 0.0), Running(long, (1,), 0.0)]
    starts = fill([], running, free(2), now=0.0, remaining={"short": 800.0, "long": 3000.0})
    assert [j.key for j, _ in starts] == ["long"]


def test_a_waiting_job_that_fits_goes_first() -> None:
    big, waiting = job("big"), job("waiting")
    assert fill([waiting], [Running(big, (0,), 0.0)], free(1), now=0.0, remaining={"big": 5000.0}) == []


def test_a_replica_keeps_off_the_reservation_of_a_blocked_job_unless_its_model_ends_first() -> None:
    """TP=2 'wide' waits for GPUs 0 and 1 ('a' on 0 ends at 500): the free GPU 1 is reserved. 'b' ends last but
    would still end at 3050 with a replica, after the reservation: it gets none; 'a' with one ends at 300: it does."""
    a, b, wide = job("a"), job("b"), job("wide", tp=2)
    running = [Running(a, (0,), 0.0), Running(b, (2,), 0.0)]
    starts = fill([wide], running, free(1), now=0.0, remaining={"a": 500.0, "b": 6000.0})
    assert starts == [(a, (1,))]


def test_with_replicas_the_simulated_night_ends_sooner_and_no_gpu_is_double_booked() -> None:
    jobs = [job("big", weight=3100.0), job("mid", tp=2, weight=600.0), job("wide", tp=4, weight=900.0)]
    without = simulate(jobs, range(8))
    with_replicas = simulate(jobs, range(8), replicas=True)
    assert makespan(with_replicas) < 0.5 * makespan(without)
    assert any(s.replica for s in with_replicas)
    for i, s in enumerate(with_replicas):
        for t in with_replicas[i + 1 :]:
            overlap = s.start < t.end - 1e-9 and t.start < s.end - 1e-9
            assert not (overlap and set(s.gpus) & set(t.gpus)), (s, t)


@pytest.mark.parametrize(
    "value,expected", [("auto", None), (1, 1), (3, 3)], ids=["auto is the default's meaning", "one", "three"]
)
def test_the_config_reads_replicas_auto_or_a_count(value: object, expected: int | None) -> None:
    data = {"model_list": ["m"], "m": {"model_name": "m", "vllm": {"model": "org/m"}, "replicas": value}}
    assert build_config(Path("run.yaml"), data, {}).models[0].replicas == expected


@pytest.mark.parametrize("value", [0, "many", True])
def test_a_bad_replicas_value_is_one_line_naming_the_field_and_the_fix(value: object) -> None:
    data = {"model_list": ["m"], "m": {"model_name": "m", "vllm": {"model": "org/m"}, "replicas": value}}
    with pytest.raises(ConfigError) as caught:
        build_config(Path("run.yaml"), data, {})
    message = str(caught.value)
    assert message.startswith("run.yaml: m.replicas: ") and "use auto (fill idle GPUs), 1 (one server)" in message
    assert "\n" not in message


def cpu_job(key: str, replicas: int | None = None) -> Job:
    model = ModelConfig(key=key, model_name=key, sampling=Sampling(), vllm=VllmSettings(model=key), replicas=replicas)
    return Job(model, 0, True, 1000.0, 10.0)


def test_a_cpu_servers_model_gets_a_replica_on_a_free_cpu_server_slot() -> None:
    tiny = cpu_job("tiny")
    starts = fill([], [Running(tiny, (), 0.0)], Slots(frozenset(), 1, 8), now=0.0, remaining={"tiny": 500.0})
    assert starts == [(tiny, ())]


def test_no_cpu_replica_without_a_free_cpu_server_slot_or_with_replicas_one() -> None:
    tiny = cpu_job("tiny")
    assert fill([], [Running(tiny, (), 0.0)], Slots(frozenset(), 0, 8), now=0.0, remaining={"tiny": 500.0}) == []
    off = cpu_job("off", replicas=1)
    assert fill([], [Running(off, (), 0.0)], Slots(frozenset(), 1, 8), now=0.0, remaining={"off": 500.0}) == []


def test_a_waiting_cpu_model_takes_the_free_slot_before_a_replica() -> None:
    tiny, waiting = cpu_job("tiny"), cpu_job("waiting")
    free_slot = Slots(frozenset(), 1, 8)
    assert fill([waiting], [Running(tiny, (), 0.0)], free_slot, now=0.0, remaining={"tiny": 500.0}) == []


def test_a_cpu_replica_holds_a_cpu_server_slot_until_it_ends() -> None:
    tiny = cpu_job("tiny")
    slots = Slots(frozenset(), 2, 8).take(tiny, ()).take(tiny, (), replica=True)
    assert slots.cpu == 0
    assert slots.give(tiny, (), replica=True).cpu == 1


def test_the_judge_is_never_replicated_even_when_its_model_block_says_auto() -> None:
    block = ModelConfig(key="qwen", model_name="qwen", sampling=Sampling(), vllm=VllmSettings(model="q"), replicas=None)
    judge = JudgeTask.of(JudgeSettings("qwen"), block, ["m"]).model
    assert Job(block, gpus_needed=1).max_servers > 1
    assert Job(judge, gpus_needed=1).max_servers == 1


def run_with_replicas(
    untaken: float | None, remaining: float | None = 1000.0, startup: float | None = None, waiting: bool = True
) -> list[tuple[str, tuple[int, ...]]]:
    """A threaded Scheduler on GPUs 0 and 1 with one model 'm' (estimate 1000 s, start-up 10 s) that runs for 0.6 s,
    ``remaining`` seconds projected, ``untaken`` of them in its queue and a measured start-up of ``startup``; with
    ``waiting``, a TP=2 model waits for both GPUs meanwhile. Returns the replicas it started."""
    started: list[tuple[str, tuple[int, ...]]] = []

    def launch(j: Job, gpus: tuple[int, ...]) -> str:
        if j.key == "m":
            time.sleep(0.6)
        return "ok"

    def replica(j: Job, gpus: tuple[int, ...]) -> str:
        started.append((j.key, gpus))
        time.sleep(0.1)
        return "replica"

    jobs = [job("m", weight=1000.0, startup=10.0)] + ([job("later", tp=2, weight=5.0)] if waiting else [])
    scheduler = Scheduler(
        jobs,
        [0, 1],
        launch,
        replica=replica,
        remaining=lambda key: remaining,
        untaken=lambda key: untaken,
        startup=lambda key: startup,
        wait_timeout=0.05,
        priority=lambda jobs: jobs,
    )
    assert set(scheduler.run().values()) == {"ok"}
    return started


def test_a_replica_goes_by_the_work_still_queued_and_by_measured_time_only() -> None:
    assert run_with_replicas(untaken=None)[:1] == [("m", (1,))]  # queue unknown: all of its time counts
    assert run_with_replicas(untaken=0.5)[:1] == [("m", (1,))]  # 500 s of queued work pays for a 10 s start-up
    assert run_with_replicas(untaken=0.0) == []  # every answer asked: the model's tail is no work for a replica
    assert run_with_replicas(untaken=0.02) == []  # 20 s queued: empty before a replica would help enough
    assert run_with_replicas(untaken=1.0, remaining=None) == []  # no measured end yet: never on an estimate


def test_fill_reads_the_untaken_work_for_what_a_replica_gains() -> None:
    big = job("big", startup=100.0)
    running = [Running(big, (0,), 0.0)]
    assert fill(WAITING, running, free(1), now=0.0, remaining={"big": 1000.0}, untaken={"big": 1000.0}) == [(big, (1,))]
    assert fill(WAITING, running, free(1), now=0.0, remaining={"big": 1000.0}, untaken={"big": 250.0}) == []
    two = fill(WAITING, running, free(1, 2, 3), now=0.0, remaining={"big": 1000.0}, untaken={"big": 700.0})
    assert two == [
        (big, (1,)),
        (big, (2,)),
    ]  # 700 s queued: a second replica gains (700-300-100)/3 = 100 s, not a third


def test_a_replica_costs_its_models_measured_start_up_once_the_first_server_has_started() -> None:
    assert run_with_replicas(untaken=0.1)[:1] == [("m", (1,))]  # 100 s queued pays for the estimated 10 s
    assert run_with_replicas(untaken=0.1, startup=40.0) == []  # but not for a start-up measured at 40 s
    assert run_with_replicas(untaken=0.5, startup=40.0)[:1] == [("m", (1,))]  # 500 s does


def test_fill_takes_a_replicas_start_up_from_startups_before_the_jobs_estimate() -> None:
    big = job("big", startup=100.0)
    running = [Running(big, (0,), 0.0)]
    assert fill(WAITING, running, free(1), now=0.0, remaining={"big": 250.0}, startups={"big": 20.0}) == [(big, (1,))]
    assert fill(WAITING, running, free(1), now=0.0, remaining={"big": 1000.0}, startups={"big": 400.0}) == []


def test_once_no_model_waits_a_replica_starts_on_the_estimate_for_any_gain() -> None:
    """Idle GPUs then cost nothing: the estimate (1000 s) will do before a measured end, and a gain under the
    start-up too; work nobody can take still gets none."""
    assert run_with_replicas(untaken=None, remaining=None, waiting=False)[:1] == [("m", (1,))]
    assert run_with_replicas(untaken=0.02, waiting=False)[:1] == [("m", (1,))]  # 20 s queued: gains 5 s of it
    assert run_with_replicas(untaken=0.0, waiting=False) == []
    assert run_with_replicas(untaken=0.005, waiting=False) == []  # 5 s queued: empty before a replica is up


def test_a_model_whose_first_server_ended_gets_no_more_replicas_while_its_last_one_leaves() -> None:
    """'m' ends while its replica still runs (leaving): GPU 0 comes free, yet no new replica of 'm' starts there."""
    started: list[tuple[int, ...]] = []

    def launch(j: Job, gpus: tuple[int, ...]) -> str:
        deadline = time.monotonic() + 10
        while not started and time.monotonic() < deadline:
            time.sleep(0.01)
        return "ok"

    def replica(j: Job, gpus: tuple[int, ...]) -> str:
        started.append(gpus)
        time.sleep(0.5)  # the scheduler loops meanwhile, 'm' over
        return "replica"

    scheduler = Scheduler(
        [job("m", weight=1000.0, startup=10.0)],
        [0, 1],
        launch,
        replica=replica,
        remaining=lambda key: 1000.0,
        wait_timeout=0.02,
    )
    assert scheduler.run() == {"m": "ok"}
    assert started == [(1,)]
