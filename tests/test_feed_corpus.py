"""Every file of feedparser's test corpus goes through FeedCollector over HTTP.

Each file is served by the local server with the headers it declares in its
header comment (``Header: Content-type: …``).  The collector must return a
result for every one — ill-formed files as partial results with problems —
except the two documents that are not feeds feedparser can read at all,
which are recorded as source errors.  One shared server, one thread pool:
the whole corpus takes a few seconds.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from feedserver import FeedServer, feed_settings, feed_source

from listener.collectors.base import CollectContext, CollectResult, PollState
from listener.collectors.feed import FeedCollector, close_shared
from listener.errors import SourceFailing

#: Documents that are not a feed feedparser 6 can read: an empty document and
#: a JSON Feed (feedparser 6 has no JSON support). They are source errors.
NOT_FEEDS = {"illformed/rss_empty_document.xml", "json/example.json"}
EXPECT = re.compile(rb"^Expect:\s+(.*)$", re.MULTILINE)

Outcome = CollectResult | SourceFailing


def _expectation(path: Path) -> str:
    match = EXPECT.search(path.read_bytes()[:4096])
    return match.group(1).decode("latin-1") if match else ""


@pytest.fixture(scope="module")
def corpus(shared_data: Path) -> Path:
    root = shared_data / "feeds" / "feedparser-tests"
    if not root.is_dir():
        pytest.fail(f"feedparser corpus missing at {root}", pytrace=False)
    return root


@pytest.fixture(scope="module")
def outcomes(corpus: Path) -> Iterator[dict[str, Outcome]]:
    """Collect every corpus file once (match_all, so every entry becomes a post)."""
    files = sorted(p.relative_to(corpus).as_posix() for p in corpus.rglob("*") if p.is_file())
    ctx = CollectContext(feed_settings(polling={"max_concurrency": 8}))
    collector = FeedCollector()

    with FeedServer({"corpus": corpus}) as server:

        def one(rel: str) -> tuple[str, Outcome]:
            source = feed_source(server.file_url("corpus", rel), match_all=True)
            try:
                return rel, collector.collect(source, PollState(), ctx)
            except SourceFailing as exc:
                return rel, exc

        with ThreadPoolExecutor(8) as pool:
            yield dict(pool.map(one, files))
    close_shared(ctx.shared)


def test_the_whole_corpus_is_collected(outcomes: dict[str, Outcome]) -> None:
    assert len(outcomes) == 2107
    failed = {rel for rel, o in outcomes.items() if isinstance(o, SourceFailing)}
    assert failed == NOT_FEEDS
    for rel in failed:
        assert "not an RSS/Atom feed" in str(outcomes[rel])


def test_ill_formed_files_are_recorded_as_problems(
    corpus: Path, outcomes: dict[str, Outcome]
) -> None:
    bozo = [rel for rel in outcomes if _expectation(corpus / rel).startswith("bozo")]
    assert len(bozo) >= 15
    for rel in bozo:
        outcome = outcomes[rel]
        assert isinstance(outcome, SourceFailing) or outcome.problems, rel


def test_well_formed_files_have_no_document_problems(
    corpus: Path, outcomes: dict[str, Outcome]
) -> None:
    clean = [rel for rel in outcomes if _expectation(corpus / rel).startswith("not bozo")]
    assert len(clean) > 1700
    for rel in clean:
        outcome = outcomes[rel]
        assert isinstance(outcome, CollectResult), rel
        # entry-level notes (e.g. two id-less entries with identical content) are allowed
        assert [p for p in outcome.problems if not p.startswith("entry ")] == [], rel


def test_entries_become_well_formed_posts(outcomes: dict[str, Outcome]) -> None:
    posts = [p for o in outcomes.values() if isinstance(o, CollectResult) for p in o.posts]
    assert len(posts) >= 400
    for post in posts:
        assert post.external_id and post.text and post.kind == "entry"
        assert post.published_at.utcoffset() is not None
        assert post.published_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
        assert post.author.handle
        assert set(post.raw) == {"id", "link", "title", "author", "published", "tags"}
        assert "<script" not in (post.full_text or "").lower()
