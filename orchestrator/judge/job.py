"""The judge's job: audit this run's series with the judge model, its server up only while it is asked.

A backend runs ``run_judge(ctx, task, spec, ended=...)`` for the judge's placement (key ``JUDGE_KEY``) once
``scheduling.jobs.may_start`` lets it: after every model it audits has ended, or alongside them once one has. It
takes each audited model once ``ended`` lists it (looking again every ``POLL_S``), counts what is still to ask
there (per series, the answers that need judging and have no stored verdict for the same judge hash:
``audit.to_judge``) and asks it. The ``ask`` comes from ``serve`` when the first answer needs one, so with nothing
to ask no server starts: a managed judge's server started on the placement's GPUs and stopped when the audit ends
(``local_serve``; the Ray backend passes one whose server runs in an actor), or an API judge's endpoints in turn,
their starts spaced by the model's ``request_delay`` (``client.ratelimit.LIMITER``). A judge started alongside
keeps its server between models: a second start-up would cost more than the wait. Each series is audited
(``audit.audit_series``) and its details lines get their ``judge`` fields (``with_verdicts``) through
``results.rewrite_series``, which records the judge model and mode in the series' meta too (the leaderboard reads
the mode there). A failed request leaves its answer for the next run (the job ends ``failed``); a stop ends it
``interrupted``; what was stored stays. This module is not imported by the package's ``__init__``: it runs a job
(``job.start_for``), so only the backends import it.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from ..client.ratelimit import LIMITER, RateLimiter
from ..contract import AnswerRecord, Endpoint, ModelConfig, ModelState, RunPhase, ServerSpec
from ..errors import EndpointError, OrchestratorError, ResultsError
from ..job import ModelOutcome, RunContext, end_state, start_for, stop_for
from ..results import SeriesPaths, read_series, rewrite_series
from .ask import MAX_TOKENS, ChatJudge, JudgeAsk
from .audit import audit_series, to_judge, with_verdicts
from .settings import JUDGE_KEY, JudgeSettings
from .store import JudgeStore
from .verdict import JudgeVerdict, read_reply

log = logging.getLogger(__name__)

POLL_S = 1.0  # how often a judge started alongside its models looks for one that has ended


@dataclass(frozen=True)
class JudgeTask:
    """What the judge does in this run: ``model`` is the judge's block keyed ``JUDGE_KEY`` (so it can be in
    model_list too), ``audited`` the keys of the models whose series it audits."""

    settings: JudgeSettings
    model: ModelConfig
    audited: tuple[str, ...]
    rejudge: bool = False

    @classmethod
    def of(
        cls, settings: JudgeSettings, model: ModelConfig, audited: Sequence[str], rejudge: bool = False
    ) -> JudgeTask:
        judge = dataclasses.replace(  # one server asks its audit; a verdict needs few tokens (the estimate's too)
            model,
            key=JUDGE_KEY,
            replicas=1,
            sampling=dataclasses.replace(model.sampling, max_tokens=min(MAX_TOKENS, model.sampling.max_tokens)),
        )
        return cls(settings, judge, tuple(audited), rejudge)

    @property
    def after(self) -> dict[str, tuple[str, ...]]:
        """The plan's ``after`` for this judge: its job reads the series of the models it audits
        (``scheduling.jobs.may_start``)."""
        return {JUDGE_KEY: self.audited}

    def answers(self, problems: int, models: Sequence[ModelConfig]) -> dict[str, int]:
        """The estimate's workload of this judge: at most every answer of the audited models among ``models``."""
        samples = {m.key: m.samples for m in models}
        return {JUDGE_KEY: problems * sum(samples[k] for k in self.audited if k in samples)}

    def ended_of(self, ended: Callable[[], Collection[str]], jobs: Collection[str]) -> Callable[[], set[str]]:
        """``run_judge``'s ``ended``: the run's ended jobs, and any audited model that is no job of the run (it never
        ends, so the judge must not wait for it)."""
        absent = set(self.audited) - set(jobs)
        return lambda: set(ended()) | absent

    @property
    def name(self) -> str:
        """The judge as its verdicts name it (and its hash covers): the config's block name."""
        return self.settings.model


@dataclass
class _Series:
    model: str
    paths: SeriesPaths
    store: JudgeStore
    records: list[AnswerRecord]


