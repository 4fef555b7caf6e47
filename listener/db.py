"""Engines, sessions and migrations.

SQLite (the default) runs in WAL mode with foreign keys on and a busy
timeout; PostgreSQL is used as is.  ``migrate()`` brings any database to the
newest Alembic revision; every command that touches the database calls it, so
a fresh clone needs no separate set-up step.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from listener.errors import StorageError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def json_dumps(value: Any) -> str:
    """A JSON column's text: orjson (the set-based ingest writes tens of thousands of
    JSON values a batch; json.dumps was half of SQLAlchemy's parameter processing),
    the standard library where orjson refuses (an integer over 64 bits, a lone
    surrogate in a hostile post).  Reading stays with json.loads (orjson would turn
    an integer over 64 bits into a float)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value)


def make_engine(url: str, *, echo: bool = False, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` with Listener's per-backend settings."""
    kwargs.setdefault("json_serializer", json_dumps)
    try:
        if url.startswith("sqlite"):
            engine = create_engine(
                url,
                echo=echo,
                connect_args={"check_same_thread": False, "timeout": 30},
                **kwargs,
            )
            event.listen(engine, "connect", _sqlite_pragmas)
            # pysqlite's own transaction handling defers BEGIN; make writers take the
            # lock at BEGIN so concurrent writers queue instead of failing mid-transaction.
            event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
            event.listen(
                engine,
                "connect",
                lambda dbapi_conn, _rec: setattr(dbapi_conn, "isolation_level", None),
            )
        else:
            engine = create_engine(url, echo=echo, pool_pre_ping=True, **kwargs)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise StorageError(f"cannot use database {redact_url(url)}: {exc}") from exc
    return engine


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***, safe to log."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def migrate(engine: Engine) -> bool:
    """Upgrade the database to the newest revision. Returns True when it changed anything."""
    try:
        if current_revision(engine) == head_revision():
            return False
        from alembic import command

        command.upgrade(alembic_config(engine), "head")
        return True
    except OperationalError as exc:
        raise StorageError(
            f"cannot reach database {redact_url(str(engine.url))}: {exc.orig}"
        ) from exc
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot migrate database {redact_url(str(engine.url))}: {exc}") from exc


def table_names(engine: Engine) -> list[str]:
    return sorted(inspect(engine).get_table_names())


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work is committed together, or rolled back on any error."""
    with factory() as session, session.begin():
        yield session
