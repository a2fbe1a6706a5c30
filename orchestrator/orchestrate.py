"""The whole run: clean up orphans, pick GPUs, plan, load datasets, schedule model jobs, write the leaderboard.

``execute(options)`` is what the CLI calls; it raises ``InputError`` subclasses for bad input before any server
starts and returns a ``RunSummary`` otherwise.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from . import datasets as ds
from . import gpus as gpumod
from .config import RunConfig
from .contract import AnswerRecord, DatasetSpec, Grade, ModelConfig
from .errors import ConfigError, PlanError, ResultsError
from .manifest import Manifest
from .plan import Placement, plan, render_plan
from .progress import Progress
from .runner import DatasetRun, ModelOutcome, RunContext, run_model
from .server import LOCAL_HOSTS
from .statuswriter import StatusWriter

log = logging.getLogger(__name__)
ORIGINAL_DATASETS = ("russianmath", "russianphysics")  # `all` for a config without `datasets:`, as upstream
ALIASES = {"math": "russianmath", "physics": "russianphysics"}


@dataclass
class RunOptions:
    """The CLI's choices, already parsed."""

    config: RunConfig
    gpus: list[int] | None = None
    datasets: str = "all"
    models: list[str] | None = None
    limit: int | None = None
    results_dir: Path = Path("results")
    logs_dir: Path = Path("logs")
    fresh: bool = False
    dry_run: bool = False
    max_cpu_servers: int | None = None
    parallel: int | None = None
    grade: bool = True
    progress_stream: object = None
    backend: str = "local"             # local | ray
    ray_address: str | None = None     # --ray-address (backend ray): auto or HOST:PORT
    ray_resource: str | None = None    # --ray-resource: custom resource each CPU server asks for


@dataclass
class RunSummary:
    """What the CLI reports and exits with."""

    run_id: str
    outcomes: list[ModelOutcome] = field(default_factory=list)
    leaderboard: dict[str, Path] = field(default_factory=dict)
    manifest: Path | None = None
    plan_text: str = ""
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return all(o.status == "finished" for o in self.outcomes) and not self.interrupted

    @property
    def exit_code(self) -> int:
        """0 every model finished, 1 a model failed, 130 interrupted (a signal exits from its handler instead)."""
        return 130 if self.interrupted else 0 if self.ok else 1


def select_models(cfg: RunConfig, names: Sequence[str] | None, parallel: int | None = None) -> list[ModelConfig]:
    """The models to run, in model_list order (``parallel`` overrides each one's); unknown names are a ConfigError."""
    known = {m.key: m for m in cfg.models}
    for name in names or ():
        if name not in known:
            raise ConfigError(f"--models: {name!r} is not in model_list of {cfg.path}; choose from {', '.join(known)}")
    chosen = [m for m in cfg.models if not names or m.key in set(names)]
    if parallel is None:
        return chosen
    return [dataclasses.replace(m, sampling=dataclasses.replace(m.sampling, parallel=parallel)) for m in chosen]


def select_datasets(cfg: RunConfig, arg: str) -> list[DatasetSpec]:
    """``all`` = the config's declared datasets (or RussianMath + RussianPhysics); else comma-separated names."""
    if arg.strip() in ("", "all"):
        names = list(cfg.datasets) or list(ORIGINAL_DATASETS)
    else:
        names = [ALIASES.get(n.strip(), n.strip()) for n in arg.split(",") if n.strip()]
    specs = []
    for name in names:
        spec = cfg.datasets.get(name) or ds.REGISTRY.get(name)
        if spec is None:
            choices = ", ".join(sorted(set(cfg.datasets) | set(ds.REGISTRY)))
            raise ConfigError(f"--dataset: unknown dataset {name!r}; choose from all, {choices}, "
                              "or declare it under `datasets:` in the config")
        specs.append(spec)
    return specs


def load_datasets(specs: Sequence[DatasetSpec], limit: int | None) -> list[DatasetRun]:
    """Load every dataset before any server starts (bad data is bad input: exit 2)."""
    runs = []
    for spec in specs:
        problems = ds.load(spec, limit=None)
        version = ds.dataset_version(problems)
        runs.append(DatasetRun(spec=spec, problems=tuple(problems[:limit] if limit else problems), version=version))
    return runs


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def gpu_pool(models: Sequence[ModelConfig], wanted: list[int] | None) -> tuple[list[int], list[str], object]:
    """Discover and lock the GPU pool; ([], [], None) for a CPU-only machine or API-only runs."""
    if not any(m.managed for m in models):
        return [], [], None
    found = gpumod.discover()
    if not found:
        if wanted:
            raise PlanError(f"--gpus {','.join(map(str, wanted))}: no GPU found (nvidia-smi lists none); "
                            "drop --gpus to serve models on the CPU")
        return [], [], None
    chosen = gpumod.select(found, wanted)
    locks = gpumod.GpuLocks.for_gpus(chosen)
    held = locks.acquire_available([g.index for g in chosen])
    if not held:
        raise PlanError("every GPU of the pool is locked by another deathmath-orchestrate on this host; "
                        "wait for it or choose other GPUs with --gpus")
    names = [f"{g.index}: {g.name}" for g in chosen if g.index in held]
    return sorted(held), names, locks


