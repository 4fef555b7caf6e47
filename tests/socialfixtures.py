"""Helpers shared by the social-platform tests (mastodon, bluesky, reddit, hackernews)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from listener import models as m
from listener.app import App


def source_row(app: App, name: str) -> m.Source:
    with app.sessions() as s:
        return s.scalars(select(m.Source).where(m.Source.name == name)).one()


def stored_ids(app: App, name: str) -> list[str]:
    """External ids of the mentions stored for source ``name``, oldest first."""
    with app.sessions() as s:
        return list(
            s.scalars(
                select(m.Mention.external_id)
                .join(m.Source)
                .where(m.Source.name == name)
                .order_by(m.Mention.published_at, m.Mention.id)
            )
        )


def count(app: App, model: Any) -> int:
    with app.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def outcome(outcomes: list[Any], name: str) -> Any:
    (found,) = [o for o in outcomes if o.source == name]
    return found


def jsonl_neighbour(tmp_path: Any) -> dict[str, Any]:
    """A local source polled beside the platform's, to show one failure stops nothing."""
    path = tmp_path / "neighbour.jsonl"
    path.write_text(
        '{"id": "n1", "text": "Zephyr Shoes lost my order", "author": "nb", '
        '"created_at": "2026-11-20T08:00:00Z"}\n'
    )
    return {"name": "neighbour", "type": "jsonl", "path": str(path), "match_all": True}
