"""``nvidia-smi`` for the GPU scenarios: memory per GPU, compute processes, and which managed server holds which GPU.

A compute process belongs to a server when its session id is the server's process group (vLLM's engine and worker
processes stay in the session that the orchestrator gave the API server); the servers are read from the
orchestrator's state file ``<logs>/servers.json`` while they run. ``Sampler`` polls once a second and ``analyse``
finds double-booked GPUs, where each server ran and when. ``install_fake`` writes the ``nvidia-smi`` of a CPU dry run.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psutil

from orchestrator.serving.records import StateFile

log = logging.getLogger(__name__)
SMI_TIMEOUT = 15.0
GPU_FIELDS = ("index", "uuid", "name", "memory.used", "memory.total")
APP_FIELDS = ("pid", "used_memory", "gpu_uuid")


class SmiError(RuntimeError):
    """nvidia-smi is missing, failed or hung."""


def _query(flag: str, fields: Iterable[str]) -> list[list[str]]:
    argv = ["nvidia-smi", f"--query-{flag}={','.join(fields)}", "--format=csv,noheader,nounits"]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=SMI_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SmiError(f"{' '.join(argv)}: {exc}") from None
    if proc.returncode != 0:
        raise SmiError(f"{' '.join(argv)} exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()[:200]}")
    return [
        [part.strip() for part in line.split(",")]
        for line in proc.stdout.splitlines()
        if line.strip() and "No running processes" not in line
    ]


def _int(text: str) -> int:
    try:
        return int(float(text))
    except ValueError:
        return 0


def gpus() -> list[dict[str, Any]]:
    """Every GPU: index, uuid, name, used and total MiB."""
    return [
        {
            "index": _int(r[0]),
            "uuid": r[1],
            "name": ", ".join(r[2:-2]),
            "used_mib": _int(r[-2]),
            "total_mib": _int(r[-1]),
        }
        for r in _query("gpu", GPU_FIELDS)
        if len(r) >= 5
    ]


def apps() -> list[dict[str, Any]]:
    """Every compute process: pid, used MiB, GPU uuid."""
    return [
        {"pid": _int(r[0]), "used_mib": _int(r[1]), "gpu_uuid": r[2]}
        for r in _query("compute-apps", APP_FIELDS)
        if len(r) >= 3
    ]


def snapshot() -> dict[str, Any]:
    """GPUs and compute processes now; ``error`` instead when nvidia-smi fails."""
    try:
        return {"t": time.time(), "gpus": gpus(), "apps": apps()}
    except SmiError as exc:
        return {"t": time.time(), "gpus": [], "apps": [], "error": str(exc)}


def used_by_index(snap: dict[str, Any]) -> dict[int, int]:
    return {g["index"]: g["used_mib"] for g in snap["gpus"]}


class Servers:
    """The servers recorded in the state files of ``logs_dirs``, remembered after their records go."""

    def __init__(self, logs_dirs: Iterable[Path], env_keys: Iterable[str] = ()) -> None:
        self.states = [StateFile(Path(d)) for d in logs_dirs]
        self.by_pgid: dict[int, dict[str, Any]] = {}
        self.env_keys = tuple(env_keys)
        self.envs: dict[str, dict[str, str]] = {}  # server name -> env_keys of its API process
        self.unreadable: list[str] = []

    def refresh(self) -> None:
        for state in self.states:
            try:
                records = state.records()
            except Exception as exc:  # noqa: BLE001 -- a sample is skipped, never the run
                log.debug("state file %s unreadable: %s", state.path, exc)
                continue
            for rec in records:
                if rec.pgid not in self.by_pgid:
                    self.by_pgid[rec.pgid] = {
                        "name": rec.name,
                        "gpus": list(rec.gpus),
                        "pid": rec.pid,
                        "port": rec.port,
                        "log": rec.log_path,
                    }
                    self._read_env(rec.name, rec.pid)

    def _read_env(self, name: str, pid: int) -> None:
        """The API process's environment, read as soon as it is seen (before vLLM retitles anything)."""
        if not self.env_keys:
            return
        try:
            env = psutil.Process(pid).environ()
        except psutil.Error:
            env = {}
        if "DEATHMATH_SERVER_ID" in env:
            self.envs[name] = {k: env[k] for k in self.env_keys if k in env}
        else:
            self.unreadable.append(name)

    def owner(self, pid: int) -> str:
        """The server name of ``pid`` (by its session), ``other:<pid>`` for anything else, ``gone:<pid>``."""
        try:
            sid = os.getsid(pid)
        except (ProcessLookupError, PermissionError):
            return f"gone:{pid}"
        server = self.by_pgid.get(sid)
        return server["name"] if server else f"other:{pid}"


def attribute(snap: dict[str, Any], servers: Servers) -> dict[int, list[str]]:
    """GPU index -> sorted owners of its compute processes."""
    index_of = {g["uuid"]: g["index"] for g in snap["gpus"]}
    owners: dict[int, set[str]] = {g["index"]: set() for g in snap["gpus"]}
    for app in snap["apps"]:
        owners.setdefault(index_of.get(app["gpu_uuid"], -1), set()).add(servers.owner(app["pid"]))
    return {index: sorted(names) for index, names in owners.items()}


