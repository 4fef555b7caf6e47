"""Alerts in the database: open, update, re-open, acknowledge, resolve, list.

**De-duplication.**  A condition has a ``key``; at most one alert per key is not
resolved (a partial unique index enforces it even between two workers), so a
condition that holds poll after poll updates its alert — evidence, last seen —
instead of opening another.  **Cool-down.**  A condition that comes back
within ``alerts.cooldown`` of its alert's resolution re-opens that alert
without notifying anyone again; later, it is a new alert.  An occurrence
already covered by a resolved alert (the same spike hours, say, after a person
resolved it by hand) is not raised again.

Every change is also an ``alert.*`` event in the append-only audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from listener import models as m
from listener.alerts import KINDS, STATUSES
from listener.alerts.conditions import Condition
from listener.clock import utcnow
from listener.errors import Conflict, ListenerError, NotFound

if TYPE_CHECKING:
    from listener.app import App

LIVE = ("open", "acknowledged")
SYSTEM = "listener"


@dataclass(frozen=True)
class Change:
    """What happened to an alert in one evaluation."""

    alert_id: int
    action: str  #: opened | updated | reopened | resolved


def _event(session: Session, kind: str, alert: m.Alert, actor: str, now: datetime) -> None:
    session.add(
        m.Event(
            actor=actor,
            kind=kind,
            source_id=alert.source_id,
            at=now,
            data={"alert_id": alert.id, "alert_kind": alert.kind, "key": alert.key},
        )
    )


def live_alerts(session: Session) -> dict[str, m.Alert]:
    """Unresolved alerts by key."""
    return {a.key: a for a in session.scalars(select(m.Alert).where(m.Alert.status.in_(LIVE)))}


def _covered(previous: m.Alert, cond: Condition) -> bool:
    """Whether a resolved alert already told about this occurrence (spike/shift hours)."""
    new_hours = set(cond.evidence.get("hours") or [])
    old_hours = set((previous.evidence or {}).get("hours") or [])
    return bool(new_hours) and new_hours <= old_hours


def _apply(alert: m.Alert, cond: Condition, now: datetime) -> None:
    alert.title = cond.title[:2000]
    alert.explanation = cond.explanation
    alert.evidence = cond.evidence
    alert.severity = cond.severity
    alert.scope = cond.scope[:300]
    alert.last_seen_at = now
    alert.updated_at = now
    if cond.source_id is not None:
        alert.source_id = cond.source_id


def raise_condition(
    session: Session, cond: Condition, now: datetime, cooldown: timedelta
) -> Change | None:
    """Open (or update, or re-open) the alert for ``cond``; None when nothing changed."""
    live = session.scalars(
        select(m.Alert).where(m.Alert.key == cond.key, m.Alert.status.in_(LIVE))
    ).first()
    if live is not None:
        _apply(live, cond, now)
        return Change(live.id, "updated")
    previous = session.scalars(
        select(m.Alert)
        .where(m.Alert.key == cond.key, m.Alert.status == "resolved")
        .order_by(m.Alert.resolved_at.desc(), m.Alert.id.desc())
        .limit(1)
    ).first()
    if previous is not None and _covered(previous, cond):
        return None
    if (
        previous is not None
        and previous.resolved_at is not None
        and now - previous.resolved_at <= cooldown
    ):
        previous.status = "open"
        previous.resolved_at = previous.resolved_by = None
        previous.acknowledged_at = previous.acknowledged_by = None
        previous.reopened = (previous.reopened or 0) + 1
        _apply(previous, cond, now)
        try:
            with session.begin_nested():
                session.flush()
        except IntegrityError:  # another worker opened one meanwhile
            return _update_winner(session, cond, now)
        _event(session, "alert.reopened", previous, SYSTEM, now)
        return Change(previous.id, "reopened")
    alert = m.Alert(
        kind=cond.kind,
        key=cond.key[:300],
        status="open",
        severity=cond.severity,
        scope=cond.scope[:300],
        source_id=cond.source_id,
        title=cond.title[:2000],
        explanation=cond.explanation,
        evidence=cond.evidence,
        started_at=cond.started_at,
        last_seen_at=now,
        opened_at=now,
        reopened=0,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(alert)
            session.flush()
    except IntegrityError:  # another worker opened it between our read and our insert
        return _update_winner(session, cond, now)
    _event(session, "alert.opened", alert, SYSTEM, now)
    return Change(alert.id, "opened")


def _update_winner(session: Session, cond: Condition, now: datetime) -> Change | None:
    live = session.scalars(
        select(m.Alert).where(m.Alert.key == cond.key, m.Alert.status.in_(LIVE))
    ).first()
    if live is None:
        return None
    _apply(live, cond, now)
    return Change(live.id, "updated")


def resolve_alert(
    session: Session, alert: m.Alert, now: datetime, actor: str = SYSTEM, note: str | None = None
) -> Change:
    alert.status = "resolved"
    alert.resolved_at = now
    alert.resolved_by = None if actor == SYSTEM else actor
    alert.updated_at = now
    if note:
        alert.evidence = {**(alert.evidence or {}), "resolution": note[:500]}
    _event(session, "alert.resolved", alert, actor, now)
    return Change(alert.id, "resolved")


# ---------------------------------------------------------------------------
# use-cases for people (CLI, web, API)


def get_alert(app: App, alert_id: int) -> dict[str, Any]:
    with app.sessions() as session:
        alert = session.get(m.Alert, alert_id)
        if alert is None:
            raise NotFound(f"no alert {alert_id}")
        return alert_dict(alert)


def acknowledge(app: App, alert_id: int, actor: str, now: datetime | None = None) -> dict[str, Any]:
    """Someone is on it: the banner stops calling, the alert stays until its condition clears."""
    now = now or utcnow()
    with app.sessions() as session, session.begin():
        alert = session.get(m.Alert, alert_id)
        if alert is None:
            raise NotFound(f"no alert {alert_id}")
        if alert.status == "resolved":
            raise Conflict(f"alert {alert_id} is already resolved")
        if alert.status == "open":
            alert.status = "acknowledged"
            alert.acknowledged_at, alert.acknowledged_by = now, actor
            alert.updated_at = now
            _event(session, "alert.acknowledged", alert, actor, now)
        return alert_dict(alert)


def resolve(
    app: App, alert_id: int, actor: str, note: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Close an alert by hand (a condition that still holds re-opens it, without notifying
    again within the cool-down)."""
    now = now or utcnow()
    if not actor or actor == SYSTEM:
        raise ListenerError("say who resolves the alert")
    with app.sessions() as session, session.begin():
        alert = session.get(m.Alert, alert_id)
        if alert is None:
            raise NotFound(f"no alert {alert_id}")
        if alert.status != "resolved":
            resolve_alert(session, alert, now, actor, note)
        return alert_dict(alert)


