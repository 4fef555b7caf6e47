"""``type: hackernews`` — stories and comments through the public HN search API (Algolia).

``GET <base_url>/search_by_date?query=<query>&tags=(story,comment)`` (base URL
default ``https://hn.algolia.com/api/v1``; no credentials), newest first, paged
with ``page``/``hitsPerPage`` up to ``options.max_pages``.  The brand must appear
in the text (``match_all`` keeps every hit).

Poll state: ``cursor["since"]`` is the newest ``created_at_i`` stored and
``cursor["seen"]`` the ids at that second; a re-poll asks only for
``numericFilters=created_at_i>=since``.  When more new hits exist than
``max_pages`` pages hold, the older part of the window is kept as
``cursor["gap"]`` (``{"from", "to"}`` seconds) and read first on the next poll, which
comes right away: nothing between two polls is skipped.  (A first poll reads just
the newest pages.)

Errors: 429 → ``RateLimited`` (``Retry-After``; the API allows about 10,000 requests
an hour per address), 5xx/network → ``TransientError``, others → ``SourceFailing``.
Hacker News has no API for posting: replies go to the manual ``hn_comment``
channel and an agent posts them at the item's link.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from listener.clock import utcnow
from listener.collectors.api import (
    JsonApi,
    RateLimit,
    checked_rate,
    clean_json,
    published_at,
    shared_api,
    text_of,
)
from listener.collectors.base import Author, CollectContext, CollectResult, PollState, Post
from listener.collectors.social import Tally, brand_match, int_option
from listener.errors import SourceFailing
from listener.text import html_to_text

if TYPE_CHECKING:
    from listener.config import Settings, SourceSettings

PLATFORM = "Hacker News"
DEFAULT_BASE_URL = "https://hn.algolia.com/api/v1"
DEFAULT_TAGS = "(story,comment)"
DEFAULT_MAX_PAGES = 5
ITEM_URL = "https://news.ycombinator.com/item?id={}"
USER_URL = "https://news.ycombinator.com/user?id={}"
Clock = Callable[[], datetime]


def hit_to_post(
    hit: dict[str, Any], *, settings: Settings, source: SourceSettings, now: datetime
) -> Post | None:
    """One search hit (story or comment) as a Post; ``None`` when the brand is absent."""
    oid = str(hit["objectID"])
    author = text_of(hit.get("author")).strip()
    if not author:
        raise ValueError("hit without an author")
    tags = [t for t in hit.get("_tags") or [] if isinstance(t, str)]
    is_comment = "comment" in tags or bool(hit.get("comment_text"))
    title = " ".join(text_of(hit.get("title")).split())
    body = html_to_text(text_of(hit.get("comment_text") or hit.get("story_text")))
    link = text_of(hit.get("url"))
    text = "\n\n".join(p for p in (title, body, link) if p)
    if not text:
        raise ValueError("hit without text")
    match = brand_match(text, settings, source)
    if match is None:
        return None
    story = hit.get("story_id") or (None if is_comment else oid)
    parent = hit.get("parent_id")
    return Post(
        external_id=oid,
        text=match.passage or text,
        full_text=text,
        title=title or None,
        author=Author(handle=author, display_name=author, url=USER_URL.format(author)),
        published_at=published_at(hit.get("created_at_i") or hit.get("created_at"), now),
        url=ITEM_URL.format(oid),
        conversation_id=str(story) if story else None,
        in_reply_to_id=str(parent) if parent else None,
        kind="comment" if is_comment else "post",
        matched_keywords=list(match.matched),
        raw=clean_json(
            {
                "platform": "hackernews",
                "objectID": oid,
                "author": author,
                "created_at_i": hit.get("created_at_i"),
                "story_id": hit.get("story_id"),
                "story_title": hit.get("story_title"),
                "parent_id": parent,
                "url": link or None,
                "points": hit.get("points"),
                "tags": tags[:10],
            }
        ),
    )


def _ts(hit: Any) -> int | None:
    value = hit.get("created_at_i") if isinstance(hit, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass
class _Window:
    """What one read of ``[start, end]`` returned."""

    hits: list[dict[str, Any]] = field(default_factory=list)
    newest: int | None = None
    oldest: int | None = None
    capped: bool = False


class HackerNewsCollector:
    """Reads the HN search API (see the module docs)."""

    needs: ClassVar[tuple[str, ...]] = ("query",)

    def __init__(self, clock: Clock = utcnow) -> None:
        self.clock = clock

    def collect(
        self, source: SourceSettings, state: PollState, ctx: CollectContext
    ) -> CollectResult:
        base = source.base_url or DEFAULT_BASE_URL
        api = shared_api(
            ctx,
            f"hackernews:{base}",
            lambda: JsonApi(PLATFORM, base, ctx.settings.polling, credentials="none are needed"),
        )
        cursor = dict(state.cursor)
        tally = Tally()
        rate = RateLimit.from_cursor(cursor.get("rate"))
        max_pages = int_option(source, "max_pages", DEFAULT_MAX_PAGES, 1, 50)
        size = int_option(source, "page_size", 100, 1, 1000)
        tags = str(source.options.get("tags") or DEFAULT_TAGS)
        since = cursor.get("since") if isinstance(cursor.get("since"), int) else None
        gap = cursor.get("gap") if isinstance(cursor.get("gap"), dict) else None
        seen = {str(i) for i in cursor.get("seen") or [] if isinstance(i, str | int)}

        def read(start: int | None, end: int | None) -> _Window:
            nonlocal rate
            window = _Window()
            filters = [f for f in (_bound(">=", start), _bound("<=", end)) if f]
            for page in range(max_pages):
                params: dict[str, Any] = {
                    "query": source.query or "",
                    "tags": tags,
                    "hitsPerPage": size,
                    "page": page,
                }
                if filters:
                    params["numericFilters"] = ",".join(filters)
                checked_rate(rate, PLATFORM, f"search {source.query!r}", self.clock())
                tally.requests += 1
                response = api.get(
                    "/search_by_date", params=params, what=f"search {source.query!r}"
                )
                rate = response.rate or rate
                body = response.body if isinstance(response.body, dict) else {}
                hits = body.get("hits")
                if not isinstance(hits, list):
                    raise SourceFailing(f"{PLATFORM} answered without a list of hits")
                tally.pages += 1
                window.hits.extend(h for h in hits if isinstance(h, dict))
                for ts in filter(None, map(_ts, hits)):
                    window.newest = max(window.newest or ts, ts)
                    window.oldest = min(window.oldest or ts, ts)
                pages = body.get("nbPages")
                if not hits or not isinstance(pages, int) or page + 1 >= pages:
                    return window
            window.capped = True
            return window

        result = CollectResult(posts=[], state=state)
        if gap is not None:
            window = read(_int(gap.get("from")), _int(gap.get("to")))
            cursor.pop("gap")
            if window.capped and window.oldest is not None:
                cursor["gap"] = {"from": gap.get("from"), "to": window.oldest}
            result.next_check_at = self.clock()  # then the regular window, right away
        else:
            window = read(since, None)
            if window.newest is not None:
                at_top = {str(h.get("objectID")) for h in window.hits if _ts(h) == window.newest}
                cursor["seen"] = sorted(at_top | (seen if window.newest == since else set()))
                cursor["since"] = window.newest
            if window.capped and since is not None and window.oldest is not None:
                cursor["gap"] = {"from": since, "to": window.oldest}
                result.next_check_at = self.clock()
            elif window.capped:
                result.problems.append("first poll read only the newest pages")
        for hit in window.hits:
            tally.seen += 1
            oid = str(hit.get("objectID"))
            if gap is None and since is not None and _ts(hit) == since and oid in seen:
                tally.skip("already_stored")
                continue
            try:
                post = hit_to_post(hit, settings=ctx.settings, source=source, now=self.clock())
            except (KeyError, TypeError, ValueError, AttributeError):
                tally.skip("malformed")
                continue
            if post is None:
                tally.skip("no_brand")
                continue
            result.posts.append(post)
        cursor["rate"] = rate.to_cursor()
        result.state = replace(state, cursor=cursor)
        tally.kept = len(result.posts)
        result.stats = tally.as_dict()
        if tally.skipped.get("malformed"):
            result.problems.append(f"{tally.skipped['malformed']} malformed hit(s) skipped")
        return result


def _bound(op: str, value: int | None) -> str | None:
    return f"created_at_i{op}{value}" if value is not None else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
