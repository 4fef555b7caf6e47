"""A case's offers and draft versions: the reads and writes that drafting and approval share.

The pipeline calls :func:`suggest_for_case` and :func:`draft_context_for`
when it opens a case (it calls down into this package; nothing here imports
the pipeline); the case actions call :func:`offer_history`,
:func:`rerender_draft` and :func:`new_version`.  The choosing itself is the
pure :mod:`listener.offers`; rendering is :mod:`listener.drafting`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from listener import models as m
from listener.cases.batch import add_numbered, batch_of
from listener.cases.status import LIVE_DRAFTS, DraftStatus, OfferStatus
from listener.errors import TemplateError
from listener.gestures import NO_COMPENSATION, GestureDecision, GestureFacts, decide_gesture
from listener.offers import (
    CaseFacts,
    Limits,
    OfferHistory,
    Suggestion,
    describe,
    suggest_offers,
)
from listener.understanding import Understanding, understand

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
    reads = batch_of(session)  # the pipeline's batch has counted them (listener.cases.batch)
    known = reads.earlier_cases(case.author_id, case.id, since) if reads is not None else None
    if known is not None:
        return known
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
    """The offer a reply goes out with: the attached (selected) one, else None.

    A merely suggested offer is never attached: the drafting machine attaches
    the offer its gesture decision calls for (selected by ``listener``), an
    agent attaches another or none.
    """
    selected = [o for o in offers if o.status == OfferStatus.SELECTED]
    return selected[-1] if selected else None


def shown_offer(offers: Sequence[m.Offer]) -> m.Offer | None:
    """The offer a summary shows: the attached or granted one, else None (never a suggestion)."""
    attached = (OfferStatus.SELECTED, OfferStatus.APPROVED)
    chosen = [o for o in offers if o.status in attached]
    return chosen[-1] if chosen else None


def context_of(settings: Settings, mention: m.Mention) -> tuple[str | None, bool]:
    """The post ``mention`` answers (its text, as the source carried it) and whether the
    brand wrote it (``in_reply_to_text`` / ``in_reply_to_author`` in the raw payload)."""
    return _context(settings, mention.raw)


def _context(settings: Settings, raw: Any) -> tuple[str | None, bool]:
    raw = raw if isinstance(raw, dict) else {}
    text = raw.get("in_reply_to_text")
    author = str(raw.get("in_reply_to_author") or "").lstrip("@").lower()
    ours = {h.lstrip("@").lower() for h in settings.brand.handles}
    return (str(text) if text else None), bool(author and author in ours)


def post_body(mention: m.Mention) -> str:
    """The words of ``mention`` a reply answers: a blog post's stored text begins with its
    title as a paragraph of its own ("My refund saga, part 2"), which is a headline, not
    the customer's words about the problem."""
    return _body(mention.text, mention.title)


def _body(text: str | None, title: str | None) -> str:
    text = text or ""
    title = (title or "").strip()
    if title and text.startswith(title + "\n\n") and text[len(title) + 2 :].strip():
        return text[len(title) + 2 :]
    return text


def conversation(session: Session, case: m.Case, mention: m.Mention) -> list[str]:
    """The words of the customer's posts in ``case`` a reply to ``mention`` answers:
    theirs, up to it, since our last reply (all of them when we have not replied), oldest
    first (one query for the columns, not the case's whole post objects)."""
    since = case.first_response_at
    reads = batch_of(session)
    posts = reads.posts_of(case.id) if reads is not None else None
    rows: dict[int, tuple[datetime, str]] = {}
    if posts is None:
        # the set-based path's batch knows what it added to the case: the rest is read
        # without flushing the batch first
        query = select(m.Mention.id, m.Mention.published_at, m.Mention.text, m.Mention.title).where(
            m.Mention.case_id == case.id,
            m.Mention.author_id == mention.author_id,
            m.Mention.published_at <= mention.published_at,
        )
        with session.no_autoflush if reads is not None else nullcontext():
            for r in session.execute(query):
                rows[r.id] = (r.published_at, _body(r.text, r.title))
        posts = reads.joined(case.id) if reads is not None else []
    for x in posts:
        if x.author_id == mention.author_id and x.published_at <= mention.published_at:
            rows[x.id] = (x.published_at, post_body(x))
    rows[mention.id] = (mention.published_at, post_body(mention))  # maybe not flushed yet
    said = sorted(
        (at, i, body)
        for i, (at, body) in rows.items()
        if since is None or at >= since or i == mention.id
    )
    return [body for _, _, body in said]


def understand_mention(
    settings: Settings, mention: m.Mention, category: str | None = None
) -> Understanding:
    """What ``mention`` says (listener.understanding), with the post it answers as context."""
    text, context, by_brand, category = reading_inputs(
        settings, mention.text, mention.raw, category
    )
    return understand(
        text,
        context=context,
        context_by_brand=by_brand,
        category=category,
        brand_terms=list(settings.brand.match_terms),
    )


