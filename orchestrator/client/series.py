"""``run_series``: ask every missing problem of a series with ``parallel`` workers and checkpoint each answer.

HTTP workers only ask; a small grading pool grades each answer and appends it to the store (so each line is final),
with backpressure: at most ``parallel`` answers wait for grading. The first failure (dead server, endpoint failing
again and again, disk error, grader error) stops new requests; answers in flight are still stored, then it is
raised. Problems whose request failed (an error record) are asked once more at the end of the series. ``stop``
ends the series early without an error (also when the caller then tears the server down). Evaluation time is added
to the series' meta and its markdown rewritten in every case.

Samples: with ``samples`` = k (``ModelConfig.samples``) each problem is asked k times, sample i with seed + i, and
each (problem, sample) is its own checkpoint: a resumed run asks only the samples still missing. A managed vLLM
server gets the consecutive missing samples of a problem in one request with ``n`` (vLLM seeds choice i with
seed + i, so the answers are those of one request per sample; benchmarks/samples_requests.py measures the two);
API models, many of which reject ``n``, get one request per sample, as does a model with a thinking budget
(``ChatClient.asks_n``).

Replicas (``share``: a ``shared.SharedWork``): each pass publishes its queue of (problem, samples) batches, and
other servers of the same model join it with their own clients (``_SeriesRun.help``): every batch is taken from the
queue by one worker, so each answer is asked once, and it goes to the same grading pool and checkpoint. A helper
whose server dies puts its batch back and leaves; the pass ends when the queue is empty and every worker, the
helpers' too, has handed in its answers.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from ..contract import AnswerRecord, Grade, Problem, SeriesScore
from ..errors import ResultsError, ServerDiedError
from .chat import ChatClient
from .replies import Halted
from .shared import SharedWork

log = logging.getLogger(__name__)


class Checkpoint(Protocol):
    """What a series needs of its checkpoint: ``results.SeriesStore`` on disk, or the Ray node's proxy of the
    driver's store. ``append`` returns False for an answer it already holds (stored once, whoever asks twice)."""

    model_key: str
    dataset: str
    settings_hash: str

    def missing(self, problems: Sequence[Problem], samples: int = 1) -> list[Problem]: ...  # see its docstring
    def append(self, rec: AnswerRecord) -> bool: ...
    def records(self) -> list[AnswerRecord]: ...
    def score(self) -> SeriesScore: ...
    def add_eval_seconds(self, seconds: float) -> None: ...
    def has_markdown(self) -> bool: ...
    def write_markdown(self) -> object: ...


GRADERS = 2
RETRY_PASSES = 1  # passes over the problems whose request failed, after the first pass (bounded: errors are stored)


