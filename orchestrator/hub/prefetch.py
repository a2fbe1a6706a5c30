"""Weights before GPUs: download hub models in plan order while other models run; a download never holds a GPU.

``Prefetcher(models_in_plan_order, ahead=N)`` runs one coordinator thread. Each hub repository + revision is one
``Download``, shared by every model on it (different prompts or served names fetch once). Downloads start in plan
order while at most ``ahead`` repositories are fetched ahead of the GPUs -- listing, downloading, waiting for disk,
or downloaded and not yet placed. ``ahead=0`` downloads only while no model runs (no overlap at all).

The scheduler asks ``ready(key)`` (the weights are in, or failed: the job then fails at once without a server) and
is woken through ``on_change``; the job calls ``placed``, ``local_spec`` (the server runs on the snapshot folder
with ``HF_HUB_OFFLINE=1`` and the same served name: ``launch.offline_spec``; so ``startup_timeout`` counts from the
spawn) and ``released``.

Disk: before a download the missing bytes (from the hub's file list) plus ``margin`` must fit in the cache disk's
free space (``free``, a seam) less what the other downloads still have to write. With ``delete_after`` a model
that does not fit waits while weights of this run are still to be deleted; otherwise it fails with one line naming
its size and the free space. ``delete_after`` removes, once a repository's last job ends, only the files this run
downloaded (``cachefiles.delete_fresh``: never what was cached before, nor a blob another cached revision links
to). A broken download keeps
its bytes (``resumable.py``: ``blobs/<etag>.partial``), which the next run resumes with a Range request. Progress lines
show bytes, rate and ETA; the manifest records each model's download seconds and bytes.

``answered_models`` names the models whose checkpoints already hold every answer (no server: nothing to fetch);
``fetch_now`` fetches one model in place (a Ray node, where there is no shared disk to prefetch onto).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from ..contract import DatasetSpec, ModelConfig, ModelState, Problem, ProgressStatus, RunPhase, ServerSpec
from ..errors import WeightsError
from ..prompts import prompt_fingerprint
from ..results import missing_in, settings_hash
from ..serving.launch import offline_spec
from .cachefiles import delete_fresh, rate_text, written
from .weights import (
    DISK_MARGIN,
    HfHub,
    HubApi,
    HubRef,
    Listing,
    fmt_bytes,
    free_bytes,
    hub_cache,
    hub_ref,
    list_weights,
    load_format,
    offline_incomplete,
    space_error,
    weights_error,
)

log = logging.getLogger(__name__)
DownloadState = Literal["queued", "listing", "downloading", "disk wait", "done", "failed"]
IN_FLIGHT: tuple[DownloadState, ...] = ("listing", "downloading", "disk wait")
PHASES: dict[DownloadState, ProgressStatus] = {  # what a model's progress shows of its weights' download
    "downloading": RunPhase.DOWNLOADING,
    "disk wait": RunPhase.DISK_WAIT,
    "done": RunPhase.WEIGHTS_OK,
    "failed": ModelState.FAILED,
}


class ProgressLike(Protocol):
    def set_status(self, model: str, status: ProgressStatus) -> None: ...
    def set_download(self, label: str, text: str | None) -> None: ...


class ManifestLike(Protocol):
    def timing(self, model: str, phase: str, seconds: float) -> None: ...
    def set_model(self, model: str, **facts: Any) -> None: ...


class DatasetRunLike(Protocol):
    @property
    def spec(self) -> DatasetSpec: ...
    @property
    def problems(self) -> Sequence[Problem]: ...
    @property
    def version(self) -> str: ...


def answered_models(
    results_dir: Path, models: Sequence[ModelConfig], runs: Sequence[DatasetRunLike], fresh: bool = False
) -> set[str]:
    """Keys of the models whose every series already holds every answer this run asks (each problem's samples;
    ``results.missing_in``): they start no server, so their weights are not fetched (should one still need a server,
    vLLM is given the hub id as before)."""
    if fresh or not Path(results_dir).is_dir():
        return set()
    fingerprint = prompt_fingerprint()

    def complete(m: ModelConfig, r: DatasetRunLike) -> bool:
        digest = settings_hash(m, r.spec.name, r.version, fingerprint)
        return not missing_in(results_dir, m.key, r.spec.name, digest, r.problems, m.samples)

    return {m.key for m in models if all(complete(m, r) for r in runs)}


@dataclass
class Download:
    """One repository revision: its state, listing, result and the jobs that use it."""

    ref: HubRef
    keys: list[str]
    fmt: str = "auto"
    state: DownloadState = "queued"
    listing: Listing | None = None
    path: Path | None = None
    error: WeightsError | None = None
    began: float = 0.0
    seconds: float = 0.0
    fresh: tuple[str, ...] = ()  # files this run downloaded: the only ones --delete-weights-after removes
    placed: int = 0
    open_jobs: int = 0
    done_bytes: int = 0

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")

    @property
    def ahead(self) -> bool:
        """Counts against ``ahead``: being fetched, or fetched by this run and not yet on a GPU."""
        return self.state in IN_FLIGHT or (self.state == "done" and bool(self.fresh) and self.placed == 0)


@dataclass
class Prefetcher:
    models: Sequence[ModelConfig]
    ahead: int = 1
    delete_after: bool = False
    hub: HubApi | None = None  # default: HfHub on ``cache``
    cache: Path = field(default_factory=hub_cache)
    free: Callable[[Path], int] = free_bytes
    margin: int = DISK_MARGIN
    progress: ProgressLike | None = None
    manifest: ManifestLike | None = None
    on_change: Callable[[], None] = lambda: None
    clock: Callable[[], float] = time.monotonic
    poll: float = 1.0
    stop: threading.Event = field(default_factory=threading.Event)  # the run's: once set, no new download starts

    def __post_init__(self) -> None:
        self._hub: HubApi = self.hub or HfHub(self.cache)
        self._cond = threading.Condition()
        self._closed = False
        self._running = 0
        self._by_key: dict[str, Download] = {}
        self.downloads: list[Download] = []
        for model in self.models:
            self._add(model)
        self._thread: threading.Thread | None = None

    def _add(self, model: ModelConfig) -> None:
        ref = hub_ref(model)
        if ref is None:
            return
        found = next((d for d in self.downloads if d.ref == ref), None)
        if found is None:
            found = Download(ref, [], fmt=load_format(model.vllm.args if model.vllm else ()))
            self.downloads.append(found)
        found.keys.append(model.key)
        found.open_jobs += 1
        self._by_key[model.key] = found

    # ------------------------------------------------------------------------------------------------ the job side

    def ready(self, key: str) -> bool:
        """True when ``key`` may be placed: not a hub model, or its download finished (well or not)."""
        with self._cond:
            d = self._by_key.get(key)
            return d is None or d.finished

    def wait(self, key: str, timeout: float | None = None) -> Path | None:
        """The snapshot folder of ``key`` once its download ends (None: not a hub model); WeightsError if it
        failed or did not end within ``timeout``."""
        with self._cond:
            d = self._by_key.get(key)
            if d is None:
                return None
            if not self._cond.wait_for(lambda: d.finished or self._closed, timeout):
                raise WeightsError(f"model '{key}': its weights did not arrive within {timeout:g} s")
            if d.error is not None:
                raise WeightsError(str(d.error).replace(f"model '{d.keys[0]}'", f"model '{key}'", 1))
            if d.path is None:
                raise WeightsError(f"model '{key}': the run stopped before its weights were fetched; rerun")
            return d.path

    def local_spec(self, key: str, spec: ServerSpec | None) -> ServerSpec | None:
        """``spec`` serving the downloaded snapshot offline (same served name); unchanged for local and API models."""
        path = self.wait(key, timeout=0) if spec is not None else None
        if spec is None or path is None:
            return spec
        return offline_spec(spec, path)

    def placed(self, key: str) -> None:
        with self._cond:
            self._running += 1
            if key in self._by_key:
                self._by_key[key].placed += 1
            self._cond.notify_all()

    def released(self, key: str) -> None:
        """``key``'s job ended: with ``delete_after``, the last job of a repository removes what this run fetched."""
        with self._cond:
            self._running -= 1
            d = self._by_key.get(key)
            gone = d is not None and d.open_jobs == 1 and self.delete_after and bool(d.fresh)
            if d is not None:
                d.open_jobs -= 1
        if gone and d is not None:
            self._delete(d)  # outside the lock: deleting 100 GB takes a while, the scheduler keeps asking ready()
        with self._cond:
            self._cond.notify_all()

    # ------------------------------------------------------------------------------------------------ coordinator

    def start(self) -> Prefetcher:
        self._thread = threading.Thread(target=self._loop, name="prefetch", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Start nothing more; downloads in flight finish in their daemon threads (or resume next run)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.progress is not None:
            for d in self.downloads:
                self.progress.set_download(d.ref.label, None)

    def _loop(self) -> None:
        with self._cond:
            while not self._closed:
                nxt = self._next()
                if nxt is None:
                    self._cond.wait(self.poll)
                    self._show()
                    continue
                nxt.state = "listing"
                threading.Thread(target=self._fetch, args=(nxt,), name=f"fetch-{nxt.ref.label}", daemon=True).start()

    def _next(self) -> Download | None:
        queued = [d for d in self.downloads if d.state == "queued"]
        if not queued or self.stop.is_set():
            return None
        busy = sum(d.ahead for d in self.downloads)
        if self.ahead <= 0:
            return queued[0] if busy == 0 and self._running == 0 else None
        return queued[0] if busy < self.ahead else None

    def _fetch(self, d: Download) -> None:
        try:
            listing = list_weights(d.ref, self._hub, self.cache, d.fmt)
            with self._cond:
                d.listing = listing
            if not listing.complete:
                if not listing.online:
                    raise offline_incomplete(d.keys[0], listing)
                self._await_space(d, listing)
                self._download(d, listing)
            self._finish(d, path=listing.folder)
        except Exception as exc:  # noqa: BLE001 -- the hub boundary: one line, this repository's models fail
            self._finish(d, error=weights_error(exc, d.keys[0], d.ref))

    def _await_space(self, d: Download, listing: Listing) -> None:
        with self._cond:
            while True:
                others = sum(
                    o.listing.missing_bytes - written(o.listing, self.cache)
                    for o in self.downloads
                    if o is not d and o.state == "downloading" and o.listing is not None
                )
                free = self.free(self.cache) - max(0, others)
                need = listing.missing_bytes + self.margin
                if self._closed:
                    raise WeightsError(f"model '{d.keys[0]}': the run stopped before its weights were fetched; rerun")
                if need <= free:
                    return
                if not (self.delete_after and need <= free + self._deletable()):
                    raise space_error(d.keys[0], listing, free, self.margin, self.cache)
                self._set_state(d, "disk wait")
                self._cond.wait(self.poll)

    def _deletable(self) -> int:
        """Bytes this run downloaded (or is downloading) that --delete-weights-after will free later."""
        total = 0
        for o in self.downloads:
            if o.open_jobs > 0 and o.listing is not None and (o.fresh or o.state == "downloading"):
                total += sum(
                    f.size
                    for f in o.listing.files
                    if f.path in o.fresh or o.state == "downloading" and f.path not in o.listing.cached
                )
        return total

    def _download(self, d: Download, listing: Listing) -> None:
        with self._cond:
            d.began = self.clock()
            self._set_state(d, "downloading")
        log.info(
            "downloading %s: %s in %d file(s)", d.ref.label, fmt_bytes(listing.missing_bytes), len(listing.missing)
        )
        path = self._hub.download(d.ref, listing.commit, [f.path for f in listing.files])
        lost = [f.path for f in listing.files if not (Path(path) / f.path).is_file()]
        if lost:
            raise WeightsError(
                f"model '{d.keys[0]}': hub model {d.ref.label}: {len(lost)} file(s) missing after "
                f"the download ({', '.join(lost[:3])}); rerun to resume it"
            )
        with self._cond:
            d.seconds = self.clock() - d.began
            d.fresh = tuple(f.path for f in listing.missing)
            d.done_bytes = listing.missing_bytes

    def _finish(self, d: Download, path: Path | None = None, error: WeightsError | None = None) -> None:
        with self._cond:
            d.path, d.error = (None, error) if error is not None else (path, None)
            self._set_state(d, "failed" if error is not None else "done")
            self._cond.notify_all()
        if error is not None:
            log.error("%s", error)
        else:
            self._record(d)
        if self.progress is not None:
            self.progress.set_download(d.ref.label, None)
        self.on_change()

    def _set_state(self, d: Download, state: DownloadState) -> None:
        d.state = state
        if self.progress is not None:
            for key in d.keys:
                self.progress.set_status(key, PHASES[state])

    def _record(self, d: Download) -> None:
        if self.manifest is None or d.listing is None:
            return
        listing = d.listing
        for key in d.keys:
            self.manifest.set_model(
                key,
                weights={
                    "hub_id": d.ref.repo,
                    "revision": d.ref.revision,
                    "commit": listing.commit,
                    "path": str(d.path),
                    "files": len(listing.files),
                    "bytes": listing.total_bytes,
                    "download_bytes": sum(f.size for f in listing.files if f.path in d.fresh),
                    "download_seconds": round(d.seconds, 3),
                    "shared_with": [k for k in d.keys if k != key],
                },
            )
            self.manifest.timing(key, "download", d.seconds)

    # ------------------------------------------------------------------------------------------------ effects

    def _show(self) -> None:
        """Progress lines of the downloads in flight: bytes, rate, ETA (from the cache's partial blobs)."""
        for d in self.downloads:
            if d.state != "downloading" or d.listing is None:
                continue
            d.done_bytes = min(d.listing.missing_bytes, written(d.listing, self.cache))
            if self.progress is not None:
                self.progress.set_download(
                    d.ref.label, rate_text(d.done_bytes, d.listing.missing_bytes, self.clock() - d.began)
                )

    def _delete(self, d: Download) -> None:
        assert d.listing is not None
        removed = delete_fresh(d.listing, d.fresh)
        log.info("deleted %s of weights of %s (--delete-weights-after)", fmt_bytes(removed), d.ref.label)
        with self._cond:
            d.fresh = ()


def fetch_now(
    model: ModelConfig, spec: ServerSpec, manifest: ManifestLike | None = None, progress: ProgressLike | None = None
) -> ServerSpec:
    """Fetch one model's weights here and now (a Ray node: no shared disk, so no prefetch across nodes); ``spec``
    on the local snapshot, or unchanged for a local model. Raises WeightsError."""
    fetcher = Prefetcher([model], manifest=manifest, progress=progress).start()
    try:
        fetcher.wait(model.key)
        local = fetcher.local_spec(model.key, spec)
        assert local is not None  # a spec in, a spec out
        return local
    finally:
        fetcher.close()
