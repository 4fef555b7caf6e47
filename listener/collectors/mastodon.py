"""``type: mastodon`` — mentions of the brand account and a hashtag or keyword search.

On the instance ``base_url`` (else ``mastodon.base_url``), over Mastodon's REST API:

* ``account``: ``GET /api/v1/notifications?types[]=mention`` with the brand
  account's token (``mastodon.access_token``), which is checked once to belong to
  ``account`` (``/api/v1/accounts/verify_credentials``, the id cached in the poll
  state);
* ``query``: a single ``#hashtag`` reads the public ``/api/v1/timelines/tag/<tag>``;
  anything else is ``GET /api/v2/search?type=statuses`` (full-text search needs the
  token and an instance with search enabled).

Poll state (stored with the posts, in one transaction): ``cursor["mentions"]``
and ``cursor["search"]`` each hold the newest id stored; a re-poll asks only for
newer items (``min_id``), page after page up to ``options.max_pages``.  A first
poll reads the newest ``max_pages`` pages.  When a poll stops at the page cap,
``next_check_at`` is now, so the rest is read right away.

Rate limits: Mastodon's ``X-RateLimit-Remaining``/``-Reset`` are kept in
``cursor["rate"]``; a spent allowance defers the source to the reset without a
request, and a 429 defers it to ``Retry-After``/the reset.  A 429 after some pages
were read stores those pages and defers the rest.

The token is sent only to ``mastodon.base_url``: a source on another instance reads
its public timelines anonymously (mentions need the token).  Boosts and the brand's
own posts are left out; authors are ``user@instance`` so they are unique across the
fediverse, and their profile links and bio are kept in ``raw`` (a later
"one customer across sources" link can use them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlsplit

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
from listener.collectors.social import Tally, brand_match, id_key, int_option, newest
from listener.errors import RateLimited, SourceFailing
from listener.text import html_to_text

if TYPE_CHECKING:
    from listener.config import Settings, SourceSettings

PLATFORM = "Mastodon"
DEFAULT_MAX_PAGES = 5
MAX_PAGE_SIZE = 40
Clock = Callable[[], datetime]


def instance_host(base_url: str) -> str:
    return (urlsplit(base_url).hostname or "").lower()


def same_origin(a: str | None, b: str | None) -> bool:
    """Whether two base URLs are the same scheme, host and port (where a token may go)."""
    if not a or not b:
        return False
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.hostname, pa.port) == (pb.scheme, pb.hostname, pb.port)


def full_acct(account: dict[str, Any], host: str) -> str:
    """``user@instance`` for any account (local accounts' ``acct`` has no domain)."""
    acct = text_of(account.get("acct") or account.get("username")).strip().lstrip("@")
    if not acct:
        raise ValueError("status without an account name")
    return acct if "@" in acct else f"{acct}@{host}"


def status_text(status: dict[str, Any]) -> str:
    """The visible text of a status: content warning, then content, as plain text."""
    spoiler = text_of(status.get("spoiler_text")).strip()
    content = html_to_text(text_of(status.get("content")))
    return f"{spoiler}\n\n{content}".strip() if spoiler else content


def _account_raw(account: dict[str, Any]) -> dict[str, Any]:
    fields = [
        {"name": text_of(f.get("name")), "value": html_to_text(text_of(f.get("value")))}
        for f in account.get("fields") or []
        if isinstance(f, dict)
    ]
    return {
        "id": account.get("id"),
        "acct": account.get("acct"),
        "url": account.get("url"),
        "display_name": account.get("display_name"),
        "note": html_to_text(text_of(account.get("note")))[:2000],
        "fields": fields[:10],
        "bot": account.get("bot"),
    }


def status_to_post(
    status: dict[str, Any],
    *,
    settings: Settings,
    source: SourceSettings,
    host: str,
    now: datetime,
    addressed_to: str | None = None,
) -> Post | None:
    """One status as a :class:`Post` (``None`` when it does not mention the brand)."""
    account = status.get("account")
    if not isinstance(account, dict):
        raise ValueError("status without an account")
    sid = str(status["id"])
    text = status_text(status)
    match = brand_match(text, settings, source, addressed_to=addressed_to)
    if match is None:
        return None
    acct = full_acct(account, host)
    followers = account.get("followers_count")
    in_reply_to = status.get("in_reply_to_id")
    return Post(
        external_id=sid,
        text=match.passage or text,
        full_text=text,
        author=Author(
            handle=acct,
            display_name=text_of(account.get("display_name")) or None,
            external_id=str(account.get("id")) if account.get("id") is not None else None,
            followers=followers if isinstance(followers, int) else None,
            url=text_of(account.get("url")) or None,
        ),
        published_at=published_at(status.get("created_at"), now),
        url=text_of(status.get("url") or status.get("uri")) or None,
        lang=text_of(status.get("language")) or None,
        in_reply_to_id=str(in_reply_to) if in_reply_to else None,
        kind="reply" if in_reply_to else "post",
        matched_keywords=list(match.matched),
        raw=clean_json(
            {
                "platform": "mastodon",
                "instance": host,
                "status": {
                    k: status.get(k)
                    for k in (
                        "id",
                        "uri",
                        "url",
                        "visibility",
                        "language",
                        "in_reply_to_id",
                        "in_reply_to_account_id",
                        "spoiler_text",
                        "created_at",
                    )
                },
                "tags": [t.get("name") for t in status.get("tags") or [] if isinstance(t, dict)],
                "mentions": [
                    m.get("acct") for m in status.get("mentions") or [] if isinstance(m, dict)
                ],
                "account": _account_raw(account),
            }
        ),
    )


@dataclass
class _Poll:
    """One collect call's client, rate-limit state and counters."""

    api: JsonApi
    rate: RateLimit
    clock: Clock
    tally: Tally

    def get(self, path: str, params: list[tuple[str, str]], what: str) -> Any:
        checked_rate(self.rate, PLATFORM, what, self.clock())
        self.tally.requests += 1
        response = self.api.get(path, params=params, what=what)
        if response.rate is not None:
            self.rate = response.rate
        return response.body


@dataclass
class _Stream:
    """Where one kind of item is read, and how it pages."""

    name: str  #: key in the cursor ("mentions", "search")
    path: str
    params: list[tuple[str, str]]
    what: str
    offset_paging: bool = False  #: search results page by offset, timelines by id
    unwrap: str | None = None  #: the items are under this key ("statuses")


def _items(body: Any, unwrap: str | None) -> list[Any]:
    if unwrap:
        body = body.get(unwrap) if isinstance(body, dict) else None
    if not isinstance(body, list):
        raise SourceFailing(f"{PLATFORM} answered with something that is not a list of items")
    return body


class MastodonCollector:
    """Reads a Mastodon instance (see the module docs)."""

    needs: ClassVar[tuple[str, ...]] = ("account", "query")

    def __init__(self, clock: Clock = utcnow) -> None:
        self.clock = clock

    def collect(
        self, source: SourceSettings, state: PollState, ctx: CollectContext
    ) -> CollectResult:
        settings = ctx.settings
        base = source.base_url or settings.mastodon.base_url or ""
        token_cfg = settings.mastodon.access_token
        token = token_cfg.get_secret_value() if token_cfg is not None else ""
        if not same_origin(base, settings.mastodon.base_url):
            token = ""  # never send the brand's token to another instance
        if source.account and not token:
            raise SourceFailing(
                "reading mentions needs the brand account's token: set mastodon.access_token "
                "(${MASTODON_ACCESS_TOKEN}) and mastodon.base_url to this instance"
            )
        digest = hashlib.sha256(token.encode()).hexdigest()[:16]
        api = shared_api(
            ctx,
            f"mastodon:{base}:{digest}",
            lambda: JsonApi(
                PLATFORM,
                base,
                settings.polling,
                credentials="check mastodon.access_token (MASTODON_ACCESS_TOKEN) and its scopes",
                headers={"Authorization": f"Bearer {token}"} if token else None,
            ),
        )
        cursor = dict(state.cursor)
        poll = _Poll(api, RateLimit.from_cursor(cursor.get("rate")), self.clock, Tally())
        host = instance_host(base)
        max_pages = int_option(source, "max_pages", DEFAULT_MAX_PAGES, 1, 100)
        size = int_option(source, "page_size", MAX_PAGE_SIZE, 1, MAX_PAGE_SIZE)
        result = CollectResult(posts=[], state=state)
        more = False
        own: set[str] = set()
        streams: list[tuple[_Stream, str | None]] = []
        if source.account:
            own.add(self._verify(poll, source.account, host, cursor))
            streams.append(
                (
                    _Stream(
                        "mentions",
                        "/api/v1/notifications",
                        [("types[]", "mention"), ("limit", str(size))],
                        f"mentions of @{source.account}",
                    ),
                    "@" + source.account.split("@")[0],
                )
            )
        if source.query:
            streams.append((self._search_stream(source.query, size), None))
        for stream, addressed in streams:
            try:
                items, top, capped = self._read(poll, stream, cursor.get(stream.name), max_pages)
            except RateLimited as exc:
                if poll.tally.pages == 0:
                    raise
                result.problems.append(f"stopped early: {exc}")
                result.next_check_at = exc.retry_at
                break
            for item in items:
                post = self._post(item, stream, settings, source, host, addressed, own, poll)
                if post is not None:
                    result.posts.append(post)
            if top is not None:
                cursor[stream.name] = top
            more = more or capped
        cursor["rate"] = poll.rate.to_cursor()
        result.state = replace(state, cursor=cursor)
        if result.next_check_at is None and more:
            result.next_check_at = self.clock()  # read the rest right away
        poll.tally.kept = len(result.posts)
        result.stats = poll.tally.as_dict()
        return result

    # -- reading ----------------------------------------------------------

    @staticmethod
    def _search_stream(query: str, size: int) -> _Stream:
        q = query.strip()
        if q.startswith("#") and " " not in q and len(q) > 1:
            tag = q[1:]
            return _Stream(
                "search",
                f"/api/v1/timelines/tag/{quote(tag, safe='')}",
                [("limit", str(size))],
                f"the #{tag} timeline",
            )
        return _Stream(
            "search",
            "/api/v2/search",
            [("q", q), ("type", "statuses"), ("resolve", "false"), ("limit", str(size))],
            f"search {q!r}",
            offset_paging=True,
            unwrap="statuses",
        )

    @staticmethod
    def _read(
        poll: _Poll, stream: _Stream, since: Any, max_pages: int
    ) -> tuple[list[Any], str | None, bool]:
        """Items newer than ``since`` (newest ``max_pages`` pages on a first poll), the
        newest id read, and whether the page cap stopped the reading."""
        since_id = str(since) if isinstance(since, str | int) and str(since) else None
        params = list(stream.params)
        size = int(dict(params)["limit"])
        if since_id:
            params.append(("min_id", since_id))
        items: list[Any] = []
        top = since_id
        offset = 0
        for _ in range(max_pages):
            page = _items(poll.get(stream.path, params, stream.what), stream.unwrap)
            poll.tally.pages += 1
            if not page:
                return items, top, False
            items.extend(page)
            ids = [str(i["id"]) for i in page if isinstance(i, dict) and i.get("id") is not None]
            for i in ids:
                top = newest(top, i)
            if len(page) < size or not ids:
                return items, top, False
            params = [(k, v) for k, v in params if k not in ("min_id", "max_id", "offset")]
            if stream.offset_paging:
                offset += len(page)
                params.append(("offset", str(offset)))
                if since_id:
                    params.append(("min_id", since_id))
            elif since_id:
                params.append(("min_id", max(ids, key=id_key)))
            else:
                params.append(("max_id", min(ids, key=id_key)))
        return items, top, bool(since_id)

    def _post(
        self,
        item: Any,
        stream: _Stream,
        settings: Settings,
        source: SourceSettings,
        host: str,
        addressed: str | None,
        own: set[str],
        poll: _Poll,
    ) -> Post | None:
        poll.tally.seen += 1
        status = (
            item.get("status") if stream.name == "mentions" and isinstance(item, dict) else item
        )
        if not isinstance(status, dict):
            poll.tally.skip("no_status")  # a mention whose status was deleted
            return None
        if status.get("reblog"):
            poll.tally.skip("boosts")
            return None
        account = status.get("account")
        if isinstance(account, dict) and str(account.get("id")) in own:
            poll.tally.skip("own")
            return None
        try:
            post = status_to_post(
                status,
                settings=settings,
                source=source,
                host=host,
                now=self.clock(),
                addressed_to=addressed,
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            poll.tally.skip("malformed")
            return None
        if post is None:
            poll.tally.skip("no_brand")
        return post

    @staticmethod
    def _verify(poll: _Poll, account: str, host: str, cursor: dict[str, Any]) -> str:
        """The brand account's id, checked once against the token's owner."""
        if cursor.get("account") == account and cursor.get("account_id"):
            return str(cursor["account_id"])
        me = poll.get("/api/v1/accounts/verify_credentials", [], "checking the access token")
        if not isinstance(me, dict) or me.get("id") is None:
            raise SourceFailing(f"{PLATFORM} did not say whose access token this is")
        mine = full_acct(me, host).lower()
        wanted = account.lower() if "@" in account else f"{account.lower()}@{host}"
        if mine != wanted:
            raise SourceFailing(
                f"mastodon.access_token belongs to @{mine}, not @{wanted}: mentions can only "
                "be read with the brand account's own token"
            )
        cursor["account"], cursor["account_id"] = account, str(me["id"])
        return str(me["id"])
