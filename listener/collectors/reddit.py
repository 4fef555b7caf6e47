"""``type: reddit`` — inbox mentions of the brand account, and posts and comments about it.

Over Reddit's OAuth API (``base_url``, else ``reddit.base_url``, default
``https://oauth.reddit.com``), with a token from ``reddit.auth_url``
(``/api/v1/access_token``: a "script" app's password grant, or a refresh token),
kept for the process until it expires:

* ``username``: ``/message/mentions`` — comments that name u/username;
* ``query``: ``/r/<subreddits>/search?restrict_sr=1&sort=new`` (or ``/search`` over
  all of Reddit when no ``subreddits`` are given) — posts;
* ``subreddits``: their ``/new`` posts and ``/comments`` (``options.comments``), kept
  when they mention the brand.

Listings come newest first; each stream pages with ``after`` until it reaches the
newest item stored (``cursor[<stream>] = {"at": created_utc, "seen": [fullnames]}``)
or ``options.max_pages``.  Reddit's ``before`` parameter is not used as the cursor:
when the item it names is deleted, Reddit answers with an empty listing for good,
and the source would go silent.

Rate limits: ``X-Ratelimit-Remaining``/``-Reset`` (seconds) are kept in
``cursor["rate"]``; a spent allowance defers the source to the reset.  External ids
are fullnames (``t1_…`` comments, ``t3_…`` posts) — what a reply needs as
``thing_id``; deleted authors are left out.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

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
from listener.errors import RateLimited, SourceFailing

if TYPE_CHECKING:
    from listener.config import RedditSettings, Settings, SourceSettings

PLATFORM = "Reddit"
DEFAULT_MAX_PAGES = 5
SITE = "https://www.reddit.com"
CREDENTIALS = (
    "check reddit.client_id, reddit.client_secret and reddit.password or reddit.refresh_token "
    "(REDDIT_* environment variables)"
)
Clock = Callable[[], datetime]


# ---------------------------------------------------------------------------
# OAuth tokens (kept per process until they expire)

_TOKENS: dict[tuple[str, str, str], tuple[str, float]] = {}
_TOKENS_LOCK = threading.Lock()


def _secret(value: Any) -> str:
    return value.get_secret_value() if value is not None else ""


def brand_username(settings: Settings) -> str:
    """The brand's account: ``reddit.username``, else the first reddit source's."""
    if settings.reddit.username:
        return settings.reddit.username
    for src in settings.sources:
        if src.type == "reddit" and src.username:
            return src.username
    return ""


def user_agent(settings: Settings) -> str:
    who = brand_username(settings)
    return settings.reddit.user_agent or (
        f"{settings.polling.user_agent} (by /u/{who})" if who else settings.polling.user_agent
    )


def access_token(
    auth: JsonApi, reddit: RedditSettings, username: str, *, fresh: bool = False
) -> str:
    """A bearer token for the brand account (cached until a minute before it expires)."""
    client_id, secret = _secret(reddit.client_id), _secret(reddit.client_secret)
    refresh, password = _secret(reddit.refresh_token), _secret(reddit.password)
    if not client_id or not (refresh or (password and username)):
        raise SourceFailing(f"Reddit needs OAuth credentials: {CREDENTIALS}")
    key = (auth.base_url, client_id, hashlib.sha256((username + refresh).encode()).hexdigest())
    with _TOKENS_LOCK:
        cached = _TOKENS.get(key)
        if cached and not fresh and cached[1] > time.time():
            return cached[0]
        if refresh:
            form = {"grant_type": "refresh_token", "refresh_token": refresh}
        else:
            form = {"grant_type": "password", "username": username, "password": password}
        body = auth.post(
            "/api/v1/access_token",
            what="getting an access token",
            data=form,
            auth=(client_id, secret),
        ).body
        if not isinstance(body, dict) or not body.get("access_token"):
            detail = body.get("error") if isinstance(body, dict) else None
            raise SourceFailing(
                f"Reddit gave no access token ({detail or 'no reason'}): {CREDENTIALS}"
            )
        expires = body.get("expires_in")
        lifetime = expires if isinstance(expires, int) else 3600
        _TOKENS[key] = (str(body["access_token"]), time.time() + max(60, lifetime - 60))
        return _TOKENS[key][0]


def forget_tokens() -> None:
    """Drop every cached token (tests; changed credentials)."""
    with _TOKENS_LOCK:
        _TOKENS.clear()


class RedditClient:
    """Authorised API calls: one retry with a new token after a 401."""

    def __init__(self, api: JsonApi, auth: JsonApi, settings: Settings) -> None:
        self.api, self.auth, self.settings = api, auth, settings
        self.username = brand_username(settings)
        self.token = access_token(auth, settings.reddit, self.username)

    def call(self, method: str, path: str, *, what: str, **kwargs: Any) -> Any:
        for attempt in (0, 1):
            headers = {"Authorization": f"bearer {self.token}"}
            try:
                return self.api.request(method, path, what=what, headers=headers, **kwargs)
            except SourceFailing as exc:
                if attempt or "(401" not in str(exc):
                    raise
                self.token = access_token(
                    self.auth, self.settings.reddit, self.username, fresh=True
                )
        raise AssertionError("unreachable")  # pragma: no cover


def reddit_apis(ctx: CollectContext, base_url: str) -> tuple[JsonApi, JsonApi]:
    """The poll run's API and token clients."""
    settings = ctx.settings
    headers = {"User-Agent": user_agent(settings)}
    api = shared_api(
        ctx,
        f"reddit:{base_url}",
        lambda: JsonApi(
            PLATFORM, base_url, settings.polling, credentials=CREDENTIALS, headers=headers
        ),
    )
    auth = shared_api(
        ctx,
        f"reddit-auth:{settings.reddit.auth_url}",
        lambda: JsonApi(
            PLATFORM,
            settings.reddit.auth_url,
            settings.polling,
            credentials=CREDENTIALS,
            headers=headers,
        ),
    )
    return api, auth


