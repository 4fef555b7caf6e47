"""Sending rules for automated replies: pure functions, no I/O.

X's automation rules allow automated replies only to people who engaged with
the account first, and forbid unsolicited automated @mentions.  Before a
reply is posted :func:`check_x_reply` lists every rule it breaks (an empty
list means it may be sent).  :func:`x_weighted_length` is X's own character
count (twitter-text v3): most Latin/Cyrillic/Greek text weighs 1 per code
point, CJK, emoji and most other symbols weigh 2, every URL counts 23.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from listener.matching import match_brand

X_MAX_WEIGHTED_LENGTH = 280
X_URL_LENGTH = 23  #: every URL counts as a t.co link of this length

#: twitter-text v3 code point ranges of weight 1 (everything else weighs 2)
_LIGHT_RANGES: tuple[tuple[int, int], ...] = (
    (0, 4351),  # Latin through Georgian (incl. Hangul Jamo start)
    (8192, 8205),  # spaces, zero-width characters
    (8208, 8223),  # dashes and quotation marks
    (8242, 8247),  # primes
)

_EMOJI_BASE = (
    "\U0001f000-\U0001faff"  # pictographs, emoticons, transport, supplemental symbols
    "\u2600-\u27bf"  # misc symbols, dingbats
    "\u2300-\u23ff\u2b00-\u2bff\u2190-\u21ff\u2934\u2935\u3030\u303d\u3297\u3299"
    "\u25aa-\u25fe\u2122\u2139\u203c\u2049\u24c2"
)
_EMOJI_TAIL = "[\ufe0f\U0001f3fb-\U0001f3ff]*"  # presentation selector, skin tones
#: one emoji as X counts it: ZWJ sequences, flags, keycaps, tag sequences are one unit
_EMOJI = re.compile(
    "[\U0001f1e6-\U0001f1ff]{2}"  # flags (regional indicator pairs)
    "|[0-9#*]\ufe0f?\u20e3"  # keycaps
    "|[\u00a9\u00ae]\ufe0f"  # ©️ ®️ only in emoji presentation
    f"|[{_EMOJI_BASE}]{_EMOJI_TAIL}(?:\u200d[{_EMOJI_BASE}]{_EMOJI_TAIL})*[\U000e0020-\U000e007f]*"
)

_TLDS = (
    "com|net|org|edu|gov|info|biz|io|co|app|dev|ai|me|tv|ly|gl|shop|store|online|site|"
    "uk|us|ca|au|de|fr|es|it|nl|be|ch|at|se|no|dk|fi|ie|pl|pt|br|mx|jp|cn|in|nz|eu"
)
#: URLs with a scheme, or bare domains with a common TLD (as twitter-text autolinks them)
_URL = re.compile(
    r"https?://[^\s<>\"]+"
    r"|(?<![@\w.\-/])(?:[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?\.)+(?:" + _TLDS + r")"
    r"(?![\w\-])(?::\d+)?(?:/[^\s<>\"]*)?",
    re.IGNORECASE,
)
_URL_TRAILING = ".,;:!?'\")]}"

#: an @mention as X links it (not inside e-mail addresses or words)
_MENTION = re.compile(r"(?<![A-Za-z0-9_!@#$%&*])[@＠]([A-Za-z0-9_]{1,15})(?![A-Za-z0-9_@＠])")
_INVALID_CHARS = frozenset("\ufffe\ufeff\uffff\u202a\u202b\u202c\u202d\u202e")


def _char_weight(ch: str) -> int:
    """1 for code points in the light ranges, else 2."""
    cp = ord(ch)
    return 1 if any(lo <= cp <= hi for lo, hi in _LIGHT_RANGES) else 2


def _url_spans(text: str) -> list[tuple[int, int]]:
    """Start/end of every URL, with trailing punctuation left out."""
    spans = []
    for m in _URL.finditer(text):
        start, end = m.span()
        while end > start and text[end - 1] in _URL_TRAILING:
            end -= 1
        spans.append((start, end))
    return spans


def x_weighted_length(text: str) -> int:
    """X's weighted length of ``text`` (twitter-text v3); a post may weigh up to 280."""
    text = unicodedata.normalize("NFC", text)
    urls = dict(_url_spans(text))
    total = 0
    i = 0
    while i < len(text):
        if i in urls:
            total += X_URL_LENGTH
            i = urls[i]
            continue
        emoji = _EMOJI.match(text, i)
        if emoji:
            total += 2
            i = emoji.end()
            continue
        total += _char_weight(text[i])
        i += 1
    return total


