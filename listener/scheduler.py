"""Scheduling use-cases: ``listener run`` on one machine, and the worker-side steps.

**One machine** (:class:`Scheduler`, ``listener run``): takes the database's
scheduler lock (one scheduler per database; a second one is refused with the
holder's name and expiry), renews it from a heartbeat thread and once per
round, and each round polls the sources that are due (``next_check_at`` is
kept in the database: interval with jitter, error backoff and rate-limit
deferrals all land there), then sends approved replies from the outbox, then
sleeps until the next source is due (at most ``max_sleep``).  SIGTERM or
Ctrl-C stops it cleanly: the source being stored is committed, no new work
starts, the lock is released, it exits 0.

It rides out database outages: a round, a renewal or the start that cannot
reach the database is retried with exponential backoff (1 s doubling to
30 s), logged once as ``database.unavailable`` and once as
``database.restored``, and never ends the process.  After an outage the lease
is renewed before any work: if another scheduler took it meanwhile, this one
stops (:class:`~listener.locks.LockLost`).

**Many machines** (used by :mod:`listener.tasks`): :func:`plan_dispatch`
lists what is due, :func:`poll_claimed` claims a source (short transaction)
then polls it with no transaction open, :func:`classify_mentions`
(re-)classifies a batch of mentions exactly once per model version, and
:func:`send_claimed` sends one outbox message (the outbox claims it).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import and_, func, or_, select

from listener import models as m
from listener import rollups
from listener.cases.status import OUTBOX_WAITING
from listener.clock import utcnow
from listener.locks import (
    SCHEDULER_LOCK,
    Heartbeat,
    LockInfo,
    LockLost,
    acquire_lock,
    default_owner,
    holding_source,
    release_lock,
    renew_lock,
)
from listener.outage import Outage, is_outage, ride_out
from listener.pipeline import PollOutcome, poll_sources, sync_sources

if TYPE_CHECKING:
    from listener.app import App

log = structlog.get_logger("listener.scheduler")

#: Outbox states a worker may still have to send.
OUTBOX_TO_SEND = OUTBOX_WAITING


def _record(outcome: PollOutcome) -> None:
    from listener.metrics import record_poll

    record_poll(outcome)


def deliver_outbox(app: App, should_stop: Callable[[], bool] | None = None) -> int:
    """Send approved messages (the outbox's own use-case); returns how many went out."""
    from listener.outbox import deliver_pending

    return deliver_pending(app, should_stop=should_stop)


@dataclass
class RoundReport:
    outcomes: list[PollOutcome] = field(default_factory=list)
    sent: int = 0


class Scheduler:
    """The single-machine scheduler (``listener run``)."""

    def __init__(
        self,
        app: App,
        *,
        max_sleep: float = 30.0,
        lock_ttl: float | None = None,
        owner: str | None = None,
        outage: Outage | None = None,
    ) -> None:
        self.app = app
        self.max_sleep = max_sleep
        # the lease outlives a round's sleep comfortably; the heartbeat renews it meanwhile
        self.lock_ttl = timedelta(seconds=lock_ttl or max(30.0, 3 * max_sleep))
        self.owner = owner or default_owner()
        self.stopping = threading.Event()
        self.lock: LockInfo | None = None
        self.lost: BaseException | None = None
        self.database = outage or Outage("database", cap=10.0, logger=log)

    # -- control -------------------------------------------------------------
    def stop(self, *_args: object) -> None:
        if not self.stopping.is_set():
            log.info("scheduler.stopping")
        self.stopping.set()

    def install_signal_handlers(self) -> None:
        def handler(signum: int, _frame: FrameType | None) -> None:
            log.info("scheduler.signal", signal=signal.Signals(signum).name)
            self.stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    # -- the lock ----------------------------------------------------------------
    def acquire(self) -> LockInfo:
        """Take the scheduler lock; :class:`~listener.locks.LockHeld` names the holder."""
        self.lock = acquire_lock(self.app, self.owner, self.lock_ttl, SCHEDULER_LOCK)
        return self.lock

    def renew(self) -> None:
        self.lock = renew_lock(self.app, self.owner, self.lock_ttl, SCHEDULER_LOCK)

    def release(self) -> None:
        if self.lock is not None:
            try:
                release_lock(self.app, self.owner, SCHEDULER_LOCK)
            except Exception as exc:
                if not is_outage(exc):
                    raise
                log.warning(
                    "scheduler.release_failed",
                    error="the database is unreachable",
                    lock_expires_at=self.lock.expires_at.isoformat(),
                )
            self.lock = None

    def _lost(self, exc: BaseException) -> None:
        self.lost = exc
        log.error("scheduler.lock_lost", error=str(exc))
        self.stop()

    # -- work ------------------------------------------------------------------
    def run_once(self) -> RoundReport:
        """One round: poll what is due, then deliver approved messages.

        Called on its own (``listener run --once``) it takes and releases the
        lock around the round, so it too refuses while a scheduler runs.
        """
        if self.lock is None:
            self.acquire()
            try:
                return self._round()
            finally:
                self.release()
        return self._round()

    def _round(self) -> RoundReport:
        report = RoundReport()
        report.outcomes = poll_sources(
            self.app, due_only=True, should_stop=self.stopping.is_set, on_result=_record
        )
        if not self.stopping.is_set():
            report.sent = deliver_outbox(self.app, should_stop=self.stopping.is_set)
        return report

    def seconds_until_next_due(self) -> float:
        names = [s.name for s in self.app.settings.sources if s.enabled]
        with self.app.sessions() as session:
            nxt = session.scalar(
                select(func.min(m.Source.next_check_at)).where(
                    m.Source.name.in_(names), m.Source.disabled_reason.is_(None)
                )
            )
        if nxt is None:
            return self.max_sleep
        if isinstance(nxt, str):  # pragma: no cover - aggregate on SQLite may lose the type
            nxt = datetime.fromisoformat(nxt)
        if nxt.tzinfo is None:  # pragma: no cover
            nxt = nxt.replace(tzinfo=UTC)
        return max(0.0, min(self.max_sleep, (nxt - datetime.now(UTC)).total_seconds()))

    def run_forever(self) -> None:
        """Run rounds until stopped.  Raises LockHeld if another scheduler runs, LockLost if
        the lock was taken over while this one ran (both end the command non-zero).
        Database outages are ridden out (see the module docs)."""
        try:
            ride_out(self.acquire, self.database, stopping=self.stopping)
        except InterruptedError:
            log.info("scheduler.stopped", reason="stopped before the database came back")
            return
        log.info(
            "scheduler.started",
            sources=len(self.app.settings.sources),
            owner=self.owner,
            lock_until=self.lock.expires_at.isoformat() if self.lock else None,
        )
        beat = Heartbeat(
            self.renew,
            every=max(1.0, self.lock_ttl.total_seconds() / 3),
            on_lost=self._lost,
            name="scheduler-lock",
            outage=self.database,
        )
        try:
            with beat:
                self._loop()
        finally:
            if self.lost is None:
                self.release()
        if self.lost is not None:
            raise self.lost
        log.info("scheduler.stopped")

    def _loop(self) -> None:
        synced = False
        while not self.stopping.is_set():
            try:
                if self.database.down:
                    self.renew()  # the lease first: another scheduler may hold it now
                if not synced:
                    sync_sources(self.app)
                    synced = True
                report = self._round()
                self.renew()
            except LockLost as exc:
                self._lost(exc)
                return
            except Exception as exc:
                if not is_outage(exc):
                    raise
                self.stopping.wait(self.database.failed(exc))
                continue
            self.database.recovered()
            polled = [o for o in report.outcomes if o.status not in ("skipped", "disabled")]
            if polled or report.sent:
                log.info(
                    "scheduler.round",
                    polled=len(polled),
                    sent=report.sent,
                    new=sum(o.new for o in polled),
                    quarantined=sum(o.quarantined for o in polled),
                )
            if self.stopping.is_set():
                return
            try:
                pause = self.seconds_until_next_due()
            except Exception as exc:
                if not is_outage(exc):
                    raise
                pause = self.database.failed(exc)
            self.stopping.wait(max(0.2, pause))


# ---------------------------------------------------------------------------
# worker-side use-cases (called by listener.tasks)


@dataclass
class DispatchPlan:
    """What the beat enqueues this tick."""

    sources: list[str] = field(default_factory=list)
    messages: list[int] = field(default_factory=list)
    classify: list[list[int]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sources": self.sources,
            "messages": self.messages,
            "classify_batches": len(self.classify),
        }


def plan_dispatch(
    app: App,
    *,
    now: datetime | None = None,
    model_version: str | None = None,
    batch: int | None = None,
    classify: bool = True,
) -> DispatchPlan:
    """Due, unclaimed sources; outbox messages to send; mentions to (re-)classify.

    Only a hint: each task claims its row before working, so enqueuing twice
    is harmless.
    """
    now = now or utcnow()
    sync_sources(app, now)
    s, o = m.Source, m.OutboxMessage
    names = [c.name for c in app.settings.sources if c.enabled]
    free_s = or_(s.lease_until.is_(None), s.lease_until <= now)
    free_o = or_(o.lease_until.is_(None), o.lease_until <= now)
    plan = DispatchPlan()
    with app.sessions() as session:
        plan.sources = list(
            session.scalars(
                select(s.name)
                .where(
                    s.name.in_(names),
                    s.enabled.is_(True),
                    s.disabled_reason.is_(None),
                    free_s,
                    or_(s.next_check_at.is_(None), s.next_check_at <= now),
                )
                .order_by(s.next_check_at.is_not(None), s.next_check_at, s.name)
            )
        )
        plan.messages = list(
            session.scalars(
                select(o.id)
                .where(
                    o.status.in_(OUTBOX_TO_SEND),
                    free_o,
                    o.channel.not_in(sorted(_manual())),
                    or_(o.next_attempt_at.is_(None), o.next_attempt_at <= now),
                )
                .order_by(o.id)
            )
        )
        if classify and model_version is not None:
            size = batch or app.settings.workers.classify_batch
            ids = list(
                session.scalars(
                    select(m.Mention.id)
                    .where(_needs_classification(model_version))
                    .order_by(m.Mention.id)
                    .limit(size * 50)
                )
            )
            plan.classify = [ids[i : i + size] for i in range(0, len(ids), size)]
    return plan


def _manual() -> frozenset[str]:
    from listener.channels.registry import MANUAL_CHANNELS

    return MANUAL_CHANNELS


def _needs_classification(model_version: str) -> Any:
    return or_(m.Mention.model_version.is_(None), m.Mention.model_version != model_version)


def poll_claimed(
    app: App,
    name: str,
    *,
    owner: str | None = None,
    ttl: timedelta | None = None,
    force: bool = False,
) -> PollOutcome | None:
    """Claim source ``name``, poll it, release it.  None when it is claimed elsewhere or
    not due (another worker polled it: the duplicate task has nothing to do)."""
    owner = owner or default_owner()
    ttl = ttl or app.settings.workers.lease
    with holding_source(app, name, owner, ttl, due_only=not force) as claimed:
        if not claimed:
            log.info("task.poll_skipped", source=name, reason="claimed elsewhere or not due")
            return None
        # the claimed row exists, and beat's plan_dispatch keeps the table in sync
        outcome = poll_sources(app, [name], on_result=_record, sync=False)[0]
    return outcome


def classify_mentions(app: App, mention_ids: list[int]) -> int:
    """(Re-)classify the given mentions that lack the current model's classification.

    Exactly once per model version even when two workers get the same batch:
    the rows are locked (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite
    serialises writers) and re-checked before classifying.  Returns how many
    were classified.
    """
    from listener.metrics import record_classified
    from listener.pipeline import apply_prediction

    if not mention_ids:
        return 0
    classifier = app.classifier
    version = classifier.version
    started = time.perf_counter()
    now = utcnow()
    with app.sessions() as session, session.begin():
        stmt = (
            select(m.Mention)
            .where(and_(m.Mention.id.in_(mention_ids), _needs_classification(version)))
            .order_by(m.Mention.id)
        )
        if app.engine.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True, of=m.Mention)
        mentions = list(session.scalars(stmt).unique())
        if not mentions:
            return 0
        predictions = classifier.predict([mm.text for mm in mentions])
        counts = rollups.Batch.for_settings(app.settings)
        for mention, pred in zip(mentions, predictions, strict=True):
            counts.remove(mention)
            apply_prediction(session, mention, pred, now)
            counts.add(mention)
        rollups.record(session, counts)
    record_classified(len(mentions), version, time.perf_counter() - started)
    log.info("task.classified", count=len(mentions), model=version)
    return len(mentions)


def send_claimed(app: App, message_id: int, *, owner: str | None = None) -> str:
    """Send one outbox message through the outbox's own claim (lease, ``FOR UPDATE SKIP
    LOCKED``, idempotency key, ``sending`` state): a duplicate task gets ``skipped``.

    Returns ``sent``, ``retry``, ``failed`` or ``skipped``.
    """
    from listener.metrics import record_sent
    from listener.outbox import deliver_one

    result = deliver_one(app, message_id, worker=owner or default_owner())
    record_sent(result)
    return result
