"""The run's status file: what the writer puts in it, how the reader tells a live run from a dead one, what
`deathmath-orchestrate status` prints, and the status of real (fake-vLLM) runs: finished, and killed mid-start."""

from __future__ import annotations

import io
import json
import os
import platform
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from orchestrator.contract import ModelState, RunPhase
from orchestrator.status.file import RunStatus, load_runs, model_state, runs_to_show, status_path
from orchestrator.status.progress import Progress
from orchestrator.status.view import render_status_html, render_status_text
from orchestrator.status.writer import StatusWriter
from tests.support.workspace import Workspace, make_workspace

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Facts:
    """The part of a Manifest the writer reads (``statuswriter.ManifestView``)."""

    path: Path
    models: dict[str, dict[str, Any]] = field(default_factory=dict)

    def model_facts(self) -> dict[str, dict[str, Any]]:
        return {k: dict(v) for k, v in self.models.items()}


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def writer(tmp_path: Path, progress: Progress, clock: Clock, **facts: dict) -> StatusWriter:
    results = tmp_path / "results"
    manifest = Facts(results / "runs" / "r1" / "manifest.json", {"a": {}, "b": {}, **facts})
    return StatusWriter(results, "r1", progress, manifest, {"a": 10, "b": 10}, clock=clock)


def read(tmp_path: Path) -> dict:
    return json.loads(status_path(tmp_path / "results", "r1").read_text())


def test_model_states_from_progress_statuses() -> None:
    statuses = [None, *RunPhase, ModelState.FINISHED, ModelState.FAILED, ModelState.INTERRUPTED]
    assert [model_state(s) for s in statuses] == [
        "queued",
        "queued",
        "downloading",
        "disk wait",
        "weights ok",
        "starting",
        "starting",
        "starting",
        "running",
        "finished",
        "failed",
        "interrupted",
    ]


def test_a_progress_line_shows_the_restart_count_it_was_given_not_one_read_from_text() -> None:
    progress = Progress(stream=io.StringIO(), clock=Clock())
    progress.set_status("a", RunPhase.RUNNING)
    progress.note_restarts("a", 2)
    progress.set_status("a", RunPhase.RESTARTING)
    progress.set_status("b", RunPhase.WAITING)
    progress.note_restarts("c", 1)
    progress.set_status("c", RunPhase.RESCHEDULED)
    progress.set_status("d", RunPhase.DOWNLOADING)
    assert [line.split()[1:3] for line in progress.lines()] == [
        ["restart", "2"],
        ["waiting", "0/0"],
        ["resched", "1"],
        ["download", "0/0"],
    ]
    assert [m["status"] for m in progress.snapshot()] == ["restart", "waiting", "resched", "download"]


def test_progress_measures_a_models_first_start_up_and_counts_the_answers_it_has_left() -> None:
    clock = Clock()
    progress = Progress(stream=io.StringIO(), clock=clock)
    progress.add_total("a", 40)
    progress.set_status("a", RunPhase.STARTING)
    assert progress.startup_s("a") is None  # not started yet
    clock.now += 75.0
    progress.set_status("a", RunPhase.RUNNING)
    progress.record("a", "math", correct=True, tokens=10, error=False)
    clock.now += 10.0
    progress.set_status("a", RunPhase.RESTARTING)  # a restart is not the first start-up
    clock.now += 300.0
    progress.set_status("a", RunPhase.RUNNING)
    progress.set_status("api", RunPhase.RUNNING)  # no server: nothing to measure
    assert (progress.startup_s("a"), progress.startup_s("api"), progress.startup_s("never")) == (75.0, None, None)
    assert (progress.left_answers("a"), progress.left_answers("never")) == (39, None)


def test_status_file_has_each_model_with_placement_counts_speed_eta_restarts_and_last_error(tmp_path: Path) -> None:
    clock = Clock()
    progress = Progress(stream=io.StringIO(), clock=clock)
    status = writer(tmp_path, progress, clock, a={"gpus": [0, 1], "port": 8123})
    status.write()
    data = read(tmp_path)
    assert data["state"] == "running" and data["pid"] == os.getpid() and data["host"] == platform.node()
    assert [(m["model"], m["state"], m["total"]) for m in data["models"]] == [("a", "queued", 10), ("b", "queued", 10)]

    progress.add_total("a", 10)
    progress.set_status("a", "running")
    progress.sync("a", "ds", 2, 1)  # resumed from a checkpoint: not counted as this run's speed
    clock.now += 10
    for correct in (True, False):
        progress.record("a", "ds", correct=correct, tokens=50, error=False)
    progress.record("a", "ds", correct=False, tokens=0, error=True)
    progress.note_error("a", "ds q7: HTTP 500")
    progress.note_restarts("a", 1)
    progress.set_status("a", RunPhase.RESTARTING)
    status.write()
    a = read(tmp_path)["models"][0]
    assert (a["state"], a["gpus"], a["port"], a["answered"], a["correct"]) == ("starting", [0, 1], 8123, 4, 2)
    assert a["accuracy"] == pytest.approx(0.5) and a["tok_s"] == pytest.approx(10.0)
    assert a["eta_s"] == pytest.approx(6 / (2 / 10))  # 6 left at 2 answers per 10 s
    assert (a["restarts"], a["last_error"], a["errors"]) == (1, "ds q7: HTTP 500", 1)
    assert not [p for p in status.path.parent.iterdir() if p.name.endswith(".tmp")]

    progress.set_status("a", "finished")
    clock.now += 1000  # a finished model's speed stays what it was
    status.write()
    assert read(tmp_path)["models"][0]["tok_s"] == pytest.approx(10.0)