def mentioned_handles(text: str) -> list[str]:
    """The accounts ``text`` @mentions, lower-cased, in order, without '@'."""
    seen: dict[str, None] = {}
    for m in _MENTION.finditer(text):
        seen.setdefault(m.group(1).lower(), None)
    return list(seen)


def _own_handles(brand_terms: Iterable[str]) -> set[str]:
    return {t.strip().lstrip("@＠").lower() for t in brand_terms if t.strip().startswith("@")}


def x_text_violations(
    text: str, brand_terms: Sequence[str], *, author: str | None = None
) -> list[str]:
    """The rules the reply text alone breaks: empty, invalid characters, length, @mentions."""
    problems: list[str] = []
    if not text.strip():
        problems.append("the reply is empty")
    if any(ch in _INVALID_CHARS for ch in text):
        problems.append("the reply contains characters X rejects (BOM or direction overrides)")
    length = x_weighted_length(text)
    if length > X_MAX_WEIGHTED_LENGTH:
        problems.append(f"the reply is {length} characters as X counts them (at most 280)")
    allowed = _own_handles(brand_terms)
    if author:
        allowed.add(author.strip().lstrip("@").lower())
    others = [h for h in mentioned_handles(text) if h not in allowed]
    if others:
        names = ", ".join("@" + h for h in others)
        problems.append(f"the reply @mentions accounts other than the author ({names})")
    return problems


def check_x_reply(
    text: str,
    target_text: str,
    brand_terms: Sequence[str],
    already_replied: bool,
    *,
    author: str | None = None,
) -> list[str]:
    """Every X sending rule ``text`` breaks as a reply to ``target_text`` (empty: may send).

    ``brand_terms`` are the brand's match terms (name, keywords, handles with '@');
    ``author`` is the handle of the post's author, the one account the reply may
    @mention besides the brand's own handles.  Without it no other account may be
    mentioned.
    """
    problems = x_text_violations(text, brand_terms, author=author)
    if not match_brand(target_text, brand_terms):
        problems.append(
            "the post does not mention the brand: automated replies go only to posts "
            "that mention the brand or its handle"
        )
    if already_replied:
        problems.append("the brand already replied to this post")
    return problems


# ---------------------------------------------------------------------------
# the social channels' own rules, keyed by channel (used by the outbox guard)


def graphemes(text: str) -> int:
    """User-perceived characters (Unicode extended grapheme clusters): how Mastodon and
    Bluesky count a post's length ("👩‍👩‍👧" or "é" written as e + accent is one)."""
    import regex  # lazily: only the guard needs it

    return len(regex.findall(r"\X", unicodedata.normalize("NFC", text)))


_MASTODON_MENTION = re.compile(
    r"(?<![\w@/.])@([A-Za-z0-9_]+(?:[.\-]+[A-Za-z0-9_]+)*)(?:@([A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+))?",
)
_BLUESKY_MENTION = re.compile(
    r"(?<![\w@/.])@((?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]"
    r"(?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)"
)
_REDDIT_MENTION = re.compile(r"(?<![\w/])/?u/([A-Za-z0-9_\-]{3,20})(?![A-Za-z0-9_\-])")
MASTODON_URL_LENGTH = 23  #: Mastodon counts every URL as 23 characters


def mastodon_mentions(text: str) -> list[str]:
    """Accounts a Mastodon post notifies: ``user`` or ``user@domain``, lower-cased."""
    seen: dict[str, None] = {}
    for m in _MASTODON_MENTION.finditer(text):
        acct = m.group(1) + (f"@{m.group(2)}" if m.group(2) else "")
        seen.setdefault(acct.lower(), None)
    return list(seen)


