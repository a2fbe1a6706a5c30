"""The end-of-run summary printed by the CLI (formatting only): of a ``Summary``, what ``orchestrate`` returns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import click

from ..job import ModelOutcome


class Summary(Protocol):
    """What the summary reads of a run (``orchestrate.RunSummary``; no import of it: status sits below orchestrate)."""

    @property
    def run_id(self) -> str: ...
    @property
    def interrupted(self) -> bool: ...
    @property
    def outcomes(self) -> Sequence[ModelOutcome]: ...
    @property
    def leaderboard(self) -> Mapping[str, Path]: ...
    @property
    def manifest(self) -> Path | None: ...


def summary_lines(summary: Summary) -> list[str]:
    """One line per model: status, score per dataset, time, log; then where the results are."""
    lines = [f"run {summary.run_id}" + (" (interrupted)" if summary.interrupted else "")]
    for out in summary.outcomes:
        scores = (
            ", ".join(
                f"{s.dataset} {100 * s.accuracy:.1f}% ({s.correct}/{s.total * s.samples}"
                f"{f' samples, avg@{s.samples}' if s.samples > 1 else ''}"
                f"{'' if s.complete else ', incomplete'})"
                for s in out.scores
            )
            or "no scores"
        )
        extra = f", {out.restarts} restart(s)" if out.restarts else ""
        lines.append(f"  {out.model:<28} {out.status:<11} {scores}; {out.seconds:.0f}s{extra}")
        if out.log_path:
            lines.append(f"    log: {out.log_path}")
        if out.error:
            lines.append(f"    error: {out.error}")
    for kind, path in sorted(summary.leaderboard.items()):
        lines.append(f"leaderboard ({kind}): {path}")
    if summary.manifest:
        lines.append(f"manifest: {summary.manifest}")
    return lines


def print_summary(summary: Summary) -> None:
    for line in summary_lines(summary):
        click.echo(line)
