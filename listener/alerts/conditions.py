"""Source and outbox health: pure deciders that turn what we know into alert conditions.

* ``source_auth``   — the last poll was refused (401/403: a token expired or lost access);
* ``source_quota``  — the last poll was rate-limited (429, or our own request budget is
  spent) until a reset time;
* ``source_silent`` — we hear nothing from a source: no post for ``silent_after`` of its
  usual gaps between posts (and never less than ``silent_min``) although it was polled —
  counted from a post we saw arrive, not from the end of an archive it was added with —
  or ``silent_after`` failed polls in a row (404, a missing file, timeouts…);
* ``send_failing``  — ``send_failures`` failed send attempts on one channel within the
  lookback, with no successful send since.

Each :class:`Condition` says what is wrong in words and carries its evidence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from listener.errors import CollectorError, RateLimited, SourceFailing, SourceGone, TransientError

SOURCE_KINDS = ("source_auth", "source_quota", "source_silent")
SEND_KIND = "send_failing"
_AUTH_STATUS = re.compile(r"(?:HTTP |\()(401|403)\b")


def failure_kind(exc: BaseException) -> str:
    """What kind of failure a poll ended in: ``quota``, ``auth``, ``gone``, ``failing``,
    ``transient`` or ``internal``.  Collectors say 401/403 in their messages
    ("HTTP 401", "(403)"); an ``http_status`` attribute, when an error has one, wins."""
    if isinstance(exc, RateLimited):
        return "quota"
    if isinstance(exc, SourceGone):
        return "gone"
    status = getattr(exc, "http_status", None)
    if isinstance(exc, SourceFailing):
        if status in (401, 403) or (status is None and _AUTH_STATUS.search(str(exc))):
            return "auth"
        return "failing"
    if isinstance(exc, TransientError):
        return "transient"
    if isinstance(exc, CollectorError):
        return "failing"
    return "internal"


@dataclass(frozen=True)
class Condition:
    """Something that is wrong now and deserves an alert."""

    kind: str
    key: str  #: one live alert per key
    scope: str
    title: str
    explanation: str
    started_at: datetime
    evidence: dict[str, Any] = field(default_factory=dict)
    severity: str = "warning"
    source_id: int | None = None


def _ago(delta: timedelta) -> str:
    s = int(delta.total_seconds())
    if s < 3600:
        return f"{max(1, s // 60)} min"
    if s < 2 * 86400:
        return f"{s / 3600:.1f} h".replace(".0 h", " h")
    return f"{s / 86400:.1f} days".replace(".0 days", " days")


# ---------------------------------------------------------------------------
# failures seen by a poll


def auth_condition(
    source: str, source_id: int | None, message: str, now: datetime, started: datetime | None
) -> Condition:
    return Condition(
        kind="source_auth",
        key=f"source_auth:{source}",
        scope=f"source:{source}",
        title=f"{source}: access refused (401/403)",
        explanation=(
            f"Source {source} was refused access on its last poll: {message}. Its "
            "credentials probably expired or lost a permission; nothing is collected from it "
            "until someone fixes them."
        ),
        started_at=started or now,
        evidence={"source": source, "error": message[:500], "last_failure_at": now.isoformat()},
        severity="critical",
        source_id=source_id,
    )


def quota_condition(
    source: str,
    source_id: int | None,
    message: str,
    retry_at: datetime | None,
    now: datetime,
    started: datetime | None,
    deferrals: int,
) -> Condition:
    when = f"until {retry_at:%Y-%m-%d %H:%M} UTC" if retry_at else "for a while"
    again = "" if deferrals <= 1 else f" (rate-limited {deferrals} times in a row)"
    return Condition(
        kind="source_quota",
        key=f"source_quota:{source}",
        scope=f"source:{source}",
        title=f"{source}: quota exhausted {when}",
        explanation=(
            f"Source {source} hit its request quota: {message}. Polling is deferred {when}; "
            f"posts published meanwhile are collected after the reset{again}."
        ),
        started_at=started or now,
        evidence={
            "source": source,
            "error": message[:500],
            "retry_at": retry_at.isoformat() if retry_at else None,
            "deferrals": deferrals,
            "last_failure_at": now.isoformat(),
        },
        source_id=source_id,
    )


def quota_failing(evidence: dict[str, Any], now: datetime, grace: timedelta) -> bool:
    """Whether a quota alert means the source is failing (for ``listener health``): it was
    rate-limited again after a reset, or its reset time is ``grace`` past.  A single
    deferral inside its quota window is not a failure."""
    if int(evidence.get("deferrals") or 0) >= 2:
        return True
    raw = evidence.get("retry_at")
    if not raw:
        return False
    retry_at = datetime.fromisoformat(str(raw))
    return now > retry_at + grace


# ---------------------------------------------------------------------------
# silence


@dataclass(frozen=True)
class SourceState:
    """What the evaluator knows about one source."""

    name: str
    source_id: int
    last_post_hour: datetime | None  #: newest hour with posts
    active_hours: int  #: hours with posts in the baseline history
    history_hours: int  #: hours of that history
    last_success_at: datetime | None
    error_count: int
    last_error: str | None
    last_error_at: datetime | None
    watched_since: datetime | None = None  #: when the source was added (we listen since)


def silent_condition(
    s: SourceState, now: datetime, silent_after: int, silent_min: timedelta
) -> Condition | None:
    """The source has gone silent, or None."""
    if s.error_count >= silent_after:
        return Condition(
            kind="source_silent",
            key=f"source_silent:{s.name}",
            scope=f"source:{s.name}",
            title=f"{s.name}: silent, {s.error_count} failed polls in a row",
            explanation=(
                f"Nothing has been collected from source {s.name} for {s.error_count} polls in "
                f"a row: {s.last_error or 'the poll failed'}."
            ),
            started_at=s.last_error_at or now,
            evidence={
                "source": s.name,
                "failed_polls": s.error_count,
                "error": (s.last_error or "")[:500],
                "last_post_hour": s.last_post_hour.isoformat() if s.last_post_hour else None,
            },
            severity="critical",
            source_id=s.source_id,
        )
    if s.last_post_hour is None or s.active_hours < 3 or s.history_hours <= 0:
        return None  # never had posts, or too few to know its rhythm
    gap = timedelta(hours=max(1.0, s.history_hours / s.active_hours))
    quiet_since = s.last_post_hour + timedelta(hours=1)
    quiet = now - quiet_since
    limit = max(silent_after * gap, silent_min)
    if quiet <= limit or s.last_success_at is None or s.last_success_at < quiet_since:
        return None  # posting as usual, or not polled since (that is another problem)
    if s.watched_since is not None and s.watched_since > quiet_since:
        return None  # it was already quiet when we started listening (an archive, a backfill)
    return Condition(
        kind="source_silent",
        key=f"source_silent:{s.name}",
        scope=f"source:{s.name}",
        title=f"{s.name}: no posts for {_ago(quiet)}",
        explanation=(
            f"Source {s.name} has brought no post for {_ago(quiet)} although it was polled "
            f"(last at {s.last_success_at:%Y-%m-%d %H:%M} UTC); it usually brings one every "
            f"{_ago(gap)}, so {silent_after} usual gaps have passed. Check that the feed, "
            "query or account still publishes and still matches the brand."
        ),
        started_at=quiet_since + limit,
        evidence={
            "source": s.name,
            "last_post_hour": s.last_post_hour.isoformat(),
            "usual_gap_hours": round(gap.total_seconds() / 3600, 2),
            "quiet_hours": round(quiet.total_seconds() / 3600, 2),
            "active_hours": s.active_hours,
            "history_hours": s.history_hours,
            "last_success_at": s.last_success_at.isoformat(),
        },
        source_id=s.source_id,
    )


# ---------------------------------------------------------------------------
# sending


@dataclass(frozen=True)
class SendEvent:
    """One outcome of a send attempt (from the audit trail)."""

    at: datetime
    channel: str
    ok: bool
    outbox_id: int | None = None
    case_id: int | None = None
    error: str | None = None


def send_conditions(events: Sequence[SendEvent], threshold: int) -> list[Condition]:
    """``send_failing`` per channel: ``threshold`` failures, none sent since the last one."""
    out = []
    channels = sorted({e.channel for e in events})
    for channel in channels:
        mine = sorted((e for e in events if e.channel == channel), key=lambda e: e.at)
        failures = [e for e in mine if not e.ok]
        if len(failures) < threshold:
            continue
        last_fail = failures[-1].at
        if any(e.ok and e.at > last_fail for e in mine):
            continue  # it works again
        recent = failures[-5:]
        out.append(
            Condition(
                kind=SEND_KIND,
                key=f"{SEND_KIND}:{channel}",
                scope=f"channel:{channel}",
                title=f"replies on {channel} keep failing ({len(failures)} failures)",
                explanation=(
                    f"{len(failures)} attempts to send approved replies on {channel} failed "
                    f"recently and none has gone out since; last error: {recent[-1].error}. "
                    "Customers are waiting for answers the team already approved."
                ),
                started_at=failures[0].at,
                evidence={
                    "channel": channel,
                    "failures": len(failures),
                    "recent": [
                        {
                            "at": e.at.isoformat(),
                            "outbox_id": e.outbox_id,
                            "case_id": e.case_id,
                            "error": (e.error or "")[:300],
                        }
                        for e in recent
                    ],
                },
                severity="critical",
            )
        )
    return out
