"""Service recovery use-cases: claim, edit, choose an offer, approve, send, follow up.

Every function here is one action shared by the CLI, the web app, the API and
the workers.  Each runs in one transaction, checks the actor's role
(:mod:`listener.permissions`), writes an append-only ``events`` row saying
who did what and when, and returns the case as a JSON-safe dict
(:func:`listener.cases.case_summary`).

Case states::

    new → drafted → claimed → approved → sent → resolved
                        ↘ rejected            (snoozed: a flag with an end time)

Nothing is sent without an approval: :func:`approve_case` is the only writer
of outbox messages, and it re-checks the policy guard, the caps and the
approval tier while holding the budget lock (a PostgreSQL advisory lock;
SQLite serialises writers), so concurrent approvals never overspend.

Roles come from the ``role`` argument; where a function has none, from the
``users`` table (``agent`` when the person is unknown).
"""

from __future__ import annotations

import difflib
import statistics
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from listener import models as m
from listener.cases import case_summary, get_case
from listener.clock import utcnow
from listener.errors import Conflict, NotFound, PermissionDenied, PolicyViolation, TemplateError
from listener.offers import (
    CODE_PLACEHOLDER,
    CaseFacts,
    Limits,
    OfferHistory,
    Suggestion,
    cap_violations,
    describe,
    judge,
    new_coupon_code,
    suggest_offers,
)
from listener.outbox import allowed_domains, already_replied, channel_limit, guard_violations
from listener.permissions import may_approve_offer, require

if TYPE_CHECKING:
    from listener.app import App
    from listener.config import OfferSpec, Settings

log = structlog.get_logger("listener.recovery")

SYSTEM_ACTOR = "listener"
EDITABLE = ("new", "drafted", "claimed")
CLOSED = ("sent", "resolved", "rejected")
LIVE_OFFER = ("suggested", "selected")
FULFILMENT = ("to_send", "sent")
BUDGET_LOCK_KEY = 0x4C53_5243  # "LSRC": serialises approvals on PostgreSQL


# ---------------------------------------------------------------------------
# helpers


def _role_of(session: Session, actor: str, role: str | None) -> str:
    if role is not None:
        return role
    found = session.scalars(select(m.User.role).where(m.User.username == actor)).first()
    return found or "agent"


def _event(
    session: Session, case: m.Case, actor: str, event_kind: str, now: datetime, /, **data: Any
) -> None:
    session.add(m.Event(actor=actor, kind=event_kind, case_id=case.id, at=now, data=data))


def _load(session: Session, case_id: int) -> m.Case:
    """The case, locked for this transaction on PostgreSQL."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(m.Case.id).where(m.Case.id == case_id).with_for_update()).first()
    return get_case(session, case_id)


def _summary(session: Session, case: m.Case) -> dict[str, Any]:
    session.flush()
    session.refresh(case)
    return case_summary(case)


def _current_draft(case: m.Case) -> m.Draft | None:
    live = [d for d in case.drafts if d.status in ("current", "approved")]
    return live[-1] if live else None


def _check_claim(case: m.Case, actor: str, role: str) -> None:
    """Someone else's claim blocks agents (leads and admins may act on it)."""
    if case.assignee and case.assignee != actor and role not in ("lead", "admin"):
        raise Conflict(f"case {case.id} is claimed by {case.assignee}")


def _primary_mention(case: m.Case, draft: m.Draft | None = None) -> m.Mention | None:
    if draft is not None and draft.in_reply_to_mention_id is not None:
        for mention in case.mentions:
            if mention.id == draft.in_reply_to_mention_id:
                return mention
    return case.mentions[0] if case.mentions else None


def _limits(settings: Settings) -> Limits:
    rec = settings.recovery
    return Limits(caps=rec.caps, approval=rec.approval, currency=rec.currency)


def _day_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _granted() -> Any:
    return m.Offer.status.in_(("approved",))


