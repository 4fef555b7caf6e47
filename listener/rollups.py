"""Mention counts per hour and per day, kept current at ingest: what the dashboard and the
alert detectors read instead of scanning the mentions.

Four tables (migration 0006):

* ``mention_rollups``: mentions per UTC **hour**, source, category and label;
* ``mention_rollups_daily``: the same per UTC **day** (a 90-day range is 90 rows per key);
* ``mention_facets_daily``: per day and label for all mentions, each source and each category
  on their own (what the unfiltered, or singly filtered, dashboard reads);
* ``brand_rollups_daily``: posts naming each brand (ours and ``dashboard.competitors``)
  per day and source, for share of voice.

**One entry point.**  Whatever stores or re-labels mentions describes the batch
in a :class:`Batch` — :meth:`Batch.remove` a mention *before* changing it,
:meth:`Batch.add` it once stored — and calls :func:`record` once, inside the
same transaction.  ``record`` turns the batch into deltas and applies them with
one ``INSERT … ON CONFLICT DO UPDATE SET n = n + excluded.n`` per table, keys
sorted (concurrent writers lock rows in the same order), so the counts stay
exact under concurrent workers and roll back with the data.  Today the poll
pipeline (one batch per source per poll) and re-classification (one per task)
call it.

:func:`rebuild` recounts everything from the mentions (``listener init`` does it
when the brand terms changed; the benchmark after a bulk load).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from listener import models as m
from listener.clock import utcnow
from listener.matching import terms_in

if TYPE_CHECKING:
    from listener.app import App
    from listener.config import Settings

log = structlog.get_logger("listener.rollups")

NO_CATEGORY = ""
UNCLASSIFIED = "unclassified"
NO_BRAND = ""
BRANDS_STATE = "brands"


def hour_of(t: datetime) -> datetime:
    """The UTC hour ``t`` falls in."""
    return t.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def day_of(t: datetime) -> datetime:
    """The UTC day ``t`` falls in (midnight)."""
    return hour_of(t).replace(hour=0)


# ---------------------------------------------------------------------------
# brands (share of voice)


@dataclass(frozen=True)
class BrandTerms:
    """Our brand and the configured competitors, each with the terms that name it."""

    brands: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]  #: (name, terms, exclusions)

    @property
    def names(self) -> list[str]:
        return [name for name, _, _ in self.brands]

    @property
    def signature(self) -> str:
        """Changes whenever a name or a term does: the brand rollups must be recounted."""
        blob = json.dumps(self.brands, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()

    def named_in(self, text: str) -> tuple[str, ...]:
        """The brands ``text`` names (``('',)`` when it names none)."""
        found = tuple(name for name, terms, excl in self.brands if terms_in(text, terms, excl))
        return found or (NO_BRAND,)


def brand_terms(settings: Settings) -> BrandTerms:
    """Our brand (name, keywords, aliases, handles; minus exclusions) and the competitors."""
    brand = settings.brand
    entries = [(brand.name, tuple(brand.match_terms), tuple(brand.exclusions))]
    for c in settings.dashboard.competitors:
        entries.append((c.name, tuple(t for t in c.terms if t.strip()), ()))
    return _cached_terms(tuple(entries))


@lru_cache(maxsize=16)
def _cached_terms(entries: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]) -> BrandTerms:
    return BrandTerms(entries)


# ---------------------------------------------------------------------------
# the batch and the one function that applies it


@dataclass(frozen=True)
class Counted:
    """What a mention contributes to the rollups."""

    published_at: datetime
    source_id: int
    category: str
    label: str
    brands: tuple[str, ...]


def counted(mention: m.Mention, terms: BrandTerms) -> Counted:
    return Counted(
        published_at=mention.published_at,
        source_id=mention.source_id,
        category=(mention.category or NO_CATEGORY)[:100],
        label=(mention.label or UNCLASSIFIED)[:20],
        brands=terms.named_in(mention.text or ""),
    )


@dataclass
class Batch:
    """The rollup changes of one stored batch of mentions."""

    terms: BrandTerms
    added: list[Counted] = field(default_factory=list)
    removed: list[Counted] = field(default_factory=list)

    @classmethod
    def for_settings(cls, settings: Settings) -> Batch:
        return cls(brand_terms(settings))

    def add(self, mention: m.Mention) -> None:
        """Count ``mention`` as it is now (call after storing or re-labelling it)."""
        self.added.append(counted(mention, self.terms))

    def remove(self, mention: m.Mention) -> None:
        """Un-count ``mention`` as it is now (call before changing it)."""
        self.removed.append(counted(mention, self.terms))

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)


Deltas = tuple[Counter[tuple[Any, ...]], ...]


def deltas(added: Iterable[Counted], removed: Iterable[Counted] = ()) -> Deltas:
    """Count changes per table of :data:`_TABLES` (hourly, daily, facets, brands), zero
    changes dropped (pure)."""
    hourly: Counter[tuple[Any, ...]] = Counter()
    daily: Counter[tuple[Any, ...]] = Counter()
    facets: Counter[tuple[Any, ...]] = Counter()
    brands: Counter[tuple[Any, ...]] = Counter()
    for sign, items in ((1, added), (-1, removed)):
        for c in items:
            hour = hour_of(c.published_at)
            day = hour.replace(hour=0)
            hourly[(hour, c.source_id, c.category, c.label)] += sign
            daily[(day, c.source_id, c.category, c.label)] += sign
            facets[("all", day, "", c.label)] += sign
            facets[("source", day, str(c.source_id), c.label)] += sign
            facets[("category", day, c.category, c.label)] += sign
            for b in c.brands:
                brands[(day, c.source_id, b)] += sign
    return tuple(
        Counter({k: v for k, v in table.items() if v}) for table in (hourly, daily, facets, brands)
    )


_TABLES: tuple[tuple[Any, tuple[str, ...]], ...] = (
    (m.MentionRollup.__table__, ("hour", "source_id", "category", "label")),
    (m.MentionRollupDaily.__table__, ("day", "source_id", "category", "label")),
    (m.MentionFacetDaily.__table__, ("facet", "day", "value", "label")),
    (m.BrandRollupDaily.__table__, ("day", "source_id", "brand")),
)


def record(session: Session, batch: Batch) -> None:
    """Apply one stored batch to every rollup, in the caller's transaction."""
    if not batch:
        return
    for (table, keys), counts in zip(_TABLES, deltas(batch.added, batch.removed), strict=True):
        _upsert(session, table, keys, counts)


