"""The sending rules: one guard, run identically at drafting, approval and send.

Pure: no I/O.  :func:`violations` lists every rule a reply breaks (empty: it
may go).  The same function, fed the same :class:`Reply` and :class:`Rules`,
answers for the case page's warnings, for ``listener templates check``, for
approval (:func:`listener.cases.actions.approve`), for the outbox right before
a channel is called, and inside the X channel itself — so a reply that passes
approval can be sent.

The addressee rules live here too: :func:`addressable` says whether an
author's handle can be @mentioned on a channel at all.  X reads ``@priya.s``
as a mention of the account ``priya`` and ``@joe @elonmusk`` as two
accounts, so an author whose stored handle is not a valid handle on the
channel is never addressed by @mention (drafting leaves the @ out), and any
@mention of such a spelling is refused as a mention of someone else.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from listener.matching import match_brand
from listener.policy import CHANNEL_RULES, channel_violations, mentioned_handles, x_weighted_length

if TYPE_CHECKING:
    from listener.config import Settings

#: channel → maximum length (X counts weighted characters; the social channels with rules of
#: their own in listener.policy.CHANNEL_RULES count as their platform does: graphemes…)
CHANNEL_LIMITS: dict[str, int] = {
    "x_reply": 280,
    "blog_comment": 4000,
    "email": 20000,
    "dm": 10000,
    **{name: rules.limit for name, rules in CHANNEL_RULES.items()},
}
#: channels where an X-style @mention notifies an account (only the author and the brand may
#: be); Mastodon, Bluesky, Reddit and HN mentions are checked by their own CHANNEL_RULES
MENTION_CHANNELS: frozenset[str] = frozenset({"x_reply", "dm", "blog_comment"})
#: a handle the channel can @mention (X's rule by default: 1-15 letters, digits, "_")
HANDLE_PATTERNS: dict[str, re.Pattern[str]] = {
    "x_reply": re.compile(r"[A-Za-z0-9_]{1,15}"),
    "mastodon_reply": re.compile(r"[A-Za-z0-9_]{1,30}(?:@[A-Za-z0-9.\-]{1,253})?"),
}
_DEFAULT_HANDLE = re.compile(r"[A-Za-z0-9_]{1,15}")
#: characters X refuses in a post (byte-order mark, direction overrides)
_X_INVALID = frozenset("\ufffe\ufeff\uffff\u202a\u202b\u202c\u202d\u202e")

_LINK = re.compile(
    r"(?:https?://|www\.)[^\s<>\"')\]]+"
    r"|(?<![@\w.\-/])(?:[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?\.)+(?:com|net|org|io|co|shop|store|"
    r"example|info|biz|app|uk|us|ca|de|fr|eu)(?![\w\-])(?:/[^\s<>\"]*)?",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Reply:
    """What the rules look at: the reply and where it goes."""

    text: str
    channel: str
    author_handle: str | None = None  #: the addressee as stored (``priya.s``, ``@sam``)
    recipient: str | None = None  #: where it is delivered (an e-mail address for email)
    in_reply_to: str | None = None  #: the answered post's id on the platform
    target_text: str | None = None  #: the answered post's text (None: not known here)
    target_url: str | None = None  #: the answered post's URL (found again on another instance)
    already_replied: bool = False  #: another live outbox message answers the same post


@dataclass(frozen=True)
class Rules:
    """The brand's side of the rules (from settings, or carried by an outbound message)."""

    brand_handles: tuple[str, ...] = ()
    brand_terms: tuple[str, ...] = ()
    #: the brand's site and allowlist; None: links were already checked by the caller
    allowed_domains: tuple[str, ...] | None = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> Rules:
        return cls(
            brand_handles=tuple(settings.brand.handles),
            brand_terms=tuple(settings.brand.match_terms),
            allowed_domains=tuple(allowed_domains(settings)),
        )


def channel_limit(channel: str) -> int | None:
    return CHANNEL_LIMITS.get(channel)


def length_on(channel: str, text: str) -> int:
    """``text``'s length as ``channel``'s platform counts it (X: weighted characters)."""
    if channel == "x_reply":
        return x_weighted_length(text)
    rules = CHANNEL_RULES.get(channel)
    return rules.length(text) if rules else len(text)


def fits_channel(channel: str, text: str) -> bool:
    """Whether ``text`` is within the channel's length as the platform counts it."""
    limit = CHANNEL_LIMITS.get(channel)
    return limit is None or length_on(channel, text) <= limit


