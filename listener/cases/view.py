"""One case, as the CLI (`listener show`), the case page and the API show it.

:func:`case_summary` is the queue's JSON object for one case (what every
action returns); :func:`case_view` is everything about it: posts with their
classification and corrections, the conversation around them, the author's
history, the reply and its versions with the sending rules' warnings, offers
and what the budget allows, the outbox, and the audit trail as sentences.

Given the ``viewer`` it also says which actions that person may take right
now (:func:`allowed_actions`: role, claim and state, from the one transitions
table) and, for marketing, masks customers' e-mail addresses and coupon
codes everywhere in the view.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from listener import models as m
from listener.cases.audit import mask, sentence
from listener.cases.linking import customer_ids, platforms_of, suggestions_for
from listener.cases.offering import facts, granted, limits, offer_history
from listener.cases.queue import shown_draft, summary
from listener.cases.sending import CHANNEL_LIMITS, Reply, Rules, violations
from listener.cases.status import (
    OUTBOX_WAITING,
    TRANSITIONS,
    Action,
    CaseStatus,
    Claim,
    DraftStatus,
    OutboxStatus,
)
from listener.cases.work import Actor, current_draft, get_case
from listener.clock import utcnow
from listener.errors import NotFound
from listener.offers import suggest_offers
from listener.permissions import can
from listener.policy import x_weighted_length

if TYPE_CHECKING:
    from listener.app import App


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def case_summary(session: Session, case_id: int, now: datetime | None = None) -> dict[str, Any]:
    """The stable queue JSON object (``listener queue --json``) for one case, any status."""
    item = summary(session, case_id, now)
    if item is None:
        raise NotFound(f"no case {case_id}")
    return item.contract()


def case_summary_of(app: App, case_id: int) -> dict[str, Any]:
    """:func:`case_summary` in its own session (what every case action returns)."""
    with app.sessions() as session:
        return case_summary(session, case_id)


def is_read_only(role: str) -> bool:
    return not can(role, "edit_draft")


# ---------------------------------------------------------------------------
# what the viewer may do


def allowed_actions(
    status: str,
    assignee: str | None,
    viewer: Actor | None,
    *,
    manual_reply_waiting: bool = False,
    reply_in_flight: bool = False,
) -> dict[str, bool]:
    """Each action's name → whether ``viewer`` may take it now (buttons follow this)."""
    out = {a.value: False for a in Action}
    if viewer is None:
        return out
    mine = assignee is None or assignee == viewer.username
    for action in Action:
        move = TRANSITIONS[action]
        if status not in move.sources or not can(viewer.role, action.value):
            continue
        if move.claim is Claim.HOLDER and not (mine or viewer.is_lead):
            continue
        out[action.value] = True
    held_by_other = assignee is not None and assignee != viewer.username
    out[Action.CLAIM] = out[Action.CLAIM] and (not held_by_other or can(viewer.role, "force_claim"))
    out[Action.CLAIM] = out[Action.CLAIM] and assignee != viewer.username
    out[Action.RELEASE] = out[Action.RELEASE] and assignee is not None
    out[Action.MARK_SENT] = out[Action.MARK_SENT] and manual_reply_waiting
    out[Action.RESOLVE] = out[Action.RESOLVE] and not reply_in_flight
    out[Action.FULFIL] = False  # offered per gift, not as a case button
    return out


# ---------------------------------------------------------------------------
# the view


def _posts(session: Session, case: m.Case) -> list[dict[str, Any]]:
    ids = [x.id for x in case.mentions]
    classes: dict[int, m.Classification] = {}
    corrections: dict[int, m.Correction] = {}
    if ids:
        for c in session.scalars(
            select(m.Classification)
            .where(m.Classification.mention_id.in_(ids))
            .order_by(m.Classification.id)
        ):
            classes[c.mention_id] = c
        for k in session.scalars(
            select(m.Correction).where(m.Correction.mention_id.in_(ids)).order_by(m.Correction.id)
        ):
            corrections[k.mention_id] = k
    posts = []
    for x in case.mentions:
        cl, co = classes.get(x.id), corrections.get(x.id)
        posts.append(
            {
                "id": x.id,
                "external_id": x.external_id,
                "author": x.author.handle if x.author else None,
                "platform": x.author.platform if x.author else None,
                "source": x.source.name if x.source else None,
                "url": x.url,
                "title": x.title,
                "text": x.text,
                "published_at": _iso(x.published_at),
                "label": x.label,
                "unhappy": x.unhappy,
                "unhappy_score": x.unhappy_score,
                "category": x.category,
                "classification": None
                if cl is None
                else {
                    "label": cl.label,
                    "probabilities": dict(cl.probabilities or {}),
                    "unhappy_score": cl.unhappy_score,
                    "category": cl.category,
                    "category_score": cl.category_score,
                    "circumstances": list(cl.circumstances or []),
                    "model_version": cl.model_version,
                },
                "correction": None
                if co is None
                else {
                    "unhappy": co.unhappy,
                    "category": co.category,
                    "actor": co.actor,
                    "created_at": _iso(co.created_at),
                },
            }
        )
    return posts


