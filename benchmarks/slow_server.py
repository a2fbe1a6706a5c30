"""Slow is not dead (issue 12), against a real vLLM (CPU) server on the tiny smoke model, in one run:

(a) Slow server: ``--prompts`` DeathMath prompts at parallel 64, ``--max-tokens`` with ignore_eos, so that one
    answer takes many times ``request_timeout``. The same run with ``request_timeout`` = ``--stall-limit`` (2 s)
    and with a generous 600 s (the baseline), in alternating order each round, on one server, through
    ``run_series`` and the client exactly as the runner builds it for a managed server. Reported: answers
    stored, errors (target 0), the longest answer and the wall-time ratio (target about 1: watching progress
    costs nothing).
(b) SIGSTOP to restart: a managed model through ``run_model`` (the runner) with ``request_timeout`` =
    ``--hang-timeout``; mid-run (its ``/metrics`` counter past 2000 tokens) ``VLLM::EngineCore`` is SIGSTOPped.
    Measured: the seconds from the SIGSTOP to the replacement server's start (hang found through the frozen ``/metrics``
    counters and the 1-token probe, old server torn down); target: within ``request_timeout`` + 30 s. The series
    must then finish with every answer stored.

  .venv/bin/python -m benchmarks.slow_server [--rounds 3]
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from benchmarks import publish
from benchmarks.client_throughput import load_problems
from orchestrator.client import ChatClient, ManagedServer, run_series
from orchestrator.contract import (
    DatasetSpec,
    ModelConfig,
    Problem,
    ReasoningSettings,
    Sampling,
    ServerSpec,
    Timeouts,
    Transport,
    VllmSettings,
)
from orchestrator.job import DatasetRun, ModelOutcome, RunContext, run_model
from orchestrator.prompts import build_messages
from orchestrator.results import SeriesStore
from orchestrator.serving.server import start_server
from orchestrator.serving.signals import ServerGroup
from orchestrator.status.progress import Progress

log = logging.getLogger("benchmarks.slow_server")

REPO = Path(__file__).resolve().parents[1]
RESULT = REPO / "benchmarks" / "results" / "slow_server.md"
SERVED = "tiny-llama"
GENEROUS = 600.0
PARALLEL = 64


@dataclass
class SlowRun:
    """One slow-server run."""

    request_timeout: float
    answered: int
    errors: int
    seconds: float
    longest: float


@dataclass
class HangRun:
    """One SIGSTOP: seconds to the replacement's start, restarts, answers stored of the total."""

    to_restart: float
    restarts: int
    answered: int
    total: int
    status: str


def spec_for(model: Path, name: str) -> ServerSpec:
    return ServerSpec(
        name=name,
        model=str(model),
        served_name=SERVED,
        python=sys.executable,
        max_model_len=2048,
        startup_timeout=900,
        args=("--no-enable-prefix-caching",),
    )


def slow_run(server, problems: Sequence[Problem], max_tokens: int, timeout: float, work: Path, tag: str) -> SlowRun:
    """The problems through ``run_series`` with the managed-server client; every record's fate counted."""
    store = SeriesStore(work / tag, SERVED, "bench", "1" * 16, meta={"total": len(problems)})
    with ChatClient(
        server.endpoint,
        SERVED,
        Sampling(max_tokens=max_tokens),
        transport=Transport(Timeouts.within(timeout), max_retries=2),
        server=ManagedServer.of(server),
        context_len=server.max_model_len(),
        extra_body={"ignore_eos": True},
    ) as client:
        began = time.perf_counter()
        score = run_series(problems, client, store, build_messages, parallel=PARALLEL)
        seconds = time.perf_counter() - began
    longest = max((r.latency_s for r in store.records() if r.error is None), default=0.0)
    return SlowRun(timeout, score.answered, score.errors, seconds, longest)


def slow_rounds(
    model: Path, problems: Sequence[Problem], max_tokens: int, stall: float, rounds: int, work: Path
) -> list[SlowRun]:
    server = start_server(spec_for(model, "bench-slow"), f"bench-slow-{int(time.time())}", work / "logs")
    try:
        slow_run(server, problems[:PARALLEL], 8, GENEROUS, work, "warmup")
        runs: list[SlowRun] = []
        for r in range(rounds):
            order = (stall, GENEROUS) if r % 2 == 0 else (GENEROUS, stall)
            for timeout in order:
                runs.append(slow_run(server, problems, max_tokens, timeout, work, f"r{r}-{timeout:g}"))
                log.info("round %d, request_timeout %g: %s", r + 1, timeout, runs[-1])
        return runs
    finally:
        server.stop()


def engine_process(api_pid: int) -> psutil.Process:
    """The ``VLLM::EngineCore`` under a vLLM API process; where setproctitle is missing (the slim GPU bundle: every
    process is plain ``python``), the first child that multiprocessing spawned (the resource tracker is not one)."""
    children = psutil.Process(api_pid).children(recursive=True)
    for proc in children:
        if proc.name().startswith("VLLM::EngineCore"):
            return proc
    return next(p for p in children if "spawn_main" in " ".join(p.cmdline()))


