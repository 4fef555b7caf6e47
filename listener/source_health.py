"""Each source's health as ``listener sources`` and the operators' pages show it (read-only)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from listener import models as m

if TYPE_CHECKING:
    from listener.app import App


def source_health(app: App, now: datetime) -> list[dict[str, Any]]:
    """One row per configured source: state, last success, items, errors, next check."""
    from listener.pipeline import sync_sources

    sync_sources(app, now)
    names = [s.name for s in app.settings.sources]
    with app.sessions() as session:
        rows = {
            r.name: r for r in session.scalars(select(m.Source).where(m.Source.name.in_(names)))
        }
    out = []
    for cfg in app.settings.sources:
        r = rows[cfg.name]
        if not cfg.enabled:
            health = "disabled"
        elif r.disabled_reason:
            health = "gone"
        elif r.error_count:
            health = "failing"
        elif r.warning:
            health = "warning"
        elif r.last_success_at is None:
            health = "never polled"
        else:
            health = "ok"
        out.append(
            {
                "name": cfg.name,
                "type": cfg.type,
                "location": r.url or cfg.location,
                "enabled": cfg.enabled and not r.disabled_reason,
                "health": health,
                "last_success_at": r.last_success_at.isoformat() if r.last_success_at else None,
                "last_polled_at": r.last_polled_at.isoformat() if r.last_polled_at else None,
                "next_check_at": r.next_check_at.isoformat() if r.next_check_at else None,
                "items": r.items_total,
                "last_new": r.last_new,
                "error_count": r.error_count,
                "last_error": r.disabled_reason or r.last_error,
                "warning": r.warning,
                "problems": list(r.last_problems or []),
            }
        )
    return out