def offer_history(
    session: Session, settings: Settings, case: m.Case, now: datetime, agent: str | None = None
) -> OfferHistory:
    """The customer's, team's and agent's recent history, as the offer chooser needs it."""
    period = settings.recovery.caps.customer_period
    since = now - period
    earlier = (
        session.scalar(
            select(func.count(m.Case.id)).where(
                m.Case.author_id == case.author_id, m.Case.id != case.id, m.Case.created_at >= since
            )
        )
        or 0
    )
    keys = session.scalars(
        select(m.Offer.offer_key)
        .join(m.Case, m.Offer.case_id == m.Case.id)
        .where(
            m.Case.author_id == case.author_id,
            m.Offer.case_id != case.id,
            _granted(),
            m.Offer.approved_at >= since,
        )
    ).all()
    day = _day_start(now)
    team = (
        session.scalar(
            select(func.coalesce(func.sum(m.Offer.cost), 0.0)).where(
                _granted(), m.Offer.approved_at >= day
            )
        )
        or 0.0
    )
    agent_spent = 0.0
    if agent is not None:
        agent_spent = (
            session.scalar(
                select(func.coalesce(func.sum(m.Offer.cost), 0.0)).where(
                    _granted(), m.Offer.approved_at >= day, m.Offer.created_by == agent
                )
            )
            or 0.0
        )
    return OfferHistory(
        earlier_cases=int(earlier),
        offer_keys=tuple(keys),
        team_spent_today=float(team),
        agent=agent,
        agent_spent_today=float(agent_spent),
        period=period,
    )


def _facts(case: m.Case) -> CaseFacts:
    return CaseFacts(
        category=case.category,
        priority=int(case.priority or 0),
        unhappy_score=float(case.unhappy_score or 0.0),
        circumstances=tuple(case.circumstances or ()),
    )


def _offer_ctx(spec_or_row: Any, code: str | None = None) -> dict[str, Any]:
    from listener.config import COUPON_KINDS, PHYSICAL_KINDS

    kind = spec_or_row.kind
    description = getattr(spec_or_row, "description", None) or ""
    return {
        "key": getattr(spec_or_row, "key", None) or getattr(spec_or_row, "offer_key", ""),
        "kind": kind,
        "description": describe(description, code),
        "code": code or "",
        "physical": kind in PHYSICAL_KINDS,
        "coupon": kind in COUPON_KINDS,
    }


def _chosen_offer(case: m.Case) -> m.Offer | None:
    """The offer a reply goes out with: the selected one, else the top live suggestion."""
    selected = [o for o in case.offers if o.status == "selected"]
    if selected:
        return selected[-1]
    suggested = sorted((o for o in case.offers if o.status == "suggested"), key=lambda o: o.rank)
    return suggested[0] if suggested else None


def _spec_for(settings: Settings, offer: m.Offer) -> OfferSpec:
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


# ---------------------------------------------------------------------------
# drafting with an offer (the pipeline calls these when it opens a case)


def suggest_for_case(
    session: Session,
    settings: Settings,
    case: m.Case,
    now: datetime,
    *,
    record_event: bool = True,
) -> list[Suggestion]:
    """Rank the catalogue for a new case and store the suggestions (status ``suggested``).

    Offers a cap excludes are not stored as rows; the event lists them with the
    reason (``offers.suggested`` with ``record_event``; the pipeline puts the
    list in its ``draft.created`` event instead: :func:`offers_event_data`), and
    :func:`case_detail`'s ``catalogue`` shows them live.
    """
    if not settings.recovery.offers:
        return []
    history = offer_history(session, settings, case, now)
    suggestions = suggest_offers(
        settings.recovery.offers,
        _facts(case),
        history,
        _limits(settings),
        limit=settings.recovery.suggestions,
    )
    for s in suggestions:
        if not s.eligible:
            continue  # listed in the event and, live, in case_detail's catalogue
        session.add(
            m.Offer(
                case_id=case.id,
                offer_key=s.key,
                kind=s.kind,
                value=s.value,
                cost=s.cost,
                rank=s.rank,
                reasons=list(s.reasons),
                status="suggested",
                requires_lead=s.requires_lead,
                created_by=SYSTEM_ACTOR,
                created_at=now,
                updated_at=now,
            )
        )
    session.flush()
    if suggestions and record_event:
        _event(
            session,
            case,
            SYSTEM_ACTOR,
            "offers.suggested",
            now,
            offers=offers_event_data(suggestions),
        )
    return [s for s in suggestions if s.eligible]


def offers_event_data(suggestions: list[Suggestion]) -> list[dict[str, Any]]:
    """The suggestions as an event records them."""
    return [
        {"key": s.key, "rank": s.rank, "cost": s.cost, "excluded": s.excluded} for s in suggestions
    ]


def top_offer_context(suggestions: list[Suggestion], settings: Settings) -> dict[str, Any] | None:
    """The draft context's ``offer`` for the best suggestion (None: no offer)."""
    if not suggestions:
        return None
    spec = settings.recovery.offer(suggestions[0].key)
    return _offer_ctx(spec) if spec is not None else None


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
    earlier = (
        session.scalar(
            select(func.count(m.Case.id)).where(
                m.Case.author_id == case.author_id,
                m.Case.id != case.id,
                m.Case.created_at >= now - settings.recovery.caps.customer_period,
            )
        )
        or 0
    )
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
        earlier_cases=int(earlier),
    )