def reading_inputs(
    settings: Settings, text: str | None, raw: Any, category: str | None
) -> tuple[str, str | None, bool, str | None]:
    """What :func:`understand_mention` reads of a post with ``text`` and ``raw`` payload
    (besides the brand's terms): its words, the post it answers, whether the brand wrote
    that, the classifier's category.  Equal inputs, equal reading (the function is pure):
    the key a reading done ahead is found by (:mod:`listener.readahead`)."""
    context, by_brand = _context(settings, raw)
    return text or "", context, by_brand, category


def budget_left(session: Session, settings: Settings, now: datetime) -> float | None:
    """What is left of today's team budget (None: no budget set)."""
    cap = settings.recovery.caps.daily_budget
    if cap is None:
        return None
    spent = session.scalar(
        select(func.coalesce(func.sum(m.Offer.cost), 0.0)).where(
            granted(), m.Offer.approved_at >= _day_start(now)
        )
    )
    return float(cap) - float(spent or 0.0)


def decide_for_case(
    session: Session, settings: Settings, case: m.Case, u: Understanding, now: datetime
) -> GestureDecision:
    """The gesture ladder's decision for ``case`` (stored on it, with its reasons)."""
    decision = decide_gesture(
        GestureFacts(
            kind=u.kind,
            severity=u.severity,
            circumstances=tuple(case.circumstances or u.circumstances),
            failed_order=u.failed_order,
            asks_refund=u.asks_refund,
            costly=u.costly,
            earlier_cases=earlier_cases(session, settings, case, now),
            budget_left=budget_left(session, settings, now),
            emergency=bool(u.emergency),
        ),
        settings.recovery.gestures,
    )
    case.kind, case.severity = u.kind, u.severity
    case.gesture, case.gesture_reasons = decision.gesture, list(decision.reasons)
    return decision


def gesture_of(case: m.Case, settings: Settings) -> str:
    """The case's gesture: the attached offer's rung, else the decided one (``none``)."""
    offer = chosen_offer(case.offers) or next(
        (o for o in case.offers if o.status == OfferStatus.APPROVED), None
    )
    if offer is not None:
        spec = settings.recovery.offer(offer.offer_key)
        from listener.config import GESTURE_OF_KIND

        return spec.tier if spec is not None else GESTURE_OF_KIND.get(offer.kind, "goodwill")
    gesture = case.gesture or "none"
    return gesture if gesture in ("none", "apology_and_help") else "apology_and_help"


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
    gesture = case.gesture or "apology_and_help"
    if gesture in NO_COMPENSATION:
        return []  # no compensation: nothing suggested, nothing attached
    history = offer_history(session, settings, case, now)
    # offers on the decided rung first, then one rung down (make-whole → goodwill)
    wanted = {gesture}
    if gesture == "make_whole":
        wanted.add("goodwill")
    catalogue = [o for o in settings.recovery.offers if o.tier in wanted]
    ranked = suggest_offers(catalogue, facts(case), history, limits(settings), limit=None)
    if not any(s.eligible for s in ranked):
        # nothing on the decided rung (or the one below) fits the case's category: the
        # rung's other offers. An offer of the case's own kind one rung down beats one of
        # another category on the rung (a $25 credit for a rude call, not overnight shipping)
        rung = [o for o in settings.recovery.offers if o.tier == gesture]
        wider = suggest_offers(
            rung, facts(case), history, limits(settings), limit=None, any_category=True
        )
        known = {s.key for s in ranked}
        ranked = [*ranked, *(s for s in wider if s.key not in known)]
    on_rung = [s for s in ranked if _tier(settings, s.key) == gesture]
    below = [s for s in ranked if _tier(settings, s.key) != gesture]
    eligible = [s for s in [*on_rung, *below] if s.eligible][: settings.recovery.suggestions]
    excluded = [s for s in ranked if not s.eligible]
    suggestions = [
        Suggestion(**{**s.__dict__, "rank": rank}) for rank, s in enumerate([*eligible, *excluded])
    ]
    for s in suggestions:
        if s.eligible:
            # the first one is attached: the draft carries it, the agent may change it
            status = OfferStatus.SELECTED if s.rank == 0 else OfferStatus.SUGGESTED
            session.add(offer_row(case.id, s, s.rank, status, SYSTEM_ACTOR, now))
    session.flush()
    return suggestions


