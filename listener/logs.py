"""Structured logging (structlog) to stderr, with bound context such as source and mention id.

Secrets never reach the output: values under secret-looking keys become
``***``, and every string of every log line — Listener's own events and the
standard-library records of third-party libraries alike, tracebacks included
— goes through :func:`listener.redact.mask_text` (configured secrets, URL
passwords, bearer tokens, OAuth parameters).  Libraries whose debug output is
mostly credentials (oauthlib, requests_oauthlib) stay at WARNING even at
``-vv``; HTTP clients (httpx, httpcore, urllib3, tweepy) too, as before.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from listener.redact import mask_data, mask_text

_SECRET_KEYS = {
    "password",
    "token",
    "bearer_token",
    "secret",
    "secret_key",
    "api_key",
    "access_token",
    "access_token_secret",
    "consumer_key",
    "consumer_secret",
    "authorization",
}
#: Loggers never shown below WARNING: their debug lines print request headers,
#: OAuth signing material or URLs with credentials.
QUIET_LOGGERS = (
    "httpx",
    "httpcore",
    "urllib3",
    "alembic",
    "tweepy",
    "requests_oauthlib",
    "oauthlib",
)


def _drop_secrets(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in list(event):
        if key.lower() in _SECRET_KEYS:
            event[key] = "***"
    return event


def _mask_values(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = mask_text(value)
        elif isinstance(value, dict | list | tuple):
            event[key] = mask_data(value)
    return event


class RedactingFilter(logging.Filter):
    """Masks secrets in standard-library log records (message, arguments, traceback)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep the raw parts
            message = f"{record.msg} {record.args}"
        record.msg, record.args = mask_text(message), None
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text, record.exc_info = mask_text(text), None
        elif record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return True


def configure(level: str = "WARNING", json_logs: bool = False) -> None:
    """Configure structlog and stdlib logging once per process."""
    lvl = getattr(logging, level.upper(), logging.WARNING)
    logging.basicConfig(stream=sys.stderr, level=lvl, format="%(message)s", force=True)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(max(lvl, logging.WARNING))
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if json_logs
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _drop_secrets,
            structlog.processors.format_exc_info,
            _mask_values,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
