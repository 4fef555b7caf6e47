"""The team report: how fast, how well and at what cost the team answered (read-only).

Cases opened in the window count; for each the first response time (from
the customer's first post), whether the SLA was met, whether the customer
recovered (their next post after our reply was not unhappy), and the cost of
the offers granted.  The totals are broken down per agent (who held the
case) and per category, for the CLI (`listener report`), the report page and
the API.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from listener import models as m
from listener.cases.offering import granted
from listener.clock import utcnow
from listener.errors import PolicyViolation

if TYPE_CHECKING:
    from listener.app import App

UNASSIGNED = "(nobody)"


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


@dataclass
class _Tally:
    """The numbers of one group of cases (everyone, one agent, one category)."""

    cases: int = 0
    responses: list[float] = field(default_factory=list)
    sla_met: int = 0
    sla_total: int = 0
    followed_up: int = 0
    recovered: int = 0
    offers: int = 0
    cost: float = 0.0

    def row(self) -> dict[str, Any]:
        median = statistics.median(self.responses) if self.responses else None
        return {
            "cases": self.cases,
            "replied": len(self.responses),
            "first_response_median_seconds": median,
            "sla_met_pct": _pct(self.sla_met, self.sla_total),
            "followed_up": self.followed_up,
            "recovered": self.recovered,
            "recovery_rate_pct": _pct(self.recovered, self.followed_up),
            "offers": self.offers,
            "offer_cost": round(self.cost, 2),
        }


def _groups(rows: dict[str, _Tally], key: str) -> list[dict[str, Any]]:
    return [{key: name, **t.row()} for name, t in sorted(rows.items(), key=lambda kv: kv[0])]


def team_report(app: App, since: datetime, until: datetime) -> dict[str, Any]:
    """How the team did between ``since`` and ``until`` (cases opened in the window).

    First-response time (median/p90, seconds from the first post), SLA met %,
    recovery rate (of customers who posted again after our reply, the share no
    longer unhappy), offer cost, cost per recovered customer, offers by kind,
    and the same per agent and per category.
    """
    with app.sessions() as session:
        cases = session.scalars(
            select(m.Case).where(m.Case.created_at >= since, m.Case.created_at < until)
        ).all()
        ids = [c.id for c in cases]
        first_post: dict[int, datetime] = {}
        case_offers: dict[int, list[m.Offer]] = {}
        if ids:
            for cid, t in session.execute(
                select(m.Mention.case_id, func.min(m.Mention.published_at))
                .where(m.Mention.case_id.in_(ids))
                .group_by(m.Mention.case_id)
            ):
                if cid is not None:
                    first_post[int(cid)] = t if t.tzinfo else t.replace(tzinfo=UTC)
            for o in session.scalars(select(m.Offer).where(m.Offer.case_id.in_(ids), granted())):
                case_offers.setdefault(o.case_id, []).append(o)
        offers = session.scalars(
            select(m.Offer).where(
                granted(), m.Offer.approved_at >= since, m.Offer.approved_at < until
            )
        ).all()
    total = _Tally()
    by_agent: dict[str, _Tally] = {}
    by_category: dict[str, _Tally] = {}
    for c in cases:
        tallies = [
            total,
            by_agent.setdefault(c.assignee or UNASSIGNED, _Tally()),
            by_category.setdefault(c.category or "other", _Tally()),
        ]
        granted_here = case_offers.get(c.id, [])
        for tally in tallies:
            tally.cases += 1
            if c.first_response_at is not None:
                start = first_post.get(c.id, c.created_at)
                tally.responses.append(max(0.0, (c.first_response_at - start).total_seconds()))
            if c.sla_due_at is not None and (
                c.first_response_at is not None or c.sla_due_at < until
            ):
                tally.sla_total += 1
                if c.first_response_at is not None and c.first_response_at <= c.sla_due_at:
                    tally.sla_met += 1
            if c.recovered is not None:
                tally.followed_up += 1
                tally.recovered += int(bool(c.recovered))
            if tally is not total:
                tally.offers += len(granted_here)
                tally.cost += sum(o.cost for o in granted_here)
    recovered_authors = {c.author_id for c in cases if c.recovered}
    by_kind: dict[str, dict[str, float]] = {}
    for o in offers:
        entry = by_kind.setdefault(o.kind, {"count": 0, "cost": 0.0})
        entry["count"] += 1
        entry["cost"] += o.cost
    cost = round(sum(o.cost for o in offers), 2)
    summary = total.row()
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "cases": len(cases),
        "by_status": dict(sorted(Counter(str(c.status) for c in cases).items())),
        "replied": summary["replied"],
        "first_response_seconds": {
            "median": summary["first_response_median_seconds"],
            "p90": percentile(total.responses, 0.9),
        },
        "sla_met_pct": summary["sla_met_pct"],
        "sla_cases": total.sla_total,
        "followed_up": total.followed_up,
        "recovered": total.recovered,
        "recovery_rate_pct": summary["recovery_rate_pct"],
        "currency": app.settings.recovery.currency,
        "offer_cost": cost,
        "cost_per_recovered_customer": (
            round(cost / len(recovered_authors), 2) if recovered_authors else None
        ),
        "offers_by_kind": {
            k: {"count": int(v["count"]), "cost": round(v["cost"], 2)}
            for k, v in sorted(by_kind.items())
        },
        "by_agent": _groups(by_agent, "agent"),
        "by_category": _groups(by_category, "category"),
    }


def report_window(spec: str, now: datetime | None = None) -> tuple[datetime, datetime]:
    """``7d`` → (now − 7 days, now)."""
    from listener.durations import parse_duration

    now = now or utcnow()
    span = parse_duration(spec)
    if span <= timedelta(0):
        raise PolicyViolation("the report window must be positive")
    return now - span, now


def duration_text(seconds: float | None) -> str:
    """``5400`` → ``1h 30m``; None → ``–`` (for tables people read)."""
    if seconds is None:
        return "–"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def pct_text(value: float | None) -> str:
    return "–" if value is None else f"{value:g}%"


def money_text(value: float | None, currency: str) -> str:
    return "–" if value is None else f"{currency}{value:,.2f}"


#: (heading, row key, formatter kind) of the per-agent and per-category tables
TABLE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("cases", "cases", "int"),
    ("replied", "replied", "int"),
    ("first response (median)", "first_response_median_seconds", "duration"),
    ("SLA met", "sla_met_pct", "pct"),
    ("recovered", "recovery_rate_pct", "pct"),
    ("offers", "offers", "int"),
    ("offer cost", "offer_cost", "money"),
)


def cell(row: dict[str, Any], key: str, kind: str, currency: str) -> str:
    """One report table cell as text."""
    value = row.get(key)
    if kind == "duration":
        return duration_text(value)
    if kind == "pct":
        return pct_text(value)
    if kind == "money":
        return money_text(value, currency)
    return "–" if value is None else str(value)


def table_rows(rows: Iterable[dict[str, Any]], key: str, currency: str) -> list[list[str]]:
    """A per-agent or per-category table as text cells, first column ``key``."""
    return [
        [str(r[key]), *(cell(r, k, kind, currency) for _, k, kind in TABLE_COLUMNS)] for r in rows
    ]
