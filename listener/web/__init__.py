"""The web app: the loyalty team's triage queue, case pages, marketing's dashboard, the
JSON API (/api/v1), /healthz and /metrics.  Build it with :func:`create_app`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from listener.app import App


def create_app(app: App) -> FastAPI:
    """The FastAPI application around ``app`` (see :mod:`listener.web.app`)."""
    from listener.web.app import create_app as _create

    return _create(app)


__all__ = ["create_app"]