def addressable(channel: str, handle: str | None) -> str | None:
    """The author's handle as an @mention on ``channel`` (without '@'), or None when the
    stored handle is not one the channel can mention (``priya.s`` or ``joe @elonmusk`` on X)."""
    if not handle:
        return None
    bare = handle.strip().lstrip("@＠")
    pattern = HANDLE_PATTERNS.get(channel, _DEFAULT_HANDLE)
    return bare if pattern.fullmatch(bare) else None


def address(channel: str, handle: str) -> str:
    """How a draft on ``channel`` names the author: ``@sam`` on X (nothing when X cannot
    @mention the stored handle), ``u/sam`` on Reddit, the plain handle on a blog."""
    rules = CHANNEL_RULES.get(channel)
    if rules is not None:
        return rules.address(handle) if handle.strip() else ""
    if channel in ("x_reply", "dm"):
        mentionable = addressable(channel, handle)
        return "@" + mentionable if mentionable else ""
    return handle


def links_in(text: str) -> list[str]:
    """Every link (with or without scheme) in ``text``."""
    return [m.group(0).rstrip(".,;:!?") for m in _LINK.finditer(text)]


def host_of(link: str) -> str:
    if not re.match(r"^[a-z]+://", link, re.IGNORECASE):
        link = "https://" + link
    return (urlsplit(link).hostname or "").lower().removeprefix("www.")


def _allowed_host(host: str, allowed: Sequence[str]) -> bool:
    return any(host == a or host.endswith("." + a) for a in allowed)


def allowed_domains(settings: Settings) -> list[str]:
    """The brand's website plus ``recovery.allowed_links``."""
    domains = list(settings.recovery.allowed_links)
    if settings.brand.website:
        domains.append(host_of(settings.brand.website))
    return [host_of(d) if "/" in d else d.lower().removeprefix("www.") for d in domains]


def violations(reply: Reply, rules: Rules) -> list[str]:
    """Every sending rule ``reply`` breaks (empty: it may go).

    Not empty; within the channel's length (X: weighted, the @handle
    included); links only to the brand's site and the allowlist; no @mentions
    but the author's (when the channel can address them) and the brand's own;
    never twice to the same post; on X, only replies, no characters X refuses,
    and only to posts that mention the brand; e-mail needs an address.
    """
    text, channel = reply.text, reply.channel
    problems: list[str] = []
    if not text.strip():
        problems.append("the reply is empty")
    limit = CHANNEL_LIMITS.get(channel)
    if channel == "x_reply":
        length = length_on(channel, text)
        if limit is not None and length > limit:
            problems.append(
                f"the reply is {length} characters as X counts them (weighted characters: "
                f"links 23, emoji and CJK 2); {channel} allows {limit}"
            )
        if any(ch in _X_INVALID for ch in text):
            problems.append("the reply contains characters X rejects (BOM or direction overrides)")
        if not reply.in_reply_to:
            problems.append("only replies are sent automatically on X (in_reply_to is missing)")
    elif channel in CHANNEL_RULES:  # length and mentions as that platform counts them
        problems += channel_violations(
            channel, text, author=reply.author_handle, brand_handles=rules.brand_handles
        )
    elif limit is not None and len(text) > limit:
        problems.append(f"the reply is {len(text)} characters; {channel} allows {limit}")
    if rules.allowed_domains is not None:
        allowed = [d.lower().removeprefix("www.") for d in rules.allowed_domains if d]
        bad = sorted({link for link in links_in(text) if not _allowed_host(host_of(link), allowed)})
        if bad:
            problems.append(f"links outside the brand's site and allowlist: {', '.join(bad)}")
    if channel in MENTION_CHANNELS:
        ok = {h.strip().lstrip("@＠").lower() for h in rules.brand_handles}
        ok |= {t.strip().lstrip("@＠").lower() for t in rules.brand_terms if t.startswith("@")}
        author = addressable(channel, reply.author_handle)
        if author:
            ok.add(author.lower())
        others = [h for h in mentioned_handles(text) if h not in ok]
        if others:
            names = ", ".join("@" + h for h in others)
            why = "unsolicited @mentions (only the author may be mentioned)"
            if reply.author_handle and author is None:
                why += f"; the author's handle {reply.author_handle!r} cannot be @mentioned"
            problems.append(f"{why}: {names}")
    if channel == "x_reply" and reply.target_text is not None:
        terms = [*rules.brand_terms, *("@" + h.lstrip("@") for h in rules.brand_handles)]
        if not match_brand(reply.target_text, terms):
            problems.append(
                "the post does not mention the brand: automated replies go only to posts "
                "that mention the brand or its handle"
            )
    if reply.already_replied:
        problems.append("we already replied to this post")
    if channel == "email" and not (reply.recipient or "").strip():
        problems.append("no email address is known for this customer")
    return problems
