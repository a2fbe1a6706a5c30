"""The pure plan over a table of GPU pools and model mixes, its ports, server specs and the --dry-run text."""

from __future__ import annotations

import copy
import shlex
from itertools import combinations
from pathlib import Path

import pytest

from orchestrator.config import load_config
from orchestrator.contract import Endpoint, ModelConfig, Sampling, SeriesScore, VllmSettings, redact_command
from orchestrator.errors import ConfigError, PlanError, PortError
from orchestrator.scheduling.dryrun import render_plan
from orchestrator.scheduling.history import estimate_weights
from orchestrator.scheduling.plan import Placement, make_jobs, plan
from orchestrator.scheduling.policy import ORDERINGS, makespan, simulate
from orchestrator.scheduling.runner import Scheduler
from orchestrator.serving.launch import command

PORTS = range(8100, 8200)


def managed(key: str, tp: int = 1, pp: int = 1, **vllm: object) -> ModelConfig:
    return ModelConfig(
        key=key,
        model_name=f"{key}-served",
        sampling=Sampling(),
        vllm=VllmSettings(model=f"/models/{key}", tensor_parallel_size=tp, pipeline_parallel_size=pp, **vllm),
    )


def api(key: str, base: str = "https://api.example.com/v1") -> ModelConfig:
    return ModelConfig(key=key, model_name=key, sampling=Sampling(), endpoints=(Endpoint(base, "sk-secret-1"),))


def by_key(placements: list[Placement]) -> dict[str, Placement]:
    return {p.job.key: p for p in placements}


def assert_valid(placements: list[Placement], pool: list[int], max_cpu: int = 1) -> None:
    """The invariants of every plan: right group sizes, GPUs from the pool, no GPU shared by overlapping runs,
    no more CPU servers at once than allowed, distinct ports for managed models."""
    for p in placements:
        assert len(p.gpus) == p.job.gpus_needed and set(p.gpus) <= set(pool)
        if p.spec is not None:
            assert p.spec.gpus == p.gpus and p.spec.port == p.port
    spans = [(p, p.wave_start, p.wave_start + p.job.weight) for p in placements]
    for (a, a0, a1), (b, b0, b1) in combinations(spans, 2):
        if a0 < b1 and b0 < a1:
            assert not set(a.gpus) & set(b.gpus), (a.job.key, b.job.key)
    for _, t0, _ in spans:
        assert sum(1 for p, s0, s1 in spans if p.job.cpu and s0 <= t0 < s1) <= max_cpu
    ports = [p.port for p in placements if p.spec is not None]
    assert len(ports) == len(set(ports))


# (name, pool, models, max_cpu_servers, expected {key: (gpus, wave_start)})
TABLE = [
    (
        "four TP=1 side by side",
        [0, 1, 2, 3],
        [managed(k) for k in "abcd"],
        1,
        {"a": ((0,), 0), "b": ((1,), 0), "c": ((2,), 0), "d": ((3,), 0)},
    ),
    (
        "TP=2 first, on a contiguous pair",
        [0, 1, 2, 3],
        [managed("s1"), managed("s2"), managed("big", tp=2)],
        1,
        {"big": ((0, 1), 0), "s1": ((2,), 0), "s2": ((3,), 0)},
    ),
    (
        "TP=2 waits for two free GPUs",
        [0, 1, 2, 3],
        [managed(k) for k in "abcd"] + [managed("pair", tp=2)],
        1,
        {"pair": ((0, 1), 0), "a": ((2,), 0), "b": ((3,), 0), "c": ((0,), 1), "d": ((1,), 1)},
    ),
    (
        "TP=4 takes the whole pool, then the rest",
        [0, 1, 2, 3],
        [managed("a"), managed("all", tp=4), managed("b")],
        1,
        {"all": ((0, 1, 2, 3), 0), "a": ((0,), 1), "b": ((1,), 1)},
    ),
    (
        "TP x PP counts both",
        [4, 5, 6, 7],
        [managed("tp2pp2", tp=2, pp=2), managed("x", tp=2)],
        1,
        {"tp2pp2": ((4, 5, 6, 7), 0), "x": ((4, 5), 1)},
    ),
    (
        "--gpus 1,2,5: contiguous pair preferred",
        [1, 2, 5],
        [managed("p", tp=2), managed("q")],
        1,
        {"p": ((1, 2), 0), "q": ((5,), 0)},
    ),
    (
        "no GPU: CPU servers one at a time",
        [],
        [managed("a", tp=2), managed("b"), managed("c")],
        1,
        {"a": ((), 0), "b": ((), 1), "c": ((), 2)},
    ),
    (
        "no GPU: two CPU servers at once",
        [],
        [managed("a"), managed("b"), managed("c")],
        2,
        {"a": ((), 0), "b": ((), 0), "c": ((), 1)},
    ),
    (
        "API models run concurrently without GPUs",
        [0, 1],
        [api("gpt"), api("claude"), managed("m", tp=2)],
        1,
        {"gpt": ((), 0), "claude": ((), 0), "m": ((0, 1), 0)},
    ),
    (
        "8 GPUs, mixed TP 8/4/2/1",
        list(range(8)),
        [managed("one"), managed("two", tp=2), managed("four", tp=4), managed("eight", tp=8), managed("two2", tp=2)],
        1,
        {
            "eight": ((0, 1, 2, 3, 4, 5, 6, 7), 0),
            "four": ((0, 1, 2, 3), 1),
            "two": ((4, 5), 1),
            "two2": ((6, 7), 1),
            "one": ((0,), 2),
        },
    ),
]