def _conversation(session: Session, case: m.Case, limit: int = 50) -> list[dict[str, Any]]:
    """Posts in the same conversations as the case's posts that are not in the case."""
    conv_ids = sorted({x.conversation_id for x in case.mentions if x.conversation_id})
    if not conv_ids:
        return []
    rows = session.execute(
        select(m.Mention.id, m.Mention.text, m.Mention.url, m.Mention.published_at, m.Author.handle)
        .join(m.Author, m.Author.id == m.Mention.author_id)
        .where(
            m.Mention.conversation_id.in_(conv_ids),
            or_(m.Mention.case_id.is_(None), m.Mention.case_id != case.id),
        )
        .order_by(m.Mention.published_at)
        .limit(limit)
    ).all()
    return [
        {
            "id": r.id,
            "text": r.text,
            "url": r.url,
            "published_at": _iso(r.published_at),
            "author": r.handle,
        }
        for r in rows
    ]


def _history(session: Session, case: m.Case, limit: int = 20) -> dict[str, Any]:
    # every account of the customer (linked across platforms), merged cases left out
    people = customer_ids(session, case.author) if case.author else [case.author_id]
    earlier = session.scalars(
        select(m.Case)
        .where(
            m.Case.author_id.in_(people),
            m.Case.id != case.id,
            m.Case.merged_into_id.is_(None),
        )
        .order_by(m.Case.id.desc())
        .limit(limit)
    ).all()
    offers = session.scalars(
        select(m.Offer)
        .join(m.Case, m.Offer.case_id == m.Case.id)
        .where(m.Case.author_id.in_(people), m.Case.id != case.id, granted())
        .order_by(m.Offer.id.desc())
        .limit(limit)
    ).all()
    posts = session.scalar(
        select(func.count()).select_from(m.Mention).where(m.Mention.author_id.in_(people))
    )
    return {
        "earlier_cases": [
            {
                "id": c.id,
                "status": c.status,
                "category": c.category,
                "created_at": _iso(c.created_at),
                "recovered": c.recovered,
            }
            for c in earlier
        ],
        "offers_received": [
            {
                "case_id": o.case_id,
                "key": o.offer_key,
                "kind": o.kind,
                "value": o.value,
                "cost": o.cost,
                "approved_at": _iso(o.approved_at),
            }
            for o in offers
        ],
        "posts_seen": int(posts or 0),
    }


def _draft(case: m.Case, app: App) -> dict[str, Any] | None:
    """The reply as the editor shows it, with its length and the sending rules' warnings."""
    draft = shown_draft(case.drafts)
    if draft is None:
        return None
    weighted = draft.channel == "x_reply"
    warnings: list[str] = []
    if draft.status == DraftStatus.CURRENT:
        mention = next(
            (x for x in case.mentions if x.id == draft.in_reply_to_mention_id),
            case.mentions[0] if case.mentions else None,
        )
        author = case.author
        reply = Reply(
            text=draft.text,
            channel=draft.channel,
            author_handle=author.handle if author else None,
            recipient=(author.email if draft.channel == "email" else author.handle)
            if author
            else None,
            in_reply_to=mention.external_id if mention else None,
            target_text=mention.text if mention else None,
        )
        warnings = violations(reply, Rules.from_settings(app.settings))
    return {
        "id": draft.id,
        "version": draft.version,
        "channel": draft.channel,
        "status": draft.status,
        "template": draft.template,
        "subject": draft.subject,
        "text": draft.text,
        "created_by": draft.created_by,
        "created_at": _iso(draft.created_at),
        "length": x_weighted_length(draft.text) if weighted else len(draft.text),
        "limit": CHANNEL_LIMITS.get(draft.channel),
        "weighted": weighted,
        "warnings": warnings,
    }