def test_finish_records_how_the_run_ended_and_models_left_in_the_queue(tmp_path: Path) -> None:
    clock = Clock()
    progress = Progress(stream=io.StringIO(), clock=clock)
    progress.set_status("a", "failed")
    status = writer(tmp_path, progress, clock)
    status.start()
    clock.now += 100
    status.finish("interrupted", 130)
    data = read(tmp_path)
    assert (data["state"], data["exit_code"], data["ended_at"]) == ("interrupted", 130, clock.now)
    assert data["manifest"] == str((tmp_path / "results" / "runs" / "r1" / "manifest.json").resolve())
    assert [m["state"] for m in data["models"]] == ["failed", "not started"]
    assert status._thread is not None and not status._thread.is_alive()
    page = (tmp_path / "results" / "status.html").read_text()
    assert 'http-equiv="refresh"' not in page and "exit code 130" in page


def test_the_writer_thread_keeps_the_file_current(tmp_path: Path) -> None:
    progress = Progress(stream=io.StringIO())
    status = StatusWriter(
        tmp_path / "results", "r1", progress, Facts(tmp_path / "m.json", {"a": {}}), {"a": 3}, interval=0.05
    )
    status.start()
    try:
        progress.set_status("a", "running")
        progress.record("a", "ds", correct=True, tokens=5, error=False)
        deadline = time.monotonic() + 60
        while read(tmp_path)["models"][0]["answered"] != 1:
            assert time.monotonic() < deadline, "the status file never showed the answer"
            time.sleep(0.05)
    finally:
        status.finish("finished", 0)
    assert read(tmp_path)["state"] == "finished"


def run_data(**over: Any) -> dict:
    data = {
        "format": 1,
        "run_id": "r1",
        "host": platform.node(),
        "pid": os.getpid(),
        "pid_started": None,
        "started_at": 1000.0,
        "updated_at": 1100.0,
        "ended_at": None,
        "interval": 2.0,
        "state": "running",
        "exit_code": None,
        "manifest": "/r/runs/r1/manifest.json",
        "results_dir": "/r",
        "models": [
            {
                "model": "m",
                "state": "running",
                "gpus": [],
                "port": 8100,
                "endpoints": None,
                "answered": 3,
                "total": 12,
                "correct": 2,
                "accuracy": 2 / 3,
                "errors": 0,
                "tokens": 300,
                "tok_s": 12.5,
                "eta_s": 90.0,
                "restarts": 1,
                "last_error": "server died: engine gone",
                "datasets": {},
                "details": None,
            }
        ],
    }
    return {**data, **over}


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_liveness_by_pid_on_this_host_and_by_age_from_another() -> None:
    assert RunStatus(run_data()).liveness(1100.0).state == "running"
    died = RunStatus(run_data(pid=dead_pid())).liveness(1100.0)
    assert died.state == "died" and "is gone" in died.reason
    assert RunStatus(run_data(pid_started=12.0)).liveness(1100.0).state == "died"  # the PID was reused
    elsewhere = run_data(host="other-box")
    assert RunStatus(elsewhere).liveness(1130.0).state == "running"
    assert RunStatus(elsewhere).liveness(1100.0 + 3600).state == "stale"
    assert RunStatus(run_data(state="finished", pid=dead_pid())).liveness(1100.0).state == "ended"


def test_status_text_for_a_running_run_an_ended_one_a_dead_one_and_none() -> None:
    text = render_status_text([RunStatus(run_data())], "results", now=1102.0)
    assert "run r1 running for 1m 42s" in text and "last update" in text
    head, row = [line.split() for line in text.splitlines()[2:4]]
    assert head[:9] == ["MODEL", "STATE", "GPUS", "PORT", "ANSWERED", "ACC", "TOK/S", "ETA", "RESTARTS"]
    assert row[:10] == ["m", "running", "cpu", "8100", "3/12", "66.7%", "12.5", "1m", "30s", "1"]
    assert "server died: engine gone" in text

    ended = render_status_text([RunStatus(run_data(state="failed", exit_code=1, ended_at=1200.0))], "results", 1300)
    assert ended.startswith("no run is active under results; the latest:")
    assert "run r1 failed with exit code 1" in ended and "manifest: /r/runs/r1/manifest.json" in ended

    died = render_status_text([RunStatus(run_data(pid=dead_pid()))], "results", now=1200.0)
    assert "no run is active" in died and "run r1 died: its process" in died and "rerun" in died
    assert "no run has written a status" in render_status_text([], "results")


