"""The reasoning GPU scenario (benchmarks/gpu/reasoning.py, s6) on CPU: what it counts, its sizes, and that each
way's server is started with its flags. The scenario itself runs on a GPU box (or with --cpu-dry-run)."""

from __future__ import annotations

from benchmarks.gpu import reasoning, report, suite
from benchmarks.gpu.common import Deadline, Profile
from benchmarks.slow_server import ManagedRun
from orchestrator.contract import SeriesScore
from orchestrator.job import ModelOutcome
from orchestrator.serving import launch


def made_up_run() -> ManagedRun:
    outcome = ModelOutcome(model="s6", status="finished", scores=[SeriesScore("s6", "bench", "h", 3, 3, 0, 0, 0, 0, 1)])
    records = [
        {"id": "L0", "error": "no progress on the server for 60 s (request_timeout)"},
        {
            "id": "L0",
            "error": None,
            "forced": True,
            "reasoning_tokens": 100,
            "answer_tokens": 10,
            "completion_tokens": 110,
        },
        {
            "id": "L1",
            "error": None,
            "forced": True,
            "reasoning_tokens": 100,
            "answer_tokens": 19,
            "completion_tokens": 119,
        },
        {
            "id": "L2",
            "error": None,
            "forced": False,
            "reasoning_tokens": 101,
            "answer_tokens": 0,
            "completion_tokens": 101,
        },
    ]
    return ManagedRun(outcome, starts=[0.0], records=records, seconds=10.0, stopped_at=None)


def test_a_way_is_summed_up_from_its_records_counting_forced_and_over_budget_answers():
    f = reasoning.summarize(made_up_run(), total=3, budget=100, answer_tokens=10)
    assert (f["stored"], f["forced"], f["over_budget"]) == (3, 2, 2)  # L1: 19 > 10 + the lead; L2: 101 > 100
    assert (f["max_reasoning_tokens"], f["max_answer_tokens"], f["tokens_per_s"]) == (101, 19, 33.0)


def test_the_gpu_sizes_are_the_issues_and_each_way_s_server_gets_its_flags(tmp_path):
    gpu, dry = Profile.make(False, tmp_path, tmp_path), Profile.make(True, tmp_path, tmp_path)
    assert reasoning.sizes(gpu) == {"answers": 128, "budget": 4096, "answer_tokens": 256}
    assert reasoning.sizes(dry)["answers"] * reasoning.sizes(dry)["budget"] <= 1024
    deadline = Deadline(0.0, 10_000.0)
    engine = launch.command(reasoning.spec_for(gpu, deadline, tmp_path, "engine", 5376))
    client = launch.command(reasoning.spec_for(gpu, deadline, tmp_path, "client", 5376))
    assert "--reasoning-config" in engine and "--reasoning-config" not in client
    assert client[client.index("--reasoning-parser") + 1] == "deepseek_r1"
    assert "s6" in suite.ORDER and "s6" in report.ORDER
