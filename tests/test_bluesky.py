"""The Bluesky collector against a local PDS whose pages are built from real post views."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from blueskyserver import (
    BLUESKY_ENV,
    BRAND_HANDLE,
    RECORDED,
    BlueskyServer,
    bluesky_settings,
)
from socialfixtures import count, jsonl_neighbour, outcome, source_row, stored_ids

from listener import models as m
from listener.collectors.bluesky import forget_sessions
from listener.pipeline import poll_sources

#: the real recorded posts of test.marshal.dev that say "test"
RECORDED_POSTS = {
    "at://did:plc:kvwvcn5iqfooopmyzvb4qzba/app.bsky.feed.post/3kahesw26il2z",
    "at://did:plc:kvwvcn5iqfooopmyzvb4qzba/app.bsky.feed.post/3k2yinh52ne2x",
}
SOURCE = {"name": "sky", "type": "bluesky", "handle": BRAND_HANDLE, "query": "test"}


@pytest.fixture
def server(shared_data: Path) -> Iterator[BlueskyServer]:
    forget_sessions()
    with BlueskyServer(shared_data / "bluesky") as srv:
        yield srv
    forget_sessions()


@pytest.fixture
def app_for(server: BlueskyServer, make_app: Callable[..., Any]) -> Callable[..., Any]:
    def factory(sources: list[dict[str, Any]], env: dict[str, str] | None = None) -> Any:
        data = bluesky_settings(server.base_url, sources)
        data.pop("polling")
        return make_app(data, env=BLUESKY_ENV if env is None else env)

    return factory


def test_first_poll_stores_posts_once_and_repoll_asks_since(
    server: BlueskyServer, app_for: Callable[..., Any]
) -> None:
    mention = server.add_post(
        f"@{BRAND_HANDLE} my order never arrived", author=RECORDED, mention=BRAND_HANDLE
    )
    app = app_for([SOURCE])
    (first,) = poll_sources(app)
    assert first.status == "ok", first.error
    assert set(stored_ids(app, "sky")) == {mention["uri"], *RECORDED_POSTS}
    with app.sessions() as s:
        row = s.query(m.Mention).filter_by(external_id=mention["uri"]).one()
        assert row.author.handle == RECORDED and row.author.platform == "bluesky"
        assert row.author.external_id == "did:plc:kvwvcn5iqfooopmyzvb4qzba"
        assert row.url.startswith("https://bsky.app/profile/test.marshal.dev/post/")
        assert row.raw["cid"] == mention["cid"]
    search = server.requests_to("/xrpc/app.bsky.feed.searchPosts")[0]
    assert search.query["sort"] == ["latest"] and "since" not in search.query
    assert search.headers["authorization"].startswith("Bearer access-")

    (second,) = poll_sources(app)
    assert (second.status, second.new) == ("ok", 0)
    assert server.requests_to("/xrpc/app.bsky.feed.searchPosts")[-1].query["since"] == [
        "2023-09-28T12:46:18.414000Z"
    ]
    assert server.sessions_created == 1  # the session is kept, not re-created each poll

    reply = server.add_post(
        "this test thing is broken", author="divy.zone", reply_to=mention["uri"]
    )
    (third,) = poll_sources(app)
    assert third.new == 1 and stored_ids(app, "sky")[-1] == reply["uri"]


def test_an_expired_session_is_refreshed(
    server: BlueskyServer, app_for: Callable[..., Any]
) -> None:
    app = app_for([SOURCE])
    poll_sources(app)
    server.expire_tokens()
    (again,) = poll_sources(app, now=lambda: datetime.now(UTC) + timedelta(hours=1))
    assert again.status == "ok", again.error
    assert server.requests_to("/xrpc/com.atproto.server.refreshSession", "POST")


def test_429_defers_until_the_reset(server: BlueskyServer, app_for: Callable[..., Any]) -> None:
    app = app_for([SOURCE])
    reset = int((datetime.now(UTC) + timedelta(minutes=4)).timestamp())
    server.fail(
        "/xrpc/app.bsky.notification",
        429,
        headers={"ratelimit-remaining": "0", "ratelimit-reset": str(reset)},
        body={"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
    )
    (result,) = poll_sources(app)
    assert result.status == "deferred"
    assert abs(result.next_check_at.timestamp() - reset) < 2
    assert count(app, m.Mention) == 0


def test_a_wrong_app_password_is_recorded_and_the_poll_goes_on(
    server: BlueskyServer, app_for: Callable[..., Any], tmp_path: Path
) -> None:
    app = app_for([SOURCE, jsonl_neighbour(tmp_path)], env={"BLUESKY_APP_PASSWORD": "wrong"})
    outcomes = poll_sources(app)
    failed = outcome(outcomes, "sky")
    assert failed.status == "error" and "rejected the credentials (401" in failed.error
    assert "wrong" not in failed.error and "BLUESKY_APP_PASSWORD" in failed.error
    assert source_row(app, "sky").error_count == 1
    assert outcome(outcomes, "neighbour").new == 1


def test_bad_posts_are_skipped_and_malformed_json_stores_nothing(
    server: BlueskyServer, app_for: Callable[..., Any]
) -> None:
    app = app_for([{"name": "sky", "type": "bluesky", "query": "test"}])
    server.fail("/xrpc/app.bsky.feed.searchPosts", 200, body=b'{"posts": [{"uri": ')
    (broken,) = poll_sources(app)
    assert broken.status == "error" and "not JSON" in broken.error and count(app, m.Mention) == 0

    no_record = server.add_post("test without a record", author="divy.zone")
    del no_record["record"]
    bad_uri = server.add_post("test with a bad uri", author="divy.zone")
    server.posts["https://not-an-at-uri"] = dict(bad_uri, uri="https://not-an-at-uri")
    server.index["https://not-an-at-uri"] = server.index[bad_uri["uri"]]
    lone = server.add_post("test \udc00 lone surrogate", author="divy.zone")
    huge = server.add_post("test " + "long " * 100_000, author="divy.zone")
    (result,) = poll_sources(app, now=lambda: datetime.now(UTC) + timedelta(hours=1))
    assert result.status == "ok", result.error
    ids = set(stored_ids(app, "sky"))
    assert {lone["uri"], huge["uri"], bad_uri["uri"], *RECORDED_POSTS} <= ids
    assert "https://not-an-at-uri" not in ids and no_record["uri"] not in ids
