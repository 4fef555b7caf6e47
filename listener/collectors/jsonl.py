"""``type: jsonl`` — a local file of social posts, one JSON object per line.

Each line needs ``id``, ``text``, ``author`` and ``created_at``.  ``author``
is a handle string or an object (``handle``/``username``, ``name``,
``followers``, ``verified``, ``email``, ``url``).  Optional: ``url``, ``lang``,
``platform``, ``conversation_id``, ``in_reply_to``, ``kind``.

Files are treated as append-only logs.  The poll state remembers the byte
offset read so far, the file's inode and a hash of the 4 KiB before the
offset, so a poll reads **only what was appended** (a 300 MB file that grew
by one line costs one line), and an unchanged file costs one ``stat``.  A
file that shrank below the offset (truncated), has another inode (rotated or
replaced) or whose bytes before the offset changed (edited) is read again
from the start, with a problem saying so: stored mentions are deduplicated by
id, and edited posts update their mention.

Bounds (``limits:``): lines are read in 64 KiB chunks; a line longer than
``max_post_bytes`` is skipped as it streams past (never held in memory) and
quarantined; a line nested deeper than ``max_json_depth`` is quarantined
before it is parsed; at most ``read_per_poll`` bytes are read per poll (the
next poll, due at once, goes on).  A line that is not JSON, misses a field or
has a date out of range is quarantined (and listed in the source's problems);
the other lines and the offset go on.  A half-written last line is read next
time.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar

from listener.clock import utcnow
from listener.collectors.base import (
    Author,
    CollectContext,
    CollectResult,
    PollState,
    Post,
    Rejected,
)
from listener.config import SourceSettings
from listener.errors import SourceFailing
from listener.matching import match_brand
from listener.text import excerpt, json_too_deep

if TYPE_CHECKING:
    from listener.config import LimitsSettings

MAX_PROBLEMS = 20


CHUNK = 64 * 1024
#: Bytes before the stored offset whose hash tells an appended file from an edited one.
TAIL = 4096
_ID_HINT = re.compile(rb'"id"\s*:\s*"?([^",}\s]{1,200})')


_TWITTER_DATE = re.compile(r"^[A-Z][a-z]{2} [A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2} [+-]\d{4} \d{4}$")
_RFC2822_DATE = re.compile(r"^(?:[A-Z][a-z]{2},\s*)?\d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}")


def parse_timestamp(value: object) -> datetime:
    """ISO 8601 (``Z`` allowed), an RFC 2822 date as Twitter's v1.1 API and e-mail
    write it (``Wed Nov 08 16:28:30 +0000 2017``, ``Wed, 08 Nov 2017 16:28:30 +0000``) or
    Unix seconds → aware UTC datetime.

    ValueError for anything else, a number out of range (``1e20``) included.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"created_at {value!r} is out of range") from None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"invalid created_at {value!r}")
    if _TWITTER_DATE.match(value.strip()):
        dt = datetime.strptime(value.strip(), "%a %b %d %H:%M:%S %z %Y")
        return dt.astimezone(UTC)
    if _RFC2822_DATE.match(value.strip()):
        try:
            dt = parsedate_to_datetime(value.strip())
        except (TypeError, ValueError):
            raise ValueError(f"invalid created_at {value!r}") from None
        return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)
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


def parse_raw_line(
    raw: bytes,
    line_no: int,
    source: SourceSettings,
    terms: list[str],
    exclusions: list[str],
    limits: LimitsSettings,
    tag_terms: list[str] | None = None,
) -> Post | Rejected | None:
    """One line's bytes → a Post, None (no brand mention), or a Rejected saying why not."""
    if json_too_deep(raw, limits.max_json_depth):
        return _rejected(
            raw,
            line_no,
            f"JSON nested deeper than limits.max_json_depth ({limits.max_json_depth})",
        )
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        return _rejected(raw, line_no, f"not JSON: {excerpt(str(exc), 120)}")
    try:
        return parse_line(obj, source, terms, exclusions, tag_terms)
    except Exception as exc:  # one bad line must not stop the others
        ident = obj.get("id") if isinstance(obj, dict) else None
        reason = str(exc) if isinstance(exc, ValueError | TypeError) else type(exc).__name__
        return _rejected(raw, line_no, reason, ident)


def _rejected(raw: bytes, line_no: int, reason: str, ident: Any = None) -> Rejected:
    if ident is None:
        hint = _ID_HINT.search(raw[:4096])
        ident = hint.group(1).decode("utf-8", "replace") if hint else None
    return Rejected(
        reason=f"line {line_no}: {reason}",
        external_id=excerpt(str(ident), 200) if ident not in (None, "") else None,
        excerpt=excerpt(raw[:1200]),
        stage="parse",
    )


@dataclass
class Line:
    """A complete line: its bytes (None when longer than the limit) and where it ends."""

    data: bytes | None
    size: int  #: bytes, newline excluded
    end: int  #: offset just after its newline
    head: bytes = b""  #: the first bytes of an over-long line


