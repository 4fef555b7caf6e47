"""The alerts page, the banner on every page, and ``/api/v1/alerts``.

Handlers are thin: they call :mod:`listener.alerts.store` (the same use-cases as
``listener alerts``).  Anyone signed in sees alerts; acknowledging and
resolving need a role that may write (marketing is read-only).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field

from listener.alerts import KINDS, STATUSES, store
from listener.auth import Principal
from listener.web.security import current_user, writer

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1", tags=["api"])
AlertId = Annotated[int, PathParam(ge=1, le=2_147_483_647)]
User = Annotated[Principal, Depends(current_user)]
Writer = Annotated[Principal, Depends(writer)]
BANNER_TTL = 5.0  #: seconds a page may show a banner computed for an earlier page


def banner(request: Request) -> dict[str, Any] | None:
    """What the banner on every page says (None: nothing open); cached a few seconds."""
    if getattr(request.state, "principal", None) is None:
        return None
    cache = request.app.state.cache
    hit = cache.get("alert_banner")
    if hit is not None and time.monotonic() - hit[0] < BANNER_TTL:
        return hit[1]  # type: ignore[no-any-return]
    try:
        summary = store.open_summary(request.app.state.listener)
    except Exception:  # the banner must never break a page (e.g. during a migration)
        return None
    value = summary if summary["open"] or summary["acknowledged"] else None
    cache["alert_banner"] = (time.monotonic(), value)
    return value


def _forget_banner(request: Request) -> None:
    request.app.state.cache.pop("alert_banner", None)


@router.get("/alerts")
def alerts_page(
    request: Request,
    user: User,
    status: Annotated[str | None, Query(max_length=20)] = None,
    kind: Annotated[str | None, Query(max_length=30)] = None,
) -> HTMLResponse:
    from listener.web.pages import render

    statuses = (status,) if status in STATUSES else ()
    kinds = (kind,) if kind in KINDS else ()
    rows = store.list_alerts(request.app.state.listener, statuses=statuses, kinds=kinds)
    return render(
        request,
        "alerts.html",
        alerts=rows,
        status=status or "",
        kind=kind or "",
        statuses=STATUSES,
        kinds=KINDS,
    )


@router.post("/alerts/{alert_id}/ack")
def ack(alert_id: AlertId, request: Request, user: Writer) -> RedirectResponse:
    from listener.web.pages import flash

    store.acknowledge(request.app.state.listener, alert_id, user.username)
    _forget_banner(request)
    flash(request, "ok", f"alert #{alert_id} acknowledged")
    return RedirectResponse("/alerts", status_code=303)


@router.post("/alerts/{alert_id}/resolve")
def resolve(
    alert_id: AlertId,
    request: Request,
    user: Writer,
    note: Annotated[str, Form(max_length=500)] = "",
) -> RedirectResponse:
    from listener.web.pages import flash

    store.resolve(request.app.state.listener, alert_id, user.username, note or None)
    _forget_banner(request)
    flash(request, "ok", f"alert #{alert_id} resolved")
    return RedirectResponse("/alerts", status_code=303)


class AlertOut(BaseModel):
    """One alert (the same object as ``listener alerts --json``)."""

    model_config = ConfigDict(extra="allow")
    id: int
    kind: str
    status: str
    started_at: str | None
    explanation: str
    evidence: dict[str, Any]


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(default=None, max_length=500)


@api.get("/alerts", response_model=list[AlertOut])
def api_alerts(
    request: Request,
    user: User,
    status: Annotated[str | None, Query(pattern="^(open|acknowledged|resolved)$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    """Alerts, unresolved first, newest first."""
    return store.list_alerts(
        request.app.state.listener, statuses=(status,) if status else (), limit=limit
    )


@api.post("/alerts/{alert_id}/ack", response_model=AlertOut)
def api_ack(alert_id: AlertId, request: Request, user: Writer) -> Any:
    """Acknowledge an alert."""
    _forget_banner(request)
    return store.acknowledge(request.app.state.listener, alert_id, user.username)


@api.post("/alerts/{alert_id}/resolve", response_model=AlertOut)
def api_resolve(alert_id: AlertId, body: ResolveIn, request: Request, user: Writer) -> Any:
    """Resolve an alert."""
    _forget_banner(request)
    return store.resolve(request.app.state.listener, alert_id, user.username, body.note)
