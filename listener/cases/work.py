"""The unit of work every case action runs in, and who the actor is.

:func:`case_work` is the one preamble of the case actions (after reader's
one-transaction-per-method storage, and miniflux's thin handlers): in one
transaction it

1. resolves the actor and their role **once**, from the ``users`` table
   (an unknown or disabled user, or a role claim that does not match, is
   refused: :class:`~listener.errors.PermissionDenied`);
2. checks the role's permission for the action (:mod:`listener.permissions`);
3. loads and locks the case (``FOR UPDATE`` on PostgreSQL; SQLite serialises
   writers with ``BEGIN IMMEDIATE``);
4. checks the claim and the state against the transitions table
   (:data:`listener.cases.status.TRANSITIONS`);
5. lets the action do its work, then moves the status as the table says and
   records the action's event **once**.

Anything raised inside rolls the whole action back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from listener import models as m
from listener.cases.status import (
    LIVE_DRAFTS,
    TRANSITIONS,
    Action,
    Claim,
    check_start,
    next_status,
)
from listener.clock import utcnow
from listener.errors import Conflict, NotFound, PermissionDenied, StaleDraft
from listener.permissions import LEAD_ROLES, require

if TYPE_CHECKING:
    from listener.app import App

SYSTEM_ACTOR = "listener"
BUDGET_LOCK_KEY = 0x4C53_5243  # "LSRC": serialises approvals (budget read-check-write)
#: actions after which a snoozed case is awake again (someone is working it)
WAKES = frozenset({Action.CLAIM, Action.ASSIGN, Action.APPROVE, Action.REJECT, Action.RESOLVE})


@dataclass(frozen=True)
class Actor:
    """A person acting on cases, as the ``users`` table knows them."""

    username: str
    role: str

    @property
    def is_lead(self) -> bool:
        return self.role in LEAD_ROLES


def resolve_actor(session: Session, username: str, *, role: str | None = None) -> Actor:
    """The known, active user ``username`` with their role from the ``users`` table.

    ``role``, when given, is a claim to check (``--role lead`` on the CLI): a
    mismatch is refused rather than believed.
    """
    user = session.scalars(select(m.User).where(m.User.username == username)).one_or_none()
    if user is None:
        raise PermissionDenied(
            f"unknown user {username!r}: only known users act on cases "
            f"(`listener users add {username} --role agent`)"
        )
    if not user.active:
        raise PermissionDenied(f"user {username!r} is disabled")
    if role is not None and role != user.role:
        raise PermissionDenied(f"{username} is {_a(user.role)}, not {_a(role)}")
    return Actor(user.username, user.role)


def actor_of(app: App, username: str, *, role: str | None = None) -> Actor:
    """:func:`resolve_actor` in a short read-only session (for interfaces that show who acts)."""
    with app.sessions() as session:
        return resolve_actor(session, username, role=role)


def _a(role: str) -> str:
    return ("an " if role[:1] in "aeiou" else "a ") + role


def case_query() -> Any:
    """A case with everything the actions and the summary read, loaded in a few queries."""
    return select(m.Case).options(
        selectinload(m.Case.mentions),
        selectinload(m.Case.drafts),
        selectinload(m.Case.offers),
        selectinload(m.Case.source),
    )


def get_case(session: Session, case_id: int) -> m.Case:
    """The case (NotFound otherwise), its posts, drafts and offers loaded."""
    case = session.scalars(case_query().where(m.Case.id == case_id)).unique().one_or_none()
    if case is None:
        raise NotFound(f"no case {case_id}")
    return case


def lock_case(session: Session, case_id: int) -> m.Case:
    """:func:`get_case`, the row locked for this transaction on PostgreSQL."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(m.Case.id).where(m.Case.id == case_id).with_for_update()).first()
    return get_case(session, case_id)


def current_draft(case: m.Case) -> m.Draft | None:
    """The case's reply: its newest live draft version."""
    live = [d for d in case.drafts if d.status in LIVE_DRAFTS]
    return live[-1] if live else None


def check_claim(case: m.Case, actor: Actor) -> None:
    """Someone else's claim blocks agents; leads and admins may act on it."""
    if case.assignee and case.assignee != actor.username and not actor.is_lead:
        raise Conflict(f"case {case.id} is claimed by {case.assignee}")


