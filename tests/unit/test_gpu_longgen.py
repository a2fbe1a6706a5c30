"""The long-generation GPU scenarios (benchmarks/gpu/longgen.py, s5a / s5b) on CPU: what they count and report.
The scenarios themselves run on a GPU box (or with --cpu-dry-run); these keep their pieces honest here."""

from __future__ import annotations

from benchmarks.gpu import longgen, report, suite
from benchmarks.gpu.common import Profile
from benchmarks.slow_server import ManagedRun
from orchestrator.contract import SeriesScore
from orchestrator.job import ModelOutcome


def made_up_run(stopped: bool) -> ManagedRun:
    score = SeriesScore("s5b", "bench", "h", 3, 3, 0, 0, 30, 24, 9.0, truncated=3)
    outcome = ModelOutcome(model="s5b", status="finished", scores=[score], restarts=1 if stopped else 0)
    records = [
        {"id": "L0", "error": "no progress on the server for 60 s (request_timeout)"},
        {"id": "L0", "error": None, "completion_tokens": 8, "latency_s": 70.25},
        {"id": "L1", "error": None, "completion_tokens": 8, "latency_s": 65.0},
        {"id": "L2", "error": None, "completion_tokens": 7, "latency_s": 12.0},
    ]
    return ManagedRun(
        outcome, starts=[0.0, 100.0], records=records, seconds=180.0, stopped_at=40.0 if stopped else None
    )


def test_a_run_is_summed_up_from_its_records_and_its_restarts():
    f = longgen.summarize(made_up_run(stopped=True), total=3, max_tokens=8)
    assert (f["answered"], f["error_records"], f["unanswered"], f["full_length"]) == (3, 1, 0, 2)
    assert f["longest_answer_s"] == 70.2 and f["sigstop_to_restart_s"] == 60.0 and f["restarts"] == 1
    assert longgen.summarize(made_up_run(stopped=False), 3, 8)["sigstop_to_restart_s"] is None


def test_the_gpu_sizes_are_the_issues_and_the_dry_run_is_small(tmp_path):
    gpu, dry = Profile.make(False, tmp_path, tmp_path), Profile.make(True, tmp_path, tmp_path)
    assert (gpu.s5_concurrency, gpu.s5_max_tokens, gpu.s5_timeout) == (256, 8192, 60.0)
    assert dry.s5_concurrency * dry.s5_max_tokens <= 1024 and dry.s5_timeout <= 2
    long = longgen.asking(gpu, gpu.s5_max_tokens)
    assert (long.transport.timeouts.stall, long.parallel, long.sampling.max_tokens) == (60.0, 256, 8192)
    assert {"s5a", "s5b"} <= set(suite.ORDER) and {"s5a", "s5b"} <= set(report.ORDER)


def test_the_report_shows_answers_errors_and_the_time_to_restart():
    result = {
        "scenario": "s5b",
        "title": suite.TITLES["s5b"],
        "status": "passed",
        "mode": "gpu",
        "seconds": 400.0,
        "checks": [{"name": "every answer stored", "ok": True, "detail": "256/256"}],
        "notes": [],
        "failures": [],
        "figures": {
            "setup": {"prompts": 256, "max_tokens": 8192, "request_timeout": 60.0},
            "run": longgen.summarize(made_up_run(stopped=True), 3, 8),
        },
    }
    text = "\n".join(report.section("s5b", result))
    assert "256 concurrent generations of 8192 tokens (ignore_eos), request_timeout 60.0 s: 3/3 answers stored" in text
    assert "to the replacement server's start: 60.0 s (target: within request_timeout + 30 s)" in text
