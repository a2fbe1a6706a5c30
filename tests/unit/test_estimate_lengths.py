"""A bounded estimate (every answer at max_tokens) of a model not yet started is reweighed by how long the answers
of the models that ran were against their own bound: the pure rule, the progress reading it rests on, and the
threaded scheduler that lets such a model backfill once it is weighed right (real threads, short real sleeps)."""

from __future__ import annotations

import io
import threading
import time
from types import SimpleNamespace

import pytest

from orchestrator.backend import _lengths
from orchestrator.contract import ModelConfig, Sampling, VllmSettings
from orchestrator.scheduling.estimate import ModelFacts, Workload, estimate, from_history, length_ratio, reweighed
from orchestrator.scheduling.jobs import Job
from orchestrator.scheduling.plan import Placement, make_jobs
from orchestrator.scheduling.runner import Scheduler
from orchestrator.status.progress import MIN_SEEN, Progress

U = 0.15  # seconds per time unit in the threaded test


def test_the_ratio_is_the_median_of_the_models_that_ran_capped_at_the_bound() -> None:
    assert length_ratio([]) is None
    assert length_ratio([(None, 32768), (None, 4096)]) is None  # too few answers yet
    assert length_ratio([(8192.0, 32768), (None, 4096), (2048.0, 4096), (1024.0, 8192)]) == pytest.approx(0.25)
    assert length_ratio([(9000.0, 4096)]) == 1.0  # a reasoning model's tokens past its answer: never above the bound


def test_reweighing_scales_the_generation_and_keeps_the_start_up() -> None:
    assert reweighed(1000.0, 200.0, 0.25) == pytest.approx(400.0)
    assert reweighed(1000.0, 200.0, None) == 1000.0


def test_only_an_estimate_that_takes_the_bound_is_marked_bounded() -> None:
    facts = ModelFacts(15_200_000_000, gpu="NVIDIA H200")
    assert estimate(facts, Workload(answers=100, max_tokens=4096, in_flight=64)).bounded
    assert not estimate(facts, Workload(answers=100, max_tokens=4096, in_flight=64, mean_tokens=900)).bounded
    assert not from_history(1234.0, Workload(answers=100, max_tokens=4096, in_flight=64)).bounded
    api = ModelFacts(None, managed=False)
    assert estimate(api, Workload(answers=100, max_tokens=4096, in_flight=8)).bounded


def test_progress_gives_a_models_mean_answer_length_once_enough_answers_came_in() -> None:
    progress = Progress(stream=io.StringIO())
    assert progress.mean_tokens("m") is None
    for i in range(MIN_SEEN):
        assert progress.mean_tokens("m") is None
        progress.record("m", "ds", correct=False, tokens=100 + 2 * i, error=False)
    progress.record("m", "ds", correct=False, tokens=0, error=True)  # a failed request is no answer
    assert progress.mean_tokens("m") == pytest.approx(100 + (MIN_SEEN - 1))


def job(key: str, tp: int, weight: float, bounded: bool = False) -> Job:
    model = ModelConfig(
        key=key, model_name=key, sampling=Sampling(), vllm=VllmSettings(model=key, tensor_parallel_size=tp)
    )
    return Job(model, tp, weight=weight, bounded=bounded)


class Recorder:
    def __init__(self, durations: dict[str, float]) -> None:
        self.durations, self.starts, self.lock = durations, dict[str, float](), threading.Lock()

    def __call__(self, j: Job, gpus: tuple[int, ...]) -> str:
        with self.lock:
            self.starts[j.key] = time.monotonic()
        time.sleep(self.durations[j.key])
        return j.key


@pytest.mark.parametrize("ratio,backfills", [(None, False), (0.2, True)])
def test_a_bounded_model_backfills_beside_a_reservation_once_the_answers_so_far_shorten_it(
    ratio: float | None, backfills: bool
) -> None:
    """a holds GPU 0 for 3 units; big (TP=2) reserves both GPUs from then; small is estimated at 10 units (the
    bound) but runs 1. Weighed at the bound it may not start on GPU 1 before big; at a ratio of 0.2 (2 units, ending
    before the reservation) it may."""
    jobs = [job("a", 1, 3 * U), job("big", 2, U), job("small", 1, 10 * U, bounded=True)]
    recorder = Recorder({"a": 3 * U, "big": U, "small": U})
    began = time.monotonic()
    results = Scheduler(jobs, [0, 1], recorder, priority=list, wait_timeout=0.05, lengths=lambda: ratio).run()
    assert results == {"a": "a", "big": "big", "small": "small"}
    assert (recorder.starts["small"] < recorder.starts["big"]) is backfills
    if backfills:
        assert recorder.starts["small"] - began < 2 * U


def test_the_runs_length_ratio_reads_every_models_answers_but_not_the_judges_verdicts() -> None:
    progress = Progress(stream=io.StringIO())
    for _ in range(MIN_SEEN):
        progress.record("a", "ds", correct=False, tokens=1000, error=False)
        progress.record("judge", "ds", correct=False, tokens=40, error=False)
    models = [
        ModelConfig(key=k, model_name=k, sampling=Sampling(max_tokens=bound), vllm=VllmSettings(model=k))
        for k, bound in (("a", 4000), ("b", 4000), ("judge", 512))
    ]
    placements = [Placement(j, (), 0, 0.0, None) for j in make_jobs(models, True, after={"judge": ("a", "b")})]
    lengths = _lengths(SimpleNamespace(progress=progress), placements)  # type: ignore[arg-type]
    assert lengths() == pytest.approx(0.25)  # a's 1000 of 4000; b has no answers yet; the judge's 40 of 512 not