class Sampler(threading.Thread):
    """Polls nvidia-smi every ``interval`` seconds; each sample: time, MiB used per GPU, owners per GPU."""

    def __init__(
        self, logs_dirs: Iterable[Path], path: Path, interval: float = 1.0, env_keys: Iterable[str] = ()
    ) -> None:
        super().__init__(name="gpu-sampler", daemon=True)
        self.servers = Servers(logs_dirs, env_keys)
        self.path, self.interval = path, interval
        self.samples: list[dict[str, Any]] = []
        self.errors = 0
        self._stop_event = threading.Event()
        self.t0 = time.time()

    def run(self) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            while not self._stop_event.is_set():
                self.servers.refresh()
                snap = snapshot()
                if "error" in snap:
                    self.errors += 1
                else:
                    sample = {
                        "t": round(snap["t"] - self.t0, 2),
                        "used_mib": used_by_index(snap),
                        "owners": attribute(snap, self.servers),
                    }
                    self.samples.append(sample)
                    fh.write(json.dumps(sample) + "\n")
                    fh.flush()
                self._stop_event.wait(self.interval)

    def stop(self, timeout: float = 30.0) -> None:
        self._stop_event.set()
        self.join(timeout)

    def __enter__(self) -> Sampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def analyse(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Double bookings (a GPU with processes of two servers in one sample) and, per server, the GPUs it was seen
    on and its first and last sample time."""
    double: list[dict[str, Any]] = []
    seen: dict[str, dict[str, Any]] = {}
    peak: dict[int, int] = {}
    for sample in samples:
        for index, owners in sample["owners"].items():
            index = int(index)
            named = [o for o in owners if not o.startswith(("other:", "gone:"))]
            if len(named) > 1:
                double.append({"t": sample["t"], "gpu": index, "servers": named})
            for name in named:
                entry = seen.setdefault(name, {"gpus": [], "first": sample["t"], "last": sample["t"]})
                entry["gpus"] = sorted(set(entry["gpus"]) | {index})
                entry["last"] = sample["t"]
        for index, used in sample["used_mib"].items():
            peak[int(index)] = max(peak.get(int(index), 0), used)
    return {
        "samples": len(samples),
        "double_booked": double[:20],
        "double_booked_count": len(double),
        "servers": seen,
        "peak_used_mib": peak,
    }


def overlap(seen: dict[str, dict[str, Any]], a: str, b: str) -> float:
    """Seconds during which both servers held GPUs (0 when either was never seen)."""
    if a not in seen or b not in seen:
        return 0.0
    return max(0.0, min(seen[a]["last"], seen[b]["last"]) - max(seen[a]["first"], seen[b]["first"]))


# ---------------------------------------------------------------------------------------------------- the fake

FAKE_SMI = r'''#!{python}
"""nvidia-smi of a CPU dry run: {count} fake GPUs. A process with FAKE_SMI_TAG={tag} in its environment holds fake
GPU memory when its environment also has DEATHMATH_SERVER_ID and CUDA_VISIBLE_DEVICES (a managed server: {app_mib}
MiB on each of its GPUs) or FAKE_SMI_HOLD=<index>:<MiB> (a stand-in for another program's memory)."""
import os, sys
COUNT, TOTAL, APP_MIB, TAG = {count}, {total}, {app_mib}, {tag!r}

def environ(pid):
    try:
        raw = open(f"/proc/{{pid}}/environ", "rb").read()
    except OSError:
        return {{}}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {{k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}}

def held():
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        env = environ(name)
        if env.get("FAKE_SMI_TAG") != TAG:
            continue
        if env.get("DEATHMATH_SERVER_ID") and env.get("CUDA_VISIBLE_DEVICES"):
            for gpu in env["CUDA_VISIBLE_DEVICES"].split(","):
                if gpu.strip().isdigit() and int(gpu) < COUNT:
                    yield int(name), int(gpu), APP_MIB
        elif env.get("FAKE_SMI_HOLD"):
            gpu, mib = env["FAKE_SMI_HOLD"].split(":")
            yield int(name), int(gpu), int(mib)

def uuid(i):
    return f"GPU-{{TAG}}-{{i:04d}}"

args = sys.argv[1:]
query = next((a for a in args if a.startswith("--query-")), "")
fields = query.split("=", 1)[1].split(",") if "=" in query else []
apps = list(held())
rows = []
if query.startswith("--query-gpu"):
    for i in range(COUNT):
        used = sum(m for _, g, m in apps if g == i)
        values = {{"index": i, "uuid": uuid(i), "name": "Fake GPU (CPU dry run)", "memory.total": TOTAL,
                  "memory.used": used, "memory.free": TOTAL - used}}
        rows.append([values.get(f, "[N/A]") for f in fields])
elif query.startswith("--query-compute-apps"):
    for pid, gpu, mib in apps:
        values = {{"pid": pid, "used_memory": mib, "gpu_uuid": uuid(gpu), "process_name": "python"}}
        rows.append([values.get(f, "[N/A]") for f in fields])
else:
    print("fake nvidia-smi: only --query-gpu and --query-compute-apps", file=sys.stderr)
    sys.exit(2)
for row in rows:
    print(", ".join(str(v) for v in row))
'''


def install_fake(bindir: Path, count: int = 2, total_mib: int = 81559, app_mib: int = 20000) -> str:
    """Write the dry run's ``nvidia-smi`` into ``bindir`` (put it first on PATH) and return its tag: it sees only
    processes with ``FAKE_SMI_TAG=<tag>`` in their environment (set it in yours: children inherit it), so dry runs
    and tests side by side do not see each other's processes."""
    bindir.mkdir(parents=True, exist_ok=True)
    tag = f"dryrun{os.getpid()}-{time.time_ns()}"
    script = bindir / "nvidia-smi"
    script.write_text(
        FAKE_SMI.format(python=sys.executable, count=count, total=total_mib, app_mib=app_mib, tag=tag), encoding="utf-8"
    )
    script.chmod(0o755)
    return tag
