"""A local Bluesky PDS (+ AppView) for tests, built from atproto's real post views.

No recorded ``searchPosts`` or notification responses exist publicly, so this
server builds them following the lexicons from the real material in
``../shared/data/bluesky``: the post view of ``thread_view_post_with_embed_media``
(and the post it quotes), the post records (``post_record``,
``extended_post_record``) of ``test.marshal.dev`` (``did_doc``), and the real
profile views of ``get_follows`` as authors.

* ``com.atproto.server.createSession``/``refreshSession``: accounts given to the
  constructor (``{handle: app password}``); access tokens can be expired with
  :meth:`BlueskyServer.expire_tokens`.
* ``app.bsky.feed.searchPosts`` (``q``, ``sort``, ``since``/``until`` on ``sortAt``,
  ``limit``, ``cursor``) → ``{cursor, hitsTotal, posts: [postView]}``.
* ``app.bsky.notification.listNotifications`` (``reasons``, ``limit``, ``cursor``) →
  ``{cursor, notifications: [{uri, cid, author, reason, reasonSubject, record,
  isRead, indexedAt, labels}]}``, made when a post mentions an account's handle,
  replies to or quotes its post.
* ``app.bsky.feed.getPosts`` (``uris``); ``com.atproto.repo.createRecord`` (the
  ``rkey`` given, or a new TID; an existing rkey is refused) and ``getRecord``.
* ``RateLimit-Limit/Remaining/Reset`` (epoch) on every answer; 429 once spent.
"""

from __future__ import annotations

import copy
import itertools
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apiserver import Answer, ApiServer, Request

RECORDED = "test.marshal.dev"  #: the account whose real posts are recorded
BRAND_HANDLE = "why.bsky.team"  #: a real profile (get_follows) playing the brand in tests
TEST_ACCOUNTS = {BRAND_HANDLE: "app-password-SECRET", RECORDED: "other-password-SECRET"}
_B32 = "234567abcdefghijklmnopqrstuvwxyz"


def tid(n: int) -> str:
    return "".join(_B32[(n >> (60 - 5 * i)) & 31] for i in range(13))


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


