"""The chaos soak: run the real orchestrator again and again and break it on purpose.

Each round runs ``deathmath-orchestrate`` (as a subprocess, exactly as users do) on two managed models on real vLLM
CPU servers (the tiny model) and the two sample datasets, in a fresh results/logs directory, and injects faults at
random moments drawn from a seed: SIGKILL of the API server, of ``VLLM::EngineCore``, of ``VLLM::Worker``; SIGSTOP of
the engine (left stopped: a hung server the orchestrator must detect through its request timeout and a probe, then
restart); the chosen port taken by an unrelated listener before vLLM binds it; SIGKILL (then ``cleanup``) or SIGTERM
of the orchestrator itself, followed by a new run that resumes. After each round: every (model, dataset, problem)
answered exactly once, no torn line, the leaderboard consistent with the details, no process of ours alive, and the
round within its time bound.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import checks
from .faults import KINDS, ORCHESTRATOR_KINDS, Fault, PortThief, inject_signal, server_processes

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
MODELS = ("chaos-a", "chaos-b")
DATASETS = ("sample-math", "sample-physics")
REQUEST_TIMEOUT = 20.0
POLL = 0.2


@dataclass
class Settings:
    """What every round runs: the model directory, problems per dataset, and the time bound of a round."""

    model_dir: Path
    workdir: Path
    limit: int = 10
    max_tokens: int = 48
    bound_base: float = 420.0  # a round without faults: two CPU servers start and answer
    bound_per_fault: float = 240.0  # detection (hang: request timeout + probe) and a restart
    python: str = sys.executable


@dataclass
class RoundResult:
    """The facts of one round (faults with their outcome, checks' violations, figures)."""

    index: int
    faults: list[Fault]
    seconds: float = 0.0
    invocations: int = 0
    server_starts: int = 0
    lost: int = 0
    duplicates: int = 0
    orphans: int = 0
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


def write_config(settings: Settings, path: Path) -> Path:
    """Two managed models on the tiny model, short request timeout (hangs must be found quickly), 3 restarts."""
    blocks = "".join(
        textwrap.dedent(f"""
        {name}:
          model_name: {name}
          vllm: {{model: {settings.model_dir}, max_model_len: 1024, startup_timeout: 400, max_restarts: 3}}
          parallel: 4
          max_tokens: {settings.max_tokens}
          request_timeout: {REQUEST_TIMEOUT}
        """)
        for name in MODELS
    )
    path.write_text(
        f"model_list: [{', '.join(MODELS)}]\n{blocks}\ndatasets:\n"
        + "".join(f"  {d}: {{}}\n" for d in DATASETS)
        + "temperature: 0.0\n"
    )
    return path


def expected_ids(config: Path, limit: int) -> dict[tuple[str, str], list[str]]:
    """(model, dataset) -> the problem ids a run must answer, through the orchestrator's own loaders."""
    from orchestrator.config import load_config
    from orchestrator.orchestrate import load_datasets

    cfg = load_config(config)
    runs = load_datasets([cfg.datasets[d] if d in cfg.datasets else _registered(d) for d in DATASETS], limit)
    return {(m, run.spec.name): [p.id for p in run.problems] for m in MODELS for run in runs}


def _registered(name: str):
    from orchestrator.datasets import REGISTRY

    return REGISTRY[name]


def plan_faults(rng: random.Random, count: int, kinds: Sequence[str] = KINDS) -> list[Fault]:
    """``count`` faults of random kinds on random models, each 0-3 s after its target's first answer."""
    faults = []
    for _ in range(count):
        kind = rng.choice(list(kinds))
        model = None if kind in ORCHESTRATOR_KINDS else rng.choice(MODELS)
        faults.append(Fault(kind=kind, model=model, delay=round(rng.uniform(0.0, 3.0), 2)))
    return faults


class Round:
    """One round: start the orchestrator, inject the planned faults as their moments come, check the outcome."""

    def __init__(self, index: int, settings: Settings, faults: list[Fault]) -> None:
        self.settings, self.result = settings, RoundResult(index=index, faults=faults)
        self.dir = settings.workdir / f"round-{index:03d}"
        self.results, self.logs = self.dir / "results", self.dir / "logs"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config = write_config(settings, self.dir / "run.yaml")
        self.expected = expected_ids(self.config, settings.limit)
        self.thieves: list[PortThief] = []
        self._armed: dict[int, float] = {}
        self._baseline: dict[str, int] = {}

    def run(self) -> RoundResult:
        began = time.monotonic()
        deadline = began + self.settings.bound_base + self.settings.bound_per_fault * len(self.result.faults)
        self.thieves = [PortThief(self.logs, f).start() for f in self.result.faults if f.kind == "port_taken"]
        try:
            self._invocations(deadline)
        finally:
            for thief in self.thieves:
                thief.stop()
            self.result.seconds = time.monotonic() - began
            self._sweep()
        self._check(deadline)
        return self.result

    # -- running ----------------------------------------------------------------------------------------------
    def _invocations(self, deadline: float) -> None:
        while True:
            proc = self._start()
            code = self._watch(proc, deadline)
            if code == "again":
                continue
            if code == 0:
                self._note_finished()
            if code != 0:
                self.result.violations.append(f"orchestrator exited {code}; see {self.dir}/orchestrator-*.log")
            return

    def _start(self) -> subprocess.Popen:
        self.result.invocations += 1
        out = open(self.dir / f"orchestrator-{self.result.invocations}.log", "wb")
        cmd = [
            self.settings.python,
            "-m",
            "orchestrator.cli",
            "run",
            "--config",
            str(self.config),
            "--results-dir",
            str(self.results),
            "--logs-dir",
            str(self.logs),
            "--limit",
            str(self.settings.limit),
            "--max-cpu-servers",
            "2",
            "-v",
        ]
        with out:
            return subprocess.Popen(
                cmd,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def _watch(self, proc: subprocess.Popen, deadline: float) -> int | str:
        counts = self._answered()
        while True:
            code = proc.poll()
            if code is not None:
                return code
            if time.monotonic() > deadline:
                self.result.violations.append("round exceeded its time bound; orchestrator SIGKILLed")
                _kill_group(proc)
                return -9
            now = self._answered()
            self._note_recoveries(counts, now)
            counts = now
            fault = self._due(now)
            if fault is not None and self._inject(fault, proc):
                return "again"
            time.sleep(POLL)

    def _answered(self) -> dict[str, int]:
        counts = {}
        for model in MODELS:
            total = 0
            for dataset in DATASETS:
                records, _ = checks.read_details(self.results / "details" / model / f"{dataset}.jsonl")
                total += sum(1 for r in records if r.get("error") is None)
            counts[model] = total
        return counts

    def _note_recoveries(self, before: dict[str, int], now: dict[str, int]) -> None:
        """A fault is recovered when its model (any model, for orchestrator faults) answers again afterwards (an
        orchestrator fault also when the next run finishes: ``_note_finished``)."""
        moment = time.monotonic()
        for fault in self.result.faults:
            if fault.injected_at is None or fault.recovered_at is not None or moment - fault.injected_at < 1.0:
                continue
            models = MODELS if fault.model is None else (fault.model,)
            if any(now[m] > before[m] for m in models):
                fault.recovered_at = moment

    def _note_finished(self) -> None:
        """A run that finished after an orchestrator fault recovered from it, answers or not: the fault may have
        come when nothing was left to ask (the resumed run then only checks its answers and writes the board)."""
        moment = time.monotonic()
        for fault in self.result.faults:
            if fault.model is None and fault.injected_at is not None and fault.recovered_at is None:
                fault.recovered_at = moment

    def _due(self, counts: dict[str, int]) -> Fault | None:
        """A fault whose moment has come: its target answered something since the previous fault on it (so faults
        hit a running series, not a start-up), plus the fault's delay."""
        now = time.monotonic()
        for fault in self._eligible():
            models = MODELS if fault.model is None else (fault.model,)
            if id(fault) not in self._armed and any(counts[m] > self._baseline.get(m, 0) for m in models):
                self._armed[id(fault)] = now
            if id(fault) in self._armed and now - self._armed[id(fault)] >= fault.delay:
                self._baseline.update({m: counts[m] for m in models})
                return fault
        return None

    def _eligible(self) -> list[Fault]:
        """The first pending fault of each model; an orchestrator fault waits for every fault before it, and every
        fault after it waits for it."""
        eligible: list[Fault] = []
        targets: set[str | None] = set()
        for fault in self.result.faults:
            if fault.injected_at is not None or fault.missed or fault.kind == "port_taken":
                continue
            if fault.model is None and eligible or None in targets:
                break
            if fault.model not in targets:
                eligible.append(fault)
                targets.add(fault.model)
        return eligible

    def _inject(self, fault: Fault, proc: subprocess.Popen) -> bool:
        """Inject ``fault``; True when the orchestrator is gone and a new invocation must follow."""
        if fault.kind not in ORCHESTRATOR_KINDS:
            if not inject_signal(fault, self.logs):
                self._armed.pop(id(fault), None)  # not running now (restarting?): wait for its next answer
                if self._model_done(fault.model):
                    fault.missed = "its model had finished"
            return False
        sig = signal.SIGKILL if fault.kind == "kill_orchestrator" else signal.SIGTERM
        fault.injected_at, fault.target = time.monotonic(), f"orchestrator pid {proc.pid}"
        proc.send_signal(sig)
        code = _wait(proc, 120.0)
        log.info("chaos: %s -> orchestrator exited %s", fault.kind, code)
        if fault.kind == "term_orchestrator" and code != 128 + signal.SIGTERM and code != -signal.SIGTERM:
            self.result.violations.append(f"SIGTERM: orchestrator exited {code}, expected {128 + signal.SIGTERM}")
        if fault.kind == "kill_orchestrator":
            self._cleanup()
        violations, orphans = checks.check_no_processes(self.logs)
        self.result.orphans += orphans
        self.result.violations += [f"after {fault.kind}: {v}" for v in violations]
        return True

    def _model_done(self, model: str | None) -> bool:
        return model is not None and self._answered()[model] >= sum(
            len(v) for (m, _), v in self.expected.items() if m == model
        )

    def _cleanup(self) -> None:
        cmd = [self.settings.python, "-m", "orchestrator.cli", "cleanup", "--logs-dir", str(self.logs)]
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=180)
        log.info("chaos: cleanup -> %s", (out.stdout + out.stderr).strip().splitlines()[-1:])

    def _sweep(self) -> None:
        """Whatever the orchestrator left alive is an orphan: count it, then kill it so the next round is clean."""
        survivors = server_processes(self.logs)
        for pid, _, _ in survivors:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    # -- checking ---------------------------------------------------------------------------------------------
    def _check(self, deadline: float) -> None:
        r = self.result
        violations, r.lost, r.duplicates = checks.check_answers(self.results, self.expected)
        r.violations += violations + checks.check_leaderboard(self.results, self.expected)
        process_violations, orphans = checks.check_no_processes(self.logs)
        r.orphans += orphans
        r.violations += process_violations
        r.server_starts = _count_starts(self.logs)
        for fault in r.faults:
            if fault.injected_at is None and not fault.missed:
                fault.missed = "its moment never came (the run finished first)"


def _count_starts(logs: Path) -> int:
    marker = b"=== deathmath-orchestrate:"
    return sum(p.read_bytes().count(marker) for p in logs.glob("*/*.log"))


def _wait(proc: subprocess.Popen, timeout: float) -> int | None:
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return None


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(30)
