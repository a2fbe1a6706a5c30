"""Resumable downloads of hub files into the ``huggingface_hub`` cache, across runs.

``huggingface_hub`` 2.4 downloads each file into a process-unique temporary file that it deletes when the download
fails, so a 140 GB download cut at 139 GB starts again from zero in the next run. ``fetch_file`` keeps the bytes:
it writes ``blobs/<etag>.partial`` (kept on failure), asks for the rest with ``Range: bytes=<size>-``, and when the
size matches moves it to ``blobs/<etag>`` and links ``snapshots/<commit>/<path>`` to it -- the cache layout that
``huggingface_hub`` (and vLLM) read. Files stored with Xet go through ``huggingface_hub`` when ``hf_xet`` is
installed (Xet has its own chunk cache); everything else is plain HTTP through ``huggingface_hub``'s session
(proxies and ``HF_TOKEN`` apply). A file lock on the partial keeps two runs on one host from writing it at once.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import queue
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from filelock import FileLock

log = logging.getLogger(__name__)
ATTEMPTS = 3
READ_TIMEOUT_S = 60.0


def fetch_files(repo: str, commit: str, paths: Sequence[str], folder: Path, endpoint: str, workers: int = 4) -> None:
    """``fetch_file`` for each of ``paths``, ``workers`` at a time, in daemon threads (so that Ctrl-C does not wait
    for a 100 GB download to finish: its bytes stay for the next run); raises the first failure."""
    todo: queue.SimpleQueue[str] = queue.SimpleQueue()
    for path in paths:
        todo.put(path)
    errors: list[BaseException] = []

    def work() -> None:
        while not errors:
            try:
                path = todo.get_nowait()
            except queue.Empty:
                return
            try:
                fetch_file(repo, commit, path, folder, endpoint)
            except BaseException as exc:  # noqa: BLE001 -- handed to the caller
                errors.append(exc)

    threads = [threading.Thread(target=work, name=f"fetch-{i}", daemon=True) for i in range(max(1, workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def fetch_file(repo: str, commit: str, path: str, folder: Path, endpoint: str) -> bool:
    """Download ``path`` of ``repo`` at ``commit`` into the repository's cache ``folder`` (``models--org--name``);
    False when the file is Xet-backed and left to ``huggingface_hub``. Raises what the hub or the network raise."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    meta = get_hf_file_metadata(hf_hub_url(repo, path, revision=commit, endpoint=endpoint), endpoint=endpoint)
    if meta.xet_file_data is not None and _xet_available():
        return False
    if meta.etag is None or meta.size is None:
        return False  # not enough to name the blob or to know it is whole: huggingface_hub decides
    blob = folder / "blobs" / meta.etag
    if not blob.is_file():
        _download(meta.location, blob, meta.size)
    link = folder / "snapshots" / commit / path
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.exists():
        link.unlink(missing_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    return True


def _xet_available() -> bool:
    disabled = os.environ.get("HF_HUB_DISABLE_XET", "").strip().lower() in ("1", "true", "yes", "on")
    return not disabled and importlib.util.find_spec("hf_xet") is not None


def _download(url: str, blob: Path, size: int) -> None:
    partial = blob.with_name(blob.name + ".partial")
    blob.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(partial) + ".lock"):
        for attempt in range(1, ATTEMPTS + 1):
            try:
                _get_rest(url, partial, size)
                break
            except Exception as exc:  # a broken connection: try again from where it stopped
                if attempt == ATTEMPTS or not _transient(exc):
                    raise
                log.debug("download of %s broke (%s); resuming", url, exc)
                time.sleep(1.0)
        if partial.stat().st_size != size:
            raise OSError(f"{blob.name}: got {partial.stat().st_size} bytes, expected {size}; rerun to resume")
        os.replace(partial, blob)


def _transient(exc: BaseException) -> bool:
    import httpx2

    return isinstance(exc, httpx2.TransportError)


def _get_rest(url: str, partial: Path, size: int) -> None:
    """Append the bytes after ``partial``'s current size (all of them when the server ignores Range)."""
    import httpx2
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    have = partial.stat().st_size if partial.exists() else 0
    if have >= size:
        return
    headers = {**build_hf_headers(), "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    timeout = httpx2.Timeout(READ_TIMEOUT_S, connect=10.0)
    with get_session().stream("GET", url, headers=headers, timeout=timeout) as response:
        hf_raise_for_status(response)
        mode = "ab" if response.status_code == 206 else "wb"
        with partial.open(mode) as fh:
            for chunk in response.iter_bytes():  # as it arrives: a broken link keeps every byte received
                fh.write(chunk)
