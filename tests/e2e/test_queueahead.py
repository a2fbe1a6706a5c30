"""Requests queued ahead at a managed server (``orchestrator/queueahead.py``, issue 18): the batch flag a server starts
with, how many requests its client keeps in flight, the config setting and its errors, the runner keeping that many
at a stub, and a real vLLM CPU server that runs ``parallel`` answers at once while the rest wait in its queue, none of
them cut off by a stall limit far below the time they wait."""

from __future__ import annotations

import dataclasses
import textwrap
import threading
from pathlib import Path

import pytest
import requests

from orchestrator.client import ChatClient, ManagedServer, run_series
from orchestrator.config import load_config
from orchestrator.contract import Problem, Sampling, ServerSpec, Timeouts, Transport
from orchestrator.errors import ConfigError
from orchestrator.job import run_model
from orchestrator.results import SeriesStore
from orchestrator.serving import launch, queueahead
from orchestrator.serving.launch import command, server_spec
from tests.support.jobs import StubServer, context, model_config
from tests.support.scripted_server import ok
from tests.support.vllm_servers import own_server


def spec(
    gpus: tuple[int, ...], share: float | None = None, args: tuple[str, ...] = (), max_num_seqs: int = 64
) -> ServerSpec:
    return ServerSpec(
        name="m",
        model="/models/m",
        served_name="m",
        port=8100,
        python="py",
        gpus=gpus,
        args=args,
        max_num_seqs=max_num_seqs,
        queue_ahead=share,
    )


def batch_flag(cmd: list[str]) -> list[str]:
    return [w for i, w in enumerate(cmd) if w.startswith(queueahead.FLAG) or cmd[i - 1] == queueahead.FLAG]


def test_a_gpu_server_runs_parallel_at_once_and_its_client_keeps_a_whole_batch_more_in_flight() -> None:
    gpu = spec((0,))
    assert batch_flag(command(gpu)) == [queueahead.FLAG, "64"]
    assert launch.in_flight(gpu, 64) == 64 + round(64 * queueahead.DEFAULT_GPU_QUEUE_AHEAD) == 128


def test_a_cpu_server_queues_nothing_by_default_and_starts_without_the_flag() -> None:
    cpu = spec(())
    assert batch_flag(command(cpu)) == [] and launch.in_flight(cpu, 64) == 64


def test_queue_ahead_0_turns_it_off_on_a_gpu_and_a_share_turns_it_on_for_a_cpu_server() -> None:
    assert batch_flag(command(spec((0,), 0.0))) == [] and launch.in_flight(spec((0,), 0.0), 64) == 64
    assert batch_flag(command(spec((), 0.5, max_num_seqs=3))) == [queueahead.FLAG, "3"]
    assert launch.in_flight(spec((), 0.5), 3) == 5  # 1.5 rounded up: a share never rounds the queue away


@pytest.mark.parametrize("args", [("--max-num-seqs", "512"), ("--max-num-seqs=512",), ("--max_num_seqs", "512")])
def test_the_models_own_max_num_seqs_wins_and_the_client_still_queues_ahead(args: tuple[str, ...]) -> None:
    own = spec((0,), args=args)
    assert batch_flag(command(own)) == batch_flag(list(args)) and launch.in_flight(own, 64) == 128


def _config(tmp_path: Path, vllm_extra: str, parallel: int = 8, model_extra: str = "") -> Path:
    (tmp_path / "m").mkdir(exist_ok=True)
    (tmp_path / "m" / "config.json").write_text("{}")
    path = tmp_path / "run.yaml"
    path.write_text(
        textwrap.dedent(f"""
        model_list: [a]
        a: {{vllm: {{model: {tmp_path / "m"}{vllm_extra}}}, parallel: {parallel}{model_extra}}}
    """),
        encoding="utf-8",
    )
    return path


def test_the_config_setting_reaches_the_planned_server_with_the_models_parallel(tmp_path: Path) -> None:
    (model,) = load_config(_config(tmp_path, ", queue_ahead: 0.25")).models
    planned = server_spec(model, (0,), 8100, "py")
    assert model.vllm is not None and model.vllm.queue_ahead == 0.25 and planned is not None
    assert batch_flag(command(planned)) == [queueahead.FLAG, "8"] and launch.in_flight(planned, 8) == 10
    (default,) = load_config(_config(tmp_path, "")).models
    assert default.vllm is not None and default.vllm.queue_ahead is None


def test_with_k_samples_per_request_the_engine_runs_parallel_requests_of_k_sequences_each(tmp_path: Path) -> None:
    # a managed server gets a problem's k samples in one request (n = k) and vLLM runs each of them as a sequence:
    # --max-num-seqs parallel would have let only parallel / k requests generate at once
    (model,) = load_config(_config(tmp_path, "", model_extra=", samples: 4, temperature: 0.6")).models
    planned = server_spec(model, (0,), 8100, "py")
    assert planned is not None and batch_flag(command(planned)) == [queueahead.FLAG, "32"]
    assert launch.in_flight(planned, model.parallel) == 16  # requests: 8 generating, 8 queued


