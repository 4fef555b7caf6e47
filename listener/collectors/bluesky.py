"""``type: bluesky`` — mentions of the brand's handle and ``searchPosts``, over XRPC.

Through the PDS ``base_url`` (else ``bluesky.base_url``, default
``https://bsky.social``; it proxies ``app.bsky.*`` to the AppView), signed in with
``bluesky.app_password`` (``com.atproto.server.createSession``; the session is kept
for the process and refreshed or re-created when it expires — Bluesky allows only
about 300 sign-ins a day):

* ``handle``: ``app.bsky.notification.listNotifications`` with ``reasons`` mention,
  reply and quote (``options.reasons``), newest first, paged with ``cursor`` until
  the newest notification stored is reached;
* ``query``: ``app.bsky.feed.searchPosts?sort=latest`` with ``since`` (the newest
  ``sortAt`` stored), paged with ``cursor``.

Poll state: ``cursor["mentions"]`` and ``cursor["search"]`` each hold
``{"at": newest time, "seen": [uris at that time]}``; when a search poll stops at
``options.max_pages`` with newer posts unread, ``cursor["search_gap"]`` (``since``/
``until``) is read first on the next poll, which comes right away.  Rate limits
(``RateLimit-Remaining``/``-Reset``, epoch seconds) are kept in ``cursor["rate"]``.

Posts keep their AT URI as external id (what a reply needs as its parent), the
author's DID as the author's external id and ``bsky.app`` links; quotes and replies
are kinds of their own.  The brand's own posts are left out.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from listener.clock import utcnow
from listener.collectors.api import (
    JsonApi,
    RateLimit,
    checked_rate,
    clean_json,
    parse_time,
    published_at,
    shared_api,
    text_of,
)
from listener.collectors.base import Author, CollectContext, CollectResult, PollState, Post
from listener.collectors.social import Tally, brand_match, int_option
from listener.errors import RateLimited, SourceFailing

if TYPE_CHECKING:
    from listener.config import Settings, SourceSettings

PLATFORM = "Bluesky"
DEFAULT_MAX_PAGES = 5
DEFAULT_REASONS = ("mention", "reply", "quote")
CREDENTIALS = "check bluesky.app_password (BLUESKY_APP_PASSWORD) and the handle"
Clock = Callable[[], datetime]


# ---------------------------------------------------------------------------
# sessions (kept per process: sign-ins are rate limited)


@dataclass
class Session:
    did: str
    handle: str
    access: str
    refresh: str


_SESSIONS: dict[tuple[str, str, str], Session] = {}
_SESSIONS_LOCK = threading.Lock()


def _session_key(base_url: str, identifier: str, password: str) -> tuple[str, str, str]:
    return (base_url, identifier.lower(), hashlib.sha256(password.encode()).hexdigest())


def sign_in(api: JsonApi, identifier: str, password: str, *, fresh: bool = False) -> Session:
    """The process's session for this account (``createSession`` the first time, or when
    ``fresh``: the stored one was refused)."""
    key = _session_key(api.base_url, identifier, password)
    with _SESSIONS_LOCK:
        session = _SESSIONS.get(key)
        if session is not None and not fresh:
            return session
        if session is not None:
            try:  # refreshing costs less of the sign-in allowance than signing in
                body = api.post(
                    "/xrpc/com.atproto.server.refreshSession",
                    what="refreshing the session",
                    headers={"Authorization": f"Bearer {session.refresh}"},
                ).body
                _SESSIONS[key] = _session_from(body)
                return _SESSIONS[key]
            except SourceFailing:
                _SESSIONS.pop(key, None)
        body = api.post(
            "/xrpc/com.atproto.server.createSession",
            what=f"signing in as {identifier}",
            json_body={"identifier": identifier, "password": password},
        ).body
        _SESSIONS[key] = _session_from(body)
        return _SESSIONS[key]


def _session_from(body: Any) -> Session:
    if not isinstance(body, dict) or not body.get("accessJwt") or not body.get("did"):
        raise SourceFailing(f"{PLATFORM} did not return a session: {CREDENTIALS}")
    return Session(
        str(body["did"]),
        str(body.get("handle") or ""),
        str(body["accessJwt"]),
        str(body.get("refreshJwt") or ""),
    )


def forget_sessions() -> None:
    """Drop every stored session (tests; a changed password)."""
    with _SESSIONS_LOCK:
        _SESSIONS.clear()


class BlueskyClient:
    """Signed-in XRPC calls: one retry with a refreshed session when the token expired."""

    def __init__(self, api: JsonApi, identifier: str, password: str) -> None:
        self.api = api
        self.identifier = identifier
        self.password = password
        self.session = sign_in(api, identifier, password)

    def call(self, method: str, nsid: str, *, what: str, **kwargs: Any) -> Any:
        for attempt in (0, 1):
            headers = {"Authorization": f"Bearer {self.session.access}"}
            try:
                return self.api.request(
                    method, f"/xrpc/{nsid}", what=what, headers=headers, **kwargs
                )
            except SourceFailing as exc:
                if attempt or not _expired(exc):
                    raise
                self.session = sign_in(self.api, self.identifier, self.password, fresh=True)
        raise AssertionError("unreachable")  # pragma: no cover


def _expired(exc: SourceFailing) -> bool:
    text = str(exc)
    return "ExpiredToken" in text or "(401" in text or "InvalidToken" in text


def at_uri_parts(uri: str) -> tuple[str, str, str]:
    """``at://did/collection/rkey`` → (did, collection, rkey); ValueError otherwise."""
    if not uri.startswith("at://"):
        raise ValueError(f"not an AT URI: {uri!r}")
    parts = uri[5:].split("/")
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"not a record AT URI: {uri!r}")
    return parts[0], parts[1], parts[2]


