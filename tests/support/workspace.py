"""A workspace for tests that drive the real CLI as a subprocess: a config whose model is served by the fake vLLM of
conftest (``fake_vllm``), a small dataset, results/ and logs/ directories, and a snapshot of every file.

Used by tests/integration/test_hostile_cli.py, test_security.py and test_status.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CLI_TIMEOUT = 300

GOOD = """\
model_list: [m]
m:
  model_name: m
  vllm: {{model: {model}, startup_timeout: 120, env: {{PYTHONPATH: {fake}}}}}
  parallel: 2
  max_tokens: 16
  temperature: 0.0
datasets:
  ds: {{path: {dataset}, domain: math}}
"""
ROWS = [{"id": f"q{i}", "task": f"Сколько будет 2+{i}?", "answer": str(2 + i)} for i in range(6)]


def jsonl(*rows: dict) -> bytes:
    """Rows as JSONL bytes (UTF-8, one object per line)."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` -> its bytes (None for a directory)."""
    return {str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes()) for p in sorted(root.rglob("*"))}


@dataclass
class Workspace:
    """``root`` holds run.yaml, results/ and logs/; ``assets`` the model and the good dataset (shared between
    copies: a series' settings hash includes the model path)."""

    root: Path
    fake: Path
    assets: Path

    @property
    def results(self) -> Path:
        return self.root / "results"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def config(self) -> Path:
        return self.root / "run.yaml"

    def good(self, dataset: Path | None = None) -> str:
        """The valid config text (its `ds` dataset at ``dataset`` if given)."""
        return GOOD.format(model=self.assets / "model", fake=self.fake, dataset=dataset or self.assets / "ds.jsonl")

    def command(self, *args: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "orchestrator.cli",
            "run",
            "--config",
            str(self.config),
            "--results-dir",
            str(self.results),
            "--logs-dir",
            str(self.logs),
            *args,
        ]

    def environment(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "VLLM_API_KEY"}
        return {**env, "PYTHONPATH": str(REPO), **(extra or {})}

    def cli(
        self, *args: str, env: dict[str, str] | None = None, preexec: Callable[[], None] | None = None
    ) -> subprocess.CompletedProcess:
        """Run ``deathmath-orchestrate run`` with this workspace's config and directories; wait for it."""
        return subprocess.run(
            self.command(*args),
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            env=self.environment(env),
            preexec_fn=preexec,
        )

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        """The same, started in the background (its own session)."""
        return subprocess.Popen(
            self.command(*args),
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.environment(env),
            start_new_session=True,
        )

    def details(self, dataset: str = "ds", model: str = "m") -> list[dict[str, Any]]:
        """The parsed lines of a details file."""
        path = self.results / "details" / model / f"{dataset}.jsonl"
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def make_workspace(root: Path, fake: Path, assets: Path) -> Workspace:
    """A fresh workspace: the model directory and dataset under ``assets``, the good config under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    (assets / "model").mkdir(parents=True)
    (assets / "model" / "config.json").write_text("{}")
    (assets / "ds.jsonl").write_bytes(jsonl(*ROWS))
    ws = Workspace(root, fake, assets)
    ws.config.write_text(ws.good())
    return ws
