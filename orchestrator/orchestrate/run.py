"""The whole run: select models and datasets, preflight, plan on a backend, run the jobs, write the leaderboard.

``execute(options)`` is what the CLI calls; it raises ``InputError`` subclasses for bad input before any server
starts and returns a ``RunSummary`` otherwise. Where the jobs run is the backend's business (``backend.Backend``:
``LocalBackend`` on this host, ``ray.backend.RayBackend`` on a Ray cluster); the steps every run shares -- the
manifest, signals, progress, the leaderboard -- are done here once.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from ..backend import Backend, LocalBackend
from ..config import RunConfig
from ..contract import DatasetSpec, ModelConfig
from ..errors import ResultsError
from ..hub.weights import render_weights
from ..job import DatasetRun, ModelOutcome, ModelState, RunContext, end_state, record_grader
from ..judge.job import JudgeTask
from ..notify import INTERRUPTED_WAIT_S, Notifier, RunNotices
from ..ray.backend import RayBackend
from ..results import load_scores
from ..scheduling import estimates as est
from ..scheduling.forecast import DeadlineWatch, Forecast, deadline_notes, next_time, render_forecast
from ..scheduling.history import estimate_weights, mean_tokens
from ..scheduling.plan import Placement
from ..serving.signals import ServerGroup, install_signal_handlers
from ..status.manifest import Manifest
from ..status.progress import Progress
from ..status.writer import StatusWriter
from .inputs import check_writable, load_datasets, preflight, select_datasets, select_models
from .offline import rebuild_leaderboard

log = logging.getLogger(__name__)


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
    progress_stream: TextIO | None = None
    backend: str = "local"  # local | ray
    ray_address: str | None = None  # --ray-address (backend ray): auto or HOST:PORT
    ray_resource: str | None = None  # --ray-resource: custom resource each CPU server asks for
    prefetch: int = 1  # --prefetch N: hub models fetched ahead of the GPUs (0: no overlap)
    delete_weights_after: bool = False  # --delete-weights-after: drop what this run downloaded after its last job
    rejudge: bool = False  # --rejudge: ask the judge again about answers it already judged
    finish_by: str | None = None  # --finish-by HH:MM: say which models will not finish by then; warn while running


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
        return all(o.status == ModelState.FINISHED for o in self.outcomes) and not self.interrupted

    @property
    def exit_code(self) -> int:
        """0 every model finished, 1 a model failed, 130 interrupted (a signal exits from its handler instead)."""
        return 130 if self.interrupted else 0 if self.ok else 1


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def judge_task(opts: RunOptions, models: Sequence[ModelConfig]) -> JudgeTask | None:
    """The judge of the config's ``judge:`` block, auditing this run's models; None without one."""
    cfg = opts.config
    if cfg.judge is None or cfg.judge_model is None:
        return None
    return JudgeTask.of(cfg.judge, cfg.judge_model, [m.key for m in models], rejudge=opts.rejudge)


def _after(judge: JudgeTask | None) -> dict[str, tuple[str, ...]] | None:
    return judge.after if judge is not None else None


def open_backend(opts: RunOptions, models: Sequence[ModelConfig], judge: JudgeTask | None = None) -> Backend:
    """The backend of ``--backend``: this host (default), or a Ray cluster (joined now; ConfigError if none).
    ``models`` include the judge's (``judge.model``) when there is one."""
    if opts.backend == "ray":
        backend = RayBackend.connect(opts.ray_address, opts.ray_resource)
        backend.judge = judge
        return backend
    return LocalBackend(
        models,
        opts.gpus,
        opts.max_cpu_servers or opts.config.max_cpu_servers,
        prefetch=opts.prefetch,
        delete_weights_after=opts.delete_weights_after,
        judge=judge,
    )