def post_url(handle: str, uri: str) -> str:
    return f"https://bsky.app/profile/{handle}/post/{at_uri_parts(uri)[2]}"


def sort_at(item: dict[str, Any]) -> datetime | None:
    """searchPosts' ``sortAt``: the earlier of the record's createdAt and indexedAt."""
    times = [
        t
        for t in (
            parse_time((item.get("record") or {}).get("createdAt")),
            parse_time(item.get("indexedAt")),
        )
        if t is not None
    ]
    return min(times) if times else None


def view_to_post(
    view: dict[str, Any],
    *,
    settings: Settings,
    source: SourceSettings,
    now: datetime,
    reason: str | None = None,
    addressed_to: str | None = None,
) -> Post | None:
    """A post view or a notification as a Post (``None`` when the brand is absent)."""
    uri = str(view["uri"])
    at_uri_parts(uri)
    author = view["author"]
    handle = text_of(author.get("handle")).strip()
    did = text_of(author.get("did")).strip()
    if not handle or not did:
        raise ValueError("post without an author handle and DID")
    record = view.get("record")
    if not isinstance(record, dict):
        raise ValueError("post without a record")
    text = text_of(record.get("text"))
    match = brand_match(text, settings, source, addressed_to=addressed_to)
    if match is None:
        return None
    reply = record.get("reply") if isinstance(record.get("reply"), dict) else {}
    parent = (reply.get("parent") or {}).get("uri") if reply else None
    root = (reply.get("root") or {}).get("uri") if reply else None
    embed = record.get("embed")
    quoted = isinstance(embed, dict) and "app.bsky.embed.record" in str(embed.get("$type", ""))
    kind = "reply" if parent else ("quote" if quoted or reason == "quote" else "post")
    langs = [x for x in record.get("langs") or [] if isinstance(x, str)]
    links = [
        f.get("uri")
        for facet in record.get("facets") or []
        if isinstance(facet, dict)
        for f in facet.get("features") or []
        if isinstance(f, dict) and f.get("uri")
    ]
    return Post(
        external_id=uri,
        text=match.passage or text,
        full_text=text,
        author=Author(
            handle=handle,
            display_name=text_of(author.get("displayName")) or None,
            external_id=did,
            url=f"https://bsky.app/profile/{handle}",
        ),
        published_at=published_at(record.get("createdAt") or view.get("indexedAt"), now),
        url=post_url(handle, uri),
        lang=langs[0] if langs else None,
        conversation_id=str(root or uri),
        in_reply_to_id=str(parent) if parent else None,
        kind=kind,
        matched_keywords=list(match.matched),
        raw=clean_json(
            {
                "platform": "bluesky",
                "uri": uri,
                "cid": view.get("cid"),
                "did": did,
                "handle": handle,
                "reason": reason,
                "indexedAt": view.get("indexedAt"),
                "record": {
                    "text": text,
                    "createdAt": record.get("createdAt"),
                    "langs": langs,
                    "reply": reply or None,
                    "links": links[:20],
                },
            }
        ),
    )


