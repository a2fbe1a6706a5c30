"""JSON codecs for ``ChatClient``'s request and reply bodies (issue 18: a faster codec as a measurable option).

``ChatClient(codec=None)`` (the default) lets ``requests`` encode (``json=``) and decode (``Response.json()``) as it
always did. A ``JsonCodec`` instead encodes the body to UTF-8 bytes itself (no ``\\uXXXX`` escapes: Cyrillic
prompts go out at half the size) and decodes the reply from its raw bytes. ``MsgspecJson`` uses msgspec, which
vLLM itself depends on (so it is there wherever a managed server's Python is the orchestrator's); ``fast_codec()``
falls back to ``StdlibJson`` where it is missing. Both raise ``ValueError`` on a body that is not JSON.

``codec_named`` maps a config's ``vllm.client_codec`` (one of ``CODEC_NAMES``) to what ``ChatClient`` takes:
``None`` (unset) is ``fast_codec()``, managed servers' default; ``"requests"`` is ``None``, requests' own JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

try:  # msgspec comes with vLLM; without it the stdlib codec does the same job, slower
    import msgspec
except ImportError:  # pragma: no cover - vLLM installs it
    msgspec = None  # type: ignore[assignment]  # None: the stdlib codec takes over

MSGSPEC_INSTALLED = msgspec is not None


class JsonCodec(Protocol):
    """What ``ChatClient`` needs of a codec."""

    name: str

    def encode(self, obj: Any) -> bytes: ...
    def decode(self, data: bytes) -> Any: ...


class StdlibJson:
    """The standard library's ``json``, UTF-8 without ASCII escapes."""

    name = "json"

    def encode(self, obj: Any) -> bytes:
        return json.dumps(obj, ensure_ascii=False, allow_nan=False).encode("utf-8")

    def decode(self, data: bytes) -> Any:
        return json.loads(data)


class MsgspecJson:
    """msgspec's JSON encoder and decoder (C, several times the stdlib's speed)."""

    name = "msgspec"

    def __init__(self) -> None:
        if msgspec is None:
            raise RuntimeError("msgspec is not installed; use StdlibJson")

    def encode(self, obj: Any) -> bytes:
        return msgspec.json.encode(obj)  # the module functions: no state shared between worker threads

    def decode(self, data: bytes) -> Any:
        try:
            return msgspec.json.decode(data)
        except msgspec.DecodeError as exc:
            raise ValueError(str(exc)) from None


def fast_codec() -> JsonCodec:
    """msgspec where installed, else the stdlib codec."""
    return MsgspecJson() if msgspec is not None else StdlibJson()


_BY_NAME: dict[str, Callable[[], JsonCodec | None]] = {
    "msgspec": MsgspecJson,
    "json": StdlibJson,
    "requests": lambda: None,
}
CODEC_NAMES = tuple(_BY_NAME)


def codec_named(name: str | None) -> JsonCodec | None:
    """The codec a config names (``CODEC_NAMES``); unset is ``fast_codec()``, ``"requests"`` is requests' own."""
    if name is None:
        return fast_codec()
    if name not in _BY_NAME:
        raise ValueError(f"unknown client codec {name!r}: one of {', '.join(CODEC_NAMES)}")
    return _BY_NAME[name]()
