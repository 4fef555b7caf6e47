"""The fast parse path (listener.collectors.fastfeed) gives feedparser's answer, or passes.

* Every real feed takes the fast path, and its entries, and the posts, problems
  and stats Listener makes of them, equal feedparser's, entry for entry.
* Every file of feedparser's 2,107-file corpus either takes the fast path with
  feedparser's answer or is handed to feedparser; none differs.
* Hostile documents (entity bombs, external entities, deep nesting, lone
  surrogates) never get past the fast path, and nothing is fetched.
* Whatever the fast path passes on is parsed by feedparser, and the stats say why.
"""

from __future__ import annotations

import io
import logging
import random
import time
import xml.sax
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import pytest
import structlog
import structlog.testing
from feedparser.datetimes import _parse_date
from feedparser.urls import _urljoin
from feedserver import (
    CONTENT_TYPES,
    DEFAULT_CONTENT_TYPE,
    FeedServer,
    declared_headers,
    feed_settings,
    feed_source,
    rss,
)

from listener.collectors import fastfeed, parsing
from listener.collectors.base import CollectContext, PollState
from listener.collectors.feed import (
    FeedCollector,
    close_shared,
    decode,
    describe_exception,
    entries_to_posts,
    parse_document,
    parse_with_feedparser,
)
from listener.errors import SourceFailing

APPLE = {"name": "Apple", "keywords": ["iPhone", "iPad", "MacBook"], "exclusions": ["Apple pie"]}
WHEN = datetime(2026, 11, 1, tzinfo=UTC)
#: Stats that differ by design between the two parsers (timings, which parser ran).
OWN_STATS = ("parse_s", "decide_s", "parser", "fast_declined")


def view(parsed: Mapping[str, Any]) -> dict[str, Any]:
    """Everything of a parse result that Listener reads (collectors/feed.py), as plain data."""

    def detail(d: Mapping[str, Any] | None, *keys: str) -> tuple[Any, ...] | None:
        return None if d is None else tuple(d.get(k) for k in keys)

    feed = parsed.get("feed") or {}
    return {
        "bozo": bool(parsed.get("bozo")),
        "problem": describe_exception(parsed.get("bozo_exception")) if parsed.get("bozo") else None,
        "version": parsed.get("version"),
        "feed": (
            feed.get("title"),
            detail(feed.get("title_detail"), "type"),
            feed.get("link"),
            feed.get("language"),
            feed.get("author"),
            detail(feed.get("author_detail"), "name", "href", "email"),
        ),
        "entries": [
            {
                "id": e.get("id"),
                "link": e.get("link"),
                "title": (e.get("title"), detail(e.get("title_detail"), "type", "value")),
                "content": [detail(c, "type", "value", "language") for c in e.get("content") or []],
                "summary": (e.get("summary"), detail(e.get("summary_detail"), "type", "value")),
                "author": (
                    e.get("author"),
                    detail(e.get("author_detail"), "name", "href", "email"),
                ),
                "dates": (
                    e.get("published_parsed"),
                    e.get("updated_parsed"),
                    e.get("created_parsed"),
                ),
                "tags": [t.get("term") for t in e.get("tags") or []],
            }
            for e in parsed.get("entries") or []
        ],
    }


def served_headers(path: Path, url: str) -> dict[str, str]:
    """The headers FeedCollector hands the parser for a file tests/feedserver.py serves."""
    headers = {k.lower(): v for k, v in declared_headers(path.read_bytes())}
    headers.setdefault("content-type", CONTENT_TYPES.get(path.suffix, DEFAULT_CONTENT_TYPE))
    headers["content-location"] = url
    return headers


def without_own_stats(stats: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in stats.items() if k not in OWN_STATS}


def real_files(shared_data: Path) -> list[Path]:
    return sorted(p for p in (shared_data / "feeds" / "real").rglob("*") if p.is_file())


# ---------------------------------------------------------------------------
# equal to feedparser


def test_every_real_feed_takes_the_fast_path_with_feedparsers_answer(shared_data: Path) -> None:
    files = real_files(shared_data)
    assert len(files) == 34
    entries = 0
    for path in files:
        url = f"http://feeds.example/{path.parent.name}/{path.name}"
        headers = served_headers(path, url)
        body = path.read_bytes()
        fast = parse_document(body, headers)
        assert fast["parser"] == "fast", (path.name, fast.get("fast_declined"))
        reference = parse_with_feedparser(body, headers)
        expected = view(reference)
        got = view(fast)
        assert got["feed"] == expected["feed"], path.name
        assert len(got["entries"]) == len(expected["entries"]), path.name
        for index, (mine, theirs) in enumerate(
            zip(got["entries"], expected["entries"], strict=True)
        ):
            assert mine == theirs, (path.name, index)
        assert got == expected, path.name
        entries += len(expected["entries"])
    assert entries > 700


@pytest.mark.parametrize("match_all", [True, False])
def test_real_feeds_give_the_same_posts_problems_and_stats(
    shared_data: Path, match_all: bool
) -> None:
    """What the collector makes of a feed (posts, problems, stats) does not depend on the parser."""
    brand = feed_settings(brand=APPLE).brand
    posts = 0
    for path in real_files(shared_data):
        url = f"http://feeds.example/{path.name}"
        source = feed_source(url, match_all=match_all, name="real")
        args = (path.read_bytes(), served_headers(path, url), source, brand, WHEN)
        fast_posts, fast_problems, fast_stats = decode(*args, True)
        slow_posts, slow_problems, slow_stats = decode(*args, False)
        assert fast_stats["parser"] == "fast" and slow_stats["parser"] == "feedparser"
        assert fast_posts == slow_posts, path.name
        assert fast_problems == slow_problems, path.name
        assert without_own_stats(fast_stats) == without_own_stats(slow_stats), path.name
        posts += len(fast_posts)
    assert posts > (700 if match_all else 40)


def test_the_feedparser_corpus_takes_the_fast_path_or_passes_never_differs(
    shared_data: Path,
) -> None:
    root = shared_data / "feeds" / "feedparser-tests"
    files = sorted(p for p in root.rglob("*") if p.is_file())
    assert len(files) == 2107
    source, brand = feed_source("http://feeds.example/", match_all=True), _brand()
    accepted, declined, different = 0, 0, []
    for path in files:
        rel = path.relative_to(root).as_posix()
        headers = served_headers(path, f"http://feeds.example/{rel}")
        body = path.read_bytes()
        try:
            fast = fastfeed.parse(body, headers)
        except fastfeed.NotHandled:
            declined += 1
            continue
        accepted += 1
        reference = parse_with_feedparser(body, headers)
        # feedparser's strict (expat) parse succeeded wherever the fast path answers
        assert not isinstance(reference.get("bozo_exception"), xml.sax.SAXException), rel
        if view(fast) != view(reference):
            different.append(rel)
        elif entries_to_posts(fast, source, brand, WHEN) != entries_to_posts(
            reference, source, brand, WHEN
        ):
            different.append(f"{rel} (posts)")
    assert different == []
    assert accepted >= 1600, accepted  # well-formed RSS 0.9x/1.0/2.0 and Atom 0.3/1.0
    assert declined >= 264  # at least the ill-formed files


def test_not_a_feed_and_json_are_left_to_feedparser(shared_data: Path) -> None:
    corpus = shared_data / "feeds" / "feedparser-tests"
    for rel in ("illformed/rss_empty_document.xml", "json/example.json"):
        path = corpus / rel
        with pytest.raises(fastfeed.NotHandled):
            fastfeed.parse(path.read_bytes(), served_headers(path, "http://h/f"))
    html = b"<!doctype html><html><body><p>Not a feed</p></body></html>"
    with pytest.raises(SourceFailing, match="not an RSS/Atom feed"):
        decode(html, {"content-type": "text/html"}, feed_source("http://h/f"), _brand(), WHEN)


# ---------------------------------------------------------------------------
# feedparser's helpers, taken without trying every handler: the same answers


def test_common_date_shapes_parse_like_feedparser() -> None:
    rng = random.Random(19)
    days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    samples = [
        "Sun, 01 Mar 2026 00:00:00 +0000",
        "Thu, 29 Feb 2024 23:59:59 -1130",
        "Sat, 31 Dec 9999 23:00:00 -0100",  # past year 9999 in UTC: feedparser's other handlers
        "Mon, 30 Feb 2026 10:00:00 GMT",  # impossible date
        "2019-05-24T07:00:00Z",
        "2019-05-24T07:00:00.123456+05:30",
        "0001-01-01T00:00:00+01:00",
        "2019-13-01T00:00:00Z",
        "",
        "yesterday",
    ]
    for _ in range(20_000):
        year = rng.choice([1, 1969, 1970, 2000, 2024, 2038, 9999, rng.randint(1, 9999)])
        if rng.random() < 0.5:
            zone = rng.choice(
                ["GMT", f"{rng.choice('+-')}{rng.randint(0, 24):02d}{rng.randint(0, 99):02d}"]
            )
            samples.append(
                f"{rng.choice(days)}, {rng.randint(0, 32):02d} {rng.choice(months)} {year:04d} "
                f"{rng.randint(0, 25):02d}:{rng.randint(0, 61):02d}:{rng.randint(0, 61):02d} {zone}"
            )
        else:
            zone = rng.choice(
                ["Z", f"{rng.choice('+-')}{rng.randint(0, 24):02d}:{rng.randint(0, 99):02d}"]
            )
            samples.append(
                f"{year:04d}-{rng.randint(0, 13):02d}-{rng.randint(0, 32):02d}T"
                f"{rng.randint(0, 25):02d}:{rng.randint(0, 61):02d}:{rng.randint(0, 61):02d}"
                f"{rng.choice(['', '.5', '.123456'])}{zone}"
            )
    different = [s for s in samples if fastfeed._date(s) != _parse_date(s)]
    assert different == []


def test_plain_urls_join_like_feedparser() -> None:
    rng = random.Random(19)
    alphabet = "abcXYZ019-._~:/?#[]@!$&'()*+,;=% \t\\é\x01"
    bases = ["http://b.example/f", "https://x.example/a/b?c#d", "", "file:///tmp/x.xml"]
    samples = [
        ("http://b.example/f", "https://blog.example/p/1?utm=x&y=2#top"),
        ("http://b.example/f", "http://blog.example/p;jsessionid=1"),
        ("http://b.example/f", "http://blog.example/p?"),
        ("http://b.example/f", "HTTP://Blog.example/p"),
        ("http://b.example/f", "http:///blog.example/p"),
        ("http://b.example/f", "/relative/path"),
    ]
    for _ in range(30_000):
        scheme = rng.choice(["http://", "https://", "HTTP://", "http:///", "ftp://", ""])
        uri = scheme + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 25)))
        samples.append((rng.choice(bases), uri))
    different = [(b, u) for b, u in samples if fastfeed._join(b, u) != _urljoin(b, u)]
    assert different == []


# ---------------------------------------------------------------------------
# hostile input


def _brand() -> Any:
    return feed_settings().brand


BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY lol "lol">\n'
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'.encode()
        for i in range(1, 10)
    )
    + b']>\n<rss version="2.0"><channel><title>t</title><item><title>Acme Shoes &lol9;</title>'
    b"<guid>1</guid></item></channel></rss>"
)


def test_entity_bombs_never_reach_the_fast_path() -> None:
    with pytest.raises(fastfeed.NotHandled, match="DOCTYPE"):
        fastfeed.parse(BILLION_LAUGHS, {"content-type": "application/rss+xml"})
    started = time.monotonic()
    posts, _, stats = decode(
        BILLION_LAUGHS, {"content-type": "application/rss+xml"}, feed_source("http://h/f"),
        _brand(), WHEN,
    )  # fmt: skip
    assert time.monotonic() - started < 10
    assert stats["parser"] == "feedparser" and "DOCTYPE" in stats["fast_declined"]
    assert all(len(p.full_text or "") < 10_000 for p in posts)  # nothing was expanded


