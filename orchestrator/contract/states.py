"""Where a model's job stands and what a judge said: the string enums that the progress line, status.json, the
summary and the details lines carry (their values are what those files hold)."""

from __future__ import annotations

from enum import StrEnum


class ModelState(StrEnum):
    """How a model's job stands: ``running`` until it ends. The values are what the summary, status.json and the
    Ray node's ``Finished`` event carry (``job.end_state`` decides which end)."""

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class JudgeVerdict(StrEnum):
    """What the LLM judge said of an answer (``judge/verdict.read_reply``; a details line's ``judge.verdict``)."""

    CORRECT = "correct"
    INCORRECT = "incorrect"
    UNPARSED = "unparsed"  # the reply was not the JSON object asked for


class RunPhase(StrEnum):
    """Where a model's job stands before it ends (then its ``ModelState``), as its progress line shows it: queued,
    its hub weights (``hub/prefetch``: downloading, waiting for disk space, in), its server starting, restarted
    (``restart N``, N from ``note_restarts``) or its Ray actor rescheduled (``resched N``), answering.
    ``status.file.model_state`` maps each to status.json's ``state``."""

    WAITING = "waiting"
    DOWNLOADING = "download"
    DISK_WAIT = "disk wait"
    WEIGHTS_OK = "weights ok"
    STARTING = "starting"
    RESTARTING = "restart"
    RESCHEDULED = "resched"
    RUNNING = "running"


ProgressStatus = RunPhase | ModelState  # what a progress display is told: a phase, at the end the end state
