"""Read queries for the web pages and the JSON API: the queue page, the case page's
extras (author history, presence), and the dashboard aggregates.

Everything here is a plain read (plus presence, which is a tiny upsert) written
with SQLAlchemy Core-style selects so a page costs a handful of indexed queries
whatever the size of the database.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, literal_column, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from listener import models as m
from listener.pipeline import OPEN_STATUSES

if TYPE_CHECKING:
    from sqlalchemy.sql.elements import ColumnElement

    from listener.app import App

#: a viewer counts as "looking at the case" this long after their last ping
PRESENCE_TTL = timedelta(seconds=60)
MAX_PER_PAGE = 200
ALL_STATUSES = ("new", "drafted", "claimed", "approved", "snoozed", "sent", "resolved",
                "rejected")


def utcnow() -> datetime:
    return datetime.now(UTC)


def like_pattern(q: str) -> str:
    """``%q%`` with LIKE wildcards in ``q`` escaped (escape character: backslash)."""
    q = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{q}%"


# ---------------------------------------------------------------------------
# queue


@dataclass(frozen=True)
class QueueFilter:
    """What the queue page shows; empty fields mean "any"."""

    status: str | None = None  #: one status, or None for every open status
    source: str | None = None
    category: str | None = None
    assignee: str | None = None  #: a username, "-" for unassigned
    q: str | None = None  #: full-text search over mention text
    page: int = 1
    per_page: int = 50


def _queue_where(f: QueueFilter) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if f.status:
        conds.append(m.Case.status == f.status)
    else:
        conds.append(m.Case.status.in_(OPEN_STATUSES))
    if f.source:
        conds.append(m.Case.source_id.in_(select(m.Source.id).where(m.Source.name == f.source)))
    if f.category:
        conds.append(m.Case.category == f.category)
    if f.assignee == "-":
        conds.append(m.Case.assignee.is_(None))
    elif f.assignee:
        conds.append(m.Case.assignee == f.assignee)
    if f.q and f.q.strip():
        pattern = like_pattern(f.q.strip())
        conds.append(
            m.Case.id.in_(
                select(m.Mention.case_id).where(
                    m.Mention.case_id.is_not(None),
                    m.Mention.text.ilike(pattern, escape="\\"),
                )
            )
        )
    return conds


def queue_page(app: App, f: QueueFilter, now: datetime | None = None) -> dict[str, Any]:
    """One page of the queue, most urgent first, with the counts and facets the page needs."""
    now = now or utcnow()
    per_page = max(1, min(f.per_page, MAX_PER_PAGE))
    page = max(1, f.page)
    where = _queue_where(f)
    with app.sessions() as session:
        total = session.scalar(select(func.count()).select_from(m.Case).where(*where)) or 0
        rows = session.execute(
            select(
                m.Case.id, m.Case.status, m.Case.priority, m.Case.reasons, m.Case.category,
                m.Case.assignee, m.Case.sla_due_at, m.Case.mention_count,
                m.Case.unhappy_score, m.Case.created_at,
                m.Author.handle, m.Author.display_name, m.Author.followers,
                m.Source.name.label("source"),
            )
            .join(m.Author, m.Author.id == m.Case.author_id)
            .join(m.Source, m.Source.id == m.Case.source_id)
            .where(*where)
            .order_by(m.Case.priority.desc(), m.Case.sla_due_at.asc(), m.Case.id.asc())
            .limit(per_page)
            .offset((page - 1) * per_page)
        ).all()
        ids = [r.id for r in rows]
        texts = _first_texts(session, ids)
        watching = viewers_for(session, ids, now)
    items = []
    for r in rows:
        items.append({
            "id": r.id,
            "status": r.status,
            "priority": r.priority,
            "reasons": list(r.reasons or []),
            "category": r.category,
            "assignee": r.assignee,
            "sla_due_at": r.sla_due_at,
            "sla_seconds": int((r.sla_due_at - now).total_seconds()) if r.sla_due_at else None,
            "mentions": r.mention_count,
            "unhappy_score": r.unhappy_score,
            "author": r.handle,
            "author_name": r.display_name,
            "followers": r.followers,
            "source": r.source,
            "text": texts.get(r.id, ""),
            "viewers": watching.get(r.id, []),
        })
    return {
        "items": items,
        "total": total,
        "page": page,
        "per_page": per_page,
        "pages": max(1, -(-total // per_page)),
    }


def _first_texts(session: Session, case_ids: Sequence[int], limit: int = 300) -> dict[int, str]:
    """The text of each case's first post, cut to ``limit`` characters."""
    if not case_ids:
        return {}
    first = (
        select(m.Mention.case_id, func.min(m.Mention.id).label("mid"))
        .where(m.Mention.case_id.in_(list(case_ids)))
        .group_by(m.Mention.case_id)
        .subquery()
    )
    rows = session.execute(
        select(m.Mention.case_id, func.substr(m.Mention.text, 1, limit)).join(
            first, first.c.mid == m.Mention.id
        )
    ).all()
    return {cid: text or "" for cid, text in rows}


