"""The orchestrator scenarios on GPUs, each through ``python -m orchestrator.cli`` itself (no hand-started server):

* s1  -- two managed TP=1 models on ``--gpus 0``: one after the other, leaderboard written, no GPU process left.
* s2  -- TP=2 + TP=1 + TP=1 on ``--gpus 0,1``: the TP=1 pair side by side, the TP=2 model on both, no double booking.
* s3a -- SIGKILL of the orchestrator mid-run, then ``cleanup``: GPU memory back to what it was before.
* s3b -- models that cannot fit (too much ``gpu_memory_utilization`` next to another program's memory, a
  ``max_model_len`` no KV cache can hold) fail with their cause named; the model that fits finishes; exit code 1.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import requests

from orchestrator.serving import logcause

from . import smi
from .common import (
    SAFETY_ENV,
    Child,
    Deadline,
    Profile,
    Recorder,
    Skip,
    gib,
    manifest,
    parse_summary,
    run_cli,
    write_config,
)

SAMPLES = {"sample-math": {}, "sample-physics": {}}
HOLD_FRACTION = 0.42  # another program's share of GPU 1 in s3b: under the orchestrator's busy mark (0.5)
MEMORY_SLACK_MIB = 512  # "back to what it was before": within this much
_HOLD = """
import sys, time, torch
frac, secs = float(sys.argv[1]), float(sys.argv[2])
free, total = torch.cuda.mem_get_info()
block = torch.empty(int(total * frac), dtype=torch.uint8, device="cuda")
block.fill_(1)
torch.cuda.synchronize()
print(f"holding {block.numel() / 2**30:.1f} of {total / 2**30:.1f} GiB", flush=True)
time.sleep(secs)
"""
_HOLD_FAKE = "import sys, time; print('holding (fake)', flush=True); time.sleep(float(sys.argv[2]))"


# ---------------------------------------------------------------------------------------------------- helpers


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def need_gpus(count: int) -> list[dict[str, Any]]:
    found = smi.snapshot()
    if "error" in found:
        raise Skip(f"nvidia-smi: {found['error']}")
    if len(found["gpus"]) < count:
        raise Skip(f"needs {count} GPUs, this machine has {len(found['gpus'])}")
    return found["gpus"]


def orchestrate(
    p: Profile, rec: Recorder, d: Path, cfg: Path, gpus: str, timeout: float
) -> tuple[int | None, dict[str, dict[str, str]]]:
    """Run the orchestrator on ``cfg`` (bounded); (exit code or None on timeout, its summary per model)."""
    args = [
        "run",
        "--config",
        str(cfg),
        "--gpus",
        gpus,
        "--dataset",
        "all",
        "--results-dir",
        str(d / "results"),
        "--logs-dir",
        str(d / "logs"),
        "-v",
    ]
    rec.log(f"orchestrator: {' '.join(args)} (timeout {timeout:.0f} s)")
    code, text = run_cli(p.python, args, d / "orchestrator.log", timeout)
    summary = parse_summary(text)
    rec.log(f"orchestrator exited {code}; " + "; ".join(f"{k} {v['status']}" for k, v in summary.items()))
    for key, entry in summary.items():
        if entry["error"]:
            rec.log(f"  {key}: {entry['error'][:600]}")
    return code, summary


def statuses(summary: dict[str, dict[str, str]]) -> str:
    return (
        ", ".join(
            f"{k} {v['status']}" + (f" ({v['error'][:300]})" if v["error"] and v["status"] != "failed" else "")
            for k, v in summary.items()
        )
        or "no summary printed"
    )


def placement_seen(rec: Recorder, seen: dict[str, Any]) -> None:
    """Say so when nvidia-smi showed memory in use but listed no compute process (placement then unobservable)."""
    if not seen["servers"] and seen["samples"]:
        rec.note(
            f"nvidia-smi listed no compute process of a server in {seen['samples']} samples (peak MiB used "
            f"per GPU: {seen['peak_used_mib']}): where each server ran could not be observed"
        )


def record_timings(rec: Recorder, d: Path) -> None:
    """Per-model start-up, dataset and teardown seconds from the run manifest."""
    data = manifest(d / "results")
    rec.figure("timings_s", data.get("timings", {}))
    rec.figure("manifest_gpus", data.get("gpus", []))


def server_env_check(rec: Recorder, servers: smi.Servers) -> None:
    """The parent environment reached every server (read from its API process while it ran)."""
    envs = servers.envs
    missing = {name: {k: env.get(k) for k in SAFETY_ENV if env.get(k) != SAFETY_ENV[k]} for name, env in envs.items()}
    bad = {name: m for name, m in missing.items() if m}
    rec.check(
        "the servers inherited the safety environment (NCCL_NVLS_ENABLE=0, ...)",
        bool(envs) and not bad,
        f"read from {len(envs)} server(s)"
        + (f"; wrong: {bad}" if bad else "")
        + (f"; unreadable: {servers.unreadable}" if servers.unreadable else ""),
    )


def leftovers(servers: smi.Servers) -> list[int]:
    """Live processes in the sessions of the servers seen."""
    sessions = set(servers.by_pgid)
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getsid(proc.info["pid"]) in sessions and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc.info["pid"])
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return found


def reap(servers: smi.Servers) -> None:
    """Last resort at the end of a scenario: SIGKILL every session of a server seen."""
    for pgid in servers.by_pgid:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def wait_memory_back(
    before: dict[int, int],
    timeout: float,
    gpus: tuple[int, ...] | None = None,
) -> dict[str, Any]:
    """Poll until every GPU (of ``gpus``) uses at most its ``before`` + slack and runs no compute process."""
    deadline = time.monotonic() + timeout
    while True:
        snap = smi.snapshot()
        used = smi.used_by_index(snap)
        mine = {g["uuid"] for g in snap["gpus"] if gpus is None or g["index"] in gpus}
        apps = [a for a in snap["apps"] if a["gpu_uuid"] in mine]
        back = all(used.get(i, 0) <= before.get(i, 0) + MEMORY_SLACK_MIB for i in used if gpus is None or i in gpus)
        if (back and not apps and "error" not in snap) or time.monotonic() >= deadline:
            return {"used_mib": used, "apps": apps, "back": back, "error": snap.get("error")}
        time.sleep(1.0)


@dataclass
class Watched:
    """One orchestrator run under observation: its exit and summary, what nvidia-smi showed, what was left."""

    code: int | None
    summary: dict[str, dict[str, str]]
    seen: dict[str, Any]
    servers: smi.Servers
    left: list[int]
    after: dict[str, Any] | None  # memory once the run ended (None: not waited for)


def watched_run(
    p: Profile, dl: Deadline, rec: Recorder, d: Path, cfg: Path, gpus: str, before: dict[str, Any] | None = None
) -> Watched:
    """Sampler -> orchestrate -> (wait for GPU memory back to ``before``) -> leftovers -> reap -> analyse."""
    sampler = smi.Sampler([d / "logs"], d / "samples.jsonl", env_keys=SAFETY_ENV)
    after = None
    with sampler:
        try:
            code, summary = orchestrate(p, rec, d, cfg, gpus, dl.cap(p.run_timeout))
        finally:
            if before is not None:
                after = wait_memory_back(smi.used_by_index(before), dl.cap(30, margin=5))
            left = leftovers(sampler.servers)
            reap(sampler.servers)
    seen = smi.analyse(sampler.samples)
    placement_seen(rec, seen)
    return Watched(code, summary, seen, sampler.servers, left, after)


def check_no_leftovers(rec: Recorder, left: list[int]) -> None:
    rec.check("no server process is left after the orchestrator exits", not left, f"pids {left}" if left else "")


# ---------------------------------------------------------------------------------------------------- s1


def s1(p: Profile, dl: Deadline, rec: Recorder) -> None:
    """Two managed models on one GPU, one after the other; leaderboard; nothing left on the GPU."""
    dl.need(150 if not p.dry_run else 240, "s1")
    need_gpus(1)
    d = fresh(p.work / "s1")
    cfg = write_config(
        d / "run.yaml",
        {"llama-a": p.model_block("gpu-llama-a"), "llama-b": p.model_block("gpu-llama-b")},
        SAMPLES,
        num_examples=p.limit,
    )
    before = smi.snapshot()
    rec.figure("memory_before_mib", smi.used_by_index(before))
    run = watched_run(p, dl, rec, d, cfg, "0", before)
    code, summary, seen, after, left = run.code, run.summary, run.seen, run.after or {}, run.left
    rec.figure("gpu_samples", {k: v for k, v in seen.items() if k != "double_booked"})
    rec.figure("memory_after_mib", after["used_mib"])
    rec.check("exit code 0", code == 0, f"exit {code}")
    rec.check(
        "both models finished",
        all(summary.get(k, {}).get("status") == "finished" for k in ("llama-a", "llama-b")),
        statuses(summary),
    )
    board = d / "results" / "leaderboard.md"
    text = board.read_text(encoding="utf-8") if board.exists() else ""
    rec.check("leaderboard written with both models", "llama-a" in text and "llama-b" in text, str(board))
    rec.check(
        "each server ran on GPU 0 only",
        bool(seen["servers"]) and all(v["gpus"] == [0] for v in seen["servers"].values()),
        json.dumps(seen["servers"]),
    )
    rec.check(
        "one after the other (never both on the GPU)",
        smi.overlap(seen["servers"], "llama-a", "llama-b") == 0 and seen["double_booked_count"] == 0,
        f"{seen['double_booked_count']} double-booked sample(s)",
    )
    rec.check(
        "nvidia-smi --query-compute-apps lists nothing after the run",
        not after["apps"] and not after["error"],
        json.dumps(after["apps"]) + (after["error"] or ""),
    )
    server_env_check(rec, run.servers)
    check_no_leftovers(rec, left)
    record_timings(rec, d)


# ---------------------------------------------------------------------------------------------------- s2


def s2(p: Profile, dl: Deadline, rec: Recorder) -> None:
    """TP=2 + TP=1 + TP=1 on two GPUs: the pair side by side, TP=2 on both, no GPU double-booked."""
    dl.need(200 if not p.dry_run else 400, "s2")
    need_gpus(2)
    d = fresh(p.work / "s2")
    tp2_args = ["--tensor-parallel-size", "1"] if p.dry_run else []  # the CPU stand-in runs one worker
    models = {
        "tp2": p.model_block("gpu-tp2", tensor_parallel_size=2, args=tp2_args),
        "pair-a": p.model_block("gpu-pair-a"),
        "pair-b": p.model_block("gpu-pair-b"),
    }
    cfg = write_config(d / "run.yaml", models, SAMPLES, num_examples=p.limit)
    run = watched_run(p, dl, rec, d, cfg, "0,1", smi.snapshot())
    code, summary, seen, after, left = run.code, run.summary, run.seen, run.after or {}, run.left
    servers = seen["servers"]
    rec.figure("gpu_samples", seen)
    rec.figure("assigned_gpus", {v["name"]: v["gpus"] for v in run.servers.by_pgid.values()})
    rec.check("exit code 0", code == 0, f"exit {code}")
    rec.check(
        "all three models finished",
        all(summary.get(k, {}).get("status") == "finished" for k in models),
        statuses(summary),
    )
    rec.check(
        "no GPU double-booked",
        seen["double_booked_count"] == 0 and seen["samples"] > 0,
        f"{seen['samples']} samples, {seen['double_booked_count']} double-booked: {seen['double_booked'][:3]}",
    )
    rec.check(
        "the TP=2 model ran on both GPUs", servers.get("tp2", {}).get("gpus") == [0, 1], json.dumps(servers.get("tp2"))
    )
    pair = [servers.get(k, {}).get("gpus") for k in ("pair-a", "pair-b")]
    rec.check(
        "the TP=1 pair ran on one GPU each, different ones",
        all(g and len(g) == 1 for g in pair) and pair[0] != pair[1],
        json.dumps(pair),
    )
    both = smi.overlap(servers, "pair-a", "pair-b")
    rec.figure("pair_overlap_s", both)
    rec.check("the TP=1 pair ran side by side (overlap in time)", both > 0, f"{both:.0f} s together")
    assigned = {v["name"]: v["gpus"] for v in run.servers.by_pgid.values()}
    rec.check(
        "every server stayed on the GPUs it was given (CUDA_VISIBLE_DEVICES)",
        all(set(v["gpus"]) <= set(assigned.get(k, [])) for k, v in servers.items()),
        json.dumps(assigned),
    )
    rec.check("nothing left on the GPUs after the run", not after["apps"], json.dumps(after["apps"]))
    server_env_check(rec, run.servers)
    check_no_leftovers(rec, left)
    record_timings(rec, d)


# ---------------------------------------------------------------------------------------------------- s3a


def load_dataset(path: Path, count: int) -> dict[str, Any]:
    """A long local dataset (so the servers are mid-run when the orchestrator is killed)."""
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(count):
            fh.write(
                json.dumps(
                    {"id": f"L{i}", "task": f"Найдите {i} + {i + 1}.", "answer": str(2 * i + 1)}, ensure_ascii=False
                )
                + "\n"
            )
    return {"load-math": {"path": str(path), "domain": "math", "question": "task", "answer": "answer", "id": "id"}}


def wait_healthy(servers: smi.Servers, expect: int, timeout: float, rec: Recorder) -> float | None:
    """Wait until ``expect`` recorded servers answer /health (or 60 s after the first did); when the first did."""
    deadline, first = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        servers.refresh()
        healthy = [s["name"] for s in servers.by_pgid.values() if _healthy(s["port"])]
        if healthy and first is None:
            first = time.monotonic()
            rec.log(f"first healthy server: {healthy}")
        if len(healthy) >= expect or (first is not None and time.monotonic() - first > 60):
            rec.log(f"healthy: {healthy}")
            return first
        time.sleep(1.0)
    return first


def _healthy(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def s3a(p: Profile, dl: Deadline, rec: Recorder) -> None:
    """SIGKILL the orchestrator mid-run; its servers live on; ``cleanup`` brings GPU memory back."""
    dl.need(100 if not p.dry_run else 300, "s3a")
    need_gpus(2)
    d = fresh(p.work / "s3a")
    models = {"kill-a": p.model_block("gpu-kill-a", eager=True), "kill-b": p.model_block("gpu-kill-b", eager=True)}
    cfg = write_config(d / "run.yaml", models, load_dataset(d / "load.jsonl", 4000))
    before = smi.used_by_index(smi.snapshot())
    rec.figure("memory_before_mib", before)
    servers = smi.Servers([d / "logs"])
    args = [
        "run",
        "--config",
        str(cfg),
        "--gpus",
        "0,1",
        "--dataset",
        "all",
        "--results-dir",
        str(d / "results"),
        "--logs-dir",
        str(d / "logs"),
        "-v",
    ]
    rec.log(f"orchestrator: {' '.join(args)}")
    try:
        with Child([p.python, "-m", "orchestrator.cli", *args], stdout=d / "orchestrator.log") as orch:
            first = wait_healthy(servers, len(models), dl.cap(p.startup_timeout, margin=90), rec)
            if first is None:
                rec.check("a server became healthy", False, "none did in time: see logs.tgz")
                return
            time.sleep(5.0)  # mid-run: requests in flight
            rec.figure("held_before_kill_mib", smi.used_by_index(smi.snapshot()))
            os.kill(orch.pid, signal.SIGKILL)
            rec.log(
                f"SIGKILLed the orchestrator (pid {orch.pid}) {time.monotonic() - first:.0f} s after the first "
                "server was healthy"
            )
            orch.wait(10.0)
        _after_kill(p, dl, rec, d, servers, before)
    finally:
        run_cli(p.python, ["cleanup", "--logs-dir", str(d / "logs")], d / "cleanup-final.log", dl.cap(60, margin=0))
        reap(servers)


def _after_kill(p: Profile, dl: Deadline, rec: Recorder, d: Path, servers: smi.Servers, before: dict[int, int]) -> None:
    time.sleep(3.0)
    servers.refresh()
    snap = smi.snapshot()
    held = smi.used_by_index(snap)
    rec.figure("held_after_kill_mib", held)
    rec.figure("owners_after_kill", {str(k): v for k, v in smi.attribute(snap, servers).items()})
    orphans = leftovers(servers)
    rec.check(
        "after the SIGKILL the servers live on, holding GPU memory (the orphans cleanup is for)",
        bool(orphans) and any(held.get(i, 0) > before.get(i, 0) + 1024 for i in held),
        f"{len(orphans)} orphan process(es); "
        + ", ".join(f"GPU {i}: {gib(before.get(i, 0))} -> {gib(held[i])}" for i in sorted(held)),
    )
    began = time.monotonic()
    code, text = run_cli(p.python, ["cleanup", "--logs-dir", str(d / "logs")], d / "cleanup.log", dl.cap(120))
    rec.figure("cleanup_s", round(time.monotonic() - began, 1))
    rec.log(f"cleanup exited {code}: {text.strip().splitlines()[-1] if text.strip() else ''}")
    killed = sum(1 for line in text.splitlines() if line.startswith("killed "))
    rec.check(
        "cleanup killed every orphaned server",
        code == 0 and killed == len(servers.by_pgid),
        f"killed {killed} of {len(servers.by_pgid)}",
    )
    after = wait_memory_back(before, dl.cap(60, margin=10))
    rec.figure("memory_after_cleanup_mib", after["used_mib"])
    rec.figure("memory_back_s", round(time.monotonic() - began, 1))
    rec.check(
        "GPU memory back to what it was before (within 512 MiB)",
        after["back"],
        ", ".join(
            f"GPU {i}: before {before.get(i, 0)} MiB, after kill {held.get(i, 0)}, after cleanup {u}"
            for i, u in sorted(after["used_mib"].items())
        ),
    )
    rec.check(
        "no compute process of ours after cleanup",
        not [a for a in after["apps"] if not servers.owner(a["pid"]).startswith("other:")] and not leftovers(servers),
        json.dumps(after["apps"]),
    )


# ---------------------------------------------------------------------------------------------------- s3b


def s3b(p: Profile, dl: Deadline, rec: Recorder) -> None:
    """Next to another program holding 42 % of GPU 1: a greedy model and a too-long one fail with their cause
    named, the model that fits finishes, exit code 1."""
    dl.need(120 if not p.dry_run else 300, "s3b")
    gpus = need_gpus(2)
    d = fresh(p.work / "s3b")
    long_env = {"VLLM_ALLOW_LONG_MAX_MODEL_LEN": "1"}
    greedy_env = {"VLLM_CPU_KVCACHE_SPACE": "500"} if p.dry_run else {}  # CPU stand-in: more KV than RAM
    models = {
        "greedy": p.model_block("gpu-greedy", eager=True, gpu_util=0.9, env=greedy_env),
        "too-long": p.model_block(
            "gpu-too-long",
            eager=True,
            gpu_util=0.3,
            env=long_env,
            max_model_len=(1 << 23) if p.dry_run else (1 << 21),
            args=["--max-num-seqs", "8"],
        ),
        "fits": p.model_block("gpu-fits", eager=True, gpu_util=0.4),
    }
    expected = {
        "greedy": logcause.KV_MEMORY if p.dry_run else logcause.GPU_MEMORY_TAKEN,
        "too-long": logcause.KV_MEMORY,
    }
    rec.figure("expected_causes", expected)
    cfg = write_config(d / "run.yaml", models, SAMPLES, num_examples=p.limit)
    total = next(g["total_mib"] for g in gpus if g["index"] == 1)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "1", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    if p.dry_run:
        env["FAKE_SMI_HOLD"] = f"1:{int(total * HOLD_FRACTION)}"
    hold = [p.python, "-c", _HOLD_FAKE if p.dry_run else _HOLD, str(HOLD_FRACTION), str(dl.left())]
    with Child(hold, stdout=d / "holder.log", env=env) as holder:
        if not _wait_text(d / "holder.log", "holding", 90.0, holder):
            rec.check("the memory holder started", False, (d / "holder.log").read_text()[-500:])
            return
        used = smi.used_by_index(smi.snapshot())
        rec.figure("gpu1_used_by_holder", {"mib": used.get(1), "fraction": round(used.get(1, 0) / total, 3)})
        rec.log(f"holder: {(d / 'holder.log').read_text().strip()}; GPU 1 at {used.get(1, 0) / total:.0%}")
        run = watched_run(p, dl, rec, d, cfg, "1")
    rec.figure("gpu_samples", {k: v for k, v in run.seen.items() if k != "double_booked"})
    _s3b_checks(rec, run.code, run.summary, expected, d)
    check_no_leftovers(rec, run.left)
    record_timings(rec, d)


def _s3b_checks(
    rec: Recorder, code: int | None, summary: dict[str, dict[str, str]], expected: dict[str, str], d: Path
) -> None:
    rec.check("exit code 1 (a model failed)", code == 1, f"exit {code}")
    for key, cause in expected.items():
        entry = summary.get(key, {})
        named = entry.get("status") == "failed" and f": {cause};" in entry.get("error", "")
        rec.check(f"{key} failed with its cause named ({cause})", named, entry.get("error", "no summary line")[:500])
        rec.data["figures"].setdefault("intended_failures", {})[key] = entry.get("error", "")[:800]
    rec.check("the model that fits finished", summary.get("fits", {}).get("status") == "finished", statuses(summary))
    board = d / "results" / "leaderboard.md"
    rec.check("leaderboard written", board.exists() and "fits" in board.read_text(encoding="utf-8"), str(board))


def _wait_text(path: Path, text: str, timeout: float, child: Child) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(encoding="utf-8", errors="replace"):
            return True
        if child.proc.poll() is not None:
            return False
        time.sleep(0.5)
    return False
