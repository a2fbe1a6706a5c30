"""The state file (real files, real concurrent processes) and cleanup against a scripted process table."""

from __future__ import annotations

import json
import multiprocessing
import signal
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from orchestrator.serving.identity import ProcInfo, PsutilProcs, same_process
from orchestrator.serving.launch import RUN_ENV, SERVER_ENV
from orchestrator.serving.records import ServerRecord, StateFile, cleanup
from orchestrator.serving.terminate import terminate

OWNER, OWNER_T = 500, 1000.0
REC = ServerRecord(
    pid=700,
    pgid=700,
    create_time=2000.0,
    run_id="run-a",
    owner_pid=OWNER,
    owner_create_time=OWNER_T,
    name="qwen",
    gpus=(0, 1),
    port=8100,
    log_path="logs/run-a/qwen.log",
    server_id="s1",
)


@dataclass
class ScriptedClock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class ScriptedTable:
    """A process table: SIGTERM ends a process unless it is stubborn; SIGKILL always does."""

    procs: dict[int, ProcInfo] = field(default_factory=dict)
    stubborn: set[int] = field(default_factory=set)
    sent: list[tuple[int, int]] = field(default_factory=list)

    def add(self, *infos: ProcInfo) -> ScriptedTable:
        self.procs.update({p.pid: p for p in infos})
        return self

    def list(self) -> list[ProcInfo]:
        return list(self.procs.values())

    def create_time(self, pid: int) -> float | None:
        return self.procs[pid].create_time if pid in self.procs else None

    def signal(self, pid: int, sig: int) -> None:
        self.sent.append((pid, sig))
        if sig == signal.SIGKILL or pid not in self.stubborn:
            self.procs.pop(pid, None)


def server_procs(rec: ServerRecord = REC) -> list[ProcInfo]:
    """api_server, EngineCore, Worker, all carrying the markers."""
    return [ProcInfo(rec.pid + i, rec.create_time + i, rec.pgid, rec.pgid, rec.run_id, rec.server_id) for i in range(3)]


def write_state(logs: Path, *recs: ServerRecord) -> None:
    for rec in recs:
        StateFile(logs).add(rec)


# -- the state file ---------------------------------------------------------------------------------------------------


def test_add_records_remove_round_trip(tmp_path: Path) -> None:
    sf = StateFile(tmp_path / "logs")
    other = replace(REC, pid=800, name="llama", gpus=())
    sf.add(REC)
    sf.add(other)
    sf.add(REC)  # re-adding the same pid replaces, never duplicates
    assert StateFile(tmp_path / "logs").records() == [other, REC]
    sf.remove(REC.pid)
    sf.remove(12345)
    assert sf.records() == [other]
    assert json.loads((tmp_path / "logs" / "servers.json").read_text())[0]["gpus"] == []
    assert [p.name for p in (tmp_path / "logs").iterdir() if p.name.endswith(".tmp")] == []


def test_unreadable_state_file_reads_as_empty(tmp_path: Path) -> None:
    (tmp_path / "servers.json").write_text("{not json")
    assert StateFile(tmp_path).records() == []
    (tmp_path / "servers.json").write_text('{"a": 1}')
    assert StateFile(tmp_path).records() == []
    StateFile(tmp_path).add(REC)
    assert StateFile(tmp_path).records() == [REC]


def _add_many(logs: str, start: int) -> None:
    for i in range(start, start + 20):
        StateFile(Path(logs)).add(replace(REC, pid=i))


def test_concurrent_writers_in_separate_processes_lose_nothing(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_add_many, args=(str(tmp_path), k * 1000)) for k in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    assert len({r.pid for r in StateFile(tmp_path).records()}) == 80


# -- cleanup ----------------------------------------------------------------------------------------------------------


def run_cleanup(logs: Path, table: ScriptedTable, grace: float = 10.0) -> list[ServerRecord]:
    clock = ScriptedClock()
    return cleanup(logs, table, grace=grace, clock=clock, sleep=clock.sleep)


def test_orphans_of_a_dead_owner_are_killed_and_forgotten(tmp_path: Path) -> None:
    write_state(tmp_path, REC)
    table = ScriptedTable().add(*server_procs())
    assert run_cleanup(tmp_path, table) == [REC]
    assert table.procs == {}
    assert {pid for pid, sig in table.sent if sig == signal.SIGTERM} == {700, 701, 702}
    assert StateFile(tmp_path).records() == []
    assert run_cleanup(tmp_path, table) == []