class _SeriesRun:
    """One pass over the missing problems of a series."""

    def __init__(
        self,
        client: ChatClient,
        store: Checkpoint,
        messages_for: Callable[[Problem], list[dict]],
        grade: Callable[[AnswerRecord], Grade] | None,
        on_record: Callable[[AnswerRecord], None] | None,
        stop: threading.Event | None,
        parallel: int,
        share: SharedWork | None = None,
        last: bool = True,
        drained: threading.Event | None = None,
    ) -> None:
        self.drained = drained
        self.client, self.store, self.messages_for = client, store, messages_for
        self.grade, self.on_record, self.stop = grade, on_record, stop or threading.Event()
        self.parallel = max(1, parallel)
        self.abort = threading.Event()
        self.failure: BaseException | None = None
        self.todo: queue.SimpleQueue[list[Problem]] = queue.SimpleQueue()
        self.backlog = threading.BoundedSemaphore(self.parallel)
        self.graders = ThreadPoolExecutor(max_workers=GRADERS, thread_name_prefix="grade")
        client.halted = self._halted  # a request waiting for its rate-limited start gives up when the series stops
        self._lock = threading.Lock()
        self.share, self.last = share, last
        self.helpers: list[threading.Thread] = []
        self.closed = False
        self._queued = 0

    def run(self, problems: Sequence[Problem]) -> None:
        batches = sample_runs(problems) if self.client.asks_n else [[p] for p in problems]
        for batch in batches:
            self._put(batch)
        if self.share is not None:
            self.share.publish(self, self.last)
        try:
            while not self._halted() and not self.todo.empty():  # a helper that died may have put batches back
                self._work_through(min(self.parallel, self.todo.qsize()))
        finally:
            with self._lock:
                self.closed = True
            if self.share is not None:
                self.share.retire(self)
            self._join_helpers()
            self.abort.set()
            self.graders.shutdown(wait=True)
        if self.failure is not None and not self._stopped_by_caller():
            raise self.failure

    def _work_through(self, count: int) -> None:
        workers = [threading.Thread(target=self._worker, name=f"ask-{i}", daemon=True) for i in range(count)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        self._join_helpers()

    def _join_helpers(self) -> None:
        while True:
            with self._lock:
                alive = [t for t in self.helpers if t.is_alive()]
            if not alive:
                return
            for thread in alive:
                thread.join()

    def queued(self) -> int:
        """Answers of this pass that no worker has taken yet (its queued batches' samples)."""
        with self._lock:
            return self._queued

    def _put(self, batch: list[Problem]) -> None:
        with self._lock:
            self._queued += len(batch)
        self.todo.put(batch)

    def _take(self) -> list[Problem]:
        """The next batch (``queue.Empty`` when there is none)."""
        batch = self.todo.get_nowait()
        with self._lock:
            self._queued -= len(batch)
        return batch

    def help(self, client: ChatClient, parallel: int, stop: threading.Event) -> BaseException | None:
        """Another server's ``client`` takes batches from this pass's queue with ``parallel`` workers until it is
        empty (or ``stop``, or its server fails: its batch goes back); returns that failure, if any."""
        leave = threading.Event()
        failures: list[BaseException] = []
        client.halted = lambda: self._halted() or stop.is_set() or leave.is_set()
        with self._lock:
            if self.closed:
                return None
            workers = [
                threading.Thread(target=self._helper, args=(client, leave, failures), name=f"help-{i}", daemon=True)
                for i in range(max(1, min(parallel, self.todo.qsize())))
            ]
            self.helpers += workers
            for worker in workers:
                worker.start()
        for worker in workers:
            worker.join()
        return failures[0] if failures else None

    def _helper(self, client: ChatClient, leave: threading.Event, failures: list[BaseException]) -> None:
        try:
            while not (self._halted() or leave.is_set()):
                try:
                    batch = self._take()
                except queue.Empty:
                    return
                try:
                    recs = client.ask_samples(batch, self.messages_for(batch[0]), self.store.settings_hash)
                except BaseException as exc:  # noqa: BLE001 -- this helper's server failed: the batch goes back
                    self._put(batch)
                    failures.append(exc)
                    leave.set()
                    return
                if any(isinstance(rec, Halted) for rec in recs):
                    self._put(batch)  # asked again by another worker or on resume, never lost
                    return
                for rec in recs:
                    self._hand_over(rec)
        finally:
            client.release_session()

    def _stopped_by_caller(self) -> bool:
        """A server that died because the caller stopped the run (Ctrl-C tears servers down) is not a failure."""
        return self.stop.is_set() and isinstance(self.failure, ServerDiedError)

    def _halted(self) -> bool:
        return self.abort.is_set() or self.stop.is_set()

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            if self.failure is None:
                self.failure = exc
        self.abort.set()

    def _worker(self) -> None:
        try:
            while not self._halted():
                try:
                    batch = self._take()
                except queue.Empty:
                    if self.drained is not None:
                        self.drained.set()  # every batch is asked or being asked: the next series may start
                    return
                # request_delay is the client's: one start per delay for all workers
                for rec in self.client.ask_samples(batch, self.messages_for(batch[0]), self.store.settings_hash):
                    self._hand_over(rec)
        except BaseException as exc:  # noqa: BLE001 -- a dead server, a bug: stop the series, re-raise in the caller
            self._fail(exc)
        finally:
            self.client.release_session()

    def _hand_over(self, rec: AnswerRecord | Halted) -> None:
        """Queue ``rec`` for grading and storing (waits while ``parallel`` answers are waiting already)."""
        if isinstance(rec, Halted):  # the series is stopping: the problem stays missing, asked on resume
            return
        self.backlog.acquire()
        try:
            self.graders.submit(self._finish, rec)
        except RuntimeError:  # the pool is shut down: the run is over
            self.backlog.release()
            return
        streak = self.client.streak_error() if rec.error is not None else None
        if streak is not None:
            self._fail(streak)

    def _finish(self, rec: AnswerRecord) -> None:
        try:
            if self.grade is not None and rec.error is None:
                grade = self.grade(rec)
                rec.extracted, rec.verdict, rec.approximate = grade.extracted, grade.verdict, grade.approximate
            if self.store.append(rec) and self.on_record is not None:
                self.on_record(rec)
        except BaseException as exc:  # noqa: BLE001 -- handed to the series' caller, which re-raises it
            self._fail(exc)
        finally:
            self.backlog.release()


def sample_runs(problems: Sequence[Problem]) -> list[list[Problem]]:
    """``problems`` cut into runs of consecutive samples of one problem (what one request with ``n`` can ask)."""
    runs: list[list[Problem]] = []
    for p in problems:
        last = runs[-1][-1] if runs else None
        if last is not None and last.id == p.id and last.dataset == p.dataset and p.sample == last.sample + 1:
            runs[-1].append(p)
        else:
            runs.append([p])
    return runs


def run_series(
    problems: Sequence[Problem],
    client: ChatClient,
    store: Checkpoint,
    messages_for: Callable[[Problem], list[dict]],
    *,
    grade: Callable[[AnswerRecord], Grade] | None = None,
    parallel: int,
    samples: int = 1,
    on_record: Callable[[AnswerRecord], None] | None = None,
    stop: threading.Event | None = None,
    share: SharedWork | None = None,
    last: bool = True,
    drained: threading.Event | None = None,
) -> SeriesScore:
    """Ask the ``samples`` samples of ``problems`` that ``store`` has no answer for; return the series' score.
    ``share``: other servers of the model may join each pass (``last``: this is the model's last series).
    ``drained`` is set once the first pass has no batch left to hand out (its last requests are in flight; the
    caller may start the next series on the same server), or when the series has nothing to ask."""
    todo = store.missing(problems, samples)
    if not todo:
        if drained is not None:
            drained.set()
        if not store.has_markdown():
            store.write_markdown()
        return store.score()
    log.info("%s/%s: asking %d problem(s) with %d worker(s)", store.model_key, store.dataset, len(todo), parallel)
    started = time.monotonic()
    try:
        for again in range(1 + RETRY_PASSES):
            if again:  # a request that failed (a timeout under load, say) gets one more chance in this run
                log.info(
                    "%s/%s: asking again %d problem(s) whose request failed", store.model_key, store.dataset, len(todo)
                )
            _SeriesRun(client, store, messages_for, grade, on_record, stop, parallel, share, last, drained).run(todo)
            todo = store.missing(problems, samples)
            if not todo or (stop is not None and stop.is_set()):
                break
    except BaseException:
        _bookkeep(store, time.monotonic() - started, quiet=True)
        raise
    _bookkeep(store, time.monotonic() - started, quiet=False)
    return store.score()


def _bookkeep(store: Checkpoint, seconds: float, *, quiet: bool) -> None:
    """Add the eval time and rewrite the markdown; ``quiet`` (an error is already on its way) only logs failures."""
    try:
        store.add_eval_seconds(seconds)
        store.write_markdown()
    except ResultsError as exc:
        if not quiet:
            raise
        log.error("could not update %s/%s after a failure: %s", store.model_key, store.dataset, exc)
