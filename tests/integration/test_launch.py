"""The one launch (``serving/launch.py``): what ``--dry-run`` prints is what a spawned server runs.

The end-to-end check runs a config on the fake vLLM of ``conftest.py`` through ``LocalBackend`` -- the path of a real
run -- and compares the argv and environment of the spawned API process, read back from the process table with
psutil, with the dry-run text of the same config (``LocalBackend.plan`` + ``render``: what ``--dry-run`` prints).
"""

from __future__ import annotations

import shlex
import socket
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import psutil

from orchestrator.backend import LocalBackend
from orchestrator.config import load_config
from orchestrator.contract import ProgressStatus, ServerSpec
from orchestrator.datasets import REGISTRY, load
from orchestrator.job import DatasetRun, RunContext
from orchestrator.serving.launch import ANY_PORT, environment, launch_spec, shown_command, shown_words
from orchestrator.serving.server import start_server
from orchestrator.serving.signals import ServerGroup

SERVER_LINE_PREFIX = "    "


class QuietProgress:
    """A progress sink that shows nothing."""

    def set_status(self, model: str, status: ProgressStatus) -> None: ...
    def add_total(self, model: str, n: int) -> None: ...
    def sync(self, model: str, dataset: str, done: int, correct: int) -> None: ...
    def record(self, model: str, dataset: str, *, correct: bool, tokens: int, error: bool) -> None: ...
    def set_download(self, label: str, text: str | None) -> None: ...
    def note_error(self, model: str, message: str) -> None: ...


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fake_config(tmp_path: Path, fake_vllm: Path, port: int) -> Path:
    """One managed model on the fake vLLM with a fixed port, TP 2 on the CPU, queue-ahead and args of its own."""
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    path = tmp_path / "run.yaml"
    path.write_text(
        textwrap.dedent(f"""
        model_list: [a]
        a:
          parallel: 3
          vllm:
            model: {tmp_path / "m"}
            python: {sys.executable}
            port: {port}
            tensor_parallel_size: 2
            queue_ahead: 1
            max_model_len: 2048
            args: [--dtype, float32]
            env: {{PYTHONPATH: {fake_vllm}, FAKE_VLLM_DELAY: "0"}}
        """),
        encoding="utf-8",
    )
    return path


def test_the_dry_run_command_is_the_argv_of_the_spawned_server(tmp_path: Path, fake_vllm: Path) -> None:
    models = load_config(fake_config(tmp_path, fake_vllm, free_port())).models
    backend = LocalBackend(models, None, 1, python=sys.executable)
    backend.reserve(tmp_path / "logs")
    try:
        placements = backend.plan(models, {})
        text = backend.render(placements)
        seen: dict[str, Any] = {}

        def watched_start(spec: ServerSpec, run_id: str, logs_dir: Path, **kw: Any) -> Any:
            server = start_server(spec, run_id, logs_dir, **kw)
            proc = psutil.Process(server.pid)
            seen.update(argv=proc.cmdline(), env=proc.environ())
            return server

        problems = tuple(load(REGISTRY["sample-math"], limit=2))
        ctx = RunContext(
            run_id="launch-test",
            results_dir=tmp_path / "results",
            logs_dir=tmp_path / "logs",
            datasets=[DatasetRun(spec=REGISTRY["sample-math"], problems=problems, version="v1")],
            stop=threading.Event(),
            progress=QuietProgress(),
            servers=ServerGroup(),
            start_server=watched_start,
        )
        outcome = backend.run(ctx, placements, ctx.stop)["a"]
    finally:
        backend.close()
    assert getattr(outcome, "status", outcome) == "finished"
    (line,) = [s for s in text.splitlines() if s.startswith(SERVER_LINE_PREFIX) and "vllm.entrypoints" in s]
    words = shlex.split(line)
    first = words.index(sys.executable)
    env_words, argv = words[:first], words[first:]
    assert seen["argv"] == argv  # word for word, port included
    assert "--tensor-parallel-size" in argv and "--max-num-seqs" in argv and argv[-2:] == ["--dtype", "float32"]
    shown_env = dict(w.split("=", 1) for w in env_words)
    assert shown_env == {k: seen["env"][k] for k in shown_env}
    assert {"PYTHONPATH", "CUDA_VISIBLE_DEVICES", "VLLM_CPU_OMP_THREADS_BIND"} <= set(shown_env)


def test_the_launch_keeps_the_planned_port_and_pins_a_gpu_server_in_nvidia_smi_numbering() -> None:
    planned = ServerSpec(name="m", model="/m", served_name="m", port=8123)
    spec = launch_spec(planned, (2, 3))
    assert spec is not None and spec.port == 8123
    env = environment(spec, "r", "s", 20000, None, base={})
    assert (env["CUDA_DEVICE_ORDER"], env["CUDA_VISIBLE_DEVICES"]) == ("PCI_BUS_ID", "2,3")
    assert shown_words(spec)[:2] == ["CUDA_DEVICE_ORDER=PCI_BUS_ID", "CUDA_VISIBLE_DEVICES=2,3"]


def test_a_port_the_server_picks_at_start_is_shown_as_such_and_never_as_0() -> None:
    words = shown_command(ServerSpec(name="m", model="/m", served_name="m"))
    assert words[words.index("--port") + 1] == ANY_PORT and "0" not in words
