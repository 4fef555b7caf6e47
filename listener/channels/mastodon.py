"""Replies on Mastodon, exactly once: ``POST /api/v1/statuses`` with an ``Idempotency-Key``.

:class:`MastodonReplyChannel` posts as the brand account (``mastodon.base_url``,
``mastodon.access_token``) in reply to the customer's status:

* the target is looked up on the brand's instance first (``/api/v1/statuses/:id``);
  when the mention was read on another instance its id means nothing here, so the
  status is found by its URL (``/api/v2/search?resolve=true``);
* the reply has the target's visibility (a direct message is answered directly,
  a followers-only post followers-only) and starts with the author's ``@user@host``
  when the text does not name them, so they are notified;
* the ``Idempotency-Key`` header (derived from the outbox key) makes Mastodon answer a
  repeated request with the status it already created instead of posting twice (it
  remembers keys for an hour); :meth:`find_existing` covers longer gaps by reading
  the target's replies (``…/context``) for one by the brand with the same text.

The channel's length and addressee rules (:data:`listener.policy.CHANNEL_RULES`) are
checked again before posting; a refused status (422) is a policy failure, a target
that no longer exists is permanent.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any, ClassVar

from listener.channels.base import OutboundMessage
from listener.collectors.api import JsonApi
from listener.collectors.mastodon import full_acct, instance_host, status_text
from listener.errors import DeliveryError, PolicyViolation, SourceFailing
from listener.policy import channel_violations, mastodon_mentions

if TYPE_CHECKING:
    from listener.config import Settings

VISIBILITIES = ("public", "unlisted", "private", "direct")
CREDENTIALS = "check mastodon.access_token (MASTODON_ACCESS_TOKEN) and its write:statuses scope"


def idempotency_key(key: str) -> str:
    """The ``Idempotency-Key`` header for an outbox key (stable, opaque)."""
    return "listener-" + hashlib.sha256(key.encode()).hexdigest()[:40]


def addressed(text: str, acct: str) -> str:
    """``text`` starting with ``@acct`` unless it already names that account."""
    user = acct.split("@")[0].lower()
    if any(m.split("@")[0] == user for m in mastodon_mentions(text)):
        return text
    return f"@{acct} {text}"


def same_text(a: str, b: str) -> bool:
    """Equal once leading mentions and whitespace are ignored."""

    def norm(s: str) -> str:
        s = re.sub(r"^(?:\s*@[\w.\-]+(?:@[\w.\-]+)?)+\s*", "", s)
        return " ".join(s.split()).casefold()

    return norm(a) == norm(b)


class MastodonReplyChannel:
    """Posts replies on the brand's instance (see the module docs)."""

    name: ClassVar[str] = "mastodon"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._me: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> MastodonReplyChannel:
        return cls(settings)

    def _api(self) -> JsonApi:
        cfg = self.settings.mastodon
        token = cfg.access_token.get_secret_value() if cfg.access_token else ""
        if not cfg.base_url or not token:
            raise SourceFailing(
                "cannot post on Mastodon: set mastodon.base_url and mastodon.access_token"
            )
        return JsonApi(
            "Mastodon",
            cfg.base_url,
            self.settings.polling,
            credentials=CREDENTIALS,
            headers={"Authorization": f"Bearer {token}"},
        )

    def _target(self, api: JsonApi, message: OutboundMessage) -> dict[str, Any]:
        """The status being answered, as the brand's instance knows it."""
        url = getattr(message, "target_url", None)
        status: Any = None
        if message.in_reply_to:
            try:
                status = api.get(
                    f"/api/v1/statuses/{message.in_reply_to}", what="the post being answered"
                ).body
            except SourceFailing as exc:
                if "(404" not in str(exc):
                    raise
        if isinstance(status, dict) and (
            not url or status.get("url") == url or status.get("uri") == url
        ):
            return status
        if url:
            found = api.get(
                "/api/v2/search",
                what="finding the post on the brand's instance",
                params={"q": url, "type": "statuses", "resolve": "true", "limit": 1},
            ).body
            statuses = found.get("statuses") if isinstance(found, dict) else None
            if statuses and isinstance(statuses[0], dict):
                return statuses[0]
        raise DeliveryError(
            f"the post {message.in_reply_to} is gone or not visible to the brand account",
            retryable=False,
        )

    def _text(self, message: OutboundMessage, target: dict[str, Any]) -> str:
        host = instance_host(self.settings.mastodon.base_url or "")
        text = addressed(message.text, full_acct(target.get("account") or {}, host))
        problems = channel_violations(
            "mastodon_reply",
            text,
            author=message.recipient,
            brand_handles=message.brand_handles,
        )
        if problems:
            raise PolicyViolation("; ".join(problems))
        return text

    def send(self, message: OutboundMessage) -> str:
        """Post ``message`` as a reply; return the new status id."""
        api = self._api()
        try:
            target = self._target(api, message)
            text = self._text(message, target)
            visibility = target.get("visibility")
            try:
                body = api.post(
                    "/api/v1/statuses",
                    what=f"the reply to {target.get('id')}",
                    json_body={
                        "status": text,
                        "in_reply_to_id": str(target["id"]),
                        "visibility": visibility if visibility in VISIBILITIES else "public",
                    },
                    headers={"Idempotency-Key": idempotency_key(message.idempotency_key)},
                ).body
            except SourceFailing as exc:
                if "(422" in str(exc):
                    raise PolicyViolation(str(exc)) from exc
                raise
        finally:
            api.close()
        if not isinstance(body, dict) or not body.get("id"):
            raise SourceFailing("Mastodon accepted the reply but returned no status id")
        return str(body["id"])

    def find_existing(self, message: OutboundMessage) -> str | None:
        """The id of the brand's reply to the same post with the same text, if posted."""
        api = self._api()
        try:
            target = self._target(api, message)
            if self._me is None:
                me = api.get("/api/v1/accounts/verify_credentials", what="the brand account").body
                self._me = str(me.get("id")) if isinstance(me, dict) else None
            context = api.get(
                f"/api/v1/statuses/{target['id']}/context", what="the replies to the post"
            ).body
        finally:
            api.close()
        for status in (context or {}).get("descendants") or []:
            if (
                isinstance(status, dict)
                and str((status.get("account") or {}).get("id")) == self._me
                and str(status.get("in_reply_to_id")) == str(target["id"])
                and same_text(status_text(status), message.text)
            ):
                return str(status["id"])
        return None
