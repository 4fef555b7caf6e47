"""Outbound channels: where approved replies are posted (X, …).

Every channel implements :class:`~listener.channels.base.Channel`; the outbox
drives it (record intent → ``find_existing`` when a previous attempt may have
gone out → ``send`` → record the returned id).
"""

from __future__ import annotations

from listener.channels.base import Channel, OutboundMessage

__all__ = ["Channel", "OutboundMessage"]
