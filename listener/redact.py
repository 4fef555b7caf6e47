"""Secrets never printed: masking for config output, logs and error messages.

Two layers, both applied by :func:`mask_text`:

* **known values**: every secret the configuration holds (``SecretStr``
  fields, passwords inside URLs) is registered when the settings are loaded
  (:func:`register_settings`), and any occurrence of it — verbatim or
  percent-encoded, as OAuth signing strings carry it — becomes ``***``;
* **shapes**: the password of any ``scheme://user:password@host`` URL,
  ``Bearer``/``Basic`` credentials, OAuth 1 parameters (``oauth_token``,
  ``oauth_consumer_key``, ``oauth_signature``…), secret-looking query and
  ``key=value`` parameters (``password=``, ``token=``, ``api_key=``…) and
  Listener API tokens (``lst_…``), whatever they belong to.

Pure string functions plus a small registry; no heavy imports (the CLI's
``--help`` path loads this module).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

MASK = "***"
#: Registered values shorter than this are not masked (they would mask ordinary words).
MIN_SECRET_CHARS = 6

_URL_PASSWORD = re.compile(
    r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/?#@\s\"'<>]*:)(?P<pw>[^/?#\s\"'<>]*)@"
)
_AUTH_SCHEME = re.compile(
    r"(?i)(\bbearer\s+|authorization[\"']?\s*[:=]\s*[\"']?(?:basic|token)\s+)"
    r"[A-Za-z0-9._~+/=%\-]{8,}"
)
_OAUTH_PARAM = re.compile(
    r"(?i)(oauth_(?:consumer_key|token|token_secret|signature|verifier|callback_confirmed)"
    r"[\"']?\s*[=:,]\s*\(?\s*[\"']?)[^\"'&\s,)]+"
)
_OAUTH_ENCODED = re.compile(
    r"(?i)(oauth_(?:consumer_key|token|signature|verifier)%3D)(?:(?!%26)[^&\s\"'])+"
)
_SECRET_PARAM = re.compile(
    r"(?i)(?<![A-Za-z0-9_])((?:password|passwd|pwd|secret|client_secret|api_key|apikey|"
    r"access_token|refresh_token|bearer_token|token|sig|signature)=)[^&\s\"',;]+"
)
_API_TOKEN = re.compile(r"\blst_[A-Za-z0-9_\-]{16,}")

_known: set[str] = set()
_known_sorted: list[str] = []
_lock = threading.Lock()


def mask_url(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part replaced by ``***``."""
    return _URL_PASSWORD.sub(lambda m: f"{m.group('head')}{MASK}@", url)


def url_password(url: str) -> str | None:
    """The password in ``url``'s ``user:password@`` part, if any."""
    found = _URL_PASSWORD.search(url)
    return found.group("pw") if found and found.group("pw") else None


def register_secret(value: str | None) -> None:
    """Mask ``value`` (and its percent-encoded forms) wherever it appears from now on."""
    if not value or len(value) < MIN_SECRET_CHARS:
        return
    forms = {value, quote(value, safe=""), quote(quote(value, safe=""), safe="")}
    with _lock:
        new = forms - _known
        if not new:
            return
        _known.update(new)
        _known_sorted[:] = sorted(_known, key=len, reverse=True)


def register_settings(settings: Any) -> None:
    """Register every secret a :class:`~listener.config.Settings` holds: each
    ``SecretStr`` value and each password inside a URL-valued string."""
    for value in _walk_settings(settings):
        if hasattr(value, "get_secret_value"):
            register_secret(value.get_secret_value())
        elif isinstance(value, str) and "://" in value:
            register_secret(url_password(value))


def _walk_settings(node: Any, depth: int = 0) -> Iterable[Any]:
    if depth > 12:
        return
    fields = getattr(type(node), "model_fields", None)
    if fields is not None:
        for name in fields:
            yield from _walk_settings(getattr(node, name, None), depth + 1)
    elif isinstance(node, dict):
        for value in node.values():
            yield from _walk_settings(value, depth + 1)
    elif isinstance(node, list | tuple):
        for value in node:
            yield from _walk_settings(value, depth + 1)
    else:
        yield node


def mask_text(text: str) -> str:
    """``text`` with every known secret and every credential-shaped value masked."""
    if not text:
        return text
    for secret in _known_sorted:
        if secret in text:
            text = text.replace(secret, MASK)
    if "://" in text:
        text = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}{MASK}@", text)
    text = _AUTH_SCHEME.sub(lambda m: f"{m.group(1)}{MASK}", text)
    if "oauth_" in text.lower():
        text = _OAUTH_PARAM.sub(lambda m: f"{m.group(1)}{MASK}", text)
        text = _OAUTH_ENCODED.sub(lambda m: f"{m.group(1)}{MASK}", text)
    if "=" in text:
        text = _SECRET_PARAM.sub(lambda m: f"{m.group(1)}{MASK}", text)
    if "lst_" in text:
        text = _API_TOKEN.sub(f"lst_{MASK}", text)
    return text


def mask_data(value: Any) -> Any:
    """:func:`mask_text` applied to every string in a JSON-like value."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: mask_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_data(v) for v in value]
    return value
