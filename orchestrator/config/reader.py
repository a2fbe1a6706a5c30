"""``Reader``: the typed readers of one config file's values (``endpoints.Fields`` is the part endpoint entries use).

Each reader returns the value, or ``None`` when the key is absent, or raises one ``ConfigError`` line naming the
file, the field path, the value and the fix: ``<file>: <where>: <problem>; <fix>``. ``env:NAME`` secrets are
resolved from the environment given to the reader; their values never appear in an error.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError


class Reader:
    """Reads and checks the values of the config at ``path`` (relative paths are tried from its directory too)."""

    def __init__(self, path: Path, env: Mapping[str, str]) -> None:
        self.path, self.env = path, env

    def fail(self, where: str, problem: str, fix: str = "") -> ConfigError:
        return ConfigError(f"{self.path}: {where}: {problem}" + (f"; {fix}" if fix else ""))

    def check_keys(self, block: dict, allowed: set[str], where: str) -> None:
        for key in block:
            if key not in allowed:
                hint = did_you_mean(str(key), allowed)
                raise self.fail(f"{where}.{key}", "unknown key", hint or f"allowed keys: {', '.join(sorted(allowed))}")

    def integer(
        self, block: dict, key: str, where: str, minimum: int | None = None, maximum: int | None = None
    ) -> int | None:
        value = block.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"expected an integer, got {value!r:.60}", "write a whole number such as 4")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            bounds = f"of at least {minimum}" if maximum is None else f"between {minimum} and {maximum}"
            raise self.fail(where, f"{value} is out of range", f"use a value {bounds}")
        return value

    def number(self, block: dict, key: str, where: str, minimum: float | None = None) -> float | None:
        value = block.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(where, f"expected a number, got {value!r:.60}", "write a number such as 0.5")
        if not math.isfinite(value):
            raise self.fail(where, f"{value} is not a finite number", "write a number such as 0.5")
        if minimum is not None and value < minimum:
            raise self.fail(where, f"{value} is out of range", f"use a value of at least {minimum}")
        return float(value)

    def text(self, block: dict, key: str, where: str) -> str | None:
        value = block.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(where, f"expected a string, got {value!r:.60}", "quote the value")
        return value

    def strings(self, raw: Any, where: str) -> tuple[str, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list) or not all(
            isinstance(a, (str, int, float)) and not isinstance(a, bool) for a in raw
        ):
            raise self.fail(where, f"expected a list of strings, got {raw!r:.80}", 'e.g. ["--dtype", "bfloat16"]')
        return tuple(str(a) for a in raw)

    def secret(self, where: str, raw: Any) -> str | None:
        if raw is None or raw == "":
            return None
        if not isinstance(raw, str):
            raise self.fail(where, f"expected a string, got {kind(raw)}")
        if raw.startswith("env:"):
            var = raw[4:].strip()
            if not var or var not in self.env or not self.env[var]:
                raise self.fail(where, f"environment variable {var!r} is not set", f"export {var}=... before the run")
            return self.env[var]
        return raw

    def env_map(self, raw: Any, where: str) -> tuple[tuple[str, str], ...]:
        if raw is None:
            return ()
        if not isinstance(raw, dict) or not all(isinstance(k, str) for k in raw):
            raise self.fail(where, f"expected a mapping of variable names to values, got {kind(raw)}")
        for key, value in raw.items():
            if isinstance(value, (dict, list)) or value is None:
                raise self.fail(f"{where}.{key}", f"expected a string value, got {kind(value)}")
        return tuple((k, self.secret(f"{where}.{k}", str(v)) or "") for k, v in raw.items())

    def existing_file(self, where: str, raw: str) -> str:
        for cand in (Path(raw).expanduser(), self.path.parent / raw):
            if cand.is_file():
                return str(cand.resolve())
        raise self.fail(
            where,
            f"file {raw!r} does not exist",
            "fix the path (relative paths are tried from the current directory, then from the config's directory)",
        )


def did_you_mean(word: str, choices: set[str]) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


def kind(value: Any) -> str:
    """What a YAML value is, in words (``a mapping``, ``a list``, ``nothing``, ``int``)."""
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )
