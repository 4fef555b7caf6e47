"""Every collected post passes here before it is classified and stored.

:func:`clean_posts` is the one gate between collectors and the database, so a
collector added later gets it for free.  For each post it either returns a
post that can be stored or a :class:`~listener.collectors.base.Rejected`
(the pipeline quarantines it with the source's new state):

* **refused** (quarantined, stage ``clean``): no id; a lone surrogate
  (``"\\ud800"`` in JSON, ``\\ud83d`` cut from an emoji by an API) or a feed's
  character reference to no character (``&#xD800;``) in any field, raw payload
  included — UTF-8 cannot encode them and both databases refuse them; JSON
  nested deeper than ``limits.max_json_depth``; a date before 1970; text
  longer than ``limits.max_text_chars`` when ``limits.oversize`` is
  ``quarantine``;
* **cleaned**: control characters removed from every string (PostgreSQL
  refuses NUL); NaN and infinities in the raw payload made null (PostgreSQL's
  JSON refuses them); text longer than ``limits.max_text_chars`` cut (the mention is
  flagged ``truncated``); a raw payload larger than ``limits.max_post_bytes``
  cut down; strings cut to their columns, over-long ids hashed, follower
  counts clamped; a date later than now + ``limits.future_slack`` set to now.

Pure functions (the clock is passed in): no I/O.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import fields, is_dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from listener import models as m
from listener.collectors.base import Post, Rejected
from listener.text import excerpt, nesting_depth, scrub_json, unstorable_char

if TYPE_CHECKING:
    from listener.config import LimitsSettings

T = TypeVar("T")

#: Posts dated before this are refused (no social or blog post is older; a 0 or a
#: negative timestamp is a bug or an attack, and date arithmetic near year 1 overflows).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
#: Longest string kept in a raw payload that is over ``limits.max_post_bytes``.
RAW_STRING_CHARS = 1000


class Unstorable(ValueError):
    """A post that cannot be stored as it is; ``str()`` says why, in one line."""


def _column_length(table: Any, name: str) -> int:
    return int(table.c[name].type.length)


#: Post and Author fields stored in length-limited columns (PostgreSQL enforces the limits).
_POST_LIMITS = {
    name: _column_length(m.Mention.__table__, name)
    for name in ("lang", "conversation_id", "in_reply_to_id", "kind")
}
_AUTHOR_LIMITS = {
    name: _column_length(m.Author.__table__, name)
    for name in ("handle", "display_name", "external_id", "email")
}
_ID_LIMIT = _column_length(m.Mention.__table__, "external_id")
_INT_MAX = 2**31 - 1  # followers is an INTEGER column


def clean_posts(
    posts: Sequence[Post], limits: LimitsSettings, now: datetime
) -> tuple[list[Post], list[Rejected]]:
    """The storable posts (one per external id: the last copy wins) and the refused ones."""
    by_id: dict[str, Post] = {}
    rejected: list[Rejected] = []
    for post in posts:
        try:
            cleaned = clean_post(post, limits, now)
        except Unstorable as exc:
            rejected.append(reject(post, str(exc), "clean"))
            continue
        by_id[cleaned.external_id] = cleaned
    return list(by_id.values()), rejected


def reject(post: Post, reason: str, stage: str) -> Rejected:
    """A quarantine record for ``post`` (id and excerpt made storable)."""
    ident = post.external_id if isinstance(post.external_id, str) else str(post.external_id)
    return Rejected(
        reason=reason,
        external_id=excerpt(ident, _ID_LIMIT) or None,
        excerpt=excerpt(post.full_text or post.text or post.title or ""),
        stage=stage,
    )


def clean_post(post: Post, limits: LimitsSettings, now: datetime) -> Post:
    """``post`` made storable, or :class:`Unstorable` saying why it cannot be."""
    if not isinstance(post.external_id, str) or not post.external_id.strip():
        raise Unstorable("the post has no id")
    depth = nesting_depth(post.raw, limits.max_json_depth)
    if depth > limits.max_json_depth:
        raise Unstorable(
            f"raw payload nested deeper than limits.max_json_depth ({limits.max_json_depth})"
        )
    for where, value in _strings(post):
        why = unstorable_char(value)
        if why is not None:
            raise Unstorable(f"{excerpt(where, 80)} contains {why}")
    post = _scrubbed(post)
    post = _finite(post)
    post = _bounded(post, limits)
    post = _fitted(post)
    return _dated(post, limits, now)


def _strings(obj: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """(field path, string) for every string a post carries, raw payload and keys included."""
    queue: deque[tuple[str, Any]] = deque([(where, obj)])  # breadth first: "text" before "raw"
    while queue:
        path, node = queue.popleft()
        if isinstance(node, str):
            yield path or "value", node
        elif is_dataclass(node) and not isinstance(node, type):
            for f in fields(node):
                queue.append((f"{path}.{f.name}" if path else f.name, getattr(node, f.name)))
        elif isinstance(node, dict):
            for key, value in node.items():
                if isinstance(key, str):
                    yield f"{path} key", key
                queue.append((f"{path}.{key}" if isinstance(key, str) else path, value))
        elif isinstance(node, list | tuple):
            queue.extend((f"{path}[{i}]", v) for i, v in enumerate(node))


def _scrubbed(obj: T) -> T:
    """A post (or its author) with control characters removed from every string it carries.

    Mention text is hostile input, and a NUL would make PostgreSQL refuse the
    whole source.
    """
    changes: dict[str, Any] = {}
    for f in fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        if is_dataclass(value):
            new = _scrubbed(value)
        elif isinstance(value, str | list | dict):
            new = scrub_json(value)
        else:
            continue
        if new is not value and new != value:
            changes[f.name] = new
    return replace(obj, **changes) if changes else obj  # type: ignore[type-var]


def _finite(post: Post) -> Post:
    """NaN and ±Infinity in the raw payload (Python's JSON reader accepts them, JSON and
    PostgreSQL do not) become null."""
    if not _has_non_finite(post.raw):
        return post
    return replace(post, raw=_without_non_finite(post.raw))


def _has_non_finite(value: Any) -> bool:
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            return True
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list | tuple):
            stack.extend(node)
    return False


def _without_non_finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _without_non_finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_non_finite(v) for v in value]
    return value


def _bounded(post: Post, limits: LimitsSettings) -> Post:
    """Text cut to ``max_text_chars`` (flagged) or refused; the raw payload cut down."""
    longest = limits.max_text_chars
    changes: dict[str, Any] = {}
    for name in ("text", "full_text", "title"):
        value = getattr(post, name)
        if isinstance(value, str) and len(value) > longest:
            if limits.oversize == "quarantine":
                raise Unstorable(
                    f"{name} has {len(value):,} characters, more than "
                    f"limits.max_text_chars ({longest:,})"
                )
            changes[name] = value[:longest]
    if changes:
        changes["truncated"] = True
    raw = post.raw
    if _json_size(raw) > limits.max_post_bytes:
        raw = _shrunk(raw)
        if _json_size(raw) > limits.max_post_bytes:
            raw = {"truncated": True}
        changes["raw"] = raw
    return replace(post, **changes) if changes else post


def _json_size(value: Any) -> int:
    try:
        return len(json.dumps(value, ensure_ascii=False, default=str).encode("utf-8"))
    except (TypeError, ValueError):  # not JSON at all: treat as too big, it gets replaced
        return 1 << 62


def _shrunk(value: Any, depth: int = 0) -> Any:
    """``value`` with every string cut to :data:`RAW_STRING_CHARS` and lists to 100 items
    (the depth is already bounded by the caller's check)."""
    if isinstance(value, str):
        return value[:RAW_STRING_CHARS]
    if isinstance(value, dict):
        shrunk = {str(k)[:200]: _shrunk(v, depth + 1) for k, v in list(value.items())[:200]}
        if depth == 0:
            shrunk["truncated"] = True
        return shrunk
    if isinstance(value, list | tuple):
        return [_shrunk(v, depth + 1) for v in list(value)[:100]]
    return value if value is None or isinstance(value, bool | int | float) else str(value)


def _fitted(post: Post) -> Post:
    """The post with every string cut to its column; an id too long is hashed instead
    (the same way the feed collector does it, so the id stays stable and unique)."""
    changes: dict[str, Any] = {
        name: value[:limit]
        for name, limit in _POST_LIMITS.items()
        if isinstance(value := getattr(post, name), str) and len(value) > limit
    }
    if len(post.external_id) > _ID_LIMIT:
        digest = hashlib.sha256(post.external_id.encode("utf-8", "replace")).hexdigest()
        changes["external_id"] = f"sha256:{digest}"
    author: dict[str, Any] = {}
    for name in ("handle", "display_name", "external_id", "url", "email"):
        value = getattr(post.author, name)
        if value is not None and not isinstance(value, str):  # e.g. a number in JSON
            value = author[name] = str(value)
        limit = _AUTHOR_LIMITS.get(name)
        if limit is not None and value is not None and len(value) > limit:
            author[name] = value[:limit]
    followers = post.author.followers
    if followers is not None and not isinstance(followers, int):
        author["followers"] = None
    elif followers is not None and not 0 <= followers <= _INT_MAX:
        author["followers"] = min(max(followers, 0), _INT_MAX)
    if author:
        changes["author"] = replace(post.author, **author)
    return replace(post, **changes) if changes else post


def _dated(post: Post, limits: LimitsSettings, now: datetime) -> Post:
    """A date before 1970 refused; one later than now + ``future_slack`` set to now."""
    when = post.published_at
    if not isinstance(when, datetime):
        raise Unstorable(f"published date {excerpt(when, 60)} is not a date")
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if when < EARLIEST:
        raise Unstorable(f"published date {when.date().isoformat()} is before 1970")
    if when > now + limits.future_slack:
        when = now
    return replace(post, published_at=when) if when is not post.published_at else post
