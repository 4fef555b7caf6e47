"""JSON columns are written with orjson, and take everything json.dumps took."""

from __future__ import annotations

import json
from pathlib import Path

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
