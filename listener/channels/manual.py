"""The "manual" channel: replies a person posts by hand (blog comments, some DMs).

Listener cannot post a comment on someone else's blog, so an approved blog
reply waits in the outbox until an agent posts it and records that with
``listener.cases.actions.mark_sent`` (optionally with the comment's URL).
The outbox never sends on this channel by itself; :meth:`send` refuses, as a
safety net.
"""

from __future__ import annotations

from typing import ClassVar

from listener.channels.base import OutboundMessage
from listener.errors import DeliveryError


class ManualChannel:
    """A channel whose messages a person posts; Listener only records them."""

    name: ClassVar[str] = "manual"
    manual: ClassVar[bool] = True

    def send(self, message: OutboundMessage) -> str:
        """Never posts: a person must (then marks the case sent)."""
        raise DeliveryError(
            f"{message.channel} replies are posted by a person: post it, then mark it sent",
            retryable=False,
        )

    def find_existing(self, message: OutboundMessage) -> str | None:
        """Nothing to look up: manual posts are recorded by the person who made them."""
        return None
