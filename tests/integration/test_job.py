"""``run_model`` with scripted server timelines (real HTTP stubs, real checkpoint files): restarts after a death or a
hang, a restart that fails to start and is retried, and a first start that fails the model at once."""

from __future__ import annotations

import json

import pytest

from orchestrator.errors import ServerStartError
from orchestrator.job import HUNG_GRACE, run_model
from tests.support.jobs import N, StubServer, answered, context, model_config, spec
from tests.support.scripted_server import Reply, ok


def test_dead_then_failed_restart_then_good_server_answers_each_problem_once(tmp_path, stubs):
    dead = StubServer(spec(), stubs(default=Reply(drop=True)).url, alive=False)
    good = StubServer(spec(), stubs(default=ok()).url)
    failed = ServerStartError("engine died during start", cause="unknown")
    outcome = run_model(context(tmp_path, [dead, failed, good]), model_config(tmp_path), spec())
    assert outcome.status == "finished" and outcome.restarts == 2
    assert sorted(answered(tmp_path)) == sorted(f"p{i}" for i in range(N))
    assert dead.stopped and good.stopped


def test_a_hung_server_is_restarted_without_timeout_records(tmp_path, stubs):
    hung = StubServer(spec(), stubs(default=Reply(delay=3.0, body={})).url, responsive=False)
    good = StubServer(spec(), stubs(default=ok()).url)
    outcome = run_model(context(tmp_path, [hung, good]), model_config(tmp_path), spec())
    assert outcome.status == "finished" and outcome.restarts == 1 and hung.stopped
    assert hung.grace == HUNG_GRACE  # a hung engine is not waited for: SIGKILL after a short grace
    assert sorted(answered(tmp_path)) == sorted(f"p{i}" for i in range(N))
    assert len((tmp_path / "results" / "details" / "m" / "ds.jsonl").read_text().splitlines()) == N


def test_a_first_start_that_fails_fails_the_model_without_retrying(tmp_path):
    ctx = context(tmp_path, [ServerStartError("CUDA out of memory", cause="cuda_oom"), AssertionError("retried")])
    outcome = run_model(ctx, model_config(tmp_path), spec())
    assert outcome.status == "failed" and "CUDA out of memory" in outcome.error and outcome.restarts == 0


def test_restarts_run_out_and_the_model_fails(tmp_path, stubs):
    dead = StubServer(spec(), stubs(default=Reply(drop=True)).url, alive=False)
    failed = ServerStartError("engine died during start")
    outcome = run_model(context(tmp_path, [dead, failed, failed]), model_config(tmp_path, restarts=1), spec())
    assert outcome.status == "failed" and outcome.restarts == 1 and "during start" in outcome.error


def test_a_start_cut_short_by_a_stopping_run_is_interrupted_not_failed(tmp_path):
    ctx = context(tmp_path, [ServerStartError("exited with code -15 before it was ready")])
    ctx.stop.set()
    outcome = run_model(ctx, model_config(tmp_path), spec())
    assert outcome.status == "interrupted" and outcome.error is None


@pytest.mark.parametrize(
    ("setting", "wire"),
    [
        ("", "msgspec"),
        (", client_codec: msgspec", "msgspec"),
        (", client_codec: json", "json"),
        (", client_codec: requests", "requests"),
    ],
)
def test_a_managed_model_speaks_the_json_its_client_codec_names_and_msgspec_by_default(tmp_path, stubs, setting, wire):
    srv = stubs(default=ok())
    ctx = context(tmp_path, [StubServer(spec(), srv.url)], task="Сколько будет {i}+{i}?")
    assert run_model(ctx, model_config(tmp_path, vllm=setting), spec()).status == "finished"
    raws = [r["raw"] for r in srv.chats()]
    assert len(raws) == N and all("Сколько".encode() in raw or b"\\u" in raw for raw in raws)
    escaped, spaced = (any(b"\\u04" in raw for raw in raws), any(b'": ' in raw for raw in raws))
    assert (escaped, spaced) == {"msgspec": (False, False), "json": (False, True), "requests": (True, True)}[wire]


def test_a_series_meta_keeps_its_sampling_block_as_series_have_always_had_it(tmp_path, stubs):
    good = StubServer(spec(), stubs(default=ok()).url)
    assert run_model(context(tmp_path, [good]), model_config(tmp_path), spec()).status == "finished"
    meta = json.loads((tmp_path / "results" / "details" / "m" / "ds.meta.json").read_text(encoding="utf-8"))
    assert meta["sampling"] == {
        "temperature": 0.0,
        "max_tokens": 2048,
        "system_prompt": "",
        "parallel": 2,
        "request_delay": 0.0,
        "request_timeout": 0.5,
        "max_retries": 1,
        "samples": 1,
        "top_p": None,
        "seed": None,
    }  # the keys and values that dataclasses.asdict(Sampling) wrote before transport and samples left it
