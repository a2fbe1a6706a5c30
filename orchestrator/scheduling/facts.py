"""What a model's estimate needs to know, read before it starts: the bytes of its weights as the server holds them.

``served_bytes`` takes the weight files' sizes -- from a local model folder (``*.safetensors``, else ``*.bin`` /
``*.pt``) or from the hub's file list (``hub.weights.Listing``) -- and the checkpoint's ``torch_dtype`` from
``config.json``: vLLM's ``--dtype auto`` serves a float32 checkpoint in 16 bits, so its bytes halve unless the
server's args ask for float32. Unknown sizes are None (the estimate then says so).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

WEIGHT_GLOBS = ("*.safetensors", "*.bin", "*.pt")


def folder_weight_bytes(folder: Path) -> int | None:
    """The bytes of one weights format in a local model folder (safetensors preferred), or None."""
    for pattern in WEIGHT_GLOBS:
        files = [p for p in Path(folder).rglob(pattern) if p.is_file() and "original" not in p.parts]
        if files:
            return sum(p.stat().st_size for p in files)
    return None


def listed_weight_bytes(paths_and_sizes: Iterable[tuple[str, int]]) -> int | None:
    """The bytes of the weight files in a hub listing of ``(path, size)``, or None."""
    total = sum(size for path, size in paths_and_sizes if path.endswith((".safetensors", ".bin", ".pt")))
    return total or None


def checkpoint_dtype(folder: Path) -> str | None:
    try:
        config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    dtype = config.get("torch_dtype") or config.get("dtype")
    return dtype if isinstance(dtype, str) else None


def served_bytes(file_bytes: int | None, dtype: str | None, args: Sequence[str] = ()) -> int | None:
    """The bytes the server holds for weights of ``file_bytes`` stored as ``dtype`` (see the module docstring)."""
    if file_bytes is None:
        return None
    wants_fp32 = any(a in ("float32", "float") for a in args) and any(a.startswith("--dtype") for a in args)
    if dtype in ("float32", "float") and not wants_fp32:
        return file_bytes // 2
    return file_bytes
