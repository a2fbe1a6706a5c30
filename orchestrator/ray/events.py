"""Node -> driver events of the Ray backend: small frozen dataclasses, dispatched by type on the driver.

A node's ``ray.node.ModelActor.run`` yields them through Ray's streaming generator; the driver's
``ray.driver.JobDriver`` applies each one. No Ray import here: both sides and the unit tests share these types.

    NodeStarted(node)                    the first event: where the actor runs
    StatusChanged(status)                the model's progress status (``RunPhase``, at the end its ``ModelState``)
    ErrorNoted(message)                  the model's last error (a restart's cause, a failed request)
    Restarted(count)                     the model's server was restarted ``count`` times on the node
    Answer(dataset, record)              one answer (``AnswerRecord.to_dict()``) for the driver's checkpoint
    EvalTime(dataset, seconds)           evaluation time of one pass over a series
    PhaseTiming(model, phase, seconds)   ``Manifest.timing`` on the driver
    ModelFacts(model, facts)             ``Manifest.set_model`` on the driver
    Finished(facts)                      the last event: status (a ``ModelState`` value), error, restarts, log
                                         path, node, seconds
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..contract import ProgressStatus


@dataclass(frozen=True)
class NodeStarted:
    node: str


@dataclass(frozen=True)
class StatusChanged:
    status: ProgressStatus


@dataclass(frozen=True)
class ErrorNoted:
    message: str


@dataclass(frozen=True)
class Restarted:
    count: int


@dataclass(frozen=True)
class Answer:
    dataset: str
    record: Mapping[str, Any]


@dataclass(frozen=True)
class EvalTime:
    dataset: str
    seconds: float


@dataclass(frozen=True)
class PhaseTiming:
    model: str
    phase: str
    seconds: float


@dataclass(frozen=True)
class ModelFacts:
    model: str
    facts: Mapping[str, Any]


@dataclass(frozen=True)
class Finished:
    facts: Mapping[str, Any]


Event = NodeStarted | StatusChanged | ErrorNoted | Restarted | Answer | EvalTime | PhaseTiming | ModelFacts | Finished
Emit = Callable[[Event], None]

__all__ = [
    "Answer",
    "Emit",
    "ErrorNoted",
    "EvalTime",
    "Event",
    "Finished",
    "ModelFacts",
    "NodeStarted",
    "PhaseTiming",
    "Restarted",
    "StatusChanged",
]
