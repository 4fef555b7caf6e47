"""The quarantine: posts that could not be parsed, cleaned, classified or stored.

A bad post never stops its source: the pipeline records it here (source,
external id, stage, reason, a bounded excerpt) in the same transaction that
stores the rest of the batch and advances the source's state, and goes on.
``listener quarantine [--json]`` lists them; ``listener sources`` counts them.

One row per source and *fingerprint* (the external id when there is one,
else the excerpt): a feed that serves the same broken entry on every change
raises its ``times`` instead of adding rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from listener import models as m
from listener.collectors.base import Rejected
from listener.text import excerpt

if TYPE_CHECKING:
    from listener.app import App

log = structlog.get_logger("listener.quarantine")

#: Characters of a post kept in its quarantine row.
EXCERPT_CHARS = 300
REASON_CHARS = 500
STAGES = ("parse", "clean", "classify", "store")


def fingerprint(item: Rejected) -> str:
    """What identifies the same bad item on a later poll."""
    key = f"id:{item.external_id}" if item.external_id else f"text:{item.excerpt}"
    return hashlib.sha256(key.encode("utf-8", "backslashreplace")).hexdigest()


def bounded(item: Rejected) -> Rejected:
    """``item`` with every field short, escaped and storable (it is hostile input)."""
    return Rejected(
        reason=excerpt(item.reason, REASON_CHARS) or "unknown",
        external_id=excerpt(item.external_id, 500) if item.external_id else None,
        excerpt=excerpt(item.excerpt, EXCERPT_CHARS),
        stage=item.stage if item.stage in STAGES else "parse",
    )


def record(session: Session, source: m.Source, items: Sequence[Rejected], now: datetime) -> int:
    """Add (or count again) quarantined items of ``source`` in the caller's transaction.

    Returns how many items were recorded.
    """
    if not items:
        return 0
    rows: dict[str, Rejected] = {}
    for item in items:
        safe = bounded(item)
        rows[fingerprint(safe)] = safe
    existing = {
        q.fingerprint: q
        for q in session.scalars(
            select(m.QuarantinedPost).where(
                m.QuarantinedPost.source_id == source.id,
                m.QuarantinedPost.fingerprint.in_(list(rows)),
            )
        )
    }
    for fp, item in rows.items():
        row = existing.get(fp)
        if row is None:
            session.add(
                m.QuarantinedPost(
                    source_id=source.id,
                    external_id=item.external_id,
                    stage=item.stage,
                    reason=item.reason,
                    excerpt=item.excerpt,
                    fingerprint=fp,
                    first_seen_at=now,
                    last_seen_at=now,
                    times=1,
                )
            )
        else:
            row.times = (row.times or 0) + 1
            row.last_seen_at = now
            row.reason, row.stage = item.reason, item.stage
        log.warning(
            "post.quarantined",
            source=source.name,
            external_id=item.external_id,
            stage=item.stage,
            reason=item.reason,
        )
    return len(items)


def row_dict(row: m.QuarantinedPost) -> dict[str, Any]:
    return {
        "id": row.id,
        "source": row.source.name,
        "external_id": row.external_id,
        "stage": row.stage,
        "reason": row.reason,
        "excerpt": row.excerpt,
        "first_seen_at": row.first_seen_at.isoformat(),
        "last_seen_at": row.last_seen_at.isoformat(),
        "times": row.times,
    }


def list_quarantined(
    app: App, *, source: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Quarantined posts, most recently seen first (optionally of one source)."""
    stmt = select(m.QuarantinedPost).order_by(
        m.QuarantinedPost.last_seen_at.desc(), m.QuarantinedPost.id.desc()
    )
    if source is not None:
        app.settings.source(source)  # NotFound for a typo
        stmt = stmt.join(m.Source, m.Source.id == m.QuarantinedPost.source_id).where(
            m.Source.name == source
        )
    if limit is not None:
        stmt = stmt.limit(limit)
    with app.sessions() as session:
        return [row_dict(r) for r in session.scalars(stmt)]


def counts_by_source(app: App) -> dict[str, int]:
    """How many posts each source has in quarantine (sources with none are absent)."""
    with app.sessions() as session:
        rows = session.execute(
            select(m.Source.name, func.count(m.QuarantinedPost.id))
            .join(m.QuarantinedPost, m.QuarantinedPost.source_id == m.Source.id)
            .group_by(m.Source.name)
        ).all()
    return {name: int(n) for name, n in rows}
