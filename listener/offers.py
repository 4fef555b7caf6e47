"""Choosing a "wow" gesture for a case: pure functions, no I/O.

:func:`suggest_offers` takes what is known about a case (category, priority,
unhappy score, special circumstances) and about the customer's and team's
recent history (earlier cases and offers in the period, money spent today by
the team and by the agent) and returns the catalogue's offers that fit,
best first, each with the reasons a person reads before approving, e.g.
``delivery · 2nd complaint in 30 days · budget left $340``.

Offers that fit but would break a cap are returned too, after the eligible
ones, with ``excluded`` saying why; they are never suggested and never
approved.  The agent can always pick another offer, or none.

Coupon codes (:func:`new_coupon_code`) come from :mod:`secrets`, in an
alphabet without look-alike characters.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from listener.config import ApprovalSettings, CapsSettings, OfferSpec
from listener.triage import category_label, ordinal

#: letters and digits that cannot be mistaken for one another (no 0/O, 1/I/L, 5/S, 2/Z, 8/B)
CODE_ALPHABET = "ACDEFGHJKMNPQRTUVWXY34679"
#: stands for the coupon code in drafts until approval generates the real one
CODE_PLACEHOLDER = "[CODE]"


@dataclass(frozen=True)
class CaseFacts:
    """What the chooser needs to know about the case."""

    category: str | None
    priority: int
    unhappy_score: float
    circumstances: tuple[str, ...] = ()


@dataclass(frozen=True)
class OfferHistory:
    """The customer's, the team's and the agent's recent history (read by the caller)."""

    earlier_cases: int = 0  #: the customer's other cases within the period
    offer_keys: tuple[str, ...] = ()  #: offers the customer was granted within the period
    team_spent_today: float = 0.0
    agent: str | None = None  #: the agent who would grant it (None: not known yet)
    agent_spent_today: float = 0.0
    period: timedelta = timedelta(days=30)


@dataclass(frozen=True)
class Suggestion:
    """One catalogue offer judged for one case."""

    key: str
    kind: str
    value: float
    cost: float
    description: str
    score: float
    reasons: list[str]
    requires_lead: bool
    physical: bool
    coupon: bool
    excluded: str | None = None  #: why it cannot be granted (a cap), else None
    rank: int = 0

    @property
    def eligible(self) -> bool:
        return self.excluded is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "value": self.value,
            "cost": self.cost,
            "description": self.description,
            "score": round(self.score, 3),
            "reasons": list(self.reasons),
            "requires_lead": self.requires_lead,
            "physical": self.physical,
            "coupon": self.coupon,
            "excluded": self.excluded,
            "rank": self.rank,
        }


@dataclass(frozen=True)
class Limits:
    """Caps and the approval tier, as the chooser applies them."""

    caps: CapsSettings = field(default_factory=CapsSettings)
    approval: ApprovalSettings = field(default_factory=ApprovalSettings)
    currency: str = "$"


def money(amount: float, currency: str = "$") -> str:
    """``$340`` or ``$12.50``."""
    if abs(amount - round(amount)) < 0.005:
        return f"{currency}{round(amount):,}"
    return f"{currency}{amount:,.2f}"


def fits(spec: OfferSpec, facts: CaseFacts, *, any_category: bool = False) -> bool:
    """Whether the offer suits the case at all (category, severity, circumstances).

    ``any_category``: the offer's categories are not checked (the gesture decision
    calls for this rung and no offer of the case's category is on it).
    """
    if not spec.enabled:
        return False
    if spec.circumstances and not set(spec.circumstances) & set(facts.circumstances):
        return False
    if facts.category == "praise" and not spec.circumstances:
        return False
    if not any_category and spec.categories and (facts.category or "other") not in spec.categories:
        return False
    if facts.unhappy_score < spec.min_unhappy:
        return False
    return facts.priority >= spec.min_priority


def cap_violations(spec: OfferSpec, history: OfferHistory, limits: Limits) -> list[str]:
    """The caps granting ``spec`` now would break (empty: none)."""
    caps, cur = limits.caps, limits.currency
    days = max(1, round(history.period.total_seconds() / 86400))
    problems: list[str] = []
    if caps.customer_offers is not None and len(history.offer_keys) >= caps.customer_offers:
        problems.append(
            f"customer already got {len(history.offer_keys)} offer(s) in {days} days "
            f"(cap {caps.customer_offers})"
        )
    if spec.per_customer is not None:
        had = history.offer_keys.count(spec.key)
        if had >= spec.per_customer:
            problems.append(f"customer already got {spec.key} {had}× in {days} days")
    if caps.daily_budget is not None:
        left = caps.daily_budget - history.team_spent_today
        if spec.cost > left + 1e-9:
            problems.append(
                f"daily budget: {money(max(left, 0), cur)} left, it costs {money(spec.cost, cur)}"
            )
    if caps.agent_daily_budget is not None and history.agent is not None:
        left = caps.agent_daily_budget - history.agent_spent_today
        if spec.cost > left + 1e-9:
            problems.append(
                f"{history.agent}'s daily budget: {money(max(left, 0), cur)} left, "
                f"it costs {money(spec.cost, cur)}"
            )
    return problems


