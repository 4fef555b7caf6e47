"""Engines, sessions and migrations.

SQLite (the default) runs in WAL mode with foreign keys on and a busy
timeout; PostgreSQL is used as is.  ``migrate()`` brings any database to the
newest Alembic revision; every command that touches the database calls it, so
a fresh clone needs no separate set-up step.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
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


#: rows per ``executemany`` where :func:`insert_rows` cannot copy
INSERT_CHUNK = 500


def insert_rows(session: Session, table: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (each with the same keys, the columns to write) into ``table`` in
    ``session``'s transaction: one ``COPY … FROM STDIN`` on PostgreSQL with psycopg, one
    ``executemany`` of plain tuples on SQLite.

    ``executemany`` on PostgreSQL is still one ``INSERT`` per row at the server (about
    0.1 ms for a post's row); ``COPY`` streams them as one statement.  On SQLite the
    statement is SQLAlchemy's own, handed to the driver directly (its per-row parameter
    handling was most of the cost).  Either way the values go through the columns' own
    bind processing first (UTC datetimes, JSON with :func:`json_dumps`), so what is
    stored is what SQLAlchemy's ``INSERT`` would store."""
    if not rows:
        return
    conn = session.connection()
    dialect = conn.dialect
    copy = dialect.name == "postgresql" and dialect.driver == "psycopg"
    if not copy and dialect.paramstyle != "qmark":  # pragma: no cover - other drivers
        for i in range(0, len(rows), INSERT_CHUNK):
            session.execute(table.insert(), list(rows[i : i + INSERT_CHUNK]))
        return
    names = list(rows[0])
    processors = [table.c[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names]
    pairs = list(zip(names, processors, strict=True))
    values = [[row[n] if p is None else p(row[n]) for n, p in pairs] for row in rows]
    quote = dialect.identifier_preparer
    columns = ", ".join(quote.quote(n) for n in names)
    if not copy:
        marks = ", ".join("?" * len(names))
        statement = f"INSERT INTO {quote.format_table(table)} ({columns}) VALUES ({marks})"
        for i in range(0, len(values), INSERT_CHUNK):
            conn.exec_driver_sql(statement, [tuple(v) for v in values[i : i + INSERT_CHUNK]])
        return
    driver = conn.connection.driver_connection
    assert driver is not None
    statement = f"COPY {quote.format_table(table)} ({columns}) FROM STDIN"
    with driver.cursor() as cursor, cursor.copy(statement) as stream:
        for value in values:
            stream.write_row(value)


def update_rows(
    session: Session, table: Any, column: str, values: Mapping[int, Any], *, key: str = "id"
) -> None:
    """Set ``column`` of ``table``'s rows to ``values[row's key]`` in ``session``'s
    transaction: one ``UPDATE … FROM unnest(…)`` on PostgreSQL, one ``executemany`` of plain
    tuples on SQLite (the ORM's flush of the same change did a statement's bookkeeping per
    row).  The values go through the column's bind processing first."""
    if not values:
        return
    conn = session.connection()
    dialect = conn.dialect
    processor = table.c[column].type.dialect_impl(dialect).bind_processor(dialect)
    keys = list(values)
    new = [values[k] if processor is None else processor(values[k]) for k in keys]
    quote = dialect.identifier_preparer
    name, col, key_col = quote.format_table(table), quote.quote(column), quote.quote(key)
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        kind = table.c[column].type.compile(dialect=dialect)
        key_kind = table.c[key].type.compile(dialect=dialect)
        conn.exec_driver_sql(
            f"UPDATE {name} SET {col} = v.value FROM unnest(%(keys)s::{key_kind}[], "
            f"%(values)s::{kind}[]) AS v(key, value) WHERE {name}.{key_col} = v.key",
            {"keys": keys, "values": new},
        )
        return
    if dialect.paramstyle != "qmark":  # pragma: no cover - other drivers
        from sqlalchemy import bindparam, update

        each = update(table).where(table.c[key] == bindparam("_key"))
        session.execute(
            each.values({column: bindparam("_v")}), [{"_key": k, "_v": values[k]} for k in keys]
        )
        return
    statement = f"UPDATE {name} SET {col} = ? WHERE {key_col} = ?"
    for i in range(0, len(keys), INSERT_CHUNK):
        part = range(i, min(i + INSERT_CHUNK, len(keys)))
        conn.exec_driver_sql(statement, [(new[j], keys[j]) for j in part])
