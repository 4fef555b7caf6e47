"""A local Mastodon-compatible server for tests, built on Mastodon.py's recorded responses.

It loads the cassettes in ``../shared/data/mastodon`` and behaves like one instance:

* every **status** and **account** in the recordings is known (statuses by id,
  ``/api/v1/statuses/:id`` and ``…/context``);
* **notifications** are the recorded ones, per account: the 40 real mention
  notifications of ``halcy`` (mastodon.social — most of their statuses were
  deleted, as recorded) and the local instance's mentions of ``mastodonpy_test``;
  ``types[]``, ``min_id``/``max_id``/``since_id`` and ``limit`` work as Mastodon's do,
  newest first, with a ``Link`` header;
* ``/api/v1/timelines/tag/:tag`` and ``/api/v2/search?type=statuses`` search the known
  public statuses (search needs a token), paging with ``min_id``/``max_id``/``offset``;
* ``POST /api/v1/statuses`` posts as the token's account, honouring
  ``Idempotency-Key`` (the same key returns the same status and posts nothing) and
  ``in_reply_to_id`` (404 for an unknown status);
* every answer carries ``X-RateLimit-Limit/Remaining/Reset`` (an ISO time); once
  :meth:`MastodonServer.set_rate_limit`'s allowance is spent, 429.

Tokens are given to the constructor: ``{token: acct}``.
"""

from __future__ import annotations

import copy
import html
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apiserver import Answer, ApiServer, Request
from xserver import load_cassettes

HALCY = "43"  #: the recorded mastodon.social account whose notifications are recorded
TEST_TOKENS = {"halcy-token-SECRET": "halcy", "admin-token-SECRET": "admin"}


def _key(sid: str) -> tuple[int, str]:
    return (len(sid), sid)


