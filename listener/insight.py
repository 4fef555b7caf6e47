"""Marketing's read model: any date range against the previous period, share of voice, top
terms and emerging topics — from the rollups, so a 90-day range costs the same as a day.

* Counts come from ``mention_rollups_daily`` (whole UTC days) and ``mention_rollups``
  (hours: short ranges, and the partial day that ends the comparison period); nothing here
  scans the mentions.
* The **previous period** has the same length and ends as far before ``now`` as the range
  does: the last 7 days so far are compared with the 7 days before, up to the same hour.
* **Share of voice**: posts naming our brand and each ``dashboard.competitors`` entry
  (``brand_rollups_daily``), among what the sources collect.
* **Top terms** and **emerging topics** are counted on ``dashboard.term_sample`` posts read
  evenly across each period (exact when the period has fewer posts), emerging meaning used
  much more now than in the previous period.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from listener import models as m
from listener import rollups
from listener.terms import brand_exclusions, document_frequency, emerging, top_terms

if TYPE_CHECKING:
    from listener.app import App

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
LABELS = ("negative", "neutral", "positive", "unclassified")
TERM_SLICES = 16


@dataclass(frozen=True)
class Period:
    """A date range [since, until) with its comparison period [prev_since, prev_until)."""

    since: datetime
    until: datetime
    prev_since: datetime
    prev_until: datetime

    @classmethod
    def of(cls, since: datetime, until: datetime, now: datetime) -> Period:
        length = until - since
        end = min(until, max(since, now.replace(minute=0, second=0, microsecond=0) + HOUR))
        return cls(since, until, since - length, end - length)

    @property
    def days(self) -> int:
        return max(1, round((self.until - self.since) / DAY))

    @property
    def bucket(self) -> str:
        """'hour' up to two days, 'day' up to 120 days, else 'week'."""
        if self.until - self.since <= 2 * DAY:
            return "hour"
        return "day" if self.until - self.since <= 120 * DAY else "week"


@dataclass(frozen=True)
class Scope:
    """Which posts: a source and/or a category (empty: all)."""

    source: str | None = None
    category: str | None = None


def _split(
    since: datetime, until: datetime
) -> tuple[list[tuple[datetime, datetime]], list[tuple[datetime, datetime]]]:
    """[since, until) as whole days plus the hours at either edge: (day spans, hour spans)."""
    first_day = since if since == rollups.day_of(since) else rollups.day_of(since) + DAY
    last_day = rollups.day_of(until)
    if first_day >= last_day:
        return [], [(since, until)]
    hours = []
    if since < first_day:
        hours.append((since, first_day))
    if last_day < until:
        hours.append((last_day, until))
    return [(first_day, last_day)], hours


def _where(
    table: Any, column: Any, span: tuple[datetime, datetime], ids: list[int] | None, scope: Scope
) -> list[Any]:
    conds = [column >= span[0], column < span[1]]
    if ids is not None:
        conds.append(table.source_id.in_(ids))
    if scope.category is not None and hasattr(table, "category"):
        conds.append(table.category == scope.category)
    return conds


def _facet_for(
    dims: Sequence[str], ids: list[int] | None, scope: Scope
) -> tuple[str, str | None] | None:
    """The ``mention_facets_daily`` facet (and value) that answers this grouping, if any."""
    keys = [d for d in dims if d in ("source_id", "category")]
    if ids is None and scope.category is None:
        if not keys:
            return "all", None
        if keys == ["source_id"]:
            return "source", None
        if keys == ["category"]:
            return "category", None
    elif ids is not None and len(ids) == 1 and scope.category is None:
        if keys in ([], ["source_id"]):
            return "source", str(ids[0])
    elif ids is None and scope.category is not None and keys in ([], ["category"]):
        return "category", scope.category
    return None


def _grouped(
    session: Session,
    since: datetime,
    until: datetime,
    dims: Sequence[str],
    ids: list[int] | None,
    scope: Scope,
) -> Counter[tuple[Any, ...]]:
    """Sum of n grouped by ``dims`` (of: time, source_id, category, label) over the range:
    whole days from the daily facets (or the full daily cross when two filters combine),
    the hours at the edges from the hourly rollups."""
    out: Counter[tuple[Any, ...]] = Counter()
    if ids is not None and not ids:
        return out  # a source name that does not exist
    days, hours = _split(since, until)
    facet = _facet_for(dims, ids, scope)
    for span in days:
        if facet is not None:
            t = m.MentionFacetDaily
            cols = [t.day if d == "time" else t.label if d == "label" else t.value for d in dims]
            stmt = select(*cols, func.sum(t.n)).where(
                t.facet == facet[0], t.day >= span[0], t.day < span[1]
            )
            if facet[1] is not None:
                stmt = stmt.where(t.value == facet[1])
            for row in session.execute(stmt.group_by(*cols)):
                *key, n = row
                if n:
                    fixed = [
                        int(k) if d == "source_id" else _norm(k)
                        for d, k in zip(dims, key, strict=True)
                    ]
                    out[tuple(fixed)] += int(n)
        else:
            _sum_into(
                out, session, m.MentionRollupDaily, m.MentionRollupDaily.day, span, dims, ids, scope
            )
    for span in hours:
        _sum_into(out, session, m.MentionRollup, m.MentionRollup.hour, span, dims, ids, scope)
    return out


def _sum_into(
    out: Counter[tuple[Any, ...]],
    session: Session,
    table: Any,
    column: Any,
    span: tuple[datetime, datetime],
    dims: Sequence[str],
    ids: list[int] | None,
    scope: Scope,
) -> None:
    cols = [column if d == "time" else getattr(table, d) for d in dims]
    stmt = select(*cols, func.sum(table.n)).where(*_where(table, column, span, ids, scope))
    if cols:
        stmt = stmt.group_by(*cols)
    for row in session.execute(stmt):
        *key, n = row
        if n:
            out[tuple(_norm(k) for k in key)] += int(n)


def _norm(v: Any) -> Any:
    if isinstance(v, str) and len(v) >= 19 and v[4] == "-" and v[10] in " T":
        v = datetime.fromisoformat(v)  # SQLite aggregates may hand back stored strings
    if isinstance(v, datetime) and v.tzinfo is None:
        return v.replace(tzinfo=UTC)
    return v


def _source_ids(session: Session, scope: Scope) -> tuple[dict[int, str], list[int] | None]:
    names = {sid: name for sid, name in session.execute(select(m.Source.id, m.Source.name))}
    if scope.source is None:
        return names, None
    return names, [sid for sid, n in names.items() if n == scope.source]


def bucket_key(t: datetime, size: str) -> str:
    """The key a bucket is shown and linked with: 'YYYY-MM-DD HH', 'YYYY-MM-DD' or the
    Monday of the week."""
    if size == "hour":
        return t.strftime("%Y-%m-%d %H")
    if size == "week":
        t = t - timedelta(days=t.weekday())
    return t.strftime("%Y-%m-%d")


def bucket_keys(period: Period, size: str) -> list[str]:
    step = HOUR if size == "hour" else DAY
    t = period.since
    keys: list[str] = []
    while t < period.until:
        k = bucket_key(t, size)
        if not keys or keys[-1] != k:
            keys.append(k)
        t += step
    return keys


def dashboard(app: App, period: Period, scope: Scope = Scope()) -> dict[str, Any]:
    """Everything marketing's dashboard shows for ``period`` (and its comparison)."""
    size = period.bucket
    with app.sessions() as session:
        names, ids = _source_ids(session, scope)
        over_time = _grouped(session, period.since, period.until, ("time", "label"), ids, scope)
        by_source = _grouped(
            session, period.since, period.until, ("source_id", "label"), ids, scope
        )
        by_category = _grouped(
            session, period.since, period.until, ("category", "label"), ids, scope
        )
        prev_src = _grouped(
            session, period.prev_since, period.prev_until, ("source_id", "label"), ids, scope
        )
        prev_cat = _grouped(
            session, period.prev_since, period.prev_until, ("category",), ids, scope
        )
        prev_time = _grouped(session, period.prev_since, period.prev_until, ("time",), ids, scope)
        sov = _share_of_voice(session, app, period, ids)
        top = _top_authors(session, period, ids, scope)
    volume: dict[str, dict[str, int]] = {
        k: dict.fromkeys(LABELS, 0) for k in bucket_keys(period, size)
    }
    for (t, label), n in over_time.items():
        volume.setdefault(bucket_key(t, size), dict.fromkeys(LABELS, 0))[label] += n
    prev_volume: Counter[str] = Counter()
    for (t,), n in prev_time.items():
        # aligned with the current period's buckets: the same offset from the start
        prev_volume[bucket_key(t + (period.since - period.prev_since), size)] += n
    sources: dict[str, dict[str, int]] = {}
    for (sid, label), n in by_source.items():
        sources.setdefault(names.get(sid, str(sid)), dict.fromkeys(LABELS, 0))[label] += n
    categories: dict[str, dict[str, int]] = {}
    for (cat, label), n in by_category.items():
        categories.setdefault(cat or "none", dict.fromkeys(LABELS, 0))[label] += n
    prev_by_source: Counter[str] = Counter()
    prev_by_category: Counter[str] = Counter()
    prev_labels: Counter[str] = Counter()
    for (sid, label), n in prev_src.items():
        prev_by_source[names.get(sid, str(sid))] += n
        prev_labels[label] += n
    for (cat,), n in prev_cat.items():
        prev_by_category[cat or "none"] += n
    labels: Counter[str] = Counter()
    for counts in volume.values():
        labels.update(counts)
    total = sum(labels.values())
    prev_total = sum(prev_labels.values())
    return {
        "since": period.since,
        "until": period.until,
        "previous": {"since": period.prev_since, "until": period.prev_until, "total": prev_total},
        "bucket": size,
        "total": total,
        "change": _change(total, prev_total),
        "labels": {k: labels.get(k, 0) for k in LABELS},
        "negative_share": _share(labels.get("negative", 0), total),
        "previous_negative_share": _share(prev_labels.get("negative", 0), prev_total),
        "volume": [
            {"key": k, "counts": c, "total": sum(c.values()), "previous": prev_volume.get(k, 0)}
            for k, c in sorted(volume.items())
        ],
        "by_source": _rows(sources, prev_by_source),
        "by_category": _rows(categories, prev_by_category),
        "share_of_voice": sov,
        "top_authors": top,
    }


