"""The case actions: one use-case per verb, shared by the CLI, the web pages and the API.

Every action runs in :func:`listener.cases.work.case_work` (actor and role
from the ``users`` table, permission, claim, state, one event) and returns
the case's summary (:func:`listener.cases.view.case_summary`): the queue's
JSON object plus ``draft_version``.  Actions that depend on the reply take
the ``draft_version`` the actor saw; a newer one answers
:class:`~listener.errors.StaleDraft` (409) with the current text.

Nothing is sent without an approval: :func:`approve` is the only writer of
outbox messages.  It re-checks the caps and the approval tier while holding
the budget lock, and runs the sending rules (:mod:`listener.cases.sending`)
on the final text — the same rules the outbox runs before it calls a channel.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from listener import models as m
from listener.cases.offering import (
    SYSTEM_ACTOR,
    chosen_offer,
    facts,
    limits,
    new_version,
    offer_context,
    offer_history,
    offer_row,
    primary_mention,
    rerender_draft,
    spec_for,
)
from listener.cases.sending import Reply, Rules, violations
from listener.cases.status import (
    LIVE_OFFERS,
    OUTBOX_WAITING,
    Action,
    DraftStatus,
    FulfilmentStatus,
    OfferStatus,
    OutboxStatus,
)
from listener.cases.view import case_summary_of
from listener.cases.work import CaseWork, case_work, current_draft, resolve_actor
from listener.errors import Conflict, NotFound, PermissionDenied, PolicyViolation
from listener.gestures import free_text_cost, promise_problems
from listener.offers import CODE_PLACEHOLDER, cap_violations, judge, new_coupon_code
from listener.outbox import already_replied, mark_row_sent
from listener.permissions import WRITE_ROLES, may_approve_offer, require

if TYPE_CHECKING:
    from listener.app import App
    from listener.config import Settings

Summary = dict[str, Any]


# ---------------------------------------------------------------------------
# who holds the case


def claim(
    app: App,
    case_id: int,
    by: str,
    *,
    force: bool = False,
    role: str | None = None,
    now: datetime | None = None,
) -> Summary:
    """Take the case. Conflict if someone else has it (``force``: leads and admins only)."""
    with case_work(app, case_id, by, Action.CLAIM, role=role, now=now) as work:
        case, me = work.case, work.actor.username
        previous = case.assignee
        if previous and previous != me:
            if not force:
                raise Conflict(f"case {case_id} is claimed by {previous}")
            require(work.actor.role, "force_claim", actor=me)
        case.assignee, case.claimed_at = me, work.now
        work.record(previous=previous, forced=bool(previous and previous != me))
    return case_summary_of(app, case_id)


def release(
    app: App, case_id: int, by: str, *, role: str | None = None, now: datetime | None = None
) -> Summary:
    """Give the case back to the queue (the holder, or a lead/admin)."""
    with case_work(app, case_id, by, Action.RELEASE, role=role, now=now) as work:
        previous = work.case.assignee
        work.case.assignee, work.case.claimed_at = None, None
        work.record(previous=previous)
    return case_summary_of(app, case_id)


def assign(
    app: App,
    case_id: int,
    by: str,
    assignee: str,
    *,
    role: str | None = None,
    now: datetime | None = None,
) -> Summary:
    """A lead hands the case to ``assignee``, an active agent, lead or admin."""
    with case_work(app, case_id, by, Action.ASSIGN, role=role, now=now) as work:
        try:
            to = resolve_actor(work.session, assignee)
        except PermissionDenied as exc:
            raise NotFound(f"cannot assign case {case_id} to {assignee!r}: {exc}") from None
        if to.role not in WRITE_ROLES:
            raise PermissionDenied(
                f"cannot assign case {case_id} to {assignee}: the {to.role} role is read-only"
            )
        previous = work.case.assignee
        work.case.assignee, work.case.claimed_at = to.username, work.now
        work.record(assignee=to.username, previous=previous)
    return case_summary_of(app, case_id)


# ---------------------------------------------------------------------------
# the reply and its offer


def _channel_for_case(app: App, case: m.Case) -> str:
    from listener.drafting import channel_for

    cfg = next(
        (s for s in app.settings.sources if case.source and s.name == case.source.name), None
    )
    platform = case.author.platform if case.author else None
    return channel_for(cfg, platform) if cfg else "dm"


def _write_text(
    app: App, work: CaseWork, text: str, subject: str | None, *, as_event: bool
) -> m.Draft | None:
    """Save ``text`` as the reply's next version (the first one if there is none).

    Returns the new draft, or None when the text and subject are unchanged.
    ``as_event``: record it as the action's own event, else as a further one.
    """
    case, me, now = work.case, work.actor.username, work.now
    current = current_draft(case)
    if current is None:
        mention = primary_mention(case)
        channel = _channel_for_case(app, case)
        draft = m.Draft(
            case_id=case.id,
            channel=channel,
            text=text,
            subject=subject,
            status=DraftStatus.CURRENT,
            in_reply_to_mention_id=mention.id if mention else None,
            created_by=me,
            created_at=now,
        )
        work.session.add(draft)
        work.session.flush()
        case.drafts.append(draft)
        data: dict[str, Any] = {"draft_id": draft.id, "version": 1, "channel": channel, "diff": ""}
        kind = "draft.created"
    else:
        new_subject = subject if subject is not None else current.subject
        if text == current.text.strip() and new_subject == current.subject:
            return None
        draft, data = new_version(work.session, case, current, text, new_subject, me, now)
        kind = "draft.edited"
    if as_event:
        work.record(kind, **data)
    else:
        work.event(kind, **data)
    return draft


def _clean(text: str) -> str:
    text = text.replace("\r\n", "\n").strip()
    if not text:
        raise PolicyViolation("the reply is empty")
    return text


def edit_draft(
    app: App,
    case_id: int,
    by: str,
    text: str,
    *,
    subject: str | None = None,
    draft_version: int | None = None,
    role: str | None = None,
    now: datetime | None = None,
) -> Summary:
    """Save a new version of the reply (the event carries a unified diff).

    ``draft_version``: the version the text was edited from; StaleDraft when
    someone saved a newer one in between (nothing is overwritten silently).
    """
    text = _clean(text)
    with case_work(app, case_id, by, Action.EDIT_DRAFT, role=role, now=now) as work:
        work.expect_draft_version(draft_version)
        if _write_text(app, work, text, subject, as_event=True) is None:
            work.nothing_changed()
    return case_summary_of(app, case_id)


def select_offer(
    app: App,
    case_id: int,
    by: str,
    offer_key: str | None,
    *,
    draft_version: int | None = None,
    role: str | None = None,
    now: datetime | None = None,
) -> Summary:
    """Choose the gesture the reply goes out with (``None``: no offer).

    Any catalogue offer may be chosen; one a cap would break is refused
    (Conflict, with the reason).  A machine-written draft is re-rendered with
    the new offer (so ``draft_version`` is checked); a draft the agent wrote
    is left alone.
    """
    settings = app.settings
    with case_work(app, case_id, by, Action.SELECT_OFFER, role=role, now=now) as work:
        work.expect_draft_version(draft_version)
        case, me, now_ = work.case, work.actor.username, work.now
        live = [o for o in case.offers if o.status in LIVE_OFFERS]
        before = chosen_offer(case.offers)
        previous = offer_context(spec_for(settings, before)) if before is not None else None
        if offer_key is None:
            for o in live:
                o.status, o.updated_at = OfferStatus.DECLINED, now_
            work.record("offer.none", declined=[o.offer_key for o in live])
            _rerender(work, settings, None, previous)
        else:
            spec = settings.recovery.offer(offer_key)
            if spec is None:
                known = ", ".join(o.key for o in settings.recovery.offers) or "none configured"
                raise NotFound(f"no offer {offer_key!r} in the catalogue ({known})")
            history = offer_history(work.session, settings, case, now_, agent=me)
            judged = judge(spec, facts(case), history, limits(settings))
            if judged.excluded:
                raise Conflict(f"{offer_key}: {judged.excluded}")
            takeable = (OfferStatus.SUGGESTED, OfferStatus.SELECTED, OfferStatus.DECLINED)
            row = next(
                (o for o in case.offers if o.offer_key == offer_key and o.status in takeable),
                None,
            )
            for o in live:
                if o is not row and o.status == OfferStatus.SELECTED:
                    o.status = OfferStatus.SUGGESTED
            if row is None:
                row = offer_row(case.id, judged, len(case.offers), OfferStatus.SELECTED, me, now_)
                work.session.add(row)
                case.offers.append(row)
            row.status, row.created_by, row.updated_at = OfferStatus.SELECTED, me, now_
            row.reasons = judged.reasons
            row.requires_lead = judged.requires_lead
            work.session.flush()
            work.record(
                offer_id=row.id,
                key=spec.key,
                kind=spec.kind,
                cost=spec.cost,
                requires_lead=judged.requires_lead,
            )
            _rerender(work, settings, offer_context(spec), previous)
    return case_summary_of(app, case_id)


def _rerender(
    work: CaseWork,
    settings: Settings,
    offer: dict[str, Any] | None,
    previous: dict[str, Any] | None = None,
) -> None:
    _, data = rerender_draft(
        work.session, settings, work.case, offer, work.actor.username, work.now, previous
    )
    if data:
        kind = data.pop("kind")
        machine = kind == "draft.edited" and not data.get("gesture_swapped")
        work.then(SYSTEM_ACTOR if machine else work.actor.username, kind, **data)


# ---------------------------------------------------------------------------
# approval


def _unique_code(session: Any, prefix: str) -> str:
    for _ in range(10):
        code = new_coupon_code(prefix)
        if session.scalars(select(m.Offer.id).where(m.Offer.code == code)).first() is None:
            return code
    raise Conflict("could not generate a unique coupon code")  # pragma: no cover


def approve(
    app: App,
    case_id: int,
    by: str,
    *,
    draft_version: int | None = None,
    text: str | None = None,
    subject: str | None = None,
    role: str | None = None,
    now: datetime | None = None,
) -> Summary:
    """Approve the reply the actor saw (and its offer) and queue it for sending.

    ``draft_version``: the version the actor saw (StaleDraft when the reply
    changed since); ``text``/``subject``: the reply as shown, saved as a new
    version first when it differs (the page sends its editor's content, so
    unsaved edits are approved, never dropped).

    Then checks, in order: the offer's caps (Conflict) and approval tier
    (PermissionDenied: above ``recovery.approval.lead_above`` a lead who
    neither drafted nor selected it); the sending rules on the final text
    (PolicyViolation).  And writes, in the same transaction: the offer
    approved (coupon code generated; physical gifts become a fulfilment
    task), the outbox message, the approval event.
    """
    settings = app.settings
    cleaned = _clean(text) if text is not None else None
    with case_work(app, case_id, by, Action.APPROVE, role=role, now=now, budget=True) as work:
        work.expect_draft_version(draft_version)
        case, actor, now_ = work.case, work.actor, work.now
        if cleaned is not None:
            _write_text(app, work, cleaned, subject, as_event=False)
        draft = current_draft(case)
        if draft is None:
            raise Conflict(f"case {case_id} has no draft to approve")
        mention = primary_mention(case, draft)
        offer = chosen_offer(case.offers)
        final_text = draft.text
        code: str | None = None
        spec = None
        if offer is not None:
            spec = spec_for(settings, offer)
            agent = offer.created_by if offer.created_by != SYSTEM_ACTOR else None
            agent = agent or case.assignee or actor.username
            history = offer_history(work.session, settings, case, now_, agent=agent)
            problems = cap_violations(spec, history, limits(settings))
            if problems:
                raise Conflict(f"offer {spec.key}: " + "; ".join(problems))
            chosen_by = {offer.created_by, *(d.created_by for d in case.drafts)}
            chosen_by.discard(SYSTEM_ACTOR)
            why = may_approve_offer(
                actor.role,
                actor.username,
                spec.cost,
                settings.recovery.approval.lead_above,
                chosen_by,
            )
            if why:
                raise PermissionDenied(
                    f"{actor.username} ({actor.role}) may not approve {spec.key}: {why}"
                )
            if spec.coupon:
                code = _unique_code(work.session, settings.recovery.coupon_prefix)
                if CODE_PLACEHOLDER in final_text:
                    final_text = final_text.replace(CODE_PLACEHOLDER, code)
                elif code not in final_text:
                    final_text = f"{final_text.rstrip()} Code: {code}"
            offer.created_by = agent
        elif CODE_PLACEHOLDER in final_text:
            raise PolicyViolation(
                f"the reply mentions {CODE_PLACEHOLDER} but no coupon offer is chosen"
            )
        _check_promises(settings, case, actor, final_text, spec, code)
        author = case.author
        in_reply_to = mention.external_id if mention is not None else None
        recipient = author.handle if author else None
        if draft.channel == "email":
            recipient = author.email if author else None
        reply = Reply(
            text=final_text,
            channel=draft.channel,
            author_handle=author.handle if author else None,
            recipient=recipient,
            in_reply_to=in_reply_to,
            target_text=mention.text if mention is not None else None,
            already_replied=already_replied(work.session, draft.channel, in_reply_to),
        )
        problems = violations(reply, Rules.from_settings(settings))
        if problems:
            raise PolicyViolation("; ".join(problems))
        # -- write --------------------------------------------------------
        if offer is not None and spec is not None:
            offer.status, offer.approved_by, offer.approved_at = (
                OfferStatus.APPROVED,
                actor.username,
                now_,
            )
            offer.code = code
            offer.requires_lead = spec.cost > settings.recovery.approval.lead_above
            offer.fulfilment_status = FulfilmentStatus.TO_SEND if spec.physical else None
            offer.updated_at = now_
        for other in case.offers:
            if other is not offer and other.status in LIVE_OFFERS:
                other.status, other.updated_at = OfferStatus.DECLINED, now_
        draft.status = DraftStatus.APPROVED
        message = m.OutboxMessage(
            idempotency_key=f"reply:{case.id}:{draft.id}",
            case_id=case.id,
            draft_id=draft.id,
            channel=draft.channel,
            recipient=recipient,
            in_reply_to=in_reply_to,
            subject=draft.subject,
            text=final_text,
            status=OutboxStatus.PENDING,
            attempts=0,
            created_by=actor.username,
            created_at=now_,
            updated_at=now_,
        )
        work.session.add(message)
        work.session.flush()
        if case.assignee is None:
            case.assignee, case.claimed_at = actor.username, now_
        work.record(
            role=actor.role,
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
    return case_summary_of(app, case_id)


def _check_promises(
    settings: Settings,
    case: m.Case,
    actor: Any,
    text: str,
    spec: Any,
    code: str | None,
) -> None:
    """Refuse a reply that promises a gesture the case does not carry.

    A promised card, flowers, upgrade or replacement must be the attached offer
    (PolicyViolation otherwise).  A free-text promise of money (refund, credit,
    coupon) needs the approval tier the same catalogue offer (or the amount
    written) would: PermissionDenied when the approver lacks it.
    """
    wording = offer_context(spec, code)["description"] if spec is not None else ""
    for promise, why in promise_problems(text, spec, wording):
        if not promise.money:
            raise PolicyViolation(f"{why}; attach that offer or take the promise out")
        cost = free_text_cost(promise, settings.recovery.offers)
        writers = {d.created_by for d in case.drafts}
        writers.discard(SYSTEM_ACTOR)
        refused = may_approve_offer(
            actor.role, actor.username, cost, settings.recovery.approval.lead_above, writers
        )
        if refused:
            raise PermissionDenied(
                f"{why}; a promise worth {settings.recovery.currency}{cost:g} needs the same "
                f"approval as the offer: {refused}"
            )


# ---------------------------------------------------------------------------
# closing, reopening, snoozing


def reject(
    app: App,
    case_id: int,
    by: str,
    reason: str,
    *,
    role: str | None = None,
    now: datetime | None = None,
) -> Summary:
    """Decide not to answer (spam, not a customer, already handled…); :func:`reopen` undoes it."""
    with case_work(app, case_id, by, Action.REJECT, role=role, now=now) as work:
        case = work.case
        offers = {}
        for o in case.offers:
            if o.status in LIVE_OFFERS:
                offers[str(o.id)] = str(o.status)
                o.status, o.updated_at = OfferStatus.DECLINED, work.now
        drafts = []
        for d in case.drafts:
            if d.status == DraftStatus.CURRENT:
                d.status = DraftStatus.REJECTED
                drafts.append(d.id)
        case.resolved_at = work.now
        work.record(reason=reason, offers=offers, drafts=drafts)
    return case_summary_of(app, case_id)


def reopen(
    app: App, case_id: int, by: str, *, role: str | None = None, now: datetime | None = None
) -> Summary:
    """Undo a rejection: the reply and the offers it set aside come back as they were."""
    with case_work(app, case_id, by, Action.REOPEN, role=role, now=now) as work:
        case = work.case
        rejection = work.session.scalars(
            select(m.Event)
            .where(m.Event.case_id == case.id, m.Event.kind == "case.rejected")
            .order_by(m.Event.id.desc())
            .limit(1)
        ).first()
        data = rejection.data if rejection is not None else {}
        restore = {int(k): v for k, v in (data.get("offers") or {}).items()}
        for o in case.offers:
            if o.id in restore and o.status == OfferStatus.DECLINED:
                o.status, o.updated_at = OfferStatus(restore[o.id]), work.now
        back = set(data.get("drafts") or [])
        for d in case.drafts:
            if d.status == DraftStatus.REJECTED and (d.id in back or not back):
                d.status = DraftStatus.CURRENT
        case.resolved_at = None
        work.record(rejection=None if rejection is None else rejection.id)
    return case_summary_of(app, case_id)


def snooze(
    app: App,
    case_id: int,
    by: str,
    until: datetime | None,
    *,
    note: str | None = None,
    role: str | None = None,
    now: datetime | None = None,
) -> Summary:
    """Take the case out of the queue until ``until`` (None or a past time: wake it now).

    It comes back in its place, with ``note`` as the reason, when the time
    comes; ``listener queue --status snoozed`` (the page's "snoozed" filter)
    lists the sleeping ones.
    """
    if until is not None and until.tzinfo is None:
        raise PolicyViolation("snooze time must be timezone-aware")
    note = (note or "").strip() or None
    with case_work(app, case_id, by, Action.SNOOZE, role=role, now=now) as work:
        case = work.case
        if until is not None and until > work.now:
            case.snoozed_until, case.snoozed_by, case.snooze_note = until, work.actor.username, note
            work.record(until=until.isoformat(), note=note)
        else:
            case.snoozed_until = case.snoozed_by = case.snooze_note = None
            work.record("case.woken", until=None)
    return case_summary_of(app, case_id)


def resolve(
    app: App,
    case_id: int,
    by: str,
    note: str | None = None,
    *,
    role: str | None = None,
    now: datetime | None = None,
) -> Summary:
    """Close the case (normally after the reply went out); the holder or a lead."""
    with case_work(app, case_id, by, Action.RESOLVE, role=role, now=now) as work:
        case = work.case
        pending = work.session.scalars(
            select(m.OutboxMessage.id).where(
                m.OutboxMessage.case_id == case.id,
                m.OutboxMessage.status.in_(OUTBOX_WAITING),
            )
        ).first()
        if pending is not None:
            raise Conflict(f"case {case_id} has a reply still being sent (outbox {pending})")
        previous = case.status
        case.resolved_at = work.now
        work.record(note=note, previous=str(previous))
    return case_summary_of(app, case_id)


def mark_sent(
    app: App,
    case_id: int,
    by: str,
    url: str | None = None,
    *,
    note: str | None = None,
    role: str | None = None,
    now: datetime | None = None,
) -> Summary:
    """Record that the approved reply was posted by hand (blog comments, DMs: manual channels),
    at ``url`` or as ``note`` says.

    Only the case's holder or a lead; replies on channels the outbox sends
    (X, e-mail) cannot be marked sent — nothing would have been posted.
    """
    from listener.channels.registry import is_manual

    with case_work(app, case_id, by, Action.MARK_SENT, role=role, now=now) as work:
        case, me = work.case, work.actor.username
        message = work.session.scalars(
            select(m.OutboxMessage)
            .where(
                m.OutboxMessage.case_id == case.id,
                m.OutboxMessage.status.in_((OutboxStatus.PENDING, OutboxStatus.FAILED)),
            )
            .order_by(m.OutboxMessage.id.desc())
        ).first()
        if message is None:
            raise Conflict(f"case {case_id} has no unsent approved reply (is it being sent?)")
        if not is_manual(message.channel):
            raise Conflict(
                f"case {case_id}'s reply goes out on {message.channel}, which the outbox sends "
                "itself: only replies a person posts by hand can be marked sent"
            )
        external_id = (url or "").strip() or f"manual:{me}"
        mark_row_sent(work.session, message, external_id, work.now)
        work.record(
            outbox_id=message.id,
            channel=message.channel,
            external_id=external_id,
            attempts=message.attempts,
            recovered=False,
            manual=True,
            **({"note": note.strip()} if note and note.strip() else {}),
        )
    return case_summary_of(app, case_id)


def set_fulfilment(
    app: App,
    offer_id: int,
    by: str,
    status: str,
    *,
    role: str | None = None,
    now: datetime | None = None,
) -> Summary:
    """Move a physical gift's fulfilment task along (``to_send`` → ``sent``)."""
    try:
        wanted = FulfilmentStatus(status)
    except ValueError:
        known = ", ".join(s.value for s in FulfilmentStatus)
        raise PolicyViolation(f"fulfilment status must be one of: {known}") from None
    with app.sessions() as session:
        case_id = session.scalar(select(m.Offer.case_id).where(m.Offer.id == offer_id))
    if case_id is None:
        raise NotFound(f"no offer {offer_id}")
    with case_work(app, case_id, by, Action.FULFIL, role=role, now=now) as work:
        offer = next(o for o in work.case.offers if o.id == offer_id)
        if offer.status != OfferStatus.APPROVED or offer.fulfilment_status is None:
            raise Conflict(f"offer {offer_id} is not an approved gift to fulfil")
        previous = offer.fulfilment_status
        offer.fulfilment_status, offer.updated_at = wanted, work.now
        work.record(offer_id=offer.id, key=offer.offer_key, previous=previous, status=wanted.value)
    return case_summary_of(app, case_id)
