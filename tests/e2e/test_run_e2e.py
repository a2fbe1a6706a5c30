"""The whole run, end to end, with real vLLM CPU servers on the tiny model and the built-in samples.

Covers: two managed models producing the leaderboard, details, manifest and logs; a rerun that asks nothing; a server
killed mid-run that is restarted with every problem answered exactly once (`status` shows it running, then finished
after one restart); Ctrl-C mid-run that leaves no process and a checkpoint the next run resumes (`status`: interrupted,
exit code 130); an API model next to a managed one; no secret in any file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from tests.support.waiting import wait_for

pytestmark = pytest.mark.vllm
LIMIT = 6


def write_config(tmp_path: Path, model: Path, models: dict[str, dict], name: str = "run.yaml") -> Path:
    blocks = []
    for key, extra in models.items():
        parallel = extra.get("parallel", 8)
        max_tokens = extra.get("max_tokens", 24)
        blocks.append(
            textwrap.dedent(f"""
            {key}:
              model_name: {key}
              vllm: {{model: {model}, max_model_len: 1024, startup_timeout: 400}}
              parallel: {parallel}
              max_tokens: {max_tokens}
        """)
        )
    text = (
        f"model_list: [{', '.join(models)}]\n"
        + "".join(blocks)
        + textwrap.dedent("""
        datasets:
          sample-math: {}
          sample-physics: {}
        temperature: 0.0
    """)
    )
    path = tmp_path / name
    path.write_text(text)
    return path


def orchestrate(tmp_path: Path, config: Path, *extra: str, wait: bool = True, env: dict | None = None):
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
        str(LIMIT),
        *extra,
    ]
    full_env = {**os.environ, **(env or {})}
    if not wait:
        return subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=full_env, start_new_session=True
        )
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=full_env)


def details(tmp_path: Path, model: str, dataset: str) -> list[dict]:
    path = tmp_path / "results" / "details" / model / f"{dataset}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def answered_ids(rows: list[dict]) -> list[str]:
    return [r["id"] for r in rows if r.get("error") is None]


def our_processes(tmp_path: Path) -> list[psutil.Process]:
    """Processes of this test's servers: their stdout is a server log under ``tmp_path/logs`` (inherited by
    VLLM::EngineCore and VLLM::Worker, which rename themselves)."""
    logs = str(tmp_path / "logs")
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.readlink(f"/proc/{proc.pid}/fd/1").startswith(logs):
                found.append(proc)
        except OSError:
            continue
    return found


def assert_no_orphans(tmp_path: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and our_processes(tmp_path):
        time.sleep(0.5)
    assert our_processes(tmp_path) == []


def test_two_models_end_to_end_then_resume(tmp_path: Path, tiny_model: Path) -> None:
    config = write_config(tmp_path, tiny_model, {"tiny-a": {}, "tiny-b": {"parallel": 4}})
    first = orchestrate(tmp_path, config)
    assert first.returncode == 0, first.stdout + first.stderr
    results = tmp_path / "results"
    for model in ("tiny-a", "tiny-b"):
        for dataset in ("sample-math", "sample-physics"):
            rows = details(tmp_path, model, dataset)
            assert sorted(answered_ids(rows)) == sorted(set(answered_ids(rows))) and len(answered_ids(rows)) == LIMIT
            assert all(r["verdict"] in ("correct", "incorrect", "unparsed", "timeout") for r in rows)
            assert (results / "details" / model / f"{dataset}.md").is_file()
    board = json.loads((results / "leaderboard.json").read_text())
    assert {row["model"] for row in board["rows"]} == {"tiny-a", "tiny-b"}
    md = (results / "leaderboard.md").read_text()
    assert "| tiny-a |" in md and "| tiny-b |" in md and "sample-math" in md and "sample-physics" in md
    assert "<svg" in (results / "leaderboard.html").read_text()
    (manifest,) = list((results / "runs").glob("*/manifest.json"))
    facts = json.loads(manifest.read_text())
    assert facts["status"] == "finished" and facts["versions"]["vllm"]
    assert "startup" in facts["timings"]["tiny-a"] and facts["models"]["tiny-a"]["vllm"]["weights_sha256"]
    assert list((tmp_path / "logs").glob("*/tiny-a.log"))
    assert "tiny-a" in first.stdout and "leaderboard" in first.stdout
    assert_no_orphans(tmp_path)

    mtime = (results / "details" / "tiny-a" / "sample-math.jsonl").stat().st_mtime
    second = orchestrate(tmp_path, config)
    assert second.returncode == 0, second.stdout + second.stderr
    assert len(details(tmp_path, "tiny-a", "sample-math")) == LIMIT
    assert (results / "details" / "tiny-a" / "sample-math.jsonl").stat().st_mtime == mtime


def kill_and_clean(tmp_path: Path, proc: subprocess.Popen) -> None:
    """After a failed test: SIGKILL the orchestrator, then `cleanup` the servers it leaves (their own sessions)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "cleanup", "--logs-dir", str(tmp_path / "logs")],
        capture_output=True,
        timeout=120,
    )


