"""The files one run fetches into the huggingface_hub cache: how much of them is on disk, and their removal.

``written`` counts a listing's missing files already in the snapshot plus the partial blobs of downloads in flight
(``resumable.py``'s ``.partial``, huggingface_hub's ``.incomplete``): the bytes shown as progress and kept off the
free space. ``delete_fresh`` removes, for ``--delete-weights-after``, only the files this run downloaded: their
snapshot links, and each blob that no snapshot of the repository still links to (never what was cached before, nor
a file another cached revision shares), then the folders left empty.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .weights import Listing, fmt_bytes, repo_folder


def written(listing: Listing, cache: Path) -> int:
    """Bytes on disk so far for ``listing``'s missing files: finished files plus partial blobs."""
    done = sum(f.size for f in listing.missing if (listing.folder / f.path).is_file())
    blobs = repo_folder(listing.ref, cache) / "blobs"
    partial = (
        sum(p.stat().st_size for p in blobs.glob("*.*") if p.suffix in (".incomplete", ".partial") and p.is_file())
        if blobs.is_dir()
        else 0
    )
    return done + partial


def rate_text(done: int, total: int, elapsed: float) -> str:
    """A download's progress line: bytes so far of the total, rate, ETA."""
    rate = done / elapsed if elapsed > 0 else 0.0
    eta = f"{(total - done) / rate:.0f}s" if rate > 0 else "-"
    return f"{fmt_bytes(done)}/{fmt_bytes(total)}  {fmt_bytes(rate)}/s  ETA {eta}"


def delete_fresh(listing: Listing, fresh: Iterable[str]) -> int:
    """Remove the files ``fresh`` (paths in ``listing``'s snapshot) that this run downloaded; bytes freed."""
    removed = 0
    snapshots = listing.folder.parent
    for rel in fresh:
        link = listing.folder / rel
        blob = link.resolve()
        if link.is_symlink() or link.exists():
            link.unlink()
        if blob.is_file() and not _linked(blob, snapshots):  # another revision's file (cached before): kept
            removed += blob.stat().st_size
            blob.unlink()
            blob.with_name(blob.name + ".partial.lock").unlink(missing_ok=True)  # resumable.py's lock
    _prune_empty(listing.folder)
    return removed


def _linked(blob: Path, snapshots: Path) -> bool:
    """Whether any snapshot of the repository still links to ``blob``."""
    return any(p.is_symlink() and p.resolve() == blob for p in snapshots.rglob("*"))


def _prune_empty(folder: Path) -> None:
    for sub in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if not any(sub.iterdir()):
            sub.rmdir()
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