@dataclass
class _Mark:
    """The newest item stored: its time and the URIs at that time."""

    at: datetime | None
    seen: frozenset[str]

    @classmethod
    def load(cls, data: Any) -> _Mark:
        if not isinstance(data, dict):
            return cls(None, frozenset())
        seen = frozenset(str(u) for u in data.get("seen") or [] if isinstance(u, str))
        return cls(parse_time(data.get("at")), seen)

    def dump(self) -> dict[str, Any]:
        return {"at": self.at.isoformat() if self.at else None, "seen": sorted(self.seen)}

    def stored(self, when: datetime | None, uri: str) -> bool:
        """Whether an item at ``when`` is at or before the mark (already read)."""
        if self.at is None or when is None:
            return False
        return when < self.at or (when == self.at and uri in self.seen)

    def advanced(self, items: list[tuple[datetime | None, str]]) -> _Mark:
        dated = [(t, u) for t, u in items if t is not None]
        if not dated:
            return self
        top = max(t for t, _ in dated)
        if self.at is not None and top < self.at:
            return self
        uris = {u for t, u in dated if t == top}
        return _Mark(top, frozenset(uris | (self.seen if top == self.at else set())))


class BlueskyCollector:
    """Reads Bluesky through a PDS (see the module docs)."""

    needs: ClassVar[tuple[str, ...]] = ("handle", "query")

    def __init__(self, clock: Clock = utcnow) -> None:
        self.clock = clock

    def collect(
        self, source: SourceSettings, state: PollState, ctx: CollectContext
    ) -> CollectResult:
        settings = ctx.settings
        base = source.base_url or settings.bluesky.base_url
        identifier = source.handle or settings.bluesky.handle
        secret = settings.bluesky.app_password
        password = secret.get_secret_value() if secret is not None else ""
        if not identifier or not password:
            raise SourceFailing(
                "Bluesky needs a signed-in account: set bluesky.handle (or the source's "
                "handle) and bluesky.app_password (${BLUESKY_APP_PASSWORD})"
            )
        api = shared_api(
            ctx,
            f"bluesky:{base}",
            lambda: JsonApi(PLATFORM, base, settings.polling, credentials=CREDENTIALS),
        )
        cursor = dict(state.cursor)
        rate = RateLimit.from_cursor(cursor.get("rate"))
        checked_rate(rate, PLATFORM, "signing in", self.clock())
        client = BlueskyClient(api, identifier, password)
        run = _Run(self, client, source, settings, cursor, rate)
        result = CollectResult(posts=[], state=state)
        try:
            if source.handle:
                result.posts += run.mentions()
            if source.query:
                result.posts += run.search()
        except RateLimited as exc:
            if run.tally.pages == 0:
                raise
            result.problems.append(f"stopped early: {exc}")
            result.next_check_at = exc.retry_at
        result.problems += run.problems
        if result.next_check_at is None and run.more:
            result.next_check_at = self.clock()
        cursor["rate"] = run.rate.to_cursor()
        result.state = replace(state, cursor=cursor)
        run.tally.kept = len(result.posts)
        result.stats = run.tally.as_dict()
        return result


