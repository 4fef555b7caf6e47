"""Read queries for the web pages and the JSON API: the queue page, the case page's
extras (author history, presence), and the posts behind a dashboard chart (the
aggregates themselves come from the rollups: :mod:`listener.insight`).

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

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from listener import models as m
from listener.clock import utcnow
from listener.pipeline import OPEN_STATUSES

if TYPE_CHECKING:
    from sqlalchemy.sql.elements import ColumnElement

    from listener.app import App

#: a viewer counts as "looking at the case" this long after their last ping
PRESENCE_TTL = timedelta(seconds=60)
MAX_PER_PAGE = 200
#: a search counts its matches up to this many (then the page says "1000+")
SEARCH_COUNT_CAP = 1000
ALL_STATUSES = ("new", "drafted", "claimed", "approved", "snoozed", "sent", "resolved", "rejected")


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


def text_contains(pattern: str, dialect: str) -> ColumnElement[bool]:
    """Case-insensitive ``mentions.text LIKE pattern``: SQLite's LIKE already ignores ASCII
    case (and ``lower()`` would defeat it); PostgreSQL uses ILIKE (trigram index)."""
    if dialect == "sqlite":
        return m.Mention.text.like(pattern, escape="\\")
    return m.Mention.text.ilike(pattern, escape="\\")


def _queue_where(f: QueueFilter, dialect: str) -> list[ColumnElement[bool]]:
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
        # correlated: only the posts of cases that pass the other filters are searched
        conds.append(
            select(m.Mention.id)
            .where(m.Mention.case_id == m.Case.id, text_contains(pattern, dialect))
            .exists()
        )
    return conds


def queue_page(app: App, f: QueueFilter, now: datetime | None = None) -> dict[str, Any]:
    """One page of the queue, most urgent first, with the counts and facets the page needs."""
    now = now or utcnow()
    per_page = max(1, min(f.per_page, MAX_PER_PAGE))
    page = max(1, f.page)
    with app.sessions() as session:
        where = _queue_where(f, session.get_bind().dialect.name)
        rows = session.execute(
            select(
                m.Case.id,
                m.Case.status,
                m.Case.priority,
                m.Case.reasons,
                m.Case.category,
                m.Case.assignee,
                m.Case.sla_due_at,
                m.Case.mention_count,
                m.Case.unhappy_score,
                m.Case.created_at,
                m.Author.handle,
                m.Author.display_name,
                m.Author.followers,
                m.Source.name.label("source"),
            )
            .join(m.Author, m.Author.id == m.Case.author_id)
            .join(m.Source, m.Source.id == m.Case.source_id)
            .where(*where)
            .order_by(m.Case.priority.desc(), m.Case.sla_due_at.asc(), m.Case.id.asc())
            .limit(per_page)
            .offset((page - 1) * per_page)
        ).all()
        if page == 1 and len(rows) < per_page:
            total = len(rows)  # everything fits on this page: no need to count
        else:
            counted = select(m.Case.id).where(*where)
            if f.q:  # searching: count at most SEARCH_COUNT_CAP + 1 matches ("1000+")
                counted = counted.limit(SEARCH_COUNT_CAP + 1)
            total = session.scalar(select(func.count()).select_from(counted.subquery())) or 0
        ids = [r.id for r in rows]
        texts = _first_texts(session, ids)
        watching = viewers_for(session, ids, now)
    items = []
    for r in rows:
        items.append(
            {
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
            }
        )
    return {
        "items": items,
        "total": total,
        "page": page,
        "per_page": per_page,
        "pages": max(1, -(-total // per_page)),
        "capped": bool(f.q) and total > SEARCH_COUNT_CAP,
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
                .where(m.Case.status.in_(OPEN_STATUSES))
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
        "statuses": list(ALL_STATUSES),
    }


# ---------------------------------------------------------------------------
# presence


def viewers_for(session: Session, case_ids: Sequence[int], now: datetime) -> dict[int, list[str]]:
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


# ---------------------------------------------------------------------------
# case page extras


def author_history(app: App, case_id: int, limit: int = 20) -> dict[str, Any]:
    """The case author's other cases and the offers they received."""
    with app.sessions() as session:
        author_id = session.scalar(select(m.Case.author_id).where(m.Case.id == case_id))
        if author_id is None:
            return {"cases": [], "offers": [], "mentions": 0}
        cases = session.execute(
            select(m.Case.id, m.Case.status, m.Case.category, m.Case.created_at, m.Case.recovered)
            .where(m.Case.author_id == author_id, m.Case.id != case_id)
            .order_by(m.Case.id.desc())
            .limit(limit)
        ).all()
        offers = session.execute(
            select(
                m.Offer.case_id,
                m.Offer.offer_key,
                m.Offer.kind,
                m.Offer.value,
                m.Offer.status,
                m.Offer.created_at,
            )
            .join(m.Case, m.Case.id == m.Offer.case_id)
            .where(
                m.Case.author_id == author_id,
                m.Offer.status.not_in(("suggested", "declined", "cancelled")),
            )
            .order_by(m.Offer.id.desc())
            .limit(limit)
        ).all()
        mentions = (
            session.scalar(
                select(func.count()).select_from(m.Mention).where(m.Mention.author_id == author_id)
            )
            or 0
        )
    return {
        "cases": [dict(r._mapping) for r in cases],
        "offers": [dict(r._mapping) for r in offers],
        "mentions": mentions,
    }


def conversation(app: App, case_id: int, limit: int = 50) -> list[dict[str, Any]]:
    """Posts in the same conversations as the case's posts that are not in the case."""
    with app.sessions() as session:
        conv_ids = [
            c
            for c in session.scalars(
                select(m.Mention.conversation_id).where(m.Mention.case_id == case_id).distinct()
            )
            if c
        ]
        if not conv_ids:
            return []
        rows = session.execute(
            select(
                m.Mention.id, m.Mention.text, m.Mention.url, m.Mention.published_at, m.Author.handle
            )
            .join(m.Author, m.Author.id == m.Mention.author_id)
            .where(
                m.Mention.conversation_id.in_(conv_ids),
                or_(m.Mention.case_id.is_(None), m.Mention.case_id != case_id),
            )
            .order_by(m.Mention.published_at)
            .limit(limit)
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


def latest_corrections(app: App, mention_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The newest agent correction of each mention."""
    if not mention_ids:
        return {}
    with app.sessions() as session:
        newest = (
            select(func.max(m.Correction.id))
            .where(m.Correction.mention_id.in_(list(mention_ids)))
            .group_by(m.Correction.mention_id)
        )
        rows = session.scalars(select(m.Correction).where(m.Correction.id.in_(newest)))
        return {
            c.mention_id: {
                "unhappy": c.unhappy,
                "category": c.category,
                "actor": c.actor,
                "created_at": c.created_at,
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
    "QueueFilter",
    "author_history",
    "conversation",
    "count_mentions",
    "iter_mention_rows",
    "mention_rows",
    "queue_facets",
    "queue_page",
    "touch_viewer",
]
