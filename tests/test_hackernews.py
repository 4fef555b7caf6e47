"""The Hacker News collector against a local search API seeded with the recorded hits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hnserver import HNServer, hn_settings
from socialfixtures import count, jsonl_neighbour, outcome, source_row, stored_ids

from listener import models as m
from listener.collectors import CollectContext, PollState, get_collector
from listener.config import settings_from_dict
from listener.pipeline import poll_sources

#: the recorded hits that mention Apple (stories and a comment by pg)
RECORDED = {"7919424", "6651926", "3078128", "2922756", "1256391"}


@pytest.fixture
def server(shared_data: Path) -> Iterator[HNServer]:
    with HNServer(shared_data / "hackernews" / "fixtures.json") as srv:
        yield srv


@pytest.fixture
def app_for(server: HNServer, make_app: Callable[..., Any]) -> Callable[..., Any]:
    def factory(extra: list[dict[str, Any]] | None = None, **options: Any) -> Any:
        data = hn_settings(server.base_url)
        data["sources"][0]["options"] = options
        data["sources"] += extra or []
        data.pop("polling")
        return make_app(data)

    return factory


def test_first_poll_stores_recorded_hits_once_and_repoll_asks_since(
    server: HNServer, app_for: Callable[..., Any]
) -> None:
    app = app_for()
    (first,) = poll_sources(app)
    assert first.status == "ok" and first.new == len(RECORDED)
    assert set(stored_ids(app, "hn")) == RECORDED
    req = server.requests_to("/api/v1/search_by_date")[0]
    assert req.query["query"] == ["apple"] and req.query["tags"] == ["(story,comment)"]
    assert "numericFilters" not in req.query and "authorization" not in req.headers
    with app.sessions() as s:
        comment = s.query(m.Mention).filter_by(external_id="6651926").one()
        assert comment.kind == "comment" and comment.author.handle == "pg"
        assert comment.url == "https://news.ycombinator.com/item?id=6651926"
        assert comment.author.url == "https://news.ycombinator.com/user?id=pg"

    (second,) = poll_sources(app)
    assert (second.status, second.new) == ("ok", 0)
    assert server.requests_to("/api/v1/search_by_date")[-1].query["numericFilters"] == [
        "created_at_i>=1403235346"
    ]
    hit = server.add_hit("My Apple order was cancelled twice, support is useless", author="jo")
    (third,) = poll_sources(app)
    assert third.new == 1 and stored_ids(app, "hn")[-1] == hit["objectID"]


def test_429_defers_with_retry_after(server: HNServer, app_for: Callable[..., Any]) -> None:
    app = app_for()
    server.fail("/api/v1/search_by_date", 429, headers={"retry-after": "90"})
    before = datetime.now(UTC)
    (result,) = poll_sources(app)
    assert result.status == "deferred"
    assert timedelta(seconds=60) < result.next_check_at - before < timedelta(seconds=150)
    assert count(app, m.Mention) == 0


def test_a_refused_request_is_recorded_and_the_poll_goes_on(
    server: HNServer, app_for: Callable[..., Any], tmp_path: Path
) -> None:
    app = app_for([jsonl_neighbour(tmp_path)])
    server.fail(
        "/api/v1/search_by_date", 403, body={"message": "Invalid Application-ID or API key"}
    )
    outcomes = poll_sources(app)
    failed = outcome(outcomes, "hn")
    assert failed.status == "error" and "403" in failed.error and "Application-ID" in failed.error
    assert source_row(app, "hn").error_count == 1
    assert outcome(outcomes, "neighbour").new == 1


def test_a_capped_poll_leaves_a_gap_that_the_next_poll_reads(server: HNServer) -> None:
    data = hn_settings(server.base_url)
    data["sources"][0]["options"] = {"page_size": 2, "max_pages": 1}
    settings = settings_from_dict(data, env={})
    collector = get_collector("hackernews")
    first = collector.collect(settings.source("hn"), PollState(), CollectContext(settings))
    assert len(first.posts) == 2 and "first poll read only the newest pages" in first.problems[0]
    fresh = [server.add_hit(f"Apple repair number {i} failed", author=f"u{i}") for i in range(3)]
    for i, hit in enumerate(fresh):
        hit["created_at_i"] += i + 1
    second = collector.collect(settings.source("hn"), first.state, CollectContext(settings))
    assert "gap" in second.state.cursor and second.next_check_at is not None
    third = collector.collect(settings.source("hn"), second.state, CollectContext(settings))
    got = {p.external_id for p in second.posts} | {p.external_id for p in third.posts}
    assert {h["objectID"] for h in fresh} <= got


def test_bad_hits_are_skipped_and_malformed_json_stores_nothing(
    server: HNServer, app_for: Callable[..., Any]
) -> None:
    app = app_for()
    server.fail("/api/v1/search_by_date", 200, body=b'{"hits": [')
    (broken,) = poll_sources(app)
    assert broken.status == "error" and "not JSON" in broken.error and count(app, m.Mention) == 0

    no_author = server.add_hit("Apple lost my order", author="x")
    no_author["author"] = None
    lone = server.add_hit("Apple support \ud83d hung up on me", author="surrogate")
    huge = server.add_hit("Apple " + "rant " * 100_000, author="verbose")
    no_text = server.add_hit("", author="empty")
    (result,) = poll_sources(app, now=lambda: datetime.now(UTC) + timedelta(hours=1))
    assert result.status == "ok", result.error
    ids = set(stored_ids(app, "hn"))
    assert {lone["objectID"], huge["objectID"], *RECORDED} <= ids
    assert not {no_author["objectID"], no_text["objectID"]} & ids
    assert any("malformed" in p for p in result.problems)
    with app.sessions() as s:
        assert "\ufffd" in s.query(m.Mention).filter_by(external_id=lone["objectID"]).one().text
