"""One model's job: start its server (managed models), run each dataset, stop the server -- always, in ``finally``.

A server that dies mid-run is restarted up to ``max_restarts`` times and the series resumes from its checkpoint.
One model's failure never stops the others: the job returns a ``ModelOutcome`` instead of raising.

Replicas: ``run_replica`` starts one more server of a running managed model and serves the model's shared work
queue (``client.shared.SharedWork``, one per model in ``RunContext.shares``) until it is empty; the model's own job
(``run_model``) publishes its series' passes there, waits for the replicas' answers in flight and closes the share
when it ends. A replica that fails or dies is logged and ends; its batch goes back to the queue.

What the job needs of its collaborators is written as Protocols (``ProgressSink``, ``ManifestSink``, ``ServerLike``,
``ServerGroupLike``, and ``client.Checkpoint`` for a series' store), so the local run passes the real ``Progress``,
``Manifest``, ``VllmServer`` and ``SeriesStore``, and the Ray node passes its event-emitting proxies.

Its modules: ``context`` (what a job is handed and hands back, the Protocols, ``end_state``), ``lifecycle``
(``run_model``: the server's start, restarts and stop), ``series`` (running the datasets, their checkpoints and
clients), ``replica`` (``run_replica``). This package re-exports what the backends use.
"""

from __future__ import annotations

from ..client import Checkpoint
from ..contract import ModelState
from ..errors import EndpointError, ServerError
from .context import (
    HUNG_GRACE,
    DatasetRun,
    ManifestSink,
    ModelOutcome,
    ProgressSink,
    RunContext,
    ServerGroupLike,
    ServerLike,
    end_state,
    told,
)
from .lifecycle import run_model, start_for, stop_for
from .replica import run_replica
from .series import count_done, on_record, open_store, record_grader

__all__ = [
    "HUNG_GRACE",
    "Checkpoint",
    "DatasetRun",
    "ManifestSink",
    "ModelOutcome",
    "ModelState",
    "ProgressSink",
    "RunContext",
    "ServerGroupLike",
    "ServerLike",
    "count_done",
    "end_state",
    "on_record",
    "open_store",
    "record_grader",
    "run_model",
    "start_for",
    "stop_for",
    "run_replica",
    "told",
    "EndpointError",
    "ServerError",
]