# ---------------------------------------------------------------------------
# things → posts (pure)


def thing_to_post(
    thing: dict[str, Any],
    *,
    settings: Settings,
    source: SourceSettings,
    now: datetime,
    addressed_to: str | None = None,
) -> Post | None:
    """A listing child (``t1`` comment or mention, ``t3`` post) as a Post."""
    kind, data = thing.get("kind"), thing.get("data")
    if kind not in ("t1", "t3") or not isinstance(data, dict):
        raise ValueError(f"not a comment or post: {kind!r}")
    name = text_of(data.get("name")) or f"{kind}_{data['id']}"
    author = text_of(data.get("author")).strip()
    if not author or author == "[deleted]":
        raise ValueError("deleted author")
    title = " ".join(text_of(data.get("title") if kind == "t3" else "").split())
    body = text_of(data.get("selftext") if kind == "t3" else data.get("body")).strip()
    text = "\n\n".join(p for p in (title, body) if p)
    if not text:
        raise ValueError("no text")
    match = brand_match(text, settings, source, addressed_to=addressed_to)
    if match is None:
        return None
    link = text_of(data.get("permalink") or data.get("context"))
    link_id = data.get("link_id") or (name if kind == "t3" else None)
    parent = data.get("parent_id") if kind == "t1" else None
    return Post(
        external_id=name,
        text=match.passage or text,
        full_text=text,
        title=title or None,
        author=Author(
            handle=author,
            external_id=text_of(data.get("author_fullname")) or None,
            url=f"{SITE}/user/{author}",
        ),
        published_at=published_at(data.get("created_utc"), now),
        url=(SITE + link) if link.startswith("/") else (link or None),
        conversation_id=str(link_id) if link_id else None,
        in_reply_to_id=str(parent) if parent else None,
        kind="comment" if kind == "t1" else "post",
        matched_keywords=list(match.matched),
        raw=clean_json(
            {
                "platform": "reddit",
                "name": name,
                "subreddit": data.get("subreddit"),
                "link_title": data.get("link_title"),
                "link_id": link_id,
                "parent_id": parent,
                "author_fullname": data.get("author_fullname"),
                "score": data.get("score"),
                "over_18": data.get("over_18"),
                "created_utc": data.get("created_utc"),
            }
        ),
    )


