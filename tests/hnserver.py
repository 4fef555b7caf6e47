"""A local Hacker News search API (Algolia) for tests, seeded with the real recorded hits.

``../shared/data/hackernews/fixtures.json`` holds 26 recorded responses of
``hn.algolia.com/api/v1``; every hit in them (deduplicated by ``objectID``) is
searchable here through ``/api/v1/search_by_date`` (newest first) and
``/api/v1/search``, with Algolia's parameters: ``query`` (every word must occur in
the title, URL, author or text), ``tags`` (comma = AND, parentheses = OR),
``numericFilters`` (``created_at_i>=…``, comma = AND), ``hitsPerPage`` and
``page`` (with ``nbPages``/``nbHits``).  Other recorded URLs (items, users) are
replayed.  Tests add hits with :meth:`HNServer.add_hit`.
"""

from __future__ import annotations

import copy
import json
import operator
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from apiserver import Answer, ApiServer, Request

_NUMERIC = re.compile(r"^(\w+)(>=|<=|=|>|<)(-?\d+)$")
_OPS = {">=": operator.ge, "<=": operator.le, "=": operator.eq, ">": operator.gt, "<": operator.lt}


class HNServer(ApiServer):
    """The search API (see module docs)."""

    def __init__(self, fixtures: Path) -> None:
        super().__init__()
        self.recorded = json.loads(fixtures.read_text(encoding="utf-8"))
        self.hits: dict[str, dict[str, Any]] = {}
        for item in self.recorded:
            reply = item.get("reply")
            for hit in reply.get("hits", []) if isinstance(reply, dict) else []:
                self.hits.setdefault(str(hit["objectID"]), copy.deepcopy(hit))
        self._next = 90_000_000

    def add_hit(self, text: str, *, author: str, comment: bool = True, **extra: Any) -> dict:
        """A new hit (a comment, or a story whose title is ``text``), newest of all."""
        self._next += 1
        oid = str(self._next)
        now = int(time.time())
        hit: dict[str, Any] = {
            "objectID": oid,
            "author": author,
            "created_at_i": now,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now)),
            "title": None if comment else text,
            "url": None,
            "story_text": None,
            "comment_text": text if comment else None,
            "story_id": 8863 if comment else None,
            "parent_id": 8863 if comment else None,
            "story_title": "My YC app: Dropbox" if comment else None,
            "points": None if comment else 1,
            "_tags": ["comment" if comment else "story", f"author_{author}", f"story_{oid}"],
        }
        hit.update(extra)
        self.hits[oid] = hit
        return hit

    def handle(self, request: Request) -> Answer:
        path = request.path
        if path.endswith("/search_by_date") or path.endswith("/search"):
            return 200, {}, self._search(request, by_date=path.endswith("_by_date"))
        for item in self.recorded:
            if urlsplit(item["url"]).path == path:
                return 200, {}, item["reply"]
        return 404, {}, {"message": "Not Found", "status": 404}

    def _search(self, request: Request, *, by_date: bool) -> dict[str, Any]:
        words = (request.q("query") or "").lower().split()
        found = [h for h in self.hits.values() if _matches(h, words)]
        found = [h for h in found if _tagged(h, request.q("tags") or "")]
        for flt in (request.q("numericFilters") or "").split(","):
            m = _NUMERIC.match(flt.strip())
            if m:
                name, op, value = m.group(1), _OPS[m.group(2)], int(m.group(3))
                found = [h for h in found if op(int(h.get(name) or 0), value)]
        if by_date:
            found.sort(key=lambda h: (h.get("created_at_i") or 0, h["objectID"]), reverse=True)
        per = max(1, min(1000, int(request.q("hitsPerPage") or 20)))
        page = int(request.q("page") or 0)
        pages = max(1, -(-len(found) // per))
        return {
            "hits": found[page * per : (page + 1) * per],
            "nbHits": len(found),
            "page": page,
            "nbPages": pages,
            "hitsPerPage": per,
            "query": request.q("query") or "",
            "params": "",
        }


def _matches(hit: dict[str, Any], words: list[str]) -> bool:
    haystack = " ".join(
        str(hit.get(k) or "") for k in ("title", "url", "author", "story_text", "comment_text")
    ).lower()
    return all(w in haystack for w in words)


def _tagged(hit: dict[str, Any], tags: str) -> bool:
    have = set(hit.get("_tags") or [])
    for group in re.findall(r"\([^)]*\)|[^,()]+", tags):
        options = {t.strip() for t in group.strip("()").split(",") if t.strip()}
        if options and not options & have:
            return False
    return True


def hn_settings(base_url: str, sources: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A config mapping for Apple as the brand (the recorded searches are for "apple")."""
    return {
        "brand": {"name": "Apple", "keywords": ["Apple"]},
        "polling": {"timeout": "5s"},
        "sources": sources
        or [
            {"name": "hn", "type": "hackernews", "base_url": f"{base_url}/api/v1", "query": "apple"}
        ],
    }
