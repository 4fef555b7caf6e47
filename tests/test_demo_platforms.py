"""The bundled demo shows cases from several social platforms, each answered on its own
channel (issue 17, acceptance 3), and matching beyond English (item 4)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from listener import models as m
from listener.cases.queue import list_queue
from listener.pipeline import poll_sources

CHANNEL = {
    "x": "x_reply",
    "mastodon": "mastodon_reply",
    "bluesky": "bluesky_reply",
    "reddit": "reddit_reply",
    "hackernews": "hn_comment",
    "blog": "blog_comment",
}


def test_demo_cases_come_from_several_platforms_each_on_its_channel(example_app: Any) -> None:
    poll_sources(example_app)
    queue = [item.contract() for item in list_queue(example_app)]
    platforms = {row["platform"] for row in queue}
    assert {"x", "mastodon", "bluesky", "reddit", "hackernews"} <= platforms, platforms
    for row in queue:
        assert row["channel"] == CHANNEL[row["platform"]], row
    mastodon = next(
        r for r in queue if r["platform"] == "mastodon" and r["author"] == "ines@fosstodon.org"
    )
    assert mastodon["draft"].startswith("@ines@fosstodon.org ")
    reddit = next(r for r in queue if r["platform"] == "reddit")
    assert not reddit["draft"].startswith("@")


def test_demo_mentions_record_their_language_and_match_beyond_english(example_app: Any) -> None:
    poll_sources(example_app)
    with example_app.sessions() as s:
        mentions = {x.external_id: x for x in s.scalars(select(m.Mention))}
    assert all(x.detected_lang for x in mentions.values())
    japanese = mentions["at://did:plc:demo9haruto3/app.bsky.feed.post/3lbx2demo0002"]
    assert japanese.detected_lang == "ja" and "Zephyr Shoes" in japanese.matched_keywords
    hashtag = mentions["113502101234567002"]  # "#zephyrshoesbrasil …"
    assert hashtag.detected_lang == "pt" and hashtag.matched_keywords == ["zephyrshoes"]
    assert mentions["1862000001"].detected_lang == "en"
