"""Replies on Bluesky, exactly once: a post record with ``reply.root`` and ``reply.parent``.

:class:`BlueskyReplyChannel` signs in as the brand (``bluesky.handle``,
``bluesky.app_password``; the session is shared with the collector), fetches the
post being answered (``app.bsky.feed.getPosts``) for its CID and its thread root,
and writes ``app.bsky.feed.post`` with ``com.atproto.repo.createRecord``:

* ``reply.parent`` is the customer's post, ``reply.root`` the root of its thread
  (the post itself when it starts one), both as ``{uri, cid}`` strong refs;
* a ``@handle`` of the author in the text becomes a mention facet, so they are
  notified;
* the record key is derived from the outbox message (a TID from its approval time
  and key), so a second ``createRecord`` for the same message cannot create a second
  post, and :meth:`find_existing` is one ``com.atproto.repo.getRecord``.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from listener.channels.base import OutboundMessage
from listener.collectors.api import JsonApi
from listener.collectors.bluesky import CREDENTIALS, BlueskyClient
from listener.errors import DeliveryError, PolicyViolation, SourceFailing
from listener.policy import channel_violations

if TYPE_CHECKING:
    from listener.config import Settings

POST = "app.bsky.feed.post"
_B32_SORTABLE = "234567abcdefghijklmnopqrstuvwxyz"


def record_key(idempotency_key: str, created_at: datetime | None) -> str:
    """A TID (13 base32-sortable characters) that is the same for every attempt at one
    message: microseconds of ``created_at`` (else derived from the key) and a 10-bit
    clock id from the key."""
    digest = int.from_bytes(hashlib.sha256(idempotency_key.encode()).digest()[:8], "big")
    if created_at is not None:
        micros = int(created_at.astimezone(UTC).timestamp() * 1_000_000)
    else:
        micros = digest >> 11  # 53 bits
    value = ((micros & ((1 << 53) - 1)) << 10) | (digest & 0x3FF)
    return "".join(_B32_SORTABLE[(value >> (60 - 5 * i)) & 31] for i in range(13))


def mention_facets(text: str, handle: str | None, did: str | None) -> list[dict[str, Any]]:
    """A mention facet for ``@handle`` in ``text`` (byte offsets, as the lexicon wants)."""
    if not handle or not did:
        return []
    needle = f"@{handle}".encode()
    data = text.encode("utf-8")
    start = data.find(needle)
    if start < 0:
        return []
    return [
        {
            "index": {"byteStart": start, "byteEnd": start + len(needle)},
            "features": [{"$type": "app.bsky.richtext.facet#mention", "did": did}],
        }
    ]


class BlueskyReplyChannel:
    """Posts replies as the brand's Bluesky account (see the module docs)."""

    name: ClassVar[str] = "bluesky"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @classmethod
    def from_settings(cls, settings: Settings) -> BlueskyReplyChannel:
        return cls(settings)

    def _client(self) -> BlueskyClient:
        cfg = self.settings.bluesky
        handle = cfg.handle or next(
            (s.handle for s in self.settings.sources if s.type == "bluesky" and s.handle), None
        )
        password = cfg.app_password.get_secret_value() if cfg.app_password else ""
        if not handle or not password:
            raise SourceFailing(
                "cannot post on Bluesky: set bluesky.handle and bluesky.app_password"
            )
        api = JsonApi("Bluesky", cfg.base_url, self.settings.polling, credentials=CREDENTIALS)
        return BlueskyClient(api, handle, password)

    def send(self, message: OutboundMessage) -> str:
        """Create the reply record; return its AT URI."""
        client = self._client()
        try:
            target = self._target(client, message)
            problems = channel_violations(
                "bluesky_reply",
                message.text,
                author=message.recipient,
                brand_handles=message.brand_handles,
            )
            if problems:
                raise PolicyViolation("; ".join(problems))
            parent = {"uri": target["uri"], "cid": target["cid"]}
            reply = (target.get("record") or {}).get("reply") or {}
            found = reply.get("root")
            root: dict[str, Any] = found if isinstance(found, dict) else parent
            author = target.get("author") or {}
            record: dict[str, Any] = {
                "$type": POST,
                "text": message.text,
                "createdAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "reply": {"root": {"uri": root["uri"], "cid": root["cid"]}, "parent": parent},
            }
            facets = mention_facets(message.text, author.get("handle"), author.get("did"))
            if facets:
                record["facets"] = facets
            rkey = record_key(message.idempotency_key, getattr(message, "created_at", None))
            try:
                body = client.call(
                    "POST",
                    "com.atproto.repo.createRecord",
                    what="the reply",
                    json_body={
                        "repo": client.session.did,
                        "collection": POST,
                        "rkey": rkey,
                        "record": record,
                    },
                ).body
            except SourceFailing as exc:
                if "already exists" in str(exc).lower():
                    existing = self._existing(client, message)
                    if existing is not None:
                        return existing
                if "(400" in str(exc):
                    raise PolicyViolation(str(exc)) from exc
                raise
        finally:
            client.api.close()
        if not isinstance(body, dict) or not body.get("uri"):
            raise SourceFailing("Bluesky accepted the reply but returned no record URI")
        return str(body["uri"])

    def find_existing(self, message: OutboundMessage) -> str | None:
        """The reply's AT URI if its record exists (the record key is deterministic)."""
        client = self._client()
        try:
            return self._existing(client, message)
        finally:
            client.api.close()

    def _existing(self, client: BlueskyClient, message: OutboundMessage) -> str | None:
        rkey = record_key(message.idempotency_key, getattr(message, "created_at", None))
        try:
            body = client.call(
                "GET",
                "com.atproto.repo.getRecord",
                what="looking for the reply",
                params={"repo": client.session.did, "collection": POST, "rkey": rkey},
            ).body
        except SourceFailing as exc:
            if "RecordNotFound" in str(exc) or "(404" in str(exc):
                return None
            raise
        value = body.get("value") if isinstance(body, dict) else None
        parent = ((value or {}).get("reply") or {}).get("parent") or {}
        if parent.get("uri") == message.in_reply_to:
            return str(body["uri"])
        return None

    @staticmethod
    def _target(client: BlueskyClient, message: OutboundMessage) -> dict[str, Any]:
        if not message.in_reply_to or not message.in_reply_to.startswith("at://"):
            raise DeliveryError("a Bluesky reply needs the AT URI of the post", retryable=False)
        body = client.call(
            "GET",
            "app.bsky.feed.getPosts",
            what="the post being answered",
            params=[("uris", message.in_reply_to)],
        ).body
        posts = body.get("posts") if isinstance(body, dict) else None
        if not posts or not isinstance(posts[0], dict) or not posts[0].get("cid"):
            raise DeliveryError(
                f"the post {message.in_reply_to} is gone or not visible", retryable=False
            )
        return posts[0]
