"""Teardown races: a stop that comes at any moment of a server's start-up leaves no process behind.

A stop can come while the server is being spawned, while its API process forks its engine, or before the spawn;
a run can be interrupted (SIGINT) or end normally at any of those moments; a Ray actor can die before its guard is
up. Each case ends with no process of the server's session left -- checked from the outside, by every process whose
stdout is the server's log or whose environment carries the run's id.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from orchestrator.errors import ServerStartError
from orchestrator.serving.guard import kill_group
from orchestrator.serving.launch import RUN_ENV
from orchestrator.serving.server import VllmServer
from orchestrator.serving.signals import ServerGroup
from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("TEARDOWN_SEED", random.randrange(1 << 30)))


def processes_of(run_dir: Path, run_id: str) -> list[psutil.Process]:
    """Live processes writing to a log under ``run_dir`` or carrying ``run_id`` in their environment."""
    found = []
    for proc in psutil.process_iter(["pid", "status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE or proc.pid == os.getpid():
            continue
        try:
            out = os.readlink(f"/proc/{proc.pid}/fd/1")
            env = proc.environ() if not out.startswith(str(run_dir)) else {}
        except (OSError, psutil.Error):
            continue
        if out.startswith(str(run_dir)) or env.get(RUN_ENV) == run_id:
            found.append(proc)
    return found


def kill_all(procs: list[psutil.Process]) -> None:
    for proc in procs:
        try:
            proc.kill()
        except psutil.Error:
            pass


def start_in_thread(server: VllmServer) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def go() -> None:
        try:
            server.start()
            server.wait_ready()
        except BaseException as exc:  # noqa: BLE001 -- collected for the test
            errors.append(exc)

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    return thread, errors


def stop_during_start_up(spec, logs: Path, run_id: str, delay: float, join: float = 120.0) -> list[psutil.Process]:
    """Start a server in a thread, close its group after ``delay`` s; what of its session is left 0.5 s later."""
    group = ServerGroup()
    server = VllmServer(spec, run_id, logs, group=group, grace=5.0)
    thread, _ = start_in_thread(server)
    time.sleep(delay)
    group.close()
    thread.join(join)
    assert not thread.is_alive(), "the start did not end after the stop"
    time.sleep(0.5)  # a survivor would still be there; one that is only slow to vanish would not count
    return processes_of(logs / run_id, run_id)


def test_a_stop_while_the_server_is_spawned_waits_for_the_spawn_and_leaves_nothing(fake_spec, tmp_path: Path) -> None:
    """The stop comes from another thread while ``popen`` runs (a signal during the spawn)."""
    group = ServerGroup()
    stopper: list[threading.Thread] = []

    def slow_popen(*args, **kwargs):
        proc = subprocess.Popen(*args, **kwargs)
        stopper.append(threading.Thread(target=group.close))
        stopper[0].start()
        time.sleep(0.5)  # the stop now waits for the spawn to finish
        return proc

    server = VllmServer(fake_spec, "spawn-race", tmp_path, group=group, popen=slow_popen, grace=5.0)
    server.start()
    with pytest.raises(ServerStartError, match="stopped before it was ready"):
        server.wait_ready()
    stopper[0].join(30)
    assert processes_of(tmp_path / "spawn-race", "spawn-race") == []


def test_a_closed_group_admits_no_new_server_and_nothing_is_spawned(fake_spec, tmp_path: Path) -> None:
    group = ServerGroup()
    group.close()
    spawned: list[object] = []
    server = VllmServer(fake_spec, "closed", tmp_path, group=group, popen=lambda *a, **k: spawned.append(a))
    with pytest.raises(ServerStartError, match="the run is stopping"):
        server.start()
    assert spawned == [] and group.servers() == []


def test_fake_servers_stopped_at_random_moments_of_start_up_leave_nothing(fake_spec, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    spec = replace(fake_spec, env=fake_spec.env + (("FAKE_VLLM_DELAY", "0.6"),))
    for i in range(12):
        delay = rng.uniform(0.0, 1.2)  # before the spawn, during it, while the engine is forked, once ready
        left = stop_during_start_up(spec, tmp_path, f"random-{i}", delay)
        kill_all(left)
        assert left == [], f"seed {SEED}, round {i}, stop after {delay:.2f} s left {left}"


@pytest.mark.vllm
def test_real_vllm_stopped_at_moments_of_its_start_up_leaves_nothing(tiny_spec, tmp_path: Path) -> None:
    """API process importing, engine being forked, engine loading the model: the moments of a real start-up."""
    from tests.support.vllm_servers import vllm_available

    if not vllm_available():
        pytest.skip("vllm is not importable in this environment")
    rng = random.Random(SEED)
    for i, (low, high) in enumerate(((0.0, 2.0), (4.0, 10.0), (10.0, 25.0))):
        delay = rng.uniform(low, high)
        left = stop_during_start_up(tiny_spec, tmp_path, f"real-{i}", delay, join=300.0)
        kill_all(left)
        assert left == [], f"seed {SEED}, stop after {delay:.1f} s left {left}"


# -- the whole CLI: interrupted at a random moment of start-up, or ending normally ---------------------------------


def fake_config(tmp_path: Path, fake_vllm: Path, delay: float) -> Path:
    env = f"{{PYTHONPATH: {fake_vllm}, FAKE_VLLM_DELAY: '{delay}'}}"
    blocks = "".join(
        f"{k}: {{model_name: {k}, vllm: {{model: {tmp_path}, env: {env}, startup_timeout: 60}}, "
        "parallel: 2, max_tokens: 8}\n"
        for k in ("ta", "tb")
    )
    path = tmp_path / "run.yaml"
    path.write_text(f"model_list: [ta, tb]\n{blocks}datasets: {{sample-math: {{}}}}\ntemperature: 0.0\n")
    return path


def cli(tmp_path: Path, config: Path) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "orchestrator.cli",
        "run",
        "--config",
        str(config),
        "--results-dir",
        str(tmp_path / "results"),
        "--logs-dir",
        str(tmp_path / "logs"),
        "--limit",
        "3",
        "--max-cpu-servers",
        "2",
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)


def left_by_run(tmp_path: Path) -> list[psutil.Process]:
    logs = tmp_path / "logs"
    return [p for d in (logs.iterdir() if logs.is_dir() else ()) if d.is_dir() for p in processes_of(d, d.name)]


def test_a_run_interrupted_at_random_moments_of_start_up_exits_only_after_its_servers(
    fake_vllm: Path, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    for i in range(4):
        work = tmp_path / f"r{i}"
        work.mkdir()
        proc = cli(work, fake_config(work, fake_vllm, delay=0.5))
        wait_for(
            lambda proc=proc, work=work: proc.poll() is not None or list(work.glob("results/runs/*/manifest.json")),
            120,
            "the run to begin (its manifest)",
        )
        delay = rng.uniform(0.0, 2.5)  # servers being spawned, forking their engines, getting ready, answering
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=180)
        left = left_by_run(work)  # at once: the orchestrator must not exit before its servers are gone
        kill_all(left)
        assert left == [], f"seed {SEED}, SIGINT after {delay:.2f} s left {left}; output:\n{out[-2000:]}"
        finished = "manifest:" in out  # a SIGINT in the interpreter's own exit, after the summary, ends it with -2
        assert proc.returncode == 130 or finished, out[-2000:]


def test_a_run_that_ends_normally_leaves_no_server_process(fake_vllm: Path, tmp_path: Path) -> None:
    for i in range(3):
        work = tmp_path / f"n{i}"
        work.mkdir()
        proc = cli(work, fake_config(work, fake_vllm, delay=0.2))
        out, _ = proc.communicate(timeout=180)
        left = left_by_run(work)
        kill_all(left)
        assert proc.returncode == 0 and left == [], f"round {i} left {left}; output:\n{out[-2000:]}"


# -- the Ray node's guard ------------------------------------------------------------------------------------------


def test_an_owner_killed_before_its_guard_is_up_starts_no_server(tmp_path: Path) -> None:
    """The actor dies between spawning the server and the guard's start: the gated server never runs."""
    marker = tmp_path / "server-ran"
    code = textwrap.dedent(f"""
        import sys, time
        from orchestrator.ray import node as raynode
        raynode.spawn_guard = lambda *a, **k: time.sleep(300)     # the guard takes forever to come up
        server = "open({str(marker)!r}, 'w').close(); import time; time.sleep(300)"
        with open({str(tmp_path / "server.log")!r}, 'ab') as log:
            raynode.guarded_popen([sys.executable, '-c', server], stdout=log, start_new_session=True)
    """)
    owner = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, start_new_session=True)
    try:
        wait_for(
            lambda: any("guarded-server" in " ".join(p.cmdline()) for p in _children(owner.pid)),
            60,
            "the gated server shell",
        )
        owner.kill()
        owner.wait(10)
        time.sleep(2.0)
        assert not marker.exists(), "the server ran without a guard"
        assert processes_of(tmp_path, "-") == []
    finally:
        owner.kill()
        kill_all(processes_of(tmp_path, "-"))


def _children(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def test_the_guard_kills_a_member_born_while_it_stops_the_group(tmp_path: Path) -> None:
    """A process that ignores SIGTERM and forks a child when it gets one: both are gone when kill_group returns."""
    code = textwrap.dedent("""
        import os, signal, subprocess, sys, time
        DEAF = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)"
        def on_term(*_):
            subprocess.Popen([sys.executable, "-c", DEAF])
        signal.signal(signal.SIGTERM, on_term)
        print("ready", flush=True)
        time.sleep(300)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        threading.Thread(target=proc.wait, daemon=True).start()  # reaped at once, as the guard's init would
        assert kill_group(proc.pid, grace=1.0, poll=0.1) is True
        proc.wait(10)
        members = [
            p
            for p in psutil.process_iter(["pid", "status"])
            if _pgid(p.pid) == proc.pid and p.info["status"] != psutil.STATUS_ZOMBIE
        ]
        assert members == []
    finally:
        proc.kill()


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None
