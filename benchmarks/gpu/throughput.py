"""s4 -- throughput on a GPU: our client vs the engine's own ceiling (offline ``vllm.LLM``), round by round, and the
variants of issue 18 that might close the gap.

One GPU holds two things at once, each with ``S4_GPU_SHARE`` of its memory: a TP=1 server started by the
orchestrator's own lifecycle code (``orchestrator.serving.server.start_server``) and one long-lived offline engine
(``benchmarks.gpu.offline``). Only one of them works at a time. Same prompts (the built-in samples' tasks, cycled),
the same ``max_tokens`` with ``ignore_eos``, greedy, prefix caching off, ``max_num_seqs`` = the clients'
concurrency, the same ``max_num_batched_tokens``.

A *phase* is one server configuration (``variants.Server``): ``--api-server-count`` N (``Profile.s4_api_servers``, in
order of expected value; the first is today's default), then, with ``--s4-stats-off``, the first count again with
``--disable-log-stats`` (the engine keeps no statistics, as the offline engine runs; a managed server keeps them,
since its liveness watch reads ``/metrics``). In each phase, every round runs each client variant once, each right after
an offline pass of its own (``variants.CLIENTS``: managed GPU servers' default, the msgspec codec with ``queue_ahead`` 1
-- 2 x ``max_num_seqs`` requests in flight, so the server keeps a whole batch waiting as the offline engine does; the
same codec with nothing queued, the default before issue 18; ``bare.py``'s asyncio client with no store and nothing
queued, what threads and checkpoints cost), the order of the variants flipping every other round; one more offline
pass closes the last round. Each client pass is divided by the mean of the two offline passes next to it (the one
just before it and the one just after), so that a drift of the machine's speed cancels (one H200 lent here
changed its offline speed by up to 40 % between passes a minute apart); the table gives, per variant, the
median of those per-round ratios and their spread. ``--s4-clients`` picks some of the client variants. During
every pass the CPU seconds of the client, of the server's front end (API processes) and of its engine are sampled
-- for an offline pass, of the ``LLM`` process (its front end) and its engine -- which shows where the time goes (a
process near 1.0 core is saturated; an engine that uses less CPU online than offline waits for something).

``--s4-shape`` swaps the random 0.8B Llama for a real architecture's shape (``make_model.SHAPES``, e.g. Llama-3.1-8B's)
with ``--load-format dummy`` in both the server and the offline engine: the regime users run, where the GPU's work
per step, not the engine's CPU, sets the pace.

In the first phase, before its rounds, one more pass of the default client runs under py-spy
(``benchmarks/gpu/pyspy.py``): the server's processes sampled 100 times a second and the client's GIL holder 50
times, none of them paused; the functions with the largest shares of each one's CPU time are kept (``profile``; the
raw stacks in ``OUT/s4-profile-*.txt``). That pass is not one of the rounds. A phase that cannot finish before the
deadline is skipped and says so. ``vllm bench serve`` runs once, on the first phase, only when time is left after
the variants.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any

import psutil

from benchmarks.client_throughput import Measure, load_problems, ours, vllm_bench
from orchestrator.contract import ServerSpec
from orchestrator.prompts import build_messages
from orchestrator.serving import queueahead

from . import planning, pyspy, smi
from .bare import bare_pass
from .common import REPO, Deadline, Profile, Recorder
from .make_model import param_count, write_shape
from .offline import OfflineEngine
from .scenarios import fresh, need_gpus, wait_memory_back
from .variants import CLIENTS, DEFAULT_CLIENT, Server, clients, compare, servers

SERVED = "gpu-llama"
BATCHED_TOKENS = 8192  # the API server's default on H100/H200; the offline engine is given the same
S4_GPU_SHARE = 0.4  # of GPU memory, for the server and for the offline engine each (a 0.8B model needs little)


STOP_S = 45.0  # what stopping the server and the offline engine may take, kept free before the deadline
ENGINE_NAMES = (
    "EngineCor",
    "Worker",
)  # (process names may be cut at 15 characters)  # vLLM's process titles of the engine side; the rest is the front end


def sample_tasks() -> list[str]:
    """The tasks of the built-in sample datasets (they travel with the repository)."""
    tasks = []
    for name in ("sample-math.jsonl", "sample-physics.jsonl"):
        for line in (REPO / "datasets" / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                tasks.append(json.loads(line)["task"])
    return tasks


def s4(p: Profile, dl: Deadline, rec: Recorder) -> None:
    """Phases of (server with N API processes, rounds of offline + ours per client variant), then compare."""
    dl.need(240 if not p.dry_run else 420, "s4")
    if not p.dry_run:
        need_gpus(1)
    run = _S4(p, dl, rec)
    before = smi.used_by_index(smi.snapshot())
    try:
        for index, server in enumerate(servers(p.s4_api_servers, p.s4_stats_off)):
            if not run.fits(index, server):
                continue
            try:
                run.phase(server, bench=index == 0)
            except Exception as exc:  # noqa: BLE001 -- a variant that cannot start is a finding; the others run
                rec.failure(f"variant {server.label}", f"{type(exc).__name__}: {str(exc)[-1500:]}")
    finally:
        run.stop_offline()
    back = wait_memory_back(before, dl.cap(60), gpus=(0,))
    rec.log(f"GPU memory after everything stopped: {back['used_mib']}")
    compare(rec)
    gpus = rec.data["host"].get("gpus") or [{}]
    planning.record_estimate(rec, run.model, None if p.dry_run else gpus[0].get("name"), p)


@dataclass
class _Costs:
    """What the deadline planning learns from the first phase."""

    server_start_s: float = 150.0
    round_s: float = 60.0


class _S4:
    def __init__(self, p: Profile, dl: Deadline, rec: Recorder) -> None:
        self.p, self.dl, self.rec = p, dl, rec
        self.d = fresh(p.work / "s4")
        self.problems = load_problems(p.s4_prompts, p.model, tasks=sample_tasks())
        self.model = write_shape(p.model, self.d / f"shape-{p.s4_shape}", p.s4_shape) if p.s4_shape else p.model
        self.load = ("--load-format", "dummy") if p.s4_shape else ()
        self.clients = clients(p.s4_clients)
        self.offline: OfflineEngine | None = None
        self.costs = _Costs()
        config = json.loads((self.model / "config.json").read_text())
        rec.figure(
            "setup",
            {
                "model": p.s4_shape or "the random 0.8B Llama",
                "weights": "dummy (--load-format dummy)" if p.s4_shape else "on disk",
                "parameters_b": round(param_count(config) / 1e9, 2),
                "prompts": len(self.problems),
                "max_tokens": p.s4_max_tokens,
                "concurrency": p.s4_concurrency,
                "rounds": p.s4_rounds,
                "ignore_eos": True,
                "prefix_caching": False,
                "max_num_seqs": p.s4_concurrency,
                "max_num_batched_tokens": BATCHED_TOKENS,
                "api_servers_planned": list(p.s4_api_servers),
                "servers_planned": [v.label for v in servers(p.s4_api_servers, p.s4_stats_off)],
                "clients": self.clients,
                "gpu_memory_share": None if p.dry_run else S4_GPU_SHARE,
            },
        )

    # -- planning ---------------------------------------------------------------------------------------------
    def fits(self, index: int, server: Server) -> bool:
        """Can a phase of ``server`` start and run at least one round before the deadline?"""
        if index == 0:
            return True
        need = self.costs.server_start_s + self.costs.round_s + STOP_S
        if self.dl.left() < need:
            self.rec.note(
                f"variant {server.label} skipped: it needs about {need:.0f} s (start "
                f"{self.costs.server_start_s:.0f} s + one round {self.costs.round_s:.0f} s + stop), only "
                f"{max(self.dl.left(), 0):.0f} s left"
            )
            return False
        return True

    # -- one phase --------------------------------------------------------------------------------------------
    def phase(self, sv: Server, bench: bool) -> None:
        from orchestrator.serving.server import start_server

        began = time.monotonic()
        server = start_server(self._spec(sv), f"gpu-s4-{sv.api_servers}-{int(time.time())}", self.d / "logs")
        try:
            startup = time.monotonic() - began
            self.costs.server_start_s = startup
            self.rec.data["figures"].setdefault("server_startup_s", {})[sv.label] = round(startup, 1)
            self.rec.log(f"server ({sv.label}) ready on {server.spec.base_url} after {startup:.0f} s")
            ours(
                server,
                self.problems[: self.p.s4_concurrency],
                8,
                self.p.s4_concurrency,
                self.d,
                f"warmup-{sv.api_servers}-{int(sv.stats)}",
                served=SERVED,
            )
            if self.offline is None:
                self.offline = self._start_offline()
            if bench and self.p.s4_profile:
                self._profiled_pass(server, sv)
            if self.offline is not None:
                self._rounds(server, sv)
            if bench:
                self._bench(server)
        finally:
            server.stop()

    def _spec(self, sv: Server) -> ServerSpec:
        p, conc = self.p, self.p.s4_concurrency
        gpus = () if p.dry_run else (0,)
        return ServerSpec(
            name=f"s4-api{sv.api_servers}",
            model=str(self.model),
            served_name=SERVED,
            gpus=gpus,
            python=p.python,
            max_model_len=4096,
            startup_timeout=self.dl.cap(p.startup_timeout, margin=150),
            gpu_memory_utilization=None if p.dry_run else S4_GPU_SHARE,
            api_server_count=sv.api_servers,
            args=(
                "--no-enable-prefix-caching",
                "--max-num-seqs",
                str(conc),
                "--max-num-batched-tokens",
                str(BATCHED_TOKENS),
                *sv.args,
                *self.load,
            ),
            env=tuple({"CUDA_DEVICE_ORDER": "PCI_BUS_ID", **p.server_env}.items()) if gpus else (),
        )

    def _rounds(self, server: Any, sv: Server) -> None:
        """Each round: an offline pass before every client (the clients' order flips every other round); after the
        last round one more offline pass, so that each client pass lies between two offline passes next to it
        (``compare`` divides by their mean)."""
        ran, slot = 0, 0
        for r in range(self.p.s4_rounds):
            if self.dl.left() < self.costs.round_s + STOP_S:
                self.rec.note(f"{sv.label}: stopped after {r} round(s), too little time left")
                break
            began = time.monotonic()
            for name in self.clients if r % 2 == 0 else self.clients[::-1]:
                self._offline_pass(sv, r, slot)
                self._ours_pass(server, sv, r, name, slot)
                slot += 1
            self.costs.round_s, ran = time.monotonic() - began, r + 1
        if ran and self.dl.left() >= self.costs.round_s / (2 * len(self.clients)) + STOP_S:
            self._offline_pass(sv, ran, slot)  # closes the last client pass

    # -- passes -----------------------------------------------------------------------------------------------
    def _ours_pass(self, server: Any, sv: Server, r: int, client: str, slot: int) -> None:
        what = f"{sv.label}, round {r + 1}: ours ({client})"
        cpu = CpuSample(server.pid)
        variant = CLIENTS[client]
        concurrency = queueahead.in_flight(self.p.s4_concurrency, variant.queued)
        try:
            if variant.bare:
                measure = bare_pass(server.endpoint.api_base, self.problems, self.p.s4_max_tokens, concurrency, SERVED)
            else:
                measure = ours(
                    server,
                    self.problems,
                    self.p.s4_max_tokens,
                    concurrency,
                    self.d,
                    f"ours-{sv.api_servers}-{int(sv.stats)}-{r}-{list(CLIENTS).index(client)}",
                    served=SERVED,
                    codec=variant.codec(),
                )
        except Exception as exc:  # noqa: BLE001 -- one failed pass is a finding, the others still run
            self.rec.failure(what, f"{type(exc).__name__}: {str(exc)[-800:]}")
            return
        self._record(what, measure, sv, r, client, slot=slot, cpu=cpu.done(measure.seconds))

    def _profiled_pass(self, server: Any, sv: Server) -> None:
        """One pass of the default client with py-spy on the server's processes and on this one (the client)."""
        binary = pyspy.find_pyspy()
        if binary is None:
            self.rec.note("profile skipped: py-spy is not installed (benchmarks/gpu/README.md carries its wheel)")
            return
        out = self.rec.json_path.parent
        recs = {
            "server": pyspy.Recording(binary, server.pid, out / "s4-profile-server.txt"),
            "client": pyspy.Recording(
                binary, os.getpid(), out / "s4-profile-client.txt", rate=pyspy.GIL_RATE, subprocesses=False, gil=True
            ),
        }
        roles = _Roles()
        time.sleep(1.0)  # py-spy attaches
        try:
            default = CLIENTS[DEFAULT_CLIENT]
            measure = ours(
                server,
                self.problems,
                self.p.s4_max_tokens,
                queueahead.in_flight(self.p.s4_concurrency, default.queued),
                self.d,
                f"profiled-{sv.api_servers}",
                served=SERVED,
                codec=default.codec(),
            )
        except Exception as exc:  # noqa: BLE001 -- a failed profile is a finding; the rounds still run
            self.rec.failure("the profiled pass", f"{type(exc).__name__}: {str(exc)[-800:]}")
            return
        finally:
            texts = {who: r.stop() for who, r in recs.items()}
        self._record(
            f"{sv.label}: ours ({DEFAULT_CLIENT}) under py-spy", measure, sv, -1, f"{DEFAULT_CLIENT} under py-spy"
        )  # round 0: outside the rounds, paired with no offline pass
        found = []
        for who, text in texts.items():
            if not text:
                self.rec.failure(f"py-spy on the {who}", recs[who].failure() or "no output")
            for prof in pyspy.summarise(text, root=os.getpid() if who == "client" else None).values():
                found.append(
                    {
                        "role": "client (the thread holding the GIL)" if who == "client" else roles.of(prof.pid),
                        **prof.top(measure.seconds, pyspy.GIL_RATE if who == "client" else pyspy.RATE),
                    }
                )
        self.rec.figure(
            "profile",
            {
                "pass": f"{sv.label}, {DEFAULT_CLIENT}",
                "rate_hz": pyspy.RATE,
                "client_rate_hz": pyspy.GIL_RATE,
                "seconds": round(measure.seconds, 2),
                "tok_s": round(measure.tok_s),
                "processes": found,
            },
        )

    def _offline_pass(self, sv: Server, r: int, slot: int) -> None:
        what = f"{sv.label}, round {r + 1}: offline vllm.LLM.chat"
        assert self.offline is not None
        cpu = CpuSample(self.offline.proc.pid)  # its own session: the LLM process (front end) and its engine
        try:
            out = self.offline.run(f"{sv.api_servers}-{int(sv.stats)}-{slot}", timeout=self.dl.cap(300, margin=STOP_S))
        except (RuntimeError, TimeoutError) as exc:
            self.rec.failure(what, str(exc))
            return
        measure = Measure(
            "offline vllm.LLM", self.p.s4_concurrency, out["requests"], out["output_tokens"], out["seconds"]
        )
        self._record(what, measure, sv, r, "offline", slot=slot, cpu=cpu.done(out["seconds"]))

    def _bench(self, server: Any) -> None:
        need = 60.0 + STOP_S
        if len(servers(self.p.s4_api_servers, self.p.s4_stats_off)) > 1:  # the variants first: room for the next phase
            need += self.costs.server_start_s + self.costs.round_s * self.p.s4_rounds
        if self.dl.left() < need:
            self.rec.note(
                f"vllm bench serve skipped: about {need:.0f} s needed with the next variant, "
                f"{max(self.dl.left(), 0):.0f} s left"
            )
            return
        what = "vllm bench serve (--api-server-count 1)"
        try:
            measure = vllm_bench(
                server.spec.port,
                self.p.model,
                self.problems,
                self.p.s4_max_tokens,
                self.p.s4_concurrency,
                self.d,
                "bench",
                served=SERVED,
                timeout=self.dl.cap(300, margin=120),
            )
        except Exception as exc:  # noqa: BLE001 -- any failure of the bench is this step's: recorded, the suite goes on
            self.rec.failure(what, f"{type(exc).__name__}: {str(exc)[-800:]}")
            return
        self._record(what, measure, Server(1), 0, "vllm bench serve")

    def _record(
        self, what: str, m: Measure, sv: Server, r: int, client: str, slot: int | None = None, cpu: dict | None = None
    ) -> None:
        self.rec.log(
            f"{what}: {m.output_tokens} output tokens in {m.seconds:.2f} s = {m.tok_s:.0f} tok/s"
            + (f"; cpu {json.dumps(cpu)}" if cpu else "")
        )
        row = {
            "label": m.label,
            "client": client,
            "api_servers": sv.api_servers,
            "server": sv.label,
            "round": r + 1,
            **({} if slot is None else {"slot": slot}),
            "concurrency": m.concurrency,
            "requests": m.requests,
            "output_tokens": m.output_tokens,
            "seconds": round(m.seconds, 3),
            "tok_s": round(m.tok_s),
        }
        if cpu:
            row["cpu"] = cpu
        self.rec.data["figures"].setdefault("passes", []).append(row)
        self.rec.save()

    # -- the offline engine -----------------------------------------------------------------------------------
    def _start_offline(self) -> OfflineEngine | None:
        p = self.p
        convs = self.d / "convs.jsonl"
        convs.write_text(
            "".join(json.dumps(build_messages(q), ensure_ascii=False) + "\n" for q in self.problems), encoding="utf-8"
        )
        env = {
            **os.environ,
            **({"CUDA_VISIBLE_DEVICES": "0", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"} if not p.dry_run else p.server_env),
        }
        argv = [
            p.python,
            "-m",
            "benchmarks.gpu.offline",
            "--model",
            str(self.model),
            "--prompts",
            str(convs),
            "--max-tokens",
            str(p.s4_max_tokens),
            "--max-num-seqs",
            str(p.s4_concurrency),
            "--max-num-batched-tokens",
            str(BATCHED_TOKENS),
            *([] if p.dry_run else ["--gpu-memory-utilization", str(S4_GPU_SHARE)]),
            *self.load,
        ]
        self.rec.log("offline engine: " + " ".join(argv[1:]))
        engine = OfflineEngine(argv, env, self.d / "offline.log", REPO)
        try:
            ready = engine.wait(self.dl.cap(300, margin=STOP_S + 60))
        except (RuntimeError, TimeoutError) as exc:
            tail = (self.d / "offline.log").read_text(encoding="utf-8", errors="replace")[-1500:]
            self.rec.failure("offline engine start", f"{exc}: {tail}")
            engine.stop(grace=5.0)
            return None
        self.rec.figure("offline_startup_s", round(ready["startup_s"], 1))
        self.rec.log(f"offline engine ready after {ready['startup_s']:.0f} s")
        return engine

    def stop_offline(self) -> None:
        if self.offline is not None:
            self.offline.stop()
            self.offline = None


class _Roles:
    """Which of a server's processes are its engine (they hold the GPU, or carry vLLM's engine titles)."""

    def __init__(self) -> None:
        self.gpu_pids = {a["pid"] for a in smi.snapshot().get("apps", [])}

    def is_engine(self, pid: int, name: str) -> bool:
        return pid in self.gpu_pids or any(e in name for e in ENGINE_NAMES)

    def of(self, pid: int) -> str:
        try:
            name = psutil.Process(pid).name()
        except psutil.Error:
            name = ""
        return "engine" if self.is_engine(pid, name) else "front end"


class CpuSample:
    """CPU seconds used during a pass, as cores (CPU seconds / wall seconds): this process (the client), the
    server's engine (processes of its session that hold the GPU, or are named like vLLM's engine) and its front end
    (the rest of its session: the API process or processes); plus the busiest processes one by one."""

    def __init__(self, session: int | None) -> None:
        self.session = session
        self.me = psutil.Process()
        self.roles = _Roles()
        self.start = self._take()

    def _take(self) -> dict[int, tuple[str, float]]:
        found: dict[int, tuple[str, float]] = {}
        for proc in psutil.process_iter(["name"]):
            try:
                if self.session is None or os.getsid(proc.pid) != self.session:
                    continue
                times = proc.cpu_times()
                found[proc.pid] = (proc.info["name"] or "", times.user + times.system)
            except (psutil.Error, OSError):
                continue
        times = self.me.cpu_times()
        found[-1] = ("client", times.user + times.system)
        return found

    def done(self, seconds: float) -> dict[str, Any]:
        wall = max(seconds, 1e-6)
        used = {
            pid: (name, (cpu - self.start.get(pid, (name, 0.0))[1]) / wall) for pid, (name, cpu) in self._take().items()
        }
        server = {pid: v for pid, v in used.items() if pid != -1}
        front = [cores for pid, (name, cores) in server.items() if not self.roles.is_engine(pid, name)]
        engine = [cores for pid, (name, cores) in server.items() if self.roles.is_engine(pid, name)]
        top = sorted(server.items(), key=lambda kv: -kv[1][1])[:6]
        return {
            "client_cores": round(used[-1][1], 2),
            "front_end_cores": round(sum(front), 2),
            "busiest_front_end_process_cores": round(max(front, default=0.0), 2),
            "engine_cores": round(sum(engine), 2),
            "processes": [
                {
                    "pid": pid,
                    "name": name,
                    "cores": round(cores, 2),
                    "role": "engine" if self.roles.is_engine(pid, name) else "front end",
                }
                for pid, (name, cores) in top
            ],
        }
