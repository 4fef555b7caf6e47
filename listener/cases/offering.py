"""A case's offers and draft versions: the reads and writes that drafting and approval share.

The pipeline calls :func:`suggest_for_case` and :func:`draft_context_for`
when it opens a case (it calls down into this package; nothing here imports
the pipeline); the case actions call :func:`offer_history`,
:func:`rerender_draft` and :func:`new_version`.  The choosing itself is the
pure :mod:`listener.offers`; rendering is :mod:`listener.drafting`.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from listener import models as m
from listener.cases.status import LIVE_DRAFTS, DraftStatus, OfferStatus
from listener.errors import TemplateError
from listener.offers import (
    CaseFacts,
    Limits,
    OfferHistory,
    Suggestion,
    describe,
    suggest_offers,
)

if TYPE_CHECKING:
    from listener.config import OfferSpec, Settings

SYSTEM_ACTOR = "listener"


def limits(settings: Settings) -> Limits:
    rec = settings.recovery
    return Limits(caps=rec.caps, approval=rec.approval, currency=rec.currency)


def facts(case: m.Case) -> CaseFacts:
    return CaseFacts(
        category=case.category,
        priority=int(case.priority or 0),
        unhappy_score=float(case.unhappy_score or 0.0),
        circumstances=tuple(case.circumstances or ()),
    )


def _day_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def granted() -> Any:
    """Offers that were actually given (they count against caps and budgets)."""
    return m.Offer.status == OfferStatus.APPROVED


def earlier_cases(session: Session, settings: Settings, case: m.Case, now: datetime) -> int:
    """The customer's other cases within ``recovery.caps.customer_period``."""
    since = now - settings.recovery.caps.customer_period
    return int(
        session.scalar(
            select(func.count(m.Case.id)).where(
                m.Case.author_id == case.author_id, m.Case.id != case.id, m.Case.created_at >= since
            )
        )
        or 0
    )


def offer_history(
    session: Session, settings: Settings, case: m.Case, now: datetime, agent: str | None = None
) -> OfferHistory:
    """The customer's, team's and agent's recent history, as the offer chooser needs it."""
    period = settings.recovery.caps.customer_period
    since = now - period
    keys = session.scalars(
        select(m.Offer.offer_key)
        .join(m.Case, m.Offer.case_id == m.Case.id)
        .where(
            m.Case.author_id == case.author_id,
            m.Offer.case_id != case.id,
            granted(),
            m.Offer.approved_at >= since,
        )
    ).all()
    day = _day_start(now)
    team = (
        session.scalar(
            select(func.coalesce(func.sum(m.Offer.cost), 0.0)).where(
                granted(), m.Offer.approved_at >= day
            )
        )
        or 0.0
    )
    agent_spent = 0.0
    if agent is not None:
        agent_spent = (
            session.scalar(
                select(func.coalesce(func.sum(m.Offer.cost), 0.0)).where(
                    granted(), m.Offer.approved_at >= day, m.Offer.created_by == agent
                )
            )
            or 0.0
        )
    return OfferHistory(
        earlier_cases=earlier_cases(session, settings, case, now),
        offer_keys=tuple(keys),
        team_spent_today=float(team),
        agent=agent,
        agent_spent_today=float(agent_spent),
        period=period,
    )


def offer_context(spec: OfferSpec, code: str | None = None) -> dict[str, Any]:
    """The draft context's ``offer`` for a catalogue offer (code: None until approval)."""
    return {
        "key": spec.key,
        "kind": spec.kind,
        "description": describe(spec.description or "", code),
        "code": code or "",
        "physical": spec.physical,
        "coupon": spec.coupon,
    }


def chosen_offer(offers: Sequence[m.Offer]) -> m.Offer | None:
    """The offer a reply goes out with: the selected one, else the top live suggestion."""
    selected = [o for o in offers if o.status == OfferStatus.SELECTED]
    if selected:
        return selected[-1]
    suggested = sorted(
        (o for o in offers if o.status == OfferStatus.SUGGESTED), key=lambda o: o.rank
    )
    return suggested[0] if suggested else None


def shown_offer(offers: Sequence[m.Offer]) -> m.Offer | None:
    """The offer a summary shows: the latest chosen or granted one, else the top suggestion."""
    done = (OfferStatus.SUGGESTED, OfferStatus.DECLINED, OfferStatus.CANCELLED)
    chosen = [o for o in offers if o.status not in done]
    return chosen[-1] if chosen else chosen_offer(offers)


def spec_for(settings: Settings, offer: m.Offer) -> OfferSpec:
    """The catalogue entry of a stored offer (rebuilt from the row if it left the catalogue)."""
    from listener.config import OfferSpec

    spec = settings.recovery.offer(offer.offer_key)
    if spec is not None:
        return spec
    return OfferSpec(
        key=offer.offer_key,
        kind=offer.kind,
        value=offer.value,
        cost=offer.cost,
        description=offer.offer_key.replace("_", " "),
    )


def suggest_for_case(
    session: Session, settings: Settings, case: m.Case, now: datetime
) -> list[Suggestion]:
    """Rank the catalogue for a new case and store the eligible suggestions.

    Offers a cap excludes are not stored as rows; the caller records them with
    their reasons (:func:`offers_event_data`), and the case view's
    ``catalogue`` shows them live.  Returns every suggestion, eligible first.
    """
    if not settings.recovery.offers:
        return []
    history = offer_history(session, settings, case, now)
    suggestions = suggest_offers(
        settings.recovery.offers,
        facts(case),
        history,
        limits(settings),
        limit=settings.recovery.suggestions,
    )
    for s in suggestions:
        if s.eligible:
            session.add(offer_row(case.id, s, s.rank, OfferStatus.SUGGESTED, SYSTEM_ACTOR, now))
    session.flush()
    return suggestions


