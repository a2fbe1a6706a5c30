"""Formulas on the answers pages: MathJax 3 and the page's renderer, written once under ``results/assets/``.

MathJax comes from the Python package ``django-static-mathjax`` (a dependency in pyproject.toml; it ships MathJax's
``es5`` build as files and needs no Django). ``write_assets(results_dir)`` copies what a page uses -- the combined
TeX-to-CHTML component, the ``safe`` extension and the CHTML fonts -- to ``results/assets/mathjax/``, and the
renderer (``static/math.js``, see its header) to ``results/assets/math.js``. A file already there with the same bytes
is left alone, so rewriting pages never rewrites the assets. No network, no CDN: pages load them by relative path, so
they open from ``file://`` and from any static server. Without the package (an install without it) the pages are
written all the same and show the raw text, with one warning.

``head_html(prefix)`` is the markup a page puts in its ``<head>``; ``CSS`` the page's rules for the raw/rendered
toggle and for a formula that did not parse.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from ..fileio import atomic_write_bytes

log = logging.getLogger(__name__)

ASSETS = "assets"
RENDERER = Path(__file__).with_name("static") / "math.js"
COMPONENT = "tex-chtml-full.js"
MATHJAX_FILES = (COMPONENT, "ui/safe.js")
FONTS = "output/chtml/fonts/woff-v2"
CSS = """
.m-raw{display:none} body.raw .m-raw{display:inline} body.raw .m-out{display:none}
.m-bad{color:#a40e26;text-decoration:underline dotted} mjx-container{overflow-x:auto;overflow-y:hidden;max-width:100%}
.c mjx-container{overflow:visible} .filters label.raw{color:#57606a} .filters label.raw input{min-width:0}
"""
_warned: list[bool] = []


def mathjax_dir() -> Path | None:
    """The installed MathJax ``es5`` folder, or None when ``django-static-mathjax`` is not installed."""
    spec = importlib.util.find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        found = Path(location) / "static" / "mathjax" / "es5"
        if (found / COMPONENT).is_file():
            return found
    return None


def asset_files(source: Path | None) -> dict[str, Path]:
    """Relative path under ``results/assets/`` -> the file it is copied from."""
    files = {"math.js": RENDERER}
    if source is not None:
        files.update({f"mathjax/{name}": source / name for name in MATHJAX_FILES})
        files.update({f"mathjax/{FONTS}/{font.name}": font for font in sorted((source / FONTS).glob("*.woff"))})
    return files


def write_assets(results_dir: Path, source: Path | None = None) -> list[Path]:
    """Copy the assets under ``results_dir/assets/`` where missing or different; returns the files written."""
    source = source if source is not None else mathjax_dir()
    if source is None and not _warned:
        _warned.append(True)
        log.warning(
            "django-static-mathjax is not installed: answers pages show formulas as raw text; "
            "`pip install django-static-mathjax` (or `make install`) renders them"
        )
    written = []
    for rel, origin in asset_files(source).items():
        target = Path(results_dir) / ASSETS / rel
        data = origin.read_bytes()
        if _same(target, data):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, data)
        written.append(target)
    return written


def _same(target: Path, data: bytes) -> bool:
    try:
        return target.stat().st_size == len(data) and target.read_bytes() == data
    except OSError:
        return False


def head_html(prefix: str) -> str:
    """The scripts of a page whose path to ``results/`` is ``prefix`` (``../../`` for ``details/<model>/``)."""
    return (
        f'<script src="{prefix}{ASSETS}/math.js"></script>'
        f'<script src="{prefix}{ASSETS}/mathjax/{COMPONENT}" defer></script>'
    )


__all__ = ["ASSETS", "CSS", "asset_files", "head_html", "mathjax_dir", "write_assets"]
