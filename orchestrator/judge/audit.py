"""The audit of one series: ask the judge about the answers that need it, keep every reply, merge the verdicts.

``audit_series`` picks the answers (``select.needs_judging``), skips those whose verdict for the same judge hash is
already in the ``JudgeStore`` (unless ``rejudge``), asks the rest through ``ask`` with ``workers`` in flight, and
appends each reply to the store as it arrives. A reply that is not the JSON asked for is stored as ``unparsed``.
An answer whose request fails (``EndpointError``) is not stored -- it is asked again on the next run -- and is
counted in ``failed``. ``stop`` ends the audit between requests; what was stored stays.

``with_verdicts`` puts each stored verdict into its answer's ``judge`` field (the details line's), for the answers
whose judge hash still matches; other answers lose a stale field.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from ..contract import AnswerRecord
from ..errors import EndpointError
from .ask import JudgeAsk
from .prompt import RESPONSE_FORMAT, build_messages
from .select import needs_judging
from .settings import JudgeSettings
from .store import JudgeStore
from .verdict import JudgeRecord, judge_hash, read_reply


@dataclass(frozen=True)
class AuditResult:
    asked: int = 0  # requests answered this time (parsed or not)
    kept: int = 0  # verdicts already stored for the same hash, not asked again
    failed: int = 0  # requests that failed; asked again on the next run
    stopped: bool = False


def _digest(judge: str, rec: AnswerRecord) -> str:
    return judge_hash(judge, rec.task, rec.reference, rec.response)


def to_judge(
    records: Sequence[AnswerRecord],
    *,
    judge: str,
    model: str,
    settings: JudgeSettings,
    store: JudgeStore,
    rejudge: bool = False,
) -> tuple[list[AnswerRecord], int]:
    """The answers still to ask the judge about, and how many need it but are already judged."""
    wanted = [r for r in records if needs_judging(r, model=model, share=settings.sample_correct, seed=settings.seed)]
    if rejudge:
        return wanted, 0
    todo = [r for r in wanted if store.done(r.key, _digest(judge, r)) is None]
    return todo, len(wanted) - len(todo)


def audit_series(
    records: Sequence[AnswerRecord],
    *,
    judge: str,
    model: str,
    settings: JudgeSettings,
    ask: JudgeAsk,
    store: JudgeStore,
    rejudge: bool = False,
    workers: int = 4,
    stop: threading.Event | None = None,
) -> AuditResult:
    """Judge the answers of one series that need it; see the module docstring. ``judge`` names the judge model
    (it is stored with each verdict), ``model`` the audited model's key."""
    stop = stop or threading.Event()
    todo, kept = to_judge(records, judge=judge, model=model, settings=settings, store=store, rejudge=rejudge)
    asked = failed = 0
    pending: set[Future] = set()
    queue = list(reversed(todo))
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="judge") as pool:
        while queue or pending:
            while queue and len(pending) < max(1, workers) and not stop.is_set():
                pending.add(pool.submit(_ask_one, queue.pop(), judge, ask, store))
            if not pending:
                break
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                if future.result():
                    asked += 1
                else:
                    failed += 1
    return AuditResult(asked=asked, kept=kept, failed=failed, stopped=stop.is_set() and bool(queue))


def _ask_one(rec: AnswerRecord, judge: str, ask: JudgeAsk, store: JudgeStore) -> bool:
    messages = build_messages(rec.task, rec.reference, rec.response, rec.extracted)
    try:
        text = ask(messages, RESPONSE_FORMAT)
    except EndpointError:
        return False
    reply = read_reply(text)
    store.append(JudgeRecord(rec.key, judge, reply.verdict, reply.reason, _digest(judge, rec)))
    return True


def with_verdicts(records: Sequence[AnswerRecord], store: JudgeStore, judge: str) -> list[AnswerRecord]:
    """``records`` with their ``judge`` fields set from the store (see the module docstring)."""
    stored = store.load()
    out = []
    for rec in records:
        verdict = stored.get(rec.key)
        field = verdict.field() if verdict is not None and verdict.hash == _digest(judge, rec) else None
        out.append(dataclasses.replace(rec, judge=field) if getattr(rec, "judge", None) != field else rec)
    return out
