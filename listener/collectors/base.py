"""The one Protocol every collector implements, and the data it returns.

A collector is I/O only: given a source's settings and its stored poll state
it fetches what is new and returns :class:`Post` objects plus the poll state
to store *with* them.  It never touches the database; the pipeline
(:mod:`listener.pipeline`) stores posts and state in one transaction, so a
crash mid-poll loses nothing and duplicates nothing.

Errors are raised as :class:`listener.errors.CollectorError` subclasses
(``TransientError``, ``RateLimited``, ``SourceFailing``, ``SourceGone``); the
pipeline records them on the source and schedules the next check.  One bad
*item* is not an error: a collector returns it as a :class:`Rejected` (the
pipeline quarantines it) and goes on with the rest.  Collectors need not clean
text: every post passes through :mod:`listener.cleaning` before it is stored.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    from listener.config import Settings, SourceSettings


@dataclass
class PollState:
    """Per-source scheduling state kept in the ``sources`` table."""

    url: str | None = None  #: current URL (updated by permanent redirects)
    etag: str | None = None
    last_modified: str | None = None
    since_id: str | None = None
    cursor: dict[str, Any] = field(default_factory=dict)  #: collector-specific extras


@dataclass
class Author:
    handle: str  #: username / handle / blog author name (without '@')
    display_name: str | None = None
    external_id: str | None = None
    followers: int | None = None
    verified: bool = False
    url: str | None = None
    email: str | None = None


@dataclass
class Post:
    """One post, comment or entry that mentions the brand."""

    external_id: str  #: unique within the source (guid, tweet id, …)
    text: str  #: the passage to classify (sentences around the brand mention)
    author: Author
    published_at: datetime  #: timezone-aware UTC
    full_text: str | None = None  #: the whole post when ``text`` is a passage
    title: str | None = None
    url: str | None = None
    lang: str | None = None
    conversation_id: str | None = None
    in_reply_to_id: str | None = None
    kind: str = "post"  #: post, reply, quote, entry, comment
    matched_keywords: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)  #: JSON-serialisable original payload
    truncated: bool = False  #: text cut at ``limits.max_text_chars`` (set by the pipeline)
    detected_lang: str | None = None  #: set by the pipeline (listener.language), not collectors

    @property
    def content_hash(self) -> str:
        """Changes when the visible content changes (an edited entry)."""
        h = hashlib.sha256()
        for part in (self.title or "", self.full_text or self.text):
            h.update(part.encode("utf-8", "surrogatepass"))
            h.update(b"\x00")
        return h.hexdigest()[:32]


@dataclass
class Rejected:
    """An item a collector could not turn into a :class:`Post` (unparsable JSON, a
    date out of range, nesting too deep…).  The pipeline keeps it in quarantine
    with the source's new state, so nothing is dropped silently and the rest of
    the batch goes on."""

    reason: str  #: one line, for an operator
    external_id: str | None = None  #: the item's id, when it could be read
    excerpt: str = ""  #: the start of the item (the pipeline bounds and escapes it)
    stage: str = "parse"  #: parse | clean | classify | store


@dataclass
class CollectResult:
    """What one poll of one source produced."""

    posts: list[Post]
    state: PollState  #: stored in the same transaction as ``posts``
    not_modified: bool = False  #: 304 / unchanged file: nothing was parsed
    problems: list[str] = field(default_factory=list)  #: non-fatal (bozo feed, skipped items)
    next_check_at: datetime | None = None  #: override the normal interval (e.g. rate limits)
    warning: str | None = None  #: health warning to show (e.g. request budget nearly spent)
    stats: dict[str, Any] = field(default_factory=dict)  #: entries seen, bytes, requests…
    rejected: list[Rejected] = field(default_factory=list)  #: items for the quarantine


@dataclass
class CollectContext:
    """What a collector may use besides its source: settings and shared clients."""

    settings: Settings
    shared: dict[str, Any] = field(default_factory=dict)  #: per-run shared clients/pools


class Collector(Protocol):
    """Fetches new posts for one source."""

    #: source settings fields of which at least one is required (e.g. ("url", "path"))
    needs: ClassVar[tuple[str, ...]]

    def collect(
        self, source: SourceSettings, state: PollState, ctx: CollectContext
    ) -> CollectResult:
        """Fetch what is new since ``state``. Raises CollectorError subclasses on failure."""
        ...
