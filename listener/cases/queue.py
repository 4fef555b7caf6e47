"""The queue: one query, most urgent first, for the CLI, the queue page and the API.

:class:`QueueFilter` says which cases; :func:`queue_page` returns one page of
:class:`QueueItem` (plus counts); :func:`list_queue` every matching case, as
``listener queue --json`` prints them.  By default the queue holds the cases
to work: new, drafted or claimed, and awake.  Views:

* ``snoozed``: cases sleeping until a time (they come back by themselves,
  in their place, with the snoozer's note);
* ``waiting``: cases whose offer needs a lead's approval, that this lead
  did not choose or draft (the leads' "waiting for me");
* ``sending``: approved replies the outbox has still to deliver;
* ``all``: every case; or one status (``claimed``, ``sent``…).

The order is priority (high first), then the first-response deadline, then
the id; :func:`neighbours` and :func:`next_case` walk it from a case.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, not_, or_, select
from sqlalchemy.orm import Session, aliased

from listener import models as m
from listener.cases.audit import mask
from listener.cases.offering import shown_offer
from listener.cases.presence import viewers_for
from listener.cases.status import WORKABLE, CaseStatus, DraftStatus, OfferStatus
from listener.clock import utcnow
from listener.errors import PolicyViolation
from listener.gestures import shown_gesture

if TYPE_CHECKING:
    from sqlalchemy.sql.elements import ColumnElement

    from listener.app import App

MAX_PER_PAGE = 200
#: a search counts its matches up to this many (then the page says "1000+")
SEARCH_COUNT_CAP = 1000
#: how much of the first post a queue row carries on the page
ROW_TEXT = 300


class View(StrEnum):
    """Queue views besides a single status."""

    SNOOZED = "snoozed"
    WAITING = "waiting"
    SENDING = "sending"
    ALL = "all"


#: what the status filter accepts: a view or a status
STATUS_CHOICES: tuple[str, ...] = (*(v.value for v in View), *(s.value for s in CaseStatus))


@dataclass(frozen=True)
class QueueFilter:
    """Which cases the queue shows; empty fields mean "any"."""

    status: str | None = None  #: a status or a :class:`View`; None: the cases to work
    statuses: tuple[str, ...] = ()  #: several statuses (the CLI's repeated --status)
    source: str | None = None
    category: str | None = None
    assignee: str | None = None  #: a username, "-" for unassigned
    q: str | None = None  #: full-text search over the posts
    viewer: str | None = None  #: who is looking (the ``waiting`` view is per lead)
    page: int = 1
    per_page: int = 50

    def __post_init__(self) -> None:
        for s in (self.status, *self.statuses):
            if s is not None and s not in STATUS_CHOICES:
                raise PolicyViolation(
                    f"unknown status or view {s!r} (one of: {', '.join(STATUS_CHOICES)})"
                )


@dataclass
class QueueItem:
    """One queue row.  ``contract()`` is the object ``listener queue --json`` prints."""

    id: int
    status: str
    priority: int
    reasons: list[str]
    category: str | None
    unhappy_score: float
    source: str | None
    author: str | None
    text: str | None
    url: str | None
    draft: str | None
    #: the offer the reply carries (attached), or None — never a mere suggestion
    offer: dict[str, Any] | None
    #: complaint | question | praise | resolved | other (listener.understanding)
    kind: str | None = None
    #: none | apology_and_help | goodwill | make_whole | personal (listener.gestures)
    gesture: str = "none"
    #: the source's own ids of the case's posts, oldest first
    post_ids: list[str] = field(default_factory=list)
    # extras (not part of the minimal contract, handy for people and scripts)
    platform: str | None = None
    channel: str | None = None  #: the reply's channel
    lang: str | None = None  #: the first post's detected language
    author_name: str | None = None
    followers: int | None = None
    circumstances: list[str] = field(default_factory=list)
    assignee: str | None = None
    mention_id: int | None = None
    mentions: int = 1
    published_at: str | None = None
    sla_due_at: str | None = None
    created_at: str | None = None
    draft_version: int | None = None
    snoozed_until: str | None = None
    snoozed_by: str | None = None
    snooze_note: str | None = None
    #: snoozed, and the time has come: back in the queue (say so, with the note)
    back_from_snooze: bool = False
    sla_seconds: int | None = None
    viewers: list[str] = field(default_factory=list)
    #: no draft: why the last attempt to write one failed (a template problem)
    draft_error: str | None = None

    def contract(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("sla_seconds")
        d.pop("viewers")
        return d


def offer_dict(offer: m.Offer | None) -> dict[str, Any] | None:
    if offer is None:
        return None
    return {
        "id": offer.id,
        "key": offer.offer_key,
        "kind": offer.kind,
        "value": offer.value,
        "status": offer.status,
        "reasons": list(offer.reasons or []),
        "code": offer.code,
    }


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def shown_draft(drafts: Sequence[m.Draft]) -> m.Draft | None:
    """The draft a summary shows: the newest current/approved/sent one, else the newest."""
    shown = (DraftStatus.CURRENT, DraftStatus.APPROVED, DraftStatus.SENT)
    live = [d for d in drafts if d.status in shown]
    return live[-1] if live else (drafts[-1] if drafts else None)


# ---------------------------------------------------------------------------
# the query


def like_pattern(q: str) -> str:
    """``%q%`` with LIKE wildcards in ``q`` escaped (escape character: backslash)."""
    q = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{q}%"


def text_contains(pattern: str, dialect: str) -> ColumnElement[bool]:
    """Case-insensitive ``mentions.text LIKE pattern``: SQLite's LIKE already ignores ASCII
    case (and ``lower()`` would defeat it); PostgreSQL uses ILIKE (trigram index)."""
    if dialect == "sqlite":
        return m.Mention.text.like(pattern, escape="\\")
    return m.Mention.text.ilike(pattern, escape="\\")


def awake(now: datetime) -> ColumnElement[bool]:
    return or_(m.Case.snoozed_until.is_(None), m.Case.snoozed_until <= now)


def needs_lead(viewer: str | None) -> ColumnElement[bool]:
    """The case's offer needs a lead's approval (and ``viewer`` neither chose nor drafted it)."""
    o = m.Offer
    selected = select(o.id).where(o.case_id == m.Case.id, o.status == OfferStatus.SELECTED).exists()
    o2 = aliased(m.Offer)
    top_rank = (
        select(func.min(o2.rank))
        .where(o2.case_id == o.case_id, o2.status == OfferStatus.SUGGESTED)
        .correlate(o)
        .scalar_subquery()
    )
    chosen_needs_lead = or_(
        select(o.id)
        .where(o.case_id == m.Case.id, o.status == OfferStatus.SELECTED, o.requires_lead)
        .exists(),
        and_(
            not_(selected),
            select(o.id)
            .where(
                o.case_id == m.Case.id,
                o.status == OfferStatus.SUGGESTED,
                o.requires_lead,
                o.rank == top_rank,
            )
            .exists(),
        ),
    )
    conds = [m.Case.status.in_(WORKABLE), chosen_needs_lead]
    if viewer:
        conds.append(
            not_(
                select(o.id)
                .where(
                    o.case_id == m.Case.id,
                    o.status == OfferStatus.SELECTED,
                    o.created_by == viewer,
                )
                .exists()
            )
        )
        conds.append(
            not_(
                select(m.Draft.id)
                .where(m.Draft.case_id == m.Case.id, m.Draft.created_by == viewer)
                .exists()
            )
        )
    return and_(*conds)


def _where(f: QueueFilter, dialect: str, now: datetime) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if f.statuses:
        conds.append(m.Case.status.in_(list(f.statuses)))
        if set(f.statuses) <= set(WORKABLE):
            conds.append(awake(now))
    elif f.status is None:
        conds += [m.Case.status.in_(WORKABLE), awake(now)]
    elif f.status == View.SNOOZED:
        conds.append(m.Case.snoozed_until > now)
    elif f.status == View.WAITING:
        conds += [needs_lead(f.viewer), awake(now)]
    elif f.status == View.SENDING:
        conds.append(m.Case.status == CaseStatus.APPROVED)
    elif f.status != View.ALL:
        conds.append(m.Case.status == f.status)
        if f.status in WORKABLE:
            conds.append(awake(now))
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


ORDER = (m.Case.priority.desc(), m.Case.sla_due_at.asc(), m.Case.id.asc())


def _rows(
    session: Session, where: list[ColumnElement[bool]], limit: int | None, offset: int
) -> Any:
    stmt = (
        select(
            m.Case.id,
            m.Case.status,
            m.Case.priority,
            m.Case.reasons,
            m.Case.category,
            m.Case.circumstances,
            m.Case.assignee,
            m.Case.sla_due_at,
            m.Case.mention_count,
            m.Case.unhappy_score,
            m.Case.created_at,
            m.Case.snoozed_until,
            m.Case.snoozed_by,
            m.Case.snooze_note,
            m.Case.kind,
            m.Case.gesture,
            m.Author.handle,
            m.Author.platform,
            m.Author.display_name,
            m.Author.followers,
            m.Source.name.label("source"),
        )
        .join(m.Author, m.Author.id == m.Case.author_id)
        .join(m.Source, m.Source.id == m.Case.source_id)
        .where(*where)
        .order_by(*ORDER)
        .offset(offset)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return session.execute(stmt).all()


def _first_posts(
    session: Session, case_ids: Sequence[int], text_limit: int | None
) -> dict[int, Any]:
    """Each case's first post (by publication): id, text (cut to ``text_limit``), url, time."""
    if not case_ids:
        return {}
    ranked = (
        select(
            m.Mention.id,
            m.Mention.case_id,
            func.row_number()
            .over(
                partition_by=m.Mention.case_id,
                order_by=(m.Mention.published_at, m.Mention.id),
            )
            .label("n"),
        )
        .where(m.Mention.case_id.in_(list(case_ids)))
        .subquery()
    )
    body = m.Mention.text if text_limit is None else func.substr(m.Mention.text, 1, text_limit)
    rows = session.execute(
        select(
            m.Mention.case_id,
            m.Mention.id,
            body.label("text"),
            m.Mention.url,
            m.Mention.published_at,
            m.Mention.detected_lang,
        ).join(ranked, and_(ranked.c.id == m.Mention.id, ranked.c.n == 1))
    ).all()
    return {r.case_id: r for r in rows}


