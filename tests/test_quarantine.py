"""One bad post never stops a source: it is quarantined, the rest is stored, the state advances.

Each test reproduces a probe from issue #14 against a real collector and a
real database: a lone surrogate, ``created_at: 1e20`` and 200,000 nested
``[`` in a JSONL source, ``&#xD800;`` in a feed entry, ``\\ud83d`` in a tweet
from a local X server — and the storage fallback (one post the database
refuses) with a trigger in the database itself.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import func, select, text

from listener import models as m
from listener.cli import cli
from listener.pipeline import poll_source, poll_sources
from listener.quarantine import counts_by_source, list_quarantined


def line(ident: str, text_: str, author: str = "pat", **extra: Any) -> str:
    obj = {"id": ident, "text": text_, "author": author, "created_at": "2026-11-20T10:00:00Z"}
    obj.update(extra)
    return json.dumps(obj) + "\n"


BLOG = "http://shoes.example/p/"


def stored_ids(app: Any) -> list[str]:
    with app.sessions() as s:
        return sorted(s.scalars(select(m.Mention.external_id)))


def jsonl_app(make_app: Any, path: Path, **limits: Any) -> Any:
    overrides: dict[str, Any] = {
        "sources": [{"name": "social", "type": "jsonl", "path": str(path)}]
    }
    if limits:
        overrides["limits"] = limits
    return make_app(overrides)


# ---------------------------------------------------------------------------
# the probes


def test_surrogate_huge_date_and_deep_nesting_are_quarantined_and_the_poll_goes_on(
    make_app: Any, tmp_path: Path
) -> None:
    posts = tmp_path / "posts.jsonl"
    posts.write_text(
        line("ok-1", "Zephyr Shoes lost my package, furious")
        # a lone surrogate, exactly as the probe wrote it (json.dumps would escape it too)
        + '{"id": "bad-surrogate", "text": "Zephyr Shoes \\ud800 \\u2026", "author": "al",'
        ' "created_at": "2026-11-20T10:00:00Z"}\n'
        + '{"id": "bad-date", "text": "Zephyr Shoes are fine", "author": "bo",'
        ' "created_at": 1e20}\n'
        + "[" * 200_000
        + "\n"
        + line("ok-2", "Zephyr Shoes boots are great, love them", author="sam")
    )
    app = jsonl_app(make_app, posts)
    out = poll_source(app, "social")
    assert (out.status, out.new, out.quarantined) == ("ok", 2, 3), out.error
    assert stored_ids(app) == ["ok-1", "ok-2"]
    rows = {r["external_id"]: r for r in list_quarantined(app)}
    assert set(rows) == {"bad-surrogate", "bad-date", None}
    assert rows["bad-surrogate"]["stage"] == "clean"
    assert "lone surrogate U+D800" in rows["bad-surrogate"]["reason"]
    assert "\\ud800" in rows["bad-surrogate"]["excerpt"]  # escaped, never the raw character
    assert rows["bad-date"]["stage"] == "parse"
    assert "line 3" in rows["bad-date"]["reason"] and "out of range" in rows["bad-date"]["reason"]
    deep = rows[None]
    assert "line 4" in deep["reason"] and "max_json_depth (32)" in deep["reason"]
    assert len(deep["excerpt"]) <= 300
    assert all(r["source"] == "social" for r in rows.values())

    # the state advanced past the bad lines: the next poll reads only what was appended
    with posts.open("a") as fh:
        fh.write(line("ok-3", "Zephyr Shoes sent the wrong size, annoyed", author="kim"))
    again = poll_source(app, "social")
    assert (again.status, again.new, again.quarantined) == ("ok", 1, 0)
    assert stored_ids(app) == ["ok-1", "ok-2", "ok-3"]
    assert len(list_quarantined(app)) == 3


def test_a_feed_entry_with_a_reference_to_no_character_is_quarantined(
    make_app: Any, tmp_path: Path
) -> None:
    def feed(*items: str) -> bytes:
        return (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            "<title>Shoe blog</title><link>http://shoes.example/</link>"
            + "".join(items)
            + "</channel></rss>"
        ).encode()

    def item(guid: str, body: str) -> str:
        return (
            f"<item><title>Zephyr Shoes review {guid}</title><guid>{BLOG}{guid}</guid>"
            f"<pubDate>Fri, 20 Nov 2026 10:00:00 GMT</pubDate><description>{body}</description>"
            "</item>"
        )

    path = tmp_path / "blog.xml"
    path.write_bytes(
        feed(
            item("good-1", "My Zephyr Shoes fell apart after a week."),
            item("bad-ref", "Zephyr Shoes &#xD800; broke &#55296; twice"),
            item("good-2", "Zephyr Shoes fit perfectly."),
        )
    )
    app = make_app({"sources": [{"name": "blog", "type": "feed", "path": str(path)}]})
    out = poll_source(app, "blog")
    assert (out.status, out.new, out.quarantined) == ("ok", 2, 1), out.error
    assert stored_ids(app) == [f"{BLOG}good-1", f"{BLOG}good-2"]
    (row,) = list_quarantined(app)
    assert row["external_id"] == f"{BLOG}bad-ref" and row["stage"] == "clean"
    assert "character reference to no character" in row["reason"]

    # the feed changes (a new entry) and still carries the broken one: counted, not repeated
    path.write_bytes(
        feed(
            item("good-1", "My Zephyr Shoes fell apart after a week."),
            item("bad-ref", "Zephyr Shoes &#xD800; broke &#55296; twice"),
            item("good-2", "Zephyr Shoes fit perfectly."),
            item("good-3", "Zephyr Shoes never answered my email."),
        )
    )
    again = poll_source(app, "blog")
    assert (again.status, again.new, again.quarantined) == ("ok", 1, 1)
    (row,) = list_quarantined(app)
    assert row["times"] == 2


def test_a_broken_emoji_from_x_is_quarantined_and_the_page_is_stored(
    make_app: Any, shared_data: Path
) -> None:
    from xserver import TEST_ENV, XServer, settings_dict, snowflake

    with XServer(shared_data / "x-api") as server:
        now = time.time()
        users = [{"id": "9000000001", "username": "sam_flyer", "name": "Sam"}]
        tweets = [
            {
                "id": snowflake(now - 60 - i),
                "author_id": "9000000001",
                "text": f"@Twitter my order {i} never arrived, support is silent",
            }
            for i in range(5)
        ]
        broken = snowflake(now - 30)
        # half a surrogate pair, as a truncating client leaves it (X serves it as \ud83d)
        tweets.append(
            {"id": broken, "author_id": "9000000001", "text": "@Twitter still waiting \ud83d"}
        )
        server.add_tweets("/2/users/783214/mentions", tweets, users)
        data = settings_dict(
            server.base_url, [{"name": "x", "type": "x_mentions", "username": "Twitter"}]
        )
        data["x"]["api_base_url"] = server.base_url
        app = make_app({**data, "brand": data["brand"]}, env=TEST_ENV)
        out = poll_source(app, "x")
    assert out.status == "ok", out.error
    assert out.quarantined == 1 and out.new >= 5
    (row,) = list_quarantined(app)
    assert row["external_id"] == broken and "lone surrogate U+D83D" in row["reason"]
    assert broken not in stored_ids(app)
    with app.sessions() as s:
        since = s.scalar(select(m.Source.since_id).where(m.Source.name == "x"))
    assert int(since) >= int(broken)  # the source's state moved past the bad tweet


def test_a_post_the_database_refuses_is_quarantined_alone(make_app: Any, tmp_path: Path) -> None:
    """The per-row savepoint fallback: a batch that fails is stored one post at a time."""
    posts = tmp_path / "posts.jsonl"
    posts.write_text(
        line("a", "Zephyr Shoes lost my package, furious", author="ann")
        + line("poison", "Zephyr Shoes order is late, angry", author="bob")
        + line("c", "Zephyr Shoes boots are great", author="cy")
    )
    app = jsonl_app(make_app, posts)
    # the database itself refuses one row (as a constraint we could not foresee would)
    with app.engine.begin() as conn:
        if app.engine.dialect.name == "sqlite":
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_poison BEFORE INSERT ON mentions "
                    "WHEN NEW.external_id = 'poison' BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN "
                    "IF NEW.external_id = 'poison' THEN RAISE EXCEPTION 'refused'; END IF; "
                    "RETURN NEW; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_poison BEFORE INSERT ON mentions "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_poison()"
                )
            )
    out = poll_source(app, "social")
    assert (out.status, out.new, out.quarantined) == ("ok", 2, 1), out.error
    assert stored_ids(app) == ["a", "c"]
    (row,) = list_quarantined(app)
    assert (row["external_id"], row["stage"]) == ("poison", "store")
    assert "refused" in row["reason"]
    with app.sessions() as s:
        # nothing of the refused post is left behind (its author, case, events)
        assert s.scalar(select(func.count()).select_from(m.Case)) >= 1
        assert "bob" not in s.scalars(select(m.Author.handle)).all()
        offset = s.scalar(select(m.Source.cursor).where(m.Source.name == "social"))["offset"]
    assert offset == posts.stat().st_size


# ---------------------------------------------------------------------------
# bounds


def test_long_text_is_truncated_with_a_flag_or_quarantined(make_app: Any, tmp_path: Path) -> None:
    long_text = "Zephyr Shoes lost my package. " + "Still waiting. " * 2000  # ~30,000 chars
    posts = tmp_path / "posts.jsonl"
    posts.write_text(line("long", long_text) + line("short", "Zephyr Shoes rock"))
    app = jsonl_app(make_app, posts, max_text_chars=1000)
    out = poll_source(app, "social")
    assert (out.new, out.quarantined) == (2, 0)
    with app.sessions() as s:
        mention = s.scalars(select(m.Mention).where(m.Mention.external_id == "long")).one()
        short = s.scalars(select(m.Mention).where(m.Mention.external_id == "short")).one()
        assert len(mention.text) <= 1000 and mention.truncated is True
        assert short.truncated is False
        assert len(json.dumps(mention.raw)) < 256 * 1024

    strict = tmp_path / "strict.jsonl"
    strict.write_text(line("long", long_text) + line("short", "Zephyr Shoes rock"))
    app2 = make_app(
        {
            "sources": [{"name": "strict", "type": "jsonl", "path": str(strict)}],
            "limits": {"max_text_chars": 1000, "oversize": "quarantine"},
        }
    )
    out2 = poll_source(app2, "strict")
    assert (out2.new, out2.quarantined) == (1, 1)
    (row,) = list_quarantined(app2)
    assert row["external_id"] == "long" and "limits.max_text_chars (1,000)" in row["reason"]


def test_dates_are_clamped_or_refused(make_app: Any, tmp_path: Path) -> None:
    future = (datetime.now(UTC) + timedelta(days=400)).isoformat()
    posts = tmp_path / "posts.jsonl"
    posts.write_text(
        line("future", "Zephyr Shoes order late", created_at=future)
        + line(
            "ancient", "Zephyr Shoes order late", author="old", created_at="1969-12-31T00:00:00Z"
        )
        + line("negative", "Zephyr Shoes order late", author="neg", created_at=-1e12)
        + line("nan", "Zephyr Shoes order late", author="nan", created_at="NaN")
    )
    app = jsonl_app(make_app, posts)
    before = datetime.now(UTC)
    out = poll_source(app, "social")
    assert (out.new, out.quarantined) == (1, 3)
    with app.sessions() as s:
        published = s.scalar(select(m.Mention.published_at))
    assert before - timedelta(seconds=5) <= published <= datetime.now(UTC)
    reasons = {r["external_id"]: r["reason"] for r in list_quarantined(app)}
    assert "before 1970" in reasons["ancient"]
    assert set(reasons) == {"ancient", "negative", "nan"}


def test_nan_in_a_payload_is_stored_as_null(make_app: Any, tmp_path: Path) -> None:
    """Python reads NaN in JSON; PostgreSQL's JSON refuses it: cleaned, not fatal."""
    posts = tmp_path / "posts.jsonl"
    posts.write_text(
        '{"id": "1", "text": "Zephyr Shoes late again", "author": "a", '
        '"created_at": "2026-11-20T10:00:00Z", "score": NaN, "more": [Infinity]}\n'
    )
    app = jsonl_app(make_app, posts)
    out = poll_source(app, "social")
    assert (out.status, out.new, out.quarantined) == ("ok", 1, 0), out.error
    with app.sessions() as s:
        raw = s.scalar(select(m.Mention.raw))
    assert raw["score"] is None and raw["more"] == [None]


