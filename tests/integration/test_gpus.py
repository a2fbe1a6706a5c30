"""GPU discovery, selection and per-GPU locks.

There is no GPU here, so ``nvidia-smi`` is a real executable script on PATH printing what the driver prints
(the one thing that cannot exist on this machine); locks are contested by a real second process.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from orchestrator.errors import PlanError
from orchestrator.serving import gpus as gpumod
from orchestrator.serving.gpus import Gpu, GpuLocks, discover, select

H100 = "NVIDIA H100 80GB HBM3"
SMI_OUTPUT = (
    f"0, GPU-aaaa-0000, {H100}, 81559, 4\n"
    f"1, GPU-aaaa-0001, {H100}, 81559, 70000\n"
    "2, GPU-aaaa-0002, NVIDIA A100-SXM4-80GB, Rev, 2, 81920, [N/A]\n"
    "\n"
)


@pytest.fixture
def fake_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Install an ``nvidia-smi`` script on PATH; returns a function to set its output, exit code and delay."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")

    def install(stdout: str = SMI_OUTPUT, code: int = 0, sleep: float = 0.0, stderr: str = "") -> Path:
        args_file = tmp_path / "args.txt"
        script = bindir / "nvidia-smi"
        script.write_text(
            textwrap.dedent(f"""\
            #!{sys.executable}
            import sys, time
            open({str(args_file)!r}, "w").write("\\n".join(sys.argv[1:]))
            time.sleep({sleep})
            sys.stdout.write({stdout!r}); sys.stderr.write({stderr!r})
            sys.exit({code})
            """)
        )
        script.chmod(0o755)
        return args_file

    return install


def test_discover_runs_nvidia_smi_query_and_parses_every_gpu(fake_smi) -> None:
    args_file = fake_smi()
    found = discover(nvml=False)
    assert args_file.read_text().splitlines() == gpumod.NVIDIA_SMI[1:]
    assert [g.index for g in found] == [0, 1, 2]
    assert found[0] == Gpu(0, "GPU-aaaa-0000", H100, 81559, 4)
    assert found[2].name == "NVIDIA A100-SXM4-80GB, Rev, 2"  # a comma inside the name survives
    assert found[2].memory_used_mb == 0  # [N/A] is never judged busy


def test_discover_without_nvidia_smi_is_an_empty_pool(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a real lookup that finds nothing
    assert discover(nvml=False) == []


def test_discover_gives_up_after_its_timeout(fake_smi, caplog: pytest.LogCaptureFixture) -> None:
    fake_smi(sleep=30)
    began = time.monotonic()
    with caplog.at_level(logging.WARNING):
        assert discover(nvml=False, timeout=0.5) == []
    assert time.monotonic() - began < 10
    assert "nvidia-smi failed" in caplog.text


def test_discover_with_a_broken_driver_warns_and_finds_nothing(fake_smi, caplog: pytest.LogCaptureFixture) -> None:
    fake_smi(stdout="", code=9, stderr="NVIDIA-SMI has failed because it couldn't communicate with the driver\n")
    with caplog.at_level(logging.WARNING):
        assert discover(nvml=False) == []
    assert "couldn't communicate" in caplog.text


def _fake_nvml(fail: bool = False) -> SimpleNamespace:
    devices = [(b"GPU-n0", b"NVIDIA L40S", 48 * 2**30, 2**30), ("GPU-n1", "NVIDIA L40S", 48 * 2**30, 40 * 2**30)]
    calls: list[str] = []

    def init() -> None:
        calls.append("init")
        if fail:
            raise RuntimeError("NVML Shared Library Not Found")

    return SimpleNamespace(
        calls=calls,
        nvmlInit=init,
        nvmlShutdown=lambda: calls.append("shutdown"),
        nvmlDeviceGetCount=lambda: len(devices),
        nvmlDeviceGetHandleByIndex=lambda i: devices[i],
        nvmlDeviceGetUUID=lambda h: h[0],
        nvmlDeviceGetName=lambda h: h[1],
        nvmlDeviceGetMemoryInfo=lambda h: SimpleNamespace(total=h[2], used=h[3]),
    )


def test_discover_prefers_nvml_and_shuts_it_down(fake_smi) -> None:
    args_file = fake_smi()
    nvml = _fake_nvml()
    found = discover(nvml=nvml)
    assert found == [Gpu(0, "GPU-n0", "NVIDIA L40S", 49152, 1024), Gpu(1, "GPU-n1", "NVIDIA L40S", 49152, 40960)]
    assert nvml.calls == ["init", "shutdown"] and not args_file.exists()


def test_a_failing_nvml_falls_back_to_nvidia_smi(fake_smi) -> None:
    fake_smi()
    assert [g.uuid for g in discover(nvml=_fake_nvml(fail=True))] == ["GPU-aaaa-0000", "GPU-aaaa-0001", "GPU-aaaa-0002"]


POOL = gpumod.parse_smi(SMI_OUTPUT)


def test_select_skips_a_mostly_filled_gpu_with_a_warning_naming_it(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        chosen = select(POOL, None)
    assert [g.index for g in chosen] == [0, 2]
    assert "GPU 1" in caplog.text and H100 in caplog.text and "70000 of 81559 MiB" in caplog.text


def test_select_limits_the_pool_to_wanted_in_order_without_duplicates() -> None:
    assert [g.index for g in select(POOL, [2, 0, 2])] == [2, 0]
    assert [g.index for g in select(POOL, [1], busy_fraction=0.9)] == [1]


def test_select_rejects_an_index_the_machine_lacks() -> None:
    with pytest.raises(PlanError, match=r"GPU 7 does not exist.*GPUs found: 0,1,2") as err:
        select(POOL, [0, 7])
    assert "\n" not in str(err.value)


def test_select_refuses_when_every_chosen_gpu_is_busy() -> None:
    with pytest.raises(PlanError, match=r"every selected GPU \(1\) is mostly filled"):
        select(POOL, [1])


# ---------------------------------------------------------------------------------------------------- locks

HOLDER = """
import sys, time
from orchestrator.serving.gpus import GpuLocks
locks = GpuLocks(sys.argv[1])
assert locks.acquire([int(i) for i in sys.argv[2].split(",")], timeout=5)
print("held", flush=True)
time.sleep(60)
"""


@pytest.fixture
def other_orchestrator(tmp_path: Path):
    """Start a real second process that holds the locks of some GPUs until killed."""
    procs: list[subprocess.Popen] = []

    def hold(indices: str) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(tmp_path / "locks"), indices], stdout=subprocess.PIPE, text=True
        )
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        return proc

    yield hold
    for proc in procs:
        proc.kill()
        proc.wait(timeout=10)


def test_locks_keep_a_second_orchestrator_off_a_held_gpu(tmp_path: Path, other_orchestrator) -> None:
    proc = other_orchestrator("1")
    locks = GpuLocks(tmp_path / "locks", poll=0.01)
    began = time.monotonic()
    assert locks.acquire([0, 1], timeout=0.3) is False
    assert 0.25 < time.monotonic() - began < 5
    assert locks.held == []  # all or none: GPU 0 was given back
    assert locks.acquire([0, 2], timeout=0.3) is True and locks.held == [0, 2]
    proc.send_signal(signal.SIGKILL)  # the holder dies: the kernel drops its lock
    proc.wait(timeout=10)
    assert locks.acquire([1], timeout=2) is True and locks.held == [0, 1, 2]
    locks.release_all()
    assert locks.held == []


def test_acquire_available_takes_the_free_gpus_and_names_the_held_one(
    tmp_path: Path, other_orchestrator, caplog: pytest.LogCaptureFixture
) -> None:
    other_orchestrator("2")
    locks = GpuLocks(tmp_path / "locks")
    with caplog.at_level(logging.WARNING):
        assert locks.acquire_available([0, 1, 2, 3]) == [0, 1, 3]
    assert "skipping GPU 2" in caplog.text
    locks.release_all()


def test_locked_context_releases_and_raises_plan_error_when_held(tmp_path: Path, other_orchestrator) -> None:
    mine = GpuLocks(tmp_path / "locks")
    with mine.locked([0], timeout=1):
        assert mine.held == [0]
        assert GpuLocks(tmp_path / "locks").acquire([0], timeout=0.1) is False
    assert mine.held == []
    other_orchestrator("3")
    with pytest.raises(PlanError, match=r"GPUs 3: held by another deathmath-orchestrate"):
        with mine.locked([3], timeout=0.1):
            pass


def test_lock_files_are_named_by_uuid_when_known(tmp_path: Path) -> None:
    locks = GpuLocks.for_gpus(POOL, tmp_path)
    assert locks.path(0).name == "GPU-aaaa-0000.lock"
    assert GpuLocks(tmp_path).path(5).name == "gpu-5.lock"
    assert locks.acquire([0], timeout=1) and locks.path(0).exists()
    locks.release_all()