@pytest.mark.parametrize(("value", "said"), [("9", "out of range"), ("-1", "out of range"), ("lots", "a number")])
def test_a_bad_queue_ahead_is_one_line_naming_the_field_and_the_fix(tmp_path: Path, value: str, said: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_config(tmp_path, f", queue_ahead: {value}"))
    text = str(caught.value)
    assert "a.vllm.queue_ahead" in text and said in text and "\n" not in text and caught.value.exit_code == 2


@pytest.mark.parametrize(("gpus", "setting", "expected"), [((0,), "", 4), ((0,), ", queue_ahead: 0", 2), ((), "", 2)])
def test_the_runner_keeps_the_servers_in_flight_count_of_requests_at_it(tmp_path, stubs, gpus, setting, expected):
    srv = stubs(default=dataclasses.replace(ok(), delay=0.3))
    model = model_config(tmp_path, vllm=setting)  # parallel: 2
    planned = dataclasses.replace(server_spec(model, (), 0, "py"), gpus=gpus)
    outcome = run_model(context(tmp_path, [StubServer(planned, srv.url)]), model, planned)
    assert outcome.status == "finished" and srv.max_inflight == expected


# -- a real vLLM CPU server with --max-num-seqs 2 and 4 requests in flight ------------------------------------------
BATCH, STALL_LIMIT, TOKENS = 2, 1.0, 120


@pytest.fixture(scope="module")
def queued_server(tiny_spec):
    """A CPU server started as the orchestrator starts one with ``queue_ahead: 1`` and ``parallel: 2``."""
    yield from own_server(
        dataclasses.replace(tiny_spec, name="tiny-queued", max_model_len=1024, max_num_seqs=BATCH, queue_ahead=1.0),
        "pytest-queued",
    )


class Gauges:
    """The most requests a server reported running and waiting (its /metrics, read every 50 ms)."""

    def __init__(self, base_url: str) -> None:
        self.url, self.most = base_url + "/metrics", {"running": 0.0, "waiting": 0.0}
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        while not self.done.wait(0.05):
            text = requests.get(self.url, timeout=10).text
            for name in self.most:
                now = sum(
                    float(line.rsplit(" ", 1)[1])
                    for line in text.splitlines()
                    if line.startswith(f"vllm:num_requests_{name}{{")
                )
                self.most[name] = max(self.most[name], now)

    def stop(self) -> dict[str, float]:
        self.done.set()
        self.thread.join(timeout=30)
        return self.most


@pytest.mark.vllm
def test_a_real_server_runs_parallel_answers_while_the_queued_ones_wait_and_none_is_cut_off(queued_server, tmp_path):
    planned = queued_server.spec
    assert batch_flag(command(planned)) == [queueahead.FLAG, str(BATCH)]
    problems = [
        Problem(id=f"q{i}", dataset="ds", domain="math", task=f"{i}+{i}?", reference=str(2 * i))
        for i in range(2 * launch.in_flight(planned, BATCH))
    ]
    sampling = Sampling(max_tokens=TOKENS)
    store = SeriesStore(tmp_path, "tiny", "ds", "q" * 16, meta={"total": len(problems)})
    gauges = Gauges(planned.base_url)
    with ChatClient(
        queued_server.endpoint,
        planned.served_name,
        sampling,
        transport=Transport(timeouts=Timeouts.within(STALL_LIMIT), max_retries=0),
        server=ManagedServer.of(queued_server),
        context_len=queued_server.max_model_len(),
        extra_body={"ignore_eos": True},
    ) as client:
        score = run_series(
            problems,
            client,
            store,
            lambda p: [{"role": "user", "content": p.task}],
            parallel=launch.in_flight(planned, BATCH),
        )
    most = gauges.stop()
    records = store.records()
    assert score.answered == len(problems) and all(r.error is None for r in records)
    assert {r.completion_tokens for r in records} == {TOKENS}
    assert most["running"] == BATCH  # the engine ran parallel at once
    assert most["waiting"] >= launch.in_flight(planned, BATCH) - BATCH  # and the rest waited in its queue
    # one answer takes longer than twice the stall limit, so a queued request waited at least that long for a slot,
    # with no token of its own: the server's progress, not the request's, kept it alive
    assert min(r.latency_s for r in records) > 2 * STALL_LIMIT


@pytest.mark.vllm
def test_a_real_server_counts_each_of_a_requests_n_choices_against_its_batch(queued_server):
    # why launch.engine_batch multiplies parallel by samples: one request with n = BATCH fills the whole batch alone
    # and a second request waits in the queue until those choices end
    url, body = (
        queued_server.spec.base_url,
        {
            "model": queued_server.spec.served_name,
            "max_tokens": TOKENS,
            "messages": [{"role": "user", "content": "1+1?"}],
            "ignore_eos": True,
        },
    )
    gauges = Gauges(url)
    asks = [
        threading.Thread(
            target=requests.post,
            args=(url + "/v1/chat/completions",),
            kwargs={"json": {**body, "n": n}, "timeout": 300},
        )
        for n in (BATCH, 1)
    ]
    for ask in asks:
        ask.start()
    for ask in asks:
        ask.join(timeout=330)  # each request gives up after 300 s
    most = gauges.stop()
    assert not any(ask.is_alive() for ask in asks)
    assert most["running"] == BATCH and most["waiting"] >= 1
