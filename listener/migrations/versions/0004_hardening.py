"""hardening: quarantine, truncated flag, session versions, token names and expiry, login throttling

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-01 09:00:00

* ``quarantine``: posts that could not be parsed, cleaned, classified or stored
  (source, external id, stage, reason, bounded excerpt), one row per source and
  fingerprint.
* ``mentions.truncated``: the text was cut at ``limits.max_text_chars``.
* ``users.session_version``: signed into session cookies; raised on sign-out,
  password change and disable.
* ``api_tokens.expires_at`` / ``revoked_reason``, and a name unique among a
  user's live tokens.  Existing duplicate live names get a ``-2``, ``-3``… suffix
  first.
* ``login_failures``: failed sign-ins, for throttling per account and address.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import listener.models

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = listener.models.UTCDateTime(timezone=True)


def _rename_duplicate_token_names() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT id, user_id, name FROM api_tokens WHERE revoked_at IS NULL ORDER BY id")
    ).all()
    taken: set[tuple[int, str]] = set()
    for token_id, user_id, name in rows:
        new, n = name, 1
        while (user_id, new) in taken:
            n += 1
            new = f"{name[:190]}-{n}"
        taken.add((user_id, new))
        if new != name:
            bind.execute(
                sa.text("UPDATE api_tokens SET name = :name WHERE id = :id"),
                {"name": new, "id": token_id},
            )


def upgrade() -> None:
    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=500), nullable=True),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("excerpt", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("first_seen_at", UTC_DATETIME, nullable=False),
        sa.Column("last_seen_at", UTC_DATETIME, nullable=False),
        sa.Column("times", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"], ["sources.id"], name=op.f("fk_quarantine_source_id_sources")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantine")),
        sa.UniqueConstraint("source_id", "fingerprint", name=op.f("uq_quarantine_source_id")),
    )
    op.create_index(op.f("ix_quarantine_source_id"), "quarantine", ["source_id"])
    op.create_index(op.f("ix_quarantine_last_seen_at"), "quarantine", ["last_seen_at"])

    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=100), nullable=False),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    op.create_index(op.f("ix_login_failures_username"), "login_failures", ["username"])
    op.create_index(op.f("ix_login_failures_address"), "login_failures", ["address"])
    op.create_index(op.f("ix_login_failures_at"), "login_failures", ["at"])

    with op.batch_alter_table("mentions") as batch:
        batch.add_column(
            sa.Column("truncated", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("session_version", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("revoked_reason", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("expires_at", UTC_DATETIME, nullable=True))
    _rename_duplicate_token_names()
    op.create_index(
        "ix_api_tokens_live_name",
        "api_tokens",
        ["user_id", "name"],
        unique=True,
        sqlite_where=sa.text("revoked_at IS NULL"),
        postgresql_where=sa.text("revoked_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_api_tokens_live_name", table_name="api_tokens")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("expires_at")
        batch.drop_column("revoked_reason")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_version")
    with op.batch_alter_table("mentions") as batch:
        batch.drop_column("truncated")
    op.drop_index(op.f("ix_login_failures_at"), table_name="login_failures")
    op.drop_index(op.f("ix_login_failures_address"), table_name="login_failures")
    op.drop_index(op.f("ix_login_failures_username"), table_name="login_failures")
    op.drop_table("login_failures")
    op.drop_index(op.f("ix_quarantine_last_seen_at"), table_name="quarantine")
    op.drop_index(op.f("ix_quarantine_source_id"), table_name="quarantine")
    op.drop_table("quarantine")
