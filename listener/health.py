"""``/healthz``: is this deployment able to do its job?

:func:`health_status` answers with a JSON-able dict: the database answers,
who holds the scheduler lock (and whether it is current), sources whose
last poll failed, and the outbox backlog; when a beat holds its lock
(workers are in use), whether the broker answers.  ``ok`` is False only when
the database (or that broker) cannot be reached: failing sources and a
backlog are reported, not fatal (a load balancer should not restart the web
app because a blog is down).  :func:`health_verdict` is the pure part.

``alerts`` lists the open source and send alerts (``listener.alerts``) and
``alerts_ok`` says whether any of them means something is failing now — a
single rate-limit deferral still inside its quota window does not.
``listener health`` exits 3 when ``alerts_ok`` or ``work_ok`` is False (``work_ok``: no
open case whose draft failed, no reply failing to send — :func:`failing_work`), and 1
when the database or the broker is unreachable.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, text

from listener import models as m
from listener.cases.status import OPEN, OUTBOX_WAITING
from listener.clock import utcnow
from listener.redact import mask_text, mask_url

if TYPE_CHECKING:
    from listener.app import App


def database_gauges(app: App) -> dict[str, int]:
    """Counts the metrics endpoint and /healthz report (raises if the DB is down)."""
    with app.sessions() as session:
        open_cases = session.scalar(
            select(func.count()).select_from(m.Case).where(m.Case.status.in_(OPEN))
        )
        backlog = session.scalar(
            select(func.count())
            .select_from(m.OutboxMessage)
            .where(m.OutboxMessage.status.in_(OUTBOX_WAITING))
        )
        failing = session.scalar(
            select(func.count())
            .select_from(m.Source)
            .where(
                m.Source.enabled.is_(True),
                (m.Source.error_count > 0) | m.Source.disabled_reason.is_not(None),
            )
        )
    return {
        "open_cases": int(open_cases or 0),
        "outbox_backlog": int(backlog or 0),
        "sources_failing": int(failing or 0),
    }


def health_verdict(database_ok: bool, broker_ok: bool = True) -> tuple[bool, str]:
    """(ok, status word) from what was checked."""
    if not database_ok:
        return False, "database unreachable"
    if not broker_ok:
        return False, "broker unreachable"
    return True, "ok"


def health_status(app: App, now: datetime | None = None) -> dict[str, Any]:
    """The /healthz body.  Never raises: problems are reported in the dict."""
    now = now or utcnow()
    out: dict[str, Any] = {"checked_at": now.isoformat()}
    try:
        with app.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        database_ok = True
        out["database"] = {"ok": True, "backend": app.engine.dialect.name}
    except Exception as exc:
        database_ok = False
        out["database"] = {
            "ok": False,
            "error": mask_text(f"{exc.__class__.__name__}: {exc}")[:300],
        }
    ok, status = health_verdict(database_ok)
    out["ok"], out["status"] = ok, status
    if not database_ok:
        return out
    from listener.locks import lock_holder

    for name in ("scheduler", "beat"):
        holder = lock_holder(app, name)
        out[name] = (
            None if holder is None else {**holder.as_dict(), "current": holder.expires_at > now}
        )
    if out["beat"] and out["beat"]["current"]:
        # workers are in use (a beat holds its lock): their broker must answer too
        from listener.outage import broker_reachable

        url = app.settings.workers.broker_url
        broker_ok, error = broker_reachable(url)
        out["broker"] = {"ok": broker_ok, "url": mask_url(url), "error": error}
        out["ok"], out["status"] = health_verdict(database_ok, broker_ok)
    with app.sessions() as session:
        failing = session.execute(
            select(
                m.Source.name, m.Source.error_count, m.Source.last_error, m.Source.disabled_reason
            )
            .where(
                m.Source.enabled.is_(True),
                (m.Source.error_count > 0) | m.Source.disabled_reason.is_not(None),
            )
            .order_by(m.Source.name)
        ).all()
    out["sources_failing"] = [
        {"name": n, "errors": int(c or 0), "error": d or e} for n, c, e, d in failing
    ]
    gauges = database_gauges(app)
    out["outbox_backlog"] = gauges["outbox_backlog"]
    out["open_cases"] = gauges["open_cases"]
    out["alerts"] = failing_alerts(app, now)
    out["alerts_ok"] = not any(a["failing"] for a in out["alerts"])
    out.update(failing_work(app))
    out["work_ok"] = not (out["drafts_failed"] or out["sends_failing"])
    return out


def failing_work(app: App) -> dict[str, Any]:
    """Open cases whose draft failed (no draft, the last drafting attempt an error), replies
    failing to send (given up, or retrying after an error), and how many replies went to
    the local outbox file instead of their platform (``recovery.local_outbox``)."""
    from listener.cases.status import OutboxStatus

    with app.sessions() as session:
        drafted = select(m.Draft.case_id).distinct()
        last_failure = (
            select(m.Event.case_id, func.max(m.Event.id).label("event_id"))
            .where(m.Event.kind == "draft.failed")
            .group_by(m.Event.case_id)
            .subquery()
        )
        drafts_failed = session.execute(
            select(m.Case.id, m.Event.data)
            .join(last_failure, last_failure.c.case_id == m.Case.id)
            .join(m.Event, m.Event.id == last_failure.c.event_id)
            .where(m.Case.status.in_(OPEN), m.Case.id.not_in(drafted))
            .order_by(m.Case.id)
        ).all()
        sends = session.execute(
            select(
                m.OutboxMessage.id,
                m.OutboxMessage.case_id,
                m.OutboxMessage.channel,
                m.OutboxMessage.status,
                m.OutboxMessage.attempts,
                m.OutboxMessage.last_error,
            )
            .join(m.Case, m.Case.id == m.OutboxMessage.case_id)
            .where(
                m.Case.status.in_(OPEN),
                (m.OutboxMessage.status == OutboxStatus.FAILED)
                | (
                    (m.OutboxMessage.status == OutboxStatus.SENDING)
                    & m.OutboxMessage.last_error.is_not(None)
                ),
            )
            .order_by(m.OutboxMessage.id)
        ).all()
        local = session.scalar(
            select(func.count())
            .select_from(m.OutboxMessage)
            .where(m.OutboxMessage.external_id.like("local:%"))
        )
    return {
        "drafts_failed": [
            {"case_id": c, "error": mask_text(str((d or {}).get("error", "")))[:300]}
            for c, d in drafts_failed
        ],
        "sends_failing": [
            {
                "outbox_id": i,
                "case_id": c,
                "channel": ch,
                "status": str(st),
                "attempts": int(a or 0),
                "error": mask_text(e or "")[:300],
            }
            for i, c, ch, st, a, e in sends
        ],
        "local_outbox": int(local or 0),
    }


def failing_alerts(app: App, now: datetime) -> list[dict[str, Any]]:
    """Unresolved source and send alerts, each with ``failing`` (does it fail health?)."""
    from listener.alerts import SOURCE_AND_SEND_KINDS
    from listener.alerts.conditions import quota_failing

    grace = app.settings.alerts.quota_grace
    with app.sessions() as session:
        rows = session.execute(
            select(m.Alert.id, m.Alert.kind, m.Alert.status, m.Alert.title, m.Alert.evidence)
            .where(
                m.Alert.kind.in_(SOURCE_AND_SEND_KINDS),
                m.Alert.status.in_(("open", "acknowledged")),
            )
            .order_by(m.Alert.id)
        ).all()
    return [
        {
            "id": i,
            "kind": kind,
            "status": status,
            "title": title,
            "failing": kind != "source_quota" or quota_failing(dict(ev or {}), now, grace),
        }
        for i, kind, status, title, ev in rows
    ]
