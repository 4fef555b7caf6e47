"""web: indexes for the queue, the dashboard and text search

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 11:35:00

* ``ix_cases_queue``: the queue's order (priority DESC, sla_due_at, id) so a page is
  an index walk that stops after 50 rows.
* ``ix_mentions_dashboard``: (published_at, label, source_id, category) covers the
  dashboard's grouped counts (index-only scan of the window).
* ``ix_authors_followers``: top authors by reach.
* PostgreSQL only: a pg_trgm GIN index on ``mentions.text`` for ILIKE '%…%' search,
  when the pg_trgm extension exists or can be created (skipped otherwise).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _trigram_schema(bind: sa.engine.Connection) -> str | None:
    """The schema holding pg_trgm, installing it in public if allowed; None if unavailable."""
    found = bind.execute(
        sa.text(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
            "WHERE e.extname = 'pg_trgm'"
        )
    ).scalar()
    if found:
        return str(found)
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"))
    except sa.exc.DBAPIError:
        return None
    return "public"


def upgrade() -> None:
    op.create_index("ix_cases_queue", "cases", [sa.text("priority DESC"), "sla_due_at", "id"])
    op.create_index(
        "ix_mentions_dashboard", "mentions", ["published_at", "label", "source_id", "category"]
    )
    op.create_index("ix_authors_followers", "authors", ["followers"])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        schema = _trigram_schema(bind)
        if schema is not None:
            op.execute(
                f"CREATE INDEX ix_mentions_text_trgm ON mentions USING gin "
                f'(text "{schema}".gin_trgm_ops)'
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_mentions_text_trgm")
    op.drop_index("ix_authors_followers", table_name="authors")
    op.drop_index("ix_mentions_dashboard", table_name="mentions")
    op.drop_index("ix_cases_queue", table_name="cases")