def read_lines(fh: IO[bytes], start: int, max_line: int, budget: int) -> Iterator[Line]:
    """Complete lines from ``start`` on, read in chunks, until ``budget`` bytes of lines
    were read or the file ends (a last line without a newline is left for later).

    Memory stays within about ``max_line`` + one chunk whatever the lines' sizes.
    """
    fh.seek(start)
    buf = bytearray()
    size = 0  # bytes of the current line so far
    head = b""
    oversize = False
    pos = start
    while pos - start < budget:
        chunk = fh.read(CHUNK)
        if not chunk:
            return
        at = 0
        while True:
            nl = chunk.find(b"\n", at)
            piece = chunk[at:] if nl < 0 else chunk[at:nl]
            size += len(piece)
            if not oversize:
                buf += piece
                if len(buf) > max_line:
                    oversize, head = True, bytes(buf[:1200])
                    buf.clear()
            if nl < 0:
                break
            pos += size + 1
            yield Line(None if oversize else bytes(buf), size, pos, head)
            buf.clear()
            size, head, oversize = 0, b"", False
            at = nl + 1
            if pos - start >= budget:
                return


def _tail_hash(fh: IO[bytes], offset: int) -> str:
    """sha256 of the (up to) :data:`TAIL` bytes that end at ``offset``."""
    fh.seek(max(0, offset - TAIL))
    return hashlib.sha256(fh.read(min(TAIL, offset))).hexdigest()


def _prefix_hash(fh: IO[bytes], offset: int) -> str:
    """sha256 of the first ``offset`` bytes, streamed (state stored by older versions)."""
    fh.seek(0)
    h, left = hashlib.sha256(), offset
    while left > 0:
        chunk = fh.read(min(CHUNK * 16, left))
        if not chunk:
            break
        h.update(chunk)
        left -= len(chunk)
    return h.hexdigest()


def resume_offset(fh: IO[bytes], st: os.stat_result, cursor: dict[str, Any]) -> tuple[int, str]:
    """Where to go on reading: (offset, why it starts over — empty when it does not)."""
    offset = int(cursor.get("offset") or 0)
    if offset <= 0:
        return 0, ""
    if cursor.get("inode") != st.st_ino:
        return 0, "the file was replaced or rotated"
    if st.st_size < offset:
        return 0, "the file was truncated"
    if "tail_sha256" in cursor:
        if _tail_hash(fh, offset) != cursor["tail_sha256"]:
            return 0, "the file was edited before the read offset"
    elif _prefix_hash(fh, offset) != cursor.get("prefix_sha256"):
        return 0, "the file was edited before the read offset"
    return offset, ""


class JsonlCollector:
    """Reads new lines of a local JSONL file of posts."""

    needs: ClassVar[tuple[str, ...]] = ("path",)

    def collect(
        self, source: SourceSettings, state: PollState, ctx: CollectContext
    ) -> CollectResult:
        assert source.path is not None
        path: Path = ctx.settings.resolve_path(source.path)
        limits = ctx.settings.limits
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
        brand = ctx.settings.brand
        terms, exclusions = brand.match_terms, brand.exclusions
        posts: list[Post] = []
        rejected: list[Rejected] = []
        problems: list[str] = []
        try:
            with open(path, "rb") as fh:
                offset, restart = resume_offset(fh, st, cursor)
                if restart:
                    problems.append(f"{restart}: read again from the start")
                line_no = start_line = int(cursor.get("lines", 0)) if offset else 0
                end = offset
                for line in read_lines(fh, offset, limits.max_post_bytes, limits.read_per_poll):
                    line_no += 1
                    end = line.end
                    if line.data is None:
                        item: Post | Rejected | None = _rejected(
                            line.head,
                            line_no,
                            f"{line.size:,} bytes, longer than limits.max_post_bytes "
                            f"({limits.max_post_bytes:,}): skipped unread",
                        )
                    elif not line.data.strip():
                        continue
                    else:
                        item = parse_raw_line(
                            line.data, line_no, source, terms, exclusions, limits, brand.tag_terms
                        )
                    if isinstance(item, Rejected):
                        rejected.append(item)
                        if len(problems) < MAX_PROBLEMS:
                            problems.append(item.reason)
                    elif item is not None:
                        posts.append(item)
                tail = _tail_hash(fh, end)
        except OSError as exc:
            raise SourceFailing(f"cannot read {path}: {exc.strerror or exc}") from None
        more = st.st_size - end > 0 and end - offset >= limits.read_per_poll
        new_state = PollState(
            url=state.url,
            etag=state.etag,
            last_modified=state.last_modified,
            since_id=state.since_id,
            cursor={
                "offset": end,
                "inode": st.st_ino,
                "tail_sha256": tail,
                "lines": line_no,
                # only a file read to its end is "unchanged" next time
                "fingerprint": fingerprint if end == st.st_size else None,
            },
        )
        return CollectResult(
            posts=posts,
            state=new_state,
            problems=problems,
            rejected=rejected,
            next_check_at=utcnow() if more else None,
            stats={"lines": line_no - start_line, "bytes": end - offset, "matched": len(posts)},
        )