def execute(opts: RunOptions) -> RunSummary:
    """Run the benchmark; see the module docstring."""
    models = select_models(opts.config, opts.models, opts.parallel)
    specs = select_datasets(opts.config, opts.datasets)
    limit = opts.limit or opts.config.num_examples
    max_cpu = opts.max_cpu_servers or opts.config.max_cpu_servers
    if opts.backend == "ray":  # imported only here: a local run never imports ray
        from .raybackend import execute_ray
        return execute_ray(opts, models, specs, limit)
    if opts.dry_run:
        pool = opts.gpus if opts.gpus is not None else [g.index for g in gpumod.discover()]
        placements = plan(models, pool, _preview_ports(), max_cpu_servers=max_cpu, python=sys.executable)
        return RunSummary(run_id="dry-run", plan_text=render_plan(placements))
    runs = load_datasets(specs, limit)
    preflight(opts.results_dir, opts.logs_dir)  # bad input is found before anything on disk changes
    from .state import cleanup
    killed = cleanup(opts.logs_dir)
    for rec in killed:
        log.warning("cleanup: killed orphaned server %s (pid %s, port %s) of run %s", rec.name, rec.pid, rec.port, rec.run_id)
    pool, gpu_names, locks = gpu_pool(models, opts.gpus)
    try:
        placements = plan(models, pool, _preview_ports(), max_cpu_servers=max_cpu, python=sys.executable,
                          weights=_weights(opts.results_dir))
        return _execute_plan(opts, models, runs, placements, pool, gpu_names, max_cpu)
    finally:
        if locks is not None:
            locks.release_all()


def _weights(results_dir: Path) -> dict[str, float]:
    """Seconds each model took before (from its stored series), so long jobs start first."""
    from .plan import estimate_weights
    from .results import load_scores
    return estimate_weights(load_scores(results_dir)) if results_dir.is_dir() else {}


def _preview_ports() -> range:
    return range(8100, 9000)


def _execute_plan(opts: RunOptions, models: list[ModelConfig], runs: list[DatasetRun], placements: list[Placement],
                  pool: list[int], gpu_names: list[str], max_cpu: int, schedule=None) -> RunSummary:
    """``schedule(ctx, placements, stop)`` replaces the local scheduler (the Ray backend's ``run``)."""
    from .scheduler import Scheduler
    from .signals import ServerGroup, install_signal_handlers
    run_id = new_run_id()
    _check_writable(opts.results_dir)
    manifest = Manifest(opts.results_dir, run_id, opts.config.redacted(), models, gpu_names)
    manifest.save()
    stop = threading.Event()
    servers = ServerGroup()
    install_signal_handlers(lambda: (stop.set(), servers.stop_all()))
    progress = Progress(stream=opts.progress_stream or sys.stderr)
    status = StatusWriter.for_run(opts.results_dir, run_id, progress, manifest, sum(len(r.problems) for r in runs))
    ctx = RunContext(run_id=run_id, results_dir=opts.results_dir, logs_dir=opts.logs_dir, datasets=runs,
                     stop=stop, progress=progress, servers=servers, manifest=manifest,
                     grade=_grader() if opts.grade else None, fresh=opts.fresh)
    by_key = {p.job.model.key: p for p in placements}

    def launch(job, gpus):
        try:
            return run_model(ctx, job.model, _spec(by_key[job.model.key], gpus))
        except ResultsError as exc:  # the disk failed: every model would fail on it; stop the run, report once
            log.debug("model %s: %s; stopping the run", job.model.key, exc)
            stop.set()
            return exc

    progress.start()
    status.start()
    try:
        if schedule is not None:
            results = schedule(ctx, placements, stop)
        else:
            results = Scheduler([p.job for p in placements], pool, launch, max_cpu_servers=max_cpu).run(stop)
    except SystemExit as exc:  # a signal: servers are already stopping; keep what the run produced, then exit
        servers.stop_all()
        _finish_interrupted(opts.results_dir, runs, manifest)
        status.finish("interrupted", exc.code if isinstance(exc.code, int) else 1)
        raise
    finally:
        progress.close()
        servers.stop_all()
    try:
        outcomes = [_outcome(k, results[k], stop.is_set()) for k in by_key]
    except ResultsError:  # the disk: what was written stays; the manifest says the run failed if it still can
        _finish_quietly(manifest, "failed")
        status.finish("failed", ResultsError.exit_code)
        raise
    summary = RunSummary(run_id=run_id, outcomes=outcomes, manifest=manifest.path, interrupted=stop.is_set())
    summary.leaderboard = rebuild_leaderboard(opts.results_dir, [r.spec.name for r in runs])
    manifest.finish("interrupted" if stop.is_set() else ("finished" if summary.ok else "failed"))
    status.finish(manifest.data["status"], summary.exit_code)
    return summary