def test_jsonl_reads_only_what_was_appended(make_app: Any, tmp_path: Path) -> None:
    from listener.collectors import CollectContext, PollState
    from listener.collectors.jsonl import JsonlCollector

    posts = tmp_path / "posts.jsonl"
    filler = line("x", "nothing about shoes here " * 40)
    with posts.open("w") as fh:
        for i in range(5000):  # ~5 MB
            fh.write(filler.replace('"x"', f'"f{i}"'))
    app = jsonl_app(make_app, posts)
    collector = JsonlCollector()
    cfg = app.settings.source("social")
    ctx = CollectContext(settings=app.settings)
    first = collector.collect(cfg, PollState(), ctx)
    assert first.stats["bytes"] == posts.stat().st_size
    appended = line("new", "Zephyr Shoes lost my parcel")
    with posts.open("a") as fh:
        fh.write(appended)
    second = collector.collect(cfg, first.state, ctx)
    assert second.stats == {"lines": 1, "bytes": len(appended), "matched": 1}
    assert not second.problems

    # truncated: read again from the start, saying so
    posts.write_text(line("t1", "Zephyr Shoes hello"))
    third = collector.collect(cfg, second.state, ctx)
    assert third.problems == ["the file was truncated: read again from the start"]
    assert [p.external_id for p in third.posts] == ["t1"]

    # rotated (a new file under the same name): read from the start
    rotated = tmp_path / "posts.jsonl.new"
    rotated.write_text(line("r1", "Zephyr Shoes rotated") + line("r2", "Zephyr Shoes again"))
    rotated.replace(posts)
    fourth = collector.collect(cfg, third.state, ctx)
    assert fourth.problems == ["the file was replaced or rotated: read again from the start"]
    assert [p.external_id for p in fourth.posts] == ["r1", "r2"]

    # edited before the offset (same inode, same or larger size)
    with posts.open("r+b") as fh:
        fh.seek(len('{"id": "r1", "text": "'))
        fh.write(b"z")  # "Zephyr" → "zephyr"
        fh.seek(0, 2)
        fh.write(line("r3", "Zephyr Shoes third").encode())
    fifth = collector.collect(cfg, fourth.state, ctx)
    assert fifth.problems == [
        "the file was edited before the read offset: read again from the start"
    ]
    assert [p.external_id for p in fifth.posts] == ["r1", "r2", "r3"]


