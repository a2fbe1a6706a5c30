"""When the LLM judge may start (``scheduling.jobs.may_start``), and that the simulation (the ``--dry-run`` plan) and
the threaded scheduler both keep it: never before one model it audits has ended, alongside the others once nothing
else waits for GPUs, else after all of them. The threaded tests use real threads and short real sleeps."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from orchestrator.contract import Endpoint, ModelConfig, Sampling, VllmSettings
from orchestrator.judge.ask import MAX_TOKENS
from orchestrator.judge.job import JudgeTask
from orchestrator.judge.settings import JudgeSettings
from orchestrator.scheduling import estimates as est
from orchestrator.scheduling.jobs import Job, may_start
from orchestrator.scheduling.plan import make_jobs, plan
from orchestrator.scheduling.policy import simulate
from orchestrator.scheduling.runner import Scheduler

U = 0.15  # seconds per time unit in the threaded tests


def managed(key: str) -> ModelConfig:
    return ModelConfig(key=key, model_name=key, sampling=Sampling(), vllm=VllmSettings(model=f"/models/{key}"))


def api(key: str) -> ModelConfig:
    return ModelConfig(key=key, model_name=key, sampling=Sampling(), endpoints=(Endpoint("http://127.0.0.1:9/v1"),))


def gpu_job(key: str, weight: float, after: tuple[str, ...] = ()) -> Job:
    return Job(managed(key), 1, weight=weight, after=frozenset(after))


JUDGE = gpu_job("judge", 1.0, ("a", "b"))
API_JUDGE = Job(api("judge"), 0, weight=1.0, after=frozenset({"a", "b"}))


@pytest.mark.parametrize(
    "job,ended,waiting,expected",
    [
        (gpu_job("m", 1.0), set(), {"m", "x"}, True),  # nothing to wait for
        (JUDGE, set(), {"judge"}, False),  # no audited model has ended: nothing to judge yet
        (JUDGE, {"a"}, {"judge", "c"}, False),  # c waits to start: the judge would take its GPU
        (JUDGE, {"a"}, {"judge"}, True),  # nothing else waits: alongside b
        (JUDGE, {"a"}, set(), True),
        (JUDGE, {"a", "b"}, {"judge", "c"}, True),  # all audited ended: its turn, like any job
        (JUDGE, {"x"}, {"judge"}, False),  # an unaudited model's end is no answer to judge
        (API_JUDGE, {"a"}, {"judge", "c"}, True),  # an API judge holds no GPU: alongside at once
        (API_JUDGE, set(), {"judge"}, False),
    ],
)
def test_may_start_lets_the_judge_start_only_with_answers_to_judge_and_gpus_nobody_waits_for(
    job: Job, ended: set[str], waiting: set[str], expected: bool
) -> None:
    assert may_start(job, ended, waiting) is expected


def test_make_jobs_keeps_only_the_audited_keys_that_are_jobs_of_this_run() -> None:
    models = [managed("a"), managed("judge")]
    jobs = {j.key: j for j in make_jobs(models, True, after={"judge": ("a", "gone", "judge")})}
    assert jobs["judge"].after == frozenset({"a"}) and jobs["a"].after == frozenset()


def test_the_simulated_judge_starts_alongside_the_last_model_once_nothing_else_waits() -> None:
    """2 GPUs: a (2) and b (6) start; c (3) takes a's GPU at 2 (it waits, so the judge may not, though it comes
    first in priority); at 5 c ends and nothing waits: the judge starts beside b, before b ends at 6."""
    order = [gpu_job("b", 6.0), gpu_job("a", 2.0), gpu_job("judge", 1.0, ("a", "b", "c")), gpu_job("c", 3.0)]
    slots = {s.job.key: s for s in simulate(order, [0, 1])}
    assert slots["c"].start == pytest.approx(2.0)
    assert slots["judge"].start == pytest.approx(5.0) and slots["judge"].start < slots["b"].end


def test_the_simulated_judge_never_starts_before_a_model_it_audits_has_ended() -> None:
    """3 GPUs, one idle from the start: the judge still waits for a's end at 2."""
    order = [gpu_job("b", 6.0), gpu_job("a", 2.0), gpu_job("judge", 1.0, ("a", "b"))]
    slots = {s.job.key: s for s in simulate(order, [0, 1, 2])}
    assert slots["judge"].start == pytest.approx(2.0)