def list_alerts(
    app: App,
    *,
    statuses: tuple[str, ...] = (),
    kinds: tuple[str, ...] = (),
    limit: int = 200,
) -> list[dict[str, Any]]:
    """Alerts newest first (unresolved first), optionally only some statuses or kinds."""
    bad = [s for s in statuses if s not in STATUSES]
    if bad:
        raise ListenerError(f"unknown status {bad[0]!r} (one of: {', '.join(STATUSES)})")
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise ListenerError(f"unknown kind {bad[0]!r} (one of: {', '.join(KINDS)})")
    stmt = select(m.Alert)
    if statuses:
        stmt = stmt.where(m.Alert.status.in_(statuses))
    if kinds:
        stmt = stmt.where(m.Alert.kind.in_(kinds))
    stmt = stmt.order_by(
        (m.Alert.status == "resolved"), m.Alert.opened_at.desc(), m.Alert.id.desc()
    )
    with app.sessions() as session:
        return [alert_dict(a) for a in session.scalars(stmt.limit(max(1, min(limit, 10_000))))]


def open_summary(app: App) -> dict[str, Any]:
    """What the web banner shows: unresolved alerts, the open (unacknowledged) ones first."""
    with app.sessions() as session:
        rows = session.execute(
            select(m.Alert.id, m.Alert.kind, m.Alert.status, m.Alert.title, m.Alert.severity)
            .where(m.Alert.status.in_(LIVE))
            .order_by((m.Alert.status != "open"), m.Alert.opened_at.desc())
            .limit(50)
        ).all()
    open_ = [r for r in rows if r.status == "open"]
    return {
        "open": len(open_),
        "acknowledged": len(rows) - len(open_),
        "newest": dict(open_[0]._mapping) if open_ else None,
    }


def alert_dict(a: m.Alert) -> dict[str, Any]:
    """The stable JSON shape of an alert (``listener alerts --json``, the API, webhooks)."""
    return {
        "id": a.id,
        "kind": a.kind,
        "status": a.status,
        "severity": a.severity,
        "scope": a.scope,
        "title": a.title,
        "started_at": a.started_at.isoformat() if a.started_at else None,
        "explanation": a.explanation,
        "evidence": dict(a.evidence or {}),
        "opened_at": a.opened_at.isoformat() if a.opened_at else None,
        "last_seen_at": a.last_seen_at.isoformat() if a.last_seen_at else None,
        "acknowledged_at": a.acknowledged_at.isoformat() if a.acknowledged_at else None,
        "acknowledged_by": a.acknowledged_by,
        "resolved_at": a.resolved_at.isoformat() if a.resolved_at else None,
        "resolved_by": a.resolved_by,
        "reopened": a.reopened or 0,
    }