def chat_judge(model: ModelConfig, endpoint: Endpoint, stop: threading.Event) -> ChatJudge:
    """The ``ChatJudge`` of the judge's block (``JudgeTask.model``): its read timeout and retries, its
    ``max_tokens`` (``JudgeTask.of`` caps it at ``ask.MAX_TOKENS``: a verdict and one sentence need no more)."""
    transport = model.transport
    return ChatJudge(
        endpoint,
        model.model_name,
        timeout=transport.timeouts.read,
        retries=transport.max_retries,
        max_tokens=model.sampling.max_tokens,
        stop=stop,
    )


Serve = Callable[[RunContext, ModelConfig, "ServerSpec | None"], AbstractContextManager[JudgeAsk]]


def api_ask(model: ModelConfig, ctx: RunContext, limiter: RateLimiter = LIMITER) -> JudgeAsk:
    """An API judge: its endpoints in turn (one ``ChatJudge`` each: several keys share the load), each request
    started ``request_delay`` after the one before on the same endpoint."""
    judges = [chat_judge(model, endpoint, ctx.stop) for endpoint in model.endpoints]
    turns = itertools.count()
    delay = model.transport.request_delay

    def ask(messages: Sequence[dict[str, str]], response_format: dict[str, Any]) -> str:
        judge = judges[next(turns) % len(judges)]
        key = ("judge", model.model_name, judge.endpoint.api_base)
        if limiter.acquire(key, delay, ctx.stop.is_set) is None:
            raise EndpointError(f"judge {model.model_name}: stopped before it was asked")
        return judge(messages, response_format)

    return ask


@contextmanager
def local_serve(ctx: RunContext, model: ModelConfig, spec: ServerSpec | None) -> Iterator[JudgeAsk]:
    """The judge's ``ask``: an API judge's endpoint, or a managed judge's server on this host for as long as the
    block lasts (started and stopped as a model's: ``job.start_for``, ``job.stop_for``)."""
    if spec is None:
        yield api_ask(model, ctx)
        return
    server = start_for(ctx, model, spec)
    try:
        yield chat_judge(model, server.endpoint, ctx.stop)
    finally:
        stop_for(ctx, model, server)


def run_judge(
    ctx: RunContext,
    task: JudgeTask,
    spec: ServerSpec | None,
    *,
    serve: Serve = local_serve,
    ended: Callable[[], Collection[str]] | None = None,
    poll_s: float = POLL_S,
) -> ModelOutcome:
    """Audit every series of ``task.audited`` on ``ctx.datasets``, each model once ``ended`` lists it (default: all
    have ended; else it is looked at every ``poll_s``); see the module docstring. Never raises for the judge's own
    failures (a ``ResultsError`` stops the run, as a model's does)."""
    outcome = ModelOutcome(model=JUDGE_KEY, status=ModelState.RUNNING)
    began = time.monotonic()
    audit = _Audit(ctx, task, spec, serve)
    try:
        with audit:
            audit.each_as_it_ends(ended or (lambda: task.audited), poll_s)
        outcome.status = end_state(ctx.stop.is_set(), failed=audit.failed > 0)
        if audit.failed and outcome.status is ModelState.FAILED:
            last = f" (the last: {audit.errors[-1]})" if audit.errors else ""
            outcome.error = f"{audit.failed} answer(s) not judged: the judge's requests failed{last}; rerun to ask them"
    except ResultsError:
        raise
    except OrchestratorError as exc:
        outcome.status = end_state(ctx.stop.is_set(), failed=True)
        outcome.error = None if outcome.status is ModelState.INTERRUPTED else str(exc)
    finally:
        outcome.seconds = time.monotonic() - began
        ctx.progress.set_status(JUDGE_KEY, outcome.status)
    if outcome.error:
        log.error("judge %s: %s", task.name, outcome.error)
        ctx.progress.note_error(JUDGE_KEY, outcome.error)
    return outcome