class EngineStopper(threading.Thread):
    """SIGSTOPs the first server's ``VLLM::EngineCore`` once its progress counter reaches ``at`` (mid-run)."""

    def __init__(self, servers: list, at: float) -> None:
        super().__init__(name="engine-stopper", daemon=True)
        self.servers, self.at, self.done = servers, at, threading.Event()
        self.stopped_at: float | None = None
        self.engine_pid: int | None = None

    def run(self) -> None:
        while not self.done.wait(0.5):
            if self.servers and (self.servers[0].progress() or 0.0) >= self.at:
                engine = engine_process(self.servers[0].pid)
                engine.send_signal(signal.SIGSTOP)
                self.stopped_at, self.engine_pid = time.monotonic(), engine.pid
                log.info("SIGSTOPped %s (pid %d) at progress %.0f", engine.name(), engine.pid, self.at)
                return


@dataclass(frozen=True)
class Asking:
    """How a benchmark's managed model is asked: what changes answers, how requests travel, how many at once."""

    sampling: Sampling
    transport: Transport
    parallel: int


@dataclass
class ManagedRun:
    """A managed model through the runner: its outcome, its server starts (monotonic), its answers, the SIGSTOP."""

    outcome: ModelOutcome
    starts: list[float]
    records: list[dict]
    seconds: float
    stopped_at: float | None

    @property
    def to_restart(self) -> float | None:
        return self.starts[1] - self.stopped_at if self.stopped_at is not None and len(self.starts) > 1 else None

    @property
    def answered(self) -> int:
        return sum(s.answered for s in self.outcome.scores)

    @property
    def errors(self) -> int:
        return sum(s.errors for s in self.outcome.scores)


