"""s4 -- throughput on a GPU: our client vs ``vllm bench serve`` vs offline ``vllm.LLM`` (the engine's ceiling).

One TP=1 server started by the orchestrator's own lifecycle code (``orchestrator.server.start_server``) on GPU 0;
the same prompts (the built-in samples' tasks, cycled), the same ``max_tokens`` with ``ignore_eos``, greedy, prefix
caching off and ``max_num_seqs`` = the clients' concurrency. Rounds alternate (a) our client (``run_series`` +
``ChatClient``, ``benchmarks.client_throughput.ours``) and (b) ``vllm bench serve``
(``benchmarks.client_throughput.vllm_bench``); then the server stops and (c) ``benchmarks.gpu.offline`` runs the
same conversations through ``vllm.LLM.chat`` on the same GPU. Targets: (a) >= 0.9 x (c) and (a) > (b).
"""
from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import Any, Callable

from benchmarks.client_throughput import Measure, load_problems, ours, vllm_bench
from orchestrator.contract import ServerSpec
from orchestrator.prompts import build_messages

from . import smi
from .common import REPO, Child, Deadline, Profile, Recorder
from .scenarios import fresh, need_gpus, wait_memory_back

SERVED = "gpu-llama"
BATCHED_TOKENS = 8192  # the API server's default on H100/H200; the offline engine is given the same