def _upsert(
    session: Session, table: Any, keys: Sequence[str], counts: Counter[tuple[Any, ...]]
) -> None:
    if not counts:
        return
    dialect = session.get_bind().dialect.name
    from sqlalchemy.dialects import postgresql, sqlite

    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys), set_={"n": table.c.n + stmt.excluded.n}
    )
    rows = [dict(zip(keys, k, strict=True), n=n) for k, n in sorted(counts.items())]
    session.execute(stmt, rows)


# ---------------------------------------------------------------------------
# recounting


def rebuild(app: App, *, brands_only: bool = False, chunk: int = 20_000) -> int:
    """Recount the rollups from the stored mentions (one transaction); returns the mentions
    read.  ``brands_only`` recounts share of voice only (after the brand terms changed)."""
    terms = brand_terms(app.settings)
    sums: list[Counter[tuple[Any, ...]]] = [Counter() for _ in _TABLES]
    total = 0
    with app.sessions() as session, session.begin():
        tables = _TABLES[-1:] if brands_only else _TABLES
        for table, _keys in tables:
            session.execute(delete(table))
        last = 0
        while True:
            rows = session.execute(
                select(
                    m.Mention.id,
                    m.Mention.published_at,
                    m.Mention.source_id,
                    m.Mention.category,
                    m.Mention.label,
                    m.Mention.text,
                )
                .where(m.Mention.id > last)
                .order_by(m.Mention.id)
                .limit(chunk)
            ).all()
            if not rows:
                break
            last = rows[-1][0]
            total += len(rows)
            items = [
                Counted(
                    published,
                    source_id,
                    (category or NO_CATEGORY)[:100],
                    (label or UNCLASSIFIED)[:20],
                    terms.named_in(text or ""),
                )
                for _id, published, source_id, category, label, text in rows
            ]
            for acc, d in zip(sums, deltas(items), strict=True):
                acc.update(d)
        counts = sums[-1:] if brands_only else sums
        for (table, keys), c in zip(tables, counts, strict=True):
            _upsert(session, table, keys, c)
        _set_signature(session, terms.signature)
    log.info("rollups.rebuilt", mentions=total, brands_only=brands_only)
    return total


def _set_signature(session: Session, signature: str) -> None:
    row = session.get(m.RollupState, BRANDS_STATE)
    if row is None:
        session.add(m.RollupState(name=BRANDS_STATE, signature=signature, built_at=utcnow()))
    else:
        row.signature, row.built_at = signature, utcnow()


def brands_current(app: App, session: Session | None = None) -> bool:
    """Whether share of voice was counted with the brand terms configured now."""
    if session is None:
        with app.sessions() as own:
            return brands_current(app, own)
    row = session.get(m.RollupState, BRANDS_STATE)
    return row is not None and row.signature == brand_terms(app.settings).signature


def ensure_brands(app: App) -> bool:
    """Recount share of voice if the brand terms changed since it was counted (or never
    were); True when it recounted."""
    if brands_current(app):
        return False
    rebuild(app, brands_only=True)
    return True


# ---------------------------------------------------------------------------
# reading (alerts)


def hourly_rows(
    session: Session, since: datetime, until: datetime
) -> list[tuple[datetime, int, str, str, int]]:
    """(hour, source_id, category, label, n) for every non-empty cell in [since, until)."""
    t = m.MentionRollup
    return [
        (hour, sid, cat, lab, int(n))
        for hour, sid, cat, lab, n in session.execute(
            select(t.hour, t.source_id, t.category, t.label, t.n).where(
                t.hour >= since, t.hour < until, t.n > 0
            )
        )
    ]


def last_post_hours(session: Session, source_ids: Sequence[int]) -> dict[int, datetime]:
    """The newest hour with posts, per source (one ``max`` per source on
    ``ix_mention_rollups_source_hour``: an index seek each)."""
    t = m.MentionRollup
    out = {}
    for sid in source_ids:
        hour = session.scalar(select(func.max(t.hour)).where(t.source_id == sid))
        if hour is not None:
            out[sid] = _as_datetime(hour)
    return out


def first_post_hour(session: Session) -> datetime | None:
    """The oldest hour with any post (how much history there is)."""
    t = m.MentionRollup
    value = session.scalar(select(func.min(t.hour)))  # the primary key's first entry
    return None if value is None else _as_datetime(value)


def _as_datetime(value: Any) -> datetime:
    """An aggregate's timestamp as aware UTC (SQLite may hand back the stored string)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


__all__ = [
    "Batch",
    "BrandTerms",
    "Counted",
    "brand_terms",
    "brands_current",
    "day_of",
    "deltas",
    "ensure_brands",
    "hour_of",
    "hourly_rows",
    "rebuild",
    "record",
]