def execute(opts: RunOptions) -> RunSummary:
    """Run the benchmark; see the module docstring."""
    judge = judge_task(opts, select_models(opts.config, opts.models))
    models = select_models(opts.config, opts.models, opts.parallel) + ([judge.model] if judge else [])
    specs = select_datasets(opts.config, opts.datasets)
    backend = open_backend(opts, models, judge)
    try:
        if opts.dry_run:
            runs = _loaded_or_none(specs, opts.limit or opts.config.num_examples)
            forecast = estimated(opts, models, runs, backend, judge)
            placements = backend.plan(models, est.weights(forecast), est.startups(forecast), _after(judge))
            texts = [backend.render(placements), render_forecast(placements, forecast)]
            texts += _deadline(opts, placements, backend) + [render_weights(models)]
            return RunSummary(run_id="dry-run", plan_text="\n".join(t for t in texts if t))
        runs = load_datasets(specs, opts.limit or opts.config.num_examples)
        preflight(opts.results_dir, opts.logs_dir)  # bad input is found before anything on disk changes
        backend.reserve(opts.logs_dir)
        forecast = estimated(opts, models, runs, backend, judge)
        placements = backend.plan(models, est.weights(forecast), est.startups(forecast), _after(judge))
        for note in _deadline(opts, placements, backend):
            log.warning("%s", note)
        return run_placements(opts, models, runs, placements, backend, forecast)
    finally:
        backend.close()


def estimated_seconds(results_dir: Path) -> dict[str, float]:
    """Seconds each model took before (from its stored series), so long jobs start first."""
    return estimate_weights(load_scores(results_dir)) if results_dir.is_dir() else {}


def estimated(
    opts: RunOptions,
    models: Sequence[ModelConfig],
    runs: Sequence[DatasetRun] | None,
    backend: Backend,
    judge: JudgeTask | None = None,
) -> dict[str, est.Estimate]:
    """Each model's estimate (``scheduling.estimates``): its history's seconds, else from its facts and workload;
    the judge's workload is at most every answer of the models it audits."""
    scores = load_scores(opts.results_dir) if opts.results_dir.is_dir() else []
    problems = sum(len(r.problems) for r in runs) if runs is not None else 0
    answers = judge.answers(problems, models) if judge else None
    return est.model_estimates(
        models,
        problems,
        backend.gpu_name(),
        history=estimate_weights(scores),
        mean_tokens=mean_tokens(scores),
        answers=answers,
    )


def _loaded_or_none(specs: Sequence[DatasetSpec], limit: int | None) -> list[DatasetRun] | None:
    """The datasets for a dry run's estimates; None when they cannot be loaded now (the estimate then says 0)."""
    try:
        return load_datasets(specs, limit)
    except Exception as exc:  # noqa: BLE001 - a dry run shows the plan anyway; the real run reports the data
        log.warning("dry run: datasets not loaded (%s); estimates count no problems", exc)
        return None


def _deadline(opts: RunOptions, placements: Sequence[Placement], backend: Backend) -> list[str]:
    if not opts.finish_by:
        return []
    now = dt.datetime.now()
    pool = sorted({g for p in placements for g in p.gpus})
    return deadline_notes(placements, now, next_time(opts.finish_by, now), pool)


