"""FeedCollector over real HTTP to a local server: fetching, conditional GET,
redirects, errors, limits and concurrency.  Nothing in the collector is patched."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from feedserver import (
    FeedServer,
    Reply,
    Request,
    dribble,
    endless,
    feed_settings,
    feed_source,
    rss,
)

from listener.collectors import get_collector
from listener.collectors.base import CollectContext, CollectResult, PollState
from listener.collectors.feed import SHARED_KEY, FeedCollector, close_shared
from listener.errors import RateLimited, SourceFailing, SourceGone, TransientError

ITEMS = [
    {
        "guid": "tag:post-1",
        "title": "Trail run review",
        "link": "http://blog.example/1",
        "pubDate": "Tue, 03 Jun 2025 09:30:00 +0200",
        "description": "&lt;p&gt;My Acme Shoes fell apart after a week.&lt;/p&gt;",
    },
    {
        "guid": "tag:post-2",
        "title": "Weekend notes",
        "description": "Nothing about shoes here.",
    },
]
FEED = rss(ITEMS)


@pytest.fixture(scope="module")
def server() -> Iterator[FeedServer]:
    with FeedServer() as srv:
        yield srv


@pytest.fixture
def ctx() -> Iterator[CollectContext]:
    context = CollectContext(feed_settings())
    yield context
    close_shared(context.shared)


def collect(url: str, ctx: CollectContext, state: PollState | None = None) -> CollectResult:
    return FeedCollector().collect(feed_source(url), state or PollState(), ctx)


def test_registry_resolves_the_feed_collector() -> None:
    collector = get_collector("feed")
    assert isinstance(collector, FeedCollector)
    assert collector.needs == ("url", "path")


def test_matching_entries_become_posts_and_request_is_polite(
    server: FeedServer, ctx: CollectContext
) -> None:
    url = server.route("/basic.xml", Reply(200, FEED, {"Content-Type": "application/rss+xml"}))
    result = collect(url, ctx)
    assert [p.external_id for p in result.posts] == ["tag:post-1"]
    post = result.posts[0]
    assert post.kind == "entry"
    assert post.matched_keywords == ["Acme", "Acme Shoes"]
    assert "fell apart" in post.text and "<p>" not in (post.full_text or "")
    assert post.published_at == datetime(2025, 6, 3, 7, 30, tzinfo=UTC)
    assert post.author.handle == "Test Blog"  # no entry author: the feed's title
    assert post.raw == {
        "id": "tag:post-1",
        "link": "http://blog.example/1",
        "title": "Trail run review",
        "author": None,
        "published": "2025-06-03T07:30:00+00:00",
        "tags": [],
    }
    assert result.problems == [] and result.stats["parsed"] is True
    sent = server.requests_to("/basic.xml")[-1].headers
    assert sent["user-agent"] == ctx.settings.polling.user_agent
    assert "gzip" in sent["accept-encoding"]
    assert "application/atom+xml" in sent["accept"]


def test_match_all_takes_every_entry(server: FeedServer, ctx: CollectContext) -> None:
    url = server.route("/all.xml", Reply(200, FEED))
    result = FeedCollector().collect(feed_source(url, match_all=True), PollState(), ctx)
    assert [p.external_id for p in result.posts] == ["tag:post-1", "tag:post-2"]
    assert result.posts[1].matched_keywords == []
    assert result.posts[1].text.startswith("Weekend notes")


def test_gzip_body_is_decoded(server: FeedServer, ctx: CollectContext) -> None:
    url = server.route("/gz.xml", Reply(200, gzip.compress(FEED), {"Content-Encoding": "gzip"}))
    assert [p.external_id for p in collect(url, ctx).posts] == ["tag:post-1"]


def test_etag_gives_304_without_parsing(server: FeedServer, ctx: CollectContext) -> None:
    def etagged(request: Request) -> Reply:
        if request.headers.get("if-none-match") == '"v1"':
            return Reply(304, b"", {"ETag": '"v1"'})
        return Reply(200, FEED, {"ETag": '"v1"'})

    url = server.route("/etag.xml", etagged)
    first = collect(url, ctx)
    assert first.state.etag == '"v1"' and first.posts
    second = collect(url, ctx, first.state)
    assert second.not_modified and second.posts == [] and second.problems == []
    assert second.state is first.state  # unchanged
    assert second.stats["parsed"] is False


def test_last_modified_gives_304(server: FeedServer, ctx: CollectContext) -> None:
    stamp = format_datetime(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC), usegmt=True)

    def dated(request: Request) -> Reply:
        if request.headers.get("if-modified-since") == stamp:
            return Reply(304)
        return Reply(200, FEED, {"Last-Modified": stamp})

    url = server.route("/lm.xml", dated)
    first = collect(url, ctx)
    assert first.state.last_modified == stamp and first.state.etag is None
    assert collect(url, ctx, first.state).not_modified


def test_same_bytes_without_validators_are_not_parsed_again(
    server: FeedServer, ctx: CollectContext
) -> None:
    body = {"feed": FEED}
    url = server.route("/no-validators.xml", lambda _: Reply(200, body["feed"]))
    first = collect(url, ctx)
    assert first.posts and first.state.etag is None and first.state.last_modified is None
    again = collect(url, ctx, first.state)
    assert again.not_modified and again.stats["parsed"] is False and again.stats["unchanged_body"]
    body["feed"] = FEED.replace(b"a week", b"two days")
    changed = collect(url, ctx, again.state)
    assert changed.stats["parsed"] is True and "two days" in changed.posts[0].text


@pytest.mark.parametrize("status", [301, 308])
def test_permanent_redirect_updates_the_stored_url(
    server: FeedServer, ctx: CollectContext, status: int
) -> None:
    new = server.route(f"/moved-{status}/new.xml", Reply(200, FEED))
    old = server.route(f"/moved-{status}/old.xml", Reply(status, b"", {"Location": new}))
    result = collect(old, ctx)
    assert result.state.url == new and result.posts
    # the next poll goes straight to the new address
    before = len(server.requests_to(f"/moved-{status}/old.xml"))
    collect(old, ctx, result.state)
    assert len(server.requests_to(f"/moved-{status}/old.xml")) == before


@pytest.mark.parametrize("status", [302, 303, 307])
def test_temporary_redirect_keeps_the_url(
    server: FeedServer, ctx: CollectContext, status: int
) -> None:
    new = server.route(f"/temp-{status}/new.xml", Reply(200, FEED))
    old = server.route(f"/temp-{status}/old.xml", Reply(status, b"", {"Location": new}))
    result = collect(old, ctx)
    assert result.state.url is None and result.posts


def test_permanent_then_temporary_redirect_stores_the_permanent_target(
    server: FeedServer, ctx: CollectContext
) -> None:
    final = server.route("/chain/final.xml", Reply(200, FEED))
    middle = server.route("/chain/middle.xml", Reply(302, b"", {"Location": final}))
    start = server.route("/chain/start.xml", Reply(301, b"", {"Location": middle}))
    assert collect(start, ctx).state.url == middle


def test_changed_configured_url_wins_over_an_old_redirect(
    server: FeedServer, ctx: CollectContext
) -> None:
    url = server.route("/configured.xml", Reply(200, FEED))
    stale = PollState(url=server.url("/stale.xml"), cursor={"configured_url": "http://old/"})
    collect(url, ctx, stale)
    assert server.requests_to("/configured.xml") and not server.requests_to("/stale.xml")


def test_gone_raises_source_gone(server: FeedServer, ctx: CollectContext) -> None:
    url = server.route("/gone.xml", Reply(410, b"gone"))
    with pytest.raises(SourceGone, match="410"):
        collect(url, ctx)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, TransientError),
        (502, TransientError),
        (408, TransientError),
        (401, SourceFailing),
        (403, SourceFailing),
        (404, SourceFailing),
        (400, SourceFailing),
    ],
)
def test_http_errors_map_to_listener_errors(
    server: FeedServer, ctx: CollectContext, status: int, error: type[Exception]
) -> None:
    url = server.route(f"/status-{status}.xml", Reply(status, b"nope"))
    with pytest.raises(error, match=str(status)) as info:
        collect(url, ctx)
    assert not isinstance(info.value, RateLimited)


def test_rate_limits_carry_retry_at(server: FeedServer, ctx: CollectContext) -> None:
    url = server.route("/429.xml", Reply(429, b"", {"Retry-After": "120"}))
    before = datetime.now(UTC)
    with pytest.raises(RateLimited) as info:
        collect(url, ctx)
    assert info.value.retry_at is not None
    assert before + timedelta(seconds=119) <= info.value.retry_at <= before + timedelta(seconds=125)

    when = datetime(2031, 1, 1, tzinfo=UTC)
    url = server.route("/503.xml", Reply(503, b"", {"Retry-After": format_datetime(when, True)}))
    with pytest.raises(RateLimited) as info:
        collect(url, ctx)
    assert info.value.retry_at == when


def test_slow_server_times_out(server: FeedServer) -> None:
    ctx = CollectContext(feed_settings(polling={"timeout": "0.3s"}))
    url = server.route("/slow.xml", Reply(200, FEED, delay=1.5))
    started = time.monotonic()
    with pytest.raises(TransientError, match="timed out"):
        collect(url, ctx)
    assert time.monotonic() - started < 1.2
    close_shared(ctx.shared)


def test_slow_drip_body_hits_the_total_deadline(server: FeedServer) -> None:
    ctx = CollectContext(feed_settings(polling={"timeout": "0.5s"}))
    parts = [FEED[i : i + 40] for i in range(0, len(FEED), 40)]
    url = server.route("/drip.xml", lambda _: Reply(200, dribble(parts, 0.1)))
    with pytest.raises(TransientError, match="timed out"):
        collect(url, ctx)
    close_shared(ctx.shared)


def test_truncated_body_is_transient(server: FeedServer, ctx: CollectContext) -> None:
    url = server.route("/truncated.xml", Reply(200, FEED[:100], content_length=len(FEED)))
    with pytest.raises(TransientError):
        collect(url, ctx)


def test_declared_oversize_body_is_refused(server: FeedServer) -> None:
    ctx = CollectContext(feed_settings(polling={"max_bytes": 4096}))
    url = server.route("/big-declared.xml", Reply(200, b"x" * 10_000))
    with pytest.raises(SourceFailing, match="max_bytes"):
        collect(url, ctx)
    close_shared(ctx.shared)


def test_endless_stream_stops_at_the_cap(server: FeedServer) -> None:
    ctx = CollectContext(feed_settings(polling={"max_bytes": 256 * 1024}))
    url = server.route("/endless.xml", lambda _: Reply(200, endless()))  # "2 GB" stream
    started = time.monotonic()
    with pytest.raises(SourceFailing, match="max_bytes"):
        collect(url, ctx)
    assert time.monotonic() - started < 2
    close_shared(ctx.shared)


def test_gzip_bomb_stops_at_the_cap(server: FeedServer) -> None:
    ctx = CollectContext(feed_settings(polling={"max_bytes": 1024 * 1024}))
    bomb = gzip.compress(b"<rss>" + b" " * (50 * 1024 * 1024))
    url = server.route("/bomb.xml", Reply(200, bomb, {"Content-Encoding": "gzip"}))
    with pytest.raises(SourceFailing, match="max_bytes"):
        collect(url, ctx)
    close_shared(ctx.shared)


def test_html_page_is_a_source_error(server: FeedServer, ctx: CollectContext) -> None:
    page = b"<html><body><h1>Welcome</h1><p>Not a feed <b>at all</p></body></html>"
    url = server.route("/page.html", Reply(200, page, {"Content-Type": "text/html"}))
    with pytest.raises(SourceFailing, match="not an RSS/Atom feed"):
        collect(url, ctx)


def test_garbage_is_a_source_error(server: FeedServer, ctx: CollectContext) -> None:
    url = server.route("/garbage.xml", Reply(200, bytes(range(256)) * 20))
    with pytest.raises(SourceFailing):
        collect(url, ctx)


def test_bozo_feed_keeps_readable_entries(server: FeedServer, ctx: CollectContext) -> None:
    broken = FEED.replace(b"</channel></rss>", b"<item><title>Acme Shoes &bogus; cut")
    url = server.route("/bozo.xml", Reply(200, broken))
    result = collect(url, ctx)
    assert "tag:post-1" in [p.external_id for p in result.posts]
    assert result.problems and "blog:" in result.problems[0]


def test_windows_1251_declared_as_utf8(
    server: FeedServer, ctx: CollectContext, shared_data: Path
) -> None:
    body = (shared_data / "feeds/real/miniflux/encoding_WINDOWS-1251.xml").read_bytes()
    url = server.route(
        "/cp1251.xml", Reply(200, body, {"Content-Type": "application/xml; charset=utf-8"})
    )
    result = FeedCollector().collect(feed_source(url, match_all=True), PollState(), ctx)
    assert result.problems  # the lie is recorded …
    assert len(result.posts) > 10  # … and nothing is lost
    assert any("кот" in (p.full_text or "") for p in result.posts)  # decoded as cp1251


def test_latin1_without_declaration(server: FeedServer, ctx: CollectContext) -> None:
    body = rss([{"guid": "tag:x", "title": "Café Acme Shoes déçu"}]).replace(
        b"utf-8", b"iso-8859-1"
    )
    body = body.decode("utf-8").encode("latin-1")
    url = server.route(
        "/latin1.xml", Reply(200, body, {"Content-Type": "text/xml; charset=iso-8859-1"})
    )
    assert collect(url, ctx).posts[0].title == "Café Acme Shoes déçu"


def test_unresolvable_host_is_transient(ctx: CollectContext) -> None:
    with pytest.raises(TransientError):
        collect("http://no-such-host.invalid/feed.xml", ctx)


def test_refused_connection_is_transient(ctx: CollectContext) -> None:
    probe = FeedServer()
    port = probe.port
    probe.stop()
    with pytest.raises(TransientError, match="network error"):
        collect(f"http://127.0.0.1:{port}/feed.xml", ctx)


@pytest.mark.parametrize("url", ["ftp://example.invalid/feed.xml", "http://[::1/feed.xml"])
def test_unusable_url_is_a_source_error(ctx: CollectContext, url: str) -> None:
    with pytest.raises(SourceFailing):
        collect(url, ctx)


def test_edited_entry_keeps_its_id_and_changes_hash(
    server: FeedServer, ctx: CollectContext
) -> None:
    versions = {"description": "My Acme Shoes fell apart."}
    url = server.route("/edited.xml", lambda _: Reply(200, rss([{"guid": "tag:e1", **versions}])))
    first = collect(url, ctx).posts[0]
    versions["description"] = "My Acme Shoes fell apart. Update: Acme replaced them, thanks!"
    second = collect(url, ctx).posts[0]
    assert first.external_id == second.external_id == "tag:e1"
    assert first.content_hash != second.content_hash


def test_per_host_connections_are_bounded(server: FeedServer) -> None:
    ctx = CollectContext(feed_settings(polling={"per_host": 2, "max_concurrency": 16}))
    lock = threading.Lock()
    active = {"now": 0, "max": 0}

    def counted(_: Request) -> Reply:
        with lock:
            active["now"] += 1
            active["max"] = max(active["max"], active["now"])
        time.sleep(0.15)
        with lock:
            active["now"] -= 1
        return Reply(200, FEED)

    url = server.route("/counted.xml", counted)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: collect(url, ctx), range(8)))
    assert all(r.posts for r in results)
    assert active["max"] == 2
    close_shared(ctx.shared)


def test_slow_feed_does_not_delay_others(server: FeedServer) -> None:
    ctx = CollectContext(feed_settings(polling={"per_host": 1, "timeout": "3s"}))
    # "localhost" and "127.0.0.1" are two hosts to the collector: separate per-host slots
    slow = server.route("/very-slow.xml", Reply(200, FEED, delay=1.5))
    slow = slow.replace("127.0.0.1", "localhost")
    fast = [server.route(f"/fast-{i}.xml", Reply(200, FEED)) for i in range(6)]
    with ThreadPoolExecutor(4) as pool:
        started = time.monotonic()
        slow_future = pool.submit(collect, slow, ctx)
        done = [f.result() for f in [pool.submit(collect, u, ctx) for u in fast]]
        fast_elapsed = time.monotonic() - started
        assert slow_future.result().posts
    assert all(r.posts for r in done)
    assert fast_elapsed < 1.0
    close_shared(ctx.shared)


def test_one_shared_client_per_run(server: FeedServer, ctx: CollectContext) -> None:
    url = server.route("/shared.xml", Reply(200, FEED))
    collect(url, ctx)
    http = ctx.shared[SHARED_KEY]
    collect(url, ctx)
    assert ctx.shared[SHARED_KEY] is http
    close_shared(ctx.shared)
    assert SHARED_KEY not in ctx.shared


def test_local_file_is_read_and_unchanged_file_costs_nothing(
    tmp_path: Path, ctx: CollectContext
) -> None:
    path = tmp_path / "feed.xml"
    path.write_bytes(FEED)
    source = feed_source(path=str(path))
    first = FeedCollector().collect(source, PollState(), ctx)
    assert [p.external_id for p in first.posts] == ["tag:post-1"]
    again = FeedCollector().collect(source, first.state, ctx)
    assert again.not_modified and again.posts == [] and again.stats["parsed"] is False
    path.write_bytes(FEED.replace(b"fell apart", b"fell apart badly"))
    changed = FeedCollector().collect(source, first.state, ctx)
    assert not changed.not_modified and changed.posts[0].external_id == "tag:post-1"


def test_relative_path_resolves_against_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "feeds").mkdir()
    (tmp_path / "feeds" / "f.xml").write_bytes(FEED)
    settings = feed_settings()
    settings.base_dir = tmp_path
    result = FeedCollector().collect(
        feed_source(path="feeds/f.xml"), PollState(), CollectContext(settings)
    )
    assert result.posts


def test_missing_local_file_is_a_source_error(tmp_path: Path, ctx: CollectContext) -> None:
    with pytest.raises(SourceFailing, match="not found"):
        FeedCollector().collect(feed_source(path=str(tmp_path / "nope.xml")), PollState(), ctx)
