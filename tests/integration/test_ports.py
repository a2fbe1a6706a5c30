"""Port registry: real sockets, real files, real concurrent processes."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
from pathlib import Path

import pytest

from orchestrator.errors import PortError
from orchestrator.serving.ports import PortRegistry, can_bind, default_state_dir


def free_everywhere(port: int) -> bool:
    return True


def test_reserve_gives_distinct_ports_and_vllm_port_blocks(tmp_path: Path) -> None:
    reg = PortRegistry(tmp_path, 8100, 8999, bind=free_everywhere)
    ports = [reg.reserve() for _ in range(3)]
    assert ports == [8100, 8101, 8102]
    bases = [reg.vllm_port_base(p) for p in ports]
    assert len(set(bases)) == 3 and all(b >= 20000 for b in bases)
    assert min(abs(a - b) for a in bases for b in bases if a != b) >= reg.internal.step
    assert PortRegistry(tmp_path, bind=free_everywhere).held() == ports


def test_release_makes_the_port_available_again(tmp_path: Path) -> None:
    reg = PortRegistry(tmp_path, 8100, 8999, bind=free_everywhere)
    first, second = reg.reserve(), reg.reserve()
    reg.release(first)
    reg.release(first)  # idempotent
    assert reg.held() == [second]
    assert reg.reserve() == first
    with pytest.raises(PortError, match="reserve"):
        reg.vllm_port_base(9999)


def test_preferred_port_is_used_when_free_else_another(tmp_path: Path) -> None:
    busy = {8500}
    reg = PortRegistry(tmp_path, 8100, 8999, bind=lambda p: p not in busy)
    assert reg.reserve(preferred=8600) == 8600
    assert reg.reserve(preferred=8600) == 8100  # held by us already
    assert reg.reserve(preferred=8500) == 8101  # something outside the registry listens there
    assert reg.reserve(avoid=[8102, 8103]) == 8104


def test_a_listening_socket_is_never_handed_out(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        assert not can_bind(taken)
        with pytest.raises(PortError):
            PortRegistry(tmp_path, taken, taken).reserve()
    assert can_bind(taken)
    assert PortRegistry(tmp_path, taken, taken).reserve() == taken


def test_exhaustion_raises_one_line_port_error(tmp_path: Path) -> None:
    reg = PortRegistry(tmp_path, 8100, 8101, bind=free_everywhere)
    reg.reserve(), reg.reserve()
    with pytest.raises(PortError) as err:
        reg.reserve()
    assert "8100-8101" in str(err.value) and "\n" not in str(err.value)


def test_reservations_of_dead_owners_are_reclaimed(tmp_path: Path) -> None:
    (tmp_path / "ports.json").write_text(
        json.dumps(
            [
                {"port": 8100, "base": 20000, "owner_pid": 1, "owner_create_time": 5.0, "time": 0},
                {"port": 8101, "base": 20050, "owner_pid": 2, "owner_create_time": 6.0, "time": 0},
            ]
        )
    )
    reg = PortRegistry(tmp_path, 8100, 8999, bind=free_everywhere, alive=lambda pid, t: pid == 2)
    assert reg.reserve() == 8100
    assert reg.vllm_port_base(8100) == 20000
    assert reg.held() == [8100, 8101]


def test_default_state_dir_is_per_user_and_overridable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DEATHMATH_PORTS_DIR", raising=False)
    assert default_state_dir().name == f"deathmath-orchestrate-{os.getuid()}"
    monkeypatch.setenv("DEATHMATH_PORTS_DIR", str(tmp_path))
    assert default_state_dir() == tmp_path


def test_invalid_range_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(PortError, match="9000-8000"):
        PortRegistry(tmp_path, 9000, 8000)


def _reserve_many(state_dir: str, out: multiprocessing.Queue[list[int]], done: multiprocessing.Event) -> None:
    reg = PortRegistry(Path(state_dir), 8100, 8999, bind=free_everywhere)
    out.put([reg.reserve() for _ in range(5)])
    done.wait(60)  # stay alive: a dead owner's ports are reclaimable


def test_concurrent_orchestrators_never_share_a_port(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    out, done = ctx.Queue(), ctx.Event()
    workers = [ctx.Process(target=_reserve_many, args=(str(tmp_path), out, done)) for _ in range(4)]
    for w in workers:
        w.start()
    got = [p for _ in workers for p in out.get(timeout=60)]
    done.set()
    for w in workers:
        w.join(30)
    assert len(got) == 20 and len(set(got)) == 20
    entries = json.loads((tmp_path / "ports.json").read_text())
    assert len({e["base"] for e in entries}) == 20
