"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from listener.db import make_engine, migrate
from listener.models import Base


def test_models_and_migrations_agree(db_url: str) -> None:
    engine = make_engine(db_url)
    assert migrate(engine) is True
    assert migrate(engine) is False  # idempotent
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = [
            d
            for d in compare_metadata(ctx, Base.metadata)
            if not (
                isinstance(d, tuple)
                and d[0] in ("add_index", "remove_index")
                and "trgm" in str(d[1])
            )
        ]
    engine.dispose()
    assert diff == [], f"models and migrations differ; write a migration: {diff}"
