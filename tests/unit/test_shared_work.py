"""``SharedWork``: one model's work queue shared by its servers -- each batch asked once, a failed helper's batch
put back, replicas leaving when the share closes. Real ``run_series`` passes with in-memory clients and store."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence

import pytest

from orchestrator.client.series import run_series
from orchestrator.client.shared import SharedWork
from orchestrator.contract import AnswerRecord, Problem
from orchestrator.errors import ServerDiedError

SAMPLES = 2


def problems(count: int) -> list[Problem]:
    return [Problem(f"p{i}", "math", "math", f"task {i}", "4", sample=s) for i in range(count) for s in range(SAMPLES)]


class Store:
    """An in-memory checkpoint that counts every append (a duplicate is refused, as the real one does)."""

    model_key, dataset, settings_hash = "m", "math", "h"

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.kept: dict[str, AnswerRecord] = {}
        self.appends: Counter[str] = Counter()

    def missing(self, items: Sequence[Problem], samples: int = 1) -> list[Problem]:
        with self.lock:
            return [p for p in items if p.key not in self.kept]

    def append(self, rec: AnswerRecord) -> bool:
        with self.lock:
            self.appends[rec.key] += 1
            if rec.key in self.kept:
                return False
            self.kept[rec.key] = rec
            return True

    def records(self) -> list[AnswerRecord]:
        return list(self.kept.values())

    def score(self) -> int:
        return len(self.kept)

    def add_eval_seconds(self, seconds: float) -> None:
        pass

    def has_markdown(self) -> bool:
        return True

    def write_markdown(self) -> None:
        pass


class Client:
    """A managed server's client: answers each batch (after ``gate`` opens), or fails once ``dies_after`` batches
    were asked. ``asked`` counts every (problem, sample) it was asked."""

    managed = True
    asks_n = True  # a managed server's: a problem's samples in one request

    def __init__(self, name: str, asked: Counter[str], gate: threading.Event | None = None, dies_after: int = -1):
        self.name, self.asked, self.gate, self.dies_after = name, asked, gate, dies_after
        self.answered = threading.Event()  # set once it has answered a batch
        self.halted = lambda: False
        self.lock = threading.Lock()
        self.batches = 0
        self.closed = False

    def ask_samples(self, batch: Sequence[Problem], messages: list[dict], settings_hash: str) -> list[AnswerRecord]:
        if self.gate is not None:
            self.gate.wait(10)
        with self.lock:
            if self.batches == self.dies_after:
                raise ServerDiedError(f"server {self.name} died")
            self.batches += 1
            for p in batch:
                self.asked[p.key] += 1
        self.answered.set()
        return [
            AnswerRecord(
                p.id, p.dataset, self.name, p.task, p.reference, "Ответ: 4", settings_hash="h", sample=p.sample
            )
            for p in batch
        ]

    def streak_error(self) -> None:
        return None

    def release_session(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def series_with_replica(helper: Client, first: Client, items: list[Problem], store: Store) -> list[BaseException]:
    """The first server's series with ``helper`` serving the share from before it starts; returns what the
    helper's ``serve`` raised."""
    share, stop, raised = SharedWork(), threading.Event(), []

    def replica() -> None:
        try:
            share.serve(lambda: helper, 4, stop)
        except BaseException as exc:  # noqa: BLE001 -- what a replica's job would log
            raised.append(exc)

    thread = threading.Thread(target=replica, daemon=True)
    thread.start()
    run_series(items, first, store, lambda p: [], parallel=4, samples=SAMPLES, share=share, last=True)
    thread.join(10)
    assert not thread.is_alive()
    share.close()
    return raised


def test_two_servers_share_a_series_and_each_answer_is_asked_and_stored_once() -> None:
    asked: Counter[str] = Counter()
    store, items = Store(), problems(40)
    helper = Client("helper", asked)
    first = Client("first", asked, gate=helper.answered)  # the first server answers once the replica has
    assert series_with_replica(helper, first, items, store) == []
    assert set(asked) == {p.key for p in items}
    assert set(asked.values()) == {1}
    assert set(store.appends.values()) == {1}
    assert first.batches > 0 and helper.batches > 0  # both servers answered
    assert helper.closed  # the replica's client is closed after its pass