class _Run:
    """One collect call: the signed-in client, the cursor being advanced, counters."""

    def __init__(
        self,
        collector: BlueskyCollector,
        client: BlueskyClient,
        source: SourceSettings,
        settings: Settings,
        cursor: dict[str, Any],
        rate: RateLimit,
    ) -> None:
        self.clock = collector.clock
        self.client = client
        self.source = source
        self.settings = settings
        self.cursor = cursor
        self.rate = rate
        self.tally = Tally()
        self.problems: list[str] = []
        self.more = False
        self.max_pages = int_option(source, "max_pages", DEFAULT_MAX_PAGES, 1, 100)
        self.size = int_option(source, "page_size", 100, 1, 100)

    def get(self, nsid: str, params: list[tuple[str, Any]], what: str) -> dict[str, Any]:
        checked_rate(self.rate, PLATFORM, what, self.clock())
        self.tally.requests += 1
        response = self.client.call("GET", nsid, what=what, params=params)
        self.rate = response.rate or self.rate
        self.tally.pages += 1
        if not isinstance(response.body, dict):
            raise SourceFailing(f"{PLATFORM} answered {what} with something that is not an object")
        return response.body

    def _posts(
        self, items: list[Any], *, notifications: bool
    ) -> tuple[list[Post], list[tuple[datetime | None, str]]]:
        posts: list[Post] = []
        stamps: list[tuple[datetime | None, str]] = []
        me = self.client.session.did
        addressed = "@" + (self.source.handle or "") if notifications else None
        for item in items:
            self.tally.seen += 1
            if not isinstance(item, dict):
                self.tally.skip("malformed")
                continue
            when = parse_time(item.get("indexedAt")) if notifications else sort_at(item)
            stamps.append((when, str(item.get("uri"))))
            if (item.get("author") or {}).get("did") == me:
                self.tally.skip("own")
                continue
            try:
                post = view_to_post(
                    item,
                    settings=self.settings,
                    source=self.source,
                    now=self.clock(),
                    reason=item.get("reason") if notifications else None,
                    addressed_to=addressed,
                )
            except (KeyError, TypeError, ValueError, AttributeError):
                self.tally.skip("malformed")
                continue
            if post is None:
                self.tally.skip("no_brand")
            else:
                posts.append(post)
        return posts, stamps

    def mentions(self) -> list[Post]:
        """New notifications, newest first, until the stored mark."""
        mark = _Mark.load(self.cursor.get("mentions"))
        reasons = self.source.options.get("reasons") or list(DEFAULT_REASONS)
        if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
            raise SourceFailing("options.reasons must be a list of notification reasons")
        params: list[tuple[str, Any]] = [("limit", self.size)] + [("reasons", r) for r in reasons]
        fresh: list[Any] = []
        page_cursor = None
        for _ in range(self.max_pages):
            body = self.get(
                "app.bsky.notification.listNotifications",
                params + ([("cursor", page_cursor)] if page_cursor else []),
                f"notifications of {self.source.handle}",
            )
            items = body.get("notifications")
            if not isinstance(items, list):
                raise SourceFailing(f"{PLATFORM} answered without a list of notifications")
            reached = False
            for item in items:
                when = parse_time(item.get("indexedAt")) if isinstance(item, dict) else None
                uri = str(item.get("uri")) if isinstance(item, dict) else ""
                if mark.stored(when, uri):
                    reached = True
                    continue
                fresh.append(item)
            page_cursor = body.get("cursor")
            if reached or not items or not page_cursor:
                break
        else:
            if mark.at is not None:
                self.problems.append(
                    f"more than {self.max_pages} pages of new notifications: older ones "
                    "were not read"
                )
        posts, stamps = self._posts(fresh, notifications=True)
        self.cursor["mentions"] = mark.advanced(stamps).dump()
        return posts

    def search(self) -> list[Post]:
        """searchPosts since the stored mark (a gap left by a capped poll first)."""
        query = self.source.query or ""
        mark = _Mark.load(self.cursor.get("search"))
        gap = (
            self.cursor.get("search_gap")
            if isinstance(self.cursor.get("search_gap"), dict)
            else None
        )
        since = parse_time(gap.get("since")) if gap else mark.at
        until = parse_time(gap.get("until")) if gap else None
        base: list[tuple[str, Any]] = [("q", query), ("sort", "latest"), ("limit", self.size)]
        if since is not None:
            base.append(("since", since.isoformat().replace("+00:00", "Z")))
        if until is not None:
            base.append(("until", until.isoformat().replace("+00:00", "Z")))
        fresh: list[Any] = []
        page_cursor = None
        capped = True
        for _ in range(self.max_pages):
            body = self.get(
                "app.bsky.feed.searchPosts",
                base + ([("cursor", page_cursor)] if page_cursor else []),
                f"search {query!r}",
            )
            items = body.get("posts")
            if not isinstance(items, list):
                raise SourceFailing(f"{PLATFORM} answered without a list of posts")
            fresh += [
                i
                for i in items
                if not (isinstance(i, dict) and mark.stored(sort_at(i), str(i.get("uri"))))
            ]
            page_cursor = body.get("cursor")
            if not items or not page_cursor:
                capped = False
                break
        posts, stamps = self._posts(fresh, notifications=False)
        oldest = min((t for t, _ in stamps if t is not None), default=None)
        if gap is not None:
            self.cursor.pop("search_gap", None)
            self.more = True
        else:
            self.cursor["search"] = mark.advanced(stamps).dump()
        if capped and since is not None and oldest is not None:
            self.cursor["search_gap"] = {
                "since": since.isoformat(),
                "until": oldest.isoformat(),
            }
            self.more = True
        elif capped:
            self.problems.append("first poll read only the newest pages of the search")
        return posts
