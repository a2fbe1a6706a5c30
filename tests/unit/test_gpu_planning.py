"""The GPU planning scenario pieces (benchmarks/gpu/planning.py) on CPU: s4's estimate figure, s7's answer count."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.gpu import planning, report, suite
from benchmarks.gpu.common import Profile

SHAPE = {
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 32000,
}


def passes(seconds: float) -> list[dict]:
    ours = {"label": "ours", "round": 1, "requests": 1024, "seconds": seconds, "tok_s": 1024 * 256 / seconds}
    return [ours, {"label": "offline vllm.LLM", "round": 1, "requests": 1024, "seconds": 1.0, "tok_s": 1.0}]


def test_the_estimate_of_s4s_work_is_set_against_our_clients_measured_passes_only() -> None:
    got = planning.estimate_vs_measured(SHAPE, "NVIDIA H100 80GB HBM3", passes(20.0), 256, 256, {"1 API": 110.0})
    assert got["measured_s"] == 20.0 and got["startup_measured_s"] == 110.0
    assert got["estimate_over_measured"] == round(got["estimate_s"] / 20.0, 2)
    assert "H100" in got["basis"] and got["estimate_tok_s"] > 0
    assert planning.estimate_vs_measured(SHAPE, None, passes(20.0)[1:], 256, 256, None) == {}


def rows(path: Path, keys: list[tuple[str, int]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"dataset": "d", "id": i, "sample": s, "error": None}) + "\n" for i, s in keys))


def test_s7_counts_each_problem_and_sample_once(tmp_path: Path) -> None:
    details = tmp_path / "results" / "details" / "llama-r" / "d.jsonl"
    rows(details, [("a", 0), ("a", 1), ("b", 0), ("b", 1)])
    assert planning.answered_once(tmp_path, 2)[0]
    rows(details, [("a", 0), ("a", 1), ("b", 0), ("b", 0)])
    ok, detail = planning.answered_once(tmp_path, 2)
    assert not ok and "1 stored twice" in detail


def test_s7_is_in_the_suite_and_the_report_and_small_in_the_dry_run(tmp_path: Path) -> None:
    assert "s7" in suite.ORDER and "s7" in report.ORDER
    gpu, dry = Profile.make(False, tmp_path, tmp_path), Profile.make(True, tmp_path, tmp_path)
    assert dry.s7_samples * dry.s7_max_tokens * dry.s7_limit <= 200 < gpu.s7_samples * gpu.s7_max_tokens
    lines = report.planning_lines({"replicas_1": {"seconds": 300.0, "servers_on_gpus": [[0]]}, "speedup": 1.6})
    assert lines[-1] == "- replicas: auto vs one server: 1.6x"