def test_a_helper_whose_server_dies_puts_its_batch_back_and_nothing_is_lost() -> None:
    asked: Counter[str] = Counter()
    store, items = Store(), problems(30)
    first, helper = Client("first", asked), Client("helper", asked, dies_after=2)
    raised = series_with_replica(helper, first, items, store)
    assert len(raised) == 1 and isinstance(raised[0], ServerDiedError)
    assert set(store.kept) == {p.key for p in items}  # the dead helper's batch was asked again by the first server
    assert set(store.appends.values()) == {1}
    assert set(asked.values()) == {1}  # a batch that failed was never answered, so no answer is asked twice


def test_closing_the_share_sends_a_waiting_replica_away() -> None:
    share, stop = SharedWork(), threading.Event()
    left = threading.Event()
    thread = threading.Thread(target=lambda: (share.serve(lambda: None, 2, stop), left.set()), daemon=True)
    thread.start()
    assert not left.wait(0.2)  # nothing published yet: it waits
    share.close()
    assert left.wait(5)
    assert share.closed


def test_a_replica_that_arrives_after_the_last_pass_ended_asks_nothing() -> None:
    asked: Counter[str] = Counter()
    store, items, share = Store(), problems(5), SharedWork()
    run_series(items, Client("first", asked), store, lambda p: [], parallel=2, samples=SAMPLES, share=share)
    share.close()  # the model's job is over
    late = Client("late", asked)
    share.serve(lambda: late, 2, threading.Event())
    assert late.batches == 0


@pytest.mark.parametrize("helpers", [2, 3])
def test_several_helpers_and_the_first_server_take_each_batch_once(helpers: int) -> None:
    asked: Counter[str] = Counter()
    store, items, share, stop = Store(), problems(60), SharedWork(), threading.Event()
    clients = [Client(f"h{i}", asked) for i in range(helpers)]
    threads = [threading.Thread(target=share.serve, args=(lambda c=c: c, 3, stop), daemon=True) for c in clients]
    for t in threads:
        t.start()
    run_series(items, Client("first", asked), store, lambda p: [], parallel=3, samples=SAMPLES, share=share)
    share.close()
    for t in threads:
        t.join(10)
    assert set(asked.values()) == {1} and set(asked) == {p.key for p in items}


class Pass:
    """A published pass with ``left`` answers nobody has taken."""

    def __init__(self, left: int) -> None:
        self.left = left

    def help(self, client: object, parallel: int, stop: threading.Event) -> BaseException | None:
        return None

    def queued(self) -> int:
        return self.left


def test_untaken_counts_the_open_queue_and_the_series_to_come_until_the_last_is_handed_out() -> None:
    share = SharedWork()
    assert share.untaken() is None  # nothing published yet: not known
    share.announce(later=40)
    first = Pass(0)
    share.publish(first, last=False)
    assert share.untaken() == 40  # the first series is all handed out; the second's 40 answers are to come
    share.announce(later=0)
    final = Pass(12)
    share.publish(final, last=True)
    assert share.untaken() == 12
    final.left = 0
    assert share.untaken() == 0  # the model's tail: answers in flight, none for a new server
    final.left = 4  # a helper whose server died put its batches back
    assert share.untaken() == 4
    share.retire(final)
    assert share.untaken() == 0
    share.close()
    assert share.untaken() == 0


def test_a_pass_counts_the_answers_it_has_not_handed_out() -> None:
    asked: Counter[str] = Counter()
    share, seen = SharedWork(), []
    gate = threading.Event()
    first = Client("first", asked, gate=gate)
    publish = share.publish

    def watch(work, last: bool) -> None:
        publish(work, last)
        seen.append(work.queued())  # before any worker has taken a batch

    share.publish = watch  # type: ignore[method-assign]  # observe the pass as it opens
    threading.Timer(0.2, gate.set).start()
    run_series(problems(10), first, Store(), lambda p: [], parallel=4, samples=SAMPLES, share=share, last=True)
    assert seen == [10 * SAMPLES] and share.untaken() == 0