def _drafts(session: Session, case_ids: Sequence[int]) -> dict[int, m.Draft]:
    """Each case's shown draft (see :func:`shown_draft`)."""
    if not case_ids:
        return {}
    shown = (DraftStatus.CURRENT, DraftStatus.APPROVED, DraftStatus.SENT)
    newest = dict(
        session.execute(
            select(m.Draft.case_id, func.max(m.Draft.id))
            .where(m.Draft.case_id.in_(list(case_ids)), m.Draft.status.in_(shown))
            .group_by(m.Draft.case_id)
        ).all()
    )
    missing = [c for c in case_ids if c not in newest]
    if missing:
        newest.update(
            session.execute(
                select(m.Draft.case_id, func.max(m.Draft.id))
                .where(m.Draft.case_id.in_(missing))
                .group_by(m.Draft.case_id)
            ).all()
        )
    if not newest:
        return {}
    return {
        d.case_id: d
        for d in session.scalars(select(m.Draft).where(m.Draft.id.in_(list(newest.values()))))
    }


def _draft_errors(session: Session, case_ids: Sequence[int]) -> dict[int, str]:
    """For cases without a draft: the error of the last ``draft.failed`` event."""
    if not case_ids:
        return {}
    last = (
        select(func.max(m.Event.id))
        .where(m.Event.kind == "draft.failed", m.Event.case_id.in_(list(case_ids)))
        .group_by(m.Event.case_id)
    )
    return {
        int(c): str((d or {}).get("error") or "draft failed")
        for c, d in session.execute(
            select(m.Event.case_id, m.Event.data).where(m.Event.id.in_(last))
        )
        if c is not None
    }