def _change(now: int, before: int) -> float | None:
    return None if before == 0 else round((now - before) / before, 4)


def _share(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def _rows(table: dict[str, dict[str, int]], previous: Counter[str]) -> list[dict[str, Any]]:
    rows = [
        {
            "key": k,
            "counts": c,
            "total": sum(c.values()),
            "previous": previous.get(k, 0),
            "change": _change(sum(c.values()), previous.get(k, 0)),
        }
        for k, c in table.items()
    ]
    return sorted(rows, key=lambda r: (-r["total"], r["key"]))


def _share_of_voice(
    session: Session, app: App, period: Period, ids: list[int] | None
) -> dict[str, Any]:
    t = m.BrandRollupDaily

    def counts(since: datetime, until: datetime) -> Counter[str]:
        start, end = rollups.day_of(since), rollups.day_of(until - timedelta(microseconds=1)) + DAY
        stmt = select(t.brand, func.sum(t.n)).where(t.day >= start, t.day < end)
        if ids is not None:
            stmt = stmt.where(t.source_id.in_(ids))
        return Counter({b: int(n) for b, n in session.execute(stmt.group_by(t.brand)) if n})

    now_c = counts(period.since, period.until)
    before = counts(period.prev_since, period.prev_until)
    names = rollups.brand_terms(app.settings).names
    total = sum(now_c[b] for b in names)
    prev_total = sum(before[b] for b in names)
    brands = [
        {
            "brand": b,
            "ours": i == 0,
            "n": now_c.get(b, 0),
            "share": _share(now_c.get(b, 0), total),
            "previous": before.get(b, 0),
            "previous_share": _share(before.get(b, 0), prev_total),
        }
        for i, b in enumerate(names)
    ]
    return {
        "brands": brands,
        "total": total,
        "naming_none": now_c.get(rollups.NO_BRAND, 0),
        "current": rollups.brands_current(app, session),
        "whole_days": True,
    }


def _top_authors(
    session: Session, period: Period, ids: list[int] | None, scope: Scope, limit: int = 10
) -> list[dict[str, Any]]:
    """The most-followed authors who posted in the range, with their newest post there."""
    conds = [m.Mention.published_at >= period.since, m.Mention.published_at < period.until]
    if ids is not None:
        conds.append(m.Mention.source_id.in_(ids))
    if scope.category is not None:
        conds.append(m.Mention.category == scope.category)
    posted = select(m.Mention.id).where(m.Mention.author_id == m.Author.id, *conds).exists()
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
    aids = [a.id for a in authors]
    counts = dict(
        session.execute(
            select(m.Mention.author_id, func.count())
            .where(m.Mention.author_id.in_(aids), *conds)
            .group_by(m.Mention.author_id)
        ).all()
    )
    newest_ids = (
        select(func.max(m.Mention.id))
        .where(m.Mention.author_id.in_(aids), *conds)
        .group_by(m.Mention.author_id)
    )
    posts = {
        r.author_id: r
        for r in session.execute(
            select(
                m.Mention.author_id,
                m.Mention.id,
                m.Mention.url,
                m.Mention.text,
                m.Mention.published_at,
            ).where(m.Mention.id.in_(newest_ids))
        )
    }
    out = []
    for a in authors:
        p = posts.get(a.id)
        out.append(
            {
                "handle": a.handle,
                "display_name": a.display_name,
                "platform": a.platform,
                "followers": a.followers,
                "n": int(counts.get(a.id, 0)),
                "post": None
                if p is None
                else {
                    "id": p.id,
                    "url": p.url,
                    "text": " ".join((p.text or "").split())[:200],
                    "published_at": p.published_at,
                },
            }
        )
    return out


# ---------------------------------------------------------------------------
# terms


def _sample_texts(
    session: Session,
    since: datetime,
    until: datetime,
    ids: list[int] | None,
    scope: Scope,
    limit: int,
) -> list[str]:
    """Up to ``limit`` post texts spread evenly over [since, until) (index seeks per slice)."""
    if until <= since:
        return []
    step = (until - since) / TERM_SLICES
    per = max(1, -(-limit // TERM_SLICES))
    texts: list[str] = []
    for i in range(TERM_SLICES):
        a, b = since + step * i, since + step * (i + 1)
        stmt = select(m.Mention.text).where(m.Mention.published_at >= a, m.Mention.published_at < b)
        if ids is not None:
            stmt = stmt.where(m.Mention.source_id.in_(ids))
        if scope.category is not None:
            stmt = stmt.where(m.Mention.category == scope.category)
        texts.extend(session.scalars(stmt.order_by(m.Mention.published_at.desc()).limit(per)))
    return texts


def terms(app: App, period: Period, scope: Scope = Scope(), limit: int = 15) -> dict[str, Any]:
    """Top terms of the period and those emerging against the previous period."""
    n = app.settings.dashboard.term_sample
    exclude = brand_exclusions(
        rollups.brand_terms(app.settings).names + app.settings.brand.match_terms
    )
    with app.sessions() as session:
        _names, ids = _source_ids(session, scope)
        now_texts = _sample_texts(session, period.since, period.until, ids, scope, n)
        before_texts = _sample_texts(session, period.prev_since, period.prev_until, ids, scope, n)
    df = document_frequency(now_texts, exclude)
    before = document_frequency(before_texts, exclude)
    return {
        "sampled": len(now_texts),
        "previous_sampled": len(before_texts),
        "top": [t.__dict__ for t in top_terms(df, limit)],
        "emerging": [
            t.__dict__ for t in emerging(df, len(now_texts), before, len(before_texts), 10)
        ],
    }


__all__ = ["Period", "Scope", "bucket_key", "bucket_keys", "dashboard", "terms"]
