"""GPU discovery (NVML where installed, else ``nvidia-smi``), busy-GPU skipping and per-GPU file locks.

* ``discover()`` lists the machine's GPUs, ``[]`` when there is no driver, no ``nvidia-smi`` or no GPU.
* ``select()`` applies ``--gpus`` and skips GPUs mostly filled by processes we did not start.
* ``GpuLocks`` keeps two orchestrators on one host off the same GPU: one lock file per GPU under a lock directory
  that every orchestrator of the user shares (``~/.cache/deathmath-orchestrate/gpu-locks``).

The environment that pins a server to its GPUs (nvidia-smi numbering) is built with the rest of its launch, in
``launch.py`` (``placement_env``, ``pinned_env``).
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import filelock

from ..errors import PlanError

log = logging.getLogger(__name__)

NVIDIA_SMI = ["nvidia-smi", "--query-gpu=index,uuid,name,memory.total,memory.used", "--format=csv,noheader,nounits"]
DISCOVERY_TIMEOUT = 20.0
_MIB = 1024 * 1024


@dataclass(frozen=True)
class Gpu:
    """One GPU as the driver numbers it (the numbering of ``nvidia-smi`` and ``CUDA_DEVICE_ORDER=PCI_BUS_ID``)."""

    index: int
    uuid: str
    name: str
    memory_total_mb: int
    memory_used_mb: int

    @property
    def used_fraction(self) -> float:
        return self.memory_used_mb / self.memory_total_mb if self.memory_total_mb > 0 else 0.0


# ---------------------------------------------------------------------------------------------------- discovery


def discover(
    run: Callable[..., Any] = subprocess.run, nvml: Any = None, timeout: float = DISCOVERY_TIMEOUT
) -> list[Gpu]:
    """The machine's GPUs sorted by index; ``[]`` when there is none (or no driver to ask).

    ``nvml`` is a ``pynvml``-like module; ``None`` imports ``pynvml`` if installed, ``False`` skips NVML.
    NVML failures fall back to ``nvidia-smi``, which runs with a ``timeout``.
    """
    module = _import_nvml() if nvml is None else nvml
    if module:
        try:
            return _from_nvml(module)
        except Exception as exc:  # noqa: BLE001 - any NVML failure means: ask nvidia-smi instead
            log.debug("NVML query failed (%s); trying nvidia-smi", exc)
    return _from_smi(run, timeout)


def _import_nvml() -> Any:
    try:
        import pynvml  # type: ignore[import-not-found]  # optional: NVIDIA machines only
    except ImportError:
        return None
    return pynvml


def _from_nvml(nvml: Any) -> list[Gpu]:
    nvml.nvmlInit()
    try:
        return [_nvml_gpu(nvml, i) for i in range(nvml.nvmlDeviceGetCount())]
    finally:
        nvml.nvmlShutdown()


def _nvml_gpu(nvml: Any, index: int) -> Gpu:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    mem = nvml.nvmlDeviceGetMemoryInfo(handle)
    return Gpu(
        index=index,
        uuid=_text(nvml.nvmlDeviceGetUUID(handle)),
        name=_text(nvml.nvmlDeviceGetName(handle)),
        memory_total_mb=int(mem.total) // _MIB,
        memory_used_mb=int(mem.used) // _MIB,
    )


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _from_smi(run: Callable[..., Any], timeout: float) -> list[Gpu]:
    try:
        proc = run(NVIDIA_SMI, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        log.info("nvidia-smi not found: no GPU, models will be served by CPU vLLM servers")
        return []
    except (subprocess.TimeoutExpired, OSError) as exc:
        log.warning("nvidia-smi failed (%s): treating this machine as having no GPU", exc)
        return []
    if proc.returncode != 0:
        reason = (proc.stderr or proc.stdout or "").strip().splitlines()
        log.warning(
            "nvidia-smi exited with %s (%s): treating this machine as having no GPU",
            proc.returncode,
            reason[0] if reason else "no output",
        )
        return []
    return parse_smi(proc.stdout)


def parse_smi(text: str) -> list[Gpu]:
    """Parse ``nvidia-smi --query-gpu=index,uuid,name,memory.total,memory.used --format=csv,noheader,nounits``."""
    gpus = []
    for line in text.splitlines():
        if line.strip():
            gpu = _parse_line(line)
            if gpu is not None:
                gpus.append(gpu)
    return sorted(gpus, key=lambda g: g.index)


def _parse_line(line: str) -> Gpu | None:
    parts = [p.strip() for p in line.split(",")]
    if len(parts) < 5 or not parts[0].isdigit():
        log.warning("nvidia-smi: skipping a line I cannot read: %r", line.strip())
        return None
    name = ", ".join(parts[2:-2])  # a name may itself contain commas
    return Gpu(
        index=int(parts[0]), uuid=parts[1], name=name, memory_total_mb=_mib(parts[-2]), memory_used_mb=_mib(parts[-1])
    )


def _mib(field: str) -> int:
    """A memory field in MiB; ``[N/A]`` (some MIG and vGPU setups) reads as 0, i.e. never judged busy."""
    try:
        return int(float(field))
    except ValueError:
        return 0


# ---------------------------------------------------------------------------------------------------- selection


def select(gpus: Sequence[Gpu], wanted: Sequence[int] | None, busy_fraction: float = 0.5) -> list[Gpu]:
    """The GPUs to use: ``wanted`` (``--gpus``) or all, minus those mostly filled by other processes.

    Raises ``PlanError`` for a wanted index the machine lacks, or when every chosen GPU is busy.
    """
    by_index = {g.index: g for g in gpus}
    chosen = list(gpus) if wanted is None else [by_index[i] for i in _checked(wanted, by_index)]
    free = [g for g in chosen if not _busy(g, busy_fraction)]
    if chosen and not free:
        listed = ",".join(str(g.index) for g in chosen)
        raise PlanError(
            f"every selected GPU ({listed}) is mostly filled by processes this run did not start; "
            "free them (see nvidia-smi) or choose other GPUs with --gpus"
        )
    return free


def _checked(wanted: Sequence[int], by_index: Mapping[int, Gpu]) -> list[int]:
    unique = list(dict.fromkeys(wanted))
    for index in unique:
        if index not in by_index:
            found = ",".join(str(i) for i in sorted(by_index)) or "none"
            raise PlanError(
                f"--gpus: GPU {index} does not exist on this machine (GPUs found: {found}); pick indices from that list"
            )
    return unique


def _busy(gpu: Gpu, busy_fraction: float) -> bool:
    if gpu.used_fraction <= busy_fraction:
        return False
    log.warning(
        "skipping GPU %d (%s): %d of %d MiB already used by processes this run did not start",
        gpu.index,
        gpu.name,
        gpu.memory_used_mb,
        gpu.memory_total_mb,
    )
    return True


# ---------------------------------------------------------------------------------------------------- locks


def default_lock_dir() -> Path:
    """``~/.cache/deathmath-orchestrate/gpu-locks``, or a per-user directory in the temp dir if home is not writable."""
    home = Path(os.path.expanduser("~")) / ".cache" / "deathmath-orchestrate" / "gpu-locks"
    for candidate in (home, Path(tempfile.gettempdir()) / f"deathmath-orchestrate-{os.getuid()}" / "gpu-locks"):
        try:
            candidate.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(candidate, os.W_OK):
            return candidate
    raise PlanError(f"cannot create a GPU lock directory ({home} or the temp dir); make {home.parent} writable")


class GpuLocks:
    """Per-GPU file locks shared by every orchestrator of this host (``flock``: released if the holder dies).

    ``uuids`` (index -> UUID) names lock files by UUID, which stays right when containers number GPUs differently.
    """

    def __init__(
        self, lock_dir: Path | str | None = None, uuids: Mapping[int, str] | None = None, poll: float = 0.05
    ) -> None:
        self.lock_dir = Path(lock_dir) if lock_dir is not None else default_lock_dir()
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        self._uuids = dict(uuids or {})
        self._poll = poll
        self._held: dict[int, filelock.BaseFileLock] = {}

    @classmethod
    def for_gpus(cls, gpus: Iterable[Gpu], lock_dir: Path | str | None = None) -> GpuLocks:
        """Locks named by the UUIDs of ``gpus``."""
        return cls(lock_dir, {g.index: g.uuid for g in gpus if g.uuid})

    @property
    def held(self) -> list[int]:
        return sorted(self._held)

    def path(self, index: int) -> Path:
        uuid = self._uuids.get(index)
        name = "".join(c if c.isalnum() or c in "-_" else "_" for c in uuid) if uuid else f"gpu-{index}"
        return self.lock_dir / f"{name}.lock"

    def acquire(self, indices: Iterable[int], timeout: float) -> bool:
        """Lock every GPU of ``indices`` within ``timeout`` seconds (all or none; ascending order, so no deadlock)."""
        wanted = sorted(set(indices) - set(self._held))
        taken: list[int] = []
        for index in wanted:
            if not self._lock_one(index, timeout):
                self.release(taken)
                return False
            taken.append(index)
        return True

    def acquire_available(self, indices: Iterable[int], timeout: float = 0.0) -> list[int]:
        """Lock each GPU of ``indices`` that no other orchestrator holds; warns for the others; returns those held."""
        for index in sorted(set(indices)):
            if index not in self._held and not self._lock_one(index, timeout):
                log.warning(
                    "skipping GPU %d: another deathmath-orchestrate on this host holds it (%s)", index, self.path(index)
                )
        return [i for i in sorted(set(indices)) if i in self._held]

    def release(self, indices: Iterable[int]) -> None:
        """Release the locks of ``indices`` that this object holds."""
        for index in list(indices):
            lock = self._held.pop(index, None)
            if lock is not None:
                lock.release(force=True)

    def release_all(self) -> None:
        self.release(self.held)

    @contextmanager
    def locked(self, indices: Iterable[int], timeout: float) -> Iterator[list[int]]:
        """Hold the locks of ``indices`` for a ``with`` block; ``PlanError`` if they cannot be had in time."""
        wanted = sorted(set(indices))
        if not self.acquire(wanted, timeout):
            listed = ",".join(map(str, wanted))
            raise PlanError(
                f"GPUs {listed}: held by another deathmath-orchestrate on this host (locks in "
                f"{self.lock_dir}) for over {timeout:g}s; wait for it or choose other GPUs with --gpus"
            )
        try:
            yield wanted
        finally:
            self.release(wanted)

    def _lock_one(self, index: int, timeout: float) -> bool:
        lock = filelock.FileLock(str(self.path(index)), thread_local=False, is_singleton=False)
        try:
            lock.acquire(timeout=max(timeout, 0.0), poll_interval=self._poll)
        except filelock.Timeout:
            return False
        self._held[index] = lock
        return True

    def __del__(self) -> None:  # a dropped object must not keep GPUs locked for the process's lifetime
        try:
            self.release_all()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
