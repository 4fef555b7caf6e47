"""Triage: pure functions that score a case's priority and say why.

``score_case`` takes what is known about a post, its author and their recent
history and returns a priority (0–100) with human-readable reasons, e.g.
``negative 0.97 · delivery · 12k followers · 3rd post in 1h``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

#: How much each problem category weighs on its own (missing categories weigh 5).
CATEGORY_SEVERITY: dict[str, int] = {
    "delivery": 12,
    "damaged_or_defective": 12,
    "wrong_item_or_size": 8,
    "returns_and_refunds": 10,
    "billing": 12,
    "account_or_login": 8,
    "app_or_website": 6,
    "service_outage": 10,
    "rude_or_slow_service": 10,
    "product_or_policy": 4,
    "travel_disruption": 12,
    "praise": 0,
    "other": 4,
}

CIRCUMSTANCE_WEIGHT: dict[str, int] = {
    "bereavement": 20,
    "illness": 12,
    "event_deadline": 12,
    "child": 6,
}

CIRCUMSTANCE_LABEL: dict[str, str] = {
    "bereavement": "bereavement",
    "illness": "illness",
    "event_deadline": "event deadline",
    "child": "child involved",
}


@dataclass(frozen=True)
class TriageInput:
    label: str
    unhappy_score: float
    category: str
    circumstances: tuple[str, ...]
    followers: int | None
    verified: bool
    posts_in_case: int  #: including this one
    case_span: timedelta | None  #: time between the case's first and latest post
    high_reach_followers: int = 10_000
    #: someone's health or safety at risk (listener.understanding): the top of the queue
    emergency: bool = False


@dataclass(frozen=True)
class Triage:
    priority: int
    reasons: list[str]


def humanize_count(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M".replace(".0M", "M")
    if n >= 1_000:
        return f"{n / 1_000:.1f}k".replace(".0k", "k")
    return str(n)


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def humanize_span(span: timedelta) -> str:
    seconds = span.total_seconds()
    if seconds <= 3600:
        return "an hour"
    if seconds <= 86400:
        return f"{math.ceil(seconds / 3600)}h"
    return f"{math.ceil(seconds / 86400)} days"


def category_label(name: str) -> str:
    return name.replace("_or_", " or ").replace("_and_", " and ").replace("_", " ")


#: the reason an emergency leads with (a re-triage finds it among the case's reasons)
EMERGENCY_REASON = "someone's health or safety at risk"


def score_case(t: TriageInput) -> Triage:
    """Priority 0–100 and the reasons behind it (most important first)."""
    reasons = [f"{t.label} {t.unhappy_score:.2f}"]
    points = 45.0 * t.unhappy_score
    if t.category:
        reasons.append(category_label(t.category))
        points += CATEGORY_SEVERITY.get(t.category, 5)
    for c in t.circumstances:
        points += CIRCUMSTANCE_WEIGHT.get(c, 5)
        reasons.append(CIRCUMSTANCE_LABEL.get(c, c))
    if t.followers:
        # 1k followers → +6, 10k → +12, 100k → +18, capped at 20
        points += min(20.0, max(0.0, 6.0 * (math.log10(t.followers) - 2)))
        if t.followers >= t.high_reach_followers or t.followers >= 1000:
            reasons.append(f"{humanize_count(t.followers)} followers")
    if t.verified:
        points += 5
        reasons.append("verified")
    if t.posts_in_case > 1:
        points += min(20, 8 * (t.posts_in_case - 1))
        span = f" in {humanize_span(t.case_span)}" if t.case_span is not None else ""
        reasons.append(f"{ordinal(t.posts_in_case)} post{span}")
    if t.emergency:
        points = max(points + 40, 90.0)
        reasons.insert(0, EMERGENCY_REASON)
    return Triage(priority=max(0, min(100, round(points))), reasons=reasons)


def sla_due(published_at: datetime, collected_at: datetime, sla: timedelta) -> datetime:
    """When the first response is due: from the post, or from when we saw an old post."""
    start = published_at if collected_at - published_at < timedelta(days=2) else collected_at
    return start + sla