def test_external_entities_and_dtds_are_never_fetched_or_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    with FeedServer({}) as server:
        dtd = server.url("/evil.dtd")
        for doctype in (
            f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>',
            f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "{server.url("/entity")}">]>',
            f'<!DOCTYPE rss SYSTEM "{dtd}">',
            f'<!DOCTYPE rss [<!ENTITY % p SYSTEM "{dtd}"> %p;]>',
        ):
            body = (
                f'<?xml version="1.0"?>\n{doctype}\n<rss version="2.0"><channel><title>t</title>'
                "<item><title>Acme Shoes</title><description>&xxe;</description>"
                "<guid>1</guid></item></channel></rss>"
            ).encode()
            headers = {"content-type": "application/rss+xml"}
            with pytest.raises(fastfeed.NotHandled, match="DOCTYPE"):
                fastfeed.parse(body, headers)
            source = feed_source("http://h/f", match_all=True)
            try:
                posts, _, _ = decode(body, headers, source, _brand(), WHEN)
            except SourceFailing:
                posts = []
            assert not any("TOP-SECRET" in repr(p) for p in posts)
        assert server.requests == []  # neither parser fetched anything


def test_deep_nesting_is_bounded_work_not_recursion() -> None:
    depth = 50_000
    nested = "<x>" * depth + "Acme Shoes" + "</x>" * depth
    body = rss(
        [
            {"title": "Acme Shoes deep", "guid": "1", "description": "fine"},
            {"title": "Acme Shoes again", "guid": "2", "comments": nested},
        ]
    )
    started = time.monotonic()
    parsed = fastfeed.parse(body, {"content-type": "application/rss+xml"})
    assert time.monotonic() - started < 10
    assert [e["id"] for e in parsed["entries"]] == ["1", "2"]
    reference = parse_with_feedparser(body, {"content-type": "application/rss+xml"})
    assert view(parsed) == view(reference)


def test_lone_surrogates_and_bad_characters_go_to_feedparser() -> None:
    for text in ("&#xD800;", "&#1;", "\x01"):
        body = rss([{"title": f"Acme Shoes {text}", "guid": "1"}])
        with pytest.raises(fastfeed.NotHandled, match="not well-formed"):
            fastfeed.parse(body, {"content-type": "application/rss+xml"})


def test_a_huge_text_node_within_the_byte_cap_is_parsed() -> None:
    big = "Acme Shoes " + "word " * 1_000_000  # 5 MB in one description
    body = rss([{"title": "Acme Shoes big", "guid": "1", "description": big}])
    parsed = fastfeed.parse(body, {"content-type": "application/rss+xml"})
    assert parsed["entries"][0]["summary"] == big.strip()


# ---------------------------------------------------------------------------
# what the fast path passes on


def _decoded(body: bytes, **headers: str) -> tuple[list[Any], list[str], dict[str, Any]]:
    source = feed_source("http://blog.example/feed", match_all=True)
    merged = {"content-type": "application/rss+xml", **headers}
    return decode(body, merged, source, _brand(), WHEN)


def test_an_ill_formed_feed_is_feedparsers_partial_result() -> None:
    body = rss([{"title": "Acme Shoes one", "guid": "1"}]).replace(b"</channel>", b"<item><title>x")
    posts, problems, stats = _decoded(body)
    assert stats["parser"] == "feedparser"
    assert stats["fast_declined"].startswith("not well-formed")
    assert [p.external_id for p in posts][:1] == ["1"] and problems  # kept, with the problem
    assert (posts, problems) == _decoded(body)[:2]


