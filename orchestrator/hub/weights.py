"""Hub weights, pure and per repository: which files vLLM needs, what the cache already holds, whether they fit.

A managed model's ``vllm.model`` that is not an existing local directory is a hub id (``vllm.revision`` optional,
default ``main``). ``list_weights`` resolves the revision to a commit and lists the repository tree (online), or
reads both from the ``huggingface_hub`` cache (offline, or the hub unreachable); ``choose_files`` keeps what vLLM
loads: config, tokenizer, custom code, and one weights format (safetensors preferred; ``original/``, ``.pth``/``.bin``
duplicates, GGUF, ONNX, Flax/TF copies skipped unless ``--load-format`` in ``vllm.args`` asks for them). ``HfHub``
is the seam to ``huggingface_hub`` (``HF_ENDPOINT``, ``HF_HOME``/``HF_HUB_CACHE``, ``HF_TOKEN`` and ``HF_HUB_OFFLINE``
are read at call time). Every failure becomes one ``WeightsError`` line naming the model and the fix
(``weights_error``). The downloads themselves, their order and the disk budget over time live in ``prefetch.py``.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

from ..contract import ModelConfig
from ..errors import WeightsError
from . import network as hubnet
from .resumable import fetch_files

DEFAULT_REVISION = "main"
DISK_MARGIN = 2 << 30  # free bytes kept on the cache's disk beyond a download
SKIP_DIRS = ("original", "onnx", "openvino", "coreml", "flax", "tf", "gguf", "mlx")
SIDE_FILES = ("*.json", "*.txt", "*.model", "*.tiktoken", "*.jinja", "*.py", "*.bpe", "*.vocab", "*.spm")
FORMATS = {"safetensors": ("*.safetensors",), "pt": ("*.bin", "*.pt"), "gguf": ("*.gguf",)}
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".msgpack", ".h5", ".onnx", ".ckpt", ".ot")


@dataclass(frozen=True)
class HubRef:
    """One repository at one revision: the unit of download (several models may share it)."""

    repo: str
    revision: str = DEFAULT_REVISION

    @property
    def label(self) -> str:
        return self.repo if self.revision == DEFAULT_REVISION else f"{self.repo}@{self.revision}"


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int


@dataclass(frozen=True)
class Listing:
    """What a repository revision needs on disk: the chosen files, which are cached, and the snapshot folder."""

    ref: HubRef
    commit: str
    files: tuple[RemoteFile, ...]
    cached: frozenset[str]
    folder: Path
    online: bool = True

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def missing(self) -> tuple[RemoteFile, ...]:
        return tuple(f for f in self.files if f.path not in self.cached)

    @property
    def missing_bytes(self) -> int:
        return sum(f.size for f in self.missing)

    @property
    def complete(self) -> bool:
        return not self.missing


def hub_ref(model: ModelConfig) -> HubRef | None:
    """The hub repository of a managed model, or None (API model, or ``vllm.model`` is a local directory)."""
    vllm = model.vllm
    if vllm is None or Path(vllm.model).expanduser().is_dir():
        return None
    return HubRef(vllm.model, vllm.revision or DEFAULT_REVISION)


def load_format(args: Sequence[str]) -> str:
    """vLLM's ``--load-format`` from ``vllm.args`` (``auto`` when absent)."""
    for i, arg in enumerate(args):
        flag, eq, value = arg.partition("=")
        if flag == "--load-format":
            return (value if eq else (args[i + 1] if i + 1 < len(args) else "auto")).lower()
    return "auto"


def choose_files(paths: Sequence[str], fmt: str = "auto") -> list[str]:
    """The files vLLM needs out of a repository listing (sorted): side files plus one weights format."""
    usable = [p for p in paths if not _skipped(p)]
    side = [p for p in usable if _matches(p, SIDE_FILES) and not _is_index_of_other(p, fmt, usable)]
    return sorted(set(side) | set(_weights(usable, fmt)))