def test_the_dry_run_plan_places_the_judge_after_a_model_it_audits() -> None:
    models = [managed("a"), managed("b"), managed("judge")]
    weights = {"a": 100.0, "b": 400.0, "judge": 50.0}
    placements = {p.job.key: p for p in plan(models, [0, 1, 2], range(8100, 8200), weights=weights)}
    assert placements["a"].wave_start == 0.0 and placements["b"].wave_start == 0.0
    assert placements["judge"].wave_start == 0.0  # without ``after`` it would take the idle GPU at once
    placements = {
        p.job.key: p for p in plan(models, [0, 1, 2], range(8100, 8200), weights=weights, after={"judge": ("a", "b")})
    }
    assert placements["judge"].wave_start == pytest.approx(100.0)


class Recorder:
    """A launch function that holds its job for ``durations[key]`` seconds and records when it ran."""

    def __init__(self, durations: dict[str, float]) -> None:
        self.durations = durations
        self.spans: dict[str, tuple[float, float]] = {}
        self.lock = threading.Lock()

    def __call__(self, job: Job, gpus: tuple[int, ...]) -> str:
        began = time.monotonic()
        time.sleep(self.durations[job.key])
        with self.lock:
            self.spans[job.key] = (began, time.monotonic())
        return job.key


def test_the_scheduler_starts_the_judge_beside_the_last_model_and_not_before_the_first_ends() -> None:
    jobs = [gpu_job("b", 6 * U), gpu_job("a", 2 * U), gpu_job("judge", U, ("a", "b", "c")), gpu_job("c", 3 * U)]
    recorder = Recorder({j.key: j.weight for j in jobs})
    results = Scheduler(jobs, [0, 1], recorder, priority=list, wait_timeout=0.05).run()
    assert results == {j.key: j.key for j in jobs}
    spans = recorder.spans
    assert spans["judge"][0] >= spans["c"][1] - 0.01  # c waited for a GPU: the judge let it go first
    assert spans["judge"][0] < spans["b"][1]  # then it ran beside b


def test_the_scheduler_holds_the_judge_back_while_another_model_waits_for_its_gpu() -> None:
    """One GPU, priority a, judge, b: the judge (after a and b) may not take the GPU between them, though a has
    ended and it comes before b."""
    jobs = [gpu_job("a", U), gpu_job("judge", U, ("a", "b")), gpu_job("b", 2 * U)]
    recorder = Recorder({j.key: j.weight for j in jobs})
    Scheduler(jobs, [0], recorder, priority=list, wait_timeout=0.05).run()
    spans = recorder.spans
    assert spans["a"][1] <= spans["b"][0] + 0.01 and spans["judge"][0] >= spans["b"][1] - 0.01


def test_the_judges_estimate_counts_the_answers_it_may_judge_at_its_capped_reply_length() -> None:
    """The judge answers with a verdict: its block's max_tokens is capped (``ask.MAX_TOKENS``), and its workload is
    the audited models' answers (``answers``), not its own problems x samples."""
    block = dataclasses.replace(managed("qwen"), sampling=Sampling(max_tokens=8192))
    judge = JudgeTask.of(JudgeSettings("qwen"), block, ["a", "b"]).model
    assert judge.sampling.max_tokens == MAX_TOKENS
    plain, audit = (
        est.model_estimates([judge], 100, None, answers=answers, sizes=lambda m: None)["judge"]
        for answers in ({}, {"judge": 2000})
    )
    assert "100 answers x 512 tokens" in plain.basis and "2000 answers x 512 tokens" in audit.basis
    assert audit.seconds > plain.seconds


def test_the_judge_waits_only_for_audited_models_that_are_jobs_and_counts_their_answers() -> None:
    task = JudgeTask.of(JudgeSettings("qwen"), managed("qwen"), ["a", "b"])
    ended: set[str] = set()
    seen = task.ended_of(lambda: ended, {"a", "judge"})  # b is no job of this run: it would never end
    assert seen() == {"b"}
    ended.add("a")
    assert seen() == {"a", "b"} and task.after == {"judge": ("a", "b")}
    models = [dataclasses.replace(managed("a"), samples=4), managed("judge")]
    assert task.answers(10, models) == {"judge": 40}
