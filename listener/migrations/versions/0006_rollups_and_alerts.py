"""rollups and alerts: hourly/daily mention counts, share of voice, alerts, notifications

Revision ID: 0006
Revises: 0002
Create Date: 2026-11-30 10:00:00

* ``mention_rollups`` / ``mention_rollups_daily``: mentions per UTC hour (day), source,
  category and label, kept current at ingest (``listener.rollups``); ``mention_facets_daily``:
  per day and label for all mentions, each source and each category on its own.  Filled here
  from the mentions already stored.
* ``brand_rollups_daily``: posts naming each configured brand per day and source (share of
  voice); counted with the configured terms by ``listener init`` (``rollup_state`` remembers
  which terms), since a migration does not know the configuration.
* ``alerts`` (at most one unresolved alert per ``key``: a partial unique index) and
  ``alert_notifications`` (one row per alert and target: each alert is sent once).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import listener.models

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DT = listener.models.UTCDateTime(timezone=True)
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")


def _rollup_table(name: str, time_column: str) -> None:
    op.create_table(
        name,
        sa.Column(time_column, _DT, nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=100), nullable=False),
        sa.Column("label", sa.String(length=20), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"], ["sources.id"], name=op.f(f"fk_{name}_source_id_sources")
        ),
        sa.PrimaryKeyConstraint(
            time_column, "source_id", "category", "label", name=op.f(f"pk_{name}")
        ),
        sqlite_with_rowid=False,
    )


def upgrade() -> None:
    _rollup_table("mention_rollups", "hour")
    op.create_index(
        "ix_mention_rollups_source_hour", "mention_rollups", ["source_id", "hour"], unique=False
    )
    _rollup_table("mention_rollups_daily", "day")
    op.create_index(
        "ix_mention_rollups_daily_source_day",
        "mention_rollups_daily",
        ["source_id", "day"],
        unique=False,
    )
    op.create_table(
        "mention_facets_daily",
        sa.Column("facet", sa.String(length=10), nullable=False),
        sa.Column("day", _DT, nullable=False),
        sa.Column("value", sa.String(length=100), nullable=False),
        sa.Column("label", sa.String(length=20), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "facet", "day", "value", "label", name=op.f("pk_mention_facets_daily")
        ),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "brand_rollups_daily",
        sa.Column("day", _DT, nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("brand", sa.String(length=200), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"], ["sources.id"], name=op.f("fk_brand_rollups_daily_source_id_sources")
        ),
        sa.PrimaryKeyConstraint("day", "source_id", "brand", name=op.f("pk_brand_rollups_daily")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "rollup_state",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("signature", sa.String(length=64), nullable=False),
        sa.Column("built_at", _DT, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_rollup_state")),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("scope", sa.String(length=300), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("evidence", _JSON, nullable=False),
        sa.Column("started_at", _DT, nullable=False),
        sa.Column("last_seen_at", _DT, nullable=False),
        sa.Column("opened_at", _DT, nullable=False),
        sa.Column("acknowledged_at", _DT, nullable=True),
        sa.Column("acknowledged_by", sa.String(length=200), nullable=True),
        sa.Column("resolved_at", _DT, nullable=True),
        sa.Column("resolved_by", sa.String(length=200), nullable=True),
        sa.Column("reopened", sa.Integer(), nullable=False),
        sa.Column("updated_at", _DT, nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"], ["sources.id"], name=op.f("fk_alerts_source_id_sources")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    op.create_index(op.f("ix_alerts_kind"), "alerts", ["kind"], unique=False)
    op.create_index(op.f("ix_alerts_key"), "alerts", ["key"], unique=False)
    op.create_index(op.f("ix_alerts_status"), "alerts", ["status"], unique=False)
    op.create_index(
        "ux_alerts_live_key",
        "alerts",
        ["key"],
        unique=True,
        sqlite_where=sa.text("status != 'resolved'"),
        postgresql_where=sa.text("status != 'resolved'"),
    )
    op.create_table(
        "alert_notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("target", sa.String(length=320), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", _DT, nullable=True),
        sa.Column("lease_until", _DT, nullable=True),
        sa.Column("sent_at", _DT, nullable=True),
        sa.Column("created_at", _DT, nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_alert_notifications_alert_id_alerts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_notifications")),
        sa.UniqueConstraint(
            "alert_id", "channel", "target", name=op.f("uq_alert_notifications_alert_id")
        ),
    )
    op.create_index(
        op.f("ix_alert_notifications_alert_id"), "alert_notifications", ["alert_id"], unique=False
    )
    op.create_index(
        op.f("ix_alert_notifications_status"), "alert_notifications", ["status"], unique=False
    )
    _backfill(op.get_bind())


def _backfill(bind: sa.engine.Connection) -> None:
    """Count the mentions already stored into the hourly and daily rollups."""
    mentions = sa.table(
        "mentions",
        sa.column("id", sa.Integer()),
        sa.column("published_at", _DT),
        sa.column("source_id", sa.Integer()),
        sa.column("category", sa.String()),
        sa.column("label", sa.String()),
    )
    hourly: Counter[tuple[datetime, int, str, str]] = Counter()
    last = 0
    while True:  # in id order, a chunk at a time (no server-side cursor inside the DDL)
        chunk = bind.execute(
            sa.select(
                mentions.c.id,
                mentions.c.published_at,
                mentions.c.source_id,
                mentions.c.category,
                mentions.c.label,
            )
            .where(mentions.c.id > last)
            .order_by(mentions.c.id)
            .limit(20_000)
        ).all()
        if not chunk:
            break
        last = chunk[-1][0]
        for _id, published, source_id, category, label in chunk:
            hour = published.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
            hourly[(hour, source_id, category or "", label or "unclassified")] += 1
    daily: Counter[tuple[datetime, int, str, str]] = Counter()
    facets: Counter[tuple[str, datetime, str, str]] = Counter()
    for (hour, source_id, category, label), n in hourly.items():
        day = hour.replace(hour=0)
        daily[(day, source_id, category, label)] += n
        facets[("all", day, "", label)] += n
        facets[("source", day, str(source_id), label)] += n
        facets[("category", day, category, label)] += n
    table = sa.table(
        "mention_facets_daily",
        sa.column("facet", sa.String()),
        sa.column("day", _DT),
        sa.column("value", sa.String()),
        sa.column("label", sa.String()),
        sa.column("n", sa.Integer()),
    )
    rows = [
        {"facet": f, "day": d, "value": v, "label": lab, "n": n}
        for (f, d, v, lab), n in facets.items()
    ]
    for i in range(0, len(rows), 5000):
        bind.execute(sa.insert(table), rows[i : i + 5000])
    for name, column, counts in (
        ("mention_rollups", "hour", hourly),
        ("mention_rollups_daily", "day", daily),
    ):
        table = sa.table(
            name,
            sa.column(column, _DT),
            sa.column("source_id", sa.Integer()),
            sa.column("category", sa.String()),
            sa.column("label", sa.String()),
            sa.column("n", sa.Integer()),
        )
        rows = [
            {column: t, "source_id": s, "category": c, "label": lab, "n": n}
            for (t, s, c, lab), n in counts.items()
        ]
        for i in range(0, len(rows), 5000):
            bind.execute(sa.insert(table), rows[i : i + 5000])


def downgrade() -> None:
    op.drop_index(op.f("ix_alert_notifications_status"), table_name="alert_notifications")
    op.drop_index(op.f("ix_alert_notifications_alert_id"), table_name="alert_notifications")
    op.drop_table("alert_notifications")
    op.drop_index("ux_alerts_live_key", table_name="alerts")
    op.drop_index(op.f("ix_alerts_status"), table_name="alerts")
    op.drop_index(op.f("ix_alerts_key"), table_name="alerts")
    op.drop_index(op.f("ix_alerts_kind"), table_name="alerts")
    op.drop_table("alerts")
    op.drop_table("rollup_state")
    op.drop_table("brand_rollups_daily")
    op.drop_table("mention_facets_daily")
    op.drop_index("ix_mention_rollups_daily_source_day", table_name="mention_rollups_daily")
    op.drop_table("mention_rollups_daily")
    op.drop_index("ix_mention_rollups_source_hour", table_name="mention_rollups")
    op.drop_table("mention_rollups")