def queue_facets(app: App) -> dict[str, list[str]]:
    """Values for the queue's filter menus."""
    with app.sessions() as session:
        sources = list(session.scalars(select(m.Source.name).order_by(m.Source.name)))
        categories = [
            c for c in session.scalars(
                select(m.Case.category).where(m.Case.status.in_(OPEN_STATUSES))
                .group_by(m.Case.category).order_by(m.Case.category)
            ) if c
        ]
        users = list(session.scalars(
            select(m.User.username).where(m.User.active.is_(True),
                                          m.User.role.in_(("agent", "lead", "admin")))
            .order_by(m.User.username)
        ))
    return {"sources": sources, "categories": categories, "assignees": users,
            "statuses": list(ALL_STATUSES)}


# ---------------------------------------------------------------------------
# presence


def viewers_for(session: Session, case_ids: Sequence[int], now: datetime) -> dict[int, list[str]]:
    if not case_ids:
        return {}
    out: dict[int, list[str]] = defaultdict(list)
    for cid, user in session.execute(
        select(m.CaseViewer.case_id, m.CaseViewer.username)
        .where(m.CaseViewer.case_id.in_(list(case_ids)),
               m.CaseViewer.seen_at >= now - PRESENCE_TTL)
        .order_by(m.CaseViewer.username)
    ):
        out[cid].append(user)
    return dict(out)


def touch_viewer(app: App, case_id: int, username: str, now: datetime | None = None) -> list[str]:
    """Record that ``username`` has the case open; return everyone else looking at it."""
    now = now or utcnow()
    with app.sessions.begin() as session:
        if session.get(m.Case, case_id) is None:
            from listener.errors import NotFound

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


def leave_case(app: App, case_id: int, username: str) -> None:
    """Forget the viewer (the page was closed)."""
    with app.sessions.begin() as session:
        session.execute(
            update(m.CaseViewer)
            .where(m.CaseViewer.case_id == case_id, m.CaseViewer.username == username)
            .values(seen_at=utcnow() - PRESENCE_TTL * 2)
        )


# ---------------------------------------------------------------------------
# case page extras


def author_history(app: App, case_id: int, limit: int = 20) -> dict[str, Any]:
    """The case author's other cases and the offers they received."""
    with app.sessions() as session:
        author_id = session.scalar(select(m.Case.author_id).where(m.Case.id == case_id))
        if author_id is None:
            return {"cases": [], "offers": [], "mentions": 0}
        cases = session.execute(
            select(m.Case.id, m.Case.status, m.Case.category, m.Case.created_at,
                   m.Case.recovered)
            .where(m.Case.author_id == author_id, m.Case.id != case_id)
            .order_by(m.Case.id.desc()).limit(limit)
        ).all()
        offers = session.execute(
            select(m.Offer.case_id, m.Offer.offer_key, m.Offer.kind, m.Offer.value,
                   m.Offer.status, m.Offer.created_at)
            .join(m.Case, m.Case.id == m.Offer.case_id)
            .where(m.Case.author_id == author_id,
                   m.Offer.status.not_in(("suggested", "declined", "cancelled")))
            .order_by(m.Offer.id.desc()).limit(limit)
        ).all()
        mentions = session.scalar(
            select(func.count()).select_from(m.Mention).where(m.Mention.author_id == author_id)
        ) or 0
    return {
        "cases": [dict(r._mapping) for r in cases],
        "offers": [dict(r._mapping) for r in offers],
        "mentions": mentions,
    }


