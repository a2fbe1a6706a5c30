"""Hugging Face hub datasets without the ``datasets`` library: list the repo, pick the data files, download them.

Every hub call goes through a seam (constructor arguments with ``huggingface_hub``'s signatures) and runs under a
deadline. When the hub cannot be reached the files already in the ``huggingface_hub`` cache are used; otherwise
every failure becomes one DatasetError line that says how to get access (terms, ``HF_TOKEN``) or use a local copy.
"""

from __future__ import annotations

import logging
import os
import threading
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from orchestrator.datasets.files import SUFFIXES
from orchestrator.errors import DatasetError
from orchestrator.hub import network as hubnet

log = logging.getLogger(__name__)

CONVERTED_REVISION = "refs/convert/parquet"  # the hub's automatic Parquet export of every dataset
KNOWN_SPLITS = ("train", "test", "validation", "valid", "dev")
_UNREACHABLE = {
    "ConnectionError",
    "TimeoutError",
    "TransportError",
    "TimeoutException",
    "Timeout",
    "OfflineModeIsEnabled",
    "LocalEntryNotFoundError",
}

Fetched = list[tuple[str, Path]]  # (label for messages, local file)


class HubTimeout(TimeoutError):
    """A hub call did not return within the client's deadline."""


def _hf_list_repo_files(repo_id: str, **kwargs: Any) -> list[str]:
    from huggingface_hub import HfApi

    return HfApi().list_repo_files(repo_id, **kwargs)


def _hf_hub_download(repo_id: str, filename: str, **kwargs: Any) -> str:
    from huggingface_hub import hf_hub_download

    return hf_hub_download(repo_id, filename, **kwargs)


def _hf_snapshot_download(repo_id: str, **kwargs: Any) -> str:
    from huggingface_hub import snapshot_download

    return snapshot_download(repo_id, **kwargs)