def offer_row(
    case_id: int, s: Suggestion, rank: int, status: OfferStatus, by: str, now: datetime
) -> m.Offer:
    """A judged catalogue offer as a row on the case."""
    return m.Offer(
        case_id=case_id,
        offer_key=s.key,
        kind=s.kind,
        value=s.value,
        cost=s.cost,
        rank=rank,
        reasons=list(s.reasons),
        status=status,
        requires_lead=s.requires_lead,
        created_by=by,
        created_at=now,
        updated_at=now,
    )


def offers_event_data(suggestions: list[Suggestion]) -> list[dict[str, Any]]:
    """The suggestions as an event records them."""
    return [
        {"key": s.key, "rank": s.rank, "cost": s.cost, "excluded": s.excluded} for s in suggestions
    ]


def top_offer_context(suggestions: list[Suggestion], settings: Settings) -> dict[str, Any] | None:
    """The draft context's ``offer`` for the best eligible suggestion (None: no offer)."""
    eligible = [s for s in suggestions if s.eligible]
    if not eligible:
        return None
    spec = settings.recovery.offer(eligible[0].key)
    return offer_context(spec) if spec is not None else None


def draft_context_for(
    session: Session,
    settings: Settings,
    case: m.Case,
    mention: m.Mention,
    channel: str,
    now: datetime,
    offer: dict[str, Any] | None,
) -> dict[str, Any]:
    """Everything a template needs for ``case`` (see listener.drafting.draft_context)."""
    from listener.drafting import draft_context

    author = case.author
    handles = settings.brand.handles
    return draft_context(
        brand_name=settings.brand.name,
        brand_voice=settings.brand.voice,
        brand_handle=handles[0] if handles else None,
        handle=author.handle,
        display_name=author.display_name,
        channel=channel,
        category=case.category,
        circumstances=case.circumstances or [],
        post_text=mention.text,
        published_at=mention.published_at,
        now=now,
        agent_name=settings.recovery.agent_name,
        signature=settings.recovery.signature,
        offer=offer,
        brand_terms=settings.brand.match_terms,
        earlier_cases=earlier_cases(session, settings, case, now),
    )


def primary_mention(case: m.Case, draft: m.Draft | None = None) -> m.Mention | None:
    """The post the reply answers (the draft's, else the case's first)."""
    if draft is not None and draft.in_reply_to_mention_id is not None:
        for mention in case.mentions:
            if mention.id == draft.in_reply_to_mention_id:
                return mention
    return case.mentions[0] if case.mentions else None


def new_version(
    session: Session,
    case: m.Case,
    current: m.Draft,
    text: str,
    subject: str | None,
    author: str,
    now: datetime,
    *,
    template: str | None = None,
    variant: int = 0,
) -> tuple[m.Draft, dict[str, Any]]:
    """Supersede ``current`` with a new version; returns it and its ``draft.edited`` data."""
    diff = "".join(
        difflib.unified_diff(
            (current.text + "\n").splitlines(keepends=True),
            (text + "\n").splitlines(keepends=True),
            fromfile=f"v{current.version}",
            tofile=f"v{current.version + 1}",
        )
    )
    current.status = DraftStatus.SUPERSEDED
    draft = m.Draft(
        case_id=case.id,
        channel=current.channel,
        template=template,
        variant=variant,
        text=text,
        subject=subject,
        status=DraftStatus.CURRENT,
        in_reply_to_mention_id=current.in_reply_to_mention_id,
        version=current.version + 1,
        created_by=author,
        created_at=now,
    )
    session.add(draft)
    session.flush()
    case.drafts.append(draft)
    data: dict[str, Any] = {"draft_id": draft.id, "version": draft.version, "diff": diff}
    if subject != current.subject:
        data["subject"] = {"from": current.subject, "to": subject}
    return draft, data


def rerender_draft(
    session: Session,
    settings: Settings,
    case: m.Case,
    offer: dict[str, Any] | None,
    because: str,
    now: datetime,
    *,
    reply_to: m.Mention | None = None,
) -> tuple[m.Draft | None, dict[str, Any]]:
    """A new machine-written version with ``offer``, when the machine wrote the current one.

    ``reply_to``: the post the new version answers (a customer's follow-up);
    by default the one the current version answers.

    Returns the new draft (None: unchanged, or the agent wrote the text) and
    the event to record: ``draft.edited`` (because ``because`` chose another
    offer) or ``draft.failed``.
    """
    from listener.drafting import render

    live = [d for d in case.drafts if d.status in LIVE_DRAFTS]
    current = live[-1] if live else None
    if current is None or current.created_by != SYSTEM_ACTOR or current.template is None:
        return None, {}
    mention = reply_to or primary_mention(case, current)
    if mention is None:
        return None, {}
    ctx = draft_context_for(session, settings, case, mention, current.channel, now, offer)
    try:
        rendered = render(
            settings.resolve_path(settings.recovery.templates_dir),
            current.channel,
            case.category,
            ctx,
            seed=f"{case.id}:{mention.external_id}",
        )
    except TemplateError as exc:
        return None, {"kind": "draft.failed", "error": str(exc)}
    moved = reply_to is not None and reply_to.id != current.in_reply_to_mention_id
    if rendered.text == current.text and rendered.subject == current.subject and not moved:
        return None, {}
    draft, data = new_version(
        session,
        case,
        current,
        rendered.text,
        rendered.subject,
        SYSTEM_ACTOR,
        now,
        template=rendered.template,
        variant=rendered.variant,
    )
    if reply_to is not None:  # the reply now answers the customer's latest post
        draft.in_reply_to_mention_id = reply_to.id
    return draft, {"kind": "draft.edited", **data, "because": because}
