"""Reply channel name → the :class:`~listener.channels.base.Channel` that sends it.

Draft channels (``x_reply``, ``email``, ``blog_comment``, ``dm``,
``mastodon_reply``) map onto transports:

=================  ===========================================
``x_reply``        :class:`listener.channels.x.XReplyChannel`
``email``          :class:`listener.channels.email.EmailChannel`
``blog_comment``   :class:`listener.channels.manual.ManualChannel`
``dm``             manual (no automated DMs)
``mastodon_reply`` :class:`listener.channels.mastodon.MastodonReplyChannel`
``bluesky_reply``  :class:`listener.channels.bluesky.BlueskyReplyChannel`
``reddit_reply``   :class:`listener.channels.reddit.RedditReplyChannel`
``hn_comment``     manual (Hacker News has no API for posting)
=================  ===========================================

Channel classes are imported on first use (tweepy is not needed to send email).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from listener.channels.base import OutboundMessage
from listener.errors import ConfigError

if TYPE_CHECKING:
    from listener.channels.base import Channel
    from listener.config import Settings

#: draft channel → "module:Class"
CHANNELS: dict[str, str] = {
    "x_reply": "listener.channels.x:XReplyChannel",
    "email": "listener.channels.email:EmailChannel",
    "blog_comment": "listener.channels.manual:ManualChannel",
    "dm": "listener.channels.manual:ManualChannel",
    "mastodon_reply": "listener.channels.mastodon:MastodonReplyChannel",
    "bluesky_reply": "listener.channels.bluesky:BlueskyReplyChannel",
    "reddit_reply": "listener.channels.reddit:RedditReplyChannel",
    "hn_comment": "listener.channels.manual:ManualChannel",
    "manual": "listener.channels.manual:ManualChannel",
}
MANUAL_CHANNELS: frozenset[str] = frozenset(
    name for name, target in CHANNELS.items() if target.endswith(":ManualChannel")
)


@dataclass(frozen=True)
class Outbound(OutboundMessage):
    """An :class:`OutboundMessage` with what mail and the audit trail need as well."""

    subject: str | None = None
    case_id: int | None = None
    outbox_id: int | None = None
    target_url: str | None = None  #: the answered post's URL (found again on another instance)
    created_at: datetime | None = None  #: when the reply was approved (stable per message)


def is_manual(channel: str) -> bool:
    """Whether replies on ``channel`` are posted by a person, not by the outbox."""
    return channel in MANUAL_CHANNELS or channel not in CHANNELS


def channel_class(channel: str) -> Any:
    target = CHANNELS.get(channel)
    if target is None:
        raise ConfigError(f"no sending channel for {channel!r} (one of: {', '.join(CHANNELS)})")
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def _secret(value: Any) -> str:
    return value.get_secret_value() if value is not None else ""


def credentials_set(channel: str, settings: Settings) -> bool:
    """Whether the brand's account on ``channel``'s platform is configured (the channel
    may still refuse them; this only says whether they are there at all)."""
    if channel == "x_reply":
        x = settings.x
        return all(
            _secret(getattr(x, n))
            for n in ("consumer_key", "consumer_secret", "access_token", "access_token_secret")
        )
    if channel == "email":
        return bool(settings.email.host)
    if channel == "mastodon_reply":
        return bool(settings.mastodon.base_url and _secret(settings.mastodon.access_token))
    if channel == "bluesky_reply":
        return bool(_secret(settings.bluesky.app_password))
    if channel == "reddit_reply":
        r = settings.reddit
        return bool(_secret(r.client_id) and (_secret(r.refresh_token) or _secret(r.password)))
    return True


def uses_local_outbox(channel: str, settings: Settings) -> bool:
    """Whether replies on ``channel`` go to the local outbox file (``recovery.local_outbox``
    and no credentials for the platform); manual channels never do."""
    return (
        settings.recovery.local_outbox
        and not is_manual(channel)
        and not credentials_set(channel, settings)
    )


def get_channel(channel: str, settings: Settings) -> Channel:
    """A ready channel instance for draft channel ``channel`` (the local outbox file when
    :func:`uses_local_outbox`)."""
    if uses_local_outbox(channel, settings):
        from listener.channels.local import FILENAME, LocalOutboxChannel

        return LocalOutboxChannel(settings.data_dir() / FILENAME, channel)
    cls = channel_class(channel)
    if channel == "x_reply":
        return cls(  # type: ignore[no-any-return]
            settings.x,
            timeout=settings.polling.timeout.total_seconds(),
            user_agent=settings.polling.user_agent,
        )
    if channel == "email":
        return cls(settings.email, brand_name=settings.brand.name)  # type: ignore[no-any-return]
    if hasattr(cls, "from_settings"):
        return cls.from_settings(settings)  # type: ignore[no-any-return]
    return cls()  # type: ignore[no-any-return]
