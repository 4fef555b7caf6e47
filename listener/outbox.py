"""The outbox: approved replies sent exactly once, whatever crashes in between.

Approval writes an :class:`~listener.models.OutboxMessage` (``pending``) in the
same transaction as the approval event.  A sender then, for each message:

1. **claims** it with a lease and records the intent — status ``sending``,
   ``attempts + 1``, ``lease_owner``/``lease_until`` — and commits.  On
   PostgreSQL the row is picked with ``SELECT … FOR UPDATE SKIP LOCKED``;
   SQLite serialises writers (``BEGIN IMMEDIATE``).  Two workers never hold
   the same message: a lease is only taken over once it has expired.
2. if the message was already ``sending`` (a previous sender crashed or
   timed out, so the outcome is unknown) asks the channel
   :meth:`~listener.channels.base.Channel.find_existing` first;
3. runs the sending rules again (:mod:`listener.cases.sending`: the very
   guard approval ran, on the same inputs), then **sends**;
4. **records** the result in one short transaction: ``sent`` with the
   external id, the case ``sent`` (first response time), the draft ``sent``,
   and a ``reply.sent`` event.

Transient failures (network, 5xx, rate limits, and missing or bad channel
credentials, which an operator can fix) keep the row ``sending`` with
``next_attempt_at`` backed off exponentially, so the retry asks
``find_existing`` first.  Permanent ones (policy, refused recipient, refused
login, too many attempts) mark it ``failed`` with the reason on the
row and an ``outbox.failed`` event.  Replies on manual channels (blog
comments, DMs) are never sent here; a person posts them and marks them sent.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from listener import models as m
from listener.cases.sending import Reply, Rules, violations
from listener.cases.status import CaseStatus, DraftStatus, OutboxStatus
from listener.channels.registry import MANUAL_CHANNELS, Outbound, get_channel
from listener.clock import utcnow
from listener.errors import (
    DeliveryError,
    ListenerError,
    NotFound,
    PolicyViolation,
    SourceFailing,
    TransientError,
)

if TYPE_CHECKING:
    from listener.app import App
    from listener.config import Settings

log = structlog.get_logger("listener.outbox")

SYSTEM_ACTOR = "listener"


def default_worker() -> str:
    """``host:pid``: who holds a lease."""
    return f"{socket.gethostname()}:{os.getpid()}"


# ---------------------------------------------------------------------------
# the sending rules (listener.cases.sending: the same guard approval ran)


def already_replied(
    session: Session, channel: str, in_reply_to: str | None, *, exclude_id: int | None = None
) -> bool:
    """Whether another live outbox message answers the same post on the same channel."""
    if not in_reply_to:
        return False
    stmt = select(m.OutboxMessage.id).where(
        m.OutboxMessage.channel == channel,
        m.OutboxMessage.in_reply_to == in_reply_to,
        m.OutboxMessage.status != OutboxStatus.FAILED,
    )
    if exclude_id is not None:
        stmt = stmt.where(m.OutboxMessage.id != exclude_id)
    return session.scalars(stmt.limit(1)).first() is not None


def reply_of(session: Session, row: m.OutboxMessage) -> Reply:
    """An outbox message as the sending rules see it (as approval saw it)."""
    case = session.get_one(m.Case, row.case_id)
    target_text = target_url = None
    if row.draft_id is not None:
        draft = session.get(m.Draft, row.draft_id)
        if draft is not None and draft.in_reply_to_mention_id is not None:
            mention = session.get(m.Mention, draft.in_reply_to_mention_id)
            target_text = mention.text if mention is not None else None
            target_url = mention.url if mention is not None else None
    return Reply(
        text=row.text,
        channel=row.channel,
        author_handle=case.author.handle if case.author else None,
        recipient=row.recipient,
        in_reply_to=row.in_reply_to,
        target_text=target_text,
        target_url=target_url,
        already_replied=already_replied(session, row.channel, row.in_reply_to, exclude_id=row.id),
    )


def check_message(session: Session, settings: Settings, row: m.OutboxMessage) -> list[str]:
    """The sending rules for one outbox row, right before it is sent."""
    return violations(reply_of(session, row), Rules.from_settings(settings))


# ---------------------------------------------------------------------------
# claiming


def _claimable(now: datetime) -> Any:
    return (
        select(m.OutboxMessage)
        .where(
            m.OutboxMessage.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING)),
            m.OutboxMessage.channel.not_in(sorted(MANUAL_CHANNELS)),
            or_(m.OutboxMessage.lease_until.is_(None), m.OutboxMessage.lease_until < now),
            or_(m.OutboxMessage.next_attempt_at.is_(None), m.OutboxMessage.next_attempt_at <= now),
        )
        .order_by(m.OutboxMessage.id)
    )


def claim(
    app: App, *, worker: str, message_id: int | None = None, now: datetime | None = None
) -> tuple[int, bool] | None:
    """Take the lease on one due message and record the attempt (committed).

    Returns ``(message id, recovering)`` — ``recovering`` when a previous
    attempt's outcome is unknown — or ``None`` when nothing is due.
    """
    now = now or utcnow()
    lease = app.settings.recovery.outbox_lease
    with app.sessions() as session, session.begin():
        stmt = _claimable(now)
        if message_id is not None:
            stmt = stmt.where(m.OutboxMessage.id == message_id)
        if session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        row = session.scalars(stmt.limit(1)).first()
        if row is None:
            return None
        recovering = row.status == OutboxStatus.SENDING
        row.status = OutboxStatus.SENDING
        row.attempts = (row.attempts or 0) + 1
        row.lease_owner, row.lease_until = worker, now + lease
        row.updated_at = now
        session.add(
            m.Event(
                actor=worker,
                kind="outbox.sending",
                case_id=row.case_id,
                at=now,
                data={
                    "outbox_id": row.id,
                    "attempt": row.attempts,
                    "channel": row.channel,
                    "recovering": recovering,
                },
            )
        )
        return row.id, recovering


# ---------------------------------------------------------------------------
# recording


def _outbound(settings: Settings, row: m.OutboxMessage, reply: Reply) -> Outbound:
    """The message for the channel, carrying what the sending rules were given."""
    rules = Rules.from_settings(settings)
    return Outbound(
        idempotency_key=row.idempotency_key,
        channel=row.channel,
        text=row.text,
        in_reply_to=row.in_reply_to,
        recipient=row.recipient,
        brand_handles=rules.brand_handles,
        target_text=reply.target_text,
        brand_terms=rules.brand_terms,
        already_replied=reply.already_replied,
        allowed_domains=rules.allowed_domains,
        author_handle=reply.author_handle,
        subject=row.subject,
        case_id=row.case_id,
        outbox_id=row.id,
        target_url=reply.target_url,
        created_at=row.created_at,
    )


def mark_row_sent(
    session: Session, row: m.OutboxMessage, external_id: str, now: datetime
) -> m.Case:
    """The message sent, its draft sent, the case answered (no event: the caller records it)."""
    row.status, row.external_id, row.sent_at = OutboxStatus.SENT, external_id, now
    row.lease_owner = row.lease_until = None
    row.last_error = None
    row.updated_at = now
    case = session.get_one(m.Case, row.case_id)
    if case.status in (
        CaseStatus.APPROVED,
        CaseStatus.CLAIMED,
        CaseStatus.DRAFTED,
        CaseStatus.NEW,
    ):
        case.status = CaseStatus.SENT
    if case.first_response_at is None:
        case.first_response_at = now
    case.updated_at = now
    if row.draft_id is not None:
        draft = session.get(m.Draft, row.draft_id)
        if draft is not None:
            draft.status = DraftStatus.SENT
    return case


def record_sent(
    app: App,
    message_id: int,
    external_id: str,
    *,
    worker: str,
    recovered: bool = False,
    now: datetime | None = None,
) -> None:
    """Mark the message sent and the case answered, in one transaction."""
    now = now or utcnow()
    with app.sessions() as session, session.begin():
        row = _locked(session, message_id)
        if row.status == OutboxStatus.SENT:
            return
        case = mark_row_sent(session, row, external_id, now)
        session.add(
            m.Event(
                actor=worker,
                kind="reply.sent",
                case_id=case.id,
                at=now,
                data={
                    "outbox_id": row.id,
                    "channel": row.channel,
                    "external_id": external_id,
                    "attempts": row.attempts,
                    "recovered": recovered,
                    "manual": False,
                },
            )
        )


def _locked(session: Session, message_id: int) -> m.OutboxMessage:
    stmt = select(m.OutboxMessage).where(m.OutboxMessage.id == message_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = session.scalars(stmt).one_or_none()
    if row is None:
        raise NotFound(f"no outbox message {message_id}")
    return row


def record_failure(
    app: App,
    message_id: int,
    error: str,
    *,
    permanent: bool,
    worker: str,
    now: datetime | None = None,
) -> str:
    """A failed attempt: retry later (backoff) or give up. Returns the new status."""
    now = now or utcnow()
    rec = app.settings.recovery
    with app.sessions() as session, session.begin():
        row = _locked(session, message_id)
        if row.status == OutboxStatus.SENT:
            return "sent"
        row.last_error = error[:2000]
        row.lease_owner = row.lease_until = None
        row.updated_at = now
        if not permanent and row.attempts >= rec.outbox_max_attempts:
            permanent = True
            error = f"gave up after {row.attempts} attempts: {error}"
            row.last_error = error[:2000]
        if permanent:
            row.status = OutboxStatus.FAILED
            row.next_attempt_at = None
            kind, data = (
                "outbox.failed",
                {"outbox_id": row.id, "error": error, "attempts": row.attempts},
            )
        else:
            # stays "sending": the outcome may be unknown, so the retry asks find_existing first
            delay = rec.retry_base * (2 ** min(row.attempts - 1, 10))
            row.next_attempt_at = now + min(delay, timedelta(hours=6))
            kind, data = (
                "outbox.retry",
                {
                    "outbox_id": row.id,
                    "error": error,
                    "attempts": row.attempts,
                    "next_attempt_at": row.next_attempt_at.isoformat(),
                },
            )
        session.add(m.Event(actor=worker, kind=kind, case_id=row.case_id, at=now, data=data))
        return row.status if permanent else "retry"


# ---------------------------------------------------------------------------
# sending


def _send_claimed(app: App, message_id: int, recovering: bool, worker: str) -> str:
    settings = app.settings
    bound = log.bind(outbox_id=message_id, worker=worker)
    with app.sessions() as session:
        row = session.get_one(m.OutboxMessage, message_id)
        reply = reply_of(session, row)
        problems = violations(reply, Rules.from_settings(settings))
        outbound = _outbound(settings, row, reply)
        channel_name = row.channel
    try:
        channel = get_channel(channel_name, settings)
        if recovering:
            existing = channel.find_existing(outbound)
            if existing is not None:
                bound.info("outbox.found_existing", external_id=existing)
                record_sent(app, message_id, existing, worker=worker, recovered=True)
                return "sent"
        if problems:
            raise PolicyViolation("; ".join(problems))
        external_id = channel.send(outbound)
    except PolicyViolation as exc:
        bound.warning("outbox.failed", error=str(exc))
        return record_failure(app, message_id, str(exc), permanent=True, worker=worker)
    except SourceFailing as exc:  # credentials: retried with backoff once someone fixes them
        bound.error("outbox.channel_failing", error=str(exc))
        return record_failure(app, message_id, str(exc), permanent=False, worker=worker)
    except DeliveryError as exc:
        bound.warning("outbox.send_error", error=str(exc), retryable=exc.retryable)
        return record_failure(app, message_id, str(exc), permanent=not exc.retryable, worker=worker)
    except (TransientError, ListenerError, OSError) as exc:
        bound.warning("outbox.send_error", error=str(exc))
        return record_failure(
            app, message_id, str(exc) or type(exc).__name__, permanent=False, worker=worker
        )
    except Exception as exc:  # an unexpected bug: retry later, visibly
        bound.error("outbox.crashed", exc_info=exc)
        return record_failure(
            app,
            message_id,
            f"internal error: {type(exc).__name__}: {exc}",
            permanent=False,
            worker=worker,
        )
    record_sent(app, message_id, external_id, worker=worker, recovered=recovering)
    bound.info("outbox.sent", external_id=external_id)
    return "sent"


def deliver_one(app: App, message_id: int, *, worker: str | None = None) -> str:
    """Send one message if it is due and nobody else holds it.

    Returns ``sent``, ``retry`` (a transient error; backed off), ``failed``,
    or ``skipped`` (not due, already sent, manual, or held by another worker).
    """
    worker = worker or default_worker()
    claimed = claim(app, worker=worker, message_id=message_id)
    if claimed is None:
        return "skipped"
    return _send_claimed(app, claimed[0], claimed[1], worker)


def deliver_pending(
    app: App,
    *,
    should_stop: Callable[[], bool] | None = None,
    limit: int | None = None,
    worker: str | None = None,
) -> int:
    """Send every due message (oldest first) until none is left; returns how many were sent."""
    worker = worker or default_worker()
    sent = 0
    tried = 0
    while limit is None or tried < limit:
        if should_stop is not None and should_stop():
            break
        claimed = claim(app, worker=worker)
        if claimed is None:
            break
        tried += 1
        if _send_claimed(app, claimed[0], claimed[1], worker) == "sent":
            sent += 1
    return sent


def outbox_rows(app: App, case_id: int | None = None) -> list[dict[str, Any]]:
    """The outbox as JSON-safe dicts (newest first)."""
    with app.sessions() as session:
        stmt = select(m.OutboxMessage).order_by(m.OutboxMessage.id.desc())
        if case_id is not None:
            stmt = stmt.where(m.OutboxMessage.case_id == case_id)
        return [message_dict(r) for r in session.scalars(stmt)]


def message_dict(r: m.OutboxMessage) -> dict[str, Any]:
    return {
        "id": r.id,
        "case_id": r.case_id,
        "channel": r.channel,
        "status": r.status,
        "attempts": r.attempts,
        "recipient": r.recipient,
        "in_reply_to": r.in_reply_to,
        "subject": r.subject,
        "text": r.text,
        "external_id": r.external_id,
        "last_error": r.last_error,
        "next_attempt_at": r.next_attempt_at.isoformat() if r.next_attempt_at else None,
        "sent_at": r.sent_at.isoformat() if r.sent_at else None,
        "created_by": r.created_by,
        "created_at": r.created_at.isoformat() if r.created_at else None,
    }
