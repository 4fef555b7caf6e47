"""bench/feeds.py stays runnable: its feed generator and its docs writer (no timing here)."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from feedserver import feed_settings, feed_source

from listener.collectors.feed import entries_to_posts, parse_document

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
feeds = pytest.importorskip("feeds")


def test_synthetic_feed_is_realistic_and_mentions_the_brand_sometimes() -> None:
    body = feeds.synthetic_feed(3, 50, random.Random(1))
    headers = {"content-type": "application/rss+xml", "content-location": "http://b.example/f"}
    parsed = parse_document(body, headers)
    assert not parsed.bozo and len(parsed.entries) == 50
    settings = feed_settings(brand=feeds.BRAND)
    posts, problems = entries_to_posts(parsed, feed_source("http://b"), settings.brand, feeds.NOW)
    assert problems == [] and 1 <= len(posts) <= 15
    assert all("stats.track" not in (p.full_text or "") for p in posts)


def test_write_section_replaces_only_feed_polling(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text(
        "# Benchmarks\n\n## Classifier\n\nfast\n\n## Feed polling\n\nold\n\n## Web\n\nok\n"
    )
    feeds.write_section(doc, "## Feed polling\n\nnew\n")
    assert doc.read_text() == (
        "# Benchmarks\n\n## Classifier\n\nfast\n\n## Feed polling\n\nnew\n\n## Web\n\nok\n"
    )
    fresh = tmp_path / "none.md"
    feeds.write_section(fresh, "## Feed polling\n\nx\n")
    assert fresh.read_text().startswith("# Benchmarks\n\n## Feed polling")