def case_view(
    app: App, case_id: int, *, viewer: Actor | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Everything about one case (see the module docs), as JSON-safe data."""
    from listener.outbox import message_dict

    now = now or utcnow()
    settings = app.settings
    with app.sessions() as session:
        case = get_case(session, case_id)
        out = case_summary(session, case_id, now)
        author = case.author
        out["author_detail"] = {
            "handle": author.handle,
            "name": author.display_name,
            "platform": author.platform,
            "followers": author.followers,
            "verified": author.verified,
            "url": author.url,
            "email": author.email,
        }
        out["posts"] = _posts(session, case)
        # one customer across sources: every platform they used, and possible links
        out["platforms"] = platforms_of(case.mentions)
        out["merged_into_id"] = case.merged_into_id
        out["merged_from"] = list(
            session.scalars(
                select(m.Case.id).where(m.Case.merged_into_id == case.id).order_by(m.Case.id)
            )
        )
        out["link_suggestions"] = suggestions_for(session, case.id)
        out["conversation"] = _conversation(session, case)
        out["history"] = _history(session, case)
        out["reply"] = _draft(case, app)
        out["drafts"] = [
            {
                "id": d.id,
                "version": d.version,
                "channel": d.channel,
                "status": d.status,
                "template": d.template,
                "subject": d.subject,
                "text": d.text,
                "created_by": d.created_by,
                "created_at": _iso(d.created_at),
            }
            for d in case.drafts
        ]
        live = current_draft(case)
        out["draft_version"] = live.version if live is not None else out["draft_version"]
        out["offers"] = [
            {
                "id": o.id,
                "key": o.offer_key,
                "kind": o.kind,
                "value": o.value,
                "cost": o.cost,
                "rank": o.rank,
                "status": o.status,
                "reasons": list(o.reasons or []),
                "code": o.code,
                "fulfilment_status": o.fulfilment_status,
                "requires_lead": o.requires_lead,
                "created_by": o.created_by,
                "approved_by": o.approved_by,
                "approved_at": _iso(o.approved_at),
            }
            for o in case.offers
        ]
        history = offer_history(session, settings, case, now, agent=case.assignee)
        caps = settings.recovery.caps
        out["budget"] = {
            "currency": settings.recovery.currency,
            "team_spent_today": history.team_spent_today,
            "team_left_today": None
            if caps.daily_budget is None
            else max(0.0, caps.daily_budget - history.team_spent_today),
            "agent": history.agent,
            "agent_spent_today": history.agent_spent_today,
            "agent_left_today": None
            if caps.agent_daily_budget is None or history.agent is None
            else max(0.0, caps.agent_daily_budget - history.agent_spent_today),
            "lead_above": settings.recovery.approval.lead_above,
        }
        out["catalogue"] = [
            s.as_dict()
            for s in suggest_offers(
                settings.recovery.offers, facts(case), history, limits(settings), limit=None
            )
        ]
        messages = list(
            session.scalars(
                select(m.OutboxMessage)
                .where(m.OutboxMessage.case_id == case.id)
                .order_by(m.OutboxMessage.id)
            )
        )
        out["outbox"] = [message_dict(r) for r in messages]
        currency = settings.recovery.currency
        out["events"] = [
            {
                "id": e.id,
                "at": _iso(e.at),
                "actor": e.actor,
                "kind": e.kind,
                "mention_id": e.mention_id,
                "data": dict(e.data or {}),
                "text": sentence(e.kind, e.actor, e.data, currency),
            }
            for e in session.scalars(
                select(m.Event).where(m.Event.case_id == case.id).order_by(m.Event.id)
            )
        ]
        out.update(
            {
                "claimed_at": _iso(case.claimed_at),
                "first_response_at": _iso(case.first_response_at),
                "resolved_at": _iso(case.resolved_at),
                "recovered": case.recovered,
                "recovered_at": _iso(case.recovered_at),
                "snoozed": case.snoozed_until is not None and case.snoozed_until > now,
                "sla_seconds": (
                    int((case.sla_due_at - now).total_seconds()) if case.sla_due_at else None
                ),
            }
        )
        from listener.channels.registry import is_manual

        waiting = [r for r in messages if r.status in OUTBOX_WAITING]
        manual = any(
            r.status in (OutboxStatus.PENDING, OutboxStatus.FAILED) and is_manual(r.channel)
            for r in messages
        )
        out["can"] = allowed_actions(
            case.status,
            case.assignee,
            viewer,
            manual_reply_waiting=manual and case.status == CaseStatus.APPROVED,
            reply_in_flight=bool(waiting),
        )
        out["read_only"] = _read_only_reason(case, viewer)
        codes = [o.code for o in case.offers if o.code]
    if viewer is not None and viewer.role == "marketing":
        out = mask(out, settings.recovery.coupon_prefix, codes)
    return out


def _read_only_reason(case: m.Case, viewer: Actor | None) -> str | None:
    """Why ``viewer`` can only read this case (None: they can work it)."""
    if viewer is None:
        return None
    if is_read_only(viewer.role):
        return f"the {viewer.role} role is read-only"
    if case.assignee and case.assignee != viewer.username and not viewer.is_lead:
        return f"{case.assignee} is working on this case"
    return None
