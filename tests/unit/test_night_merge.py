"""``benchmarks.night --merge``: one mode rerun, the other mode's rows kept and named with their command."""

from __future__ import annotations

import pytest

from benchmarks.night.bench import merged, report


def data(command: str, modes: list[str], seeds: range, makespan: float) -> dict:
    rows = [
        {"seed": s, "replicas": m, "makespan": makespan, "bound": 80.0, "tail_bound": 100.0}
        | {"one_at_a_time": 400.0, "servers": 11, "achieved": 0.8, "wall_s": 50.0, "finished": True}
        for s in seeds
        for m in modes
    ]
    return {"command": command, "nights": len(seeds), "scale": 100.0, "fidelity": {}, "rows": rows}


def test_a_merge_keeps_the_other_modes_rows_and_says_whose_they_are() -> None:
    old = data("night --modes auto,1", ["auto", "1"], range(3), 130.0)
    new = data("night --modes auto", ["auto"], range(3), 120.0)
    out = merged(old, new, ["auto"])
    assert [(r["seed"], r["replicas"], r["makespan"]) for r in out["rows"][:2]] == [(0, "1", 130.0), (0, "auto", 120.0)]
    assert len(out["rows"]) == 6
    assert out["kept"] == {"modes": "1", "command": "night --modes auto,1"}
    assert "(the rows of replicas: 1 kept from `night --modes auto,1`)" in report(out)


def test_a_merge_refuses_other_seeds() -> None:
    old = data("night", ["auto", "1"], range(3), 130.0)
    with pytest.raises(SystemExit, match="same seeds"):
        merged(old, data("night --modes auto", ["auto"], range(1, 4), 120.0), ["auto"])
