"""Pure rules behind the social sources: rate-limit headers, channel rules, matching
beyond English, language detection, source-type config."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from listener.cases.sending import address
from listener.channels.bluesky import mention_facets, record_key
from listener.channels.mastodon import addressed
from listener.collectors.api import RateLimit, clean_json, fix_surrogates, reset_time
from listener.config import settings_from_dict
from listener.errors import ConfigError
from listener.language import detect_language
from listener.matching import match_brand
from listener.policy import (
    channel_violations,
    graphemes,
    mastodon_length,
    mastodon_mentions,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_rate_limit_headers_of_each_platform() -> None:
    masto = RateLimit.from_headers(
        {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0",
         "X-RateLimit-Reset": "2026-11-30T12:05:00.123Z"}, NOW,
    )  # fmt: skip
    assert (
        masto
        and masto.remaining == 0
        and masto.reset == datetime(2026, 11, 30, 12, 5, 0, 123000, tzinfo=UTC)
    )
    assert masto.blocked_until(NOW) == masto.reset and masto.blocked_until(masto.reset) is None
    reddit = RateLimit.from_headers(
        {"x-ratelimit-used": "596", "x-ratelimit-remaining": "4.0", "x-ratelimit-reset": "240"}, NOW
    )
    assert reddit and reddit.limit == 600 and reddit.reset == NOW + timedelta(seconds=240)
    assert reddit.blocked_until(NOW) is None
    epoch = int((NOW + timedelta(minutes=3)).timestamp())
    sky = RateLimit.from_headers({"ratelimit-remaining": "0", "ratelimit-reset": str(epoch)}, NOW)
    assert sky and sky.reset == NOW + timedelta(minutes=3)
    assert RateLimit.from_headers({"content-type": "json"}, NOW) is None
    assert reset_time("soon", NOW) is None and reset_time("-5", NOW) is None
    stored = RateLimit.from_cursor(masto.to_cursor())
    assert stored == masto and RateLimit.from_cursor("garbage") == RateLimit()


def test_hostile_strings_are_repaired() -> None:
    assert fix_surrogates("ok \ud800 x") == "ok \ufffd x"
    assert clean_json({"a\udc00": ["x" * 10, 3]}, max_text=4) == {"a\ufffd": ["xxxx", 3]}


def test_mastodon_counts_like_mastodon() -> None:
    text = "@greg@icosahedron.website sorry! https://example.com/" + "a" * 100 + " 👩‍👩‍👧"
    assert mastodon_length(text) == len("@greg sorry! ") + 23 + 2
    assert mastodon_mentions("@Greg hi @jo@social.example, cc jo@mail.example") == [
        "greg",
        "jo@social.example",
    ]
    ok = channel_violations(
        "mastodon_reply", "@greg@icosahedron.website sorry", author="greg@icosahedron.website"
    )
    assert ok == []
    bad = channel_violations(
        "mastodon_reply",
        "@greg sorry, @boss@corp.example will call",
        author="greg@icosahedron.website",
    )
    assert bad == ["unsolicited mentions (only the author may be named): @boss@corp.example"]
    assert "allows 500" in channel_violations("mastodon_reply", "x" * 501, author=None)[0]


def test_bluesky_counts_graphemes_and_handles() -> None:
    assert graphemes("e\u0301🇯🇵👍🏽") == 3
    assert channel_violations("bluesky_reply", "é" * 300, author="a.bsky.social") == []
    assert (
        "301 graphemes; bluesky_reply allows 300"
        in channel_violations("bluesky_reply", "é" * 301, author=None)[0]
    )
    assert channel_violations(
        "bluesky_reply", "@mei.bsky.social and @other.bsky.social", author="mei.bsky.social"
    ) == ["unsolicited mentions (only the author may be named): @other.bsky.social"]
    assert mention_facets("Hi @mei.bsky.social ✓", "mei.bsky.social", "did:plc:x") == [
        {
            "index": {"byteStart": 3, "byteEnd": 19},
            "features": [{"$type": "app.bsky.richtext.facet#mention", "did": "did:plc:x"}],
        }
    ]


def test_reddit_and_hn_rules_and_addressing() -> None:
    assert channel_violations("reddit_reply", "thanks u/annoyed", author="annoyed") == []
    assert (
        "u/mod_team" in channel_violations("reddit_reply", "ask /u/mod_team", author="annoyed")[0]
    )
    assert address("reddit_reply", "annoyed") == "u/annoyed"
    assert address("mastodon_reply", "greg@h.example") == "@greg@h.example"
    assert address("hn_comment", "pg") == "pg"
    assert address("x_reply", "sam") == "@sam"
    assert channel_violations("hn_comment", "@anyone fine", author="pg") == []
    assert channel_violations("x_reply", "anything", author=None) == []  # not its rules


def test_mastodon_reply_names_the_author_once() -> None:
    assert addressed("Hi there", "greg@h.example") == "@greg@h.example Hi there"
    assert addressed("@greg@h.example Hi", "greg@h.example") == "@greg@h.example Hi"
    assert addressed("@Greg Hi", "greg@h.example") == "@Greg Hi"


def test_bluesky_record_key_is_a_stable_tid() -> None:
    at = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    key = record_key("reply:1:2", at)
    assert key == record_key("reply:1:2", at) != record_key("reply:1:3", at)
    assert len(key) == 13 and key[0] in "234567abcdefghij"
    assert set(key) <= set("234567abcdefghijklmnopqrstuvwxyz")
    assert len(record_key("reply:1:2", None)) == 13


@pytest.mark.parametrize(
    ("text", "matched"),
    [
        ("Amazonで注文した靴が届かない", ("Amazon",)),
        ("在Amazon买的耳机坏了", ("Amazon",)),
        ("Amazon에서 주문했는데 안 와요", ("Amazon",)),
        ("สั่งของจากAmazonแล้วยังไม่ได้รับ", ("Amazon",)),
        ("Ａｍａｚｏｎで買った", ("Amazon",)),
        ("アマゾンで買った靴", ("アマゾン",)),
        ("Amazonian frogs", ()),
        ("amazon2 is a server", ()),
        ("#amazonprimebrasil não entregou", ("amazon",)),
        ("@AmazonUK lost my parcel", ("amazon",)),
        ("u/amazonhelp never replied", ("amazon",)),
        ("#amazonrainforest is burning", ()),
        ("amazonuk is a word here", ()),
    ],
)
def test_matching_beyond_english(text: str, matched: tuple[str, ...]) -> None:
    m = match_brand(
        text, ["Amazon", "アマゾン"], ["amazon rainforest", "Amazonian"], tag_terms=["amazon"]
    )
    assert m.matched == matched


def test_japanese_passage_splits_at_japanese_stops() -> None:
    filler = "今日は晴れです。" * 60
    text = f"{filler}Amazonの注文が届きません。とても困っています。{filler}"
    passage = match_brand(text, ["Amazon"]).passage
    assert "Amazonの注文が届きません。" in passage and len(passage) < 100


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Amazonで注文した靴がまだ届きません。もう一週間です。", "ja"),
        ("Comprei na Amazon e o pedido nunca chegou. Péssimo atendimento!", "pt"),
        ("Meine Bestellung ist seit zwei Wochen unterwegs und niemand hilft", "de"),
        ("my order never arrived and support is silent, so annoyed", "en"),
        ("@zephyrshoes ok", "und"),
        ("https://example.com 12345 !!!", "und"),
        ("\x00\ud800 broken \x07 text that is clearly written in English sentences", "en"),
    ],
)
def test_detect_language(text: str, lang: str) -> None:
    assert detect_language(text) == lang


def _cfg(source: dict, **extra: object) -> object:
    return settings_from_dict({"brand": {"name": "A"}, "sources": [source], **extra}, env={})


def test_source_type_keys_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"subreddits: not used by 'mastodon' sources"):
        _cfg(
            {
                "name": "m",
                "type": "mastodon",
                "base_url": "https://m.example",
                "account": "a",
                "subreddits": ["news"],
            }
        )
    with pytest.raises(ConfigError, match="needs its instance"):
        _cfg({"name": "m", "type": "mastodon", "account": "a"})
    with pytest.raises(ConfigError, match="not an http"):
        _cfg({"name": "h", "type": "hackernews", "query": "a", "base_url": "ftp://x"})
    with pytest.raises(ConfigError, match="invalid subreddit"):
        _cfg({"name": "r", "type": "reddit", "subreddits": ["no spaces"]})
    with pytest.raises(ConfigError, match="unknown option"):
        _cfg({"name": "h", "type": "hackernews", "query": "a", "options": {"pages": 2}})
    with pytest.raises(ConfigError, match="needs handle or query"):
        _cfg({"name": "b", "type": "bluesky"})
    s = _cfg(
        {"name": "r", "type": "reddit", "subreddits": ["r/running", "news"], "username": "@brand"}
    )
    src = s.sources[0]  # type: ignore[attr-defined]
    assert src.subreddits == ["running", "news"] and src.username == "brand"
