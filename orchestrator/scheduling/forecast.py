"""The night ahead: each model's estimate and planned times, the night's total, and the ``--finish-by`` deadline.

``render_forecast`` is the ``--dry-run`` section after the plan: per model its estimate with its basis and its
planned start and end per GPU group (replicas included), then the night's total. ``deadline_notes`` says before the
start which models will not finish by ``--finish-by`` and which order would get the most models done by then
(``policy.simulate`` of the candidate orders). ``DeadlineWatch`` warns while running when the projected end passes
the deadline (once per crossing; it never stops a model). ``next_time`` reads ``07:30`` as the next such moment.
``Forecast`` puts the plan next to the run in its status file: planned against actual, and the projected ends.
Both project through ``projected_ends``, the one rule of where each model is now expected to end.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from ..errors import ConfigError
from .estimate import Estimate
from .plan import Placement
from .policy import ORDERINGS, simulate

log = logging.getLogger(__name__)


def next_time(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """``HH:MM`` as the next such moment after ``now`` (today or tomorrow); ConfigError naming the flag otherwise."""
    try:
        when = dt.datetime.strptime(text.strip(), "%H:%M").time()
    except ValueError:
        raise ConfigError(f"--finish-by {text!r}: not a time of day; write HH:MM such as 07:30") from None
    now = now or dt.datetime.now()
    moment = dt.datetime.combine(now.date(), when)
    return moment if moment > now else moment + dt.timedelta(days=1)


def clock(seconds: float) -> str:
    minutes, sec = divmod(int(round(seconds)), 60)
    return f"{minutes // 60}h{minutes % 60:02d}m{sec:02d}s"


def planned_ends(placements: Sequence[Placement]) -> dict[str, float]:
    """Each model's planned end, in seconds after the start: its last server's (replicas included)."""
    return {p.job.key: max([p.end] + [r.end for r in p.replicas]) for p in placements}


def night_end(placements: Sequence[Placement]) -> float:
    return max([*planned_ends(placements).values(), 0.0])


def projected_ends(
    planned: Mapping[str, float], elapsed: float, running: Mapping[str, float | None], waiting: Iterable[str]
) -> dict[str, float]:
    """Where each model is now expected to end, in seconds after the start (``planned``: its planned end there).

    A ``running`` model (its seconds left, None while unknown) ends ``elapsed`` + its seconds left, or at its planned
    end (not before now) while unknown; a ``waiting`` one at its planned end pushed back by the latest overrun of a
    running one (not before now). A model in neither (ended) has none."""
    ends: dict[str, float] = {}
    for key, left in running.items():
        ends[key] = elapsed + left if left is not None else max(elapsed, planned[key])
    overrun = max([ends[key] - planned[key] for key in ends] + [0.0])
    for key in waiting:
        ends[key] = max(elapsed, planned[key] + overrun)
    return ends


def render_forecast(placements: Sequence[Placement], estimates: Mapping[str, Estimate]) -> str:
    """Per model: estimate, basis, planned start and end per GPU group; the night's total."""
    lines = ["estimates (before any history, a model's own history once there is one):"]
    for p in placements:
        est = estimates.get(p.job.key)
        if est is not None:
            lines.append(f"  {p.job.key}: {clock(est.seconds)} ({est.basis})")
        where = f"GPUs {','.join(map(str, p.gpus))}" if p.gpus else ("CPU server" if p.spec else "API")
        lines.append(f"    {where}: +{clock(p.wave_start)} -> +{clock(p.end)}")
        for r in p.replicas:
            lines.append(f"    replica on GPUs {','.join(map(str, r.gpus))}: +{clock(r.start)} -> +{clock(r.end)}")
    lines.append(f"night total: {clock(night_end(placements))} (planned, start-ups included)")
    return "\n".join(lines)


def deadline_notes(
    placements: Sequence[Placement], start: dt.datetime, deadline: dt.datetime, gpus: Sequence[int]
) -> list[str]:
    """What the plan says about ``deadline``: the models that end after it, and an order that gets more done."""
    budget = (deadline - start).total_seconds()
    late = [p.job.key for p in placements if p.end > budget + 1e-6]
    at = deadline.strftime("%H:%M")
    if not late:
        return [
            f"--finish-by {at}: every model is planned to finish by then (night ends +{clock(night_end(placements))})"
        ]
    notes = [f"--finish-by {at}: planned to end after it: {', '.join(late)} (nothing is stopped for it)"]
    jobs = [p.job for p in placements]
    best = max(
        (sorted(jobs, key=key) for key in (*ORDERINGS, lambda j: (j.weight, j.gpus_needed))),
        key=lambda order: _done_by(order, gpus, budget),
    )
    done = _done_by(best, gpus, budget)
    if done > len(placements) - len(late):
        names = ", ".join(j.key for j in best)
        notes.append(
            f"  the order {names} would finish {done} of {len(jobs)} models by then (this plan: "
            f"{len(placements) - len(late)}); reorder model_list or pick models with --models"
        )
    return notes


