"""A local Reddit OAuth API for tests, seeded with praw's recorded responses.

From ``../shared/data/reddit``: the inbox mentions (``TestInbox.test_mentions``),
r/askreddit's new posts and comments (``TestSubredditListings``), the r/all search
results (``TestSubreddit.test_search``) and the recorded comment replies.

* ``POST /api/v1/access_token`` (basic auth with the client id and secret;
  ``password`` or ``refresh_token`` grants) → a bearer token; tokens can be expired.
* Listings (``/message/mentions``, ``/r/<subs>/new``, ``/r/<subs>/comments``,
  ``/r/<subs>/search``, ``/search``, ``/user/<name>/comments``) newest first, with
  ``limit``, ``after`` and ``before`` as Reddit pages them; search matches every word
  of ``q`` in the title or text.
* ``POST /api/comment`` (``thing_id``, ``text``) adds a comment by the brand account
  in Reddit's ``{"json": {"errors": [], "data": {"things": [...]}}}`` shape.
* ``X-Ratelimit-Used/Remaining/Reset`` (seconds) on every answer; 429 once spent.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import time
from pathlib import Path
from typing import Any

from apiserver import Answer, ApiServer, Request

CLIENT = ("client-id", "client-secret-SECRET")
BRAND = "listener_brand"
PASSWORD = "reddit-password-SECRET"
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def b36(n: int) -> str:
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = _B36[r] + out
    return out or "0"


class RedditServer(ApiServer):
    """See module docs."""

    def __init__(self, data: Path) -> None:
        super().__init__()
        self.listings: dict[str, list[dict[str, Any]]] = {}
        self.things: dict[str, dict[str, Any]] = {}

        def recorded(name: str, path_part: str) -> list[dict[str, Any]]:
            cassette = json.loads((data / name).read_text(encoding="utf-8"))
            for it in cassette["interactions"]:
                if path_part in it["request"]["uri"] and it["response"]["status"]["code"] == 200:
                    body = json.loads(it["response"]["body"]["string"])
                    return copy.deepcopy(body["data"]["children"])
            raise KeyError(path_part)

        self.listings["mentions"] = recorded("TestInbox.test_mentions.json", "/message/mentions")
        self.listings["askreddit/new"] = recorded("TestSubredditListings.test_new.json", "/new")
        self.listings["askreddit/comments"] = recorded(
            "TestSubredditListings.test_comments.json", "/comments"
        )
        self.listings["search"] = recorded("TestSubreddit.test_search.json", "/search")
        self.listings["user"] = []
        for items in self.listings.values():
            for thing in items:
                self.things[thing["data"]["name"]] = thing
        self.tokens: set[str] = set()
        self.token_requests = 0
        self.used, self.remaining, self.reset_in = 0, 600.0, 300
        self._seq = itertools.count(int(time.time() * 1000))

    def add_thing(self, listing: str, kind: str, text: str, *, author: str, **data: Any) -> dict:
        """A new comment (``t1``) or post (``t3``, ``text`` is its title) on ``listing``."""
        ident = b36(next(self._seq))
        thing = {
            "kind": kind,
            "data": {
                "id": ident,
                "name": f"{kind}_{ident}",
                "author": author,
                "author_fullname": f"t2_{b36(hash(author) & 0xFFFFFFF)}",
                "created_utc": float(int(time.time())),
                "subreddit": "askreddit",
                "permalink": f"/r/askreddit/comments/{ident}/",
                "score": 1,
                **(
                    {"body": text, "link_id": "t3_abc123", "parent_id": "t3_abc123"}
                    if kind == "t1"
                    else {"title": text, "selftext": ""}
                ),
                **data,
            },
        }
        self.listings.setdefault(listing, []).insert(0, thing)
        self.things[thing["data"]["name"]] = thing
        return thing

    def expire_tokens(self) -> None:
        self.tokens.clear()

    def set_rate_limit(self, remaining: float, reset_in: int = 300) -> None:
        self.remaining, self.reset_in = remaining, reset_in

    def extra_headers(self, request: Request) -> dict[str, str]:
        return {
            "x-ratelimit-used": str(self.used),
            "x-ratelimit-remaining": f"{max(0.0, self.remaining):.1f}",
            "x-ratelimit-reset": str(self.reset_in),
        }

    def handle(self, request: Request) -> Answer:
        path = request.path.rstrip("/")
        if path == "/api/v1/access_token":
            return self._token(request)
        if request.token not in self.tokens:
            return 401, {}, {"message": "Unauthorized", "error": 401}
        if self.remaining < 1:
            return 429, {}, {"message": "Too Many Requests", "error": 429}
        self.used += 1
        self.remaining -= 1
        if path == "/api/comment" and request.method == "POST":
            return self._comment(request.body or {})
        if path == "/message/mentions":
            return 200, {}, self._listing("mentions", request)
        if path.startswith("/r/"):
            parts = path.split("/")  # ["", "r", subs, what]
            subs, what = parts[2].lower().split("+"), parts[3] if len(parts) > 3 else "hot"
            if what == "search":
                return 200, {}, self._listing("search", request, query=request.q("q"))
            items = [t for s in subs for t in self.listings.get(f"{s}/{what}", [])]
            return 200, {}, self._page(items, request)
        if path == "/search":
            return 200, {}, self._listing("search", request, query=request.q("q"))
        if path.startswith("/user/") and path.endswith("/comments"):
            who = path.split("/")[2].lower()
            mine = [t for t in self.listings["user"] if t["data"]["author"].lower() == who]
            return 200, {}, self._page(mine, request)
        return 404, {}, {"message": "Not Found", "error": 404}

    def _token(self, request: Request) -> Answer:
        self.token_requests += 1
        auth = request.headers.get("authorization", "")
        expected = "Basic " + base64.b64encode(f"{CLIENT[0]}:{CLIENT[1]}".encode()).decode()
        form = request.body or {}
        if auth != expected:
            return 401, {}, {"message": "Unauthorized", "error": 401}
        if form.get("grant_type") == "password" and form.get("password") != PASSWORD:
            return 200, {}, {"error": "invalid_grant"}
        token = f"token-{next(self._seq)}"
        self.tokens.add(token)
        return (
            200,
            {},
            {"access_token": token, "token_type": "bearer", "expires_in": 86400, "scope": "*"},
        )

    def _listing(self, key: str, request: Request, query: str | None = None) -> dict[str, Any]:
        items = self.listings.get(key, [])
        if query is not None:
            words = query.lower().split()
            items = [
                t
                for t in items
                if all(
                    w in (t["data"].get("title", "") + " " + t["data"].get("selftext", "")).lower()
                    for w in words
                )
            ]
        return self._page(items, request)

    @staticmethod
    def _page(items: list[dict[str, Any]], request: Request) -> dict[str, Any]:
        items = sorted(items, key=lambda t: t["data"].get("created_utc", 0), reverse=True)
        limit = max(1, min(100, int(request.q("limit") or 25)))
        names = [t["data"]["name"] for t in items]
        after, before = request.q("after"), request.q("before")
        if after in names:
            items = items[names.index(after) + 1 :]
        elif before:
            items = items[: names.index(before)] if before in names else []
        page = items[:limit]
        more = len(items) > limit
        return {
            "kind": "Listing",
            "data": {
                "after": page[-1]["data"]["name"] if page and more else None,
                "before": None,
                "dist": len(page),
                "children": page,
            },
        }

    def _comment(self, form: dict[str, Any]) -> Answer:
        parent = str(form.get("thing_id", ""))
        text = str(form.get("text", ""))
        if parent not in self.things:
            return (
                200,
                {},
                {"json": {"errors": [["INVALID_THING", "that thing doesn't exist", "thing_id"]]}},
            )
        if not text.strip():
            return 200, {}, {"json": {"errors": [["NO_TEXT", "we need something here", "text"]]}}
        target = self.things[parent]["data"]
        thing = self.add_thing(
            "user",
            "t1",
            text,
            author=BRAND,
            parent_id=parent,
            link_id=target.get("link_id") or parent,
            subreddit=target.get("subreddit"),
        )
        return 200, {}, {"json": {"errors": [], "data": {"things": [thing]}}}


def reddit_settings(base_url: str, sources: list[dict[str, Any]], **extra: Any) -> dict:
    """A config mapping for the brand account u/listener_brand on the local API."""
    return {
        "brand": {"name": "PRAW", "handles": ["u/listener_brand"], "keywords": ["praw", "Reddit"]},
        "reddit": {
            "base_url": base_url,
            "auth_url": base_url,
            "username": BRAND,
            "client_id": "${REDDIT_CLIENT_ID}",
            "client_secret": "${REDDIT_CLIENT_SECRET}",
            "password": "${REDDIT_PASSWORD}",
        },
        "polling": {"timeout": "5s"},
        "sources": sources,
        **extra,
    }


REDDIT_ENV = {
    "REDDIT_CLIENT_ID": CLIENT[0],
    "REDDIT_CLIENT_SECRET": CLIENT[1],
    "REDDIT_PASSWORD": PASSWORD,
}
