"""The ``endpoints:`` entries of an API model, per ``api_type`` (read by config.py).

* ``openai`` (the default): ``{api_base, api_key}`` -- any OpenAI-compatible API.
* ``openrouter``: ``{api_base, api_key, http_referer, x_title}``, all optional: ``api_base`` defaults to
  ``https://openrouter.ai/api/v1``, ``api_key`` to ``env:OPENROUTER_API_KEY``; ``http_referer`` / ``x_title``
  (or ``HTTP-Referer`` / ``X-Title``) are sent as OpenRouter's attribution headers. ``endpoints`` may be left out.
* ``gigachat``: the original's keys ``{credentials, scope, api_base | base_url, profanity_check, timeout,
  verify_ssl_certs}`` plus ``auth_url`` (a private installation or a stand-in) and ``ca_bundle`` (a CA file to trust,
  the safe alternative to ``verify_ssl_certs: false``). Defaults as the original: scope ``GIGACHAT_API_CORP``,
  ``profanity_check: true``; the public API and OAuth URLs. Installations that issue logins instead of keys:
  ``user`` and ``password`` in place of ``credentials`` (the token then comes from ``<api_base>/token``).

A key of another type (``credentials`` for OpenAI, ``api_key`` for GigaChat), a missing or unset credential, a
login given with ``credentials`` or half a login, and an unknown scope are ``ConfigError`` lines that say what to
write instead.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from .contract import Endpoint, GigaChatAuth
from .errors import ConfigError

API_TYPES = ("openai", "openrouter", "gigachat")
OPENROUTER_BASE = "https://openrouter.ai/api/v1"
OPENROUTER_KEY = "env:OPENROUTER_API_KEY"
GIGACHAT_BASE = "https://gigachat.devices.sberbank.ru/api/v1"
GIGACHAT_AUTH_URL = "https://ngw.devices.sberbank.ru:9443/api/v2/oauth"
GIGACHAT_SCOPES = ("GIGACHAT_API_PERS", "GIGACHAT_API_B2B", "GIGACHAT_API_CORP")
GIGACHAT_SCOPE = "GIGACHAT_API_CORP"  # the original's default
OPENROUTER_HEADERS = {
    "http_referer": "HTTP-Referer",
    "HTTP-Referer": "HTTP-Referer",
    "x_title": "X-Title",
    "X-Title": "X-Title",
}
KEYS = {
    "openai": {"api_base", "api_key"},
    "openrouter": {"api_base", "api_key", *OPENROUTER_HEADERS},
    "gigachat": {
        "credentials",
        "user",
        "password",
        "scope",
        "api_base",
        "base_url",
        "auth_url",
        "profanity_check",
        "timeout",
        "verify_ssl_certs",
        "ca_bundle",
    },
}
_MISPLACED = {
    "credentials": "`credentials` is GigaChat's authorization key: set `api_type: gigachat`, or give an "
    "OpenAI-compatible API its key as `api_key: env:NAME`",
    "api_key": "GigaChat takes `credentials: env:NAME` (the authorization key of your API project), not `api_key`",
}
_URL = re.compile(r"^https?://")


class Fields(Protocol):
    """The typed readers of config.py's builder that an endpoint entry needs."""

    def fail(self, where: str, problem: str, fix: str = "") -> ConfigError: ...
    def secret(self, where: str, raw: Any) -> str | None: ...
    def text(self, block: dict, key: str, where: str) -> str | None: ...
    def number(self, block: dict, key: str, where: str, minimum: float | None = None) -> float | None: ...
    def existing_file(self, where: str, raw: str) -> str: ...


def default_entries(api_type: str) -> list[dict] | None:
    """The entries of a model without ``endpoints``: one default entry for OpenRouter, none otherwise."""
    return [{}] if api_type == "openrouter" else None


def parse_endpoint(fields: Fields, api_type: str, where: str, item: Any) -> tuple[Endpoint, float | None]:
    """One ``endpoints[i]`` entry: the endpoint and, for GigaChat, its ``timeout`` (seconds) if given."""
    if not isinstance(item, dict):
        raise fields.fail(
            where,
            f"expected a mapping of endpoint settings, got {type(item).__name__}",
            "e.g. {api_base: https://..., api_key: env:NAME}",
        )
    _check_keys(fields, api_type, where, item)
    if api_type == "gigachat":
        return _gigachat(fields, where, item)
    default_base, default_key = (OPENROUTER_BASE, OPENROUTER_KEY) if api_type == "openrouter" else (None, None)
    base = _url(fields, item, "api_base", where, default_base)
    key = fields.secret(f"{where}.api_key", item.get("api_key", default_key))
    headers = tuple(
        (OPENROUTER_HEADERS[k], str(fields.text(item, k, f"{where}.{k}")))
        for k in item
        if k in OPENROUTER_HEADERS and item[k] is not None
    )
    return Endpoint(api_base=base, api_key=key, headers=headers), None