def _score(spec: OfferSpec, facts: CaseFacts, history: OfferHistory) -> float:
    score = 10.0 * spec.boost
    if spec.circumstances:
        score += 30.0  # made for exactly this situation
    if spec.categories:
        score += 5.0  # made for this kind of problem, not a generic gesture
    # the worse it is (and the more often it happened), the more a bigger gesture fits
    severity = facts.priority / 100.0 + 0.5 * min(history.earlier_cases, 3)
    score += severity * min(spec.cost, 100.0) / 10.0
    return score


def _reasons(spec: OfferSpec, facts: CaseFacts, history: OfferHistory, limits: Limits) -> list[str]:
    days = max(1, round(history.period.total_seconds() / 86400))
    reasons: list[str] = []
    matching = sorted(set(spec.circumstances) & set(facts.circumstances))
    reasons += [c.replace("_", " ") for c in matching]
    if spec.categories and facts.category:
        reasons.append(category_label(facts.category))
    if history.earlier_cases:
        reasons.append(f"{ordinal(history.earlier_cases + 1)} complaint in {days} days")
    if facts.priority >= 70:
        reasons.append(f"priority {facts.priority}")
    if limits.caps.daily_budget is not None:
        left = limits.caps.daily_budget - history.team_spent_today
        reasons.append(f"budget left {money(max(left, 0), limits.currency)}")
    if spec.cost > limits.approval.lead_above:
        reasons.append(
            f"needs a lead ({money(spec.cost, limits.currency)} > "
            f"{money(limits.approval.lead_above, limits.currency)})"
        )
    if spec.physical:
        reasons.append("ships to the customer (needs an address)")
    return reasons


def judge(spec: OfferSpec, facts: CaseFacts, history: OfferHistory, limits: Limits) -> Suggestion:
    """One offer judged for the case (whether it fits is :func:`fits`' business)."""
    problems = cap_violations(spec, history, limits)
    return Suggestion(
        key=spec.key,
        kind=spec.kind,
        value=spec.value,
        cost=spec.cost,
        description=spec.description,
        score=_score(spec, facts, history),
        reasons=_reasons(spec, facts, history, limits),
        requires_lead=spec.cost > limits.approval.lead_above,
        physical=spec.physical,
        coupon=spec.coupon,
        excluded="; ".join(problems) or None,
    )


def suggest_offers(
    catalogue: Sequence[OfferSpec],
    facts: CaseFacts,
    history: OfferHistory,
    limits: Limits,
    *,
    limit: int | None = 3,
    any_category: bool = False,
) -> list[Suggestion]:
    """Offers that fit the case: eligible ones best first (ranks 0, 1, …), then excluded ones.

    At most ``limit`` eligible suggestions are returned; every fitting offer that
    a cap excludes is returned after them with its reason, so people see why.
    """
    judged = [
        judge(spec, facts, history, limits)
        for spec in catalogue
        if fits(spec, facts, any_category=any_category)
    ]
    order = sorted(judged, key=lambda s: (-s.score, s.cost, s.key))
    eligible = [s for s in order if s.eligible]
    excluded = [s for s in order if not s.eligible]
    if limit is not None:
        eligible = eligible[:limit]
    out: list[Suggestion] = []
    for rank, s in enumerate([*eligible, *excluded]):
        out.append(Suggestion(**{**s.__dict__, "rank": rank}))
    return out


def new_coupon_code(prefix: str = "ZS", groups: int = 2, size: int = 4) -> str:
    """An unguessable code such as ``ZS-7KQ4-M2XH`` (about 37 bits per 8 characters)."""
    parts = ["".join(secrets.choice(CODE_ALPHABET) for _ in range(size)) for _ in range(groups)]
    return "-".join([prefix, *parts])


def describe(spec_description: str, code: str | None) -> str:
    """The offer's wording for a reply, with its code (or the placeholder) filled in."""
    return spec_description.replace("{code}", code or CODE_PLACEHOLDER)