def _walk_statuses(node: Any) -> Any:
    if isinstance(node, dict):
        if "content" in node and isinstance(node.get("account"), dict) and "visibility" in node:
            yield node
        for value in node.values():
            yield from _walk_statuses(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk_statuses(value)


def _walk_accounts(node: Any) -> Any:
    if isinstance(node, dict):
        if "acct" in node and "username" in node and "id" in node and "url" in node:
            yield node
        for value in node.values():
            yield from _walk_accounts(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk_accounts(value)


class MastodonServer(ApiServer):
    """One Mastodon instance (see module docs)."""

    def __init__(self, cassettes: Path, tokens: dict[str, str] | None = None) -> None:
        super().__init__()
        self.statuses: dict[str, dict[str, Any]] = {}
        self.accounts: dict[str, dict[str, Any]] = {}
        self.notifications: dict[str, list[dict[str, Any]]] = {}
        self.idempotent: dict[tuple[str, str], str] = {}
        self.posted: list[dict[str, Any]] = []
        self.rate_limit = 300
        self.rate_remaining = 300
        self.rate_reset = datetime.now(UTC) + timedelta(minutes=5)
        self._ids = itertools.count(int(datetime.now(UTC).timestamp() * 1000) << 16)
        self._seed(cassettes)
        self.tokens = {t: self.account_by_acct(a)["id"] for t, a in (tokens or TEST_TOKENS).items()}

    # -- setup ------------------------------------------------------------

    def _seed(self, folder: Path) -> None:
        for it in load_cassettes(folder):
            body = it.json() if it.body and it.status < 300 else None
            if body is None:
                continue
            for account in _walk_accounts(body):
                self.accounts.setdefault(str(account["id"]), copy.deepcopy(account))
            for status in _walk_statuses(body):
                self.statuses.setdefault(str(status["id"]), copy.deepcopy(status))
            if it.method == "GET" and it.path == "/api/v1/notifications":
                for n in body:
                    owner = HALCY if it.source.startswith("test_entity") else self._mentioned(n)
                    if owner is not None:
                        self.notifications.setdefault(owner, []).append(copy.deepcopy(n))
        for items in self.notifications.values():
            unique = {str(n["id"]): n for n in items}
            items[:] = sorted(unique.values(), key=lambda n: _key(str(n["id"])), reverse=True)

    @staticmethod
    def _mentioned(notification: dict[str, Any]) -> str | None:
        mentions = (notification.get("status") or {}).get("mentions") or []
        return str(mentions[0]["id"]) if mentions else None

    def account_by_acct(self, acct: str) -> dict[str, Any]:
        for account in self.accounts.values():
            if account["acct"].lower() == acct.lower().lstrip("@"):
                return account
        raise KeyError(acct)

    def add_status(
        self,
        text: str,
        *,
        acct: str,
        visibility: str = "public",
        mention: str | None = None,
        tags: tuple[str, ...] = (),
        notify: bool = True,
        language: str | None = "en",
    ) -> dict[str, Any]:
        """A new status by a known account (built from a recorded one), newest of all;
        with ``mention`` (an acct), also a mention notification for that account."""
        account = self.account_by_acct(acct)
        template = copy.deepcopy(next(iter(self.statuses.values())))
        sid = str(next(self._ids))
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        template.update(
            id=sid,
            created_at=now,
            in_reply_to_id=None,
            in_reply_to_account_id=None,
            visibility=visibility,
            language=language,
            spoiler_text="",
            content=f"<p>{html.escape(text)}</p>",
            uri=f"{account['url']}/statuses/{sid}",
            url=f"{account['url']}/{sid}",
            account=copy.deepcopy(account),
            reblog=None,
            tags=[{"name": t, "url": f"https://example.invalid/tags/{t}"} for t in tags],
            mentions=[],
        )
        self.statuses[sid] = template
        if mention is not None:
            target = self.account_by_acct(mention)
            template["mentions"] = [{k: target[k] for k in ("id", "username", "url", "acct")}]
            if notify:
                note = {
                    "id": str(next(self._ids)),
                    "type": "mention",
                    "created_at": now,
                    "account": copy.deepcopy(account),
                    "status": template,
                }
                items = self.notifications.setdefault(str(target["id"]), [])
                items.insert(0, note)
        return template

    def set_rate_limit(self, limit: int, remaining: int, reset_in: float = 300) -> None:
        self.rate_limit, self.rate_remaining = limit, remaining
        self.rate_reset = datetime.now(UTC) + timedelta(seconds=reset_in)

    # -- routing ----------------------------------------------------------

    def extra_headers(self, request: Request) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.rate_limit),
            "x-ratelimit-remaining": str(max(0, self.rate_remaining)),
            "x-ratelimit-reset": self.rate_reset.isoformat().replace("+00:00", "Z"),
        }

    def handle(self, request: Request) -> Answer:
        if self.rate_remaining <= 0:
            return 429, {}, {"error": "Too many requests"}
        self.rate_remaining -= 1
        path, method = request.path, request.method
        me = self.tokens.get(request.token or "")
        if request.token is not None and me is None:
            return 401, {}, {"error": "The access token is invalid"}
        if path == "/api/v1/accounts/verify_credentials":
            return (200, {}, self.accounts[me]) if me else (401, {}, {"error": "no token"})
        if path == "/api/v1/notifications":
            if me is None:
                return 401, {}, {"error": "The access token is invalid"}
            return self._notifications(request, me)
        if path.startswith("/api/v1/timelines/tag/"):
            tag = path.rsplit("/", 1)[1].lower()
            found = [s for s in self._public() if tag in {t["name"].lower() for t in s["tags"]}]
            return self._page(found, request)
        if path == "/api/v2/search":
            if me is None:
                return 200, {}, {"accounts": [], "statuses": [], "hashtags": []}
            q = (request.q("q") or "").lower()
            found = [s for s in self._public() if q and q in s["content"].lower()]
            return (
                200,
                {},
                {"accounts": [], "statuses": self._page(found, request)[2], "hashtags": []},
            )
        if path == "/api/v1/statuses" and method == "POST":
            return self._post(request, me)
        if path.startswith("/api/v1/statuses/"):
            parts = path.split("/")
            status = self.statuses.get(parts[4])
            if status is None:
                return 404, {}, {"error": "Record not found"}
            if len(parts) == 6 and parts[5] == "context":
                return 200, {}, self._context(status)
            return 200, {}, status
        return 404, {}, {"error": f"no route {method} {path}"}

    def _public(self) -> list[dict[str, Any]]:
        return [s for s in self.statuses.values() if s["visibility"] in ("public", "unlisted")]

    def _page(self, items: list[dict[str, Any]], request: Request) -> Answer:
        items = sorted(items, key=lambda s: _key(str(s["id"])), reverse=True)
        limit = int(request.q("limit") or 20)
        min_id, max_id, since_id = request.q("min_id"), request.q("max_id"), request.q("since_id")
        if max_id:
            items = [i for i in items if _key(str(i["id"])) < _key(max_id)]
        if since_id:
            items = [i for i in items if _key(str(i["id"])) > _key(since_id)]
        if min_id:  # the page right after min_id (oldest of the newer ones), newest first
            newer = [i for i in items if _key(str(i["id"])) > _key(min_id)]
            page = newer[-limit:] if newer else []
        else:
            offset = int(request.q("offset") or 0)
            page = items[offset : offset + limit]
        return 200, {}, page

    def _notifications(self, request: Request, me: str) -> Answer:
        types = set(request.query.get("types[]", []))
        items = [n for n in self.notifications.get(me, []) if not types or n["type"] in types]
        status, headers, page = self._page(items, request)
        if page:
            base = f"{self.base_url}/api/v1/notifications"
            headers = {
                "link": f'<{base}?max_id={page[-1]["id"]}>; rel="next", '
                f'<{base}?min_id={page[0]["id"]}>; rel="prev"'
            }
        return status, headers, page

    def _context(self, status: dict[str, Any]) -> dict[str, Any]:
        ancestors = []
        parent = self.statuses.get(str(status.get("in_reply_to_id")))
        while parent is not None:
            ancestors.insert(0, parent)
            parent = self.statuses.get(str(parent.get("in_reply_to_id")))
        descendants = []
        frontier = [str(status["id"])]
        while frontier:
            sid = frontier.pop()
            for s in self.statuses.values():
                if str(s.get("in_reply_to_id")) == sid:
                    descendants.append(s)
                    frontier.append(str(s["id"]))
        return {"ancestors": ancestors, "descendants": descendants}

    def _post(self, request: Request, me: str | None) -> Answer:
        if me is None:
            return 401, {}, {"error": "The access token is invalid"}
        body = request.body or {}
        key = request.headers.get("idempotency-key")
        if key and (me, key) in self.idempotent:
            return 200, {}, self.statuses[self.idempotent[(me, key)]]
        text = str(body.get("status") or "")
        if not text.strip():
            return 422, {}, {"error": "Validation failed: Text can't be blank"}
        reply_to = body.get("in_reply_to_id")
        if reply_to and str(reply_to) not in self.statuses:
            return 404, {}, {"error": "Record not found"}
        status = self.add_status(
            text, acct=self.accounts[me]["acct"], visibility=body.get("visibility") or "public"
        )
        if reply_to:
            target = self.statuses[str(reply_to)]
            status["in_reply_to_id"] = str(reply_to)
            status["in_reply_to_account_id"] = target["account"]["id"]
        self.posted.append(status)
        if key:
            self.idempotent[(me, key)] = status["id"]
        return 200, {}, status


def mastodon_settings(base_url: str, sources: list[dict[str, Any]], **extra: Any) -> dict:
    """A config mapping for @halcy as the brand, on the instance at ``base_url``."""
    return {
        "brand": {"name": "Halcy", "handles": ["@halcy"], "keywords": ["halcy"]},
        "mastodon": {"base_url": base_url, "access_token": "${MASTODON_ACCESS_TOKEN}"},
        "polling": {"timeout": "5s"},
        "sources": sources,
        **extra,
    }


MASTODON_ENV = {"MASTODON_ACCESS_TOKEN": "halcy-token-SECRET"}
