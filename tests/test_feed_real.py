"""Real-world feeds (ranchero-rsparser and miniflux test data) served locally.

The test brand is Apple: Daring Fireball, Katie Floyd, ATP, Macworld … talk
about it, others (Russ Cox, phpxml, Urdu news) do not, so both sides of
matching are exercised on real markup.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from feedserver import FeedServer, feed_settings, feed_source

from listener.collectors.base import CollectContext, CollectResult, PollState
from listener.collectors.feed import FeedCollector, close_shared

BRAND = {"name": "Apple", "keywords": ["iPhone", "iPad", "MacBook"], "exclusions": ["Apple pie"]}
MARKUP = re.compile(r"<(?:p|div|br|img|script|style|span|a)\b[^>]*>", re.IGNORECASE)


@pytest.fixture(scope="module")
def real(shared_data: Path) -> Path:
    return shared_data / "feeds" / "real"


@pytest.fixture(scope="module")
def started() -> datetime:
    """When the module's first poll started (undated entries fall back to fetch time)."""
    return datetime.now(UTC)


@pytest.fixture(scope="module")
def served(real: Path) -> Iterator[tuple[FeedServer, list[str]]]:
    files = sorted(p.relative_to(real).as_posix() for p in real.rglob("*") if p.is_file())
    with FeedServer({"real": real}) as server:
        yield server, files


@pytest.fixture(scope="module")
def first_poll(
    served: tuple[FeedServer, list[str]], started: datetime
) -> Iterator[dict[str, CollectResult]]:
    """Every real feed collected once, concurrently, with the Apple brand."""
    server, files = served
    context = CollectContext(feed_settings(brand=BRAND))
    yield _poll_all(server, files, context, {})
    close_shared(context.shared)


@pytest.fixture
def ctx() -> Iterator[CollectContext]:
    context = CollectContext(feed_settings(brand=BRAND))
    yield context
    close_shared(context.shared)


def _poll_all(
    server: FeedServer, files: list[str], ctx: CollectContext, states: dict[str, PollState]
) -> dict[str, CollectResult]:
    collector = FeedCollector()

    def one(rel: str) -> tuple[str, CollectResult]:
        source = feed_source(server.file_url("real", rel), name="real")
        return rel, collector.collect(source, states.get(rel, PollState()), ctx)

    with ThreadPoolExecutor(8) as pool:
        return dict(pool.map(one, files))


def test_real_feeds_yield_clean_matching_posts(
    first_poll: dict[str, CollectResult], started: datetime
) -> None:
    results = first_poll
    assert len(results) == 34
    with_posts = {rel for rel, r in results.items() if r.posts}
    assert {"ranchero-rsparser/DaringFireball.atom", "ranchero-rsparser/DaringFireball.rss"} <= (
        with_posts
    )
    assert len(with_posts) >= 10
    assert not results["ranchero-rsparser/phpxml.rss"].posts  # never mentions Apple
    terms = {"apple", "iphone", "ipad", "macbook"}
    posts = [p for r in results.values() for p in r.posts]
    for post in posts:
        assert post.matched_keywords and {k.lower() for k in post.matched_keywords} <= terms
        assert any(k.lower() in post.text.lower() for k in post.matched_keywords), post.text
        assert post.published_at.tzinfo is UTC
        assert not MARKUP.search(post.full_text or ""), post.url
        assert "&amp;" not in (post.full_text or "") and "  " not in post.text
        assert post.kind == "entry" and post.author.handle
    undated = "miniflux/rdf_UTF8.xml"  # its RSS 1.0 items carry no date at all
    for rel, result in results.items():
        for post in result.posts:
            if rel == undated:  # falls back to the fetch time
                assert started <= post.published_at <= datetime.now(UTC)
            else:
                assert post.published_at < started - timedelta(days=1), (rel, post.raw)
    assert results[undated].posts


def test_daring_fireball_post_details(
    served: tuple[FeedServer, list[str]], ctx: CollectContext
) -> None:
    server, _ = served
    source = feed_source(server.file_url("real", "ranchero-rsparser/DaringFireball.atom"))
    result = FeedCollector().collect(source, PollState(), ctx)
    post = result.posts[0]
    assert post.url and post.url.startswith("http")
    assert post.title and post.external_id
    assert post.author.handle == "John Gruber"
    assert len(post.text) <= len(post.full_text or "") + len(post.title or "") + 2


def test_unchanged_real_feeds_are_not_parsed_again(
    served: tuple[FeedServer, list[str]], first_poll: dict[str, CollectResult], ctx: CollectContext
) -> None:
    server, files = served
    second = _poll_all(server, files, ctx, {rel: r.state for rel, r in first_poll.items()})
    assert all(r.not_modified and not r.stats["parsed"] for r in second.values())


def test_gzip_and_plain_give_the_same_posts(
    served: tuple[FeedServer, list[str]], ctx: CollectContext
) -> None:
    server, _ = served
    rel = "ranchero-rsparser/atp.rss"
    plain = FeedCollector().collect(feed_source(server.file_url("real", rel)), PollState(), ctx)
    zipped = FeedCollector().collect(
        feed_source(server.file_url("real", rel, "gzip=1")), PollState(), ctx
    )
    assert plain.posts and [p.external_id for p in plain.posts] == [
        p.external_id for p in zipped.posts
    ]


@pytest.mark.parametrize(
    "rel",
    [
        "miniflux/encoding_WINDOWS-1251.xml",
        "miniflux/encoding_ISO-8859-1.xml",
        "miniflux/no_encoding_ISO-8859-1.xml",
        "miniflux/urdu_UTF8.xml",
    ],
)
def test_non_utf8_feeds_decode(
    served: tuple[FeedServer, list[str]], ctx: CollectContext, rel: str
) -> None:
    server, _ = served
    source = feed_source(server.file_url("real", rel), match_all=True)
    result = FeedCollector().collect(source, PollState(), ctx)
    assert result.posts
    assert not any("\ufffd" in (p.full_text or "") + (p.title or "") for p in result.posts)


def test_local_path_source_reads_the_same_feed(real: Path, ctx: CollectContext) -> None:
    source = feed_source(path=str(real / "ranchero-rsparser" / "DaringFireball.rss"))
    result = FeedCollector().collect(source, PollState(), ctx)
    assert result.posts and result.state.cursor["file_stamp"]
    assert FeedCollector().collect(source, result.state, ctx).not_modified