def rerender_draft(
    session: Session,
    settings: Settings,
    case: m.Case,
    offer: dict[str, Any] | None,
    actor: str,
    now: datetime,
) -> m.Draft | None:
    """A new machine-written draft version with ``offer`` (None if the agent wrote the text)."""
    from listener.drafting import render

    current = _current_draft(case)
    if current is None or current.created_by != SYSTEM_ACTOR or current.template is None:
        return None
    mention = _primary_mention(case, current)
    if mention is None:
        return None
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
        _event(session, case, actor, "draft.failed", now, error=str(exc))
        return None
    if rendered.text == current.text and rendered.subject == current.subject:
        return None
    return _new_version(
        session,
        case,
        current,
        rendered.text,
        rendered.subject,
        SYSTEM_ACTOR,
        now,
        template=rendered.template,
        variant=rendered.variant,
        reason=actor,
    )


def _new_version(
    session: Session,
    case: m.Case,
    current: m.Draft,
    text_: str,
    subject: str | None,
    actor: str,
    now: datetime,
    *,
    template: str | None = None,
    variant: int = 0,
    reason: str | None = None,
) -> m.Draft:
    diff = "".join(
        difflib.unified_diff(
            (current.text + "\n").splitlines(keepends=True),
            (text_ + "\n").splitlines(keepends=True),
            fromfile=f"v{current.version}",
            tofile=f"v{current.version + 1}",
        )
    )
    current.status = "superseded"
    draft = m.Draft(
        case_id=case.id,
        channel=current.channel,
        template=template,
        variant=variant,
        text=text_,
        subject=subject,
        status="current",
        in_reply_to_mention_id=current.in_reply_to_mention_id,
        version=current.version + 1,
        created_by=actor,
        created_at=now,
    )
    session.add(draft)
    session.flush()
    data: dict[str, Any] = {"draft_id": draft.id, "version": draft.version, "diff": diff}
    if subject != current.subject:
        data["subject"] = {"from": current.subject, "to": subject}
    if reason:
        data["because"] = reason
    _event(session, case, actor, "draft.edited", now, **data)
    return draft


# ---------------------------------------------------------------------------
# claiming


