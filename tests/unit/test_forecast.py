"""Estimates from a local model folder, the --dry-run forecast and the --finish-by messages."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from orchestrator.contract import ModelConfig, Sampling, VllmSettings
from orchestrator.errors import ConfigError
from orchestrator.scheduling import estimates as est
from orchestrator.scheduling.forecast import DeadlineWatch, Forecast, deadline_notes, next_time, render_forecast
from orchestrator.scheduling.plan import plan
from orchestrator.status.file import RunStatus
from orchestrator.status.view import model_cells, plan_line

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


def status_entries() -> list[dict]:
    return [
        {"model": "runs-long", "state": "running", "eta_s": 5000.0},
        {"model": "waits", "state": "queued", "eta_s": None},
        {"model": "done", "state": "finished", "eta_s": None},
    ]


def test_the_status_shows_each_models_plan_and_projects_the_run_from_the_running_models_rate() -> None:
    planned = {"runs-long": (3600.0, 3600.0), "waits": (1800.0, 5400.0), "done": (600.0, 600.0)}
    forecast = Forecast(started=1000.0, planned=planned, deadline=1000.0 + 6000.0)
    models = status_entries()
    run = forecast.annotate(models, now=2000.0)
    long, waits, done = models
    assert long["planned_s"] == 3600.0 and long["planned_end"] == 4600.0
    assert long["projected_end"] == 7000.0  # now + its own ETA: 2400 s later than planned
    assert waits["projected_end"] == 6400.0 + 2400.0  # its planned end pushed back by that overrun
    assert done["projected_end"] is None and done["planned_s"] == 600.0
    assert run == {"planned_end": 6400.0, "projected_end": 8800.0, "finish_by": 7000.0}


def test_status_text_shows_planned_actual_and_the_projected_end_against_finish_by() -> None:
    forecast = Forecast(started=1000.0, planned={"runs-long": (3600.0, 3600.0)}, deadline=5000.0)
    models = [{"model": "runs-long", "state": "running", "eta_s": 5000.0, "elapsed_s": 1000.0}]
    data = {"state": "running", "models": models, **forecast.annotate(models, now=2000.0)}
    line = plan_line(RunStatus(data))
    assert line is not None and "projected end" in line and "projected to end after it" in line
    cells = model_cells(models[0])
    assert cells[9:11] == ["1h 00m", "16m 40s"]  # planned, actual so far
    early = Forecast(started=1000.0, planned={"m": (60.0, 60.0)}, deadline=5000.0)
    quick = [{"model": "m", "state": "running", "eta_s": 10.0}]
    assert "on time" in (plan_line(RunStatus({"state": "running", **early.annotate(quick, now=1030.0)})) or "")


def test_the_deadline_watch_and_the_status_project_the_same_end_from_the_same_running_models(tmp_path: Path) -> None:
    placements, estimates = planned(tmp_path)
    start = dt.datetime(2026, 1, 1, 23, 0)
    late, on_time = placements[0], placements[-1]
    left = {late.job.key: late.end + 3600.0, on_time.job.key: on_time.end}  # an hour over its plan; on its plan
    watch = DeadlineWatch(placements, start + dt.timedelta(hours=12), left.get, now=lambda: start)
    models = [{"model": p.job.key, "state": "running", "eta_s": left[p.job.key]} for p in placements]
    run = Forecast.of(placements, estimates, start.timestamp()).annotate(models, now=start.timestamp())
    assert run["projected_end"] == pytest.approx(watch.projected_end().timestamp(), abs=1e-3)
    assert run["projected_end"] == pytest.approx(start.timestamp() + max(late.end + 3600.0, on_time.end), abs=1e-3)
