"""The feed collector's pure decisions, without any I/O."""

from __future__ import annotations

import random
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from feedserver import feed_settings, feed_source

from listener.collectors.base import PollState
from listener.collectors.feed import (
    document_problems,
    effective_url,
    entries_to_posts,
    entry_author,
    entry_body,
    entry_external_id,
    entry_published,
    entry_raw_parts,
    entry_title,
    error_for_status,
    feedparser_headers,
    may_mention,
    parse_document,
    permanent_redirect_target,
)
from listener.errors import RateLimited, SourceFailing, SourceGone, TransientError
from listener.matching import match_brand
from listener.text import html_to_text

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FD = feedparser.FeedParserDict
XML_SUFFIXES = {".xml", ".rss", ".atom", ".rdf"}


@pytest.mark.parametrize(
    ("hops", "expected"),
    [
        ([], None),
        ([(301, "a")], "final"),
        ([(308, "a")], "final"),
        ([(302, "a")], None),
        ([(307, "a"), (301, "b")], None),
        ([(301, "a"), (301, "b")], "final"),
        ([(301, "a"), (302, "b")], "b"),
    ],
)
def test_permanent_redirect_target(hops: list[tuple[int, str]], expected: str | None) -> None:
    assert permanent_redirect_target(hops, "final") == expected


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (200, None),
        (304, None),
        (410, SourceGone),
        (429, RateLimited),
        (500, TransientError),
        (503, TransientError),
        (404, SourceFailing),
        (418, SourceFailing),
    ],
)
def test_error_for_status(status: int, kind: type[Exception] | None) -> None:
    error = error_for_status(status, {}, "http://x/feed", NOW)
    assert (error is None) if kind is None else type(error) is kind


def test_503_with_retry_after_is_a_rate_limit() -> None:
    error = error_for_status(503, {"retry-after": "60"}, "u", NOW)
    assert isinstance(error, RateLimited) and error.retry_at == NOW + timedelta(seconds=60)


def test_effective_url_follows_a_redirect_until_the_config_changes() -> None:
    source = feed_source("http://old.example/feed")
    moved = PollState(url="https://new.example/feed", cursor={"configured_url": source.url})
    assert effective_url(source, moved) == "https://new.example/feed"
    edited = feed_source("http://edited.example/feed")
    assert effective_url(edited, moved) == "http://edited.example/feed"
    assert effective_url(source, PollState()) == "http://old.example/feed"


def test_feedparser_headers() -> None:
    headers = feedparser_headers(
        {"Content-Type": "text/xml", "Content-Encoding": "gzip", "Content-Location": "/f/x"},
        "http://h.example/feed",
    )
    assert headers == {"content-type": "text/xml", "content-location": "http://h.example/f/x"}
    unsafe = feedparser_headers({"content-location": "javascript:alert(1)"}, "http://h/feed")
    assert unsafe["content-location"] == "http://h/feed"


def test_entry_identity_fallbacks() -> None:
    assert entry_external_id(FD(id="guid-1", link="http://l"), "t", "b") == "guid-1"
    assert entry_external_id(FD(link="http://l"), "t", "b") == "http://l"
    hashed = entry_external_id(FD(), "title", "body")
    assert hashed.startswith("sha256:") and hashed == entry_external_id(FD(), "title", "body")
    assert hashed != entry_external_id(FD(), "title", "edited body")
    assert entry_external_id(FD(id="x" * 600), "", "").startswith("sha256:")


def test_entry_published_fallbacks() -> None:
    published = time.strptime("2025-01-02 03:04:05", "%Y-%m-%d %H:%M:%S")
    updated = time.strptime("2025-02-02 00:00:00", "%Y-%m-%d %H:%M:%S")
    assert entry_published(FD(published_parsed=published), NOW) == datetime(
        2025, 1, 2, 3, 4, 5, tzinfo=UTC
    )
    assert entry_published(FD(updated_parsed=updated), NOW).month == 2
    assert entry_published(FD(), NOW) == NOW
    future = time.strptime("2099-01-01", "%Y-%m-%d")
    assert entry_published(FD(published_parsed=future), NOW) == NOW


