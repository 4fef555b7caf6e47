"""The Protocol every outbound channel implements, and the message it sends.

Exactly-once delivery is the outbox's job, with the channel's help:

1. the outbox records the intent (``idempotency_key``, state ``pending``);
2. it marks the row ``sending`` and commits *before* calling :meth:`Channel.send`;
3. after ``send`` returns it records the external id (state ``sent``).

A crash (or a timeout, whose outcome is unknown) between 2 and 3 leaves the
row ``sending``.  Before any retry of such a row the outbox calls
:meth:`Channel.find_existing`; if it returns an id the message already went
out and is recorded as sent, otherwise ``send`` is tried again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Protocol, runtime_checkable


@dataclass(frozen=True)
class OutboundMessage:
    """One approved reply, as the outbox hands it to a channel."""

    idempotency_key: str  #: stable per reply (e.g. the draft id): the outbox's dedupe key
    channel: str  #: channel name, e.g. "x"
    text: str  #: the exact text to post
    in_reply_to: str | None  #: external id of the post being answered
    recipient: str | None = None  #: handle of that post's author (without '@')
    brand_handles: tuple[str, ...] = ()  #: the brand's own handles (with or without '@')
    target_text: str | None = None  #: the answered post's text, for the policy check
    brand_terms: tuple[str, ...] = field(default=())  #: brand match terms (name, keywords…)
    already_replied: bool = False  #: the brand already answered this post (outbox knows)
    #: the brand's site and allowlist for the links rule (None: the caller checked links)
    allowed_domains: tuple[str, ...] | None = None
    #: the answered post's author as stored (None: ``recipient``)
    author_handle: str | None = None


@runtime_checkable
class Channel(Protocol):
    """Posts messages somewhere and can tell whether one already went out."""

    name: ClassVar[str]

    def send(self, message: OutboundMessage) -> str:
        """Post ``message``; return the new external id.

        Raises :class:`~listener.errors.PolicyViolation` (never send it as is),
        :class:`~listener.errors.TransientError` / ``RateLimited`` (retry later —
        after :meth:`find_existing`, as the outcome may be unknown) or
        :class:`~listener.errors.SourceFailing` (credentials: a human must act).
        """
        ...

    def find_existing(self, message: OutboundMessage) -> str | None:
        """The external id of ``message`` if it was already posted, else ``None``."""
        ...