def test_only_live_runs_are_shown_while_one_runs() -> None:
    old = RunStatus(run_data(run_id="r0", state="finished", exit_code=0, ended_at=1050.0))
    live = RunStatus(run_data())
    assert runs_to_show([old, live], 1100.0) == ([live], None)
    assert runs_to_show([old], 1100.0) == ([], old)


def test_status_page_escapes_what_the_run_wrote_and_reloads_while_running() -> None:
    evil = run_data(
        models=[
            dict(run_data()["models"][0], model="<script>alert(1)</script>", last_error="<img src=x onerror=alert(2)>")
        ]
    )
    page = render_status_html([RunStatus(evil)], now=1101.0)
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page and 'http-equiv="refresh"' in page


def test_load_runs_reads_every_status_file_oldest_first(tmp_path: Path) -> None:
    for run_id, started in (("20260101-000000-bb", 2.0), ("20250101-000000-aa", 1.0)):
        path = status_path(tmp_path, run_id)
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(run_data(run_id=run_id, started_at=started)))
    (tmp_path / "runs" / "junk").mkdir()
    (tmp_path / "runs" / "junk" / "status.json").write_text("{not json")
    assert [r.run_id for r in load_runs(tmp_path)] == ["20250101-000000-aa", "20260101-000000-bb"]


# ---------------------------------------------------------------------------------------------------- real runs


def status_cli(results: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "status", "--results-dir", str(results), *extra],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


@pytest.fixture
def ws(tmp_path: Path, fake_vllm: Path) -> Workspace:
    return make_workspace(tmp_path / "ws", fake_vllm, tmp_path / "assets")


def test_status_after_a_finished_run_names_exit_code_and_manifest(ws: Workspace) -> None:
    done = ws.cli()
    assert done.returncode == 0, done.stderr
    out = status_cli(ws.results)
    assert out.returncode == 0, out.stderr
    (manifest,) = ws.results.glob("runs/*/manifest.json")
    assert "no run is active" in out.stdout and "finished with exit code 0" in out.stdout
    assert str(manifest.resolve()) in out.stdout
    row = next(line.split() for line in out.stdout.splitlines() if line.strip().startswith("m "))
    assert row[:5] == ["m", "finished", "cpu", row[3], "6/6"] and row[3].isdigit()
    assert (ws.results / "details" / "m" / "index.html").is_file()
    page = (ws.results / "status.html").read_text()
    assert "details/m/index.html" in page and "http-equiv" not in page


def test_status_says_a_run_killed_mid_start_died(ws: Workspace) -> None:
    proc = ws.popen(env={"FAKE_VLLM_DELAY": "600"})
    try:
        deadline = time.monotonic() + 120
        while not list(ws.results.glob("runs/*/status.json")):
            assert proc.poll() is None and time.monotonic() < deadline, "the run wrote no status"
            time.sleep(0.2)
        starting = ""
        while "starting" not in starting:
            assert time.monotonic() < deadline, starting
            starting = status_cli(ws.results).stdout
        assert f"(pid {proc.pid})" in starting
        watch = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "orchestrator.cli",
                "status",
                "--results-dir",
                str(ws.results),
                "--watch",
                "--interval",
                "0.2",
            ],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        first = watch.stdout.readline() if watch.stdout else ""
        watch.send_signal(signal.SIGINT)
        assert watch.wait(timeout=60) == 0 and "running for" in first
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        died = status_cli(ws.results)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        subprocess.run(
            [sys.executable, "-m", "orchestrator.cli", "cleanup", "--logs-dir", str(ws.logs)],
            capture_output=True,
            timeout=120,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
    assert died.returncode == 0
    assert "no run is active" in died.stdout and f"died: its process {proc.pid} is gone" in died.stdout


def test_a_model_that_ends_gets_its_answers_page_once_and_the_status_links_it(tmp_path: Path) -> None:
    results = tmp_path / "results"
    progress = Progress(stream=io.StringIO())
    pages: list[str] = []

    def write_page(model: str) -> None:
        pages.append(model)
        (results / "details" / model).mkdir(parents=True, exist_ok=True)
        (results / "details" / model / "index.html").write_text("answers")

    status = StatusWriter(
        results,
        "r1",
        progress,
        Facts(results / "m.json", {"a": {}, "b": {}}),
        {"a": 1, "b": 1},
        on_model_end=write_page,
    )
    progress.set_status("a", "running")
    status.write()
    assert pages == [] and read(tmp_path)["models"][0]["details"] is None
    progress.set_status("a", "finished")
    status.write()
    status.write()
    assert pages == ["a"] and read(tmp_path)["models"][0]["details"] == "details/a/index.html"
    assert 'href="details/a/index.html"' in (results / "status.html").read_text()
