"""Use-cases on the queue of cases (read side): listing, showing, exporting."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from listener import models as m
from listener.errors import NotFound
from listener.pipeline import OPEN_STATUSES

if TYPE_CHECKING:
    from listener.app import App


def _primary_mention(case: m.Case) -> m.Mention | None:
    return case.mentions[0] if case.mentions else None


def _current_draft(case: m.Case) -> m.Draft | None:
    current = [d for d in case.drafts if d.status in ("current", "approved", "sent")]
    return current[-1] if current else (case.drafts[-1] if case.drafts else None)


def _top_offer(case: m.Case) -> m.Offer | None:
    chosen = [o for o in case.offers if o.status not in ("suggested", "declined", "cancelled")]
    if chosen:
        return chosen[-1]
    suggested = sorted((o for o in case.offers if o.status == "suggested"), key=lambda o: o.rank)
    return suggested[0] if suggested else None


def offer_dict(offer: m.Offer | None) -> dict[str, Any] | None:
    if offer is None:
        return None
    return {
        "id": offer.id,
        "key": offer.offer_key,
        "kind": offer.kind,
        "value": offer.value,
        "status": offer.status,
        "reasons": list(offer.reasons or []),
        "code": offer.code,
    }


def case_summary(case: m.Case) -> dict[str, Any]:
    """The stable queue JSON object (see ``listener queue --json``)."""
    mention = _primary_mention(case)
    draft = _current_draft(case)
    author = case.author
    return {
        "id": case.id,
        "status": case.status,
        "priority": case.priority,
        "reasons": list(case.reasons or []),
        "category": case.category,
        "unhappy_score": round(float(case.unhappy_score or 0.0), 6),
        "source": case.source.name if case.source else None,
        "author": author.handle if author else None,
        "text": mention.text if mention else None,
        "url": mention.url if mention else None,
        "draft": draft.text if draft else None,
        "offer": offer_dict(_top_offer(case)),
        # extras (not part of the minimal contract, handy for people and scripts)
        "platform": author.platform if author else None,
        "channel": draft.channel if draft else None,
        "lang": mention.detected_lang if mention else None,
        "author_name": author.display_name if author else None,
        "followers": author.followers if author else None,
        "circumstances": list(case.circumstances or []),
        "assignee": case.assignee,
        "mention_id": mention.id if mention else None,
        "mentions": case.mention_count,
        "published_at": mention.published_at.isoformat() if mention else None,
        "sla_due_at": case.sla_due_at.isoformat() if case.sla_due_at else None,
        "created_at": case.created_at.isoformat(),
    }


def _case_query(statuses: Sequence[str] | None) -> Any:
    stmt = select(m.Case).options(
        selectinload(m.Case.mentions),
        selectinload(m.Case.drafts),
        selectinload(m.Case.offers),
        selectinload(m.Case.source),
    )
    if statuses:
        stmt = stmt.where(m.Case.status.in_(list(statuses)))
    return stmt


def list_queue(
    app: App,
    *,
    statuses: Sequence[str] | None = OPEN_STATUSES,
    source: str | None = None,
    category: str | None = None,
    assignee: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Open cases, most urgent first (priority, then SLA due time)."""
    stmt = _case_query(statuses)
    if source:
        stmt = stmt.join(m.Source, m.Case.source_id == m.Source.id).where(m.Source.name == source)
    if category:
        stmt = stmt.where(m.Case.category == category)
    if assignee:
        stmt = stmt.where(m.Case.assignee == assignee)
    stmt = stmt.order_by(m.Case.priority.desc(), m.Case.sla_due_at.asc(), m.Case.id.asc())
    if limit:
        stmt = stmt.limit(limit)
    with app.sessions() as session:
        return [case_summary(c) for c in session.scalars(stmt).unique()]


def get_case(session: Session, case_id: int) -> m.Case:
    case = session.scalars(_case_query(None).where(m.Case.id == case_id)).unique().one_or_none()
    if case is None:
        raise NotFound(f"no case {case_id}")
    return case


def case_events(session: Session, case_id: int) -> list[m.Event]:
    return list(
        session.scalars(select(m.Event).where(m.Event.case_id == case_id).order_by(m.Event.id))
    )


def source_health(app: App, now: datetime) -> list[dict[str, Any]]:
    """One row per configured source: state, last success, items, errors, next check."""
    from listener.pipeline import sync_sources

    sync_sources(app, now)
    names = [s.name for s in app.settings.sources]
    with app.sessions() as session:
        rows = {
            r.name: r for r in session.scalars(select(m.Source).where(m.Source.name.in_(names)))
        }
    out = []
    for cfg in app.settings.sources:
        r = rows[cfg.name]
        if not cfg.enabled:
            health = "disabled"
        elif r.disabled_reason:
            health = "gone"
        elif r.error_count:
            health = "failing"
        elif r.warning:
            health = "warning"
        elif r.last_success_at is None:
            health = "never polled"
        else:
            health = "ok"
        out.append(
            {
                "name": cfg.name,
                "type": cfg.type,
                "location": r.url or cfg.location,
                "enabled": cfg.enabled and not r.disabled_reason,
                "health": health,
                "last_success_at": r.last_success_at.isoformat() if r.last_success_at else None,
                "last_polled_at": r.last_polled_at.isoformat() if r.last_polled_at else None,
                "next_check_at": r.next_check_at.isoformat() if r.next_check_at else None,
                "items": r.items_total,
                "last_new": r.last_new,
                "error_count": r.error_count,
                "last_error": r.disabled_reason or r.last_error,
                "warning": r.warning,
                "problems": list(r.last_problems or []),
            }
        )
    return out
