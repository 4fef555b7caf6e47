"""X collectors against a local X-API-compatible server replaying recorded responses."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from xserver import SEARCH, TEST_ENV, XServer, settings_dict, snowflake

from listener.collectors import CollectContext, CollectResult, PollState, get_collector
from listener.collectors.x import XMentionsCollector, XSearchCollector, build_search_query
from listener.config import Settings, settings_from_dict
from listener.errors import ConfigError, RateLimited, SourceFailing, TransientError

MENTIONS = "/2/users/783214/mentions"
RECORDED_SEARCH_NEWEST = "1578516068309794817"
RECORDED_MENTIONS_NEWEST = "1578516295611748353"

CUSTOMER = {
    "id": "9000000001",
    "username": "sam_flyer",
    "name": "Sam Flyer",
    "verified": True,
    "public_metrics": {"followers_count": 12500, "following_count": 80, "tweet_count": 900},
}
OTHER = {
    "id": "9000000002",
    "username": "jo_b",
    "name": "Jo B",
    "verified": False,
    "public_metrics": {"followers_count": 42, "following_count": 10, "tweet_count": 20},
}
BRAND = {"id": "783214", "username": "Twitter", "name": "Twitter"}


@pytest.fixture
def server(shared_data: Path) -> Iterator[XServer]:
    with XServer(shared_data / "x-api") as srv:
        yield srv


def make_settings(server: XServer, **kw: Any) -> Settings:
    sources = [
        {"name": "x-search", "type": "x_search", "query": "Tweepy", "options": kw.pop("opts", {})},
        {
            "name": "x-mentions",
            "type": "x_mentions",
            "username": "Twitter",
            "options": kw.pop("mopts", {}),
        },
    ]
    return settings_from_dict(settings_dict(server.base_url, sources, **kw), env=TEST_ENV)


def collect(
    settings: Settings, name: str, state: PollState | None = None, clock: Any = None
) -> CollectResult:
    source = settings.source(name)
    collector = get_collector(source.type)
    if clock is not None:
        collector = type(collector)(clock=clock)
    return collector.collect(source, state or PollState(), CollectContext(settings))


def new_id(offset: int) -> str:
    """An id newer than everything recorded (2022), ordered by ``offset``."""
    return snowflake(time.time() - 3600 + offset)


def tweet(tid: str, text: str, author: dict, **extra: Any) -> dict[str, Any]:
    return {
        "id": tid,
        "text": text,
        "author_id": author["id"],
        "created_at": "2026-11-23T10:00:00.000Z",
        "lang": "en",
        "conversation_id": extra.pop("conversation_id", tid),
        "public_metrics": {"retweet_count": 0, "reply_count": 0, "like_count": 1},
        **extra,
    }


# ---------------------------------------------------------------------------
# search


def test_search_replays_recording_and_returns_new_since_id(server: XServer) -> None:
    settings = make_settings(server)
    result = collect(settings, "x-search")

    assert result.posts[0].external_id == RECORDED_SEARCH_NEWEST
    assert len(result.posts) == 10
    assert result.state.since_id == RECORDED_SEARCH_NEWEST
    first = result.posts[0]
    # no created_at in the recording: the time comes from the snowflake id
    assert first.full_text == "2022-10-07 22:42:12.637103 tweepy"
    assert abs(first.published_at - datetime(2022, 10, 7, 22, 42, 12, tzinfo=UTC)) < timedelta(
        seconds=1
    )
    assert result.stats["requests"] == 1 and result.stats["caught_up"] is True

    (req,) = server.requests_to(SEARCH)
    assert req.query["query"] == "Tweepy -is:retweet -from:Twitter -from:TwitterSupport"
    assert req.headers["authorization"] == "Bearer test-bearer-token-SECRET"
    assert "since_id" not in req.query
    assert set(req.query["expansions"].split(",")) >= {"author_id", "referenced_tweets.id"}
    assert "conversation_id" in req.query["tweet.fields"]
    assert "public_metrics" in req.query["user.fields"]


def test_search_query_operators_are_added_once() -> None:
    assert build_search_query("acme", ["acme"]) == "acme -is:retweet -from:acme"
    q = "(acme OR #acmeshoes) -is:retweet -from:Acme lang:en"
    assert build_search_query(q, ["acme", "acmehelp"]) == q + " -from:acmehelp"


def test_second_poll_sends_since_id_and_gets_only_newer(server: XServer) -> None:
    settings = make_settings(server)
    first = collect(settings, "x-search")
    nid = new_id(0)
    server.add_tweets(SEARCH, [tweet(nid, "tweepy and Twitter rock", OTHER)], [OTHER])

    second = collect(settings, "x-search", first.state)

    assert [p.external_id for p in second.posts] == [nid]
    assert second.posts[0].matched_keywords == ["Twitter"]
    assert second.state.since_id == nid
    assert server.requests_to(SEARCH)[-1].query["since_id"] == RECORDED_SEARCH_NEWEST
    third = collect(settings, "x-search", second.state)
    assert third.posts == [] and third.state.since_id == nid


def test_search_skips_retweets_and_the_brands_own_posts(server: XServer) -> None:
    settings = make_settings(server)
    ids = [new_id(i) for i in range(3)]
    server.add_tweets(
        SEARCH,
        [
            tweet(ids[0], "tweepy question", OTHER),
            tweet(
                ids[1],
                "RT @jo_b: tweepy question",
                CUSTOMER,
                referenced_tweets=[{"type": "retweeted", "id": ids[0]}],
            ),
            tweet(ids[2], "tweepy news from us", BRAND),
        ],
        [OTHER, CUSTOMER, BRAND],
    )
    state = PollState(since_id=RECORDED_SEARCH_NEWEST)

    result = collect(settings, "x-search", state)

    # the server honours -is:retweet and -from:, so nothing to skip on our side
    assert [p.external_id for p in result.posts] == [ids[0]]
    assert result.state.since_id == ids[0]


# ---------------------------------------------------------------------------
# mentions


def test_mentions_resolve_username_once_and_cache_it(server: XServer) -> None:
    settings = make_settings(server)
    first = collect(settings, "x-mentions")

    assert first.state.cursor["user_id"] == "783214"
    assert len(first.posts) == 10
    assert first.posts[0].external_id == RECORDED_MENTIONS_NEWEST
    assert first.posts[0].full_text.startswith("@Twitter @TwitterSupport this is my ENTIRE feed")
    assert first.posts[0].matched_keywords == ["@Twitter", "@TwitterSupport"]
    assert len(server.requests_to("/2/users/by/username/Twitter")) == 1

    collect(settings, "x-mentions", first.state)
    assert len(server.requests_to("/2/users/by/username/Twitter")) == 1
    assert server.requests_to(MENTIONS)[-1].query["since_id"] == RECORDED_MENTIONS_NEWEST


def test_mentions_authors_conversations_replies_quotes(server: XServer) -> None:
    settings = make_settings(server)
    root, reply, quote, rt, own = (new_id(i) for i in range(5))
    server.add_tweets(
        MENTIONS,
        [
            tweet(root, "@Twitter my account is locked and nobody answers", CUSTOMER, lang="en"),
            tweet(
                reply,
                "@sam_flyer @Twitter same here, two days now",
                OTHER,
                conversation_id=root,
                in_reply_to_user_id=CUSTOMER["id"],
                referenced_tweets=[{"type": "replied_to", "id": root}],
            ),
            tweet(
                quote,
                "this, @Twitter. fix it",
                OTHER,
                referenced_tweets=[{"type": "quoted", "id": root}],
            ),
            tweet(
                rt,
                "RT @sam_flyer: @Twitter my account is locked",
                OTHER,
                referenced_tweets=[{"type": "retweeted", "id": root}],
            ),
            tweet(
                own,
                "@Twitter @sam_flyer we're on it",
                BRAND,
                conversation_id=root,
                referenced_tweets=[{"type": "replied_to", "id": root}],
            ),
        ],
        [CUSTOMER, OTHER, BRAND],
    )

    result = collect(settings, "x-mentions", PollState(since_id=RECORDED_MENTIONS_NEWEST))

    posts = {p.external_id: p for p in result.posts}
    assert set(posts) == {root, reply, quote}
    assert result.stats["retweets_skipped"] == 1 and result.stats["own_skipped"] == 1
    p = posts[root]
    assert (p.kind, p.conversation_id, p.in_reply_to_id) == ("post", root, None)
    assert p.author.handle == "sam_flyer" and p.author.display_name == "Sam Flyer"
    assert p.author.external_id == CUSTOMER["id"]
    assert p.author.followers == 12500 and p.author.verified is True
    assert p.url == f"https://x.com/sam_flyer/status/{root}"
    assert p.published_at == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert p.lang == "en" and p.raw["author"]["username"] == "sam_flyer"
    r = posts[reply]
    assert (r.kind, r.conversation_id, r.in_reply_to_id) == ("reply", root, root)
    assert r.author.handle == "jo_b" and r.author.followers == 42
    q = posts[quote]
    assert (q.kind, q.in_reply_to_id) == ("quote", root)
    assert result.state.since_id == own  # newest seen, even though it was skipped


def test_unknown_username_is_a_source_failure(server: XServer) -> None:
    data = settings_dict(
        server.base_url, [{"name": "m", "type": "x_mentions", "username": "no_such_account_x"}]
    )
    settings = settings_from_dict(data, env=TEST_ENV)
    with pytest.raises(SourceFailing, match="no account @no_such_account_x"):
        collect(settings, "m")


# ---------------------------------------------------------------------------
# paging and gaps


def test_paging_follows_next_token_until_caught_up(server: XServer) -> None:
    settings = make_settings(server, mopts={"page_size": 5})
    result = collect(settings, "x-mentions")

    pages = server.requests_to(MENTIONS)
    assert len(pages) == 2  # 5 + 5: the second page has no next_token
    assert "pagination_token" not in pages[0].query
    assert pages[1].query["pagination_token"] == f"next-{result.posts[4].external_id}"
    assert len(result.posts) == 10 and result.stats["caught_up"] is True
    assert result.state.since_id == RECORDED_MENTIONS_NEWEST


def test_search_pages_with_next_token(server: XServer) -> None:
    server.add_tweets(SEARCH, [tweet(new_id(i), f"tweepy {i}", OTHER) for i in range(5)], [OTHER])
    settings = make_settings(server, opts={"page_size": 10})
    result = collect(settings, "x-search")
    reqs = server.requests_to(SEARCH)
    assert len(reqs) == 2 and reqs[1].query["next_token"].startswith("next-")
    assert len(result.posts) == 15


def test_page_cap_leaves_a_gap_that_the_next_polls_fill(server: XServer) -> None:
    settings = make_settings(server, mopts={"page_size": 5, "max_pages": 2})
    start = PollState(
        since_id=RECORDED_MENTIONS_NEWEST, cursor={"user_id": "783214", "username": "Twitter"}
    )
    new = [new_id(i) for i in range(12)]
    server.add_tweets(
        MENTIONS, [tweet(t, f"@Twitter hello {i}", OTHER) for i, t in enumerate(new)], [OTHER]
    )

    first = collect(settings, "x-mentions", start)
    assert len(first.posts) == 10 and first.stats["caught_up"] is False
    assert first.state.since_id == RECORDED_MENTIONS_NEWEST  # not moved past unread posts
    gap = first.state.cursor["gap"]
    assert gap == {"since_id": RECORDED_MENTIONS_NEWEST, "until_id": new[2], "newest_id": new[11]}
    assert first.next_check_at is not None

    second = collect(settings, "x-mentions", first.state)
    req = server.requests_to(MENTIONS)[-1]
    assert (req.query["since_id"], req.query["until_id"]) == (RECORDED_MENTIONS_NEWEST, new[2])
    assert sorted(p.external_id for p in second.posts) == sorted(new[:2])
    assert second.state.since_id == new[11] and "gap" not in second.state.cursor

    third = collect(settings, "x-mentions", second.state)
    assert third.posts == []
    assert server.requests_to(MENTIONS)[-1].query["since_id"] == new[11]
    seen = [p.external_id for r in (first, second) for p in r.posts]
    assert sorted(seen) == sorted(new)  # nothing lost, nothing twice


def test_first_poll_page_cap_starts_from_newest(server: XServer) -> None:
    settings = make_settings(server, mopts={"page_size": 5, "max_pages": 1})
    result = collect(settings, "x-mentions")
    assert len(result.posts) == 5
    assert result.state.since_id == RECORDED_MENTIONS_NEWEST
    assert "gap" not in result.state.cursor
    assert any("first poll" in p for p in result.problems)
    assert result.next_check_at is None  # nothing left to catch up on


# ---------------------------------------------------------------------------
# rate limits and budget


def test_429_raises_rate_limited_at_reset_without_sleeping(server: XServer) -> None:
    reset = int(time.time()) + 600
    server.fail(
        SEARCH, 429, headers={"x-rate-limit-reset": str(reset), "x-rate-limit-remaining": "0"}
    )
    settings = make_settings(server)
    started = time.monotonic()
    with pytest.raises(RateLimited) as info:
        collect(settings, "x-search")
    assert time.monotonic() - started < 1.5
    assert info.value.retry_at == datetime.fromtimestamp(reset, UTC)
    assert len(server.requests_to(SEARCH)) == 1


def test_429_mid_paging_keeps_the_pages_read(server: XServer) -> None:
    reset = int(time.time()) + 300
    server.set_rate_limit(MENTIONS, limit=75, remaining=1, reset=reset)
    settings = make_settings(server, mopts={"page_size": 5})
    state = PollState(since_id="1", cursor={"user_id": "783214", "username": "Twitter"})

    result = collect(settings, "x-mentions", state)

    assert len(result.posts) == 5
    assert result.next_check_at == datetime.fromtimestamp(reset, UTC)
    assert result.state.since_id == "1" and result.state.cursor["gap"]["until_id"]
    assert result.state.cursor["budget"]["remaining"] == 0
    # X said 0 remaining until reset: the next poll does not even ask
    n = len(server.received)
    with pytest.raises(RateLimited) as info:
        collect(settings, "x-mentions", result.state)
    assert info.value.retry_at == datetime.fromtimestamp(reset, UTC)
    assert len(server.received) == n


def test_rate_limit_headers_raise_a_warning_when_low(server: XServer) -> None:
    server.set_rate_limit(SEARCH, limit=450, remaining=60, reset=int(time.time()) + 900)
    result = collect(make_settings(server), "x-search")
    budget = result.state.cursor["budget"]
    assert (budget["remaining"], budget["limit"]) == (59, 450)
    assert result.warning and "59/450" in result.warning


class Clock:
    """A settable clock for budget windows."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_budget_warns_then_stops_then_resumes_after_the_window(server: XServer) -> None:
    settings = make_settings(
        server, budget={"requests_per_15min": 4, "warn_at": 0.5}, mopts={"page_size": 5}
    )
    clock = Clock(datetime(2026, 11, 23, 11, 0, tzinfo=UTC))

    # 1 lookup + 2 pages: 3 of 4 requests -> warning
    first = collect(settings, "x-mentions", clock=clock)
    assert first.warning and "3/4 requests this 15-minute window" in first.warning
    assert first.state.cursor["budget"]["window_count"] == 3

    # a "restart": a new collector instance, counters read back from the stored cursor
    server.add_tweets(
        MENTIONS, [tweet(new_id(i), f"@Twitter hi {i}", OTHER) for i in range(12)], [OTHER]
    )
    clock.now += timedelta(minutes=5)
    second = collect(settings, "x-mentions", first.state, clock=clock)
    assert len(second.posts) == 5  # one request left: one page, then stop
    window_end = datetime(2026, 11, 23, 11, 15, tzinfo=UTC)
    assert second.next_check_at == window_end
    assert "budget spent" in second.problems[0]
    assert second.state.since_id == first.state.since_id  # gap kept for later

    n = len(server.received)
    with pytest.raises(RateLimited) as info:
        collect(settings, "x-mentions", second.state, clock=clock)
    assert info.value.retry_at == window_end
    assert len(server.received) == n  # nothing was asked

    clock.now = window_end + timedelta(seconds=1)
    third = collect(settings, "x-mentions", second.state, clock=clock)
    assert len(third.posts) == 5 + 2  # the rest of the gap, then caught up
    assert third.state.cursor["budget"]["window_count"] == 2  # a fresh window