def sample_tasks() -> list[str]:
    """The tasks of the built-in sample datasets (they travel with the repository)."""
    tasks = []
    for name in ("sample-math.jsonl", "sample-physics.jsonl"):
        for line in (REPO / "datasets" / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                tasks.append(json.loads(line)["task"])
    return tasks


def _timed(rec: Recorder, what: str, step: Callable[[], Measure]) -> Measure | None:
    try:
        measure = step()
    except Exception as exc:  # noqa: BLE001 -- one failed pass is a finding, the others still run
        rec.failure(what, f"{type(exc).__name__}: {str(exc)[-800:]}")
        return None
    rec.log(f"{what}: {measure.output_tokens} output tokens in {measure.seconds:.2f} s = {measure.tok_s:.0f} tok/s")
    rec.data["figures"].setdefault("passes", []).append(
        {"label": measure.label, "concurrency": measure.concurrency, "requests": measure.requests,
         "output_tokens": measure.output_tokens, "seconds": round(measure.seconds, 3), "tok_s": round(measure.tok_s)})
    rec.save()
    return measure


def s4(p: Profile, dl: Deadline, rec: Recorder) -> None:
    """Serve, measure (a) and (b) in alternating rounds, stop, measure (c), compare."""
    dl.need(210 if not p.dry_run else 420, "s4")
    if not p.dry_run:
        need_gpus(1)
    d = fresh(p.work / "s4")
    conc, tokens = p.s4_concurrency, p.s4_max_tokens
    problems = load_problems(p.s4_prompts, p.model, tasks=sample_tasks())
    rec.figure("setup", {"prompts": len(problems), "max_tokens": tokens, "concurrency": conc,
                         "rounds": p.s4_rounds, "ignore_eos": True, "prefix_caching": False, "max_num_seqs": conc,
                         "max_num_batched_tokens": BATCHED_TOKENS})
    before = smi.used_by_index(smi.snapshot())
    _serve_and_measure(p, dl, rec, d, problems)
    back = wait_memory_back(before, dl.cap(60), gpus=(0,))
    rec.log(f"GPU memory after the server stopped: {back['used_mib']}")
    _offline(p, dl, rec, d, problems)
    _compare(rec)


def _serve_and_measure(p: Profile, dl: Deadline, rec: Recorder, d: Path, problems: list) -> None:
    from orchestrator.server import start_server
    conc, tokens = p.s4_concurrency, p.s4_max_tokens
    gpus = () if p.dry_run else (0,)
    spec = ServerSpec(name="s4-server", model=str(p.model), served_name=SERVED, gpus=gpus, python=p.python,
                      max_model_len=4096, startup_timeout=dl.cap(p.startup_timeout, margin=150),
                      args=("--no-enable-prefix-caching", "--max-num-seqs", str(conc), "--max-num-batched-tokens",
                            str(BATCHED_TOKENS)),
                      env=tuple({"CUDA_DEVICE_ORDER": "PCI_BUS_ID", **p.server_env}.items()) if gpus else ())
    began = time.monotonic()
    server = start_server(spec, f"gpu-s4-{int(time.time())}", d / "logs")
    try:
        rec.figure("server_startup_s", round(time.monotonic() - began, 1))
        rec.log(f"server ready on {server.spec.base_url} after {time.monotonic() - began:.0f} s")
        ours(server, problems[:conc], 8, conc, d, "warmup", served=SERVED)
        for r in range(p.s4_rounds):
            if dl.left() < 150:
                rec.note(f"stopped after {r} round(s): too little time left for more")
                break
            _timed(rec, f"round {r + 1}: ours @ {conc}",
                   lambda: ours(server, problems, tokens, conc, d, f"ours-{r}", served=SERVED))
            _timed(rec, f"round {r + 1}: vllm bench serve @ {conc}",
                   lambda: vllm_bench(server.spec.port, p.model, problems, tokens, conc, d, f"bench-{r}",
                                      served=SERVED, timeout=dl.cap(300, margin=120)))
    finally:
        server.stop()


def _offline(p: Profile, dl: Deadline, rec: Recorder, d: Path, problems: list) -> None:
    convs = d / "convs.jsonl"
    convs.write_text("".join(json.dumps(build_messages(q), ensure_ascii=False) + "\n" for q in problems),
                     encoding="utf-8")
    out = d / "offline.json"
    env = {**os.environ, **({"CUDA_VISIBLE_DEVICES": "0", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"} if not p.dry_run
                            else p.server_env)}
    argv = [p.python, "-m", "benchmarks.gpu.offline", "--model", str(p.model), "--prompts", str(convs),
            "--max-tokens", str(p.s4_max_tokens), "--max-num-seqs", str(p.s4_concurrency),
            "--max-num-batched-tokens", str(BATCHED_TOKENS), "--out", str(out)]
    rec.log("offline vllm.LLM.chat: " + " ".join(argv[1:]))
    with Child(argv, stdout=d / "offline.log", env=env) as child:
        code = child.wait(dl.cap(300, margin=10))
    if code != 0 or not out.exists():
        tail = (d / "offline.log").read_text(encoding="utf-8", errors="replace")[-1500:]
        rec.failure("offline vllm.LLM.chat", f"exit {code}: {tail}")
        return
    result = json.loads(out.read_text())
    rec.figure("offline", {k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()})
    rec.log(f"offline: {result['output_tokens']} tokens in {result['seconds']:.2f} s = {result['tok_s']:.0f} tok/s")


def _compare(rec: Recorder) -> None:
    passes = rec.data["figures"].get("passes", [])
    med: dict[str, Any] = {}
    for label in ("ours", "vllm bench serve"):
        values = [x["tok_s"] for x in passes if x["label"] == label]
        med[label] = statistics.median(values) if values else None
    offline = rec.data["figures"].get("offline", {}).get("tok_s")
    med["offline vllm.LLM"] = round(offline) if offline else None
    rec.figure("median_tok_s", med)
    ours_v, bench_v = med["ours"], med["vllm bench serve"]
    targets = {}
    if ours_v and offline:
        targets["ours / offline"] = {"value": round(ours_v / offline, 3), "target": ">= 0.9",
                                     "met": ours_v / offline >= 0.9}
    if ours_v and bench_v:
        targets["ours / vllm bench serve"] = {"value": round(ours_v / bench_v, 3), "target": "> 1.0",
                                              "met": ours_v / bench_v > 1.0}
    rec.figure("targets", targets)
    for name, t in targets.items():
        rec.log(f"{name}: {t['value']:.2f} (target {t['target']}: {'met' if t['met'] else 'missed'})")
    rec.check("every pass completed (ours, vllm bench serve, offline)", bool(ours_v and bench_v and offline),
              json.dumps(med))
    rec.check("our client completed every request of every round without an error",
              all(x["requests"] == rec.data["figures"]["setup"]["prompts"] for x in passes if x["label"] == "ours")
              and any(x["label"] == "ours" for x in passes))
