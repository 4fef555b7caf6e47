"""Replies on Reddit: a comment (``POST /api/comment``) under the post or comment.

:class:`RedditReplyChannel` answers as the brand account (``reddit.*`` OAuth, the
token cache shared with the collector) with ``thing_id`` = the fullname the
collector stored (``t1_…`` or ``t3_…``).  Reddit has no idempotency key, so
:meth:`find_existing` reads the brand's newest comments
(``/user/<name>/comments``) for a reply to the same thing with the same text; the
outbox asks it before any retry of a message whose outcome is unknown.

Reddit's own refusals come back as ``json.errors``: ``RATELIMIT`` is retried later,
a locked, archived or deleted target is permanent, anything else is a policy
failure with Reddit's words.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from listener.channels.base import OutboundMessage
from listener.collectors.api import JsonApi
from listener.collectors.reddit import CREDENTIALS, RedditClient, user_agent
from listener.errors import DeliveryError, PolicyViolation, SourceFailing, TransientError
from listener.policy import channel_violations

if TYPE_CHECKING:
    from listener.config import Settings

GONE = {"THREAD_LOCKED", "TOO_OLD", "DELETED_COMMENT", "DELETED_LINK", "INVALID_THING"}
FIND_PAGES = 3


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


class RedditReplyChannel:
    """Comments as the brand's Reddit account (see the module docs)."""

    name: ClassVar[str] = "reddit"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @classmethod
    def from_settings(cls, settings: Settings) -> RedditReplyChannel:
        return cls(settings)

    def _client(self) -> RedditClient:
        cfg = self.settings.reddit
        headers = {"User-Agent": user_agent(self.settings)}
        polling = self.settings.polling
        api = JsonApi("Reddit", cfg.base_url, polling, credentials=CREDENTIALS, headers=headers)
        auth = JsonApi("Reddit", cfg.auth_url, polling, credentials=CREDENTIALS, headers=headers)
        try:
            return RedditClient(api, auth, self.settings)
        except BaseException:
            api.close()
            auth.close()
            raise

    def send(self, message: OutboundMessage) -> str:
        """Post the comment; return its fullname."""
        if not message.in_reply_to or message.in_reply_to[:3] not in ("t1_", "t3_"):
            raise DeliveryError(
                "a Reddit reply needs the post's or comment's fullname", retryable=False
            )
        problems = channel_violations(
            "reddit_reply",
            message.text,
            author=message.recipient,
            brand_handles=message.brand_handles,
        )
        if problems:
            raise PolicyViolation("; ".join(problems))
        client = self._client()
        try:
            body = client.call(
                "POST",
                "/api/comment",
                what=f"the reply to {message.in_reply_to}",
                data={"api_type": "json", "thing_id": message.in_reply_to, "text": message.text},
            ).body
        finally:
            client.api.close()
            client.auth.close()
        result = body.get("json") if isinstance(body, dict) else None
        errors = (result or {}).get("errors") or []
        if errors:
            codes = {str(e[0]) for e in errors if isinstance(e, list) and e}
            said = "; ".join(" ".join(str(x) for x in e[:2]) for e in errors if isinstance(e, list))
            if "RATELIMIT" in codes:
                raise TransientError(f"Reddit asked us to slow down: {said}")
            if codes & GONE:
                raise DeliveryError(f"Reddit refused the reply: {said}", retryable=False)
            raise PolicyViolation(f"Reddit refused the reply: {said}")
        things = ((result or {}).get("data") or {}).get("things") or []
        name = (
            (things[0].get("data") or {}).get("name")
            if things and isinstance(things[0], dict)
            else None
        )
        if not name:
            raise SourceFailing("Reddit accepted the reply but returned no comment id")
        return str(name)

    def find_existing(self, message: OutboundMessage) -> str | None:
        """The fullname of the brand's comment under the same thing with the same text."""
        client = self._client()
        try:
            after = None
            for _ in range(FIND_PAGES):
                params: dict[str, Any] = {"limit": 100, "sort": "new", "raw_json": 1}
                if after:
                    params["after"] = after
                body = client.call(
                    "GET",
                    f"/user/{client.username}/comments",
                    what="the brand's recent comments",
                    params=params,
                ).body
                data = body.get("data") if isinstance(body, dict) else None
                for thing in (data or {}).get("children") or []:
                    d = thing.get("data") if isinstance(thing, dict) else None
                    if (
                        isinstance(d, dict)
                        and d.get("parent_id") == message.in_reply_to
                        and _same(str(d.get("body", "")), message.text)
                    ):
                        return str(d.get("name"))
                after = (data or {}).get("after")
                if not after:
                    return None
            return None
        finally:
            client.api.close()
            client.auth.close()
