"""Read a YAML file defensively: size cap, encoding checks, alias-bomb cap, line numbers in syntax errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError

MAX_BYTES = 1_000_000
MAX_ALIASES = 100
MAX_EXPANDED_NODES = 100_000


class _CappedLoader(yaml.SafeLoader):
    """A SafeLoader that refuses documents with more than MAX_ALIASES alias references ("billion laughs")."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self._aliases = getattr(self, "_aliases", 0) + 1
            if self._aliases > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise yaml.YAMLError(f"more than {MAX_ALIASES} alias references (line {mark.line + 1})")
        return super().compose_node(parent, index)


def read_text(path: Path, what: str = "config", max_bytes: int = MAX_BYTES) -> str:
    """The file's text as UTF-8; one-line ConfigError for a missing, huge, binary or non-UTF-8 file."""
    try:
        if path.is_dir():
            raise ConfigError(f"{path}: is a directory; pass the {what} file itself")
        size = path.stat().st_size
        if size > max_bytes:
            raise ConfigError(f"{path}: {size} bytes is too large for a {what} (limit {max_bytes}); check the path")
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file; pass --config with an existing file (see configs/run.yaml)") from None
    except PermissionError:
        raise ConfigError(f"{path}: permission denied; make the file readable") from None
    return _decode(path, data, what)


def _looks_utf16(data: bytes) -> bool:
    """A UTF-16 byte-order mark, or NULs in only one byte of each pair (ASCII text in UTF-16 without a BOM)."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return True
    sample = data[:4096]
    if len(sample) < 2 or len(sample) % 2:
        return False
    even, odd = sample[0::2], sample[1::2]
    return any(b.count(0) >= len(b) / 2 and 0 not in a for a, b in ((even, odd), (odd, even)))


def _decode(path: Path, data: bytes, what: str) -> str:
    if _looks_utf16(data):
        raise ConfigError(f"{path}: the {what} is UTF-16; re-save it as UTF-8 (iconv -f UTF-16 -t UTF-8)")
    if data.startswith(b"\xef\xbb\xbf"):
        raise ConfigError(f"{path}: the {what} starts with a UTF-8 byte-order mark; re-save it as UTF-8 without BOM")
    if b"\x00" in data:
        raise ConfigError(f"{path}: the {what} is a binary file, not YAML text; check the path")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}: line {line}: not valid UTF-8 (byte 0x{data[exc.start]:02x}); re-save the {what} as UTF-8"
        ) from None


def read_yaml(path: Path, what: str = "config") -> Any:
    """Parse one YAML document with the capped safe loader."""
    text = read_text(path, what)
    if not text.strip():
        raise ConfigError(f"{path}: the {what} is empty; start from configs/run.yaml")
    try:
        data = yaml.load(text, Loader=_CappedLoader)  # noqa: S506 - a SafeLoader subclass
        _check_expansion(path, data)
        return data
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        raise ConfigError(
            f"{path}: {where}: {_first_line(exc.problem or str(exc))}; fix the YAML syntax "
            "(indent with spaces, not tabs)"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: {_first_line(str(exc))}; remove the repeated aliases") from None


def _check_expansion(path: Path, data: Any) -> None:
    """Refuse documents whose aliases expand to more than MAX_EXPANDED_NODES values (counted with repeats)."""
    stack, seen = [data], 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > MAX_EXPANDED_NODES:
            raise ConfigError(
                f"{path}: its aliases expand to more than {MAX_EXPANDED_NODES} values "
                "(a YAML alias bomb?); remove the repeated aliases"
            )
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "invalid YAML"
