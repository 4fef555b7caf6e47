"""bench/feeds.py stays runnable: its feed generator, its docs writer, and a tiny whole run."""

from __future__ import annotations

import json
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
    assert not parsed["bozo"] and len(parsed["entries"]) == 50 and parsed["parser"] == "fast"
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


@pytest.mark.slow
def test_the_whole_benchmark_runs_small_and_both_paths_agree(
    tmp_path: Path, shared_data: Path
) -> None:
    """Every measurement of bench/feeds.py on 8 small feeds, no latency (timings not checked)."""
    out = tmp_path / "feeds.json"
    argv = ["--feeds", "8", "--entries", "5", "--latency", "0", "--repeat", "1", "--quick"]
    argv += ["--no-pipeline", "--real", str(shared_data / "feeds" / "real"), "--json", str(out)]
    assert feeds.main(argv) == 0
    results = json.loads(out.read_text())
    assert results["same_posts"] and results["parsers"] == ["fast"]
    assert results["real"]["equal"] == results["real"]["fast"] == results["real"]["feeds"] == 34
    assert results["unchanged_304"] == 8 and results["unchanged_parsed"] == 0
    for key in ("new", "old", "here", "new_parse", "old_parse", "new_decide"):
        assert results[key]["min"] <= results[key]["median"] <= results[key]["max"]
    section = feeds.report(results)
    assert section.startswith("## Feed polling") and "34 / 34" in section
    assert feeds.main(["--from-json", str(out), str(out)]) == 0  # a saved run, and another
