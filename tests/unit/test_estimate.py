"""Duration estimates before any history: scaled from the calibration table by weight bytes, GPU bandwidth and the
requests in flight; read from a local model folder; corrected live from a running model's own rate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.scheduling.estimate import (
    Calibration,
    ModelFacts,
    Projection,
    Workload,
    bandwidth_of,
    default_calibration,
    estimate,
)
from orchestrator.scheduling.facts import checkpoint_dtype, folder_weight_bytes, served_bytes

H200 = "NVIDIA H200"
H100 = "NVIDIA H100 80GB HBM3"


def test_the_calibration_reproduces_the_runs_it_was_made_from_within_a_fifth() -> None:
    cal = default_calibration()
    data = json.loads(Path("orchestrator/scheduling/calibration.json").read_text())
    fitted = [r for r in data["rows"] if r["gpu_memory_utilization"] >= 0.85]
    assert len(fitted) >= 6
    for row in fitted:
        facts = ModelFacts(int(row["weight_gb"] * 1e9), tp=row["tp"], gpu=row["gpu"])
        assert cal.rate(facts, row["in_flight"]) == pytest.approx(row["tok_s"], rel=0.2), row["model"]


def test_a_bigger_model_is_slower_a_faster_gpu_faster_and_more_in_flight_faster_until_saturation() -> None:
    cal = default_calibration()
    small, big = ModelFacts(15_000_000_000, gpu=H200), ModelFacts(65_000_000_000, gpu=H200)
    assert cal.rate(small, 256) > 3 * cal.rate(big, 256)
    assert cal.rate(ModelFacts(15_000_000_000, gpu=H100), 256) < cal.rate(small, 256)
    assert cal.rate(small, 16) < cal.rate(small, 64) < cal.rate(small, 256) == cal.rate(small, 1024)
    assert cal.rate(ModelFacts(130_000_000_000, tp=2, gpu=H200), 256) > cal.rate(ModelFacts(130e9, gpu=H200), 256)


def test_the_gpu_is_found_by_the_longest_name_it_contains() -> None:
    table = default_calibration().bandwidth
    assert bandwidth_of("NVIDIA H100 NVL", table) == table["H100 NVL"]
    assert bandwidth_of(H100, table) == table["H100"]
    assert bandwidth_of("NVIDIA A100-SXM4-80GB", table) == table["A100-SXM4-80GB"]
    assert bandwidth_of("Some Future GPU", table) is None


def test_an_estimate_says_what_it_rests_on_and_history_replaces_the_bound() -> None:
    facts = ModelFacts(15_200_000_000, gpu=H200)
    bound = estimate(facts, Workload(answers=1910, max_tokens=4096, in_flight=64))
    assert "15.2 GB" in bound.basis and "max_tokens, a bound" in bound.basis and "H200" in bound.basis
    assert bound.tokens == 1910 * 4096 and bound.seconds > bound.startup_s > 60
    known = estimate(facts, Workload(answers=1910, max_tokens=4096, in_flight=64, mean_tokens=900))
    assert known.seconds < bound.seconds and "its history" in known.basis


def test_models_without_calibration_say_so() -> None:
    work = Workload(answers=100, max_tokens=1000, in_flight=8)
    assert "API model" in estimate(ModelFacts(None, managed=False), work).basis
    assert "no GPU" in estimate(ModelFacts(1000, gpu=None), work).basis
    assert "no calibration" in estimate(ModelFacts(None, gpu=H200), work).basis


def test_few_answers_bound_the_requests_in_flight() -> None:
    facts = ModelFacts(15_200_000_000, gpu=H200)
    few = estimate(facts, Workload(answers=4, max_tokens=1000, in_flight=256))
    assert few.tok_s == pytest.approx(default_calibration().rate(facts, 4))


def test_weights_are_read_from_a_local_model_folder(tmp_path: Path, tiny_model: Path) -> None:
    assert folder_weight_bytes(tiny_model) == (tiny_model / "model.safetensors").stat().st_size
    folder = tmp_path / "m"
    (folder / "original").mkdir(parents=True)
    (folder / "a.safetensors").write_bytes(b"x" * 100)
    (folder / "b.safetensors").write_bytes(b"x" * 50)
    (folder / "original" / "consolidated.safetensors").write_bytes(b"x" * 1000)
    (folder / "pytorch_model.bin").write_bytes(b"x" * 999)
    (folder / "config.json").write_text('{"torch_dtype": "float32"}')
    assert folder_weight_bytes(folder) == 150
    assert checkpoint_dtype(folder) == "float32"
    assert served_bytes(150, "float32") == 75
    assert served_bytes(150, "float32", ["--dtype", "float32"]) == 150
    assert served_bytes(150, "bfloat16") == 150
    assert folder_weight_bytes(tmp_path / "empty") is None


def test_a_running_model_is_projected_from_its_own_rate() -> None:
    planned = estimate(ModelFacts(15_200_000_000, gpu=H200), Workload(answers=1000, max_tokens=1000, in_flight=64))
    projection = Projection(planned, started_at=100.0)
    assert projection.remaining_s(100.0, 0) == pytest.approx(planned.seconds - planned.startup_s)
    # half the tokens in 50 s: the other half takes 50 s more, whatever the calibration said
    assert projection.remaining_s(150.0, planned.tokens / 2) == pytest.approx(50.0)
    assert projection.end(150.0, planned.tokens) == pytest.approx(150.0)


def test_a_calibration_without_points_estimates_nothing_rather_than_crashing() -> None:
    cal = Calibration.from_data({"rows": [], "bandwidth_gb_s": {"H200": 4800}})
    assert cal.rate(ModelFacts(10**10, gpu=H200), 64) is None
    assert "no calibration" in estimate(ModelFacts(10**10, gpu=H200), Workload(10, 10, 1), cal).basis