def test_jsonl_reads_at_most_read_per_poll_and_the_next_poll_is_due_at_once(
    make_app: Any, tmp_path: Path
) -> None:
    posts = tmp_path / "posts.jsonl"
    with posts.open("w") as fh:
        for i in range(400):  # ~400 × 500 bytes = ~200 KB
            fh.write(line(f"p{i}", "Zephyr Shoes " + "late delivery again " * 22, author=f"a{i}"))
    app = jsonl_app(make_app, posts, read_per_poll=64 * 1024)
    first = poll_source(app, "social")
    assert 0 < first.new < 400
    assert first.next_check_at is not None
    assert first.next_check_at <= datetime.now(UTC) + timedelta(seconds=1)
    total, polls = first.new, 1
    while total < 400 and polls < 10:
        total += poll_source(app, "social").new
        polls += 1
    assert total == 400 and polls == 4
    assert poll_source(app, "social").status == "not_modified"


@pytest.mark.slow
def test_a_50_mb_line_is_skipped_with_memory_under_300_mb(db_url: str, tmp_path: Path) -> None:
    """The probe: one 50 MB line peaked at 8.2 GB and was stored whole. Now it streams past."""
    import os
    import subprocess
    import sys

    from conftest import ROOT, base_config

    posts = tmp_path / "posts.jsonl"
    with posts.open("w") as fh:
        fh.write(line("before", "Zephyr Shoes lost my package"))
        fh.write('{"id": "huge", "author": "x", "created_at": "2026-11-20T10:00:00Z", "text": "')
        chunk = "Zephyr Shoes " * 80_660  # ~1 MiB
        for _ in range(51):
            fh.write(chunk)
        fh.write('"}\n')
        fh.write(line("after", "Zephyr Shoes sent the wrong size", author="y"))
    assert posts.stat().st_size > 50 * 1024 * 1024
    config = tmp_path / "config.yaml"
    data = base_config(db_url)
    data["sources"] = [{"name": "social", "type": "jsonl", "path": str(posts)}]
    config.write_text(yaml.safe_dump(data))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}
    # the peak of the `listener poll` process itself: its VmHWM, read as it exits (the
    # rusage of a child also counts the memory of the process it was forked from)
    peak_file = tmp_path / "vmhwm"
    measured = (
        "import atexit, sys\n"
        "def peak():\n"
        "    with open('/proc/self/status') as f:\n"
        "        kb = next(x.split()[1] for x in f if x.startswith('VmHWM:'))\n"
        f"    open({str(peak_file)!r}, 'w').write(kb)\n"
        "atexit.register(peak)\n"
        "from listener.cli import main\n"
        "main(sys.argv[1:])\n"
    )
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", measured, "--config", str(config), "poll", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.monotonic() - started
    out, err = proc.stdout, proc.stderr
    assert proc.returncode == 0, err
    peak_mb = int(peak_file.read_text()) / 1024
    print(f"50 MB line: peak RSS {peak_mb:.0f} MB, {elapsed:.1f} s")
    assert peak_mb < 300, f"peak memory {peak_mb:.0f} MB"
    outcome = json.loads(out.splitlines()[0])
    # more than limits.read_per_poll (32 MiB) was read: the rest comes with the next poll
    assert (outcome["new"], outcome["quarantined"]) == (1, 1)
    assert datetime.fromisoformat(outcome["next_check_at"]) <= datetime.now(UTC)
    second = subprocess.run(
        [sys.executable, "-m", "listener", "--config", str(config), "poll", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(second.stdout.splitlines()[0])["new"] == 1
    from listener.app import App
    from listener.config import load_settings

    app = App.from_settings(load_settings(config))
    try:
        (row,) = list_quarantined(app)
        assert row["external_id"] == "huge"
        assert "longer than limits.max_post_bytes" in row["reason"]
        assert len(row["excerpt"]) <= 300
        assert stored_ids(app) == ["after", "before"]
    finally:
        app.close()


# ---------------------------------------------------------------------------
# the commands


def test_quarantine_and_sources_commands(db_url: str, tmp_path: Path) -> None:
    from conftest import base_config

    posts = tmp_path / "posts.jsonl"
    posts.write_text(line("ok", "Zephyr Shoes lost my package") + "not json at all\n")
    config = tmp_path / "config.yaml"
    data = base_config(db_url)
    data["sources"] = [{"name": "social", "type": "jsonl", "path": str(posts)}]
    config.write_text(yaml.safe_dump(data))
    runner = CliRunner()
    args = ["--config", str(config)]
    r = runner.invoke(cli, [*args, "quarantine"], catch_exceptions=False)
    assert r.exit_code == 0 and "the quarantine is empty" in r.output
    r = runner.invoke(cli, [*args, "poll"], catch_exceptions=False)
    assert "1 new" in r.output and "1 quarantined" in r.output
    r = runner.invoke(cli, [*args, "quarantine", "--json"], catch_exceptions=False)
    (row,) = [json.loads(x) for x in r.output.splitlines()]
    assert set(row) >= {"source", "external_id", "reason", "excerpt", "stage", "times"}
    assert row["source"] == "social" and row["reason"].startswith("line 2: not JSON")
    assert row["excerpt"] == "not json at all"
    r = runner.invoke(cli, [*args, "quarantine"], catch_exceptions=False)
    assert "line 2: not JSON" in r.output and "1 quarantined post(s)" in r.output
    r = runner.invoke(cli, [*args, "quarantine", "--source", "nope"])
    assert r.exit_code != 0
    r = runner.invoke(cli, [*args, "sources", "--json"], catch_exceptions=False)
    (src,) = [json.loads(x) for x in r.output.splitlines()]
    assert src["quarantined"] == 1
    r = runner.invoke(cli, [*args, "sources"], catch_exceptions=False, env={"COLUMNS": "200"})
    header = next(x for x in r.output.splitlines() if "source" in x)
    assert "quarantined" in header


def test_counts_by_source(make_app: Any, tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text("nope\n" + line("1", "Zephyr Shoes"))
    b.write_text(line("2", "Zephyr Shoes"))
    app = make_app(
        {
            "sources": [
                {"name": "a", "type": "jsonl", "path": str(a)},
                {"name": "b", "type": "jsonl", "path": str(b)},
            ]
        }
    )
    poll_sources(app)
    assert counts_by_source(app) == {"a": 1}