def test_monthly_budget_defers_to_next_month(server: XServer) -> None:
    settings = make_settings(server, budget={"requests_per_month": 2}, mopts={"page_size": 5})
    clock = Clock(datetime(2026, 11, 30, 23, 0, tzinfo=UTC))
    first = collect(settings, "x-mentions", clock=clock)  # lookup + 1 page, then spent
    assert first.state.cursor["budget"]["month_count"] == 2
    assert first.next_check_at == datetime(2026, 12, 1, tzinfo=UTC)
    clock.now += timedelta(minutes=30)
    with pytest.raises(RateLimited) as info:
        collect(settings, "x-mentions", first.state, clock=clock)
    assert info.value.retry_at == datetime(2026, 12, 1, tzinfo=UTC)


def test_source_options_override_the_budget(server: XServer) -> None:
    settings = make_settings(
        server, budget={"requests_per_15min": 100}, opts={"requests_per_15min": 1}
    )
    clock = Clock(datetime(2026, 11, 23, 11, 0, tzinfo=UTC))
    first = collect(settings, "x-search", clock=clock)
    with pytest.raises(RateLimited):
        collect(settings, "x-search", first.state, clock=clock)


# ---------------------------------------------------------------------------
# errors


def test_401_is_a_source_failure_naming_the_variable_not_the_token(server: XServer) -> None:
    server.fail(
        SEARCH, 401, body={"title": "Unauthorized", "detail": "Unauthorized", "status": 401}
    )
    with pytest.raises(SourceFailing) as info:
        collect(make_settings(server), "x-search")
    message = str(info.value)
    assert "X rejected the bearer token (401): check X_BEARER_TOKEN" in message
    assert "SECRET" not in message


