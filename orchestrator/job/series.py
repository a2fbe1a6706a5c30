"""A model's datasets, series by series: the checkpoint each opens (``open_store``, its meta), the clients that ask
(``client_maker``: a managed server's watched through its progress, with its context length, codec and reasoning
tags), ``run_datasets`` (an API model's one after another, a managed server's overlapped: each series starts as the
one before has handed out its last request), and the progress it reports (``count_done``, ``on_record``)."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..client import ChatClient, Checkpoint, ManagedServer, run_series
from ..client.jsoncodec import codec_named
from ..client.shared import SharedWork
from ..client.thinking import Reasoning
from ..contract import AnswerRecord, Endpoint, Grade, ModelConfig, Problem, SeriesScore, ServerSpec, public_url
from ..grading import grade
from ..prompts import build_messages, prompt_fingerprint
from ..reasoning.auto import tags_for
from ..reasoning.forced import THINK, graded_text
from ..results import SeriesStore, settings_hash
from ..serving import launch
from .context import DatasetRun, ProgressSink, RunContext, ServerLike


def record_grader() -> Callable[[AnswerRecord], Grade]:
    """Grade one answer record with the grader (``RunContext.grade``)."""

    def grade_record(rec: AnswerRecord) -> Grade:
        return grade(
            graded_text(rec.response, rec.reasoning, rec.graded_tail), rec.reference, rec.domain, rec.tolerance
        )

    return grade_record


def open_store(ctx: RunContext, model: ModelConfig, run: DatasetRun) -> Checkpoint:
    """The checkpoint of ``model`` on ``run``: the node's proxy if ``ctx.open_store`` is set, else the store on disk."""
    if ctx.open_store is not None:
        return ctx.open_store(model, run)
    digest = settings_hash(model, run.spec.name, run.version, prompt_fingerprint())
    return SeriesStore(
        ctx.results_dir,
        model.key,
        run.spec.name,
        digest,
        meta=_series_meta(model, run),
        fresh=ctx.take_fresh(model.key, run.spec.name),
    )


def run_datasets(
    ctx: RunContext, model: ModelConfig, endpoint: Endpoint | Sequence[Endpoint], server: ServerLike | None = None
) -> list[SeriesScore]:
    """Each dataset's series: an API model's with ``parallel`` requests at a time, one after another; a managed
    ``server``'s with its queue ahead too (``launch.in_flight``), watched and checked by its client
    (``client.ManagedServer``), each series starting as soon as the one before has handed out its last request
    (``_overlapped``): the engine's batch stays full while the earlier series' longest answers finish."""
    new_client = client_maker(ctx, model, endpoint, server)
    if server is None:
        return [
            _run_dataset(ctx, model, run, new_client, model.parallel) for run in ctx.datasets if not ctx.stop.is_set()
        ]
    return _overlapped(ctx, model, new_client, launch.in_flight(server.spec, model.parallel))


def _overlapped(
    ctx: RunContext, model: ModelConfig, new_client: Callable[[], ChatClient], in_flight: int
) -> list[SeriesScore]:
    """The managed server's series, each in its own thread, started when the previous one is drained (or over);
    returns the scores in order, re-raises the first failure (the series after it are not started)."""
    share = ctx.share_of(model.key)
    results: list[SeriesScore | BaseException | None] = [None] * len(ctx.datasets)
    threads: list[threading.Thread] = []

    def one(i: int, drained: threading.Event) -> None:
        try:
            last = i == len(ctx.datasets) - 1
            results[i] = _run_dataset(ctx, model, ctx.datasets[i], new_client, in_flight, share, last, drained)
        except BaseException as exc:  # noqa: BLE001 -- re-raised in the job's thread, in order
            results[i] = exc
        finally:
            drained.set()

    sizes = [len(run.problems) * model.samples for run in ctx.datasets]  # at most: resumed answers are not asked
    for i in range(len(ctx.datasets)):
        if ctx.stop.is_set() or any(isinstance(r, BaseException) for r in results):
            break
        share.announce(sum(sizes[i + 1 :]))
        drained = threading.Event()
        threads.append(threading.Thread(target=one, args=(i, drained), name=f"series-{model.key}-{i}", daemon=True))
        threads[-1].start()
        drained.wait()
    for thread in threads:
        thread.join()
    scores = []
    for result in results[: len(threads)]:
        if isinstance(result, BaseException):
            raise result
        scores.append(result)
    return scores


