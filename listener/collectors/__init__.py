"""Collectors: one module per source type, all implementing :class:`Collector`.

Adding a source type is adding one module and one entry to :data:`COLLECTOR_TYPES`,
which holds every fact about a type the rest of Listener needs (which settings
it requires or accepts, the platform its posts come from, the channel replies
take).  Modules are imported only when a source of that type is polled.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache

from listener.collectors.base import (
    Author,
    CollectContext,
    Collector,
    CollectResult,
    PollState,
    Post,
    Rejected,
)

__all__ = [
    "COLLECTOR_TYPES",
    "PLATFORM_CHANNELS",
    "SOURCE_KEYS",
    "Author",
    "CollectContext",
    "CollectResult",
    "Collector",
    "CollectorType",
    "PollState",
    "Post",
    "Rejected",
    "default_channel",
    "get_collector",
    "platform_of",
]

#: Source keys that only some types use; any other type refuses them.
SOURCE_KEYS: tuple[str, ...] = (
    "url",
    "path",
    "query",
    "username",
    "base_url",
    "account",
    "handle",
    "subreddits",
)


@dataclass(frozen=True)
class CollectorType:
    module: str  #: "package.module:ClassName"
    needs: tuple[str, ...]  #: settings fields of which one is required
    network: bool  #: reaches the network (vs. local files only)
    platform: str  #: where the posts come from (authors are unique per platform)
    channel: str  #: the reply channel drafts take (a source's ``options.channel`` overrides)
    keys: tuple[str, ...]  #: the :data:`SOURCE_KEYS` this type uses
    summary: str  #: one line for the configuration reference
    #: ``options:`` this type reads, with help (when given, others are refused)
    options: tuple[tuple[str, str], ...] = ()


_PAGES = ("max_pages", "most pages read per poll (default 5); the rest is read next poll")


COLLECTOR_TYPES: dict[str, CollectorType] = {
    "feed": CollectorType(
        "listener.collectors.feed:FeedCollector",
        ("url", "path"),
        True,
        "blog",
        "blog_comment",
        ("url", "path"),
        "an RSS/Atom/RDF feed by `url`, or a local feed file by `path`",
    ),
    "jsonl": CollectorType(
        "listener.collectors.jsonl:JsonlCollector",
        ("path",),
        False,
        "social",
        "dm",
        ("path",),
        "a local file of posts, one JSON object per line; each post's `platform` picks its "
        "reply channel",
    ),
    "x_search": CollectorType(
        "listener.collectors.x:XSearchCollector",
        ("query",),
        True,
        "x",
        "x_reply",
        ("query",),
        "X recent search for `query` (retweets and the brand's own posts left out)",
    ),
    "x_mentions": CollectorType(
        "listener.collectors.x:XMentionsCollector",
        ("username",),
        True,
        "x",
        "x_reply",
        ("username",),
        "the mentions timeline of the X account `username`",
    ),
    "mastodon": CollectorType(
        "listener.collectors.mastodon:MastodonCollector",
        ("account", "query"),
        True,
        "mastodon",
        "mastodon_reply",
        ("base_url", "account", "query"),
        "on the instance `base_url`: mentions of the brand `account` (notifications, "
        "needs `mastodon.access_token`) and a hashtag (`#tag`) or keyword `query`",
        (_PAGES, ("page_size", "statuses per request, 1-40 (default 40)")),
    ),
    "bluesky": CollectorType(
        "listener.collectors.bluesky:BlueskyCollector",
        ("handle", "query"),
        True,
        "bluesky",
        "bluesky_reply",
        ("base_url", "handle", "query"),
        "through the PDS `base_url`: mentions, replies and quotes of `handle` "
        "(notifications) and `app.bsky.feed.searchPosts` for `query`; signs in with "
        "`bluesky.app_password`",
        (
            _PAGES,
            ("page_size", "posts per request, 1-100 (default 100)"),
            ("reasons", "notification reasons read (default [mention, reply, quote])"),
        ),
    ),
    "reddit": CollectorType(
        "listener.collectors.reddit:RedditCollector",
        ("username", "query", "subreddits"),
        True,
        "reddit",
        "reddit_reply",
        ("base_url", "username", "subreddits", "query"),
        "through the OAuth API `base_url`: inbox mentions of u/`username`, and posts and "
        "comments about the brand in `subreddits` (or search of all of Reddit for `query`)",
        (
            _PAGES,
            ("page_size", "items per request, 1-100 (default 100)"),
            ("comments", "also read the subreddits' new comments (default true)"),
        ),
    ),
    "hackernews": CollectorType(
        "listener.collectors.hackernews:HackerNewsCollector",
        ("query",),
        True,
        "hackernews",
        "hn_comment",
        ("base_url", "query"),
        "stories and comments matching `query` through the public HN search API `base_url` "
        "(no credentials); replies are posted by hand",
        (
            _PAGES,
            ("page_size", "hits per request, 1-1000 (default 100)"),
            ("tags", "Algolia tags filter (default `(story,comment)`)"),
        ),
    ),
}

#: platform → the channel replies to its posts take (JSONL posts name their platform)
PLATFORM_CHANNELS: dict[str, str] = {}
for _spec in COLLECTOR_TYPES.values():
    if _spec.platform != "social":
        PLATFORM_CHANNELS.setdefault(_spec.platform, _spec.channel)


def platform_of(source_type: str) -> str:
    """The platform posts of ``source_type`` come from (the type itself if unknown)."""
    spec = COLLECTOR_TYPES.get(source_type)
    return spec.platform if spec else source_type


def default_channel(source_type: str, platform: str | None = None) -> str:
    """The reply channel for a post of ``platform`` read by a source of ``source_type``.

    The post's platform decides when it has a channel of its own (a JSONL file of
    Mastodon posts answers on Mastodon); otherwise the source type's channel; ``dm``
    (posted by hand) when neither is known.
    """
    if platform and platform in PLATFORM_CHANNELS:
        return PLATFORM_CHANNELS[platform]
    spec = COLLECTOR_TYPES.get(source_type)
    return spec.channel if spec else "dm"


@cache
def get_collector(type_name: str) -> Collector:
    """The (stateless, shared) collector instance for a source type."""
    spec = COLLECTOR_TYPES[type_name]
    module_name, _, class_name = spec.module.partition(":")
    module = importlib.import_module(module_name)
    collector: Collector = getattr(module, class_name)()
    return collector
