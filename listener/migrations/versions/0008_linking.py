"""one customer across sources: linked authors, merged cases, link suggestions

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 10:10:00

* ``authors.customer_id``: the person an author account belongs to (the lowest
  author id of the linked accounts; NULL: not linked to any other account);
* ``cases.merged_into_id``: the case a merged case's posts moved to;
* ``link_keys``: the strong evidence each case carries (indexed: suggestions look
  up equal keys instead of scanning posts);
* ``link_suggestions``: two cases that may be one customer's, with the evidence
  (a shared order number, e-mail address, or a mention of the other account),
  suggested → accepted or rejected by an agent (never merged silently).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("authors") as batch:
        batch.add_column(sa.Column("customer_id", sa.Integer(), nullable=True))
        batch.create_index("ix_authors_customer_id", ["customer_id"])
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("merged_into_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_cases_merged_into_id_cases", "cases", ["merged_into_id"], ["id"]
        )
    op.create_table(
        "link_suggestions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("other_case_id", sa.Integer(), nullable=False),
        sa.Column("evidence", JSONType, nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name="fk_link_suggestions_case_id_cases"
        ),
        sa.ForeignKeyConstraint(
            ["other_case_id"], ["cases.id"], name="fk_link_suggestions_other_case_id_cases"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_link_suggestions"),
        sa.UniqueConstraint("case_id", "other_case_id", name="uq_link_suggestions_case_id"),
    )
    op.create_index("ix_link_suggestions_other_case_id", "link_suggestions", ["other_case_id"])
    op.create_index("ix_link_suggestions_status", "link_suggestions", ["status"])
    op.create_table(
        "link_keys",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("value", sa.String(length=320), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_link_keys_case_id_cases"),
        sa.PrimaryKeyConstraint("case_id", "kind", "value", name="pk_link_keys"),
    )
    op.create_index("ix_link_keys_kind_value", "link_keys", ["kind", "value"])


def downgrade() -> None:
    op.drop_index("ix_link_keys_kind_value", table_name="link_keys")
    op.drop_table("link_keys")
    op.drop_index("ix_link_suggestions_status", table_name="link_suggestions")
    op.drop_index("ix_link_suggestions_other_case_id", table_name="link_suggestions")
    op.drop_table("link_suggestions")
    with op.batch_alter_table("cases") as batch:
        batch.drop_constraint("fk_cases_merged_into_id_cases", type_="foreignkey")
        batch.drop_column("merged_into_id")
    with op.batch_alter_table("authors") as batch:
        batch.drop_index("ix_authors_customer_id")
        batch.drop_column("customer_id")
