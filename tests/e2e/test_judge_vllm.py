"""A real vLLM CPU server on the tiny random model as a managed LLM judge, through the real CLI.

The model is served by the fake vLLM (fast, always ``\\boxed{4}``); the judge is scheduled as a job after it, its
vLLM server started with the judge's block and stopped when the audit ends. The tiny model's replies are noise
(``response_format`` with the verdict's JSON schema is sent: vLLM enforces it with structured output, and a reply
cut by max_tokens or not the JSON asked for is ``unparsed``): every answer that needs judging must be recorded
once, and the run must end cleanly with no process left.
"""

from __future__ import annotations

import json
from pathlib import Path

import psutil
import pytest

from tests.support.workspace import Workspace, make_workspace

pytestmark = pytest.mark.vllm


@pytest.fixture
def ws(tmp_path: Path, fake_vllm: Path) -> Workspace:
    return make_workspace(tmp_path / "ws", fake_vllm, tmp_path / "assets")


def test_a_real_vllm_judge_records_every_reply_and_the_run_ends_cleanly(ws: Workspace, tiny_model: Path) -> None:
    pytest.importorskip("vllm")
    ws.config.write_text(
        ws.good()
        + "judge: {model: tiny-judge, sample_correct: 1.0}\n"
        + "tiny-judge:\n  model_name: tiny-judge\n  parallel: 6\n  max_tokens: 24\n"
        + f"  vllm: {{model: {tiny_model}, max_model_len: 4096, startup_timeout: 400}}\n"
    )
    done = ws.cli()  # max_tokens 24: the schema's JSON is cut in the reason, so most replies read unparsed
    assert done.returncode == 0, done.stderr[-3000:]
    lines = ws.details()
    assert len(lines) == 6 and all(line["judge"]["verdict"] in ("correct", "incorrect", "unparsed") for line in lines)
    store = ws.results / "details" / "m" / "judge" / "ds.jsonl"
    keys = [json.loads(line)["key"] for line in store.read_text().splitlines()]
    assert sorted(keys) == sorted(line["id"] for line in lines)  # each asked once
    board = json.loads((ws.results / "leaderboard.json").read_text())["rows"][0]["judge"]
    assert board["judged"] + board["unparsed"] == 6

    again = ws.cli()
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(store.read_text().splitlines()) == 6  # nothing asked twice, no judge server started
    assert len(list(ws.logs.rglob("tiny-judge*.log")) + list(ws.logs.rglob("judge*.log"))) == 1
    left = [p for p in psutil.process_iter(["cmdline"]) if "tiny-judge" in (p.info["cmdline"] or [])]
    assert not left  # the judge's server (served as tiny-judge; the session's shared server serves the same model)
