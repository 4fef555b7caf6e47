"""The Reddit collector against a local OAuth API replaying praw's recordings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from redditserver import BRAND, REDDIT_ENV, RedditServer, reddit_settings
from socialfixtures import count, jsonl_neighbour, outcome, source_row, stored_ids

from listener import models as m
from listener.collectors.reddit import forget_tokens
from listener.pipeline import poll_sources

SOURCE = {
    "name": "rd",
    "type": "reddit",
    "username": BRAND,
    "query": "praw oauth search",
    "subreddits": ["askreddit"],
}


@pytest.fixture
def server(shared_data: Path) -> Iterator[RedditServer]:
    forget_tokens()
    with RedditServer(shared_data / "reddit") as srv:
        yield srv
    forget_tokens()


@pytest.fixture
def app_for(server: RedditServer, make_app: Callable[..., Any]) -> Callable[..., Any]:
    def factory(sources: list[dict[str, Any]], env: dict[str, str] | None = None) -> Any:
        data = reddit_settings(server.base_url, sources)
        data.pop("polling")
        return make_app(data, env=REDDIT_ENV if env is None else env)

    return factory


def test_first_poll_stores_mentions_posts_and_comments_once(
    server: RedditServer, app_for: Callable[..., Any]
) -> None:
    app = app_for([SOURCE])
    (first,) = poll_sources(app)
    assert first.status == "ok", first.error
    ids = stored_ids(app, "rd")
    assert len(ids) == first.new == 34
    mentions = [t["data"]["name"] for t in server.listings["mentions"]]
    assert set(mentions) <= set(ids)  # every inbox mention, addressed to us
    assert any(i.startswith("t3_") for i in ids) and any(i.startswith("t1_") for i in ids)
    token_req = server.requests_to("/api/v1/access_token", "POST")[0]
    assert token_req.body["grant_type"] == "password" and token_req.body["username"] == BRAND
    req = server.requests_to("/message/mentions")[0]
    assert req.headers["authorization"].startswith("bearer token-")
    assert f"/u/{BRAND}" in req.headers["user-agent"]
    with app.sessions() as s:
        row = s.query(m.Mention).filter_by(external_id=mentions[0]).one()
        assert row.kind == "comment" and row.author.platform == "reddit"
        assert row.url.startswith("https://www.reddit.com/r/") and row.in_reply_to_id

    (second,) = poll_sources(app)
    assert (second.status, second.new) == ("ok", 0)
    assert server.token_requests == 1
    fresh = server.add_thing(
        "askreddit/comments", "t1", "praw keeps timing out on my reddit bot", author="annoyed"
    )
    (third,) = poll_sources(app)
    assert third.new == 1 and fresh["data"]["name"] in stored_ids(app, "rd")


def test_429_defers_until_the_reset(server: RedditServer, app_for: Callable[..., Any]) -> None:
    app = app_for([SOURCE])
    server.fail(
        "/message/mentions",
        429,
        headers={"x-ratelimit-remaining": "0.0", "x-ratelimit-reset": "240"},
    )
    before = datetime.now(UTC)
    (result,) = poll_sources(app)
    assert result.status == "deferred"
    assert timedelta(seconds=200) < result.next_check_at - before < timedelta(seconds=300)
    assert count(app, m.Mention) == 0


def test_a_spent_allowance_stops_before_asking(
    server: RedditServer, app_for: Callable[..., Any]
) -> None:
    app = app_for([SOURCE])
    server.set_rate_limit(1.0, reset_in=500)
    (first,) = poll_sources(app)
    # the first listing spent the allowance: what it read is stored, the rest deferred
    assert first.status == "ok" and first.new > 0
    assert first.next_check_at > datetime.now(UTC) + timedelta(seconds=400)
    assert any("rate limit spent" in p for p in first.problems)


def test_bad_credentials_are_recorded_and_the_poll_goes_on(
    server: RedditServer, app_for: Callable[..., Any], tmp_path: Path
) -> None:
    env = dict(REDDIT_ENV, REDDIT_CLIENT_SECRET="nope")
    app = app_for([SOURCE, jsonl_neighbour(tmp_path)], env=env)
    outcomes = poll_sources(app)
    failed = outcome(outcomes, "rd")
    assert failed.status == "error" and "rejected the credentials (401" in failed.error
    assert "nope" not in failed.error
    assert source_row(app, "rd").error_count == 1
    assert outcome(outcomes, "neighbour").new == 1


def test_bad_things_are_skipped_and_malformed_json_stores_nothing(
    server: RedditServer, app_for: Callable[..., Any]
) -> None:
    app = app_for([{"name": "rd", "type": "reddit", "subreddits": ["askreddit"]}])
    server.fail("/r/askreddit/new", 200, body=b'{"kind": "Listing", "data": {')
    (broken,) = poll_sources(app)
    assert broken.status == "error" and "not JSON" in broken.error and count(app, m.Mention) == 0

    deleted = server.add_thing(
        "askreddit/comments", "t1", "reddit lost my post", author="[deleted]"
    )
    weird = server.add_thing("askreddit/comments", "t1", "reddit x", author="w")
    weird["kind"] = "t9"
    lone = server.add_thing("askreddit/comments", "t1", "reddit \ud800 broke", author="surr")
    huge = server.add_thing("askreddit/comments", "t1", "reddit " + "rant " * 100_000, author="big")
    (result,) = poll_sources(app, now=lambda: datetime.now(UTC) + timedelta(hours=1))
    assert result.status == "ok", result.error
    ids = set(stored_ids(app, "rd"))
    assert {lone["data"]["name"], huge["data"]["name"]} <= ids
    assert not {deleted["data"]["name"], weird["data"]["name"]} & ids
