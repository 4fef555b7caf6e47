"""Who has a case open right now (the case page pings while it is open)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from listener import models as m
from listener.clock import utcnow
from listener.errors import NotFound

if TYPE_CHECKING:
    from listener.app import App

#: a viewer counts as "looking at the case" this long after their last ping
PRESENCE_TTL = timedelta(seconds=60)


def viewers_for(session: Session, case_ids: Sequence[int], now: datetime) -> dict[int, list[str]]:
    """Everyone who pinged each case within :data:`PRESENCE_TTL`."""
    if not case_ids:
        return {}
    out: dict[int, list[str]] = defaultdict(list)
    for cid, user in session.execute(
        select(m.CaseViewer.case_id, m.CaseViewer.username)
        .where(m.CaseViewer.case_id.in_(list(case_ids)), m.CaseViewer.seen_at >= now - PRESENCE_TTL)
        .order_by(m.CaseViewer.username)
    ):
        out[cid].append(user)
    return dict(out)


def touch_viewer(app: App, case_id: int, username: str, now: datetime | None = None) -> list[str]:
    """Record that ``username`` has the case open; return everyone else looking at it."""
    now = now or utcnow()
    with app.sessions.begin() as session:
        if session.get(m.Case, case_id) is None:
            raise NotFound(f"no case {case_id}")
        res = session.execute(
            update(m.CaseViewer)
            .where(m.CaseViewer.case_id == case_id, m.CaseViewer.username == username)
            .values(seen_at=now)
        )
        if not res.rowcount:  # type: ignore[attr-defined]
            try:
                with session.begin_nested():
                    session.add(m.CaseViewer(case_id=case_id, username=username, seen_at=now))
            except IntegrityError:
                pass  # a second tab inserted it first: seen_at is fresh anyway
        others = viewers_for(session, [case_id], now).get(case_id, [])
    return [u for u in others if u != username]


def others_viewing(app: App, case_id: int, username: str, now: datetime | None = None) -> list[str]:
    """Who else has the case open (read-only: for viewers who do not announce themselves)."""
    now = now or utcnow()
    with app.sessions() as session:
        others = viewers_for(session, [case_id], now).get(case_id, [])
    return [u for u in others if u != username]