def _finish_interrupted(results_dir: Path, runs: list[DatasetRun], manifest: Manifest) -> None:
    """After SIGINT/TERM/HUP: rebuild the leaderboard from the checkpoints and mark the manifest interrupted."""
    try:
        rebuild_leaderboard(results_dir, [r.spec.name for r in runs])
        manifest.finish("interrupted")
    except Exception:  # noqa: BLE001 -- never mask the exit; the checkpoints are already on disk
        log.exception("could not write the leaderboard or manifest after the interrupt")


def _finish_quietly(manifest: Manifest, status: str) -> None:
    try:
        manifest.finish(status)
    except ResultsError as exc:
        log.warning("could not mark the manifest %s: %s", status, exc)


def _spec(placement: Placement, gpus: tuple[int, ...]):
    if placement.spec is None:
        return None
    spec = dataclasses.replace(placement.spec, gpus=tuple(gpus), port=placement.job.model.vllm.port or 0)
    if spec.host not in LOCAL_HOSTS and not spec.api_key:
        spec = dataclasses.replace(spec, api_key=secrets.token_urlsafe(32))  # reachable from outside: require a key
    return dataclasses.replace(spec, env=tuple(_placement_env(spec).items()) + spec.env)


def _placement_env(spec) -> dict[str, str]:
    """GPU servers: CUDA numbering as nvidia-smi's. CPU servers with TP > 1: one core range per worker."""
    if spec.gpus:
        return {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    workers = spec.tensor_parallel_size * spec.pipeline_parallel_size
    if workers == 1 or any(k == "VLLM_CPU_OMP_THREADS_BIND" for k, _ in spec.env):
        return {}
    cores = sorted(os.sched_getaffinity(0))
    share = max(1, len(cores) // workers)
    ranges = [cores[i * share:(i + 1) * share] or cores[-1:] for i in range(workers)]
    return {"VLLM_CPU_OMP_THREADS_BIND": "|".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in ranges)}


def _outcome(key: str, result: object, stopped: bool) -> ModelOutcome:
    if isinstance(result, ModelOutcome):
        return result
    if isinstance(result, ResultsError):
        raise result
    if stopped:
        return ModelOutcome(model=key, status="interrupted", error=str(result))
    return ModelOutcome(model=key, status="failed", error=f"{type(result).__name__}: {result}")


def _grader():
    from .grading import grade

    def grade_record(rec: AnswerRecord) -> Grade:
        return grade(rec.response, rec.reference, rec.domain, rec.tolerance)
    return grade_record


def preflight(results_dir: Path, logs_dir: Path) -> None:
    """ConfigError unless both directories exist and are writable, or can be created; changes nothing on disk."""
    for flag, path in (("--results-dir", results_dir), ("--logs-dir", logs_dir)):
        _check_creatable(flag, Path(path))


def _check_creatable(flag: str, path: Path) -> None:
    target = path
    while not target.exists() and not target.is_symlink() and target != target.parent:
        target = target.parent  # the nearest existing ancestor is where the directory would be created
    if not target.is_dir():
        problem = "is not a directory" if target == path else f"cannot be created: {target} is not a directory"
        raise ConfigError(f"{flag} {path}: {problem}; choose a directory path")
    if not os.access(target, os.W_OK | os.X_OK):
        where = "" if target == path else f" (its parent {target} is read-only)"
        raise ConfigError(f"{flag} {path}: not writable{where}; fix its permissions or choose another directory")


def _check_writable(results_dir: Path) -> None:
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--results-dir {results_dir}: cannot create it ({exc.strerror}); choose a writable directory") from None
    if not os.access(results_dir, os.W_OK | os.X_OK):
        raise ConfigError(f"--results-dir {results_dir}: not writable; fix its permissions or choose another directory")


def rebuild_leaderboard(results_dir: Path, datasets: Sequence[str] | None = None) -> dict[str, Path]:
    """Aggregate the current series under ``results_dir`` and write leaderboard.md/.json/.html."""
    from .leaderboard import write_leaderboard
    from .results import load_scores
    return write_leaderboard(results_dir, load_scores(results_dir), datasets)


def regrade_all(results_dir: Path) -> int:
    """Re-score every current series under ``results_dir`` with the current grader; returns answers re-scored."""
    from .grading import GradeRequest, grade_many
    from .results import regrade

    def batch(records: Sequence[AnswerRecord]) -> list[Grade]:
        return grade_many([GradeRequest(r.response, r.reference, r.domain, r.tolerance) for r in records])
    return regrade(results_dir, grade_batch=batch)
