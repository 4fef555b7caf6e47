"""``type: jsonl`` — a local file of social posts, one JSON object per line.

Each line needs ``id``, ``text``, ``author`` and ``created_at``.  ``author``
is a handle string or an object (``handle``/``username``, ``name``,
``followers``, ``verified``, ``email``, ``url``).  Optional: ``url``, ``lang``,
``platform``, ``conversation_id``, ``in_reply_to``, ``kind``.

Files are treated as append-only logs: the poll state remembers the byte
offset read so far (and a hash of those bytes), so a grown file is read from
where the last poll stopped and an unchanged one costs nothing.  A file that
shrank, was replaced or was edited before the offset is read again from the
start: stored mentions are deduplicated by id, and edited posts update their
mention.
Malformed lines are skipped and reported as source problems.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from listener.collectors.base import (
    Author,
    CollectContext,
    CollectResult,
    PollState,
    Post,
)
from listener.config import SourceSettings
from listener.errors import SourceFailing
from listener.matching import match_brand

MAX_PROBLEMS = 20


def parse_timestamp(value: object) -> datetime:
    """ISO 8601 (``Z`` allowed) or Unix seconds → aware UTC datetime."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), UTC)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"invalid created_at {value!r}")
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def parse_author(value: object, platform: str) -> Author:
    if isinstance(value, str) and value.strip():
        return Author(handle=value.strip().lstrip("@"))
    if isinstance(value, dict):
        handle = value.get("handle") or value.get("username") or value.get("screen_name")
        if not isinstance(handle, str) or not handle.strip():
            raise ValueError("author needs a handle or username")
        followers = value.get("followers", value.get("followers_count"))
        return Author(
            handle=handle.strip().lstrip("@"),
            display_name=value.get("name") or value.get("display_name"),
            external_id=str(value["id"]) if value.get("id") is not None else None,
            followers=int(followers) if isinstance(followers, int | float) else None,
            verified=bool(value.get("verified", False)),
            url=value.get("url"),
            email=value.get("email"),
        )
    raise ValueError("author must be a handle or an object")


def parse_line(
    obj: Any,
    source: SourceSettings,
    terms: list[str],
    exclusions: list[str],
    tag_terms: list[str] | None = None,
) -> Post | None:
    """One JSON object → a Post, or None when it does not mention the brand."""
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    missing = [k for k in ("id", "text", "author", "created_at") if obj.get(k) in (None, "")]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    text = str(obj["text"])
    platform = str(obj.get("platform") or source.options.get("platform") or "social")
    author = parse_author(obj["author"], platform)
    matched: tuple[str, ...] = ()
    if not source.match_all:
        m = match_brand(text, terms, exclusions, tag_terms=tag_terms or ())
        if not m:
            return None
        matched = m.matched
    return Post(
        external_id=str(obj["id"]),
        text=text,
        full_text=text,
        author=author,
        published_at=parse_timestamp(obj["created_at"]),
        url=obj.get("url"),
        lang=obj.get("lang"),
        conversation_id=str(obj["conversation_id"]) if obj.get("conversation_id") else None,
        in_reply_to_id=str(obj["in_reply_to"]) if obj.get("in_reply_to") else None,
        kind=str(obj.get("kind") or ("reply" if obj.get("in_reply_to") else "post")),
        matched_keywords=list(matched),
        raw={**obj, "platform": platform},
    )


class JsonlCollector:
    """Reads new lines of a local JSONL file of posts."""

    needs: ClassVar[tuple[str, ...]] = ("path",)

    def collect(
        self, source: SourceSettings, state: PollState, ctx: CollectContext
    ) -> CollectResult:
        assert source.path is not None
        path: Path = ctx.settings.resolve_path(source.path)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise SourceFailing(f"file not found: {path}") from None
        except OSError as exc:
            raise SourceFailing(f"cannot read {path}: {exc.strerror}") from None
        cursor = dict(state.cursor)
        fingerprint = f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size}"
        if cursor.get("fingerprint") == fingerprint:
            return CollectResult(posts=[], state=state, not_modified=True)
        offset = int(cursor.get("offset", 0))
        with open(path, "rb") as fh:
            prefix = fh.read(offset) if offset else b""
            if (
                cursor.get("inode") != st.st_ino
                or len(prefix) < offset
                or hashlib.sha256(prefix).hexdigest() != cursor.get("prefix_sha256")
            ):
                offset = 0  # replaced, truncated or edited: read it all again
                fh.seek(0)
            data = fh.read()
        posts: list[Post] = []
        problems: list[str] = []
        lines = 0
        brand = ctx.settings.brand
        terms, exclusions = brand.match_terms, brand.exclusions
        # only complete lines; a half-written last line is read next time
        end = data.rfind(b"\n") + 1 if not data.endswith(b"\n") else len(data)
        chunk = data[:end]
        line_no = chunk_start_line = int(cursor.get("lines", 0)) if offset else 0
        for raw_line in chunk.splitlines():
            line_no += 1
            lines += 1
            if not raw_line.strip():
                continue
            try:
                obj = json.loads(raw_line)
                post = parse_line(obj, source, terms, exclusions, brand.tag_terms)
            except (ValueError, TypeError) as exc:
                if len(problems) < MAX_PROBLEMS:
                    problems.append(f"line {line_no}: {exc}")
                continue
            if post is not None:
                posts.append(post)
        new_offset = offset + end
        prefix_hash = hashlib.sha256((prefix if offset else b"") + chunk).hexdigest()
        new_state = PollState(
            url=state.url,
            etag=state.etag,
            last_modified=state.last_modified,
            since_id=state.since_id,
            cursor={
                "offset": new_offset,
                "inode": st.st_ino,
                "prefix_sha256": prefix_hash,
                "lines": chunk_start_line + lines,
                # only a file read to its end is "unchanged" next time
                "fingerprint": fingerprint if new_offset == st.st_size else None,
            },
        )
        return CollectResult(
            posts=posts,
            state=new_state,
            problems=problems,
            stats={"lines": lines, "bytes": end, "matched": len(posts)},
        )
