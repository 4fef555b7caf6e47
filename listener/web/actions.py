"""The write use-cases the web and the API call, in one place.

Case actions are the recovery use-cases (``listener.recovery``); label
corrections go to the learning loop (``listener.learning.record_correction``)
when it is installed, else they are stored here the same way.  The web layer
checks read-only roles before calling; tier checks live in the use-cases.
"""

from __future__ import annotations

import importlib
from datetime import UTC, datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any

from listener import models as m
from listener.auth import Principal, require_lead, require_write
from listener.errors import ListenerError, NotFound

if TYPE_CHECKING:
    from listener.app import App


class Unavailable(ListenerError):
    """A use-case module this action needs is not installed (answered as 503)."""


def recovery() -> ModuleType:
    try:
        return importlib.import_module("listener.recovery")
    except ModuleNotFoundError as exc:
        if exc.name == "listener.recovery":
            raise Unavailable("case actions are unavailable (no listener.recovery)") from None
        raise


def _call(name: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    fn = getattr(recovery(), name, None)
    if fn is None:
        raise Unavailable(f"listener.recovery.{name} is not available")
    result = fn(*args, **kwargs)
    return dict(result) if isinstance(result, dict) else {"result": result}


def claim(app: App, case_id: int, who: Principal, *, force: bool = False) -> dict[str, Any]:
    require_write(who)
    return _call("claim_case", app, case_id, who.username, role=who.role, force=force)


def release(app: App, case_id: int, who: Principal) -> dict[str, Any]:
    require_write(who)
    return _call("release_case", app, case_id, who.username)


def assign(app: App, case_id: int, who: Principal, assignee: str) -> dict[str, Any]:
    require_lead(who)
    return _call("assign_case", app, case_id, who.username, assignee, role=who.role)


def edit_draft(
    app: App, case_id: int, who: Principal, text: str, subject: str | None = None
) -> dict[str, Any]:
    require_write(who)
    return _call("edit_draft", app, case_id, who.username, text, subject=subject)


def select_offer(app: App, case_id: int, who: Principal, offer_key: str | None) -> dict[str, Any]:
    require_write(who)
    return _call("select_offer", app, case_id, who.username, offer_key)


def approve(app: App, case_id: int, who: Principal) -> dict[str, Any]:
    require_write(who)
    return _call("approve_case", app, case_id, who.username, role=who.role)


def reject(app: App, case_id: int, who: Principal, reason: str) -> dict[str, Any]:
    require_write(who)
    return _call("reject_case", app, case_id, who.username, reason)


def snooze(app: App, case_id: int, who: Principal, until: datetime) -> dict[str, Any]:
    require_write(who)
    if until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    return _call("snooze_case", app, case_id, who.username, until)


def resolve(app: App, case_id: int, who: Principal, note: str | None = None) -> dict[str, Any]:
    require_write(who)
    return _call("resolve_case", app, case_id, who.username, note=note)


def mark_sent(app: App, case_id: int, who: Principal, url: str | None = None) -> dict[str, Any]:
    require_write(who)
    return _call("mark_sent_manually", app, case_id, who.username, url=url)


def team_report(app: App, since: datetime, until: datetime) -> dict[str, Any]:
    return _call("team_report", app, since, until)


def case_detail(app: App, case_id: int) -> dict[str, Any]:
    return _call("case_detail", app, case_id)


def correct_label(
    app: App,
    mention_id: int,
    who: Principal,
    *,
    unhappy: bool | None,
    category: str | None,
) -> dict[str, Any]:
    """An agent's correction of a post's label, fed to the learning loop."""
    require_write(who)
    try:
        learning = importlib.import_module("listener.learning")
    except ModuleNotFoundError as exc:
        if exc.name != "listener.learning":
            raise
        learning = None
    record = getattr(learning, "record_correction", None) if learning else None
    with app.sessions.begin() as session:
        mention = session.get(m.Mention, mention_id)
        if mention is None:
            raise NotFound(f"no mention {mention_id}")
        if record is not None:
            flag = unhappy if unhappy is not None else bool(mention.unhappy)
            record(session, mention_id, flag, category, who.username)
            result = None
        else:
            result = _store_correction(session, mention, unhappy, category, who.username)
    out = {"mention_id": mention_id, "unhappy": unhappy, "category": category}
    if isinstance(result, dict):
        out.update(result)
    return out


def _store_correction(
    session: Any, mention: m.Mention, unhappy: bool | None, category: str | None, actor: str
) -> dict[str, Any]:
    """Fallback when listener.learning is absent: a Correction row, the label, an event."""
    now = datetime.now(UTC)
    label = None if unhappy is None else ("negative" if unhappy else mention.label)
    if unhappy is False and mention.label == "negative":
        label = "neutral"
    session.add(
        m.Correction(
            mention_id=mention.id,
            unhappy=unhappy,
            label=label,
            category=category,
            actor=actor,
            created_at=now,
        )
    )
    if unhappy is not None:
        mention.unhappy = unhappy
        mention.label = label
    if category:
        mention.category = category
    session.add(
        m.Event(
            actor=actor,
            kind="mention.corrected",
            case_id=mention.case_id,
            mention_id=mention.id,
            at=now,
            data={"unhappy": unhappy, "category": category},
        )
    )
    return {}