@pytest.mark.parametrize("name,pool,models,max_cpu,expected", TABLE, ids=[t[0] for t in TABLE])
def test_plan_table(
    name: str,
    pool: list[int],
    models: list[ModelConfig],
    max_cpu: int,
    expected: dict[str, tuple[tuple[int, ...], float]],
) -> None:
    placements = plan(models, pool, PORTS, max_cpu_servers=max_cpu)
    assert {k: (p.gpus, p.wave_start) for k, p in by_key(placements).items()} == expected
    assert_valid(placements, pool, max_cpu)
    assert [p.wave_start for p in placements] == sorted(p.wave_start for p in placements)


def test_a_model_larger_than_the_pool_is_an_error_before_anything_starts() -> None:
    with pytest.raises(PlanError) as err:
        plan([managed("small"), managed("x", tp=4)], [0, 1], PORTS)
    assert str(err.value) == (
        "model 'x' needs 4 GPUs (tensor_parallel_size 4 x pipeline_parallel_size 1) but the "
        "pool has 2 (--gpus 0,1); lower tensor_parallel_size or add GPUs"
    )


def test_duplicate_model_keys_are_rejected_by_the_config_before_any_plan(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("model_list: [a, a]\na: {endpoints: [{api_base: 'http://x/v1'}]}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == f"{path}: model_list: model 'a' is listed twice; list each model once"


def test_api_placements_have_no_server_and_no_port() -> None:
    (p,) = plan([api("gpt")], [0, 1], PORTS)
    assert (p.gpus, p.port, p.spec, p.job.kind) == ((), 0, None, "api")


def test_server_spec_is_built_from_the_vllm_block() -> None:
    model = managed(
        "m",
        tp=2,
        max_model_len=4096,
        gpu_memory_utilization=0.85,
        args=("--dtype", "bfloat16"),
        env=(("OMP_NUM_THREADS", "4"),),
        startup_timeout=300.0,
        host="0.0.0.0",
    )
    (p,) = plan([model], [2, 3], PORTS, python="/opt/py/bin/python")
    s = p.spec
    assert s is not None
    assert (s.name, s.model, s.served_name, s.gpus, s.port, s.host) == (
        "m",
        "/models/m",
        "m-served",
        (2, 3),
        8100,
        "0.0.0.0",
    )
    assert (s.tensor_parallel_size, s.pipeline_parallel_size, s.max_model_len, s.gpu_memory_utilization) == (
        2,
        1,
        4096,
        0.85,
    )
    assert (s.args, s.env, s.python, s.startup_timeout) == (
        ("--dtype", "bfloat16"),
        (("OMP_NUM_THREADS", "4"),),
        "/opt/py/bin/python",
        300.0,
    )
    (own,) = plan([managed("n", python="/venvs/vllm/bin/python")], [0], PORTS, python="/opt/py/bin/python")
    assert own.spec is not None and own.spec.python == "/venvs/vllm/bin/python"


def test_ports_fixed_ones_win_and_are_skipped_in_the_candidates() -> None:
    models = [managed("a"), managed("b", port=8101), managed("c")]
    ports = {k: p.port for k, p in by_key(plan(models, [0, 1, 2], PORTS)).items()}
    assert ports["b"] == 8101 and sorted([ports["a"], ports["c"]]) == [8100, 8102]


def test_ports_from_a_callable_and_their_exhaustion() -> None:
    handed = iter([9001, 9002])
    placements = plan([managed("a"), managed("b")], [0, 1], lambda: next(handed))
    assert sorted(p.port for p in placements) == [9001, 9002]
    with pytest.raises(PortError, match="no port left for model"):
        plan([managed("a"), managed("b")], [0, 1], [8100])


def test_two_models_fixing_the_same_port_is_an_error() -> None:
    with pytest.raises(PlanError, match=r"'a' and 'b' both set vllm.port 8000"):
        plan([managed("a", port=8000), managed("b", port=8000)], [0, 1], PORTS)


def test_plan_is_pure_and_deterministic() -> None:
    models = [managed("a"), managed("b", tp=2), api("gpt"), managed("c", tp=4)]
    before = copy.deepcopy(models)
    first = plan(models, [0, 1, 2, 3], PORTS, weights={"a": 50, "b": 20, "c": 5})
    assert plan(models, [0, 1, 2, 3], PORTS, weights={"a": 50, "b": 20, "c": 5}) == first
    assert models == before


def test_larger_then_slower_first_with_weights() -> None:
    models = [managed("quick"), managed("slow"), managed("pair", tp=2)]
    order = [p.job.key for p in plan(models, [0, 1], PORTS, weights={"quick": 10, "slow": 100, "pair": 10})]
    assert order == ["pair", "slow", "quick"]


def test_weights_let_a_long_small_job_start_early_when_that_ends_sooner() -> None:
    """4 GPUs, one 100 s single-GPU job and six 30 s TP=2 jobs: larger-first runs the long job last (190 s);
    the plan keeps the order whose simulation ends sooner."""
    models = [managed("long")] + [managed(f"p{i}", tp=2) for i in range(6)]
    weights = {"long": 100.0, **{f"p{i}": 30.0 for i in range(6)}}
    placements = plan(models, [0, 1, 2, 3], PORTS, weights=weights)
    assert_valid(placements, [0, 1, 2, 3])
    jobs = make_jobs(models, True, weights)
    larger_first = makespan(simulate(sorted(jobs, key=ORDERINGS[0]), [0, 1, 2, 3]))
    assert larger_first == 190.0
    assert max(p.wave_start + p.job.weight for p in placements) <= 150.0


def test_missing_weights_get_the_median_and_bad_ones_are_rejected() -> None:
    jobs = make_jobs([managed("a"), managed("b"), managed("new")], True, {"a": 10.0, "b-served": 30.0})
    assert [j.weight for j in jobs] == [10.0, 30.0, 20.0]  # b found by model_name, new gets the median
    with pytest.raises(PlanError, match="weight of model 'a'"):
        make_jobs([managed("a")], True, {"a": 0})


def test_estimate_weights_extrapolates_incomplete_series() -> None:
    scores = [
        SeriesScore("m", "russianmath", "h", 100, 100, 50, 0, 0, 0, 999.0),  # superseded by the next
        SeriesScore("m", "russianmath", "h", 100, 100, 50, 0, 0, 0, 100.0),
        SeriesScore("m", "russianphysics", "h", 100, 25, 5, 0, 0, 0, 50.0),
        SeriesScore("fresh", "russianmath", "h", 100, 0, 0, 0, 0, 0, 0.0),
    ]
    assert estimate_weights(scores) == {"m": 300.0}


# ---------------------------------------------------------------------------------------------------- --dry-run


def test_render_plan_shows_model_gpus_port_and_the_exact_command() -> None:
    placements = plan([managed("qwen", tp=2, args=("--dtype", "bfloat16")), api("gpt")], [0, 1], PORTS)
    text = render_plan(placements)
    assert "qwen: GPUs 0,1  port 8100  start wave 1" in text
    command_line = next(line for line in text.splitlines() if "vllm.entrypoints" in line)
    words = shlex.split(command_line)
    spec = by_key(placements)["qwen"].spec
    assert spec is not None
    assert words == ["CUDA_DEVICE_ORDER=PCI_BUS_ID", "CUDA_VISIBLE_DEVICES=0,1"] + command(spec)
    assert "gpt: API model (https://api.example.com/v1)" in text


def test_render_plan_never_shows_secrets() -> None:
    model = managed(
        "m",
        args=("--api-key", "tok-123", "--hf-token=hf_abc", "--max-num-batched-tokens", "8192"),
        env=(("HF_TOKEN", "hf_env_secret"), ("OMP_NUM_THREADS", "2")),
    )
    text = render_plan(plan([model, api("gpt", "https://user:pass@h.example/v1?key=q")], [], PORTS))
    for secret in ("tok-123", "hf_abc", "hf_env_secret", "pass", "key=q", "sk-secret-1"):
        assert secret not in text
    assert "--max-num-batched-tokens 8192" in text and "OMP_NUM_THREADS=2" in text and "CPU server  port" in text
    assert redact_command(["--api-key", "x", "--api-key=y", "--tokenizer", "t"]) == [
        "--api-key",
        "***",
        "--api-key=***",
        "--tokenizer",
        "t",
    ]


def test_the_scheduler_given_the_placements_jobs_replays_the_plan() -> None:
    """What --dry-run shows is what the run does: the Scheduler built from the placements' jobs (in start order,
    as the runner passes them) simulates to the same GPUs and starts."""
    models = [managed("a"), managed("b", tp=2), managed("c", tp=4), managed("d"), managed("e", tp=2), api("gpt")]
    weights = {"a": 40.0, "b": 25.0, "c": 10.0, "d": 70.0, "e": 30.0, "gpt": 5.0}
    placements = plan(models, [0, 1, 2, 3], PORTS, weights=weights)
    order = Scheduler([p.job for p in placements], [0, 1, 2, 3], lambda j, g: None).order
    replay = [(s.job.key, s.gpus, s.start) for s in simulate(order, [0, 1, 2, 3])]
    assert replay == [(p.job.key, p.gpus, p.wave_start) for p in placements]


def test_without_gpus_the_larger_configured_model_still_goes_first() -> None:
    order = [p.job.key for p in plan([managed("a-small"), managed("z-large", tp=4)], [], PORTS)]
    assert order == ["z-large", "a-small"]
