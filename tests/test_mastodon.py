"""The Mastodon collector against a local instance replaying Mastodon.py's recordings."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from mastodonserver import MASTODON_ENV, MastodonServer, mastodon_settings
from socialfixtures import count, jsonl_neighbour, outcome, source_row, stored_ids

from listener import models as m
from listener.collectors import CollectContext, PollState, get_collector
from listener.config import settings_from_dict
from listener.pipeline import poll_sources

RECORDED_MENTION = "116275331587890092"  #: the one recorded notification whose status exists
RECORDED_SEARCH = {"116388149027005349", "116388107849695302", "110446223051565765"}


@pytest.fixture
def server(shared_data: Path) -> Iterator[MastodonServer]:
    with MastodonServer(shared_data / "mastodon") as srv:
        yield srv


@pytest.fixture
def app_for(
    server: MastodonServer, make_app: Callable[..., Any], tmp_path: Path
) -> Callable[..., Any]:
    def factory(sources: list[dict[str, Any]], env: dict[str, str] | None = None) -> Any:
        data = mastodon_settings(server.base_url, sources)
        data.pop("polling")
        return make_app(data, env=MASTODON_ENV if env is None else env)

    return factory


SOURCE = {"name": "masto", "type": "mastodon", "account": "halcy", "query": "halcy"}


def test_first_poll_stores_recorded_posts_once_and_repoll_asks_with_min_id(
    server: MastodonServer, app_for: Callable[..., Any]
) -> None:
    app = app_for([SOURCE])
    (first,) = poll_sources(app)
    assert first.status == "ok", first.error
    assert set(stored_ids(app, "masto")) == {RECORDED_MENTION, *RECORDED_SEARCH}
    assert first.new == 4
    notes = server.requests_to("/api/v1/notifications")
    assert notes[0].query["types[]"] == ["mention"] and "min_id" not in notes[0].query
    assert notes[0].headers["authorization"] == "Bearer halcy-token-SECRET"
    with app.sessions() as s:
        mention = s.query(m.Mention).filter_by(external_id="116388149027005349").one()
        assert mention.author.handle == "greg@icosahedron.website"
        assert mention.author.platform == "mastodon"
        assert mention.kind == "reply" and mention.url.startswith("https://")
        assert mention.raw["status"]["visibility"] == "public"

    (second,) = poll_sources(app)
    assert (second.status, second.new) == ("ok", 0)
    assert server.requests_to("/api/v1/notifications")[-1].query["min_id"] == ["550622655"]
    assert server.requests_to("/api/v2/search")[-1].query["min_id"] == ["116388149027005349"]
    assert len(server.requests_to("/api/v1/accounts/verify_credentials")) == 1  # cached

    fresh = server.add_status(
        "@halcy the app lost my draft again", acct="Jo@social.sublingual.xyz", mention="halcy"
    )
    (third,) = poll_sources(app)
    assert third.new == 1 and stored_ids(app, "masto")[-1] == fresh["id"]
    assert count(app, m.Mention) == 5


def test_hashtag_reads_the_public_tag_timeline(
    server: MastodonServer, app_for: Callable[..., Any]
) -> None:
    app = app_for([{"name": "tag", "type": "mastodon", "query": "#thisisahashtag"}])
    (result,) = poll_sources(app)
    assert result.status == "ok"
    assert stored_ids(app, "tag") == ["110446223051565765"]
    assert server.requests_to("/api/v1/timelines/tag/thisisahashtag")


def test_429_defers_the_source_until_retry_after(
    server: MastodonServer, app_for: Callable[..., Any]
) -> None:
    app = app_for([SOURCE])
    server.fail("/api/v1/accounts/verify_credentials", 429, headers={"retry-after": "120"})
    before = datetime.now(UTC)
    (result,) = poll_sources(app)
    assert result.status == "deferred"
    assert timedelta(seconds=100) < result.next_check_at - before < timedelta(seconds=200)
    row = source_row(app, "masto")
    assert row.warning.startswith("rate limited") and row.error_count == 0
    assert count(app, m.Mention) == 0


def test_a_spent_allowance_defers_without_asking(
    server: MastodonServer, app_for: Callable[..., Any]
) -> None:
    app = app_for([SOURCE])
    server.set_rate_limit(300, 4, reset_in=600)  # exactly what the first poll needs
    (first,) = poll_sources(app)
    assert first.status == "ok"
    asked = len(server.received)
    with app.sessions() as s, s.begin():
        s.query(m.Source).filter_by(name="masto").one().next_check_at = None
    (second,) = poll_sources(app)
    assert second.status == "deferred" and "rate limit spent" in second.error
    assert len(server.received) == asked, "asked again although the allowance was spent"
    assert second.next_check_at > datetime.now(UTC) + timedelta(seconds=500)


def test_auth_failure_is_recorded_and_the_poll_goes_on(
    server: MastodonServer, app_for: Callable[..., Any], tmp_path: Path
) -> None:
    app = app_for([SOURCE, jsonl_neighbour(tmp_path)], env={"MASTODON_ACCESS_TOKEN": "revoked"})
    outcomes = poll_sources(app)
    failed = outcome(outcomes, "masto")
    assert failed.status == "error"
    assert "rejected the credentials (401" in failed.error
    assert "MASTODON_ACCESS_TOKEN" in failed.error and "revoked" not in failed.error
    row = source_row(app, "masto")
    assert row.error_count == 1 and row.last_error == failed.error and row.next_check_at
    assert outcome(outcomes, "neighbour").new == 1


def test_the_token_never_goes_to_another_instance(
    server: MastodonServer, make_app: Callable[..., Any]
) -> None:
    data = mastodon_settings("https://brand.example", [])
    data["sources"] = [
        {
            "name": "other",
            "type": "mastodon",
            "base_url": server.base_url,
            "query": "#thisisahashtag",
        }
    ]
    data.pop("polling")
    app = make_app(data, env=MASTODON_ENV)
    (result,) = poll_sources(app)
    assert result.status == "ok"
    assert all("authorization" not in r.headers for r in server.received)


def test_mentions_without_a_token_are_a_clear_source_error(make_app: Callable[..., Any]) -> None:
    data = mastodon_settings("http://127.0.0.1:9", [SOURCE])
    data["mastodon"].pop("access_token")
    data.pop("polling")
    (result,) = poll_sources(make_app(data))
    assert result.status == "error" and "mastodon.access_token" in result.error


# ---------------------------------------------------------------------------
# bad data


def test_malformed_json_is_a_transient_error_and_stores_nothing(
    server: MastodonServer, app_for: Callable[..., Any]
) -> None:
    app = app_for([SOURCE])
    server.fail("/api/v1/notifications", 200, body=b'[{"id": "1", "type": "mention", ')
    (result,) = poll_sources(app)
    assert result.status == "error" and "not JSON" in result.error
    assert count(app, m.Mention) == 0 and source_row(app, "masto").cursor == {}
    (retry,) = poll_sources(app, now=lambda: datetime.now(UTC) + timedelta(hours=1))
    assert retry.status == "ok" and retry.new == 4


def test_bad_items_are_skipped_and_the_rest_stored(
    server: MastodonServer, app_for: Callable[..., Any]
) -> None:
    app = app_for([{"name": "search", "type": "mastodon", "query": "halcy"}])
    no_account = server.add_status("halcy: where is my parcel", acct="halcy@icosahedron.website")
    del no_account["account"]
    no_id = server.add_status("halcy no id", acct="greg@icosahedron.website")
    no_id["id"] = None
    lone = server.add_status("halcy broke my shoes", acct="greg@icosahedron.website")
    lone["content"] = "<p>halcy broke my shoes \ud800 twice</p>"
    huge = server.add_status("x", acct="Jo@social.sublingual.xyz")
    huge["content"] = "<p>halcy " + "very long complaint " * 20_000 + "</p>"
    future = server.add_status("halcy from the future", acct="Jo@social.sublingual.xyz")
    future["created_at"] = "2999-01-01T00:00:00Z"
    (result,) = poll_sources(app)
    assert result.status == "ok", result.error
    ids = set(stored_ids(app, "search"))
    assert {lone["id"], huge["id"], future["id"]} <= ids and no_account["id"] not in ids
    with app.sessions() as s:
        stored = {x.external_id: x for x in s.query(m.Mention)}
        assert "\ufffd" in stored[lone["id"]].text
        assert len(stored[huge["id"]].full_text or stored[huge["id"]].text) <= 50_000
        assert stored[future["id"]].published_at < datetime.now(UTC) + timedelta(minutes=1)


def test_a_non_list_answer_is_a_source_error(server: MastodonServer) -> None:
    settings = settings_from_dict(mastodon_settings(server.base_url, [SOURCE]), env=MASTODON_ENV)
    server.fail("/api/v1/notifications", 200, body={"error": "surprise"})
    from listener.errors import SourceFailing

    with pytest.raises(SourceFailing, match="not a list"):
        get_collector("mastodon").collect(
            settings.source("masto"), PollState(), CollectContext(settings)
        )


def test_pages_until_caught_up_and_resumes_after_the_page_cap(
    server: MastodonServer, shared_data: Path
) -> None:
    settings = settings_from_dict(
        mastodon_settings(
            server.base_url,
            [
                {
                    "name": "m",
                    "type": "mastodon",
                    "account": "halcy",
                    "options": {"page_size": 2, "max_pages": 2},
                }
            ],
        ),
        env=MASTODON_ENV,
    )
    collector = get_collector("mastodon")
    first = collector.collect(settings.source("m"), PollState(), CollectContext(settings))
    fresh = [
        server.add_status(
            f"@halcy order {i} is late", acct="greg@icosahedron.website", mention="halcy"
        )
        for i in range(5)
    ]
    time.sleep(0.01)
    second = collector.collect(settings.source("m"), first.state, CollectContext(settings))
    assert len(second.posts) == 4  # two pages of two, oldest first
    assert second.next_check_at is not None  # capped: the rest right away
    third = collector.collect(settings.source("m"), second.state, CollectContext(settings))
    got = {p.external_id for p in second.posts} | {p.external_id for p in third.posts}
    assert got == {f["id"] for f in fresh}
