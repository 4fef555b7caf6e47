"""JSON columns are written with orjson, and take everything json.dumps took."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Column, Integer, MetaData, Table, insert, select

from listener.db import json_dumps, make_engine

AWKWARD = {
    "big": 2**70,  # over 64 bits: orjson refuses, the standard library writes it exactly
    "surrogate": "\ud800 lone",  # a hostile post's broken UTF-16
    "tuple": (1, 2),
    1: "a non-string key",
    "emoji": "😡 “quotes”",
}


def test_json_dumps_writes_what_the_standard_library_wrote() -> None:
    assert json.loads(json_dumps(AWKWARD)) == json.loads(json.dumps(AWKWARD))
    assert json.loads(json_dumps({"emoji": "😡"})) == {"emoji": "😡"}


def test_awkward_values_round_trip_through_a_json_column(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'j.db'}")
    table = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("v", JSON))
    table.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(table), [{"id": 1, "v": AWKWARD}, {"id": 2, "v": {"n": 1.5}}])
    with engine.connect() as conn:
        rows = dict(conn.execute(select(table.c.id, table.c.v)).all())
    engine.dispose()
    assert rows[1]["big"] == 2**70 and rows[1]["tuple"] == [1, 2] and rows[1]["1"]
    assert rows[1]["surrogate"] == "\ud800 lone" and rows[2] == {"n": 1.5}


def test_insert_rows_stores_what_sqlalchemy_inserts(make_app: Any) -> None:
    """``db.insert_rows`` (COPY on PostgreSQL, plain executemany on SQLite) stores each value
    as SQLAlchemy's own INSERT does: awkward text, JSON, NULLs, datetimes in other zones."""
    from datetime import UTC, datetime, timedelta, timezone

    from listener import models as m
    from listener.db import insert_rows

    app = make_app()
    table: Any = m.Event.__table__
    when = datetime(2026, 11, 30, 23, 59, 59, 123456, tzinfo=timezone(timedelta(hours=-5)))
    texts = [
        "tab\there",
        "new\nline",
        "back\\slash \\N",
        "quote ' \" ;--",
        "emoji 💥 ı ſ",
        "",
        "x" * 5000,
    ]
    rows = [
        {
            "actor": text_[:200],
            "kind": f"k{i}",
            "case_id": None,
            "mention_id": None,
            "source_id": None,
            "at": when + timedelta(seconds=i),
            "data": {"text": text_, "big": 2**70, "list": [1, None, True], "n": {"ü": 1.5}},
        }
        for i, text_ in enumerate(texts)
    ]
    with app.sessions.begin() as s:
        insert_rows(s, table, rows)
        s.execute(insert(m.Event), [{**r, "kind": "sa-" + r["kind"]} for r in rows])
        insert_rows(s, table, [])  # nothing to insert: no statement, no error
    with app.sessions() as s:
        got = s.scalars(select(m.Event).order_by(m.Event.id)).all()
    ours = [e for e in got if not e.kind.startswith("sa-")]
    theirs = [e for e in got if e.kind.startswith("sa-")]
    assert len(ours) == len(theirs) == len(texts)
    for a, b in zip(ours, theirs, strict=True):
        assert (a.actor, a.at, a.data) == (b.actor, b.at, b.data)
        assert "sa-" + a.kind == b.kind
    assert ours[0].at == when.astimezone(UTC)
    assert ours[0].data["big"] == 2**70


def test_update_rows_sets_one_column_of_the_rows_named(make_app: Any) -> None:
    """``db.update_rows``: each named row gets its value (one statement on PostgreSQL,
    plain executemany on SQLite); rows not named keep theirs."""
    from datetime import UTC, datetime

    from listener import models as m
    from listener.db import insert_rows, update_rows

    app = make_app()
    when = datetime(2026, 11, 30, tzinfo=UTC)
    rows = [
        {
            "platform": "x",
            "handle": f"h{i}",
            "display_name": "a",
            "verified": False,
            "first_seen_at": when,
            "last_seen_at": when,
        }
        for i in range(1200)
    ]
    name = "name ‘quoted’ \\ \t"
    with app.sessions.begin() as s:
        insert_rows(s, m.Author.__table__, rows)
        ids = s.scalars(select(m.Author.id).order_by(m.Author.id)).all()
        update_rows(s, m.Author.__table__, "display_name", {i: f"{name} {i}" for i in ids[:1100]})
        update_rows(s, m.Author.__table__, "display_name", {})  # none named: no statement
    with app.sessions() as s:
        got = {i: n for i, n in s.execute(select(m.Author.id, m.Author.display_name))}
    assert [got[i] for i in ids[:1100]] == [f"{name} {i}" for i in ids[:1100]]
    assert {got[i] for i in ids[1100:]} == {"a"}