def test_servers_of_a_live_owner_are_left_alone(tmp_path: Path) -> None:
    write_state(tmp_path, REC)
    table = ScriptedTable().add(ProcInfo(OWNER, OWNER_T), *server_procs())
    assert run_cleanup(tmp_path, table) == []
    assert table.sent == [] and len(table.procs) == 4
    assert StateFile(tmp_path).records() == [REC]


def test_owner_pid_reused_by_another_process_counts_as_gone(tmp_path: Path) -> None:
    write_state(tmp_path, REC)
    table = ScriptedTable().add(ProcInfo(OWNER, OWNER_T + 300.0), *server_procs())
    assert run_cleanup(tmp_path, table) == [REC]
    assert set(table.procs) == {OWNER}


def test_never_signals_a_process_it_did_not_start(tmp_path: Path) -> None:
    """A reused server pid without the markers, another run's or another server's process, an older process."""
    write_state(tmp_path, REC)
    strangers = [
        ProcInfo(700, 2500.0, 700, 700),  # the server pid, reused by an unmarked process
        ProcInfo(900, 2100.0, 900, 900, "run-b", "s1"),  # another run
        ProcInfo(901, 2100.0, 901, 901, "run-a", "s2"),  # another server of the same run
        ProcInfo(902, 1500.0, 902, 902, "run-a", "s1"),  # marked, but older than the server
    ]
    table = ScriptedTable().add(*strangers)
    assert run_cleanup(tmp_path, table) == []
    assert table.sent == []
    assert StateFile(tmp_path).records() == []  # the orphan record itself is dropped


def test_reparented_children_are_found_by_marker_not_pid(tmp_path: Path) -> None:
    """api_server was SIGKILLed: EngineCore and Worker live on in their own groups, found through the markers."""
    write_state(tmp_path, REC)
    engine = ProcInfo(4242, 2001.0, 4242, 4242, "run-a", "s1")
    worker = ProcInfo(4243, 2002.0, 4242, 4242, "run-a", "s1")
    table = ScriptedTable().add(engine, worker, ProcInfo(4244, 2003.0, 4242, 4242))
    assert run_cleanup(tmp_path, table) == [REC]
    assert set(table.procs) == {4244}


def test_retitled_children_with_blank_environ_are_found_by_session_and_log(tmp_path: Path) -> None:
    """setproctitle blanks /proc/<pid>/environ of VLLM::EngineCore and VLLM::Worker: session id + stdout decide."""
    write_state(tmp_path, REC)
    engine = ProcInfo(4242, 2001.0, 700, 700, stdout=REC.log_path)
    worker = ProcInfo(4243, 2002.0, 700, 700, stdout=REC.log_path)
    other_log = ProcInfo(4244, 2003.0, 700, 700, stdout="/elsewhere.log")  # same session id, not our log
    other_session = ProcInfo(4245, 2003.0, 900, 900, stdout=REC.log_path)  # our log, another session
    older = ProcInfo(4246, 1999.0, 700, 700, stdout=REC.log_path)  # predates the server
    table = ScriptedTable().add(engine, worker, other_log, other_session, older)
    assert run_cleanup(tmp_path, table) == [REC]
    assert set(table.procs) == {4244, 4245, 4246}


def test_term_ignored_then_kill_after_grace(tmp_path: Path) -> None:
    write_state(tmp_path, REC)
    table = ScriptedTable(stubborn={701}).add(*server_procs())
    clock = ScriptedClock()
    assert cleanup(tmp_path, table, grace=3.0, clock=clock, sleep=clock.sleep) == [REC]
    assert (701, signal.SIGKILL) in table.sent and (700, signal.SIGKILL) not in table.sent
    assert 3.0 <= clock.now < 4.0
    assert table.procs == {}


def test_a_process_that_survives_sigkill_keeps_its_record(tmp_path: Path) -> None:
    write_state(tmp_path, REC)

    class Unkillable(ScriptedTable):
        def signal(self, pid: int, sig: int) -> None:
            self.sent.append((pid, sig))  # e.g. stuck in uninterruptible sleep

    table = Unkillable().add(server_procs()[0])
    assert run_cleanup(tmp_path, table) == [REC]
    assert (700, signal.SIGKILL) in table.sent
    assert StateFile(tmp_path).records() == [REC]