def _done_by(order: Sequence, gpus: Sequence[int], budget: float) -> int:
    slots = simulate(order, gpus, replicas=bool(gpus))
    ends: dict[str, float] = {}
    for s in slots:
        ends[s.job.key] = max(ends.get(s.job.key, 0.0), s.end)
    return sum(end <= budget + 1e-6 for end in ends.values())


class DeadlineWatch:
    """Warns (log) when the projected end of the run passes ``deadline``: the latest of the models' ends
    (``projected_ends``: a model whose seconds left are known, ``left(key)``, is running; the others wait, their
    planned ends pushed back by the latest overrun)."""

    def __init__(
        self,
        placements: Sequence[Placement],
        deadline: dt.datetime,
        left: Callable[[str], float | None],
        *,
        interval: float = 60.0,
        now: Callable[[], dt.datetime] = dt.datetime.now,
    ) -> None:
        self.placements, self.deadline, self.left, self.interval, self.now = placements, deadline, left, interval, now
        self.started = now()
        self.planned = planned_ends(placements)
        self.late = False
        self._stop = threading.Event()

    def projected_end(self) -> dt.datetime:
        elapsed = (self.now() - self.started).total_seconds()
        left = {key: self.left(key) for key in self.planned}
        running = {key: seconds for key, seconds in left.items() if seconds is not None}
        ends = projected_ends(self.planned, elapsed, running, [key for key in left if key not in running])
        return self.started + dt.timedelta(seconds=max([*ends.values(), 0.0]))

    def check(self) -> str | None:
        """The warning to give now, if the projection just crossed the deadline (again after coming back)."""
        end = self.projected_end()
        late = end > self.deadline
        message = None
        if late and not self.late:
            message = (
                f"--finish-by {self.deadline:%H:%M}: the run is now projected to end at {end:%H:%M}; "
                "models keep running (nothing is stopped for a deadline)"
            )
        self.late = late
        return message

    def start(self) -> DeadlineWatch:
        threading.Thread(target=self._loop, name="deadline", daemon=True).start()
        return self

    def close(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            message = self.check()
            if message:
                log.warning("%s", message)


@dataclass(frozen=True)
class Forecast:
    """The plan against the run, for its status: per model its estimate and planned end, and the projected ends.

    ``started`` and every time here are Unix seconds. ``annotate`` adds to each model entry of the status file
    (``status.writer``) ``planned_s`` (its estimate), ``planned_end`` and ``projected_end``: a running model's is
    now + its own ETA (its answer rate), a waiting model's is its planned end pushed back by the latest overrun of a
    running one, an ended model has none; it returns the run's ``planned_end``, ``projected_end`` (the latest
    model's) and ``finish_by`` (the deadline, or None)."""

    started: float
    planned: Mapping[str, tuple[float, float]]  # model -> (estimate seconds, planned end in seconds after the start)
    deadline: float | None = None

    @classmethod
    def of(
        cls,
        placements: Sequence[Placement],
        estimates: Mapping[str, Estimate],
        started: float,
        deadline: dt.datetime | None = None,
    ) -> Forecast:
        ends = planned_ends(placements)
        planned = {}
        for p in placements:
            est = estimates.get(p.job.key)
            planned[p.job.key] = (est.seconds if est is not None else p.job.weight, ends[p.job.key])
        return cls(started, planned, deadline.timestamp() if deadline is not None else None)

    @property
    def planned_end(self) -> float:
        return self.started + max([end for _, end in self.planned.values()] + [0.0])

    def annotate(self, models: list[dict], now: float) -> dict:
        """See the class docstring; ``models``: the status file's entries (``state``, ``eta_s``), changed in place."""
        planned = {key: end for key, (_, end) in self.planned.items()}
        known = [e for e in models if e["model"] in planned]
        running = {e["model"]: e.get("eta_s") for e in known if e["state"] == "running"}
        waiting = [e["model"] for e in known if e["state"] in WAITING]
        projected = projected_ends(planned, now - self.started, running, waiting)
        for entry in models:
            seconds, end = self.planned.get(entry["model"], (None, None))
            entry["planned_s"] = seconds
            entry["planned_end"] = None if end is None else self.started + end
            at = projected.get(entry["model"])
            entry["projected_end"] = None if at is None else self.started + at
        ends = [e["projected_end"] for e in models if e["projected_end"] is not None]
        return {
            "planned_end": self.planned_end,
            "projected_end": max(ends) if ends else None,
            "finish_by": self.deadline,
        }


WAITING = ("queued", "downloading", "starting")