def _offers(session: Session, case_ids: Sequence[int]) -> dict[int, list[m.Offer]]:
    out: dict[int, list[m.Offer]] = {}
    if not case_ids:
        return out
    for o in session.scalars(
        select(m.Offer).where(m.Offer.case_id.in_(list(case_ids))).order_by(m.Offer.id)
    ):
        out.setdefault(o.case_id, []).append(o)
    return out


def _post_ids(session: Session, case_ids: Sequence[int]) -> dict[int, list[str]]:
    """Each case's posts' ids as the source gave them, oldest first."""
    out: dict[int, list[str]] = {}
    if not case_ids:
        return out
    for case_id, external_id in session.execute(
        select(m.Mention.case_id, m.Mention.external_id)
        .where(m.Mention.case_id.in_(list(case_ids)))
        .order_by(m.Mention.published_at, m.Mention.id)
    ):
        if case_id is not None:
            out.setdefault(case_id, []).append(external_id)
    return out


def _items(
    session: Session, rows: Any, now: datetime, *, text_limit: int | None, presence: bool
) -> list[QueueItem]:
    ids = [r.id for r in rows]
    post_ids = _post_ids(session, ids)
    posts = _first_posts(session, ids, text_limit)
    drafts = _drafts(session, ids)
    offers = _offers(session, ids)
    draft_errors = _draft_errors(session, [i for i in ids if i not in drafts])
    watching = viewers_for(session, ids, now) if presence else {}
    items = []
    for r in rows:
        post = posts.get(r.id)
        draft = drafts.get(r.id)
        attached = shown_offer(offers.get(r.id, []))
        items.append(
            QueueItem(
                id=r.id,
                status=str(r.status),
                priority=r.priority,
                reasons=list(r.reasons or []),
                category=r.category,
                unhappy_score=round(float(r.unhappy_score or 0.0), 6),
                source=r.source,
                author=r.handle,
                text=post.text if post else None,
                url=post.url if post else None,
                draft=draft.text if draft else None,
                offer=offer_dict(attached),
                kind=r.kind,
                gesture=shown_gesture(r.gesture, attached.kind if attached else None),
                post_ids=post_ids.get(r.id, []),
                platform=r.platform,
                channel=draft.channel if draft else None,
                lang=post.detected_lang if post else None,
                author_name=r.display_name,
                followers=r.followers,
                circumstances=list(r.circumstances or []),
                assignee=r.assignee,
                mention_id=post.id if post else None,
                mentions=r.mention_count,
                published_at=_iso(post.published_at) if post else None,
                sla_due_at=_iso(r.sla_due_at),
                created_at=_iso(r.created_at),
                draft_version=draft.version if draft else None,
                snoozed_until=_iso(r.snoozed_until),
                snoozed_by=r.snoozed_by,
                snooze_note=r.snooze_note,
                back_from_snooze=r.snoozed_until is not None and r.snoozed_until <= now,
                sla_seconds=(int((r.sla_due_at - now).total_seconds()) if r.sla_due_at else None),
                viewers=watching.get(r.id, []),
                draft_error=draft_errors.get(r.id),
            )
        )
    return items