def claim_case(
    app: App,
    case_id: int,
    actor: str,
    *,
    role: str = "agent",
    force: bool = False,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Take the case. Conflict if someone else has it (``force``: leads and admins only)."""
    now = now or utcnow()
    with app.sessions() as session, session.begin():
        require(role, "claim", actor=actor)
        case = _load(session, case_id)
        if case.status in CLOSED or case.status == "approved":
            raise Conflict(f"case {case_id} is {case.status}")
        previous = case.assignee
        if previous and previous != actor:
            if not force:
                raise Conflict(f"case {case_id} is claimed by {previous}")
            require(role, "force_claim", actor=actor)
        case.assignee, case.claimed_at = actor, now
        if case.status in ("new", "drafted"):
            case.status = "claimed"
        case.updated_at = now
        _event(
            session,
            case,
            actor,
            "case.claimed",
            now,
            previous=previous,
            forced=bool(force and previous and previous != actor),
        )
        return _summary(session, case)


def release_case(
    app: App, case_id: int, actor: str, *, role: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Give the case back to the queue (the claimant, or a lead/admin)."""
    now = now or utcnow()
    with app.sessions() as session, session.begin():
        role = _role_of(session, actor, role)
        require(role, "release", actor=actor, owner=case_owner(session, case_id))
        case = _load(session, case_id)
        if not case.assignee:
            raise Conflict(f"case {case_id} is not claimed")
        previous = case.assignee
        case.assignee, case.claimed_at = None, None
        if case.status == "claimed":
            case.status = "drafted" if case.drafts else "new"
        case.updated_at = now
        _event(session, case, actor, "case.released", now, previous=previous)
        return _summary(session, case)


def case_owner(session: Session, case_id: int) -> str | None:
    owner = session.scalars(select(m.Case.assignee).where(m.Case.id == case_id)).first()
    return owner


def assign_case(
    app: App,
    case_id: int,
    actor: str,
    assignee: str,
    *,
    role: str = "lead",
    now: datetime | None = None,
) -> dict[str, Any]:
    """A lead hands the case to ``assignee``."""
    now = now or utcnow()
    with app.sessions() as session, session.begin():
        require(role, "assign", actor=actor)
        case = _load(session, case_id)
        if case.status in CLOSED or case.status == "approved":
            raise Conflict(f"case {case_id} is {case.status}")
        previous = case.assignee
        case.assignee, case.claimed_at = assignee, now
        if case.status in ("new", "drafted"):
            case.status = "claimed"
        case.updated_at = now
        _event(session, case, actor, "case.assigned", now, assignee=assignee, previous=previous)
        return _summary(session, case)


# ---------------------------------------------------------------------------
# drafts and offers


def edit_draft(
    app: App,
    case_id: int,
    actor: str,
    text: str,
    *,
    subject: str | None = None,
    role: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Save a new version of the reply (the event carries a unified diff)."""
    now = now or utcnow()
    if not text.strip():
        raise PolicyViolation("the reply is empty")
    with app.sessions() as session, session.begin():
        role = _role_of(session, actor, role)
        require(role, "edit_draft", actor=actor)
        case = _load(session, case_id)
        _check_claim(case, actor, role)
        if case.status not in EDITABLE:
            raise Conflict(f"case {case_id} is {case.status}: its reply can no longer change")
        current = _current_draft(case)
        if current is None:
            mention = _primary_mention(case)
            from listener.pipeline import channel_for

            cfg = next(
                (s for s in app.settings.sources if case.source and s.name == case.source.name),
                None,
            )
            platform = case.author.platform if case.author else None
            channel = channel_for(cfg, platform) if cfg else "dm"
            draft = m.Draft(
                case_id=case.id,
                channel=channel,
                text=text,
                subject=subject,
                in_reply_to_mention_id=mention.id if mention else None,
                created_by=actor,
                created_at=now,
            )
            session.add(draft)
            session.flush()
            _event(
                session,
                case,
                actor,
                "draft.created",
                now,
                draft_id=draft.id,
                channel=channel,
                diff="",
            )
        else:
            new_subject = subject if subject is not None else current.subject
            if text.strip() == current.text.strip() and new_subject == current.subject:
                return _summary(session, case)
            _new_version(session, case, current, text.strip(), new_subject, actor, now)
        if case.status == "new":
            case.status = "drafted"
        case.updated_at = now
        return _summary(session, case)


def select_offer(
    app: App,
    case_id: int,
    actor: str,
    offer_key: str | None,
    *,
    role: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Choose the gesture the reply goes out with (``None``: no offer).

    Any catalogue offer may be chosen; one a cap would break is refused
    (Conflict, with the reason).  A machine-written draft is re-rendered
    with the new offer; a draft the agent wrote is left alone.
    """
    now = now or utcnow()
    settings = app.settings
    with app.sessions() as session, session.begin():
        role = _role_of(session, actor, role)
        require(role, "select_offer", actor=actor)
        case = _load(session, case_id)
        _check_claim(case, actor, role)
        if case.status not in EDITABLE:
            raise Conflict(f"case {case_id} is {case.status}: its offer can no longer change")
        live = [o for o in case.offers if o.status in LIVE_OFFER]
        if offer_key is None:
            for o in live:
                o.status, o.updated_at = "declined", now
            _event(session, case, actor, "offer.none", now, declined=[o.offer_key for o in live])
            rerender_draft(session, settings, case, None, actor, now)
            case.updated_at = now
            return _summary(session, case)
        spec = settings.recovery.offer(offer_key)
        if spec is None:
            known = ", ".join(o.key for o in settings.recovery.offers) or "none configured"
            raise NotFound(f"no offer {offer_key!r} in the catalogue ({known})")
        history = offer_history(session, settings, case, now, agent=actor)
        judged = judge(spec, _facts(case), history, _limits(settings))
        if judged.excluded:
            raise Conflict(f"{offer_key}: {judged.excluded}")
        row = next(
            (
                o
                for o in case.offers
                if o.offer_key == offer_key and o.status in ("suggested", "selected", "declined")
            ),
            None,
        )
        for o in live:
            if o is not row and o.status == "selected":
                o.status = "suggested"
        if row is None:
            row = m.Offer(
                case_id=case.id,
                offer_key=spec.key,
                kind=spec.kind,
                value=spec.value,
                cost=spec.cost,
                rank=len(case.offers),
                reasons=judged.reasons,
                requires_lead=judged.requires_lead,
                created_at=now,
            )
            session.add(row)
        row.status, row.created_by, row.updated_at = "selected", actor, now
        row.reasons = judged.reasons
        session.flush()
        _event(
            session,
            case,
            actor,
            "offer.selected",
            now,
            offer_id=row.id,
            key=spec.key,
            kind=spec.kind,
            cost=spec.cost,
            requires_lead=judged.requires_lead,
        )
        rerender_draft(session, settings, case, _offer_ctx(spec), actor, now)
        case.updated_at = now
        return _summary(session, case)


# ---------------------------------------------------------------------------
# approval


def _budget_lock(session: Session) -> None:
    """Serialise approvals (budget read-check-write) across processes."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": BUDGET_LOCK_KEY})


def _unique_code(session: Session, prefix: str) -> str:
    for _ in range(10):
        code = new_coupon_code(prefix)
        if session.scalars(select(m.Offer.id).where(m.Offer.code == code)).first() is None:
            return code
    raise Conflict("could not generate a unique coupon code")  # pragma: no cover


def approve_case(
    app: App, case_id: int, actor: str, *, role: str, now: datetime | None = None
) -> dict[str, Any]:
    """Approve the current reply (and its offer) and queue it for sending.

    Checks, in order: the role; the claim; the state; the offer's caps
    (Conflict) and approval tier (PermissionDenied: above
    ``recovery.approval.lead_above`` a lead who neither drafted nor selected
    it); the policy guard on the final text (PolicyViolation).  Then, in the
    same transaction: the offer approved (coupon code generated; physical
    gifts become a fulfilment task), the outbox message, the approval event.
    """
    now = now or utcnow()
    settings = app.settings
    try:
        with app.sessions() as session, session.begin():
            _budget_lock(session)
            require(role, "approve", actor=actor)
            case = _load(session, case_id)
            _check_claim(case, actor, role)
            if case.status not in EDITABLE:
                raise Conflict(f"case {case_id} is {case.status}: it cannot be approved")
            draft = _current_draft(case)
            if draft is None:
                raise Conflict(f"case {case_id} has no draft to approve")
            mention = _primary_mention(case, draft)
            offer = _chosen_offer(case)
            final_text = draft.text
            code: str | None = None
            spec = None
            if offer is not None:
                spec = _spec_for(settings, offer)
                agent = (
                    offer.created_by
                    if offer.created_by != SYSTEM_ACTOR
                    else (case.assignee or actor)
                )
                history = offer_history(session, settings, case, now, agent=agent)
                problems = cap_violations(spec, history, _limits(settings))
                if problems:
                    raise Conflict(f"offer {spec.key}: " + "; ".join(problems))
                chosen_by = {offer.created_by, *(d.created_by for d in case.drafts)}
                chosen_by.discard(SYSTEM_ACTOR)
                why = may_approve_offer(
                    role, actor, spec.cost, settings.recovery.approval.lead_above, chosen_by
                )
                if why:
                    raise PermissionDenied(f"{actor} ({role}) may not approve {spec.key}: {why}")
                if spec.coupon:
                    code = _unique_code(session, settings.recovery.coupon_prefix)
                    if CODE_PLACEHOLDER in final_text:
                        final_text = final_text.replace(CODE_PLACEHOLDER, code)
                    elif code not in final_text:
                        final_text = f"{final_text.rstrip()} Code: {code}"
                offer.created_by = agent
            elif CODE_PLACEHOLDER in final_text:
                raise PolicyViolation(
                    f"the reply mentions {CODE_PLACEHOLDER} but no coupon offer is chosen"
                )
            author = case.author
            in_reply_to = mention.external_id if mention is not None else None
            problems = guard_violations(
                final_text,
                draft.channel,
                limit=channel_limit(draft.channel),
                author_handle=author.handle if author else None,
                brand_handles=settings.brand.handles,
                allowed_domains=allowed_domains(settings),
                already_replied=already_replied(session, draft.channel, in_reply_to),
            )
            recipient = author.handle if author else None
            if draft.channel == "email":
                recipient = author.email if author else None
                if not recipient:
                    problems.append("no email address is known for this customer")
            if problems:
                raise PolicyViolation("; ".join(problems))
            # -- write --------------------------------------------------------
            if offer is not None and spec is not None:
                offer.status, offer.approved_by, offer.approved_at = "approved", actor, now
                offer.code = code
                offer.requires_lead = spec.cost > settings.recovery.approval.lead_above
                offer.fulfilment_status = "to_send" if spec.physical else None
                offer.updated_at = now
            for other in case.offers:
                if other is not offer and other.status in LIVE_OFFER:
                    other.status, other.updated_at = "declined", now
            draft.status = "approved"
            message = m.OutboxMessage(
                idempotency_key=f"reply:{case.id}:{draft.id}",
                case_id=case.id,
                draft_id=draft.id,
                channel=draft.channel,
                recipient=recipient,
                in_reply_to=in_reply_to,
                subject=draft.subject,
                text=final_text,
                status="pending",
                attempts=0,
                created_by=actor,
                created_at=now,
                updated_at=now,
            )
            session.add(message)
            session.flush()
            case.status, case.updated_at = "approved", now
            if case.assignee is None:
                case.assignee, case.claimed_at = actor, now
            _event(
                session,
                case,
                actor,
                "case.approved",
                now,
                role=role,
                draft_id=draft.id,
                version=draft.version,
                outbox_id=message.id,
                channel=draft.channel,
                offer=(
                    None
                    if offer is None
                    else {
                        "id": offer.id,
                        "key": offer.offer_key,
                        "kind": offer.kind,
                        "cost": offer.cost,
                        "code": code,
                        "requires_lead": offer.requires_lead,
                        "fulfilment": offer.fulfilment_status,
                    }
                ),
            )
            return _summary(session, case)
    except IntegrityError as exc:
        raise Conflict(f"case {case_id} was approved at the same time by someone else") from exc


def reject_case(
    app: App,
    case_id: int,
    actor: str,
    reason: str,
    *,
    role: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Decide not to answer (spam, not a customer, already handled…)."""
    now = now or utcnow()
    with app.sessions() as session, session.begin():
        role = _role_of(session, actor, role)
        require(role, "reject", actor=actor)
        case = _load(session, case_id)
        _check_claim(case, actor, role)
        if case.status not in EDITABLE:
            raise Conflict(f"case {case_id} is {case.status}: it cannot be rejected")
        for o in case.offers:
            if o.status in LIVE_OFFER:
                o.status, o.updated_at = "declined", now
        for d in case.drafts:
            if d.status == "current":
                d.status = "rejected"
        case.status, case.resolved_at, case.updated_at = "rejected", now, now
        _event(session, case, actor, "case.rejected", now, reason=reason)
        return _summary(session, case)


def snooze_case(
    app: App,
    case_id: int,
    actor: str,
    until: datetime | None,
    *,
    role: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Hide the case from the queue until ``until`` (None or a past time: wake it)."""
    now = now or utcnow()
    with app.sessions() as session, session.begin():
        role = _role_of(session, actor, role)
        require(role, "snooze", actor=actor)
        case = _load(session, case_id)
        _check_claim(case, actor, role)
        if until is not None and until.tzinfo is None:
            raise PolicyViolation("snooze time must be timezone-aware")
        case.snoozed_until = until if until is not None and until > now else None
        case.updated_at = now
        _event(
            session,
            case,
            actor,
            "case.snoozed" if case.snoozed_until else "case.woken",
            now,
            until=case.snoozed_until.isoformat() if case.snoozed_until else None,
        )
        return _summary(session, case)


def resolve_case(
    app: App,
    case_id: int,
    actor: str,
    note: str | None = None,
    *,
    role: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Close the case (normally after the reply went out)."""
    now = now or utcnow()
    with app.sessions() as session, session.begin():
        role = _role_of(session, actor, role)
        require(role, "resolve", actor=actor)
        case = _load(session, case_id)
        if case.status in ("resolved", "rejected"):
            raise Conflict(f"case {case_id} is already {case.status}")
        pending = session.scalars(
            select(m.OutboxMessage.id).where(
                m.OutboxMessage.case_id == case.id,
                m.OutboxMessage.status.in_(("pending", "sending")),
            )
        ).first()
        if pending is not None:
            raise Conflict(f"case {case_id} has a reply still being sent (outbox {pending})")
        previous = case.status
        case.status, case.resolved_at, case.updated_at = "resolved", now, now
        case.snoozed_until = None
        _event(session, case, actor, "case.resolved", now, note=note, previous=previous)
        return _summary(session, case)


def mark_sent_manually(
    app: App,
    case_id: int,
    actor: str,
    url: str | None = None,
    *,
    role: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Record that a person posted the approved reply by hand (blog comments, DMs)."""
    from listener.outbox import record_sent

    now = now or utcnow()
    with app.sessions() as session, session.begin():
        role = _role_of(session, actor, role)
        require(role, "mark_sent", actor=actor)
        case = _load(session, case_id)
        if case.status != "approved":
            raise Conflict(
                f"case {case_id} is {case.status}: only an approved reply can be marked sent"
            )
        message = session.scalars(
            select(m.OutboxMessage)
            .where(
                m.OutboxMessage.case_id == case.id,
                m.OutboxMessage.status.in_(("pending", "failed")),
            )
            .order_by(m.OutboxMessage.id.desc())
        ).first()
        if message is None:
            raise Conflict(f"case {case_id} has no unsent approved reply (is it being sent?)")
        message_id = message.id
    record_sent(app, message_id, url or f"manual:{actor}", worker=actor, actor=actor, now=now)
    with app.sessions() as session:
        return case_summary(get_case(session, case_id))


def set_fulfilment(
    app: App,
    offer_id: int,
    actor: str,
    status: str,
    *,
    role: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Move a physical gift's fulfilment task along (``to_send`` → ``sent``)."""
    now = now or utcnow()
    if status not in FULFILMENT:
        raise PolicyViolation(f"fulfilment status must be one of: {', '.join(FULFILMENT)}")
    with app.sessions() as session, session.begin():
        role = _role_of(session, actor, role)
        require(role, "fulfil", actor=actor)
        offer = session.get(m.Offer, offer_id)
        if offer is None:
            raise NotFound(f"no offer {offer_id}")
        if offer.status != "approved" or offer.fulfilment_status is None:
            raise Conflict(f"offer {offer_id} is not an approved gift to fulfil")
        case = _load(session, offer.case_id)
        previous = offer.fulfilment_status
        offer.fulfilment_status, offer.updated_at = status, now
        _event(
            session,
            case,
            actor,
            "offer.fulfilment",
            now,
            offer_id=offer.id,
            key=offer.offer_key,
            previous=previous,
            status=status,
        )
        return _summary(session, case)


# ---------------------------------------------------------------------------
# did it work?


def record_followup(
    session: Session,
    case: m.Case,
    mention: m.Mention,
    prediction_label: str,
    unhappy: bool,
    now: datetime,
) -> bool | None:
    """A later post by the customer: after our reply, did their mood change?

    Only posts published after the reply went out count.  Not unhappy →
    ``recovered = True``; still unhappy → ``recovered = False``.  Returns the
    new value (None when the post came before any reply).
    """
    replied_at = case.first_response_at
    if replied_at is None or mention.published_at < replied_at:
        return None
    before = case.recovered
    case.recovered = not unhappy
    case.recovered_at = now if case.recovered else None
    session.add(
        m.Event(
            actor=SYSTEM_ACTOR,
            kind="case.followup",
            case_id=case.id,
            mention_id=mention.id,
            at=now,
            data={
                "label": prediction_label,
                "unhappy": bool(unhappy),
                "recovered": case.recovered,
                "before": before,
            },
        )
    )
    return case.recovered


# ---------------------------------------------------------------------------
# reading


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def case_detail(app: App, case_id: int, *, now: datetime | None = None) -> dict[str, Any]:
    """Everything a case page shows: posts, author history, classification, drafts, offers
    (with what the budget still allows), outbox, events."""
    from listener.outbox import message_dict

    now = now or utcnow()
    settings = app.settings
    with app.sessions() as session:
        case = get_case(session, case_id)
        out = case_summary(case)
        mention_ids = [x.id for x in case.mentions]
        classes: dict[int, m.Classification] = {}
        if mention_ids:
            for c in session.scalars(
                select(m.Classification)
                .where(m.Classification.mention_id.in_(mention_ids))
                .order_by(m.Classification.id)
            ):
                classes[c.mention_id] = c
        out["posts"] = [
            {
                "id": x.id,
                "external_id": x.external_id,
                "url": x.url,
                "title": x.title,
                "text": x.text,
                "published_at": _iso(x.published_at),
                "label": x.label,
                "unhappy": x.unhappy,
                "unhappy_score": x.unhappy_score,
                "category": x.category,
                "classification": None
                if x.id not in classes
                else {
                    "label": classes[x.id].label,
                    "probabilities": classes[x.id].probabilities,
                    "unhappy_score": classes[x.id].unhappy_score,
                    "category": classes[x.id].category,
                    "category_score": classes[x.id].category_score,
                    "circumstances": classes[x.id].circumstances,
                    "model_version": classes[x.id].model_version,
                },
            }
            for x in case.mentions
        ]
        earlier = session.scalars(
            select(m.Case)
            .where(m.Case.author_id == case.author_id, m.Case.id != case.id)
            .order_by(m.Case.id.desc())
            .limit(20)
        ).all()
        granted = session.scalars(
            select(m.Offer)
            .join(m.Case, m.Offer.case_id == m.Case.id)
            .where(m.Case.author_id == case.author_id, m.Case.id != case.id, _granted())
            .order_by(m.Offer.id.desc())
            .limit(20)
        ).all()
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
        out["history"] = {
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
                    "cost": o.cost,
                    "approved_at": _iso(o.approved_at),
                }
                for o in granted
            ],
        }
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
        limits = _limits(settings)
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
                settings.recovery.offers, _facts(case), history, limits, limit=None
            )
        ]
        out["outbox"] = [
            message_dict(r)
            for r in session.scalars(
                select(m.OutboxMessage)
                .where(m.OutboxMessage.case_id == case.id)
                .order_by(m.OutboxMessage.id)
            )
        ]
        out["events"] = [
            {
                "id": e.id,
                "at": _iso(e.at),
                "actor": e.actor,
                "kind": e.kind,
                "mention_id": e.mention_id,
                "data": e.data,
            }
            for e in session.scalars(
                select(m.Event).where(m.Event.case_id == case.id).order_by(m.Event.id)
            )
        ]
        out.update(
            {
                "claimed_at": _iso(case.claimed_at),
                "snoozed_until": _iso(case.snoozed_until),
                "first_response_at": _iso(case.first_response_at),
                "resolved_at": _iso(case.resolved_at),
                "recovered": case.recovered,
                "recovered_at": _iso(case.recovered_at),
            }
        )
        return out


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def team_report(app: App, since: datetime, until: datetime) -> dict[str, Any]:
    """How the team did between ``since`` and ``until`` (cases opened in the window).

    First-response time (median/p90, seconds from the first post), SLA met %,
    recovery rate (of customers who posted again after our reply, the share no
    longer unhappy), offer cost, cost per recovered customer, offers by kind.
    """
    with app.sessions() as session:
        cases = session.scalars(
            select(m.Case).where(m.Case.created_at >= since, m.Case.created_at < until)
        ).all()
        first_post: dict[int, datetime] = {}
        if cases:
            rows = session.execute(
                select(m.Mention.case_id, func.min(m.Mention.published_at))
                .where(m.Mention.case_id.in_([c.id for c in cases]))
                .group_by(m.Mention.case_id)
            ).all()
            first_post = {
                int(cid): (t if t.tzinfo else t.replace(tzinfo=UTC))
                for cid, t in rows
                if cid is not None
            }
        responses: list[float] = []
        sla_met = sla_total = 0
        for c in cases:
            if c.first_response_at is not None:
                start = first_post.get(c.id, c.created_at)
                responses.append(max(0.0, (c.first_response_at - start).total_seconds()))
            if c.sla_due_at is not None and (
                c.first_response_at is not None or c.sla_due_at < until
            ):
                sla_total += 1
                if c.first_response_at is not None and c.first_response_at <= c.sla_due_at:
                    sla_met += 1
        followed = [c for c in cases if c.recovered is not None]
        recovered_authors = {c.author_id for c in followed if c.recovered}
        offers = session.scalars(
            select(m.Offer).where(
                _granted(), m.Offer.approved_at >= since, m.Offer.approved_at < until
            )
        ).all()
        by_kind: dict[str, dict[str, float]] = {}
        for o in offers:
            entry = by_kind.setdefault(o.kind, {"count": 0, "cost": 0.0})
            entry["count"] += 1
            entry["cost"] += o.cost
        cost = round(sum(o.cost for o in offers), 2)
        statuses = Counter(c.status for c in cases)
        median = statistics.median(responses) if responses else None
        return {
            "since": since.isoformat(),
            "until": until.isoformat(),
            "cases": len(cases),
            "by_status": dict(sorted(statuses.items())),
            "replied": len(responses),
            "first_response_seconds": {"median": median, "p90": _percentile(responses, 0.9)},
            "sla_met_pct": round(100.0 * sla_met / sla_total, 1) if sla_total else None,
            "sla_cases": sla_total,
            "followed_up": len(followed),
            "recovered": sum(1 for c in followed if c.recovered),
            "recovery_rate_pct": (
                round(100.0 * sum(1 for c in followed if c.recovered) / len(followed), 1)
                if followed
                else None
            ),
            "currency": app.settings.recovery.currency,
            "offer_cost": cost,
            "cost_per_recovered_customer": (
                round(cost / len(recovered_authors), 2) if recovered_authors else None
            ),
            "offers_by_kind": {
                k: {"count": int(v["count"]), "cost": round(v["cost"], 2)}
                for k, v in sorted(by_kind.items())
            },
        }


def report_window(spec: str, now: datetime | None = None) -> tuple[datetime, datetime]:
    """``7d`` → (now − 7 days, now)."""
    from listener.durations import parse_duration

    now = now or utcnow()
    span = parse_duration(spec)
    if span <= timedelta(0):
        raise PolicyViolation("the report window must be positive")
    return now - span, now
