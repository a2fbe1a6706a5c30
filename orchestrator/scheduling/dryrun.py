"""The ``--dry-run`` text of a local run: per model its GPUs, port, estimated start and the exact server command.

The command and the variables shown are built by ``serving.launch`` exactly as the launcher builds them
(``launch_spec`` of the planned spec on its planned GPUs, then ``launch.shown_words``), secrets masked. What a dry
run cannot know is said in a note, not guessed: a server binds its planned port when it is free at start (else the
next free one), and a hub model is served from its downloaded snapshot (``--model <snapshot>``, ``HF_HUB_OFFLINE=1``).
``reasoning.parser: auto`` is shown with the parser picked and why (``launch.reasoning_parser``).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from ..contract import ServerSpec, public_url
from ..hub.weights import hub_ref
from ..reasoning.settings import AUTO
from ..serving.launch import launch_spec, reasoning_parser, shown_words
from .plan import DEFAULT_WEIGHT, Placement

PORT_NOTE = "a server binds its port when it is free at start, else the next free one"
HUB_NOTE = "hub models are served from their downloaded snapshot (--model <snapshot>, HF_HUB_OFFLINE=1)"


def render_plan(placements: Sequence[Placement]) -> str:
    """The ``--dry-run`` text: per model its GPUs, port, estimated start and the exact command (secrets masked)."""
    timed = any(p.job.weight != DEFAULT_WEIGHT for p in placements)
    pool = sorted({g for p in placements for g in p.gpus})
    head = (
        f"plan: {len(placements)} model(s); GPU pool: {','.join(map(str, pool)) or 'none (CPU servers)'}; "
        f"start = {'estimated start from the weights' if timed else 'wave (one unit per job: durations unknown)'}"
    )
    lines = [head] + [f"  note: {note}" for note in _notes(placements)]
    for p in placements:
        lines.append(f"  {p.job.key}: {_where(p)}  start {_when(p.wave_start, timed)}")
        spec = launch_spec(p.spec, p.gpus)
        if spec is not None:
            lines.append("    " + shlex.join(shown_words(spec)))
            lines += _reasoning_lines(p, spec)
    return "\n".join(lines)


def _reasoning_lines(p: Placement, spec: ServerSpec) -> list[str]:
    """``reasoning.parser: auto``: the parser picked and why (a hub model's is picked from its snapshot at start)."""
    if spec.reasoning_parser != AUTO:
        return []
    if hub_ref(p.job.model):
        return ["    reasoning parser: auto, picked from the downloaded snapshot when the server starts"]
    parser, why = reasoning_parser(spec)
    return [f"    reasoning parser: {parser or 'none'} ({why})"]


def _notes(placements: Sequence[Placement]) -> list[str]:
    managed = [p for p in placements if p.spec is not None]
    return ([PORT_NOTE] if managed else []) + ([HUB_NOTE] if any(hub_ref(p.job.model) for p in managed) else [])


def _where(p: Placement) -> str:
    if p.spec is None:
        bases = ", ".join(public_url(e.api_base) for e in p.job.model.endpoints) or "no endpoint"
        return f"API model ({bases})"
    return f"{'GPUs ' + ','.join(map(str, p.gpus)) if p.gpus else 'CPU server'}  port {p.port}"


def _when(start: float, timed: bool) -> str:
    if not timed:
        return f"wave {int(start) + 1}"
    minutes, seconds = divmod(int(round(start)), 60)
    return f"+{minutes // 60}h{minutes % 60:02d}m{seconds:02d}s"
