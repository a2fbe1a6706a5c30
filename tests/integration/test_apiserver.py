"""vLLM's API front-end count (``orchestrator/apiserver.py``): what the config says, which command a server starts
with, and that the launcher for several API processes really parses with the installed vLLM."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from orchestrator.config import load_config
from orchestrator.contract import ServerSpec
from orchestrator.serving import apiserver
from orchestrator.serving.launch import api_servers, command, server_spec


def _spec(gpus: tuple[int, ...], api_server_count: int | None = None, args: tuple[str, ...] = ()) -> ServerSpec:
    return ServerSpec(
        name="m",
        model="/models/m",
        served_name="m",
        port=8100,
        python="py",
        gpus=gpus,
        api_server_count=api_server_count,
        args=args,
    )


def test_one_api_process_keeps_the_openai_module_and_adds_no_flag() -> None:
    cmd = command(_spec(gpus=(0,), api_server_count=1))
    assert cmd[:3] == ["py", "-m", "vllm.entrypoints.openai.api_server"]
    assert apiserver.FLAG not in cmd


def test_several_api_processes_start_through_vllms_serve_path_with_the_flag() -> None:
    cmd = command(_spec(gpus=(0,), api_server_count=4, args=("--max-num-seqs", "256")))
    assert cmd[:3] == ["py", "-c", apiserver.SERVE_LAUNCHER]
    assert cmd[cmd.index(apiserver.FLAG) + 1] == "4" and cmd[-2:] == ["--max-num-seqs", "256"]
    assert cmd[cmd.index("--port") + 1] == "8100"


def test_without_a_setting_gpu_servers_get_the_default_and_cpu_servers_one() -> None:
    assert api_servers(_spec(gpus=(0, 1))) == apiserver.DEFAULT_GPU_API_SERVERS
    assert api_servers(_spec(gpus=())) == 1
    assert api_servers(_spec(gpus=(), api_server_count=3)) == 3


def test_the_config_setting_reaches_the_planned_server(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    path = tmp_path / "run.yaml"
    path.write_text(
        textwrap.dedent(f"""
        model_list: [a, b]
        a: {{vllm: {{model: {tmp_path / "m"}, api_server_count: 2}}}}
        b: {{vllm: {{model: {tmp_path / "m"}}}}}
    """),
        encoding="utf-8",
    )
    a, b = load_config(path).models
    assert a.vllm is not None and a.vllm.api_server_count == 2 and b.vllm is not None
    assert b.vllm.api_server_count is None
    spec = server_spec(a, (0,), 8100, "py")
    assert spec is not None and api_servers(spec) == 2 and apiserver.FLAG in command(spec)


def test_the_launcher_builds_vllms_serve_parser_with_the_installed_vllm() -> None:
    run = subprocess.run(
        [sys.executable, "-c", apiserver.SERVE_LAUNCHER, "--help=api-server-count"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Arguments matching 'api-server-count'" in run.stdout and f"{apiserver.FLAG} API_SERVER_COUNT" in run.stdout
