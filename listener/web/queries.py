"""Read queries for the web pages and the JSON API: the queue's filter menus, the case
page's extras, and the posts behind a dashboard chart (the aggregates themselves come
from the rollups: :mod:`listener.insight`).

(The queue and the case view are the cases package's read models:
:mod:`listener.cases.queue`, :mod:`listener.cases.view`.)  Everything here is a
plain read written with SQLAlchemy Core-style selects, so a page costs a handful
of indexed queries whatever the size of the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select

from listener import models as m
from listener.cases.queue import STATUS_CHOICES, like_pattern, text_contains
from listener.cases.status import OPEN

if TYPE_CHECKING:
    from sqlalchemy.sql.elements import ColumnElement

    from listener.app import App

# ---------------------------------------------------------------------------
# the queue's filter menus

FACETS_TTL = 30.0


def queue_facets(
    app: App, cache: dict[str, Any] | None = None, ttl: float = FACETS_TTL
) -> dict[str, list[str]]:
    """Values for the queue's filter menus (kept in ``cache`` for ``ttl`` seconds)."""
    import time

    if cache is not None:
        hit = cache.get("facets")
        if hit is not None and time.monotonic() - hit[0] < ttl:
            return hit[1]  # type: ignore[no-any-return]
    facets = _queue_facets(app)
    if cache is not None:
        cache["facets"] = (time.monotonic(), facets)
    return facets


def _queue_facets(app: App) -> dict[str, list[str]]:
    with app.sessions() as session:
        sources = list(session.scalars(select(m.Source.name).order_by(m.Source.name)))
        categories = [
            c
            for c in session.scalars(
                select(m.Case.category)
                .where(m.Case.status.in_(OPEN))
                .group_by(m.Case.category)
                .order_by(m.Case.category)
            )
            if c
        ]
        users = list(
            session.scalars(
                select(m.User.username)
                .where(m.User.active.is_(True), m.User.role.in_(("agent", "lead", "admin")))
                .order_by(m.User.username)
            )
        )
    return {
        "sources": sources,
        "categories": categories,
        "assignees": users,
        "statuses": list(STATUS_CHOICES),
    }


# ---------------------------------------------------------------------------
# dashboard


@dataclass(frozen=True)
class MentionFilter:
    """Which mentions a dashboard chart or drill-down covers."""

    since: datetime
    until: datetime
    source: str | None = None
    category: str | None = None
    label: str | None = None
    author: str | None = None  #: author handle
    bucket: str | None = None  #: a bucket key from a volume chart ("2026-11-23" or "… 14")
    q: str | None = None
    terms: tuple[str, ...] = ()  #: posts naming any of these (a brand in share of voice)


def bucket_range(key: str) -> tuple[datetime, datetime]:
    """The time span of a bucket key ('YYYY-MM-DD' or 'YYYY-MM-DD HH')."""
    if len(key) == 13:
        start = datetime.strptime(key, "%Y-%m-%d %H").replace(tzinfo=UTC)
        return start, start + timedelta(hours=1)
    start = datetime.strptime(key, "%Y-%m-%d").replace(tzinfo=UTC)
    return start, start + timedelta(days=1)


def _mention_where(f: MentionFilter, dialect: str) -> list[ColumnElement[bool]]:
    since, until = f.since, f.until
    if f.bucket:
        b0, b1 = bucket_range(f.bucket)
        since, until = max(since, b0), min(until, b1)
    conds: list[ColumnElement[bool]] = [
        m.Mention.published_at >= since,
        m.Mention.published_at < until,
    ]
    if f.source:
        conds.append(m.Mention.source_id.in_(select(m.Source.id).where(m.Source.name == f.source)))
    if f.category:
        conds.append(m.Mention.category == f.category)
    if f.label == "unclassified":
        conds.append(m.Mention.label.is_(None))
    elif f.label:
        conds.append(m.Mention.label == f.label)
    if f.author:
        conds.append(
            m.Mention.author_id.in_(select(m.Author.id).where(m.Author.handle == f.author))
        )
    if f.q and f.q.strip():
        conds.append(text_contains(like_pattern(f.q.strip()), dialect))
    if f.terms:
        conds.append(or_(*(text_contains(like_pattern(t), dialect) for t in f.terms if t.strip())))
    return conds


def mention_rows(
    app: App, f: MentionFilter, *, limit: int = 100, offset: int = 0
) -> list[dict[str, Any]]:
    """The posts behind a chart point, newest first."""
    with app.sessions() as session:
        stmt = _mention_select(f, app.engine.dialect.name).limit(limit).offset(offset)
        rows = session.execute(stmt).all()
    return [dict(r._mapping) for r in rows]


def _mention_select(f: MentionFilter, dialect: str) -> Any:
    return (
        select(
            m.Mention.id,
            m.Mention.published_at,
            m.Source.name.label("source"),
            m.Author.handle.label("author"),
            m.Author.followers,
            m.Mention.label,
            m.Mention.unhappy_score,
            m.Mention.category,
            m.Mention.case_id,
            m.Mention.url,
            m.Mention.text,
        )
        .join(m.Source, m.Source.id == m.Mention.source_id)
        .join(m.Author, m.Author.id == m.Mention.author_id)
        .where(*_mention_where(f, dialect))
        .order_by(m.Mention.published_at.desc(), m.Mention.id.desc())
    )


def iter_mention_rows(app: App, f: MentionFilter, batch: int = 1000) -> Iterator[dict[str, Any]]:
    """Every mention matching ``f`` (for CSV export), streamed in batches."""
    with app.sessions() as session:
        result = session.execute(
            _mention_select(f, app.engine.dialect.name).execution_options(yield_per=batch)
        )
        for r in result:
            yield dict(r._mapping)


def count_mentions(app: App, f: MentionFilter) -> int:
    with app.sessions() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(m.Mention)
                .where(*_mention_where(f, app.engine.dialect.name))
            )
            or 0
        )


__all__ = [
    "MentionFilter",
    "count_mentions",
    "iter_mention_rows",
    "mention_rows",
    "queue_facets",
]