def conversation(app: App, case_id: int, limit: int = 50) -> list[dict[str, Any]]:
    """Posts in the same conversations as the case's posts that are not in the case."""
    with app.sessions() as session:
        conv_ids = [
            c for c in session.scalars(
                select(m.Mention.conversation_id).where(m.Mention.case_id == case_id).distinct()
            ) if c
        ]
        if not conv_ids:
            return []
        rows = session.execute(
            select(m.Mention.id, m.Mention.text, m.Mention.url, m.Mention.published_at,
                   m.Author.handle)
            .join(m.Author, m.Author.id == m.Mention.author_id)
            .where(m.Mention.conversation_id.in_(conv_ids),
                   or_(m.Mention.case_id.is_(None), m.Mention.case_id != case_id))
            .order_by(m.Mention.published_at).limit(limit)
        ).all()
    return [dict(r._mapping) for r in rows]


def latest_classifications(app: App, mention_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The newest classification of each mention (probabilities, category score)."""
    if not mention_ids:
        return {}
    with app.sessions() as session:
        newest = (
            select(func.max(m.Classification.id))
            .where(m.Classification.mention_id.in_(list(mention_ids)))
            .group_by(m.Classification.mention_id)
        )
        rows = session.scalars(select(m.Classification).where(m.Classification.id.in_(newest)))
        return {
            c.mention_id: {
                "label": c.label,
                "probabilities": dict(c.probabilities or {}),
                "unhappy_score": c.unhappy_score,
                "category": c.category,
                "category_score": c.category_score,
                "model_version": c.model_version,
            }
            for c in rows
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
    if dialect == "postgresql":
        fmt = "YYYY-MM-DD HH24" if size == "hour" else "YYYY-MM-DD"
        return func.to_char(func.timezone("UTC", m.Mention.published_at), fmt)
    # SQLite stores UTC as 'YYYY-MM-DD HH:MM:SS[.ffffff]'
    return func.substr(m.Mention.published_at, 1, 13 if size == "hour" else 10)


def bucket_range(key: str) -> tuple[datetime, datetime]:
    """The time span of a bucket key ('YYYY-MM-DD' or 'YYYY-MM-DD HH')."""
    if len(key) == 13:
        start = datetime.strptime(key, "%Y-%m-%d %H").replace(tzinfo=UTC)
        return start, start + timedelta(hours=1)
    start = datetime.strptime(key, "%Y-%m-%d").replace(tzinfo=UTC)
    return start, start + timedelta(days=1)


def _mention_where(f: MentionFilter) -> list[ColumnElement[bool]]:
    since, until = f.since, f.until
    if f.bucket:
        b0, b1 = bucket_range(f.bucket)
        since, until = max(since, b0), min(until, b1)
    conds: list[ColumnElement[bool]] = [
        m.Mention.published_at >= since, m.Mention.published_at < until
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
        conds.append(m.Mention.author_id.in_(select(m.Author.id).where(m.Author.handle == f.author)))
    if f.q and f.q.strip():
        conds.append(m.Mention.text.ilike(like_pattern(f.q.strip()), escape="\\"))
    return conds


def dashboard(app: App, f: MentionFilter) -> dict[str, Any]:
    """Volume and sentiment over time, by source and category, and the top authors by reach."""
    size = bucket_size(f.since, f.until)
    where = _mention_where(f)
    label = func.coalesce(m.Mention.label, literal_column("'unclassified'"))
    with app.sessions() as session:
        dialect = session.get_bind().dialect.name
        bucket = _bucket_expr(dialect, size).label("bucket")
        volume = session.execute(
            select(bucket, label.label("label"), func.count().label("n"))
            .where(*where).group_by(bucket, label).order_by(bucket)
        ).all()
        by_source = session.execute(
            select(m.Source.name, label.label("label"), func.count().label("n"))
            .join(m.Source, m.Source.id == m.Mention.source_id)
            .where(*where).group_by(m.Source.name, label)
        ).all()
        by_category = session.execute(
            select(func.coalesce(m.Mention.category, literal_column("'none'")).label("c"),
                   label.label("label"), func.count().label("n"))
            .where(*where).group_by(literal_column("c"), label)
        ).all()
        counts = (
            select(m.Mention.author_id, func.count().label("n"))
            .where(*where).group_by(m.Mention.author_id).subquery()
        )
        top = session.execute(
            select(m.Author.handle, m.Author.display_name, m.Author.platform,
                   m.Author.followers, counts.c.n)
            .join(counts, counts.c.author_id == m.Author.id)
            .order_by(func.coalesce(m.Author.followers, 0).desc(), m.Author.id)
            .limit(10)
        ).all()
    return {
        "bucket": size,
        "volume": _pivot((b, lab, n) for b, lab, n in volume),
        "by_source": _pivot((s, lab, n) for s, lab, n in by_source),
        "by_category": _pivot((c, lab, n) for c, lab, n in by_category),
        "top_authors": [dict(r._mapping) for r in top],
        "total": sum(n for _, _, n in volume),
    }


LABEL_ORDER = ("negative", "neutral", "positive", "unclassified")


def _pivot(rows: Iterator[tuple[Any, str, int]]) -> list[dict[str, Any]]:
    """[(key, label, n)] → [{"key": k, "counts": {label: n}, "total": n}] in key order."""
    table: dict[Any, dict[str, int]] = {}
    for key, lab, n in rows:
        table.setdefault(key, dict.fromkeys(LABEL_ORDER, 0))[lab] = int(n)
    out = [{"key": k, "counts": c, "total": sum(c.values())} for k, c in table.items()]
    return out


def mention_rows(
    app: App, f: MentionFilter, *, limit: int = 100, offset: int = 0
) -> list[dict[str, Any]]:
    """The posts behind a chart point, newest first."""
    with app.sessions() as session:
        rows = session.execute(_mention_select(f).limit(limit).offset(offset)).all()
    return [dict(r._mapping) for r in rows]


def _mention_select(f: MentionFilter) -> Any:
    return (
        select(
            m.Mention.id, m.Mention.published_at, m.Source.name.label("source"),
            m.Author.handle.label("author"), m.Author.followers, m.Mention.label,
            m.Mention.unhappy_score, m.Mention.category, m.Mention.case_id, m.Mention.url,
            m.Mention.text,
        )
        .join(m.Source, m.Source.id == m.Mention.source_id)
        .join(m.Author, m.Author.id == m.Mention.author_id)
        .where(*_mention_where(f))
        .order_by(m.Mention.published_at.desc(), m.Mention.id.desc())
    )


def iter_mention_rows(app: App, f: MentionFilter, batch: int = 1000) -> Iterator[dict[str, Any]]:
    """Every mention matching ``f`` (for CSV export), streamed in batches."""
    with app.sessions() as session:
        result = session.execute(
            _mention_select(f).execution_options(yield_per=batch)
        )
        for r in result:
            yield dict(r._mapping)


def count_mentions(app: App, f: MentionFilter) -> int:
    with app.sessions() as session:
        return session.scalar(
            select(func.count()).select_from(m.Mention).where(*_mention_where(f))
        ) or 0


__all__ = [
    "MentionFilter",
    "QueueFilter",
    "author_history",
    "conversation",
    "count_mentions",
    "dashboard",
    "iter_mention_rows",
    "mention_rows",
    "queue_facets",
    "queue_page",
    "touch_viewer",
]