def _tier(settings: Settings, key: str) -> str:
    spec = settings.recovery.offer(key)
    return spec.tier if spec is not None else "goodwill"


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
    *,
    understood: Understanding | None = None,
) -> dict[str, Any]:
    """Everything a template needs for ``case`` (see listener.drafting.draft_context).

    ``understood``: :func:`understand_mention` of ``mention`` with the case's category,
    when the caller has read it already."""
    from listener.drafting import draft_context

    author = case.author
    handles = settings.brand.handles
    u = understand_mention(settings, mention, case.category) if understood is None else understood
    body = post_body(mention)
    if (case.mention_count or 1) > 1 and u.kind not in ("praise", "resolved"):
        # a customer who wrote again before our reply added to one problem: the reply
        # answers the conversation (their first words about it lead), not only its last post
        said = conversation(session, case, mention)
        if len(said) > 1:
            body = "\n".join(said)
            whole = understand(
                body, category=case.category, brand_terms=list(settings.brand.match_terms)
            )
            u = replace(whole, kind=whole.kind if whole.kind != "other" else u.kind)
    if (
        case.kind == "resolved"
        and case.recovered is not False
        and u.kind not in ("praise", "resolved")
    ):
        # the conversation ends with them saying it is sorted (listener.cases.followup; not
        # when a later post is unhappy again): the reply is a short "glad it's sorted",
        # whatever the earlier posts complained of
        u = replace(u, kind="resolved", severity=0, problem=None)
    if case.circumstances is not None:
        # the case's circumstances (every post's, context-based) are what the reply knows
        u = replace(u, circumstances=tuple(case.circumstances))
    return draft_context(
        brand_name=settings.brand.name,
        brand_voice=settings.brand.voice,
        brand_handle=handles[0] if handles else None,
        handle=author.handle,
        display_name=author.display_name,
        channel=channel,
        category=case.category,
        circumstances=case.circumstances or [],
        post_text=body,
        published_at=mention.published_at,
        now=now,
        agent_name=settings.recovery.agent_name,
        signature=settings.recovery.signature,
        offer=offer,
        brand_terms=settings.brand.match_terms,
        earlier_cases=earlier_cases(session, settings, case, now),
        understanding=u,
        signoff=settings.recovery.signoff,
        gesture=gesture_of(case, settings),
        seed=f"{case.id}:{mention.external_id}",
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
    add_numbered(session, draft)  # numbered now, inserted with the next flush
    case.drafts.append(draft)
    data: dict[str, Any] = {"draft_id": draft.id, "version": draft.version, "diff": diff}
    if subject != current.subject:
        data["subject"] = {"from": current.subject, "to": subject}
    return draft, data


def _swap_gesture(
    session: Session,
    case: m.Case,
    current: m.Draft,
    previous: dict[str, Any] | None,
    offer: dict[str, Any] | None,
    because: str,
    now: datetime,
) -> tuple[m.Draft | None, dict[str, Any]]:
    """In a text the agent wrote, the previous offer's wording replaced by the new offer's
    (or its sentence taken out when no offer is attached now); the rest is theirs."""
    old = str((previous or {}).get("description") or "").strip().rstrip(".")
    if not old or old not in current.text:
        return None, {}
    new = str((offer or {}).get("description") or "").strip().rstrip(".")
    if new:
        text = current.text.replace(old, new)
    else:
        # the whole sentence that carried the gesture goes
        sentence = re.compile(r"[^.!?\n]*" + re.escape(old) + r"[^.!?\n]*[.!?]?\s*")
        text = sentence.sub("", current.text).strip()
    if not text or text == current.text:
        return None, {}
    draft, data = new_version(
        session, case, current, text, current.subject, because, now, template=None
    )
    return draft, {"kind": "draft.edited", **data, "because": because, "gesture_swapped": True}


def rerender_draft(
    session: Session,
    settings: Settings,
    case: m.Case,
    offer: dict[str, Any] | None,
    because: str,
    now: datetime,
    previous: dict[str, Any] | None = None,
    *,
    reply_to: m.Mention | None = None,
) -> tuple[m.Draft | None, dict[str, Any]]:
    """A new machine-written version with ``offer``, when the machine wrote the current one.

    When the agent wrote (or edited) the current text, the previous offer's wording
    (``previous``) is swapped for the new one's, so the text never promises a gesture
    that is not attached; their other words are kept.

    ``reply_to``: the post the new version answers (a customer's follow-up);
    by default the one the current version answers.

    Returns the new draft (None: unchanged, or the agent wrote the text) and
    the event to record: ``draft.edited`` (because ``because`` chose another
    offer) or ``draft.failed``.
    """
    from listener.drafting import render

    live = [d for d in case.drafts if d.status in LIVE_DRAFTS]
    current = live[-1] if live else None
    if current is None:
        return None, {}
    if current.created_by != SYSTEM_ACTOR or current.template is None:
        return _swap_gesture(session, case, current, previous, offer, because, now)
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