def _skipped(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return any(p.startswith(".") for p in parts) or any(p.lower() in SKIP_DIRS for p in parts[:-1])


def _matches(path: str, patterns: Sequence[str]) -> bool:
    name = PurePosixPath(path).name.lower()
    return any(fnmatch.fnmatch(name, pat) for pat in patterns)


def _weights(paths: Sequence[str], fmt: str) -> list[str]:
    order = [fmt] if fmt in FORMATS else ["safetensors", "pt"]
    for kind in order:
        found = [p for p in paths if _matches(p, FORMATS[kind])]
        sharded = [p for p in found if not PurePosixPath(p).name.startswith("consolidated")]
        if found:
            return sharded or found  # Mistral repos carry consolidated.* copies of the sharded weights
    return []


def _is_index_of_other(path: str, fmt: str, paths: Sequence[str]) -> bool:
    """``pytorch_model.bin.index.json`` when the safetensors are taken (and the other way round)."""
    name = PurePosixPath(path).name
    chosen = _weights(paths, fmt)
    suffix = PurePosixPath(chosen[0]).suffix if chosen else ""
    return name.endswith(".index.json") and any(
        name.endswith(s + ".index.json") for s in WEIGHT_SUFFIXES if s != suffix
    )


# ---------------------------------------------------------------------------------------------------- the hub


def hub_cache() -> Path:
    """Where ``huggingface_hub`` keeps models: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def repo_folder(ref: HubRef, cache: Path) -> Path:
    return cache / ("models--" + ref.repo.replace("/", "--"))


class HubApi(Protocol):
    """What ``list_weights`` and the prefetcher need from the hub."""

    def resolve(self, ref: HubRef, local_only: bool) -> str: ...
    def tree(self, ref: HubRef, commit: str, local_only: bool) -> list[RemoteFile]: ...
    def download(self, ref: HubRef, commit: str, paths: Sequence[str]) -> Path: ...


class HfHub:
    """``HubApi`` through ``huggingface_hub`` (imported lazily), quiet, with the environment read per call."""

    def __init__(self, cache: Path | None = None, max_workers: int = 4) -> None:
        self.cache = cache
        self.max_workers = max_workers

    def _cache(self) -> str:
        return str(self.cache or hub_cache())

    def resolve(self, ref: HubRef, local_only: bool) -> str:
        from huggingface_hub import HfApi

        api = HfApi(endpoint=hubnet.endpoint())
        with hubnet.quiet():
            return api.resolve_revision(
                ref.repo, revision=ref.revision, cache_dir=self._cache(), local_files_only=local_only
            ).resolved

    def tree(self, ref: HubRef, commit: str, local_only: bool) -> list[RemoteFile]:
        from huggingface_hub import HfApi, get_cached_repo_tree
        from huggingface_hub.hf_api import RepoFile

        with hubnet.quiet():
            entries = (
                get_cached_repo_tree(ref.repo, revision=commit, cache_dir=self._cache())
                if local_only
                else HfApi(endpoint=hubnet.endpoint()).list_repo_tree(ref.repo, revision=commit, recursive=True)
            )
            return [RemoteFile(e.path, int(e.size or 0)) for e in entries if isinstance(e, RepoFile)]

    def download(self, ref: HubRef, commit: str, paths: Sequence[str]) -> Path:
        """The files (resumable across runs: ``resumable.py``), then ``snapshot_download`` for what is left to it
        (Xet files) and the cached tree listing that offline runs read."""
        from huggingface_hub import ResolvedRevision, snapshot_download

        folder = repo_folder(ref, Path(self._cache()))
        missing = [p for p in paths if not (folder / "snapshots" / commit / p).is_file()]
        with hubnet.quiet():
            fetch_files(ref.repo, commit, missing, folder, hubnet.endpoint(), self.max_workers)
            revision = ResolvedRevision(commit, initial=ref.revision, repo_id=ref.repo)
            return Path(
                snapshot_download(
                    ref.repo,
                    revision=revision,
                    cache_dir=self._cache(),
                    endpoint=hubnet.endpoint(),
                    max_workers=self.max_workers,
                    allow_patterns=[glob.escape(p) for p in paths],
                )
            )


def list_weights(ref: HubRef, hub: HubApi, cache: Path, fmt: str = "auto") -> Listing:
    """The listing of ``ref`` from the hub, or from the cache when the hub is unreachable (``hubnet.probe``)."""
    unreachable: hubnet.HubUnreachable | None = None
    try:
        hubnet.probe()
    except hubnet.HubUnreachable as exc:
        unreachable = exc
    online = unreachable is None
    try:
        commit = hub.resolve(ref, local_only=not online)
    except Exception:
        if unreachable is None:
            raise
        raise unreachable from None  # nothing cached: say why the hub was not asked
    folder = repo_folder(ref, cache) / "snapshots" / commit
    try:
        remote = hub.tree(ref, commit, local_only=not online)
    except Exception:  # offline with no cached tree listing: what the snapshot folder holds
        if online:
            raise
        remote = (
            [RemoteFile(p.relative_to(folder).as_posix(), p.stat().st_size) for p in folder.rglob("*") if p.is_file()]
            if folder.is_dir()
            else []
        )
    sizes = {f.path: f.size for f in remote}
    chosen = choose_files(list(sizes), fmt)
    cached = frozenset(p for p in chosen if (folder / p).is_file())
    return Listing(ref, commit, tuple(RemoteFile(p, sizes[p]) for p in chosen), cached, folder, online)


# ---------------------------------------------------------------------------------------------------- disk


def free_bytes(path: Path) -> int:
    """Free bytes on the disk that holds ``path`` (or would: the nearest existing ancestor)."""
    target = Path(path)
    while not target.exists() and target != target.parent:
        target = target.parent
    return shutil.disk_usage(target).free


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def space_error(key: str, listing: Listing, free: int, margin: int, cache: Path) -> WeightsError:
    return WeightsError(
        f"model '{key}': {listing.ref.label} needs {fmt_bytes(listing.missing_bytes)} more on disk but {cache} has "
        f"{fmt_bytes(free)} free (keeping {fmt_bytes(margin)} spare); free space, point HF_HUB_CACHE at a larger "
        "disk, or pass --delete-weights-after for sweeps larger than the disk"
    )


# ---------------------------------------------------------------------------------------------------- errors


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _status(exc: BaseException) -> int:
    return int(getattr(getattr(exc, "response", None), "status_code", 0) or 0)


def weights_error(exc: BaseException, key: str, ref: HubRef) -> WeightsError:
    """One line for a failed listing or download of ``ref`` (model ``key``): what went wrong and the fix."""
    if isinstance(exc, WeightsError):
        return exc
    head = f"model '{key}': hub model {ref.label}"
    page = f"{hubnet.endpoint()}/{ref.repo}"
    names, status = _names(exc), _status(exc)
    if "GatedRepoError" in names or status in (401, 403) and "RepositoryNotFoundError" not in names:
        return WeightsError(
            f"{head} is gated ({status or 'no access'}): accept its terms at {page} while logged in, "
            "then set HF_TOKEN to a read token of that account"
        )
    if "RevisionNotFoundError" in names:
        return WeightsError(
            f"{head}: revision {ref.revision!r} does not exist; fix vllm.revision (a branch, tag or commit of {page})"
        )
    if names & {"RepositoryNotFoundError", "DisabledRepoError"} or status == 404:
        return WeightsError(
            f"{head} was not found ({status or 'missing'}); check vllm.model (a path that is not an "
            "existing directory is read as a hub id), or set HF_TOKEN if the repository is private"
        )
    if (
        names
        & {
            "HubUnreachable",
            "RevisionResolutionError",
            "LocalEntryNotFoundError",
            "ConnectError",
            "TimeoutException",
            "TransportError",
            "OfflineModeIsEnabled",
        }
        or status >= 500
    ):
        why = str(exc) if isinstance(exc, hubnet.HubUnreachable) else hubnet.summary(exc)
        return WeightsError(
            f"{head}: cannot reach the hub at {hubnet.endpoint()} ({why}) and the weights "
            "are not (completely) cached; go online once to fill the cache (rerun resumes a broken "
            "download), or set vllm.model to a local directory"
        )
    return WeightsError(
        f"{head}: download failed ({hubnet.summary(exc)}); rerun to resume it, or set vllm.model to a local directory"
    )


def offline_incomplete(key: str, listing: Listing) -> WeightsError:
    names = ", ".join(f.path for f in listing.missing[:3])
    return WeightsError(
        f"model '{key}': hub model {listing.ref.label}: cannot reach the hub at {hubnet.endpoint()} "
        f"and {len(listing.missing)} file(s) ({names}) are not cached; go online once to finish the "
        "download, or set vllm.model to a local directory"
    )


# ---------------------------------------------------------------------------------------------------- dry run


def render_weights(models: Sequence[ModelConfig], hub: HubApi | None = None, cache: Path | None = None) -> str:
    """The ``--dry-run`` lines of the hub models: per repository cached or how much to download (file list only)."""
    refs: dict[HubRef, list[ModelConfig]] = {}
    for model in models:
        ref = hub_ref(model)
        if ref is not None:
            refs.setdefault(ref, []).append(model)
    if not refs:
        return ""
    cache = cache or hub_cache()
    hub = hub or HfHub(cache)
    lines, total = [f"weights: hub cache {cache} ({fmt_bytes(free_bytes(cache))} free)"], 0
    for ref, users in refs.items():
        keys = ", ".join(m.key for m in users)
        try:
            listing = list_weights(ref, hub, cache, load_format(users[0].vllm.args if users[0].vllm else ()))
        except Exception as exc:  # noqa: BLE001 -- shown, not raised: the dry run reports every model
            lines.append(f"  {ref.label} [{keys}]: error: {weights_error(exc, users[0].key, ref)}")
            continue
        total += listing.missing_bytes
        state = (
            f"cached ({fmt_bytes(listing.total_bytes)}, {len(listing.files)} files)"
            if listing.complete
            else f"{fmt_bytes(listing.missing_bytes)} to download ({len(listing.missing)} of {len(listing.files)} "
            f"files, {fmt_bytes(listing.total_bytes)} in all)" + ("" if listing.online else "; hub unreachable")
        )
        lines.append(f"  {ref.label} [{keys}] commit {listing.commit[:12]}: {state}")
    lines.append(f"  to download in all: {fmt_bytes(total)}")
    return "\n".join(lines)
