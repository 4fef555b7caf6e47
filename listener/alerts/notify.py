"""Notifications: each new alert is sent once to the webhook and to each e-mail address.

A new alert gets one ``alert_notifications`` row per target in the transaction
that opens it (updates and re-opens within the cool-down get none: that is the
de-duplication).  :func:`deliver_due` then sends what is due: it claims a row
with a conditional ``UPDATE`` (status ``sending`` and a lease, committed before
any network I/O, so two workers never send the same row), sends, and records
``sent`` — or backs off and retries (``alerts.notify_attempts``).  A process
killed between the send and the record leaves the row ``sending``; it is sent
again once its lease has run out, so a crash can cause a second copy, never a
lost alert.  The payload carries the alert id for receivers that de-duplicate.

* **webhook** (``alerts.webhook_url``): ``POST`` JSON ``{"text": …, "alert": {…}}``;
  ``text`` is Slack-compatible (mrkdwn, with ``& < >`` escaped so a post quoted in
  an alert can neither ping ``<!channel>`` nor forge a link).  The URL is a
  secret (Slack's carries its token): it is never logged or stored.
* **e-mail** (``alerts.email_to``): through the ``email:`` SMTP settings, the same
  channel replies use.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from listener import models as m
from listener.alerts.store import alert_dict
from listener.clock import utcnow

if TYPE_CHECKING:
    from listener.app import App
    from listener.config import Settings

log = structlog.get_logger("listener.alerts")

LEASE = timedelta(minutes=2)
RETRY_BASE = timedelta(seconds=30)
ICONS = {
    "spike": ":chart_with_upwards_trend:",
    "negative_shift": ":warning:",
    "source_silent": ":mute:",
    "source_auth": ":lock:",
    "source_quota": ":hourglass:",
    "send_failing": ":outbox_tray:",
}


def targets(settings: Settings) -> list[tuple[str, str]]:
    """(channel, target) pairs a new alert goes to."""
    out: list[tuple[str, str]] = []
    a = settings.alerts
    if a.webhook_url is not None and a.webhook_url.get_secret_value():
        out.append(("webhook", "webhook"))
    out.extend(("email", addr) for addr in a.email_to)
    return out


def queue_for(session: Session, settings: Settings, alert_id: int, now: datetime) -> int:
    """One pending notification per target for a new alert (in the opening transaction)."""
    rows = targets(settings)
    for channel, target in rows:
        session.add(
            m.AlertNotification(
                alert_id=alert_id,
                channel=channel,
                target=target,
                status="pending",
                attempts=0,
                created_at=now,
            )
        )
    return len(rows)


def slack_escape(text: str) -> str:
    """Text safe inside a Slack message: no mentions, links or formatting injected."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webhook_payload(alert: dict[str, Any], brand: str) -> dict[str, Any]:
    """The JSON body POSTed for one alert (pure)."""
    icon = ICONS.get(alert["kind"], ":bell:")
    text = (
        f"{icon} *{slack_escape(brand)}: {slack_escape(alert['title'])}*\n"
        f"{slack_escape(alert['explanation'])}\n"
        f"_alert #{alert['id']} · {alert['kind']} · {alert['severity']} · "
        f"since {alert['started_at']}_"
    )
    return {"text": text, "alert": alert}


def email_text(alert: dict[str, Any], brand: str) -> tuple[str, str]:
    """(subject, body) of the e-mail for one alert (pure)."""
    subject = f"[Listener] {brand}: {alert['title']}"[:250]
    lines = [
        alert["title"],
        "",
        alert["explanation"],
        "",
        f"Alert #{alert['id']} · {alert['kind']} · {alert['severity']}",
        f"Started: {alert['started_at']}",
    ]
    posts = alert.get("evidence", {}).get("top_posts") or []
    if posts:
        lines += ["", "Most-reached posts:"]
        for p in posts[:3]:
            lines.append(f"- @{p.get('author')}: {p.get('text')} {p.get('url') or ''}".rstrip())
    lines += ["", "Acknowledge or resolve it with `listener alerts ack|resolve ID` or on /alerts."]
    return subject, "\n".join(lines)


