"""k = 4 samples at temperature 0.7 against a real vLLM CPU server (tiny model, seeded sampling).

A run is killed (SIGKILL) mid-series and resumed: the resumed run asks the server only the samples missing from the
checkpoint (counted by vLLM's own /metrics), and every (problem, sample) answer, hence every score, equals that of
an uninterrupted run with the same seeds. The managed-server path (consecutive missing samples in one request with
``n``) gives exactly the same answers as one request per sample.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import requests

from orchestrator.client import ChatClient, ManagedServer, run_series
from orchestrator.contract import AnswerRecord, Sampling
from orchestrator.datasets import REGISTRY, load
from orchestrator.prompts import build_messages
from orchestrator.results import SeriesStore
from orchestrator.serving.launch import CPU_SEEDED_ARGS
from tests.support.vllm_servers import own_server

pytestmark = pytest.mark.vllm
K, LIMIT = 4, 3


@pytest.fixture(scope="module")
def seeded_server(tiny_spec):
    """One vLLM CPU server as the orchestrator starts it for a seeded model (no chunked prefill)."""
    spec = dataclasses.replace(tiny_spec, name="tiny-seeded", args=CPU_SEEDED_ARGS, max_model_len=1024)
    yield from own_server(spec, "pytest-seeded")


def config(tmp_path: Path, server) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(
        textwrap.dedent(f"""
        model_list: [tiny]
        tiny:
          model_name: {server.spec.served_name}
          endpoints: [{{api_base: "{server.endpoint.api_base}"}}]
          parallel: 2
          request_delay: 0.4
          max_tokens: 24
        samples: {K}
        temperature: 0.7
        seed: 1234
        datasets:
          sample-math: {{}}
    """)
    )
    return path


def cli(tmp_path: Path, cfg: Path, results: str, wait: bool = True):
    cmd = [
        sys.executable,
        "-m",
        "orchestrator.cli",
        "run",
        "--config",
        str(cfg),
        "--results-dir",
        str(tmp_path / results),
        "--logs-dir",
        str(tmp_path / "logs"),
        "--limit",
        str(LIMIT),
    ]
    if not wait:
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def answers(tmp_path: Path, results: str) -> dict[tuple[str, int], dict]:
    path = tmp_path / results / "details" / "tiny" / "sample-math.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {(r["id"], r.get("sample", 0)): r for r in rows if r.get("error") is None}


def metric(server, name: str) -> float:
    text = requests.get(server.spec.base_url + "/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


def wait_idle(server) -> None:
    deadline = time.monotonic() + 120
    while metric(server, "vllm:num_requests_running") or metric(server, "vllm:num_requests_waiting"):
        assert time.monotonic() < deadline, "the server never went idle"
        time.sleep(0.2)


def test_killed_run_resumes_only_missing_samples_and_equals_an_uninterrupted_run(tmp_path, seeded_server):
    cfg = config(tmp_path, seeded_server)
    proc = cli(tmp_path, cfg, "interrupted", wait=False)
    jsonl = tmp_path / "interrupted" / "details" / "tiny" / "sample-math.jsonl"
    while not (jsonl.exists() and len(jsonl.read_text().splitlines()) >= 3):
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    kept = answers(tmp_path, "interrupted")
    assert 3 <= len(kept) < K * LIMIT
    wait_idle(seeded_server)
    before = metric(seeded_server, "vllm:request_success_total")
    resumed = cli(tmp_path, cfg, "interrupted")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    wait_idle(seeded_server)
    asked = metric(seeded_server, "vllm:request_success_total") - before
    assert asked == K * LIMIT - len(kept)  # only the missing samples were asked
    whole = cli(tmp_path, cfg, "whole")
    assert whole.returncode == 0, whole.stderr[-2000:]
    done, reference = answers(tmp_path, "interrupted"), answers(tmp_path, "whole")
    assert sorted(done) == sorted(reference) == sorted({(pid, s) for pid, _ in reference for s in range(K)})
    assert all(kept[key]["response"] == done[key]["response"] for key in kept)  # checkpointed, never re-asked
    for key, rec in reference.items():
        assert (done[key]["seed"], done[key]["response"]) == (1234 + key[1], rec["response"]), key
    boards = [json.loads((tmp_path / d / "leaderboard.json").read_text())["rows"][0] for d in ("interrupted", "whole")]
    for board in boards:
        assert board["samples"] == K and board["answered"] == LIMIT
    assert [(b["combined"], b["pass_at_k"], b["maj_at_k"], b["ci95"]) for b in boards][0] == [
        (b["combined"], b["pass_at_k"], b["maj_at_k"], b["ci95"]) for b in boards
    ][1]


def test_one_request_with_n_gives_the_answers_of_one_request_per_sample(tmp_path, seeded_server):
    """What a managed server gets (``n`` = the consecutive missing samples, seed of the first) against what an API
    model gets (one request per sample, seed + i), on the same server and the same prompts."""
    problems = load(REGISTRY["sample-math"], limit=2)
    sampling = Sampling(temperature=0.7, seed=99, max_tokens=24)
    answers_by = {}
    for label, alive in (("per-sample", None), ("grouped", seeded_server.alive)):
        store = SeriesStore(
            tmp_path / label, "tiny", "sample-math", "b" * 16, meta={"total": len(problems), "sampling": {"samples": K}}
        )
        if alive is not None:  # one sample already checkpointed: the rest of p0 is asked n = 2 + 1
            first = answers_by["per-sample"][(problems[0].id, 1)]
            store.append(
                AnswerRecord(
                    id=problems[0].id,
                    dataset="sample-math",
                    model="tiny",
                    task="t",
                    reference="r",
                    sample=1,
                    seed=100,
                    response=first,
                    settings_hash="b" * 16,
                )
            )
        server = None if alive is None else ManagedServer(alive=alive)
        with ChatClient(seeded_server.endpoint, seeded_server.spec.served_name, sampling, server=server) as client:
            assert client.managed is (alive is not None)
            run_series(problems, client, store, build_messages, parallel=2, samples=K)
        answers_by[label] = {(r.id, r.sample): r.response for r in store.records() if r.error is None}
    assert len(answers_by["per-sample"]) == K * len(problems)
    assert answers_by["grouped"] == answers_by["per-sample"]
