"""The grader's public API: ``grade``, ``grade_many`` and the shared worker pool behind them.

Cheap, safe string work (extraction, normalisation, identical or plain-integer answers) runs in the calling
process; everything that parses or compares with sympy runs in a sandboxed worker (see ``pool.py``).
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..contract import DOMAINS, Grade
from ..errors import InputError
from .extract import Extraction, clean, extract
from .normalize import normalize
from .pool import GraderPool, Outcome
from .wording import readings

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 5.0
MAX_SHOWN_CHARS = 2000  # Grade.extracted is cut here (a 100 kB "answer" is not stored whole)
_PLAIN_INTEGER = re.compile(r"-?\d{1,60}")


@dataclass(frozen=True)
class GradeRequest:
    """One response to grade against its reference."""

    response: str
    reference: str
    domain: str = "math"
    tolerance: float | None = None


@dataclass(frozen=True)
class _Prepared:
    extracted: str
    verdict: str | None  # decided in the parent, or None: a worker decides
    job: tuple | None
    seconds: float


def validate(request: GradeRequest, where: str = "grade()") -> None:
    """Raise InputError for an unknown domain or a tolerance that is not a fraction in (0, 1)."""
    if request.domain not in DOMAINS:
        raise InputError(f"{where}: domain {request.domain!r} is not one of {', '.join(DOMAINS)}")
    tol = request.tolerance
    if tol is not None and (isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 < tol < 1):
        raise InputError(f"{where}: tolerance {tol!r} must be a relative tolerance in (0, 1), such as 0.01 for 1%")
    if not isinstance(request.response, str) or not isinstance(request.reference, str):
        raise InputError(f"{where}: response and reference must be strings")


def _fast_verdict(answer: str, reference: str, request: GradeRequest) -> str | None:
    """Verdicts that need no parsing: identical strings, or two plain integers in exact mode."""
    if answer == reference:
        return "correct"
    exact = request.domain == "math" and request.tolerance is None
    if exact and _PLAIN_INTEGER.fullmatch(answer) and _PLAIN_INTEGER.fullmatch(reference):
        return "correct" if int(answer) == int(reference) else "incorrect"
    return None


def _decide(found: Extraction, answer: str, reference: str, request: GradeRequest) -> tuple[str | None, tuple | None]:
    """``(verdict, None)`` when the fast path decides, else ``(None, the worker's job)``. A stated unit joins the
    bare number it was stated for (then a fast "incorrect" is not final: ``2`` after ``2 км`` is 2000); the parts
    of a split answer ride along (the worker uses them only for a set or list reference), and so do the values
    offered in remarks (an answer that offers another value is a hedge: never a fast "correct") and the values
    a change in words may stand for (``wording.py``)."""
    verdict = _fast_verdict(answer, reference, request)
    worded = [
        (text, lenient) for text, lenient in readings(found.worded or found.answer, found.answer) if normalize(text)
    ]
    if (verdict == "correct" and not found.offers) or (verdict == "incorrect" and not found.unit and not worded):
        return verdict, None
    with_unit = normalize(f"{found.answer} {found.unit}") if found.unit else None
    together = normalize(found.together) if found.together else None
    offers = [o for o in (normalize(offer) for offer in found.offers) if o]
    worded = [(normalize(text), lenient) for text, lenient in worded]
    return None, (with_unit or answer, reference, request.domain, request.tolerance, together, offers, worded)


def _prepare(request: GradeRequest) -> _Prepared:
    start = time.perf_counter()
    found = extract(request.response)
    extracted = found.answer
    answer = normalize(extracted) if extracted else None
    reference = normalize(clean(request.reference))
    verdict, job = None, None
    if not answer:
        verdict = "unparsed"
    elif reference is None:
        verdict = "correct" if extracted == clean(request.reference) else "incorrect"
    else:
        verdict, job = _decide(found, answer, reference, request)
    shown = extracted if len(extracted) <= MAX_SHOWN_CHARS else extracted[:MAX_SHOWN_CHARS] + "…"
    return _Prepared(shown, verdict, job, time.perf_counter() - start)


def _to_grade(prepared: _Prepared, outcome: Outcome | None) -> Grade:
    if outcome is None:
        return Grade(prepared.extracted, prepared.verdict or "unparsed", prepared.seconds)
    seconds = prepared.seconds + outcome.seconds
    if outcome.status == "ok":
        verdict, approximate = outcome.value
        return Grade(prepared.extracted, verdict, seconds, approximate)
    if outcome.status == "error":
        log.warning("grader check failed on %.60r: %s", prepared.extracted, outcome.value)
        return Grade(prepared.extracted, "unparsed", seconds)
    return Grade(prepared.extracted, "timeout", seconds)


_default: GraderPool | None = None
_default_pid = 0
_default_lock = threading.Lock()


def default_pool() -> GraderPool:
    """The process-wide pool (started on first use, shut down at exit)."""
    global _default, _default_pid
    with _default_lock:
        if _default is None or _default_pid != os.getpid():
            _default, _default_pid = GraderPool(), os.getpid()
        return _default


def shutdown() -> None:
    """Stop the process-wide pool's workers (also registered with atexit)."""
    global _default
    with _default_lock:
        pool, _default = _default, None
    if pool is not None and _default_pid == os.getpid():
        pool.close()


atexit.register(shutdown)


def _run_jobs(prepared: list[_Prepared], timeout: float, pool: GraderPool) -> list[Outcome | None]:
    pending = [i for i, p in enumerate(prepared) if p.job is not None]
    outcomes: list[Outcome | None] = [None] * len(prepared)
    if len(pending) == 1:
        outcomes[pending[0]] = pool.run(prepared[pending[0]].job, timeout)
    elif pending:
        with ThreadPoolExecutor(max_workers=pool.size, thread_name_prefix="grade") as executor:
            for index, outcome in zip(pending, executor.map(lambda i: pool.run(prepared[i].job, timeout), pending)):
                outcomes[index] = outcome
    return outcomes


def grade_many(
    requests: Sequence[GradeRequest],
    timeout: float = DEFAULT_TIMEOUT,
    workers: int | None = None,
    *,
    pool: GraderPool | None = None,
) -> list[Grade]:
    """Grade every request (in input order); ``timeout`` is the hard limit of one check, in seconds.

    Verdicts: ``correct``/``incorrect``; ``unparsed`` when no final answer was found or it is neither math nor
    words; ``timeout`` when the check overran ``timeout`` or its memory cap (its worker was killed).
    Checks run in ``pool`` if given, else in a private pool of ``workers`` processes (started and stopped here)
    if ``workers`` is set, else in the process-wide pool. InputError for a bad domain, tolerance or timeout.
    """
    if timeout <= 0:
        raise InputError(f"timeout {timeout!r}: must be a positive number of seconds, such as 5")
    for index, request in enumerate(requests):
        validate(request, f"request {index}")
    prepared = [_prepare(request) for request in requests]
    if all(p.job is None for p in prepared):
        return [_to_grade(p, None) for p in prepared]
    private = pool is None and workers is not None
    runner = pool or (GraderPool(workers) if private else default_pool())
    try:
        outcomes = _run_jobs(prepared, timeout, runner)
    finally:
        if private:
            runner.close()
    return [_to_grade(p, o) for p, o in zip(prepared, outcomes)]


def grade(
    response: str,
    reference: str,
    domain: str = "math",
    tolerance: float | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Grade:
    """Grade one response against its reference (see ``grade_many`` for the verdicts)."""
    return grade_many([GradeRequest(response, reference, domain, tolerance)], timeout)[0]