def _count(tmp_path: Path, model: str, dataset: str) -> int:
    path = tmp_path / "results" / "details" / model / f"{dataset}.jsonl"
    return path.read_text().count("\n") if path.exists() else 0


def status(tmp_path: Path) -> str:
    """What `deathmath-orchestrate status` prints for this test's results directory (it only reads files)."""
    out = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "status", "--results-dir", str(tmp_path / "results")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def _model_line(text: str, model: str) -> str:
    return next((line for line in text.splitlines() if line.strip().startswith(model + " ")), "")


def _engine_core(tmp_path: Path) -> psutil.Process | None:
    for proc in our_processes(tmp_path):
        if proc.name().startswith("VLLM::EngineCore"):
            return proc
    return None


def test_server_killed_mid_run_is_restarted_and_each_problem_answered_once(tmp_path: Path, tiny_model: Path) -> None:
    config = write_config(tmp_path, tiny_model, {"tiny-k": {"parallel": 1, "max_tokens": 200}})
    proc = orchestrate(tmp_path, config, "--dataset", "sample-math", wait=False)
    try:
        wait_for(lambda: _count(tmp_path, "tiny-k", "sample-math") >= 1, 400, "a first answer")
        wait_for(lambda: "running" in _model_line(status(tmp_path), "tiny-k"), 60, "`status` to show it running")
        during = status(tmp_path)
        engine = _engine_core(tmp_path)
        assert engine is not None
        engine.kill()
        out, _ = proc.communicate(timeout=600)
    finally:
        kill_and_clean(tmp_path, proc)
    assert proc.returncode == 0, out
    assert "restart" in out
    ids = answered_ids(details(tmp_path, "tiny-k", "sample-math"))
    assert len(ids) == LIMIT and len(set(ids)) == LIMIT
    assert_no_orphans(tmp_path)
    running = _model_line(during, "tiny-k").split()
    assert "running for" in during and f"(pid {proc.pid})" in during
    assert running[1:3] == ["running", "cpu"] and running[3].isdigit() and running[4].endswith(f"/{LIMIT}")
    after = status(tmp_path)
    (manifest,) = list((tmp_path / "results" / "runs").glob("*/manifest.json"))
    assert "finished with exit code 0" in after and str(manifest.resolve()) in after
    finished = _model_line(after, "tiny-k").split()
    assert finished[1] == "finished" and finished[4] == f"{LIMIT}/{LIMIT}" and finished[8] == "1"  # 1 restart
    assert "server died" in after


def test_ctrl_c_mid_run_leaves_no_process_and_resumes(tmp_path: Path, tiny_model: Path) -> None:
    config = write_config(tmp_path, tiny_model, {"tiny-c": {"parallel": 1, "max_tokens": 200}})
    proc = orchestrate(tmp_path, config, "--dataset", "sample-math", wait=False)
    try:
        wait_for(lambda: _count(tmp_path, "tiny-c", "sample-math") >= 1, 400, "a first answer")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        kill_and_clean(tmp_path, proc)
    assert proc.returncode == 130, out
    assert_no_orphans(tmp_path)
    assert "interrupted with exit code 130" in status(tmp_path)
    (manifest,) = list((tmp_path / "results" / "runs").glob("*/manifest.json"))
    assert json.loads(manifest.read_text())["status"] == "interrupted"
    assert "tiny-c" in (tmp_path / "results" / "leaderboard.md").read_text()
    done = set(answered_ids(details(tmp_path, "tiny-c", "sample-math")))
    assert 1 <= len(done) < LIMIT
    again = orchestrate(tmp_path, config, "--dataset", "sample-math")
    assert again.returncode == 0, again.stdout + again.stderr
    ids = answered_ids(details(tmp_path, "tiny-c", "sample-math"))
    assert len(ids) == LIMIT and len(set(ids)) == LIMIT and done <= set(ids)


def test_api_model_leaderboard_and_no_secret_in_any_file(tmp_path: Path, vllm_server) -> None:
    """An API model (endpoints block) against a running server: its key never reaches a file or the output."""
    secret = "sk-test-SECRET-" + os.urandom(8).hex()
    config = tmp_path / "api.yaml"
    config.write_text(
        textwrap.dedent(f"""
        model_list: [api-tiny]
        api-tiny:
          model_name: {vllm_server.spec.served_name}
          endpoints: [{{api_base: "{vllm_server.endpoint.api_base}", api_key: "env:DM_TEST_KEY"}}]
          api_type: openai
          parallel: 4
          max_tokens: 16
        datasets: {{sample-physics: {{}}}}
    """)
    )
    proc = orchestrate(tmp_path, config, "-v", env={"DM_TEST_KEY": secret})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(answered_ids(details(tmp_path, "api-tiny", "sample-physics"))) == LIMIT
    assert secret not in proc.stdout + proc.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
