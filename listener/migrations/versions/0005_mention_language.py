"""sources: the language Listener detected for each mention

Revision ID: 0005
Revises: 0002
Create Date: 2026-11-30 08:00:00

``mentions.detected_lang``: the ISO 639-1 code CLD2 detected for the post
(``listener.language``; ``und`` when it could not tell), beside ``lang``, the
language the platform declared.  Mentions stored before this migration keep NULL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("mentions") as batch:
        batch.add_column(sa.Column("detected_lang", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mentions") as batch:
        batch.drop_column("detected_lang")
