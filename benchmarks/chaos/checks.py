"""The invariants checked after every chaos round; each returns a list of violations (empty: it holds)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

from .faults import server_processes


def read_details(path: Path) -> tuple[list[dict], list[str]]:
    """(records, problems) of one details file: a line that is not a JSON object is a torn or garbled line."""
    if not path.exists():
        return [], [f"{path} is missing"]
    records, problems = [], []
    raw = path.read_bytes()
    if raw and not raw.endswith(b"\n"):
        problems.append(f"{path}: last line is torn (no newline)")
    for number, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            problems.append(f"{path}:{number}: not JSON")
            continue
        if not isinstance(rec, dict) or "id" not in rec:
            problems.append(f"{path}:{number}: not an answer record")
            continue
        records.append(rec)
    return records, problems


def check_answers(results: Path, expected: Mapping[tuple[str, str], Sequence[str]]) -> tuple[list[str], int, int]:
    """Every (model, dataset, problem) answered exactly once. Returns (violations, answers lost, duplicates)."""
    violations, lost, dupes = [], 0, 0
    for (model, dataset), ids in expected.items():
        records, problems = read_details(results / "details" / model / f"{dataset}.jsonl")
        violations += problems
        answered = Counter(r["id"] for r in records if r.get("error") is None)
        missing = [i for i in ids if answered[i] == 0]
        doubled = [i for i, n in answered.items() if n > 1]
        stray = sorted(set(answered) - set(ids))
        lost, dupes = lost + len(missing), dupes + len(doubled)
        if missing:
            violations.append(f"{model}/{dataset}: {len(missing)} problem(s) never answered, e.g. {missing[:3]}")
        if doubled:
            violations.append(f"{model}/{dataset}: answered more than once: {doubled[:3]}")
        if stray:
            violations.append(f"{model}/{dataset}: answers to problems not asked: {stray[:3]}")
    return violations, lost, dupes


def check_leaderboard(results: Path, expected: Mapping[tuple[str, str], Sequence[str]]) -> list[str]:
    """leaderboard.json agrees with the details files: per cell, the correct and answered counts and the total."""
    try:
        board = json.loads((results / "leaderboard.json").read_text())
    except (OSError, ValueError) as exc:
        return [f"leaderboard.json unreadable: {exc}"]
    rows = {row["model"]: row for row in board.get("rows", [])}
    violations = []
    for (model, dataset), ids in expected.items():
        cell = rows.get(model, {}).get("datasets", {}).get(dataset)
        if cell is None:
            violations.append(f"leaderboard has no cell for {model}/{dataset}")
            continue
        records, _ = read_details(results / "details" / model / f"{dataset}.jsonl")
        ok = {r["id"]: r for r in records if r.get("error") is None}
        correct = sum(1 for r in ok.values() if r.get("verdict") == "correct")
        want = {"correct": correct, "answered": len(ok), "total": len(ids)}
        got = {key: cell.get(key) for key in want}
        if got != want:
            violations.append(f"leaderboard {model}/{dataset} says {got}, details say {want}")
    return violations


def check_no_processes(logs: Path) -> tuple[list[str], int]:
    """No server process of the round alive and no server record left. Returns (violations, orphans)."""
    alive = server_processes(logs)
    violations = [f"orphan: pid {pid} ({proc_role or 'process'} of {model})" for pid, model, proc_role in alive]
    state = logs / "servers.json"
    if state.exists():
        try:
            left = json.loads(state.read_text())
        except ValueError:
            left = ["unreadable"]
        if left:
            violations.append(f"{state} still lists {len(left)} server(s)")
    return violations, len(alive)
