"""Replicas on real vLLM CPU servers (``--max-cpu-servers 2``): one model on two servers, each answer asked and
stored once; its replica SIGKILLed mid-run loses nothing (its batch goes back to the shared queue) and no answer is
stored twice. No other model waits, so the second CPU-server slot costs nothing and the model's estimate (answers x
``max_tokens`` at the CPU rate, plus a start-up) starts a replica as soon as the model starts (``policy.fill``); the
tiny model's copy here stops early (a tenth of its vocabulary are end tokens in ``generation_config.json``), so the
real work stays small.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest

from tests.support.waiting import wait_for

pytestmark = pytest.mark.vllm
LIMIT, SAMPLES = 50, 8
END_TOKENS = list(range(4, 80))  # of the tiny model's 743: answers of about ten tokens


def early_stopping_copy(tiny_model: Path, folder: Path) -> Path:
    shutil.copytree(tiny_model, folder)
    config = json.loads((folder / "generation_config.json").read_text())
    (folder / "generation_config.json").write_text(json.dumps({**config, "eos_token_id": END_TOKENS}))
    return folder


def write_config(tmp_path: Path, model: Path) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(
        textwrap.dedent(f"""
        model_list: [tiny-r]
        tiny-r:
          model_name: tiny-r
          vllm: {{model: {model}, max_model_len: 2048, startup_timeout: 600}}
          parallel: 2
          samples: {SAMPLES}
          max_tokens: 600
          replicas: auto
        datasets:
          sample-math: {{}}
        temperature: 0.6
    """)
    )
    return path


def server_processes(log: Path) -> list[psutil.Process]:
    """The processes of the server whose stdout is ``log`` (its API process and VLLM::EngineCore)."""
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.readlink(f"/proc/{proc.pid}/fd/1") == str(log):
                found.append(proc)
        except OSError:
            continue
    return found


def replica_log(tmp_path: Path) -> Path | None:
    return next(iter((tmp_path / "logs").glob("*/tiny-r-replica1.log")), None)


def answered_requests(log: Path | None) -> int:
    return log.read_text(errors="replace").count('POST /v1/chat/completions HTTP/1.1" 200') if log else 0


def stored(tmp_path: Path) -> list[dict]:
    path = tmp_path / "results" / "details" / "tiny-r" / "sample-math.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def test_a_replica_shares_the_model_and_when_killed_mid_run_loses_nothing(tmp_path: Path, tiny_model: Path) -> None:
    config = write_config(tmp_path, early_stopping_copy(tiny_model, tmp_path / "tiny-early"))
    cmd = [sys.executable, "-m", "orchestrator.cli", "run", "-v", "--config", str(config), "--dataset", "sample-math"]
    cmd += ["--results-dir", str(tmp_path / "results"), "--logs-dir", str(tmp_path / "logs"), "--limit", str(LIMIT)]
    cmd += ["--max-cpu-servers", "2"]
    err = open(tmp_path / "orchestrator.err", "w")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    try:
        wait_for(lambda: answered_requests(replica_log(tmp_path)) >= 1, 900, "the replica's first answer")
        assert len(stored(tmp_path)) < LIMIT * SAMPLES, "the run ended before the replica could be killed mid-run"
        log = replica_log(tmp_path)
        assert log is not None
        victims = server_processes(log.resolve())
        assert victims
        for victim in victims:
            victim.send_signal(signal.SIGKILL)
        proc.wait(timeout=900)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        subprocess.run(
            [sys.executable, "-m", "orchestrator.cli", "cleanup", "--logs-dir", str(tmp_path / "logs")],
            capture_output=True,
            timeout=120,
        )
        err.close()
    text = (tmp_path / "orchestrator.err").read_text()
    assert proc.returncode == 0, text[-3000:]
    assert "tiny-r: replica on GPUs []" in text and "the replica on GPUs [] ended" in text
    rows = stored(tmp_path)
    keys = Counter((r["id"], r.get("sample", 0)) for r in rows)
    assert len(keys) == LIMIT * SAMPLES  # every (problem, sample) answered: nothing lost with the replica
    assert set(keys.values()) == {1}  # and none stored twice
    assert all(r.get("error") is None for r in rows)
    first = next((tmp_path / "logs").glob("*/tiny-r.log"))
    assert answered_requests(first) >= 1  # both servers answered
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and server_processes(first.resolve()):
        time.sleep(0.5)
    assert server_processes(first.resolve()) == []