def test_zombies_are_not_targets(tmp_path: Path) -> None:
    write_state(tmp_path, REC)
    zombie = replace(server_procs()[0], zombie=True)
    table = ScriptedTable().add(zombie)
    assert run_cleanup(tmp_path, table) == []
    assert table.sent == []


def test_terminate_waits_only_as_long_as_needed() -> None:
    table = ScriptedTable().add(*server_procs())
    clock = ScriptedClock()
    left = terminate(
        table.list, lambda sig, ps: [table.signal(p.pid, sig) for p in ps], 20.0, clock=clock, sleep=clock.sleep
    )
    assert left == [] and clock.now == 0.0


def test_psutil_table_sees_this_process_and_its_markers(monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, RUN_ENV: "run-x", SERVER_ENV: "sid-x"}
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], env=env)
    try:
        table = PsutilProcs()
        mine = {p.pid: p for p in table.list()}
        assert mine[child.pid].run_id == "run-x" and mine[child.pid].server_id == "sid-x"
        assert mine[os.getpid()].sid == os.getsid(0)
        assert same_process(table, child.pid, table.create_time(child.pid))
        assert not same_process(table, child.pid, table.create_time(child.pid) - 5)
    finally:
        child.kill()
        child.wait()
    assert PsutilProcs().create_time(child.pid) is None


@dataclass
class ForkingTable(ScriptedTable):
    """A table whose ``parent`` forks ``child`` when it gets SIGTERM (a process born during the stop), and whose
    child is listed only from the second look on (as a new pid listed after the scan passed it)."""

    parent: int = 0
    child: ProcInfo | None = None
    born: bool = False

    def signal(self, pid: int, sig: int) -> None:
        if pid == self.parent and not self.born and self.child is not None:
            self.born = True
            self.procs[self.child.pid] = self.child
        super().signal(pid, sig)


def test_terminate_signals_a_child_born_during_the_stop_and_returns_only_when_it_is_gone() -> None:
    api, engine, worker = server_procs()
    late = ProcInfo(800, 2010.0, REC.pgid, REC.pgid, REC.run_id, REC.server_id)
    table = ForkingTable(parent=engine.pid, child=late).add(api, engine, worker)
    clock = ScriptedClock()
    left = terminate(
        table.list,
        lambda sig, ps: [table.signal(p.pid, sig) for p in ps],
        20.0,
        table=table,
        clock=clock,
        sleep=clock.sleep,
    )
    assert left == [] and table.procs == {}
    assert (late.pid, signal.SIGTERM) in table.sent


def test_terminate_kills_a_stubborn_child_born_during_the_stop_after_the_grace() -> None:
    api, engine, worker = server_procs()
    late = ProcInfo(800, 2010.0, REC.pgid, REC.pgid, REC.run_id, REC.server_id)
    table = ForkingTable(parent=api.pid, child=late, stubborn={late.pid}).add(api, engine, worker)
    clock = ScriptedClock()
    left = terminate(
        table.list,
        lambda sig, ps: [table.signal(p.pid, sig) for p in ps],
        5.0,
        table=table,
        clock=clock,
        sleep=clock.sleep,
    )
    assert left == [] and table.procs == {}
    assert table.sent[-1] == (late.pid, signal.SIGKILL) and 5.0 <= clock.now < 6.0


def test_terminate_reports_what_survives_sigkill_by_pid() -> None:
    immortal = ProcInfo(900, 2000.0, REC.pgid, REC.pgid, REC.run_id, REC.server_id)

    class Immortal(ScriptedTable):
        def signal(self, pid: int, sig: int) -> None:
            self.sent.append((pid, sig))

    table = Immortal().add(immortal)
    clock = ScriptedClock()
    left = terminate(
        table.list,
        lambda sig, ps: [table.signal(p.pid, sig) for p in ps],
        1.0,
        table=table,
        clock=clock,
        sleep=clock.sleep,
        kill_wait=2.0,
    )
    assert [p.pid for p in left] == [900]
    assert table.sent == [(900, signal.SIGTERM), (900, signal.SIGKILL)]  # each signal once per process
