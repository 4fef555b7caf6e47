"""``listener run``: the single-machine scheduler.

Each round polls the sources that are due (their ``next_check_at`` is kept in
the database, so a restart picks up where it left off), then sleeps until the
next source is due (at most ``max_sleep``).  SIGTERM or Ctrl-C stops it
cleanly: the source being stored is committed, no new work starts, it exits.
"""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import func, select

from listener import models as m
from listener.pipeline import PollOutcome, poll_sources, sync_sources

if TYPE_CHECKING:
    from listener.app import App

log = structlog.get_logger("listener.scheduler")


@dataclass
class RoundReport:
    outcomes: list[PollOutcome] = field(default_factory=list)
    sent: int = 0


class Scheduler:
    def __init__(self, app: App, *, max_sleep: float = 30.0) -> None:
        self.app = app
        self.max_sleep = max_sleep
        self.stopping = threading.Event()

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

    # -- work ------------------------------------------------------------------
    def run_once(self) -> RoundReport:
        """One round: poll what is due, then deliver approved messages."""
        report = RoundReport()
        report.outcomes = poll_sources(
            self.app, due_only=True, should_stop=self.stopping.is_set
        )
        if not self.stopping.is_set():
            report.sent = self._deliver()
        return report

    def _deliver(self) -> int:
        try:
            from listener.outbox import deliver_pending
        except ImportError:  # the outbox arrives with the recovery module
            return 0
        return deliver_pending(self.app, should_stop=self.stopping.is_set)

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
        if nxt.tzinfo is None:  # pragma: no cover - aggregate on SQLite may lose the type
            nxt = nxt.replace(tzinfo=UTC)
        return max(0.0, min(self.max_sleep, (nxt - datetime.now(UTC)).total_seconds()))

    def run_forever(self) -> None:
        sync_sources(self.app)
        log.info("scheduler.started", sources=len(self.app.settings.sources))
        while not self.stopping.is_set():
            report = self.run_once()
            polled = [o for o in report.outcomes if o.status not in ("skipped", "disabled")]
            if polled or report.sent:
                log.info("scheduler.round", polled=len(polled), sent=report.sent,
                         new=sum(o.new for o in polled))
            if self.stopping.is_set():
                break
            self.stopping.wait(max(0.2, self.seconds_until_next_due()))
        log.info("scheduler.stopped")