@dataclass
class QueuePage:
    items: list[QueueItem]
    total: int
    page: int
    per_page: int
    pages: int
    capped: bool  #: a search with more than SEARCH_COUNT_CAP matches (shown as "1000+")


def masked_item(item: QueueItem, prefix: str) -> QueueItem:
    """``item`` with customers' e-mail addresses and coupon codes masked (read-only viewers)."""
    code = (item.offer or {}).get("code")
    return QueueItem(**mask(asdict(item), prefix, [code] if code else []))


def queue_page(
    app: App,
    f: QueueFilter,
    now: datetime | None = None,
    *,
    masked: bool = False,
    prefix: str = "ZS",
) -> QueuePage:
    """One page of the queue, most urgent first, with who else is looking at each case
    (``masked``: contact details and coupon codes hidden, for marketing)."""
    now = now or utcnow()
    per_page = max(1, min(f.per_page, MAX_PER_PAGE))
    page = max(1, f.page)
    with app.sessions() as session:
        where = _where(f, session.get_bind().dialect.name, now)
        rows = _rows(session, where, per_page, (page - 1) * per_page)
        if page == 1 and len(rows) < per_page:
            total = len(rows)  # everything fits on this page: no need to count
        else:
            counted = select(m.Case.id).where(*where)
            if f.q:  # searching: count at most SEARCH_COUNT_CAP + 1 matches ("1000+")
                counted = counted.limit(SEARCH_COUNT_CAP + 1)
            total = session.scalar(select(func.count()).select_from(counted.subquery())) or 0
        items = _items(session, rows, now, text_limit=ROW_TEXT, presence=True)
    if masked:
        items = [masked_item(i, prefix) for i in items]
    return QueuePage(
        items=items,
        total=total,
        page=page,
        per_page=per_page,
        pages=max(1, -(-total // per_page)),
        capped=bool(f.q) and total > SEARCH_COUNT_CAP,
    )


def list_queue(
    app: App, f: QueueFilter | None = None, *, limit: int | None = None
) -> list[QueueItem]:
    """Every case ``f`` matches (the cases to work by default), most urgent first, full text."""
    f = f or QueueFilter()
    now = utcnow()
    with app.sessions() as session:
        rows = _rows(session, _where(f, session.get_bind().dialect.name, now), limit, 0)
        return _items(session, rows, now, text_limit=None, presence=False)


def summary(session: Session, case_id: int, now: datetime | None = None) -> QueueItem | None:
    """One case as a queue item, whatever its status (what the case actions return)."""
    rows = _rows(session, [m.Case.id == case_id], 1, 0)
    items = _items(session, rows, now or utcnow(), text_limit=None, presence=False)
    return items[0] if items else None


# ---------------------------------------------------------------------------
# walking the queue


def _key(session: Session, case_id: int) -> Any:
    return session.execute(
        select(m.Case.priority, m.Case.sla_due_at, m.Case.id).where(m.Case.id == case_id)
    ).one_or_none()


def _after(key: Any) -> ColumnElement[bool]:
    """Cases after ``key`` in queue order (priority desc, SLA asc, id asc)."""
    p, due, cid = key
    if due is None:
        later = and_(m.Case.sla_due_at.is_(None), m.Case.id > cid)
    else:
        later = or_(
            m.Case.sla_due_at > due,
            and_(m.Case.sla_due_at == due, m.Case.id > cid),
        )
    return or_(m.Case.priority < p, and_(m.Case.priority == p, later))


def _before(key: Any) -> ColumnElement[bool]:
    p, due, cid = key
    if due is None:
        earlier = or_(m.Case.sla_due_at.is_not(None), m.Case.id < cid)
    else:
        earlier = or_(
            m.Case.sla_due_at < due,
            and_(m.Case.sla_due_at == due, m.Case.id < cid),
        )
    return or_(m.Case.priority > p, and_(m.Case.priority == p, earlier))


def neighbours(
    app: App, case_id: int, f: QueueFilter | None = None, now: datetime | None = None
) -> tuple[int | None, int | None]:
    """The cases before and after ``case_id`` in the queue ``f`` (j/k on the case page)."""
    f = f or QueueFilter()
    now = now or utcnow()
    with app.sessions() as session:
        key = _key(session, case_id)
        if key is None:
            return None, None
        where = _where(f, session.get_bind().dialect.name, now)
        after = session.scalar(
            select(m.Case.id).where(*where, _after(key)).order_by(*ORDER).limit(1)
        )
        before = session.scalar(
            select(m.Case.id)
            .where(*where, _before(key))
            .order_by(m.Case.priority.asc(), m.Case.sla_due_at.desc(), m.Case.id.desc())
            .limit(1)
        )
    return before, after


def next_case(
    app: App, viewer: str, *, after: int | None = None, now: datetime | None = None
) -> int | None:
    """The most urgent case ``viewer`` can pick up next: to work, awake, and not held by
    anyone else (``after`` excluded: the case just finished)."""
    now = now or utcnow()
    with app.sessions() as session:
        where = _where(QueueFilter(), session.get_bind().dialect.name, now)
        where.append(or_(m.Case.assignee.is_(None), m.Case.assignee == viewer))
        if after is not None:
            where.append(m.Case.id != after)
        return session.scalar(select(m.Case.id).where(*where).order_by(*ORDER).limit(1))