def client_maker(
    ctx: RunContext, model: ModelConfig, endpoint: Endpoint | Sequence[Endpoint], server: ServerLike | None
) -> Callable[[], ChatClient]:
    """Makes the clients of ``model``; a managed server's are watched through its progress (request_timeout is a
    stall limit: no progress on its /metrics), know its context length and decode with its codec (default msgspec)."""
    make = functools.partial(ctx.client_factory, endpoint, model.model_name, model.sampling, transport=model.transport)
    if server is None:
        return functools.partial(make, reasoning=Reasoning.of(model.reasoning, model.api_type, None, False))
    return functools.partial(
        make,
        reasoning=_server_reasoning(model, server.spec),
        server=ManagedServer.of(server),
        context_len=server.max_model_len(),
        codec=codec_named(model.vllm.client_codec if model.vllm else None),
    )


def _server_reasoning(model: ModelConfig, spec: ServerSpec) -> Reasoning:
    """The client's reasoning for a managed server: the tags of the parser it was started with (``<think>`` for a
    budget without one), the engine's own budget where it was started with its flags (``launch.reasoning_words``)."""
    parser, _ = launch.reasoning_parser(spec)
    tags = tags_for(parser) if parser is not None else (THINK if model.reasoning.budget is not None else None)
    engine = spec.engine_budget and parser is not None and tags is not None
    return Reasoning.of(model.reasoning, model.api_type, tags, engine)


def _run_dataset(
    ctx: RunContext,
    model: ModelConfig,
    run: DatasetRun,
    new_client: Callable[[], ChatClient],
    in_flight: int,
    share: SharedWork | None = None,
    last: bool = True,
    drained: threading.Event | None = None,
) -> SeriesScore:
    store = open_store(ctx, model, run)
    count_done(ctx.progress, model.key, store, run.problems)
    client = new_client()
    began = time.monotonic()
    try:
        return run_series(
            run.problems,
            client,
            store,
            lambda p: build_messages(p, model.sampling.system_prompt),
            grade=ctx.grade,
            parallel=in_flight,
            samples=model.samples,
            stop=ctx.stop,
            on_record=lambda rec: on_record(ctx.progress, model.key, rec),
            share=share,
            last=last,
            drained=drained,
        )
    finally:
        client.close()
        if ctx.manifest is not None:
            ctx.manifest.timing(model.key, run.spec.name, time.monotonic() - began)


def _series_meta(model: ModelConfig, run: DatasetRun) -> dict:
    return {
        "model_name": model.model_name,
        "dataset_version": run.version,
        "domain": run.spec.domain,
        "total": len(run.problems),
        "sampling": _sampling_meta(model),
        "model": model.vllm.model if model.vllm else [public_url(e.api_base) for e in model.endpoints],
    }


def _sampling_meta(model: ModelConfig) -> dict[str, Any]:
    """The meta's ``sampling`` block as series have always had it (``results.samples`` reads its ``samples``)."""
    s, t = model.sampling, model.transport
    return {
        "temperature": s.temperature,
        "max_tokens": s.max_tokens,
        "system_prompt": s.system_prompt,
        "parallel": model.parallel,
        "request_delay": t.request_delay,
        "request_timeout": t.timeouts.stall,
        "max_retries": t.max_retries,
        "samples": model.samples,
        "top_p": s.top_p,
        "seed": s.seed,
    }


def count_done(progress: ProgressSink, key: str, store: Checkpoint, problems: Sequence[Problem]) -> None:
    """Set the progress counts of this dataset from the checkpoint (so a restart never counts twice)."""
    wanted = {p.id for p in problems}
    done = [rec for rec in store.records() if rec.error is None and rec.id in wanted]
    progress.sync(key, store.dataset, len(done), sum(rec.verdict == "correct" for rec in done))


def on_record(progress: ProgressSink, key: str, rec: AnswerRecord) -> None:
    progress.record(
        key, rec.dataset, correct=rec.verdict == "correct", tokens=rec.completion_tokens, error=rec.error is not None
    )
    if rec.error:
        progress.note_error(key, f"{rec.dataset} {rec.id}: {rec.error}")
