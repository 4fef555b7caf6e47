"""An agent's correction of a post's label (it feeds the learning loop, `listener train`).

Not a case action (no claim, no state), but the same rule for who acts: a
known, active user from the ``users`` table whose role may write.  The
correction reaches the post's case in the same transaction
(:mod:`listener.cases.retriage`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from listener import models as m
from listener.cases.work import resolve_actor
from listener.errors import NotFound
from listener.permissions import require

if TYPE_CHECKING:
    from listener.app import App


def correct_label(
    app: App,
    mention_id: int,
    by: str,
    *,
    unhappy: bool | None,
    category: str | None = None,
    role: str | None = None,
) -> dict[str, Any]:
    """Record ``by``'s correction of a post (``unhappy`` None: only the category changes)."""
    from listener.cases.retriage import retriage_case
    from listener.learning import record_correction

    with app.sessions() as session, session.begin():
        actor = resolve_actor(session, by, role=role)
        require(actor.role, "label", actor=actor.username)
        mention = session.get(m.Mention, mention_id)
        if mention is None:
            raise NotFound(f"no mention {mention_id}")
        flag = unhappy if unhappy is not None else bool(mention.unhappy)
        correction = record_correction(session, mention_id, flag, category, actor.username)
        retriaged = None
        if mention.case_id is not None:
            # the correction reaches its case: triage (and an unedited draft) again
            retriaged = retriage_case(
                session,
                app.settings,
                mention.case_id,
                mention_id,
                actor.username,
                correction.created_at,
            )
        return {
            "id": correction.id,
            "mention_id": mention_id,
            "case_id": mention.case_id,
            "unhappy": flag,
            "category": category,
            "by": actor.username,
            "retriaged": retriaged,
        }
