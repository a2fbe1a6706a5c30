"""The Ray backend (``run --backend ray``).

Pure parts without a cluster: resource requests, fit checks, the multi-node command, the node-side proxy store, the
guard that kills a server whose owner died, the CLI's errors. Then a real local Ray cluster -- a head and a second
node, each a separate ``ray start`` process offering ``{"fakegpu": 1}`` -- running the orchestrator as a user would
(a subprocess): fake vLLM servers for the fast cases (placement on two nodes, same results as a local run, resume
without asking twice, the driver killed or interrupted), and at the end (``vllm`` marker) two tiny models on real
vLLM CPU servers whose second node's raylet is SIGKILLed mid-run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

from orchestrator.contract import AnswerRecord, ModelConfig, Problem, Sampling, ServerSpec, VllmSettings
from orchestrator.errors import ConfigError, PlanError, ResultsError
from orchestrator.ray.events import Answer, EvalTime
from orchestrator.ray.node import ProxyStore
from orchestrator.ray.plan import Request, check_fits, ray_placements, render_ray_plan, request_for
from orchestrator.scheduling.policy import Job
from orchestrator.serving.launch import command, multinode_spec
from tests.support.held import while_held
from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]


def managed(key: str, tp: int = 1, pp: int = 1) -> ModelConfig:
    return ModelConfig(
        key=key,
        model_name=key,
        sampling=Sampling(),
        vllm=VllmSettings(model=f"org/{key}", tensor_parallel_size=tp, pipeline_parallel_size=pp),
    )


# -- pure parts ----------------------------------------------------------------------------------------------------


def test_local_backend_never_imports_ray() -> None:
    code = (
        "import sys, orchestrator.orchestrate, orchestrator.cli, orchestrator.job, orchestrator.ray.plan, "
        "orchestrator.ray.backend, orchestrator.ray.node; "
        "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"


def test_requests_follow_tp_x_pp_resource_and_node_size() -> None:
    gpu = Job(model=managed("big", tp=2, pp=2), gpus_needed=4)
    cpu = Job(model=managed("small"), gpus_needed=0, cpu=True)
    assert request_for(gpu, None, gpus_per_node=8).options() == {"num_gpus": 4.0, "num_cpus": 0.0, "resources": {}}
    assert request_for(cpu, None, gpus_per_node=0).options() == {"num_gpus": 0.0, "num_cpus": 1.0, "resources": {}}
    assert request_for(gpu, "fakegpu", gpus_per_node=8).options()["resources"] == {"fakegpu": 4.0}
    assert request_for(gpu, None, gpus_per_node=2) == Request(multinode=4)


def test_check_fits_names_the_model_that_no_node_can_hold() -> None:
    nodes = [{"GPU": 4.0, "CPU": 32.0}, {"GPU": 4.0, "CPU": 32.0}]
    check_fits({"a": Request(num_gpus=4.0), "b": Request(multinode=8)}, nodes)
    with pytest.raises(PlanError, match="'a' asks for 8 GPU"):
        check_fits({"a": Request(num_gpus=8.0)}, nodes)
    with pytest.raises(PlanError, match="'m' needs 16 GPUs but the Ray cluster has 8"):
        check_fits({"m": Request(multinode=16)}, nodes)
    with pytest.raises(PlanError, match="fakegpu"):
        check_fits({"c": Request(resources=(("fakegpu", 1.0),))}, nodes)


def test_multinode_model_uses_vllms_ray_executor_and_the_cluster_address() -> None:
    spec = ServerSpec(
        name="huge", model="org/huge", served_name="huge", tensor_parallel_size=8, pipeline_parallel_size=2, gpus=(0, 1)
    )
    cmd = command(multinode_spec(spec, "10.0.0.1:6379"))
    assert cmd[cmd.index("--distributed-executor-backend") + 1] == "ray"
    assert cmd[cmd.index("--tensor-parallel-size") + 1] == "8" and "--pipeline-parallel-size" in cmd
    assert ("RAY_ADDRESS", "10.0.0.1:6379") in multinode_spec(spec, "10.0.0.1:6379").env
    again = command(multinode_spec(multinode_spec(spec, "x:1"), "x:1"))
    assert again.count("--distributed-executor-backend") == 1
    placements = ray_placements([managed("huge", tp=8, pp=2), managed("small")], True, {})
    assert [p.job.key for p in placements] == ["huge", "small"]  # largest first
    text = render_ray_plan(placements, {"huge": Request(multinode=16), "small": Request(num_gpus=1.0)}, "auto")
    assert "16 GPUs over several nodes" in text and "--distributed-executor-backend ray" in text
    assert "small: Ray actor asking for 1 GPU" in text


def _rec(pid: str, digest: str = "h1", error: str | None = None) -> AnswerRecord:
    return AnswerRecord(
        id=pid, dataset="d", model="m", task="t", reference="1", response="1", settings_hash=digest, error=error
    )


def test_proxy_store_sends_each_new_answer_once_and_skips_the_drivers() -> None:
    sent: list[tuple] = []
    store = ProxyStore("m", "d", "h1", frozenset({"p1"}), sent.append)
    problems = [Problem(id=i, dataset="d", domain="math", task="t", reference="1") for i in ("p1", "p2", "p3")]
    assert [p.id for p in store.missing(problems)] == ["p2", "p3"]
    assert store.append(_rec("p1")) is False  # the driver already has it
    assert store.append(_rec("p2", error="timeout")) is True  # errors travel too, and leave the id missing
    assert [p.id for p in store.missing(problems)] == ["p2", "p3"]
    assert store.append(_rec("p2")) is True and store.append(_rec("p2")) is False
    assert [(type(e), e.record["id"], e.record["error"]) for e in sent] == [
        (Answer, "p2", "timeout"),
        (Answer, "p2", None),
    ]
    store.add_eval_seconds(2.5)
    assert sent[-1] == EvalTime("d", 2.5) and store.has_markdown()
    with pytest.raises(ResultsError, match="settings"):
        store.append(_rec("p3", digest="other"))


def test_node_refuses_a_series_whose_settings_hash_differs_from_the_drivers() -> None:
    from orchestrator.datasets import REGISTRY, load
    from orchestrator.job import DatasetRun
    from orchestrator.ray.node import NodeJob, proxy_store

    problems = tuple(load(REGISTRY["sample-math"])[:2])
    run = DatasetRun(spec=REGISTRY["sample-math"], problems=problems, version="v1")
    placement = ray_placements([managed("m")], False, {})[0]
    job = NodeJob(
        placement=placement, datasets=(run,), done={}, hashes={"sample-math": "not-this"}, run_id="r", logs_dir="/tmp"
    )
    with pytest.raises(ConfigError, match="same deathmath-orchestrate version on every node"):
        proxy_store(job, lambda e: None, placement.job.model, run)


@pytest.mark.parametrize("node_sets_it", [False, True])
def test_servers_do_not_inherit_rays_one_thread_default(node_sets_it: bool) -> None:
    from orchestrator.ray.node import undo_ray_thread_default

    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    raylet = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        env={**env, "OMP_NUM_THREADS": "4"} if node_sets_it else env,
    )
    try:
        wait_for(lambda: psutil.Process(raylet.pid).cmdline()[-1:] == ["import time; time.sleep(60)"], 10, "the exec")
        worker_env = {"OMP_NUM_THREADS": "1", "RAY_RAYLET_PID": str(raylet.pid)}
        assert undo_ray_thread_default(worker_env) is not node_sets_it
        assert ("OMP_NUM_THREADS" in worker_env) is node_sets_it
    finally:
        raylet.kill()
        raylet.wait()


def _owner_with_server(tmp_path: Path) -> subprocess.Popen:
    """A process that starts a 'server' (a sleeper with a child, in its own session) under a guard, then waits."""
    code = textwrap.dedent(f"""
        import subprocess, sys, time
        from orchestrator.ray.node import guarded_popen
        child = ("import subprocess, sys, time; "
                 "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)']); time.sleep(300)")
        with open({str(tmp_path / "server.log")!r}, 'ab') as log:
            proc = guarded_popen([sys.executable, '-c', child], stdout=log, start_new_session=True)
        print(proc.pid, flush=True)
        time.sleep(300)
    """)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=REPO)


def _group(pgid: int) -> list[psutil.Process]:
    out = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except (OSError, psutil.Error):
            continue
    return out


def test_guard_kills_the_server_group_when_its_owner_is_sigkilled(tmp_path: Path) -> None:
    owner = _owner_with_server(tmp_path)
    try:
        pgid = int(owner.stdout.readline())
        wait_for(lambda: len(_group(pgid)) == 2, 30, "the server and its child")
        owner.kill()
        owner.wait(10)
        wait_for(lambda: not _group(pgid), 30, "the guard to kill the server group")
    finally:
        owner.kill()
        for proc in _group(pgid):
            proc.kill()


def test_guard_leaves_by_itself_once_the_server_is_stopped(tmp_path: Path) -> None:
    from orchestrator.serving.guard import spawn_guard

    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
    spawn_guard(os.getpid(), server.pid, label=str(tmp_path / "guarded"))
    try:
        from standins.raycluster import processes_under

        (guard,) = processes_under([tmp_path / "guarded"])
        assert guard.ppid() != os.getpid()  # not our child: Ray's kill of a worker's children does not reach it
        time.sleep(1.0)
        assert guard.is_running()  # owner alive, server running: it watches
        server.kill()
        server.wait(10)
        wait_for(lambda: not processes_under([tmp_path / "guarded"]), 10, "the guard to leave")
    finally:
        server.kill()


def test_ray_options_without_backend_ray_are_one_error_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "run", "--config", "configs/run.yaml", "--ray-address", "auto"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stderr.strip() == "error: --ray-address and --ray-resource need --backend ray"


def test_backend_ray_without_the_ray_package_says_how_to_install_it(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow" / "ray"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('no ray here')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "shadow")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestrator.cli",
            "run",
            "--config",
            "configs/run.yaml",
            "--backend",
            "ray",
            "--dry-run",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "deathmath-orchestrate[ray]" in proc.stderr and "Traceback" not in proc.stderr


def test_backend_ray_with_nothing_at_the_address_fails_fast() -> None:
    pytest.importorskip("ray")
    from standins.raycluster import free_port

    began = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestrator.cli",
            "run",
            "--config",
            "configs/run.yaml",
            "--backend",
            "ray",
            "--ray-address",
            f"127.0.0.1:{free_port()}",
            "--dry-run",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 2 and "nothing answers at" in proc.stderr, proc.stderr
    assert time.monotonic() - began < 60


# -- a real local Ray cluster ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("ray")
    from standins.raycluster import LocalCluster

    local = LocalCluster(nodes=2).start()
    yield local
    local.stop()
    local.remove()


def fake_config(
    tmp_path: Path,
    fake_vllm: Path,
    keys=("fa", "fb"),
    delay: float = 0.2,
    parallel: int = 2,
    samples: int = 1,
    hang_after: int | None = None,
    datasets: str = "{sample-math: {}, sample-physics: {}}",
) -> Path:
    hang = f", FAKE_VLLM_HANG_AFTER: '{hang_after}'" if hang_after is not None else ""
    env = f"{{PYTHONPATH: {fake_vllm}, FAKE_VLLM_DELAY: '{delay}'{hang}}}"
    more = f", samples: {samples}" if samples != 1 else ""
    blocks = "".join(
        f"{k}: {{model_name: {k}, vllm: {{model: {tmp_path}, env: {env}, startup_timeout: 120}}, "
        f"parallel: {parallel}, max_tokens: 8{more}}}\n"
        for k in keys
    )
    path = tmp_path / "run.yaml"
    path.write_text(f"model_list: [{', '.join(keys)}]\n{blocks}datasets: {datasets}\ntemperature: 0.0\n")
    return path


def orchestrate(tmp_path: Path, config: Path, *extra: str, out: str = "results", wait: bool = True, limit: int = 4):
    cmd = [
        sys.executable,
        "-m",
        "orchestrator.cli",
        "run",
        "--config",
        str(config),
        "--results-dir",
        str(tmp_path / out),
        "--logs-dir",
        str(tmp_path / "logs"),
        "--limit",
        str(limit),
        "-v",
        *extra,
    ]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}  # as the cluster (see raycluster.FAST_DEATH)
    if not wait:
        return subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, start_new_session=True, env=env
        )
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=900, env=env)


def on_cluster(cluster, resource: str = "fakegpu") -> list[str]:
    return ["--backend", "ray", "--ray-address", cluster.address, "--ray-resource", resource]


def rows(results: Path, model: str, dataset: str) -> list[dict]:
    path = results / "details" / model / f"{dataset}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def answered(results: Path, model: str, dataset: str) -> list[str]:
    return [r["id"] for r in rows(results, model, dataset) if r["error"] is None]


def manifest(results: Path) -> dict:
    (path,) = sorted((results / "runs").glob("*/manifest.json"), key=lambda p: p.stat().st_mtime)[-1:]
    return json.loads(path.read_text())


TIMING_FIELDS = {"eval_seconds", "tokens_per_s"}


def board_content(results: Path) -> dict:
    """leaderboard.json without what depends on timing."""

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in TIMING_FIELDS}
        return [strip(v) for v in value] if isinstance(value, list) else value

    return strip(json.loads((results / "leaderboard.json").read_text()))


def answers(results: Path, model: str, dataset: str) -> dict[str, tuple]:
    return {
        r["id"]: (r["response"], r["verdict"], r["completion_tokens"])
        for r in rows(results, model, dataset)
        if r["error"] is None
    }


def servers(tmp_path: Path) -> list[psutil.Process]:
    """The vLLM servers of this test (stdout is a log under tmp_path/logs) and their guards (named after it)."""
    from standins.raycluster import processes_under

    return processes_under([tmp_path / "logs"])


def no_servers_left(tmp_path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and servers(tmp_path):
        time.sleep(0.3)
    assert servers(tmp_path) == []


def test_two_models_run_on_two_nodes_and_match_a_local_run(cluster, tmp_path: Path, fake_vllm: Path) -> None:
    config = fake_config(tmp_path, fake_vllm)
    ray_run = orchestrate(tmp_path, config, *on_cluster(cluster))
    assert ray_run.returncode == 0, ray_run.stdout + ray_run.stderr
    local = orchestrate(tmp_path, config, out="local")
    assert local.returncode == 0, local.stdout + local.stderr
    facts = manifest(tmp_path / "results")
    nodes = [facts["models"][k]["ray_nodes"] for k in ("fa", "fb")]
    assert len(nodes[0]) == len(nodes[1]) == 1 and nodes[0] != nodes[1]  # one node each (one fakegpu per node)
    assert facts["status"] == "finished" and facts["timings"]["fa"]["startup"] > 0
    for model in ("fa", "fb"):
        for dataset in ("sample-math", "sample-physics"):
            assert sorted(answered(tmp_path / "results", model, dataset)) == sorted(
                answered(tmp_path / "local", model, dataset)
            )
            assert len(answered(tmp_path / "results", model, dataset)) == 4
            assert (tmp_path / "results" / "details" / model / f"{dataset}.md").is_file()
    assert board_content(tmp_path / "results") == board_content(tmp_path / "local")
    assert (tmp_path / "results" / "leaderboard.md").read_text().count("| f") >= 2
    no_servers_left(tmp_path)


def test_a_managed_judge_runs_in_an_actor_after_the_models_and_its_audit_lands_on_the_driver(
    cluster, tmp_path: Path, fake_vllm: Path
) -> None:
    config = fake_config(tmp_path, fake_vllm, keys=("fa",))
    env = f"{{PYTHONPATH: {fake_vllm}, FAKE_VLLM_DELAY: '0.05'}}"
    config.write_text(
        config.read_text()
        + f"fj: {{model_name: fj, vllm: {{model: {tmp_path}, env: {env}, startup_timeout: 120}}, parallel: 2}}\n"
        + "judge: {model: fj, sample_correct: 0}\n"
    )
    done = orchestrate(tmp_path, config, *on_cluster(cluster))
    assert done.returncode == 0, done.stdout + done.stderr
    for dataset in ("sample-math", "sample-physics"):
        lines = rows(tmp_path / "results", "fa", dataset)
        rejected = [r for r in lines if r["verdict"] != "correct"]
        assert rejected and all(r["judge"]["verdict"] == "unparsed" for r in rejected)  # the fake's reply is no JSON
        store = tmp_path / "results" / "details" / "fa" / "judge" / f"{dataset}.jsonl"
        assert len(store.read_text().splitlines()) == len(rejected)
    facts = manifest(tmp_path / "results")
    assert facts["models"]["judge"]["ray_nodes"] and facts["status"] == "finished"
    again = orchestrate(tmp_path, config, *on_cluster(cluster))
    assert again.returncode == 0 and "judge" in again.stdout + again.stderr
    assert len(
        (tmp_path / "results" / "details" / "fa" / "judge" / "sample-math.jsonl").read_text().splitlines()
    ) == len([r for r in rows(tmp_path / "results", "fa", "sample-math") if r["verdict"] != "correct"])
    no_servers_left(tmp_path)


def test_a_managed_judge_starts_on_a_freed_node_beside_a_model_still_running(
    cluster, tmp_path: Path, fake_vllm: Path
) -> None:
    """Two nodes of one fakegpu each: fa ends, fb is held (its server answers nothing until a file exists). Both
    actors hold their nodes, so nothing waits: the judge's actor takes fa's node and fa is audited while fb runs;
    once fb is let go it is audited too."""
    release = tmp_path / "release"
    config = fake_config(tmp_path, fake_vllm)
    quick = f"{{PYTHONPATH: {fake_vllm}, FAKE_VLLM_DELAY: '0.05'}}"
    held = f"{{PYTHONPATH: {fake_vllm}, FAKE_VLLM_DELAY: '0.05', FAKE_VLLM_HOLD_UNTIL: '{release}'}}"
    text = config.read_text().replace(
        f"fb: {{model_name: fb, vllm: {{model: {tmp_path}, env: {{PYTHONPATH: {fake_vllm}, FAKE_VLLM_DELAY: '0.2'}}",
        f"fb: {{model_name: fb, vllm: {{model: {tmp_path}, env: {held}",
    )
    assert "HOLD_UNTIL" in text
    config.write_text(
        text
        + f"fj: {{model_name: fj, vllm: {{model: {tmp_path}, env: {quick}, startup_timeout: 120}}, parallel: 2}}\n"
        + "judge: {model: fj, sample_correct: 0}\n"
    )
    store = tmp_path / "results" / "details" / "fa" / "judge" / "sample-physics.jsonl"

    def fa_audited_while_fb_runs() -> None:
        wait_for(store.exists, 240, "fa audited")
        assert not rows(tmp_path / "results", "fb", "sample-math")  # fb still held: none of its answers

    proc = orchestrate(tmp_path, config, *on_cluster(cluster), wait=False)
    out = while_held(proc, release, fa_audited_while_fb_runs)
    assert proc.returncode == 0, out
    for model in ("fa", "fb"):
        rejected = [r for r in rows(tmp_path / "results", model, "sample-math") if r["verdict"] != "correct"]
        assert rejected and all(r["judge"]["verdict"] == "unparsed" for r in rejected)
    no_servers_left(tmp_path)


def test_rerun_resumes_from_the_drivers_checkpoint_and_asks_nothing_twice(
    cluster, tmp_path: Path, fake_vllm: Path
) -> None:
    config = fake_config(tmp_path, fake_vllm, keys=("fa",))
    first = orchestrate(tmp_path, config, *on_cluster(cluster), limit=2)
    assert first.returncode == 0, first.stdout + first.stderr
    second = orchestrate(tmp_path, config, *on_cluster(cluster), limit=4)
    assert second.returncode == 0, second.stdout + second.stderr
    ids = answered(tmp_path / "results", "fa", "sample-math")
    assert len(ids) == len(set(ids)) == 4 and len(rows(tmp_path / "results", "fa", "sample-math")) == 4
    third = orchestrate(tmp_path, config, *on_cluster(cluster), limit=4)
    assert third.returncode == 0 and "no actor needed" in third.stderr, third.stderr
    assert len(rows(tmp_path / "results", "fa", "sample-math")) == 4


def keys(results: Path, model: str, dataset: str) -> list[str]:
    """The answer key (id, or id#sample) of every successful line, in file order."""
    return [r["id"] if not r.get("sample") else f"{r['id']}#{r['sample']}" for r in rows(results, model, dataset)]


def all_keys(limit: int, samples: int) -> set[str]:
    from orchestrator.contract import with_samples
    from orchestrator.datasets import REGISTRY, load

    return {p.key for p in with_samples(load(REGISTRY["sample-math"])[:limit], samples)}


ONE_DATASET = "{sample-math: {}}"


def test_raising_samples_asks_exactly_the_missing_samples_on_ray(cluster, tmp_path: Path, fake_vllm: Path) -> None:
    first = orchestrate(
        tmp_path, fake_config(tmp_path, fake_vllm, keys=("fa",), datasets=ONE_DATASET), *on_cluster(cluster), limit=6
    )
    assert first.returncode == 0, first.stdout + first.stderr
    before = rows(tmp_path / "results", "fa", "sample-math")
    assert len(before) == 6
    config = fake_config(tmp_path, fake_vllm, keys=("fa",), samples=2, datasets=ONE_DATASET)
    second = orchestrate(tmp_path, config, *on_cluster(cluster), limit=6)
    assert second.returncode == 0, second.stdout + second.stderr
    after = rows(tmp_path / "results", "fa", "sample-math")
    assert after[:6] == before and all(r["error"] is None for r in after)
    got = keys(tmp_path / "results", "fa", "sample-math")
    assert len(got) == len(set(got)) == 12 and set(got) == all_keys(6, 2)
    assert {r["sample"] for r in after[6:]} == {1}  # the second run asked only the new samples
    assert manifest(tmp_path / "results")["status"] == "finished"


def _actor_of_server(tmp_path: Path) -> psutil.Process | None:
    """The Ray worker (the model's actor) that started this test's fake vLLM server."""
    for proc in servers(tmp_path):
        try:
            if "vllm.entrypoints.openai.api_server" in " ".join(proc.cmdline()):
                return psutil.Process(proc.ppid())
        except psutil.Error:
            continue
    return None


def test_an_actor_killed_halfway_through_its_samples_is_rescheduled_and_finishes(
    cluster, tmp_path: Path, fake_vllm: Path
) -> None:
    # k = 2 samples of 6 problems, one request (n = 2) per problem; the first server answers 3 requests, then hangs
    config = fake_config(tmp_path, fake_vllm, keys=("fa",), parallel=1, samples=2, hang_after=3, datasets=ONE_DATASET)
    proc = orchestrate(tmp_path, config, *on_cluster(cluster), wait=False, limit=6)
    try:
        path = tmp_path / "results" / "details" / "fa" / "sample-math.jsonl"
        wait_for(lambda: path.is_file() and path.read_text().count("\n") >= 6, 300, "the first 6 answers")
        actor = wait_for(lambda: _actor_of_server(tmp_path), 60, "the actor of the fake server")
        assert path.read_text().count("\n") == 6  # half of the answers, every dataset with >= 6 of them
        actor.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
    assert proc.returncode == 0, out
    assert "rescheduling" in out and "no actor needed" not in out
    got = keys(tmp_path / "results", "fa", "sample-math")
    assert len(got) == len(set(got)) == 12 and set(got) == all_keys(6, 2)
    assert all(r["error"] is None for r in rows(tmp_path / "results", "fa", "sample-math"))
    assert len(manifest(tmp_path / "results")["models"]["fa"]["ray_nodes"]) == 2
    no_servers_left(tmp_path, timeout=60)


def test_dry_run_shows_what_each_model_asks_the_cluster_for(cluster, tmp_path: Path, fake_vllm: Path) -> None:
    config = fake_config(tmp_path, fake_vllm)
    proc = orchestrate(tmp_path, config, *on_cluster(cluster), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "fa: Ray actor asking for 1 fakegpu" in proc.stdout and "vllm.entrypoints.openai.api_server" in proc.stdout
    bad = orchestrate(tmp_path, config, *on_cluster(cluster, resource="nosuch"), "--dry-run")
    assert bad.returncode == 2 and "no node of the Ray cluster offers that" in bad.stderr


@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT"])
def test_driver_killed_or_interrupted_leaves_no_server_on_the_nodes(
    cluster, tmp_path: Path, fake_vllm: Path, how: str
) -> None:
    config = fake_config(tmp_path, fake_vllm, delay=600)  # the servers never get ready: stopped in startup
    proc = orchestrate(tmp_path, config, *on_cluster(cluster), wait=False)
    try:
        wait_for(lambda: len(servers(tmp_path)) >= 6, 120, "both fake servers (API + engine + guard) on the nodes")
        os.killpg(proc.pid, signal.SIGKILL if how == "SIGKILL" else signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
    if how == "SIGINT":
        assert proc.returncode == 130, out
        assert manifest(tmp_path / "results")["status"] == "interrupted"
    no_servers_left(tmp_path, timeout=60)


# -- real vLLM CPU servers; the second node dies mid-run ---------------------------------------------------------------

REAL_LIMIT = 4


def real_config(tmp_path: Path, model: Path) -> Path:
    blocks = "".join(
        f"{k}: {{model_name: {k}, vllm: {{model: {model}, max_model_len: 1024, startup_timeout: 600}}, "
        "parallel: 1, max_tokens: 96}\n"
        for k in ("tiny-a", "tiny-b")
    )
    path = tmp_path / "real.yaml"
    path.write_text(
        "model_list: [tiny-a, tiny-b]\n"
        + blocks
        + "datasets: {sample-math: {}, sample-physics: {}}\ntemperature: 0.0\n"
    )
    return path


def model_on_node(cluster, tmp: Path, index: int) -> str:
    """The model whose vLLM server runs on node ``index``: its parent, the actor's worker, logs under that node."""
    for proc in servers(tmp):
        try:
            cmd = proc.cmdline()
            worker_out = os.readlink(f"/proc/{proc.ppid()}/fd/1")
        except (OSError, psutil.Error):
            continue
        if "vllm.entrypoints.openai.api_server" in cmd and worker_out.startswith(f"{cluster.root}/n{index}/"):
            return cmd[cmd.index("--served-model-name") + 1]
    return ""


def _count(results: Path, model: str) -> int:
    if not model:
        return 0
    total = 0
    for dataset in ("sample-math", "sample-physics"):
        path = results / "details" / model / f"{dataset}.jsonl"
        total += path.read_text().count("\n") if path.exists() else 0
    return total


@pytest.fixture(scope="module")
def node_loss_run(cluster, tmp_path_factory, tiny_model: Path):
    """The two tiny models on the cluster; the second node's raylet is SIGKILLed once both have answered."""
    from tests.support.vllm_servers import vllm_available

    if not vllm_available():
        pytest.skip("vllm is not importable in this environment")
    tmp = tmp_path_factory.mktemp("ray-real")
    config = real_config(tmp, tiny_model)
    proc = orchestrate(tmp, config, *on_cluster(cluster), wait=False, limit=REAL_LIMIT)
    killed = threading.Event()
    try:
        wait_for(
            lambda: proc.poll() is not None or _count(tmp / "results", model_on_node(cluster, tmp, 1)) >= 1,
            600,
            "a first answer of the model on the second node",
        )
        if proc.poll() is None:
            cluster.kill_raylet(1)
            killed.set()
        out, _ = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
    return tmp, proc.returncode, out, killed.is_set()


@pytest.fixture(scope="module")
def local_real_run(tmp_path_factory, tiny_model: Path, node_loss_run):
    tmp = node_loss_run[0]
    proc = orchestrate(tmp, real_config(tmp, tiny_model), "--max-cpu-servers", "2", out="local", limit=REAL_LIMIT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return tmp / "local"


@pytest.mark.vllm
def test_losing_a_node_mid_run_finishes_on_the_head_with_each_problem_answered_once(cluster, node_loss_run) -> None:
    tmp, code, out, killed = node_loss_run
    assert killed and code == 0, out
    assert "rescheduling" in out
    results = tmp / "results"
    models = manifest(results)["models"]
    moved = [k for k in ("tiny-a", "tiny-b") if len(models[k]["ray_nodes"]) == 2]
    (stayed,) = [k for k in ("tiny-a", "tiny-b") if k not in moved]
    assert len(moved) == 1 and models[moved[0]]["ray_nodes"][1] == models[stayed]["ray_nodes"][0]  # the head
    for model in ("tiny-a", "tiny-b"):
        for dataset in ("sample-math", "sample-physics"):
            ids = answered(results, model, dataset)
            assert len(ids) == len(set(ids)) == REAL_LIMIT
            assert len(rows(results, model, dataset)) == REAL_LIMIT  # nothing asked twice, no error line
    no_servers_left(tmp, timeout=60)


@pytest.mark.vllm
def test_leaderboard_after_node_loss_matches_a_local_run(node_loss_run, local_real_run: Path) -> None:
    results = node_loss_run[0] / "results"
    assert board_content(results) == board_content(local_real_run)
    for model in ("tiny-a", "tiny-b"):
        for dataset in ("sample-math", "sample-physics"):
            assert answers(results, model, dataset) == answers(local_real_run, model, dataset)


def test_stopping_the_cluster_leaves_no_process(cluster) -> None:
    """Last test of the module: the cluster's own teardown (as the fixture does it) leaves nothing behind."""
    cluster.stop()
    assert cluster.leftovers() == []


def test_naming_the_node_outside_ray_starts_no_local_ray_instance() -> None:
    """``ray.get_runtime_context()`` without ``ray.init`` starts a local Ray (GCS, raylet, workers) in the caller."""
    ray = pytest.importorskip("ray")
    from orchestrator.ray.node import node_name

    assert node_name().endswith("(ray node -)") and not ray.is_initialized()
