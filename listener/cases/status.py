"""The case state machine: every status as an enum, every case action in one table.

Pure: no I/O.  The unit of work (:mod:`listener.cases.work`) consults
:data:`TRANSITIONS` for each action — which states it may start from, where it
leaves the case, who must hold the claim, which permission it needs and which
event records it — so the rules live here once, and the case page asks the
same table which buttons to show.

::

    new ──draft──► drafted ──claim──► claimed ──approve──► approved ──send──► sent ──► resolved
     │               │  ▲               │  │                  │ (manual: mark sent)
     │               │  └───release─────┘  └─reject─► rejected ─reopen─► drafted/claimed
     └───────────────┴── approve / reject / resolve from any workable state

    merge: a workable case takes in another workable case of the same customer,
    which becomes ``merged`` (closed, ``merged_into_id`` says where its posts went)

Snoozing is not a state: a case keeps its status and leaves the queue until
``snoozed_until`` (see :mod:`listener.cases.queue`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from listener.errors import Conflict


class CaseStatus(StrEnum):
    """Where a case is in its life (stored in ``cases.status``)."""

    NEW = "new"  #: opened, no draft yet
    DRAFTED = "drafted"  #: a draft is ready, nobody holds the case
    CLAIMED = "claimed"  #: someone holds it (``cases.assignee``)
    APPROVED = "approved"  #: the reply is approved and waits in the outbox
    SENT = "sent"  #: the reply went out
    RESOLVED = "resolved"  #: closed
    REJECTED = "rejected"  #: closed without a reply (reopen undoes it)
    MERGED = "merged"  #: its posts joined another case of the same customer (``merged_into_id``)


class DraftStatus(StrEnum):
    """A draft version (``drafts.status``); the newest live one is the case's reply."""

    CURRENT = "current"
    SUPERSEDED = "superseded"
    APPROVED = "approved"
    SENT = "sent"
    REJECTED = "rejected"


class OfferStatus(StrEnum):
    """A gesture on a case (``offers.status``)."""

    SUGGESTED = "suggested"  #: ranked by the chooser
    SELECTED = "selected"  #: chosen by an agent
    DECLINED = "declined"  #: not chosen (another one, or none, was)
    APPROVED = "approved"  #: granted with the approved reply
    CANCELLED = "cancelled"


class FulfilmentStatus(StrEnum):
    """A physical gift's fulfilment task (``offers.fulfilment_status``)."""

    TO_SEND = "to_send"
    SENT = "sent"


class OutboxStatus(StrEnum):
    """An outbox message (``outbox.status``): intent → sending → sent, or failed."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


#: the reply can still change: drafts, offers, approval, rejection
WORKABLE: tuple[CaseStatus, ...] = (CaseStatus.NEW, CaseStatus.DRAFTED, CaseStatus.CLAIMED)
#: not closed yet (approved cases wait for the outbox)
OPEN: tuple[CaseStatus, ...] = (*WORKABLE, CaseStatus.APPROVED)
CLOSED: tuple[CaseStatus, ...] = (
    CaseStatus.SENT,
    CaseStatus.RESOLVED,
    CaseStatus.REJECTED,
    CaseStatus.MERGED,
)
#: the draft versions that are the case's reply (newest wins)
LIVE_DRAFTS: tuple[DraftStatus, ...] = (DraftStatus.CURRENT, DraftStatus.APPROVED)
#: offers still in play on a workable case
LIVE_OFFERS: tuple[OfferStatus, ...] = (OfferStatus.SUGGESTED, OfferStatus.SELECTED)
#: outbox messages a sender may still have to deliver
OUTBOX_WAITING: tuple[OutboxStatus, ...] = (OutboxStatus.PENDING, OutboxStatus.SENDING)


class Action(StrEnum):
    """Every action a person takes on a case."""

    CLAIM = "claim"
    RELEASE = "release"
    ASSIGN = "assign"
    EDIT_DRAFT = "edit_draft"
    SELECT_OFFER = "select_offer"
    APPROVE = "approve"
    REJECT = "reject"
    REOPEN = "reopen"
    SNOOZE = "snooze"
    RESOLVE = "resolve"
    MARK_SENT = "mark_sent"
    FULFIL = "fulfil"
    MERGE = "merge"  #: another case of the same customer joins this one


class Claim(StrEnum):
    """What an action needs of the case's claim (``cases.assignee``)."""

    ANY = "any"  #: nobody's claim matters (the action settles the claim itself)
    HOLDER = "holder"  #: unclaimed, or claimed by the actor; a lead or admin may override


