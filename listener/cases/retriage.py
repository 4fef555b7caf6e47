"""A correction reaches its case: priority, category, reasons and an unedited draft.

:func:`decide` is pure: given each of the case's posts with its current verdict
(the model's, or an agent's latest correction of it) it triages the case again
with the one triage rule set (:func:`listener.triage.score_case`) and says what
changed.  :func:`retriage_case` is the use-case the label action calls in its
own transaction: it reads the posts and corrections, applies the decision,
re-renders a draft the machine wrote (an agent's edited text is never
touched) and records one ``case.retriaged`` event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from listener import models as m
from listener.cases.status import OPEN, WORKABLE
from listener.triage import EMERGENCY_REASON, TriageInput, score_case

if TYPE_CHECKING:
    from listener.config import Settings

SYSTEM_ACTOR = "listener"


@dataclass(frozen=True)
class Verdict:
    """One post's current verdict: the model's, or the latest correction's."""

    mention_id: int
    published_at: datetime
    unhappy: bool
    score: float
    category: str | None
    corrected_by: str | None = None


@dataclass(frozen=True)
class CaseTriage:
    """What triage knows about a case besides its posts."""

    category: str | None
    priority: int
    reasons: tuple[str, ...]
    unhappy_score: float
    circumstances: tuple[str, ...]
    followers: int | None
    verified: bool
    high_reach_followers: int = 10_000


@dataclass(frozen=True)
class Retriage:
    """The case's new triage, and what changed (``{field: {"from", "to"}}``)."""

    priority: int
    category: str | None
    reasons: list[str]
    unhappy_score: float
    changed: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def redraft(self) -> bool:
        """A machine-written reply should be written again (its template is per category)."""
        return bool(self.changed)


def verdict_of(
    mention_id: int,
    published_at: datetime,
    model_unhappy: bool | None,
    model_score: float | None,
    model_category: str | None,
    correction: tuple[bool | None, str | None, str] | None,
) -> Verdict:
    """A post's verdict: an agent's correction wins over the model.

    A corrected flag is the agent's certainty: unhappy scores 1.0, not unhappy 0.0.
    """
    unhappy, score, category, by = bool(model_unhappy), float(model_score or 0.0), None, None
    category = model_category
    if correction is not None:
        flag, corrected_category, by = correction
        if flag is not None:
            unhappy, score = bool(flag), (1.0 if flag else 0.0)
        category = corrected_category or category
    return Verdict(mention_id, published_at, unhappy, score, category, by)


def decide(case: CaseTriage, posts: Sequence[Verdict], corrected: Verdict) -> Retriage:
    """Triage the case again after ``corrected`` (one of ``posts``) was corrected.

    The case takes the corrected post's category when the agent named one; its
    score is its unhappiest post's; a case none of whose posts is unhappy any
    more drops to priority 0 and says so (it stays for an agent to close).
    """
    category = case.category
    if corrected.corrected_by is not None and corrected.category:
        category = corrected.category
    unhappy = [p for p in posts if p.unhappy]
    who = f"corrected by {corrected.corrected_by}" if corrected.corrected_by else "corrected"
    if not unhappy:
        priority, reasons, score = 0, [f"no unhappy post ({who})"], 0.0
    else:
        score = max(p.score for p in unhappy)
        times = sorted(p.published_at for p in posts)
        t = score_case(
            TriageInput(
                label="negative",
                unhappy_score=score,
                category=category or "",
                circumstances=case.circumstances,
                followers=case.followers,
                verified=case.verified,
                posts_in_case=len(posts),
                case_span=(times[-1] - times[0]) if len(times) > 1 else None,
                high_reach_followers=case.high_reach_followers,
                # someone in danger stays on top whatever the correction says of the mood
                emergency=EMERGENCY_REASON in case.reasons,
            )
        )
        priority, reasons = t.priority, [*t.reasons, who]
    changed: dict[str, dict[str, Any]] = {}
    if priority != case.priority:
        changed["priority"] = {"from": case.priority, "to": priority}
    if category != case.category:
        changed["category"] = {"from": case.category, "to": category}
    if round(score, 4) != round(case.unhappy_score, 4):
        changed["unhappy_score"] = {"from": round(case.unhappy_score, 4), "to": round(score, 4)}
    return Retriage(priority, category, reasons, score, changed)


# ---------------------------------------------------------------------------
# the use-case


def _verdicts(session: Session, case: m.Case) -> list[Verdict]:
    ids = [x.id for x in case.mentions]
    latest: dict[int, tuple[bool | None, str | None, str]] = {}
    if ids:
        for c in session.scalars(
            select(m.Correction)
            .where(m.Correction.mention_id.in_(ids))
            .order_by(m.Correction.created_at, m.Correction.id)
        ):
            latest[c.mention_id] = (c.unhappy, c.category, c.actor)
    return [
        verdict_of(x.id, x.published_at, x.unhappy, x.unhappy_score, x.category, latest.get(x.id))
        for x in case.mentions
    ]


def retriage_case(
    session: Session,
    settings: Settings,
    case_id: int,
    mention_id: int,
    actor: str,
    now: datetime,
) -> dict[str, Any] | None:
    """Triage ``case_id`` again after ``actor`` corrected its post ``mention_id``.

    Closed cases keep their triage (returns None); an approved one is
    re-triaged but its approved reply is not rewritten.  Returns the
    ``case.retriaged`` event's data.
    """
    from listener.cases.offering import chosen_offer, offer_context, rerender_draft, spec_for
    from listener.cases.work import add_event, lock_case

    case = lock_case(session, case_id)
    if case.status not in OPEN:
        return None
    posts = _verdicts(session, case)
    corrected = next((p for p in posts if p.mention_id == mention_id), None)
    if corrected is None:
        return None
    author = case.author
    decision = decide(
        CaseTriage(
            category=case.category,
            priority=case.priority,
            reasons=tuple(case.reasons or ()),
            unhappy_score=float(case.unhappy_score or 0.0),
            circumstances=tuple(case.circumstances or ()),
            followers=author.followers if author else None,
            verified=bool(author.verified) if author else False,
            high_reach_followers=settings.triage.high_reach_followers,
        ),
        posts,
        corrected,
    )
    case.priority, case.category = decision.priority, decision.category
    case.reasons, case.unhappy_score = decision.reasons, decision.unhappy_score
    case.updated_at = now
    data: dict[str, Any] = {
        "mention_id": mention_id,
        "changed": decision.changed,
        "priority": decision.priority,
        "category": decision.category,
        "reasons": decision.reasons,
    }
    redraft: dict[str, Any] = {}
    if decision.redraft and case.status in WORKABLE:
        offer = chosen_offer(case.offers)
        ctx = None if offer is None else offer_context(spec_for(settings, offer))
        _, redraft = rerender_draft(session, settings, case, ctx, actor, now)
    if redraft.get("kind") == "draft.edited":
        data["draft_version"] = redraft.get("version")
    add_event(session, case, actor, "case.retriaged", now, **data)
    if redraft:
        kind = redraft.pop("kind")
        redraft.pop("because", None)
        redraft["after"] = f"{actor}'s correction"
        add_event(
            session, case, SYSTEM_ACTOR if kind == "draft.edited" else actor, kind, now, **redraft
        )
    session.flush()
    return data


__all__ = ["CaseTriage", "Retriage", "Verdict", "decide", "retriage_case", "verdict_of"]
