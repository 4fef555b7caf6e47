"""Leases in the database: one scheduler per database, one worker per source or message.

Three kinds of claim, all leases (an owner and an expiry) so that a crashed
holder never blocks anyone for longer than its lease:

* **The scheduler lock** (table ``scheduler_locks``): ``listener run`` takes it
  at start and renews it while it runs (a :class:`Heartbeat` thread plus once
  per round).  A second ``listener run`` is refused with :class:`LockHeld`,
  whose message names the holder and the expiry.  An expired lease is taken
  over.
* **Source claims** (``sources.lease_owner`` / ``lease_until``): a Celery
  worker claims a source before polling it.  On PostgreSQL the claim is a
  short transaction ``SELECT … FOR UPDATE SKIP LOCKED`` + ``UPDATE`` +
  ``COMMIT``; on SQLite a conditional ``UPDATE``.  No transaction stays open
  while the worker then talks to the network.
* Outbox messages are claimed the same way by :mod:`listener.outbox` itself.

Decisions (is a lease free for me?) are pure functions; the rest is I/O.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from listener import models as m
from listener.clock import utcnow
from listener.errors import Conflict
from listener.outage import Outage, is_outage

if TYPE_CHECKING:
    from listener.app import App

log = structlog.get_logger("listener.locks")

SCHEDULER_LOCK = "scheduler"


def default_owner(suffix: str | None = None) -> str:
    """``host:pid`` (plus ``:suffix``): who holds a lease, as shown to operators."""
    owner = f"{socket.gethostname()}:{os.getpid()}"
    return f"{owner}:{suffix}" if suffix else owner


class LockHeld(Conflict):
    """Someone else holds the lease."""

    def __init__(self, message: str, holder: LockInfo | None = None) -> None:
        super().__init__(message)
        self.holder = holder


class LockLost(Conflict):
    """Our lease was taken over (it expired while we were not renewing it)."""


@dataclass(frozen=True)
class LockInfo:
    """A lease on a named lock."""

    name: str
    owner: str
    acquired_at: datetime
    expires_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "owner": self.owner,
            "acquired_at": self.acquired_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
        }


# ---------------------------------------------------------------------------
# pure decisions


def lease_is_free(
    lease_owner: str | None, lease_until: datetime | None, me: str, now: datetime
) -> bool:
    """Whether ``me`` may take a lease held by ``lease_owner`` until ``lease_until``."""
    return lease_owner is None or lease_owner == me or lease_until is None or lease_until <= now


def held_message(holder: LockInfo, what: str = "scheduler") -> str:
    """The operator-facing refusal: who holds the lock and until when."""
    until = holder.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return (
        f"another {what} ({holder.owner}) holds the lock until {until}; stop it or wait "
        "(a stopped holder's lock expires by itself)"
    )


def _free_clause(owner_col: Any, until_col: Any, me: str, now: datetime) -> Any:
    return or_(owner_col.is_(None), owner_col == me, until_col.is_(None), until_col <= now)


# ---------------------------------------------------------------------------
# named locks (scheduler_locks)


def _info(row: m.SchedulerLock) -> LockInfo:
    return LockInfo(row.name, row.owner, row.acquired_at, row.expires_at)


def lock_holder(app: App, name: str = SCHEDULER_LOCK) -> LockInfo | None:
    """The current lease on ``name`` (possibly expired), or None."""
    with app.sessions() as session:
        row = session.get(m.SchedulerLock, name)
        return _info(row) if row is not None else None


def acquire_lock(
    app: App,
    owner: str,
    ttl: timedelta,
    name: str = SCHEDULER_LOCK,
    *,
    now: datetime | None = None,
) -> LockInfo:
    """Take the lease on ``name`` for ``ttl``; raise :class:`LockHeld` when it is held.

    Atomic on both backends: an INSERT (the primary key makes only one
    succeed), else an UPDATE whose WHERE clause only matches a free lease.
    """
    now = now or utcnow()
    expires = now + ttl
    try:
        with app.sessions() as session, session.begin():
            session.add(
                m.SchedulerLock(name=name, owner=owner, acquired_at=now, expires_at=expires)
            )
        log.info("lock.acquired", lock=name, owner=owner)
        return LockInfo(name, owner, now, expires)
    except IntegrityError:
        pass
    with app.sessions() as session, session.begin():
        t = m.SchedulerLock
        result = session.execute(
            update(t)
            .where(t.name == name, or_(t.owner == owner, t.expires_at <= now))
            .values(owner=owner, acquired_at=now, expires_at=expires)
            .execution_options(synchronize_session=False)
        )
        taken = result.rowcount == 1  # type: ignore[attr-defined]
    holder = lock_holder(app, name)
    if taken and holder is not None and holder.owner == owner:
        log.info("lock.acquired", lock=name, owner=owner, took_over=True)
        return holder
    if holder is None:  # released in between: try again from the top
        return acquire_lock(app, owner, ttl, name, now=now)
    raise LockHeld(held_message(holder), holder)


def renew_lock(
    app: App,
    owner: str,
    ttl: timedelta,
    name: str = SCHEDULER_LOCK,
    *,
    now: datetime | None = None,
) -> LockInfo:
    """Extend our lease; raise :class:`LockLost` when someone else holds it now."""
    now = now or utcnow()
    with app.sessions() as session, session.begin():
        t = m.SchedulerLock
        result = session.execute(
            update(t)
            .where(t.name == name, t.owner == owner)
            .values(expires_at=now + ttl)
            .execution_options(synchronize_session=False)
        )
        ok = result.rowcount == 1  # type: ignore[attr-defined]
    if not ok:
        holder = lock_holder(app, name)
        who = f"{holder.owner} since {holder.acquired_at.isoformat()}" if holder else "nobody"
        raise LockLost(f"the {name} lock was lost (now held by {who})")
    holder = lock_holder(app, name)
    assert holder is not None
    return holder


def release_lock(app: App, owner: str, name: str = SCHEDULER_LOCK) -> bool:
    """Give the lease back (only our own). Returns whether we held it."""
    with app.sessions() as session, session.begin():
        t = m.SchedulerLock
        result = session.execute(
            delete(t)
            .where(t.name == name, t.owner == owner)
            .execution_options(synchronize_session=False)
        )
        released = bool(result.rowcount == 1)  # type: ignore[attr-defined]
    if released:
        log.info("lock.released", lock=name, owner=owner)
    return released


class Heartbeat:
    """Calls ``renew`` every ``every`` seconds in a daemon thread until stopped.

    :class:`LockLost` from ``renew`` ends it at once; any other error (the
    database blinked) is logged and retried, and ends it only once renewals
    have failed for ``give_up_after`` seconds (the lease has expired by then).
    ``on_lost`` is called with the error when it ends that way: the holder
    must stop working, its lease may be someone else's now.

    With an ``outage`` tracker (long-running holders: the scheduler, the beat)
    an unreachable database never ends it: the outage is logged once through
    the tracker and renewal goes on; when the database is back, renewal either
    succeeds (the lease row is still ours) or raises :class:`LockLost`.
    """

    def __init__(
        self,
        renew: Callable[[], object],
        every: float,
        on_lost: Callable[[BaseException], None] | None = None,
        name: str = "heartbeat",
        give_up_after: float | None = None,
        outage: Outage | None = None,
    ) -> None:
        self.renew = renew
        self.every = every
        self.on_lost = on_lost
        self.give_up_after = give_up_after if give_up_after is not None else 3 * every
        self.outage = outage
        self.lost: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        last_ok = time.monotonic()
        while not self._stop.wait(self.every):
            try:
                self.renew()
                last_ok = time.monotonic()
                if self.outage is not None:
                    self.outage.recovered()
                continue
            except LockLost as exc:
                error: BaseException = exc
            except Exception as exc:  # a DB hiccup: retry until the lease must have expired
                if self.outage is not None and is_outage(exc):
                    self.outage.failed(exc)
                    continue
                if time.monotonic() - last_ok < self.give_up_after:
                    log.warning("lease.renew_failed", error=str(exc), retrying=True)
                    continue
                error = exc
            self.lost = error
            log.error("lease.lost", error=str(error))
            if self.on_lost is not None:
                self.on_lost(error)
            return

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)


# ---------------------------------------------------------------------------
# row claims (sources, outbox)


def _is_postgres(app: App) -> bool:
    return app.engine.dialect.name == "postgresql"


def claim_source(
    app: App,
    name: str,
    owner: str,
    ttl: timedelta,
    *,
    due_only: bool = True,
    now: datetime | None = None,
) -> bool:
    """Claim source ``name`` for ``ttl`` if it is free (and due, unless ``due_only=False``).

    A short transaction that commits before returning; the caller then polls
    with no transaction open and calls :func:`release_source`.
    """
    now = now or utcnow()
    s = m.Source
    conditions = [
        s.name == name,
        s.enabled.is_(True),
        s.disabled_reason.is_(None),
        _free_clause(s.lease_owner, s.lease_until, owner, now),
    ]
    if due_only:
        conditions.append(or_(s.next_check_at.is_(None), s.next_check_at <= now))
    with app.sessions() as session, session.begin():
        if _is_postgres(app):
            row_id = session.scalars(
                select(s.id).where(and_(*conditions)).with_for_update(skip_locked=True)
            ).first()
            if row_id is None:
                return False
            session.execute(
                update(s)
                .where(s.id == row_id)
                .values(lease_owner=owner, lease_until=now + ttl)
                .execution_options(synchronize_session=False)
            )
            return True
        result = session.execute(
            update(s)
            .where(and_(*conditions))
            .values(lease_owner=owner, lease_until=now + ttl)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def renew_source(app: App, name: str, owner: str, ttl: timedelta) -> None:
    """Extend our claim on a source; :class:`LockLost` if it is not ours any more."""
    s = m.Source
    with app.sessions() as session, session.begin():
        result = session.execute(
            update(s)
            .where(s.name == name, s.lease_owner == owner)
            .values(lease_until=utcnow() + ttl)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise LockLost(f"the claim on source {name!r} was lost")


def release_source(app: App, name: str, owner: str) -> None:
    """Drop our claim on a source (no-op if it is not ours)."""
    s = m.Source
    with app.sessions() as session, session.begin():
        session.execute(
            update(s)
            .where(s.name == name, s.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )


def source_is_due(app: App, name: str, now: datetime | None = None) -> bool:
    """Whether the source is enabled and its next check has come (claimed or not)."""
    now = now or utcnow()
    s = m.Source
    with app.sessions() as session:
        row = session.execute(
            select(s.id).where(
                s.name == name,
                s.enabled.is_(True),
                s.disabled_reason.is_(None),
                or_(s.next_check_at.is_(None), s.next_check_at <= now),
            )
        ).first()
    return row is not None


def source_lease(app: App, name: str) -> tuple[str | None, datetime | None]:
    """(owner, until) of the claim on a source."""
    with app.sessions() as session:
        row = session.execute(
            select(m.Source.lease_owner, m.Source.lease_until).where(m.Source.name == name)
        ).one_or_none()
    return (row[0], row[1]) if row is not None else (None, None)


@contextmanager
def holding_source(
    app: App, name: str, owner: str, ttl: timedelta, *, due_only: bool = True
) -> Iterator[bool]:
    """Claim a source, renew the claim while the body runs, release it after.

    Yields whether the claim succeeded (the body must do nothing when not).
    """
    if not claim_source(app, name, owner, ttl, due_only=due_only):
        yield False
        return
    beat = Heartbeat(
        lambda: renew_source(app, name, owner, ttl),
        every=max(0.5, ttl.total_seconds() / 3),
        name=f"lease-{name}",
    )
    try:
        with beat:
            yield True
    finally:
        release_source(app, name, owner)