def run_placements(
    opts: RunOptions,
    models: list[ModelConfig],
    runs: list[DatasetRun],
    placements: list[Placement],
    backend: Backend,
    estimates: Mapping[str, est.Estimate] | None = None,
) -> RunSummary:
    """The run itself: manifest, signals, progress; the backend runs the jobs; then the leaderboard. The status
    shows the plan (``estimates``, ``placements``, ``--finish-by``) against the run (``Forecast``)."""
    run_id = new_run_id()
    check_writable(opts.results_dir)
    manifest = Manifest(opts.results_dir, run_id, opts.config.redacted(), models, backend.describe())
    manifest.save()
    stop = threading.Event()
    servers = ServerGroup()

    def stop_everything() -> None:  # no server may start after this, and every started one is stopped
        stop.set()
        servers.close()

    install_signal_handlers(stop_everything)
    progress = Progress(stream=opts.progress_stream or sys.stderr)
    deadline = next_time(opts.finish_by) if opts.finish_by else None
    plan = Forecast.of(placements, estimates or {}, time.time(), deadline)
    problems = sum(len(r.problems) for r in runs)
    status = StatusWriter.for_run(opts.results_dir, run_id, progress, manifest, problems, forecast=plan.annotate)
    notices = RunNotices(Notifier(opts.config.notify), run_id, opts.results_dir)  # the run.yaml's `notify:` hooks
    ctx = RunContext(
        run_id=run_id,
        results_dir=opts.results_dir,
        logs_dir=opts.logs_dir,
        datasets=runs,
        stop=stop,
        progress=progress,
        servers=servers,
        manifest=manifest,
        grade=record_grader() if opts.grade else None,
        fresh=opts.fresh,
        on_outcome=notices.model_ended,
    )
    progress.start()
    status.start()
    watch = _watch(opts, placements, progress)
    try:
        results = backend.run(ctx, placements, stop)
    except SystemExit as exc:  # a signal: servers are already stopping; keep what the run produced, then exit
        servers.close()
        _finish_interrupted(opts.results_dir, runs, manifest)
        status.finish("interrupted", exc.code if isinstance(exc.code, int) else 1)
        notices.run_ended("interrupted", exc.code if isinstance(exc.code, int) else 1, [], wait=INTERRUPTED_WAIT_S)
        raise
    finally:
        if watch is not None:
            watch.close()
        progress.close()
        servers.close()  # returns when every server's processes are gone
    return _summarize(opts, runs, placements, results, stop.is_set(), manifest, status, notices)


def _watch(opts: RunOptions, placements: Sequence[Placement], progress: Progress) -> DeadlineWatch | None:
    """``--finish-by``: warn while running when the projected end passes the deadline (never stops a model)."""
    if not opts.finish_by:
        return None
    return DeadlineWatch(placements, next_time(opts.finish_by), progress.left_s).start()


def _summarize(
    opts: RunOptions,
    runs: list[DatasetRun],
    placements: list[Placement],
    results: dict[str, object],
    stopped: bool,
    manifest: Manifest,
    status: StatusWriter,
    notices: RunNotices,
) -> RunSummary:
    try:
        outcomes = [_outcome(p.job.key, results.get(p.job.key), stopped) for p in placements]
    except ResultsError:  # the disk: what was written stays; the manifest says the run failed if it still can
        _finish_quietly(manifest, "failed")
        status.finish("failed", ResultsError.exit_code)
        notices.run_ended("failed", ResultsError.exit_code, [])
        raise
    summary = RunSummary(run_id=manifest.data["run_id"], outcomes=outcomes, manifest=manifest.path, interrupted=stopped)
    summary.leaderboard = rebuild_leaderboard(opts.results_dir, [r.spec.name for r in runs])
    manifest.finish("interrupted" if stopped else ("finished" if summary.ok else "failed"))
    status.finish(manifest.data["status"], summary.exit_code)
    notices.run_ended(manifest.data["status"], summary.exit_code, outcomes)
    return summary


def _finish_interrupted(results_dir: Path, runs: list[DatasetRun], manifest: Manifest) -> None:
    """After SIGINT/TERM/HUP: rebuild the leaderboard from the checkpoints and mark the manifest interrupted."""
    try:
        rebuild_leaderboard(results_dir, [r.spec.name for r in runs])
        manifest.finish("interrupted")
    except Exception:  # never mask the exit; the checkpoints are already on disk
        log.exception("could not write the leaderboard or manifest after the interrupt")


def _finish_quietly(manifest: Manifest, status: str) -> None:
    try:
        manifest.finish(status)
    except ResultsError as exc:
        log.warning("could not mark the manifest %s: %s", status, exc)


def _outcome(key: str, result: object, stopped: bool) -> ModelOutcome:
    if isinstance(result, ModelOutcome):
        return result
    if isinstance(result, ResultsError):
        raise result
    state = end_state(stopped, failed=True)
    error = str(result) if state is ModelState.INTERRUPTED else f"{type(result).__name__}: {result}"
    return ModelOutcome(model=key, status=state, error=error)