def managed_run(
    spec: ServerSpec,
    problems: Sequence[Problem],
    asking: Asking,
    work: Path,
    *,
    stop_at: float | None = None,
    max_restarts: int = 2,
    deadline_s: float | None = None,
    reasoning: ReasoningSettings | None = None,
) -> ManagedRun:
    """``problems`` for a managed model through ``run_model`` (start, watch, restart, checkpoint) with ignore_eos;
    with ``stop_at`` its engine is SIGSTOPped once the server's progress counter reaches it; after ``deadline_s``
    the run is stopped as Ctrl-C would (status ``interrupted``); ``reasoning``: the model's reasoning settings (its
    parser and budget way are the ``spec``'s)."""
    servers: list = []
    starts: list[float] = []

    def start(spec: ServerSpec, run_id: str, logs_dir: Path, group: ServerGroup):
        starts.append(time.monotonic())
        servers.append(start_server(spec, run_id, logs_dir, group=group))
        return servers[-1]

    config = ModelConfig(
        key=spec.name,
        model_name=spec.served_name,
        sampling=asking.sampling,
        vllm=VllmSettings(model=spec.model, max_restarts=max_restarts),
        parallel=asking.parallel,
        transport=asking.transport,
        reasoning=reasoning or ReasoningSettings(),
    )
    run = DatasetRun(spec=DatasetSpec(name="bench"), problems=tuple(problems), version="v1")
    ctx = RunContext(
        run_id=f"{spec.name}-{int(time.time())}",
        results_dir=work / spec.name / "results",
        logs_dir=work / spec.name / "logs",
        datasets=[run],
        stop=threading.Event(),
        progress=Progress(interval=3600),
        servers=ServerGroup(),
        start_server=start,
        client_factory=functools.partial(ChatClient, extra_body={"ignore_eos": True}),
    )
    stopper = EngineStopper(servers, stop_at) if stop_at is not None else None
    timer = threading.Timer(deadline_s, ctx.stop.set) if deadline_s is not None else None
    began = time.monotonic()
    try:
        for thread in (stopper, timer):
            if thread is not None:
                thread.start()
        outcome = run_model(ctx, config, spec)
    finally:
        if timer is not None:
            timer.cancel()
        if stopper is not None:
            stopper.done.set()
        for server in servers:
            server.stop()
    records = [
        json.loads(line)
        for path in sorted(ctx.results_dir.glob("details/*/*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    return ManagedRun(
        outcome, starts, records, time.monotonic() - began, stopper.stopped_at if stopper is not None else None
    )


def hang_run(model: Path, problems: Sequence[Problem], timeout: float, work: Path, n: int) -> HangRun:
    """A managed model through the runner; its engine SIGSTOPped mid-run; time to the restart."""
    asking = Asking(Sampling(max_tokens=60), Transport(Timeouts.within(timeout), max_retries=1), parallel=8)
    done = managed_run(spec_for(model, f"hang-{n}"), problems, asking, work, stop_at=2000.0)
    if done.to_restart is None:
        raise RuntimeError(
            f"hang round {n}: no restart after the SIGSTOP ({done.outcome.status}: {done.outcome.error})"
        )
    return HangRun(done.to_restart, done.outcome.restarts, done.answered, len(problems), done.outcome.status)


def render(
    slow: Sequence[SlowRun],
    hangs: Sequence[HangRun],
    command: str,
    prompts: int,
    max_tokens: int,
    stall: float,
    hang_timeout: float,
) -> str:
    def med(timeout: float, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in slow if r.request_timeout == timeout)

    ratios = [a.seconds / b.seconds for a, b in _pairs(slow, stall)]
    errors = sum(r.errors for r in slow if r.request_timeout == stall)
    stored = sum(r.answered for r in slow if r.request_timeout == stall)
    restart = [h.to_restart for h in hangs]
    rows = [
        f"| {i // 2 + 1} | {r.request_timeout:g} | {r.answered}/{prompts} | {r.errors} | {r.longest:.1f} "
        f"| {r.seconds:.1f} |"
        for i, r in enumerate(slow)
    ]
    hang_rows = [
        f"| {i + 1} | {h.to_restart:.1f} | {h.restarts} | {h.answered}/{h.total} | {h.status} |"
        for i, h in enumerate(hangs)
    ]
    met = all(t <= hang_timeout + 30 for t in restart)
    return "\n".join(
        [
            "## Slow is not dead: long generations and hung engines (vLLM CPU, tiny smoke model)",
            "",
            f"Command: `{command}`",
            "",
            f"(a) {prompts} DeathMath prompts at parallel {PARALLEL}, max_tokens {max_tokens} with ignore_eos, one "
            f"vLLM CPU server on this machine's 2 cores (shared with other work); request_timeout {stall:g} s (now a "
            f"stall limit: no progress on `/metrics` for that long) against a generous {GENEROUS:g} s, alternating "
            "order.",
            "",
            "| round | request_timeout (s) | answers stored | errors | longest answer (s) | wall time (s) |",
            "|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            f"- With request_timeout {stall:g} s: **{stored}/{prompts * len(ratios)} answers stored, {errors} errors** "
            f"(target 0), while the longest answer took {med(stall, 'longest'):.0f} s (median), "
            f"{med(stall, 'longest') / stall:.0f}x the limit. Issue 12 reports what such a run came to before "
            "(request_timeout a limit on the whole answer): `16 requests failed in a row`, 0 of 200 answered.",
            f"- Wall time, stall limit / generous timeout: **{statistics.median(ratios):.2f}** (median; per round "
            + ", ".join(f"{r:.2f}" for r in ratios)
            + "); target about 1.",
            "",
            f"(b) A managed model through the runner, request_timeout {hang_timeout:g} s, parallel 8; its engine "
            "SIGSTOPped mid-run (2000 tokens into it). Time = SIGSTOP to the replacement server's start (frozen "
            "counters for request_timeout, then the 1-token probe, then the old server's teardown).",
            "",
            "| round | SIGSTOP to restart (s) | restarts | answers stored | status |",
            "|---:|---:|---:|---:|---|",
            *hang_rows,
            "",
            f"- SIGSTOP to restart, median **{statistics.median(restart):.1f} s** (max {max(restart):.1f} s); target "
            f"within request_timeout + 30 s = {hang_timeout + 30:g} s: {'met' if met else 'NOT met'}.",
            "",
        ]
    )


def _pairs(slow: Sequence[SlowRun], stall: float) -> list[tuple[SlowRun, SlowRun]]:
    """(stall-limit run, generous run) of each round."""
    rounds = [slow[i : i + 2] for i in range(0, len(slow), 2)]
    return [(a, b) if a.request_timeout == stall else (b, a) for a, b in rounds]


def main(argv: Sequence[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=128)
    parser.add_argument("--max-tokens", type=int, default=100)
    parser.add_argument("--stall-limit", type=float, default=2.0)
    parser.add_argument("--hang-timeout", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hang-rounds", type=int, default=2)
    parser.add_argument("--model", type=Path, default=None, help="a model dir (default: write the smoke model)")
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    command = "python -m benchmarks.slow_server " + " ".join(argv if argv is not None else sys.argv[1:])
    with tempfile.TemporaryDirectory(prefix="slow-bench-") as tmp:
        work = Path(tmp)
        model = args.model
        if model is None:
            from orchestrator.smoke_model import write_smoke_model

            model = write_smoke_model(work / "model")
        problems = load_problems(args.prompts, model)
        slow = slow_rounds(model, problems, args.max_tokens, args.stall_limit, args.rounds, work)
        hangs = [hang_run(model, problems[:40], args.hang_timeout, work, n) for n in range(args.hang_rounds)]
    return publish(
        args.out,
        render(slow, hangs, command.strip(), args.prompts, args.max_tokens, args.stall_limit, args.hang_timeout),
    )


if __name__ == "__main__":
    main()
