"""Did it work?  A later post by the customer, after our reply, tells (the pipeline asks)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from listener import models as m

SYSTEM_ACTOR = "listener"


def record_followup(
    session: Session,
    case: m.Case,
    mention: m.Mention,
    prediction_label: str,
    unhappy: bool,
    now: datetime,
) -> bool | None:
    """A later post by the customer: after our reply, did their mood change?

    Only posts published after the reply went out count.  Not unhappy →
    ``recovered = True``; still unhappy → ``recovered = False``.  Returns the
    new value (None when the post came before any reply).
    """
    replied_at = case.first_response_at
    if replied_at is None or mention.published_at < replied_at:
        return None
    before = case.recovered
    case.recovered = not unhappy
    case.recovered_at = now if case.recovered else None
    session.add(
        m.Event(
            actor=SYSTEM_ACTOR,
            kind="case.followup",
            case_id=case.id,
            mention_id=mention.id,
            at=now,
            data={
                "label": prediction_label,
                "unhappy": bool(unhappy),
                "recovered": case.recovered,
                "before": before,
            },
        )
    )
    return case.recovered