def test_entry_author_fallbacks() -> None:
    detail = FD(name="Jane Doe", href="http://jane", email="j@x")
    author = entry_author(FD(author_detail=detail), FD(), "src")
    assert (author.handle, author.url, author.email) == ("Jane Doe", "http://jane", "j@x")
    assert entry_author(FD(), FD(title="The Blog", link="http://b"), "src").handle == "The Blog"
    assert entry_author(FD(), FD(), "src").handle == "src"


def test_document_problems() -> None:
    assert document_problems(FD(bozo=False, entries=[], version="rss20"), "s") == []
    assert document_problems(FD(bozo=False, entries=[], version=""), "s") == []  # empty feed
    partial = FD(bozo=True, bozo_exception=ValueError("bad\n  token"), entries=[FD()], version="")
    assert document_problems(partial, "s") == ["s: ValueError: bad token"]
    with pytest.raises(SourceFailing, match="not an RSS/Atom feed"):
        document_problems(FD(bozo=True, bozo_exception=ValueError("x"), entries=[]), "s")


def test_a_broken_entry_does_not_lose_the_others() -> None:
    settings = feed_settings()
    entries = [
        FD(id="1", title="Acme Shoes one", published_parsed="not a time tuple"),
        FD(id="2", title="Acme Shoes two", content=[FD(value=object())]),  # oddity
        FD(id="1", title="Acme Shoes duplicate"),
        FD(id="3", title="nothing to see"),
    ]
    posts, problems = entries_to_posts(
        FD(feed=FD(title="F"), entries=entries), feed_source("http://x"), settings.brand, NOW
    )
    assert [p.external_id for p in posts][:1] == ["1"]
    assert posts[0].published_at == NOW
    assert any("duplicate" in p for p in problems)
    assert "3" not in [p.external_id for p in posts]


# ---------------------------------------------------------------------------
# the cheap pre-filter must never hide a real mention


@pytest.mark.parametrize(
    ("raw", "is_html", "term"),
    [
        ("<p>I love Ac<b>me</b> shoes</p>", True, "acme"),  # word split by an inline tag
        ("Caf&eacute; Acme", True, "acme"),
        ("&#65;cme rocks", True, "Acme"),  # entity-encoded letter
        ("Ac\u00adme soft hyphen", True, "acme"),
        ("a < b and Acme > c", True, "acme"),  # "<" followed by a space is text
        ("x <3 Acme shoes > y", False, "acme shoes"),  # plain text is never de-tagged
        ("Acme-Shoes are great", True, "Acme Shoes"),
        ("<![CDATA[Acme inside]]>", True, "acme"),  # XHTML CDATA text is visible
        ("<a title='x>y'>Acme</a>", True, "acme"),  # ">" inside a quoted attribute
    ],
)
def test_prefilter_keeps_tricky_mentions(raw: str, is_html: bool, term: str) -> None:
    text = html_to_text(raw) if is_html else raw
    assert match_brand(text, [term])  # the real matcher finds it …
    assert may_mention([(raw, is_html)], [term])  # … so the pre-filter must keep it


def test_prefilter_skips_entries_without_the_words() -> None:
    assert not may_mention([("<p>Nothing here</p>", True)], ["Acme"])
    assert may_mention([("anything", True)], ["Café"])  # non-ASCII terms: no shortcut


def test_prefilter_is_a_superset_on_real_entries(shared_data: Path) -> None:
    """For every entry of the corpus and the real feeds, any word of its clean text
    used as a brand term passes the pre-filter."""
    rng = random.Random(3)
    files = [p for p in (shared_data / "feeds").rglob("*.*") if p.suffix in XML_SUFFIXES]
    checked = 0
    for path in files:
        parsed = parse_document(path.read_bytes(), {"content-location": "http://h/f"})
        for entry in parsed.get("entries") or []:
            text = f"{entry_title(entry)}\n\n{entry_body(entry)}"
            words = [w for w in re.findall(r"[A-Za-z][\w'-]*", text) if w.isascii()]
            for word in rng.sample(words, min(5, len(words))):
                if match_brand(text, [word]):
                    assert may_mention(entry_raw_parts(entry), [word]), (path.name, word)
                    checked += 1
    assert checked > 5000
