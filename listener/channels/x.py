"""Posting approved replies on X with tweepy, exactly once.

:class:`XReplyChannel` posts with ``create_tweet(text, in_reply_to_tweet_id)``
using the user-context (OAuth 1.0a) credentials ``x.consumer_key``,
``x.consumer_secret``, ``x.access_token``, ``x.access_token_secret``.

Before posting it applies the sending rules (:mod:`listener.cases.sending`,
the guard approval ran: length, @mentions, a target that mentions the brand,
not twice to the same post); any violation raises :class:`PolicyViolation`
and nothing is sent.

:meth:`XReplyChannel.find_existing` is the crash-recovery half: it reads the
brand account's recent posts (newer than the answered post) and returns the
id of a reply to the same post with the same text.  X's timelines can lag a
few seconds behind a post, so the outbox should not retry a ``sending`` row
immediately after a timeout.
"""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING, Any, ClassVar

import requests
import tweepy

from listener.cases.sending import Reply, Rules, violations
from listener.channels.base import OutboundMessage
from listener.collectors.x import api_detail, make_client, translate_error, utcnow
from listener.errors import PolicyViolation, SourceFailing

if TYPE_CHECKING:
    from listener.config import Settings, XSettings

USER_CREDENTIALS = ("consumer_key", "consumer_secret", "access_token", "access_token_secret")
CREDENTIALS = "user-context credentials"
FIND_PAGES = 3  #: pages of the brand's timeline find_existing reads (100 posts each)

_LEADING_MENTIONS = re.compile(r"^(?:\s*[@＠][A-Za-z0-9_]{1,15})+\s*")
_URL = re.compile(r"https?://\S+")


def normalize_text(text: str) -> str:
    """Text as compared for "same reply": X's reply prefix, t.co links, escaping ignored."""
    text = html.unescape(text)
    text = _LEADING_MENTIONS.sub("", text)
    text = _URL.sub("<url>", text)
    return " ".join(text.split()).casefold()


def is_same_reply(tweet: dict[str, Any], message: OutboundMessage) -> bool:
    """Whether ``tweet`` (from the brand's timeline) is ``message`` already posted."""
    refs = tweet.get("referenced_tweets") or []
    replies_to = {str(r.get("id")) for r in refs if r.get("type") == "replied_to"}
    if message.in_reply_to is not None and message.in_reply_to not in replies_to:
        return False
    return normalize_text(str(tweet.get("text", ""))) == normalize_text(message.text)


def policy_violations(message: OutboundMessage) -> list[str]:
    """Every sending rule ``message`` breaks (pure): :func:`listener.cases.sending.violations`,
    the guard approval and the outbox ran, on the inputs the message carries."""
    reply = Reply(
        text=message.text,
        channel="x_reply",
        author_handle=message.author_handle or message.recipient,
        recipient=message.recipient,
        in_reply_to=message.in_reply_to,
        target_text=message.target_text,
        already_replied=message.already_replied,
    )
    rules = Rules(
        brand_handles=tuple(message.brand_handles),
        brand_terms=tuple(message.brand_terms),
        allowed_domains=message.allowed_domains,
    )
    return violations(reply, rules)


class XReplyChannel:
    """Posts replies on X and finds ones already posted (see module docs)."""

    name: ClassVar[str] = "x"

    def __init__(self, x: XSettings, *, timeout: float = 20.0, user_agent: str | None = None):
        self.x = x
        self.timeout = timeout
        self.user_agent = user_agent
        self._client: tweepy.Client | None = None
        self._me: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> XReplyChannel:
        """The channel for ``settings.x``, with the polling timeout and User-Agent."""
        return cls(
            settings.x,
            timeout=settings.polling.timeout.total_seconds(),
            user_agent=settings.polling.user_agent,
        )

    # -- plumbing ---------------------------------------------------------

    def _api(self) -> tweepy.Client:
        if self._client is None:
            missing = [n for n in USER_CREDENTIALS if getattr(self.x, n) is None]
            if missing:
                keys = ", ".join(f"x.{n}" for n in missing)
                raise SourceFailing(f"cannot post on X: {keys} not set in config.yaml")
            self._client = make_client(
                self.x, timeout=self.timeout, user_agent=self.user_agent, user_context=True
            )
        return self._client

    def _call(self, what: str, fn: Any, *, posting: bool = False, **params: Any) -> dict[str, Any]:
        """One user-context request; tweepy/requests errors become Listener errors."""
        try:
            response: requests.Response = fn(user_auth=True, **params)
        except tweepy.Forbidden as exc:
            if not posting:
                raise translate_error(
                    exc, what=what, credentials=CREDENTIALS, now=utcnow()
                ) from exc
            raise self._forbidden(exc, what) from exc
        except (tweepy.TweepyException, requests.RequestException) as exc:
            raise translate_error(exc, what=what, credentials=CREDENTIALS, now=utcnow()) from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        return body if isinstance(body, dict) else {}

    @staticmethod
    def _forbidden(exc: tweepy.Forbidden, what: str) -> Exception:
        """403: missing write permission is the operator's; anything else is policy."""
        detail = api_detail(exc)
        if "permission" in detail.lower() or "oauth" in detail.lower():
            return SourceFailing(f"X refused {what} (403): {detail} — the app needs write access")
        return PolicyViolation(f"X refused {what} (403): {detail}")

    def _brand_user_id(self) -> str:
        if self._me is None:
            body = self._call("looking up the brand account", self._api().get_me)
            data = body.get("data") or {}
            if "id" not in data:
                raise SourceFailing("X did not say which account the credentials belong to")
            self._me = str(data["id"])
        return self._me

    # -- Channel ----------------------------------------------------------

    def send(self, message: OutboundMessage) -> str:
        """Post ``message`` as a reply; return the new post's id."""
        problems = policy_violations(message)
        if problems:
            raise PolicyViolation("; ".join(problems))
        try:
            body = self._call(
                f"the reply to {message.in_reply_to}",
                self._api().create_tweet,
                posting=True,
                text=message.text,
                in_reply_to_tweet_id=message.in_reply_to,
            )
        except PolicyViolation as exc:
            if "duplicate" in str(exc).lower():  # X's own dedupe: it already went out
                existing = self.find_existing(message)
                if existing is not None:
                    return existing
            raise
        data = body.get("data") or {}
        if "id" not in data:
            raise SourceFailing("X accepted the reply but returned no post id")
        return str(data["id"])

    def find_existing(self, message: OutboundMessage) -> str | None:
        """The id of ``message`` if the brand account already posted it, else ``None``."""
        client = self._api()
        user_id = self._brand_user_id()
        params: dict[str, Any] = {
            "id": user_id,
            "max_results": 100,
            "exclude": ["retweets"],
            "tweet_fields": ["referenced_tweets", "conversation_id", "created_at"],
        }
        if message.in_reply_to and message.in_reply_to.isdigit():
            params["since_id"] = message.in_reply_to  # a reply is newer than its target
        for _ in range(FIND_PAGES):
            body = self._call("reading the brand's recent posts", client.get_users_tweets, **params)
            for tweet in body.get("data") or []:
                if is_same_reply(tweet, message):
                    return str(tweet["id"])
            token = (body.get("meta") or {}).get("next_token")
            if not token:
                return None
            params["pagination_token"] = token
        return None