def test_tokens_never_reach_the_logs(server: XServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    # other tests may have quietened these loggers (listener.logs.configure); open them again
    caplog.set_level(logging.DEBUG, logger="urllib3")
    caplog.set_level(logging.DEBUG, logger="tweepy")
    server.fail(SEARCH, 401)
    with pytest.raises(SourceFailing):
        collect(make_settings(server), "x-search")
    collect(make_settings(server), "x-mentions")
    assert caplog.records  # urllib3 and friends did log at DEBUG
    assert "SECRET" not in caplog.text


def test_403_is_a_source_failure_with_xs_reason(server: XServer) -> None:
    server.fail(
        SEARCH,
        403,
        body={
            "title": "Client Forbidden",
            "detail": "When authenticating requests to the Twitter API v2 endpoints,"
            " you must use keys and tokens from a Project.",
        },
    )
    with pytest.raises(SourceFailing, match=r"403.*Project"):
        collect(make_settings(server), "x-search")


def test_400_bad_query_is_a_source_failure(server: XServer) -> None:
    server.fail(
        SEARCH,
        400,
        body={
            "errors": [
                {"message": "There were errors processing your request: Ambiguous use of and"}
            ],
            "title": "Invalid Request",
        },
    )
    with pytest.raises(SourceFailing, match="Ambiguous use of and"):
        collect(make_settings(server), "x-search")


def test_503_is_transient(server: XServer) -> None:
    server.fail(MENTIONS, 503)
    with pytest.raises(TransientError) as info:
        collect(make_settings(server), "x-mentions")
    assert not isinstance(info.value, RateLimited)


def test_slow_answer_times_out_as_transient(server: XServer) -> None:
    server.delay(SEARCH, 1.0)
    settings = make_settings(server, timeout="0.2s")
    with pytest.raises(TransientError, match="in time"):
        collect(settings, "x-search")


def test_unreachable_host_is_transient(server: XServer) -> None:
    data = settings_dict("http://127.0.0.1:9", [{"name": "s", "type": "x_search", "query": "a"}])
    with pytest.raises(TransientError, match="cannot reach X"):
        collect(settings_from_dict(data, env=TEST_ENV), "s")


def test_missing_bearer_token_is_a_source_failure(server: XServer) -> None:
    data = settings_dict(server.base_url, [{"name": "s", "type": "x_search", "query": "a"}])
    del data["x"]["bearer_token"]
    with pytest.raises(SourceFailing, match="X_BEARER_TOKEN"):
        collect(settings_from_dict(data, env=TEST_ENV), "s")
    assert server.received == []


# ---------------------------------------------------------------------------
# config


def test_config_x_block_and_budget_validate() -> None:
    data = settings_dict(
        "http://127.0.0.1:1",
        budget={"requests_per_15min": 50, "requests_per_month": 10000, "warn_at": 0.9},
    )
    settings = settings_from_dict(data, env=TEST_ENV)
    assert settings.x.budget.requests_per_15min == 50
    assert settings.x.bearer_token is not None
    assert settings.x.bearer_token.get_secret_value() == TEST_ENV["X_BEARER_TOKEN"]
    assert "SECRET" not in repr(settings.x)
    data["x"]["budget"]["per_day"] = 1
    with pytest.raises(ConfigError, match=r"x\.budget\.per_day: unknown key"):
        settings_from_dict(data, env=TEST_ENV)
    with pytest.raises(ConfigError, match="X_BEARER_TOKEN"):
        settings_from_dict(settings_dict("http://127.0.0.1:1"), env={})


def test_collectors_are_registered() -> None:
    assert isinstance(get_collector("x_search"), XSearchCollector)
    assert isinstance(get_collector("x_mentions"), XMentionsCollector)


def test_since_id_older_than_the_search_window_restarts_from_newest(server: XServer) -> None:
    server.fail(
        SEARCH,
        400,
        body={
            "errors": [
                {
                    "parameters": {"since_id": ["1"]},
                    "message": "Invalid 'since_id':'1'. 'since_id' must be a tweet id created "
                    "after 2026-11-16T11:00:00Z.",
                }
            ],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
        },
    )
    state = PollState(
        since_id="1", cursor={"gap": {"since_id": "1", "until_id": "5", "newest_id": "9"}}
    )
    result = collect(make_settings(server), "x-search", state)

    assert len(result.posts) == 10
    assert result.state.since_id == RECORDED_SEARCH_NEWEST and "gap" not in result.state.cursor
    assert "since_id" in result.problems[0]
    first, second = server.requests_to(SEARCH)
    assert first.query["since_id"] == "1" and "since_id" not in second.query
