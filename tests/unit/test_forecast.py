"""Estimates from a local model folder, the --dry-run forecast and the --finish-by messages."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from orchestrator.contract import ModelConfig, Sampling, VllmSettings
from orchestrator.errors import ConfigError
from orchestrator.scheduling import estimates as est
from orchestrator.scheduling.forecast import DeadlineWatch, deadline_notes, next_time, render_forecast
from orchestrator.scheduling.plan import plan

H100 = "NVIDIA H100 80GB HBM3"


def model(key: str, path: str, tp: int = 1) -> ModelConfig:
    return ModelConfig(
        key=key,
        model_name=key,
        sampling=Sampling(max_tokens=4096),
        vllm=VllmSettings(model=path, tensor_parallel_size=tp),
        samples=4,
        parallel=64,
    )


def folder(tmp_path: Path, name: str, size: int, dtype: str = "bfloat16") -> str:
    path = tmp_path / name
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"torch_dtype": dtype}))
    with open(path / "model.safetensors", "wb") as out:
        out.truncate(size)
    return str(path)


def test_the_estimate_of_a_local_folder_reads_its_weight_bytes_and_says_its_basis(tmp_path: Path) -> None:
    small, large = folder(tmp_path, "small", 16 * 10**9), folder(tmp_path, "large", 64 * 10**9)
    got = est.model_estimates([model("small", small), model("large", large)], 380, H100)
    assert got["large"].seconds > 3 * got["small"].seconds
    assert "16.0 GB of weights on TP 1 x PP 1" in got["small"].basis
    assert "1520 answers x 4096 tokens per answer (max_tokens, a bound)" in got["small"].basis


def test_a_float32_checkpoint_is_served_in_half_its_bytes(tmp_path: Path) -> None:
    path = folder(tmp_path, "fp32", 32 * 10**9, dtype="float32")
    assert est.weight_bytes(model("fp32", path)) == 16 * 10**9


def test_history_wins_over_the_calibrated_estimate(tmp_path: Path) -> None:
    path = folder(tmp_path, "m", 16 * 10**9)
    got = est.model_estimates([model("m", path)], 380, H100, history={"m": 1234.0})
    assert got["m"].seconds == 1234.0 and got["m"].basis == "its history"


def planned(tmp_path: Path) -> tuple[list, dict]:
    models = [model("small", folder(tmp_path, "small", 16 * 10**9)), model("big", folder(tmp_path, "big", 64 * 10**9))]
    forecast = est.model_estimates(models, 380, H100)
    return plan(
        models, [0], range(8100, 8200), weights=est.weights(forecast), startups=est.startups(forecast)
    ), forecast


def test_the_forecast_shows_each_models_estimate_planned_times_and_the_nights_total(tmp_path: Path) -> None:
    placements, forecast = planned(tmp_path)
    text = render_forecast(placements, forecast)
    assert "  big: " in text and "  small: " in text
    assert "    GPUs 0: +0h00m00s -> +" in text
    assert "night total: " in text


def test_finish_by_names_the_models_that_will_not_finish_and_never_stops_them(tmp_path: Path) -> None:
    placements, _ = planned(tmp_path)
    start = dt.datetime(2026, 1, 1, 23, 0)
    first = min(placements, key=lambda p: p.wave_start)
    deadline = start + dt.timedelta(seconds=first.end + 1)
    notes = deadline_notes(placements, start, deadline, [0])
    late = [p.job.key for p in placements if p is not first]
    assert (
        notes[0]
        == f"--finish-by {deadline:%H:%M}: planned to end after it: {', '.join(late)} (nothing is stopped for it)"
    )


def test_finish_by_says_so_when_everything_fits(tmp_path: Path) -> None:
    placements, _ = planned(tmp_path)
    start = dt.datetime(2026, 1, 1, 23, 0)
    notes = deadline_notes(placements, start, start + dt.timedelta(days=1), [0])
    assert "every model is planned to finish by then" in notes[0]


def test_finish_by_reads_the_next_such_time_of_day() -> None:
    now = dt.datetime(2026, 1, 1, 23, 0)
    assert next_time("07:30", now) == dt.datetime(2026, 1, 2, 7, 30)
    assert next_time("23:30", now) == dt.datetime(2026, 1, 1, 23, 30)
    with pytest.raises(ConfigError, match="--finish-by '7h': not a time of day; write HH:MM such as 07:30"):
        next_time("7h", now)


def test_the_watch_warns_once_when_a_running_models_projection_passes_the_deadline(tmp_path: Path) -> None:
    placements, _ = planned(tmp_path)
    now = [dt.datetime(2026, 1, 1, 23, 0)]
    left: dict[str, float | None] = {p.job.key: None for p in placements}
    total = max(p.end for p in placements)
    watch = DeadlineWatch(placements, now[0] + dt.timedelta(seconds=total + 600), left.get, now=lambda: now[0])
    assert watch.check() is None
    left[placements[0].job.key] = placements[0].end + 3600  # it runs an hour longer than planned
    message = watch.check()
    assert message is not None and "projected to end at" in message and "nothing is stopped" in message
    assert watch.check() is None  # once per crossing
