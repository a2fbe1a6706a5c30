"""The CLI surface: the default command, --dry-run, the original runner.py entry point, exit codes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from click.testing import CliRunner

from orchestrator.cli import main

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
import runner as original_runner  # noqa: E402  (the top-level runner.py script imports only once ROOT is on sys.path)


def test_runner_py_maps_original_flags() -> None:
    assert original_runner.translate([]) == ["run", "--config", "configs/run.yaml", "--dataset", "all"]
    assert original_runner.translate(
        ["--config", "c.yaml", "--dataset", "physics", "--no-cache", "--max-workers", "8"]
    ) == ["run", "--config", "c.yaml", "--dataset", "physics", "--fresh", "--parallel", "8"]


def _config(tmp_path: Path, model_dir: Path) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(
        textwrap.dedent(f"""
        model_list: [big, small, api]
        big: {{vllm: {{model: {model_dir}, tensor_parallel_size: 2}}}}
        small: {{vllm: {{model: {model_dir}}}}}
        api: {{endpoints: [{{api_base: "http://127.0.0.1:9/v1", api_key: "sk-dry-run-secret"}}]}}
        datasets: {{sample-math: {{}}}}
    """)
    )
    return path


def test_dry_run_prints_plan_and_starts_nothing(tmp_path: Path) -> None:
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    result = CliRunner().invoke(
        main,
        [
            "--config",
            str(_config(tmp_path, model_dir)),
            "--dry-run",
            "--gpus",
            "0,1",
            "--results-dir",
            str(tmp_path / "r"),
        ],
    )
    # no GPU here: --gpus with a dry run plans on the given indices without touching them
    assert result.exit_code == 0, result.output
    assert "big: GPUs 0,1" in result.output and "--tensor-parallel-size 2" in result.output
    assert "small: GPUs" in result.output and "api: API model" in result.output
    assert "sk-dry-run-secret" not in result.output
    assert not (tmp_path / "r").exists()


def test_dry_run_too_many_gpus_is_exit_2(tmp_path: Path) -> None:
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    result = CliRunner().invoke(main, ["--config", str(_config(tmp_path, model_dir)), "--dry-run", "--gpus", "0"])
    assert result.exit_code == 2 and "needs 2 GPUs" in result.output and "Traceback" not in result.output


def test_runner_py_help_runs_from_checkout() -> None:
    proc = subprocess.run([sys.executable, "runner.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "--no-cache" in proc.stdout and "--max-workers" in proc.stdout
