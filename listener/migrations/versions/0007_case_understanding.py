"""cases: what the post is (kind, severity) and the gesture it calls for, with the reasons

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 11:00:00

``cases.kind`` (complaint, question, praise, resolved, other) and ``cases.severity`` (0-3)
come from :mod:`listener.understanding`; ``cases.gesture`` (none, apology_and_help,
goodwill, make_whole, personal) and ``cases.gesture_reasons`` from :mod:`listener.gestures`.
All empty for cases opened before this revision (the queue shows them as unknown).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("severity", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("gesture", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("gesture_reasons", _JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("gesture_reasons")
        batch.drop_column("gesture")
        batch.drop_column("severity")
        batch.drop_column("kind")
