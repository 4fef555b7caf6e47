"""Read queries for the dashboard pages and the JSON API: the queue's filter menus, the
dashboard aggregates and the posts behind them.

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

from sqlalchemy import func, literal_column, select, tuple_
from sqlalchemy.orm import Session

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


def bucket_size(since: datetime, until: datetime) -> str:
    """'hour' for windows up to two days, else 'day'."""
    return "hour" if until - since <= timedelta(days=2) else "day"


def _bucket_expr(dialect: str, size: str) -> Any:
    if dialect == "postgresql":  # a timestamp; bucket_key() formats it
        return func.date_trunc(size, func.timezone("UTC", m.Mention.published_at))
    # SQLite stores UTC as 'YYYY-MM-DD HH:MM:SS[.ffffff]'
    return func.substr(m.Mention.published_at, 1, 13 if size == "hour" else 10)


def bucket_key(value: Any, size: str) -> str:
    """A bucket as the string key charts and links use ('YYYY-MM-DD' or 'YYYY-MM-DD HH')."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H" if size == "hour" else "%Y-%m-%d")
    return str(value)


def bucket_keys(since: datetime, until: datetime, size: str) -> list[str]:
    """Every bucket key from ``since`` up to ``until``."""
    step = timedelta(hours=1) if size == "hour" else timedelta(days=1)
    t = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if size != "hour":
        t = t.replace(hour=0)
    keys = []
    while t < until:
        keys.append(bucket_key(t, size))
        t += step
    return keys


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
    return conds


def dashboard(app: App, f: MentionFilter) -> dict[str, Any]:
    """Volume and sentiment over time, by source and category, and the top authors by reach.

    One grouped pass over the window (an index-only scan of
    ``ix_mentions_dashboard``) feeds every chart; the top authors walk the
    authors by followers and stop at the first ten who posted in the window.
    """
    size = bucket_size(f.since, f.until)
    where = _mention_where(f, app.engine.dialect.name)
    label = func.coalesce(m.Mention.label, literal_column("'unclassified'")).label("label")
    with app.sessions() as session:
        dialect = session.get_bind().dialect.name
        bucket = _bucket_expr(dialect, size).label("bucket")
        if dialect == "postgresql":
            rows = list(_grouping_sets(session, bucket, label, where))
        else:
            rows = list(_one_pass(session, bucket, label, where))
        names = {sid: name for sid, name in session.execute(select(m.Source.id, m.Source.name))}
        top = _top_authors(session, f, where)
    volume: dict[str, dict[str, int]] = {}
    by_source: dict[str, dict[str, int]] = {}
    by_category: dict[str, dict[str, int]] = {}
    tables = {"bucket": volume, "source": by_source, "category": by_category}
    total = 0
    for dimension, key, lab, n in rows:
        if dimension == "bucket":
            total += n
            key = bucket_key(key, size)
        elif dimension == "source":
            key = names.get(key, str(key))
        else:
            key = key or "none"
        counts = tables[dimension].setdefault(key, dict.fromkeys(LABEL_ORDER, 0))
        counts[lab] = counts.get(lab, 0) + n
    for key in bucket_keys(f.since, f.until, size):  # empty days show as gaps, not nothing
        volume.setdefault(key, dict.fromkeys(LABEL_ORDER, 0))
    return {
        "bucket": size,
        "volume": _rows(sorted(volume.items())),
        "by_source": _rows(by_source.items()),
        "by_category": _rows(by_category.items()),
        "top_authors": top,
        "total": total,
    }


def _one_pass(
    session: Session, bucket: Any, label: Any, where: list[ColumnElement[bool]]
) -> Iterator[tuple[str, Any, str, int]]:
    """(dimension, key, label, n) from one GROUP BY over every dimension (SQLite)."""
    for raw, lab, source_id, category, n in session.execute(
        select(bucket, label, m.Mention.source_id, m.Mention.category, func.count())
        .where(*where)
        .group_by(bucket, label, m.Mention.source_id, m.Mention.category)
    ):
        yield "bucket", raw, lab, int(n)
        yield "source", source_id, lab, int(n)
        yield "category", category, lab, int(n)


def _grouping_sets(
    session: Session, bucket: Any, label: Any, where: list[ColumnElement[bool]]
) -> Iterator[tuple[str, Any, str, int]]:
    """(dimension, key, label, n) from one scan with GROUPING SETS (PostgreSQL)."""
    src, cat = m.Mention.source_id, m.Mention.category
    which = func.grouping(bucket, src, cat).label("which")  # bit set = not grouped by it
    sets = func.grouping_sets(tuple_(bucket, label), tuple_(src, label), tuple_(cat, label))
    dimension = {0b011: "bucket", 0b101: "source", 0b110: "category"}
    for w, raw, source_id, category, lab, n in session.execute(
        select(which, bucket, src, cat, label, func.count()).where(*where).group_by(sets)
    ):
        d = dimension[int(w)]
        key = raw if d == "bucket" else source_id if d == "source" else category
        yield d, key, lab, int(n)


def _top_authors(
    session: Session, f: MentionFilter, where: list[ColumnElement[bool]], limit: int = 10
) -> list[dict[str, Any]]:
    """The ``limit`` authors with the most followers who posted in the window."""
    posted = select(m.Mention.id).where(m.Mention.author_id == m.Author.id, *where).exists()
    authors = session.execute(
        select(
            m.Author.id,
            m.Author.handle,
            m.Author.display_name,
            m.Author.platform,
            m.Author.followers,
        )
        .where(m.Author.followers.is_not(None), posted)
        .order_by(m.Author.followers.desc(), m.Author.id)
        .limit(limit)
    ).all()
    if not authors:
        return []
    counts = {
        aid: n
        for aid, n in session.execute(
            select(m.Mention.author_id, func.count())
            .where(m.Mention.author_id.in_([a.id for a in authors]), *where)
            .group_by(m.Mention.author_id)
        )
    }
    return [
        {
            "handle": a.handle,
            "display_name": a.display_name,
            "platform": a.platform,
            "followers": a.followers,
            "n": int(counts.get(a.id, 0)),
        }
        for a in authors
    ]


def _rows(items: Any) -> list[dict[str, Any]]:
    return [{"key": k, "counts": c, "total": sum(c.values())} for k, c in items]


LABEL_ORDER = ("negative", "neutral", "positive", "unclassified")


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
    "dashboard",
    "iter_mention_rows",
    "mention_rows",
    "queue_facets",
]