def test_an_unported_element_hands_the_whole_feed_to_feedparser() -> None:
    body = (
        rss([{"title": "Acme Shoes one", "guid": "1"}, {"title": "two", "guid": "2"}])
        .replace(
            b'<rss version="2.0">',
            b'<rss version="2.0" xmlns:georss="http://www.georss.org/georss">',
        )
        .replace(b"<guid>2</guid>", b"<guid>2</guid><georss:point>45.2 4.5</georss:point>")
    )
    posts, problems, stats = _decoded(body)
    assert stats["parser"] == "feedparser" and "georss" in stats["fast_declined"]
    assert [p.external_id for p in posts] == ["1", "2"] and problems == []


def test_a_misdeclared_encoding_is_read_and_reported_as_feedparser_does() -> None:
    body = b'<?xml version="1.0" encoding="x-no-such-encoding"?>' + rss(
        [{"title": "Acme Shoes", "guid": "1"}]
    ).split(b"?>", 1)[1].replace(b"Acme", b"Acme \xe9\x81")
    headers = {"content-type": "application/octet-stream"}
    fast = _decoded(body, **headers)
    assert fast[2]["parser"] == "fast"
    assert fast[1] and "CharacterEncodingOverride" in fast[1][0]
    assert fast[:2] == decode(
        body, headers, feed_source("http://blog.example/feed", match_all=True), _brand(), WHEN,
        False,
    )[:2]  # fmt: skip


def test_base64_content_goes_to_feedparser() -> None:
    body = (
        b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
        b'<entry><id>1</id><title>Acme Shoes</title><content type="application/octet-stream">'
        b"QWNtZQ==</content></entry></feed>"
    )
    posts, _, stats = _decoded(body, **{"content-type": "application/atom+xml"})
    assert stats["parser"] == "feedparser" and "base64" in stats["fast_declined"]
    assert [p.external_id for p in posts] == ["1"]


def test_a_wrong_content_type_is_the_same_problem_on_both_paths() -> None:
    body = rss([{"title": "Acme Shoes café", "guid": "1"}])
    for content_type in ("text/html", "text/xml", "text/plain; charset=utf-8"):
        fast = _decoded(body, **{"content-type": content_type})
        assert fast[2]["parser"] == "fast"
        reference = parse_with_feedparser(body, {"content-type": content_type})
        assert reference["bozo"] and fast[1] == [
            f"blog: {describe_exception(reference['bozo_exception'])}"
        ]


def test_fast_parse_off_sends_every_feed_to_feedparser_through_the_pool(
    shared_data: Path,
) -> None:
    path = shared_data / "feeds" / "real" / "ranchero-rsparser" / "DaringFireball.atom"
    collector = FeedCollector()
    results = {}
    saved = structlog.get_config()  # other tests may have configured WARNING (listener.logs)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with structlog.testing.capture_logs() as logs:
            for fast in (True, False):
                polling = {"parse_workers": 1, "fast_parse": fast}
                ctx = CollectContext(feed_settings(brand=APPLE, polling=polling))
                try:
                    results[fast] = collector.collect(feed_source(path=str(path)), PollState(), ctx)
                finally:
                    close_shared(ctx.shared)
    finally:
        structlog.configure(**saved)
    assert results[True].stats["parser"] == "fast"
    assert results[False].stats["parser"] == "feedparser"
    assert [e for e in logs if e["event"] == "feed parsed by feedparser"] == [
        {
            "event": "feed parsed by feedparser",
            "log_level": "debug",
            "source": "blog",
            "why": "polling.fast_parse is off",
        }
    ]
    assert results[False].stats["fast_declined"] == "polling.fast_parse is off"
    assert results[True].posts == results[False].posts and results[True].posts
    parsing.shutdown()


def test_feedparser_reads_the_same_bytes_the_fast_path_refuses() -> None:
    """The fallback is feedparser itself: same call, same answer as before the fast path."""
    body = BILLION_LAUGHS
    headers = {"content-type": "application/rss+xml"}
    direct = feedparser.parse(
        io.BytesIO(body), response_headers=headers, sanitize_html=False, resolve_relative_uris=False
    )
    assert view(parse_document(body, headers)) == view(direct)
