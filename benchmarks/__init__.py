"""Benchmarks run by `make perf`; each writes its section of BENCHMARKS.md to benchmarks/results/<name>.md."""

from __future__ import annotations

from pathlib import Path


def publish(path: Path, text: str) -> str:
    """Print a benchmark's section and write it to ``path`` (UTF-8); returns ``text``."""
    print(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return text