def mastodon_length(text: str) -> int:
    """Mastodon's count: graphemes, every URL 23, ``@user@domain`` only as ``@user``."""
    text = _URL.sub("x" * MASTODON_URL_LENGTH, text)
    text = _MASTODON_MENTION.sub(lambda m: "@" + m.group(1), text)
    return graphemes(text)


def bluesky_mentions(text: str) -> list[str]:
    """Handles a Bluesky post names (``@alice.bsky.social``), lower-cased."""
    seen: dict[str, None] = {}
    for m in _BLUESKY_MENTION.finditer(text):
        seen.setdefault(m.group(1).lower().rstrip("."), None)
    return list(seen)


def reddit_mentions(text: str) -> list[str]:
    """Users a Reddit comment notifies (``u/name`` or ``/u/name``), lower-cased."""
    seen: dict[str, None] = {}
    for m in _REDDIT_MENTION.finditer(text):
        seen.setdefault(m.group(1).lower(), None)
    return list(seen)


def _same_mastodon_account(mention: str, handle: str) -> bool:
    """``user`` names ``user@any.host``; with both domains given they must agree."""
    m_user, _, m_host = mention.lower().lstrip("@").partition("@")
    a_user, _, a_host = handle.lower().lstrip("@").partition("@")
    return m_user == a_user and (not m_host or not a_host or m_host == a_host)


def _same_plain(mention: str, handle: str) -> bool:
    return mention.lower().lstrip("@") == handle.lower().lstrip("@")


@dataclass(frozen=True)
class ChannelRules:
    """One reply channel's sending rules (pure): how long a reply may be as the platform
    counts it, which accounts a text notifies, and how a reply addresses the author."""

    limit: int
    unit: str
    length: Callable[[str], int]
    mentions: Callable[[str], list[str]]
    same_account: Callable[[str, str], bool]
    address: Callable[[str], str]  #: the author's handle as the reply names them


def _at(handle: str) -> str:
    return "@" + handle.strip().lstrip("@") if handle.strip() else ""


CHANNEL_RULES: dict[str, ChannelRules] = {
    "mastodon_reply": ChannelRules(
        500, "characters", mastodon_length, mastodon_mentions, _same_mastodon_account, _at
    ),
    "bluesky_reply": ChannelRules(300, "graphemes", graphemes, bluesky_mentions, _same_plain, _at),
    "reddit_reply": ChannelRules(
        10_000, "characters", len, reddit_mentions, _same_plain, lambda h: f"u/{h.lstrip('@')}"
    ),
    "hn_comment": ChannelRules(
        4000, "characters", len, lambda _text: [], _same_plain, lambda h: h.lstrip("@")
    ),
}
BLUESKY_MAX_BYTES = 3000  #: app.bsky.feed.post text maxLength (UTF-8 bytes)


def channel_violations(
    channel: str,
    text: str,
    *,
    author: str | None,
    brand_handles: Sequence[str] = (),
    limit: int | None = None,
) -> list[str]:
    """The length and addressee rules of a social ``channel`` that ``text`` breaks.

    Empty for a channel without rules of its own here (X and the rest are checked by
    the generic guard).  ``limit`` overrides the channel's (an instance that allows
    longer posts); ``author`` is the handle of the post's author, the one account a
    reply may name besides the brand's own.
    """
    rules = CHANNEL_RULES.get(channel)
    if rules is None:
        return []
    problems: list[str] = []
    cap = limit if limit is not None else rules.limit
    length = rules.length(text)
    if length > cap:
        problems.append(f"the reply is {length} {rules.unit}; {channel} allows {cap}")
    if channel == "bluesky_reply" and len(text.encode("utf-8", "replace")) > BLUESKY_MAX_BYTES:
        problems.append(f"the reply is over {BLUESKY_MAX_BYTES} bytes (Bluesky's limit)")
    allowed = [h for h in (author, *brand_handles) if h]
    others = [h for h in rules.mentions(text) if not any(rules.same_account(h, a) for a in allowed)]
    if others:
        names = ", ".join(rules.address(h) for h in others)
        problems.append(f"unsolicited mentions (only the author may be named): {names}")
    return problems