def _created(thing: Any) -> float | None:
    data = thing.get("data") if isinstance(thing, dict) else None
    value = data.get("created_utc") if isinstance(data, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _name(thing: Any) -> str:
    data = thing.get("data") if isinstance(thing, dict) else None
    return text_of(data.get("name")) if isinstance(data, dict) else ""


@dataclass
class _Stream:
    key: str
    path: str
    params: dict[str, Any]
    what: str
    addressed_to: str | None = None


class RedditCollector:
    """Reads Reddit (see the module docs)."""

    needs: ClassVar[tuple[str, ...]] = ("username", "query", "subreddits")

    def __init__(self, clock: Clock = utcnow) -> None:
        self.clock = clock

    def streams(self, source: SourceSettings) -> list[_Stream]:
        """What this source reads, in order."""
        size = int_option(source, "page_size", 100, 1, 100)
        subs = "+".join(source.subreddits)
        out: list[_Stream] = []
        if source.username:
            out.append(
                _Stream(
                    "mentions",
                    "/message/mentions",
                    {"limit": size, "raw_json": 1},
                    f"inbox mentions of u/{source.username}",
                    f"u/{source.username}",
                )
            )
        if source.query:
            where = f"/r/{quote(subs, safe='+')}/search" if subs else "/search"
            params = {
                "q": source.query,
                "sort": "new",
                "limit": size,
                "raw_json": 1,
                "type": "link",
            }
            if subs:
                params["restrict_sr"] = 1
            out.append(_Stream("search", where, params, f"search {source.query!r}"))
        if subs:
            out.append(
                _Stream(
                    "new",
                    f"/r/{quote(subs, safe='+')}/new",
                    {"limit": size, "raw_json": 1},
                    f"new posts in r/{subs}",
                )
            )
            if source.options.get("comments", True) is not False:
                out.append(
                    _Stream(
                        "comments",
                        f"/r/{quote(subs, safe='+')}/comments",
                        {"limit": size, "raw_json": 1},
                        f"new comments in r/{subs}",
                    )
                )
        return out

    def collect(
        self, source: SourceSettings, state: PollState, ctx: CollectContext
    ) -> CollectResult:
        settings = ctx.settings
        base = source.base_url or settings.reddit.base_url
        cursor = dict(state.cursor)
        rate = RateLimit.from_cursor(cursor.get("rate"))
        checked_rate(rate, PLATFORM, "reading", self.clock())
        api, auth = reddit_apis(ctx, base)
        client = RedditClient(api, auth, settings)
        own = {client.username.lower()} if client.username else set()
        max_pages = int_option(source, "max_pages", DEFAULT_MAX_PAGES, 1, 50)
        tally = Tally()
        result = CollectResult(posts=[], state=state)
        seen_names: set[str] = set()
        for stream in self.streams(source):
            mark_at, mark_seen = _load_mark(cursor.get(stream.key))
            fresh: list[Any] = []
            after = None
            try:
                for _ in range(max_pages):
                    checked_rate(rate, PLATFORM, stream.what, self.clock())
                    params = dict(stream.params, **({"after": after} if after else {}))
                    tally.requests += 1
                    response = client.call("GET", stream.path, what=stream.what, params=params)
                    rate = response.rate or rate
                    tally.pages += 1
                    data = response.body.get("data") if isinstance(response.body, dict) else None
                    children = data.get("children") if isinstance(data, dict) else None
                    if not isinstance(children, list):
                        raise SourceFailing(f"{PLATFORM} answered {stream.what} without a listing")
                    reached = False
                    for thing in children:
                        when, name = _created(thing), _name(thing)
                        if (
                            mark_at is not None
                            and when is not None
                            and (when < mark_at or (when == mark_at and name in mark_seen))
                        ):
                            reached = True
                            continue
                        fresh.append(thing)
                    after = data.get("after") if isinstance(data, dict) else None
                    if reached or not children or not after:
                        break
                else:
                    if mark_at is not None:
                        result.problems.append(
                            f"{stream.what}: more than {max_pages} pages of new items; older "
                            "ones were not read"
                        )
            except RateLimited as exc:
                if tally.pages == 0:
                    raise
                result.problems.append(f"stopped early: {exc}")
                result.next_check_at = exc.retry_at
                break
            stamps = [(t, n) for t, n in ((_created(x), _name(x)) for x in fresh) if t is not None]
            if stamps:
                top = max(t for t, _ in stamps)
                if mark_at is None or top >= mark_at:
                    names = {n for t, n in stamps if t == top}
                    if top == mark_at:
                        names |= mark_seen
                    cursor[stream.key] = {"at": top, "seen": sorted(names)}
            for thing in fresh:
                tally.seen += 1
                name = _name(thing)
                if name in seen_names:
                    tally.skip("duplicate")
                    continue
                data = thing.get("data") if isinstance(thing, dict) else None
                author = str(data.get("author", "")).lower() if isinstance(data, dict) else ""
                if author in own:
                    tally.skip("own")
                    continue
                try:
                    post = thing_to_post(
                        thing,
                        settings=settings,
                        source=source,
                        now=self.clock(),
                        addressed_to=stream.addressed_to,
                    )
                except (KeyError, TypeError, ValueError, AttributeError):
                    tally.skip("malformed")
                    continue
                if post is None:
                    tally.skip("no_brand")
                    continue
                seen_names.add(name)
                result.posts.append(post)
        cursor["rate"] = rate.to_cursor()
        result.state = replace(state, cursor=cursor)
        tally.kept = len(result.posts)
        result.stats = tally.as_dict()
        return result


def _load_mark(data: Any) -> tuple[float | None, set[str]]:
    if not isinstance(data, dict):
        return None, set()
    at = data.get("at")
    seen = {str(n) for n in data.get("seen") or [] if isinstance(n, str)}
    return (float(at) if isinstance(at, int | float) and not isinstance(at, bool) else None), seen