def _claim(app: App, row_id: int, now: datetime) -> bool:
    n = m.AlertNotification
    with app.sessions() as session, session.begin():
        res = session.execute(
            update(n)
            .where(
                n.id == row_id,
                or_(
                    (n.status == "pending")
                    & or_(n.next_attempt_at.is_(None), n.next_attempt_at <= now),
                    (n.status == "sending") & (n.lease_until < now),
                ),
            )
            .values(status="sending", attempts=n.attempts + 1, lease_until=now + LEASE)
        )
        return bool(res.rowcount)  # type: ignore[attr-defined]


def _due_ids(app: App, now: datetime) -> list[int]:
    n = m.AlertNotification
    with app.sessions() as session:
        return list(
            session.scalars(
                select(n.id)
                .where(
                    or_(
                        (n.status == "pending")
                        & or_(n.next_attempt_at.is_(None), n.next_attempt_at <= now),
                        (n.status == "sending") & (n.lease_until < now),
                    )
                )
                .order_by(n.id)
                .limit(100)
            )
        )


def deliver_due(app: App, now: datetime | None = None) -> dict[str, int]:
    """Send every due notification; returns counts by outcome (sent, retry, failed)."""
    now = now or utcnow()
    done = {"sent": 0, "retry": 0, "failed": 0}
    for row_id in _due_ids(app, now):
        if not _claim(app, row_id, now):
            continue
        with app.sessions() as session:
            row = session.get_one(m.AlertNotification, row_id)
            alert = alert_dict(session.get_one(m.Alert, row.alert_id))
            channel, target, attempts = row.channel, row.target, row.attempts
        try:
            _send(app.settings, channel, target, alert)
        except Exception as exc:  # recorded on the row, retried with backoff
            error = f"{type(exc).__name__}: {exc}"[:1000]
            outcome = _record_failure(app, row_id, attempts, error, now)
            done[outcome] += 1
            log.warning(
                "alert.notify_failed",
                alert_id=alert["id"],
                channel=channel,
                attempts=attempts,
                error=error,
                outcome=outcome,
            )
            continue
        with app.sessions() as session, session.begin():
            row = session.get_one(m.AlertNotification, row_id)
            row.status, row.sent_at, row.lease_until, row.last_error = "sent", utcnow(), None, None
        done["sent"] += 1
        log.info("alert.notified", alert_id=alert["id"], channel=channel)
    return done


def _record_failure(app: App, row_id: int, attempts: int, error: str, now: datetime) -> str:
    with app.sessions() as session, session.begin():
        row = session.get_one(m.AlertNotification, row_id)
        row.last_error, row.lease_until = error, None
        if attempts >= app.settings.alerts.notify_attempts:
            row.status, row.next_attempt_at = "failed", None
            return "failed"
        row.status = "pending"
        row.next_attempt_at = now + min(RETRY_BASE * 2 ** (attempts - 1), timedelta(hours=1))
        return "retry"


def _send(settings: Settings, channel: str, target: str, alert: dict[str, Any]) -> None:
    brand = settings.brand.name
    if channel == "webhook":
        import httpx

        url = settings.alerts.webhook_url
        if url is None:
            raise RuntimeError("alerts.webhook_url is no longer configured")
        response = httpx.post(
            url.get_secret_value(),
            json=webhook_payload(alert, brand),
            headers={
                "User-Agent": settings.polling.user_agent,
                "Idempotency-Key": f"listener-alert-{alert['id']}",
            },
            timeout=settings.alerts.webhook_timeout.total_seconds(),
            follow_redirects=False,
        )
        if not 200 <= response.status_code < 300:
            raise RuntimeError(f"the webhook answered HTTP {response.status_code}")
        return
    if channel == "email":
        from listener.channels.email import EmailChannel
        from listener.channels.registry import Outbound

        subject, body = email_text(alert, brand)
        EmailChannel(settings.email, brand_name=brand).send(
            Outbound(
                idempotency_key=f"listener-alert-{alert['id']}-{target}",
                channel="email",
                text=body,
                in_reply_to=None,
                recipient=target,
                subject=subject,
            )
        )
        return
    raise RuntimeError(f"unknown notification channel {channel!r}")