class BlueskyServer(ApiServer):
    """See module docs."""

    def __init__(self, data: Path, accounts: dict[str, str] | None = None) -> None:
        super().__init__()
        load = lambda name: json.loads((data / name).read_text(encoding="utf-8"))  # noqa: E731
        thread = load("thread_view_post_with_embed_media.json")["thread"]
        did_doc = load("did_doc.json")
        self.profiles: dict[str, dict[str, Any]] = {}
        brand = copy.deepcopy(thread["post"]["author"])
        self.profiles[brand["did"]] = brand
        for follow in load("get_follows.json")["follows"]:
            self.profiles[follow["did"]] = copy.deepcopy(follow)
        assert brand["handle"] == did_doc["handle"]
        self.posts: dict[str, dict[str, Any]] = {}
        self.index: dict[str, tuple[str, datetime]] = {}
        self.records: dict[str, dict[str, Any]] = {}
        quoted = thread["post"]["embed"]["record"]["record"]
        self._store_view(
            {
                "uri": quoted["uri"],
                "cid": quoted["cid"],
                "author": quoted["author"],
                "record": quoted["value"],
                "indexedAt": quoted["indexedAt"],
                "labels": [],
            }
        )
        self._store_view(copy.deepcopy(thread["post"]))
        for name in ("post_record.json", "extended_post_record.json"):
            rec = load(name)
            value = {k: v for k, v in rec["value"].items() if k != "lol"}
            created = _parse(
                value["createdAt"]
                if value["createdAt"].endswith(("Z", "+00:00"))
                else value["createdAt"] + "Z"
            )
            self._store_view(
                {
                    "uri": rec["uri"],
                    "cid": rec["cid"],
                    "author": brand,
                    "record": value,
                    "indexedAt": _iso(created),
                    "labels": [],
                }
            )
        self.passwords = dict(accounts or TEST_ACCOUNTS)
        self.tokens: dict[str, str] = {}
        self.refresh_tokens: dict[str, str] = {}
        self.notifications: dict[str, list[dict[str, Any]]] = {}
        self.sessions_created = 0
        self.rate_limit, self.rate_remaining = 3000, 3000
        self.rate_reset = int(time.time()) + 300
        self._seq = itertools.count(int(time.time() * 1_000_000) << 10)

    # -- data -------------------------------------------------------------

    def _store_view(self, view: dict[str, Any]) -> None:
        view.setdefault("replyCount", 0)
        view.setdefault("repostCount", 0)
        view.setdefault("likeCount", 0)
        view.setdefault("labels", [])
        self.posts[view["uri"]] = view
        self.index[view["uri"]] = (  # the search index: text and sortAt when stored
            view["record"].get("text", ""),
            min(_parse(view["record"]["createdAt"]), _parse(view["indexedAt"])),
        )
        self.records[view["uri"]] = {
            "uri": view["uri"],
            "cid": view["cid"],
            "value": view["record"],
        }

    def did_of(self, handle: str) -> str:
        for did, profile in self.profiles.items():
            if profile["handle"] == handle:
                return did
        raise KeyError(handle)

    def add_post(
        self,
        text: str,
        *,
        author: str,
        reply_to: str | None = None,
        mention: str | None = None,
        langs: tuple[str, ...] = ("en",),
        when: datetime | None = None,
        rkey: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A new post view by the profile with handle ``author`` (a record following
        ``app.bsky.feed.post``): a reply to the post ``reply_to`` (its root kept), or
        mentioning ``mention`` (a handle, with a mention facet); notifications follow."""
        did = self.did_of(author)
        when = when or datetime.now(UTC)
        rkey = rkey or tid(next(self._seq))
        uri = f"at://{did}/app.bsky.feed.post/{rkey}"
        record: dict[str, Any] = {
            "$type": "app.bsky.feed.post",
            "text": text,
            "createdAt": _iso(when),
            "langs": list(langs),
        }
        if reply_to is not None:
            parent = self.posts[reply_to]
            root = (parent["record"].get("reply") or {}).get("root") or {
                "uri": parent["uri"],
                "cid": parent["cid"],
            }
            record["reply"] = {"root": root, "parent": {"uri": parent["uri"], "cid": parent["cid"]}}
        if mention is not None:
            start = text.encode().find(f"@{mention}".encode())
            if start >= 0:
                record["facets"] = [
                    {
                        "index": {"byteStart": start, "byteEnd": start + len(mention) + 1},
                        "features": [
                            {
                                "$type": "app.bsky.richtext.facet#mention",
                                "did": self.did_of(mention),
                            }
                        ],
                    }
                ]
        if extra:
            record.update(extra)
        view = {
            "uri": uri,
            "cid": "bafyrei" + tid(next(self._seq)) + "x" * 40,
            "author": copy.deepcopy(self.profiles[did]),
            "record": record,
            "indexedAt": _iso(when),
        }
        self._store_view(view)
        if reply_to is not None:
            owner = at_did(reply_to)
            if owner != did:
                self._notify(owner, view, "reply", reply_to)
        if mention is not None:
            self._notify(self.did_of(mention), view, "mention", None)
        return view

    def _notify(self, did: str, view: dict[str, Any], reason: str, subject: str | None) -> None:
        note = {
            "uri": view["uri"],
            "cid": view["cid"],
            "author": view["author"],
            "reason": reason,
            "record": view["record"],
            "isRead": False,
            "indexedAt": view["indexedAt"],
            "labels": [],
        }
        if subject:
            note["reasonSubject"] = subject
        self.notifications.setdefault(did, []).insert(0, note)

    def expire_tokens(self) -> None:
        self.tokens.clear()

    def set_rate_limit(self, limit: int, remaining: int, reset_in: int = 300) -> None:
        self.rate_limit, self.rate_remaining = limit, remaining
        self.rate_reset = int(time.time()) + reset_in

    # -- routing ----------------------------------------------------------

    def extra_headers(self, request: Request) -> dict[str, str]:
        return {
            "ratelimit-limit": str(self.rate_limit),
            "ratelimit-remaining": str(max(0, self.rate_remaining)),
            "ratelimit-reset": str(self.rate_reset),
            "ratelimit-policy": f"{self.rate_limit};w=300",
        }

    def handle(self, request: Request) -> Answer:
        if self.rate_remaining <= 0:
            return 429, {}, {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}
        self.rate_remaining -= 1
        nsid = request.path.removeprefix("/xrpc/")
        if nsid == "com.atproto.server.createSession":
            return self._create_session(request.body or {})
        if nsid == "com.atproto.server.refreshSession":
            return self._refresh(request.token or "")
        me = self.tokens.get(request.token or "")
        if me is None:
            if request.token and request.token.startswith("access-"):
                return 400, {}, {"error": "ExpiredToken", "message": "Token has expired"}
            return 401, {}, {"error": "AuthMissing", "message": "Authentication Required"}
        if nsid == "app.bsky.feed.searchPosts":
            return 200, {}, self._search(request)
        if nsid == "app.bsky.notification.listNotifications":
            return 200, {}, self._notifications(request, me)
        if nsid == "app.bsky.feed.getPosts":
            uris = request.query.get("uris", [])
            return 200, {}, {"posts": [self.posts[u] for u in uris if u in self.posts]}
        if nsid == "com.atproto.repo.createRecord":
            return self._create_record(request.body or {}, me)
        if nsid == "com.atproto.repo.getRecord":
            uri = f"at://{request.q('repo')}/{request.q('collection')}/{request.q('rkey')}"
            if uri not in self.records:
                return (
                    400,
                    {},
                    {"error": "RecordNotFound", "message": f"Could not locate record: {uri}"},
                )
            return 200, {}, self.records[uri]
        return 501, {}, {"error": "MethodNotImplemented", "message": f"no method {nsid}"}

    def _create_session(self, body: dict[str, Any]) -> Answer:
        handle = str(body.get("identifier", ""))
        if self.passwords.get(handle) != body.get("password"):
            return (
                401,
                {},
                {"error": "AuthenticationRequired", "message": "Invalid identifier or password"},
            )
        self.sessions_created += 1
        did = self.did_of(handle)
        access, refresh = f"access-{next(self._seq)}", f"refresh-{next(self._seq)}"
        self.tokens[access], self.refresh_tokens[refresh] = did, did
        return 200, {}, {"accessJwt": access, "refreshJwt": refresh, "handle": handle, "did": did}

    def _refresh(self, token: str) -> Answer:
        did = self.refresh_tokens.pop(token, None)
        if did is None:
            return 400, {}, {"error": "ExpiredToken", "message": "Token has expired"}
        access, refresh = f"access-{next(self._seq)}", f"refresh-{next(self._seq)}"
        self.tokens[access], self.refresh_tokens[refresh] = did, did
        handle = self.profiles[did]["handle"]
        return 200, {}, {"accessJwt": access, "refreshJwt": refresh, "handle": handle, "did": did}

    def _search(self, request: Request) -> dict[str, Any]:
        q = (request.q("q") or "").lower()
        found = [
            p
            for uri, p in self.posts.items()
            if q and q in self.index.get(uri, ("", None))[0].lower()
        ]

        def sort_at(p: dict[str, Any]) -> datetime:
            return self.index[p["uri"]][1] if p.get("uri") in self.index else datetime.now(UTC)

        since, until = request.q("since"), request.q("until")
        if since:
            found = [p for p in found if sort_at(p) >= _parse(since)]
        if until:
            found = [p for p in found if sort_at(p) < _parse(until)]
        found.sort(key=sort_at, reverse=True)
        return self._paged(found, request, "posts") | {"hitsTotal": len(found)}

    def _notifications(self, request: Request, me: str) -> dict[str, Any]:
        reasons = set(request.query.get("reasons", []))
        items = [n for n in self.notifications.get(me, []) if not reasons or n["reason"] in reasons]
        return self._paged(items, request, "notifications")

    @staticmethod
    def _paged(items: list[dict[str, Any]], request: Request, key: str) -> dict[str, Any]:
        limit = max(1, min(100, int(request.q("limit") or 50)))
        start = int(request.q("cursor") or 0)
        page = items[start : start + limit]
        out: dict[str, Any] = {key: page}
        if start + limit < len(items):
            out["cursor"] = str(start + limit)
        return out

    def _create_record(self, body: dict[str, Any], me: str) -> Answer:
        if body.get("repo") not in (me, self.profiles[me]["handle"]):
            return 401, {}, {"error": "AuthRequired", "message": "Invalid repo"}
        record = body.get("record") or {}
        if body.get("collection") != "app.bsky.feed.post" or not isinstance(
            record.get("text"), str
        ):
            return (
                400,
                {},
                {"error": "InvalidRequest", "message": "Invalid app.bsky.feed.post record"},
            )
        rkey = body.get("rkey") or tid(next(self._seq))
        uri = f"at://{me}/app.bsky.feed.post/{rkey}"
        if uri in self.records:
            return 400, {}, {"error": "InvalidRequest", "message": f"Record already exists: {uri}"}
        reply = record.get("reply")
        if reply and reply.get("parent", {}).get("uri") not in self.posts:
            return 400, {}, {"error": "InvalidRequest", "message": "reply parent not found"}
        view = {
            "uri": uri,
            "cid": "bafyrei" + tid(next(self._seq)) + "y" * 40,
            "author": copy.deepcopy(self.profiles[me]),
            "record": record,
            "indexedAt": _iso(datetime.now(UTC)),
        }
        self._store_view(view)
        return 200, {}, {"uri": uri, "cid": view["cid"]}


def at_did(uri: str) -> str:
    return uri[5:].split("/")[0]


def bluesky_settings(base_url: str, sources: list[dict[str, Any]], **extra: Any) -> dict:
    """A config mapping for the recorded account as the brand."""
    return {
        "brand": {"name": "Testing Co", "handles": [f"@{BRAND_HANDLE}"], "keywords": ["test"]},
        "bluesky": {
            "base_url": base_url,
            "handle": BRAND_HANDLE,
            "app_password": "${BLUESKY_APP_PASSWORD}",
        },
        "polling": {"timeout": "5s"},
        "sources": sources,
        **extra,
    }


BLUESKY_ENV = {"BLUESKY_APP_PASSWORD": "app-password-SECRET"}
ONE_HOUR = timedelta(hours=1)