class _Audit:
    """The judge's audit in one run: the audited models' series as each model ends, the server (``serve``) entered
    when the first answer needs asking and left when the audit ends; the series' details lines merged at the end
    (also those with nothing to ask: their meta names the judge)."""

    def __init__(self, ctx: RunContext, task: JudgeTask, spec: ServerSpec | None, serve: Serve) -> None:
        self.ctx, self.task, self.spec, self.serve = ctx, task, spec, serve
        self.stack = ExitStack()
        self.ask: JudgeAsk | None = None
        self.seen: list[_Series] = []
        self.failed, self.errors = 0, list[str]()

    def __enter__(self) -> _Audit:
        self.ctx.progress.set_status(JUDGE_KEY, RunPhase.WAITING)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stack.close()
        finally:
            if not isinstance(exc[1], ResultsError):
                for one in self.seen:
                    _merge(self.task, one)

    def each_as_it_ends(self, ended: Callable[[], Collection[str]], poll_s: float) -> None:
        """Audit each audited model's series once ``ended`` lists the model, until every one is done or a stop."""
        left = list(self.task.audited)
        while left and not self.ctx.stop.is_set():
            now = set(ended())
            for model in [m for m in left if m in now]:
                left.remove(model)
                self._model(model)
            if left:
                self.ctx.stop.wait(poll_s)

    def _model(self, model: str) -> None:
        series = _series(self.ctx, model)
        self.seen += series
        todo = sum(len(_todo(self.task, one)) for one in series)
        self.ctx.progress.add_total(JUDGE_KEY, todo)
        if not todo:
            return
        ask = self._asking()
        for one in series:
            if self.ctx.stop.is_set():
                return
            self.failed += _audit(self.ctx, self.task, one, ask, self.errors)

    def _asking(self) -> JudgeAsk:
        """The judge's ``ask``, its server started on first use."""
        if self.ask is None:
            if self.spec is not None:
                self.ctx.progress.set_status(JUDGE_KEY, RunPhase.STARTING)
            self.ask = self.stack.enter_context(self.serve(self.ctx, self.task.model, self.spec))
            self.ctx.progress.set_status(JUDGE_KEY, RunPhase.RUNNING)
        return self.ask


def _series(ctx: RunContext, model: str) -> list[_Series]:
    """The series on disk of ``model`` on this run's datasets, each with its best record per answer."""
    found = []
    for run in ctx.datasets:
        paths = SeriesPaths.of(ctx.results_dir, model, run.spec.name)
        if paths.jsonl.exists():
            found.append(_Series(model, paths, JudgeStore(paths), list(read_series(paths)[2])))
    return found


def _todo(task: JudgeTask, one: _Series) -> list[AnswerRecord]:
    todo, _ = to_judge(
        one.records, judge=task.name, model=one.model, settings=task.settings, store=one.store, rejudge=task.rejudge
    )
    return todo


def _audit(ctx: RunContext, task: JudgeTask, one: _Series, ask: JudgeAsk, errors: list[str]) -> int:
    """Audit one series, counting each reply on the progress display; returns the requests that failed, whose
    errors go to ``errors``."""
    dataset = one.paths.name

    def counted(messages: Sequence[dict[str, str]], response_format: dict[str, Any]) -> str:
        try:
            text = ask(messages, response_format)
        except EndpointError as exc:
            errors.append(str(exc))
            ctx.progress.note_error(JUDGE_KEY, f"{one.model}/{dataset}: {exc}")
            raise
        correct = read_reply(text).verdict is JudgeVerdict.CORRECT
        ctx.progress.record(JUDGE_KEY, dataset, correct=correct, tokens=0, error=False)
        return text

    result = audit_series(
        one.records,
        judge=task.name,
        model=one.model,
        settings=task.settings,
        ask=counted,
        store=one.store,
        rejudge=task.rejudge,
        workers=task.model.parallel,
        stop=ctx.stop,
    )
    log.info("judge %s on %s/%s: %s", task.name, one.model, dataset, result)
    _merge(task, one)
    return result.failed


def _merge(task: JudgeTask, one: _Series) -> bool:
    """Put the stored verdicts into the series' details lines and its meta's judge mode (``rewrite_series``)."""
    meta = {"judge": {"model": task.name, "mode": task.settings.mode.value}}
    return rewrite_series(one.paths, lambda records: with_verdicts(records, one.store, task.name), meta)


__all__ = ["JudgeTask", "Serve", "api_ask", "chat_judge", "local_serve", "run_judge"]
