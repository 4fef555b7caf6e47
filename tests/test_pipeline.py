"""The poll use-case end to end on the bundled examples: store, dedupe, classify, triage, draft."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import QUEUE_KEYS
from sqlalchemy import func, select

from listener import models as m
from listener.cases.queue import list_queue
from listener.cases.sending import addressable
from listener.pipeline import due_sources, poll_source, poll_sources
from listener.source_health import source_health


def count(app: Any, model: Any) -> int:
    with app.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)))


def test_examples_fill_the_queue_with_drafted_cases(example_app: Any) -> None:
    outcomes = poll_sources(example_app)
    assert {o.source: o.status for o in outcomes} == {"example-blogs": "ok", "example-social": "ok"}
    # 30 X posts minus 2 look-alikes (a wind forecast, an RTOS release), 7 from
    # Mastodon, Bluesky, Reddit and Hacker News; 18 blog posts minus 4 that never
    # mention the brand
    assert count(example_app, m.Mention) == 28 + 7 + 14
    queue = [item.contract() for item in list_queue(example_app)]
    assert queue, "the lexicon model finds unhappy posts in the examples"
    for row in queue:
        assert set(row) >= QUEUE_KEYS
        assert row["status"] == "drafted"
        assert row["draft"]
        if row["channel"] in ("x_reply", "dm"):
            # X replies address the author by @handle, unless X would misread it (priya.s)
            handle = addressable(row["channel"], row["author"])
            assert f"@{handle}" in row["draft"] if handle else "@" not in row["draft"][:1]
        elif row["channel"] not in ("blog_comment", "reddit_reply", "hn_comment"):
            assert row["author"] in row["draft"]
        assert row["reasons"][0].startswith(("negative", "neutral", "positive"))
    # most urgent first
    assert [r["priority"] for r in queue] == sorted((r["priority"] for r in queue), reverse=True)
    with example_app.sessions() as s:
        unhappy = s.scalars(select(m.Mention).where(m.Mention.unhappy.is_(True))).all()
        assert all(x.case_id is not None for x in unhappy)
        # every case has a draft (a customer's follow-up may have refreshed it: a second version)
        drafted = s.scalar(select(func.count(func.distinct(m.Draft.case_id))))
        assert drafted == s.scalar(select(func.count()).select_from(m.Case))


def test_second_poll_adds_nothing(example_app: Any) -> None:
    poll_sources(example_app)
    before = (
        count(example_app, m.Mention),
        count(example_app, m.Case),
        count(example_app, m.Draft),
        count(example_app, m.Classification),
    )
    outcomes = poll_sources(example_app)
    assert {o.status for o in outcomes} == {"not_modified"}
    after = (
        count(example_app, m.Mention),
        count(example_app, m.Case),
        count(example_app, m.Draft),
        count(example_app, m.Classification),
    )
    assert before == after


def _social_line(i: int, text: str, author: str = "pat", **extra: Any) -> str:
    return (
        json.dumps(
            {
                "id": str(i),
                "text": text,
                "author": author,
                "created_at": f"2026-11-20T10:{i % 60:02d}:00Z",
                **extra,
            }
        )
        + "\n"
    )


def test_jsonl_reads_only_appended_lines_and_reports_bad_ones(
    make_app: Any, tmp_path: Path
) -> None:
    feed = tmp_path / "posts.jsonl"
    feed.write_text(_social_line(1, "Zephyr Shoes lost my package, furious") + "not json\n")
    app = make_app({"sources": [{"name": "s", "type": "jsonl", "path": str(feed)}]})
    first = poll_source(app, "s")
    assert (first.new, first.status) == (1, "ok")
    assert first.problems and "line 2" in first.problems[0]
    with feed.open("a") as fh:
        fh.write(_social_line(2, "Zephyr Shoes boots are great, love them", author="sam"))
        fh.write('{"id": "3", "text": "Zephyr Shoes half a li')  # a line still being written
    second = poll_source(app, "s")
    assert (second.new, second.updated) == (1, 0)
    with feed.open("a") as fh:
        fh.write('ne", "author": "x", "created_at": "2026-11-20T11:00:00Z"}\n')
    third = poll_source(app, "s")
    assert third.new == 1
    with app.sessions() as s:
        assert sorted(s.scalars(select(m.Mention.external_id))) == ["1", "2", "3"]


def test_edited_post_updates_the_mention_instead_of_a_second_case(
    make_app: Any, tmp_path: Path
) -> None:
    feed = tmp_path / "posts.jsonl"
    feed.write_text(_social_line(1, "Zephyr Shoes order arrived"))
    app = make_app({"sources": [{"name": "s", "type": "jsonl", "path": str(feed)}]})
    poll_source(app, "s")
    feed.write_text(
        _social_line(
            1, "Zephyr Shoes order arrived broken and damaged, awful. Worst service, furious."
        )
    )
    out = poll_source(app, "s")
    assert (out.new, out.updated, out.cases_opened) == (0, 1, 1)
    with app.sessions() as s:
        mention = s.scalars(select(m.Mention)).one()
        assert mention.edit_count == 1 and "broken" in mention.text
        assert s.scalar(select(func.count()).select_from(m.Classification)) == 2
        kinds = s.scalars(select(m.Event.kind)).all()
        assert "mention.edited" in kinds


def test_repeat_posts_join_the_authors_case(make_app: Any, tmp_path: Path) -> None:
    feed = tmp_path / "posts.jsonl"
    feed.write_text(
        _social_line(1, "Zephyr Shoes lost my package, terrible", author="dan")
        + _social_line(2, "Still no package from Zephyr Shoes, awful service", author="dan")
        + _social_line(3, "Zephyr Shoes, third day asking. Horrible.", author="dan")
    )
    app = make_app({"sources": [{"name": "s", "type": "jsonl", "path": str(feed)}]})
    out = poll_source(app, "s")
    assert out.cases_opened == 1
    (case,) = [item.contract() for item in list_queue(app)]
    assert case["mentions"] == 3
    assert any(r.startswith("3rd post") for r in case["reasons"])


def test_missing_file_is_recorded_with_backoff_and_recovers(make_app: Any, tmp_path: Path) -> None:
    feed = tmp_path / "later.jsonl"
    app = make_app(
        {
            "sources": [{"name": "s", "type": "jsonl", "path": str(feed), "interval": "10m"}],
            "polling": {"backoff_base": "1m", "backoff_max": "1h", "jitter": 0},
        }
    )
    t0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    out = poll_source(app, "s", now=lambda: t0, rng=random.Random(1))
    assert out.status == "error" and "file not found" in (out.error or "")
    (health,) = source_health(app, t0)
    assert health["health"] == "failing" and health["error_count"] == 1
    # a missing file needs a human: retry no sooner than the interval
    assert out.next_check_at == t0 + timedelta(minutes=10)
    assert due_sources(app, t0 + timedelta(minutes=5)) == []
    feed.write_text(_social_line(1, "Zephyr Shoes is fine"))
    ok = poll_source(app, "s", now=lambda: t0 + timedelta(minutes=11))
    assert ok.status == "ok"
    (health,) = source_health(app, t0)
    assert health["health"] == "ok" and health["error_count"] == 0


def test_unknown_source_name(example_app: Any) -> None:
    from listener.errors import NotFound

    with pytest.raises(NotFound, match="no source named 'nope'"):
        poll_source(example_app, "nope")


def test_due_sources_follow_next_check(example_app: Any) -> None:
    t0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    assert due_sources(example_app, t0) == []  # nothing registered yet
    poll_sources(example_app, due_only=True, now=lambda: t0)
    assert due_sources(example_app, t0 + timedelta(minutes=1)) == []
    assert due_sources(example_app, t0 + timedelta(minutes=6)) == ["example-social"]
    assert due_sources(example_app, t0 + timedelta(minutes=16)) == [
        "example-blogs",
        "example-social",
    ]


def test_events_are_append_only(example_app: Any) -> None:
    from sqlalchemy import delete, update
    from sqlalchemy.exc import DBAPIError

    poll_sources(example_app)
    for stmt in (update(m.Event).values(actor="mallory"), delete(m.Event)):
        with pytest.raises(DBAPIError, match="append-only"), example_app.sessions() as s, s.begin():
            s.execute(stmt)
    assert count(example_app, m.Event) > 0


def test_nul_and_control_characters_never_stop_a_source(make_app: Any, tmp_path: Path) -> None:
    """PostgreSQL refuses NUL in text and JSON: hostile posts are cleaned, not fatal."""
    feed = tmp_path / "posts.jsonl"
    feed.write_text(
        _social_line(
            1,
            "Zephyr Shoes lost my package\u0000, furious\u0007",
            author="nu\u0000ll",
            display_name="Bad\u0000 Name",
            url="https://x.example/\u0000p",
        )
        + _social_line(2, "Zephyr Shoes boots are great", author="sam")
    )
    app = make_app({"sources": [{"name": "s", "type": "jsonl", "path": str(feed)}]})
    out = poll_source(app, "s")
    assert (out.status, out.new) == ("ok", 2), out.error
    with app.sessions() as s:
        texts = {mm.external_id: mm for mm in s.scalars(select(m.Mention))}
        assert texts["1"].text == "Zephyr Shoes lost my package, furious"
        assert "\x00" not in json.dumps(texts["1"].raw)
        assert "null" in s.scalars(select(m.Author.handle)).all()
    assert poll_source(app, "s").new == 0


def test_oversized_fields_fit_their_columns(make_app: Any, tmp_path: Path) -> None:
    """Lengths and integer ranges are enforced by PostgreSQL: posts are fitted, not refused."""
    long_id = "x" * 700
    feed = tmp_path / "posts.jsonl"
    feed.write_text(
        _social_line(
            1,
            "Zephyr Shoes never sent my order, furious",
            author={"handle": "h" * 400, "name": 12345, "followers": 10**30, "email": "e" * 400},
            lang="en-" + "x" * 50,
            conversation_id="c" * 300,
            kind="k" * 50,
        )
        + json.dumps(
            {
                "id": long_id,
                "text": "Zephyr Shoes is great",
                "author": "sam",
                "created_at": "2026-11-20T10:05:00Z",
            }
        )
        + "\n"
    )
    app = make_app({"sources": [{"name": "s", "type": "jsonl", "path": str(feed)}]})
    out = poll_source(app, "s")
    assert (out.status, out.new) == ("ok", 2), out.error
    with app.sessions() as s:
        author = s.scalars(select(m.Author).where(m.Author.handle.like("hhh%"))).one()
        assert len(author.handle) == 200 and author.display_name == "12345"
        assert author.followers == 2**31 - 1
        ids = set(s.scalars(select(m.Mention.external_id)))
        assert "1" in ids and any(i.startswith("sha256:") for i in ids)
    assert poll_source(app, "s").new == 0  # the hashed id is stable


def test_jsonl_accepts_the_dates_real_exports_carry() -> None:
    from datetime import UTC, datetime

    import pytest

    from listener.collectors.jsonl import parse_timestamp

    want = datetime(2017, 11, 8, 16, 28, 30, tzinfo=UTC)
    # Twitter's v1.1 API (and the public "Customer Support on Twitter" data set), RFC 2822,
    # ISO 8601 and Unix seconds
    assert parse_timestamp("Wed Nov 08 16:28:30 +0000 2017") == want
    assert parse_timestamp("Wed, 08 Nov 2017 17:28:30 +0100") == want
    assert parse_timestamp("2017-11-08T16:28:30Z") == want
    assert parse_timestamp(1510158510) == want
    for bad in ("Wed Nov 99 16:28:30 +0000 2017", "32 Nov 2017 16:28", "soon", "", None):
        with pytest.raises(ValueError):
            parse_timestamp(bad)