class HubClient:
    """Fetches the data files of a hub dataset into the ``huggingface_hub`` cache (HF_TOKEN/HF_HOME apply)."""

    def __init__(
        self,
        *,
        list_repo_files: Callable[..., list[str]] | None = None,
        hf_hub_download: Callable[..., str] | None = None,
        snapshot_download: Callable[..., str] | None = None,
        timeout: float = 120.0,
        probe: Callable[[], None] | None = None,
    ) -> None:
        scripted = list_repo_files is not None
        self._probe = probe or ((lambda: None) if scripted else hubnet.probe)  # a scripted hub needs no network
        self._list = list_repo_files or _hf_list_repo_files
        self._download = hf_hub_download or _hf_hub_download
        self._snapshot = snapshot_download or _hf_snapshot_download
        self.timeout = timeout

    def fetch(self, repo_id: str, configs: Sequence[str] = (), split: str = "train") -> Fetched:
        """Local paths of the files of ``configs``/``split``; the cache when offline; DatasetError otherwise.
        An unreachable hub is found by one short probe (``hubnet``), not by huggingface_hub's retries."""
        with hubnet.quiet():
            return self._fetch(repo_id, configs, split)

    def _fetch(self, repo_id: str, configs: Sequence[str], split: str) -> Fetched:
        try:
            self._probe()
            return self._fetch_online(repo_id, configs, split)
        except DatasetError:
            raise
        except Exception as exc:  # noqa: BLE001 -- the hub boundary: every failure becomes one line
            cached = self._fetch_cached(repo_id, configs, split) if is_unreachable(exc) else None
            if cached is None:
                raise hub_error(exc, repo_id) from None
            log.warning("hub unreachable for %s (%s); using the cached copy", repo_id, _reason(exc))
            return cached

    def _fetch_online(self, repo_id: str, configs: Sequence[str], split: str) -> Fetched:
        for revision in (None, CONVERTED_REVISION):
            files = self._listing(repo_id, revision)
            chosen = select_files(files, configs, split, repo_id)
            if chosen:
                return [
                    (
                        _label(repo_id, name, revision),
                        Path(self._call(self._download, repo_id, name, repo_type="dataset", revision=revision)),
                    )
                    for name in chosen
                ]
        raise DatasetError(
            f"hub dataset {repo_id} has no .parquet/.jsonl/.csv data files; set `path:` for it in "
            f"the config's `datasets:` block to a local copy"
        )

    def _listing(self, repo_id: str, revision: str | None) -> list[str]:
        try:
            return list(self._call(self._list, repo_id, repo_type="dataset", revision=revision))
        except Exception as exc:
            if revision == CONVERTED_REVISION and "RevisionNotFoundError" in _names(exc):
                return []  # no automatic Parquet export
            raise

    def _fetch_cached(self, repo_id: str, configs: Sequence[str], split: str) -> Fetched | None:
        for revision in (None, CONVERTED_REVISION):
            try:
                folder = Path(self._snapshot(repo_id, repo_type="dataset", revision=revision, local_files_only=True))
                files = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
                chosen = select_files(files, configs, split, repo_id)
            except Exception as exc:  # noqa: BLE001 -- nothing (usable) cached for this revision
                log.debug("no cached copy of %s@%s: %s", repo_id, revision or "main", hubnet.summary(exc))
                continue
            if chosen:
                return [(_label(repo_id, name, revision), folder / name) for name in chosen]
        return None

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` in a daemon thread; HubTimeout after ``self.timeout`` seconds."""
        box: dict[str, Any] = {}
        done = threading.Event()

        def run() -> None:
            try:
                box["value"] = fn(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 -- handed to the caller below
                box["error"] = exc
            finally:
                done.set()

        threading.Thread(target=run, name="hub-call", daemon=True).start()
        if not done.wait(self.timeout):
            raise HubTimeout(f"no answer within {self.timeout:g} s")
        if "error" in box:
            raise box["error"]
        return box["value"]


def select_files(files: Sequence[str], configs: Sequence[str], split: str, repo_id: str) -> list[str]:
    """The data files of ``configs`` (all when empty) and ``split``; [] when the listing has no data files."""
    data = sorted(f for f in files if f.lower().endswith(SUFFIXES) and not _hidden(f))
    if not data:
        return []
    if configs:
        data = [name for config in configs for name in _config_files(data, config, repo_id)]
    return _split_files(data, split, repo_id)


def _hidden(name: str) -> bool:
    return any(part.startswith(".") for part in name.split("/"))


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _config_keys(name: str) -> set[str]:
    path = PurePosixPath(name)
    return {_norm(part) for part in path.parts[:-1]} | {_norm(path.stem.split("-")[0])}


def _config_files(data: list[str], config: str, repo_id: str) -> list[str]:
    found = [name for name in data if _norm(config) in _config_keys(name)]
    if not found:
        folders = sorted(
            {
                part
                for name in data
                for part in PurePosixPath(name).parts[:-1]
                if part != "data" and not any(_is_split(part, s) for s in KNOWN_SPLITS)
            }
        )
        raise DatasetError(
            f"hub dataset {repo_id} has no files for config {config!r} "
            f"(folders: {', '.join(folders) or 'none'}); "
            f"set the dataset's `configs:` to some of those"
        )
    return found


def _is_split(part: str, split: str) -> bool:
    part, split = part.lower(), split.lower()
    return (
        part == split
        or part.startswith((split + "-", split + "_", split + "."))
        or part.endswith(("-" + split, "_" + split))
    )


def _mentions(name: str, split: str) -> bool:
    path = PurePosixPath(name)
    return any(_is_split(part, split) for part in (*path.parts[:-1], path.stem))


def _split_files(data: list[str], split: str, repo_id: str) -> list[str]:
    matching = [name for name in data if _mentions(name, split)]
    if matching:
        return matching
    unsplit = [name for name in data if not any(_mentions(name, s) for s in KNOWN_SPLITS)]
    if unsplit:
        return unsplit
    found = sorted({s for name in data for s in KNOWN_SPLITS if _mentions(name, s)})
    raise DatasetError(
        f"hub dataset {repo_id} has no {split!r} split (found: {', '.join(found)}); "
        f"set the dataset's `split:` to one of those"
    )


def _label(repo_id: str, name: str, revision: str | None) -> str:
    return f"hf://datasets/{repo_id}{'@' + revision if revision else ''}/{name}"


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _status(exc: BaseException) -> int:
    return int(getattr(getattr(exc, "response", None), "status_code", 0) or 0)


def is_unreachable(exc: BaseException) -> bool:
    """A network failure, timeout, offline mode or 5xx: worth trying the cache."""
    return bool(_names(exc) & _UNREACHABLE) or _status(exc) >= 500


def dataset_url(repo_id: str) -> str:
    """The dataset's page on the hub (or on the mirror ``HF_ENDPOINT`` names), where its terms are accepted."""
    endpoint = os.environ.get("HF_ENDPOINT", "").strip().rstrip("/") or "https://huggingface.co"
    return f"{endpoint}/datasets/{repo_id}"


def _reason(exc: BaseException) -> str:
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    if "OfflineModeIsEnabled" in _names(exc) or offline:
        return "offline mode is on: HF_HUB_OFFLINE is set"
    return hubnet.summary(exc)


def hub_error(exc: BaseException, repo_id: str) -> DatasetError:
    """One line for a failed hub call: how to get access, or how to point at a local copy."""
    url = dataset_url(repo_id)
    local = "or set `path:` for it in the config's `datasets:` block to a local copy (.parquet/.jsonl/.csv)"
    names = _names(exc)
    if "GatedRepoError" in names or _status(exc) in (401, 403):
        return DatasetError(
            f"hub dataset {repo_id} is gated: accept its terms at {url} while logged in, then set "
            f"HF_TOKEN to a read token of that account; {local}"
        )
    if names & {"RepositoryNotFoundError", "RevisionNotFoundError", "DisabledRepoError"} or _status(exc) == 404:
        return DatasetError(
            f"hub dataset {repo_id} was not found or is private ({hubnet.summary(exc)}); check the id, "
            f"set HF_TOKEN if it is private or gated (terms at {url}), {local}"
        )
    if is_unreachable(exc):
        return DatasetError(
            f"cannot reach the Hugging Face hub for {repo_id} ({_reason(exc)}) and nothing is "
            f"cached; go online once to fill the cache (if gated: accept the terms at {url} and "
            f"set HF_TOKEN), {local}"
        )
    return DatasetError(f"loading hub dataset {repo_id} failed ({hubnet.summary(exc)}); {local}")