class Target(StrEnum):
    """Where an action leaves a case when that is not one fixed status."""

    KEEP = "keep"  #: the status does not change
    UNCLAIMED = "unclaimed"  #: drafted (or new without a draft); claimed when someone holds it
    DRAFTED = "drafted"  #: a new case becomes drafted; others keep their status


@dataclass(frozen=True)
class Move:
    """One row of the table: from where, to where, whose claim, which event."""

    sources: frozenset[CaseStatus]
    to: CaseStatus | Target
    claim: Claim
    event: str
    verb: str  #: for messages: "case 12 is sent: it cannot be {verb}"


def _move(
    sources: tuple[CaseStatus, ...] | CaseStatus,
    to: CaseStatus | Target,
    claim: Claim,
    event: str,
    verb: str,
) -> Move:
    states = (sources,) if isinstance(sources, CaseStatus) else sources
    return Move(frozenset(states), to, claim, event, verb)


S = CaseStatus
#: the one transitions table
TRANSITIONS: dict[Action, Move] = {
    Action.CLAIM: _move(WORKABLE, S.CLAIMED, Claim.ANY, "case.claimed", "claimed"),
    Action.RELEASE: _move(S.CLAIMED, Target.UNCLAIMED, Claim.HOLDER, "case.released", "released"),
    Action.ASSIGN: _move(WORKABLE, S.CLAIMED, Claim.ANY, "case.assigned", "assigned"),
    Action.EDIT_DRAFT: _move(WORKABLE, Target.DRAFTED, Claim.HOLDER, "draft.edited", "edited"),
    Action.SELECT_OFFER: _move(WORKABLE, Target.KEEP, Claim.HOLDER, "offer.selected", "changed"),
    Action.APPROVE: _move(WORKABLE, S.APPROVED, Claim.HOLDER, "case.approved", "approved"),
    Action.REJECT: _move(WORKABLE, S.REJECTED, Claim.HOLDER, "case.rejected", "rejected"),
    Action.REOPEN: _move(S.REJECTED, Target.UNCLAIMED, Claim.HOLDER, "case.reopened", "reopened"),
    Action.SNOOZE: _move(WORKABLE, Target.KEEP, Claim.HOLDER, "case.snoozed", "snoozed"),
    Action.RESOLVE: _move(
        (*OPEN, S.SENT), S.RESOLVED, Claim.HOLDER, "case.resolved", "resolved again"
    ),
    Action.MARK_SENT: _move(S.APPROVED, S.SENT, Claim.HOLDER, "reply.sent", "marked sent"),
    Action.MERGE: _move(WORKABLE, Target.KEEP, Claim.HOLDER, "case.merged", "merged"),
    Action.FULFIL: _move(
        (S.APPROVED, S.SENT, S.RESOLVED), Target.KEEP, Claim.ANY, "offer.fulfilment", "fulfilled"
    ),
}


def unclaimed_status(has_draft: bool) -> CaseStatus:
    """The status of a workable case nobody holds."""
    return CaseStatus.DRAFTED if has_draft else CaseStatus.NEW


def can_start(action: Action, status: str) -> bool:
    """Whether ``action`` may start from ``status`` (ignoring who acts)."""
    return status in TRANSITIONS[action].sources


def check_start(action: Action, case_id: int, status: str) -> None:
    """Conflict, saying why, unless ``action`` may start from ``status``."""
    move = TRANSITIONS[action]
    if status not in move.sources:
        if action is Action.CLAIM and status == CaseStatus.APPROVED:
            raise Conflict(f"case {case_id} is approved and waiting to be sent")
        raise Conflict(f"case {case_id} is {status}: it cannot be {move.verb}")


def next_status(
    action: Action, status: str, *, has_draft: bool, assignee: str | None
) -> CaseStatus:
    """Where ``action`` leaves a case in ``status`` (call :func:`check_start` first)."""
    to = TRANSITIONS[action].to
    if isinstance(to, CaseStatus):
        return to
    current = CaseStatus(status)
    if to is Target.KEEP:
        return current
    if to is Target.DRAFTED:
        return CaseStatus.DRAFTED if current is CaseStatus.NEW else current
    return CaseStatus.CLAIMED if assignee else unclaimed_status(has_draft)


def holds_claim(assignee: str | None, actor: str) -> bool:
    """Whether ``actor`` may act under the HOLDER rule without overriding anyone."""
    return assignee is None or assignee == actor
