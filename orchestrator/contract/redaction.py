"""The one rule of what is a secret, and the redaction built on it: config dumps, the plan, the manifest, series meta
and server commands all redact through these (plain functions: no I/O)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

_SECRET_PARTS = frozenset(
    {"key", "apikey", "token", "secret", "password", "passwd", "pwd", "authorization", "credentials", "credential"}
)


def is_secret_name(name: str) -> bool:
    """True for names of secrets (``api_key``, ``HF_TOKEN``, ``--api-key``), false for ``tokenizer``/``max_tokens``.

    The one rule used everywhere something is redacted: config dumps, the plan, the manifest and series meta.
    """
    return any(part.lower() in _SECRET_PARTS for part in re.split(r"[-_]+", name.strip("-")) if part)


def public_url(url: str) -> str:
    """``url`` without credentials or query string (where keys hide: ``user:key@host``, ``?key=...``)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def redact_command(argv: Sequence[str]) -> list[str]:
    """``argv`` with the value of every secret-looking option (``--api-key X``, ``--hf-token=X``) masked."""
    out: list[str] = []
    for word in argv:
        flag, eq, _ = word.partition("=")
        if out and out[-1].startswith("--") and "=" not in out[-1] and is_secret_name(out[-1]):
            out.append("***")
        elif flag.startswith("--") and eq and is_secret_name(flag):
            out.append(f"{flag}=***")
        else:
            out.append(word)
    return out