@dataclass
class CaseWork:
    """What an action body gets: the session, the locked case, the actor, the clock."""

    session: Session
    case: m.Case
    actor: Actor
    action: Action
    now: datetime
    kind: str = ""  #: the event this action records (the table's, unless the body names another)
    data: dict[str, Any] = field(default_factory=dict)
    silent: bool = False  #: nothing changed: no event, no status move
    #: events that follow from the action, written after its own: (actor, kind, data)
    consequences: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def record(self, event: str | None = None, /, **data: Any) -> None:
        """Data for the action's one event (and, optionally, which kind of event it is)."""
        if event is not None:
            self.kind = event
        self.data.update(data)

    def nothing_changed(self) -> None:
        self.silent = True

    def event(self, kind: str, /, **data: Any) -> None:
        """A further fact the action established first (the edit an approval saved)."""
        add_event(self.session, self.case, self.actor.username, kind, self.now, **data)

    def then(self, actor: str, kind: str, /, **data: Any) -> None:
        """A fact that follows from the action (the reply rewritten for a new offer),
        recorded after the action's own event."""
        self.consequences.append((actor, kind, data))

    def draft(self) -> m.Draft | None:
        return current_draft(self.case)

    def expect_draft_version(self, seen: int | None) -> None:
        """StaleDraft (409, with the current text) when the reply changed since ``seen``
        (0: the actor saw no reply at all)."""
        if seen is None:
            return
        draft = current_draft(self.case)
        if draft is None and seen == 0:  # "I saw no reply yet", and there is none
            return
        if draft is None or draft.version != seen:
            raise StaleDraft(
                f"case {self.case.id}: the reply changed since you saw it "
                f"(you saw version {seen}, the current one is "
                f"{'none' if draft is None else draft.version}"
                f"{'' if draft is None else ' by ' + draft.created_by}); "
                "compare it with yours and try again",
                version=None if draft is None else draft.version,
                text=None if draft is None else draft.text,
                subject=None if draft is None else draft.subject,
            )


def add_event(
    session: Session, case: m.Case, actor: str, kind: str, now: datetime, /, **data: Any
) -> None:
    session.add(m.Event(actor=actor, kind=kind, case_id=case.id, at=now, data=data))


def _serialise_budget(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": BUDGET_LOCK_KEY})


@contextmanager
def case_work(
    app: App,
    case_id: int,
    by: str,
    action: Action,
    *,
    role: str | None = None,
    now: datetime | None = None,
    budget: bool = False,
    lock_first: tuple[int, ...] = (),
) -> Iterator[CaseWork]:
    """Run one case action (see the module docs).

    ``role``: a role the caller claims (checked, never believed); ``budget``
    serialises the transaction with every other one that spends the offer budget;
    ``lock_first``: further cases the action changes, locked with this one in id
    order (two actions on the same pair never deadlock).
    """
    now = now or utcnow()
    move = TRANSITIONS[action]
    try:
        with app.sessions() as session, session.begin():
            if budget:
                _serialise_budget(session)
            actor = resolve_actor(session, by, role=role)
            require(actor.role, action.value, actor=actor.username)
            if lock_first and session.get_bind().dialect.name == "postgresql":
                for other in sorted({*lock_first, case_id}):
                    session.execute(
                        select(m.Case.id).where(m.Case.id == other).with_for_update()
                    ).first()
            case = lock_case(session, case_id)
            if move.claim is Claim.HOLDER:
                check_claim(case, actor)
            check_start(action, case.id, case.status)
            work = CaseWork(session, case, actor, action, now, kind=move.event)
            yield work
            if work.silent:
                return
            if action in WAKES and case.snoozed_until is not None:
                if case.snoozed_until > now:
                    work.data.setdefault("woke", True)
                case.snoozed_until = case.snoozed_by = case.snooze_note = None
            case.status = next_status(
                action,
                case.status,
                has_draft=current_draft(case) is not None,
                assignee=case.assignee,
            )
            case.updated_at = now
            add_event(session, case, actor.username, work.kind, now, **work.data)
            for who, kind, data in work.consequences:
                add_event(session, case, who, kind, now, **data)
            session.flush()
    except IntegrityError as exc:
        raise Conflict(
            f"case {case_id} was changed at the same time by someone else; reload and retry"
        ) from exc