def _check_keys(fields: Fields, api_type: str, where: str, item: dict) -> None:
    allowed = KEYS[api_type]
    for key in item:
        if key in allowed:
            continue
        if key in _MISPLACED:
            raise fields.fail(f"{where}.{key}", f"not a key of api_type {api_type}", _MISPLACED[key])
        raise fields.fail(
            f"{where}.{key}", "unknown key", f"allowed keys for api_type {api_type}: " + ", ".join(sorted(allowed))
        )


def _gigachat(fields: Fields, where: str, item: dict) -> tuple[Endpoint, float | None]:
    _check_login(fields, where, item)
    credentials = fields.secret(f"{where}.credentials", item.get("credentials"))
    scope = fields.text(item, "scope", f"{where}.scope") or GIGACHAT_SCOPE
    if scope not in GIGACHAT_SCOPES:
        raise fields.fail(
            f"{where}.scope",
            f"unknown scope {scope!r}",
            "use one of " + ", ".join(GIGACHAT_SCOPES) + " (PERS for individuals, B2B / CORP for companies)",
        )
    if item.get("api_base") is not None and item.get("base_url") is not None:
        raise fields.fail(f"{where}.base_url", "given together with api_base", "keep one of them")
    base_key = "base_url" if item.get("base_url") is not None else "api_base"
    base = _url(fields, item, base_key, where, GIGACHAT_BASE)
    auth = GigaChatAuth(
        credentials=credentials or "",
        scope=scope,
        auth_url=_url(fields, item, "auth_url", where, GIGACHAT_AUTH_URL),
        profanity_check=_flag(fields, item, "profanity_check", where, True),
        user=fields.secret(f"{where}.user", item.get("user")),
        password=fields.secret(f"{where}.password", item.get("password")),
        token_url=base + "/token",
    )
    endpoint = Endpoint(api_base=base, gigachat=auth, verify=_verify(fields, item, where))
    return endpoint, fields.number(item, "timeout", f"{where}.timeout", minimum=0.001)


def _check_login(fields: Fields, where: str, item: dict) -> None:
    """``credentials``, or ``user`` and ``password``: exactly one way to get tokens, and a whole one."""
    given = {k for k in ("credentials", "user", "password") if item.get(k) not in (None, "")}
    if "credentials" in given and given != {"credentials"}:
        extra = sorted(given - {"credentials"})[0]
        raise fields.fail(
            f"{where}.{extra}",
            "given together with credentials",
            "keep one way to log in: `credentials` (the authorization key) or `user` and `password`",
        )
    if not given:
        raise fields.fail(
            f"{where}.credentials",
            "missing",
            "add `credentials: env:GIGACHAT_CREDENTIALS` (the "
            "authorization key of your GigaChat API project) and export the variable, or `user` and "
            "`password: env:GIGACHAT_PASSWORD` for an installation that issues logins",
        )
    for half, other in (("user", "password"), ("password", "user")):
        if given == {other}:
            raise fields.fail(
                f"{where}.{half}",
                f"missing (`{other}` is given)",
                f"add `{half}: env:GIGACHAT_{half.upper()}` and export the variable",
            )


def _verify(fields: Fields, item: dict, where: str) -> bool | str:
    verify = _flag(fields, item, "verify_ssl_certs", where, True)
    bundle = fields.text(item, "ca_bundle", f"{where}.ca_bundle")
    if bundle is None:
        return verify
    if not verify:
        raise fields.fail(
            f"{where}.ca_bundle",
            "given with verify_ssl_certs: false",
            "keep ca_bundle (certificates checked against it) and remove verify_ssl_certs",
        )
    return fields.existing_file(f"{where}.ca_bundle", bundle)


def _url(fields: Fields, item: dict, key: str, where: str, default: str | None) -> str:
    value = fields.text(item, key, f"{where}.{key}")
    value = default if value is None else value
    if not value or not _URL.match(value):
        raise fields.fail(
            f"{where}.{key}",
            f"expected an http(s) URL, got {value!r}",
            f"e.g. {default or 'https://api.openai.com/v1'}",
        )
    return value.rstrip("/")


def _flag(fields: Fields, item: dict, key: str, where: str, default: bool) -> bool:
    value = item.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise fields.fail(f"{where}.{key}", f"expected true or false, got {value!r:.40}", "write true or false")
    return value
