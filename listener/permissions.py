"""Who may do what: pure role checks, no I/O.

Roles:

* ``agent``: works cases (claim, edit, choose offers, approve within the tier).
* ``lead``: everything an agent does, plus assigning, taking over claimed
  cases, and approving offers above ``recovery.approval.lead_above`` (never
  their own choice).
* ``marketing``: read-only (dashboards, reports); every write is refused.
* ``admin``: everything.
"""

from __future__ import annotations

from listener.errors import PermissionDenied

ROLES: tuple[str, ...] = ("agent", "lead", "marketing", "admin")

#: action → roles allowed to do it
ACTIONS: dict[str, frozenset[str]] = {
    "read": frozenset(ROLES),
    "report": frozenset(ROLES),
    "claim": frozenset({"agent", "lead", "admin"}),
    "force_claim": frozenset({"lead", "admin"}),
    "release": frozenset({"agent", "lead", "admin"}),
    "assign": frozenset({"lead", "admin"}),
    "edit_draft": frozenset({"agent", "lead", "admin"}),
    "select_offer": frozenset({"agent", "lead", "admin"}),
    "approve": frozenset({"agent", "lead", "admin"}),
    "approve_high_value": frozenset({"lead", "admin"}),
    "reject": frozenset({"agent", "lead", "admin"}),
    "reopen": frozenset({"agent", "lead", "admin"}),
    "snooze": frozenset({"agent", "lead", "admin"}),
    "resolve": frozenset({"agent", "lead", "admin"}),
    "mark_sent": frozenset({"agent", "lead", "admin"}),
    "fulfil": frozenset({"agent", "lead", "admin"}),
    "send": frozenset({"agent", "lead", "admin"}),
    "label": frozenset({"agent", "lead", "admin"}),
    "merge": frozenset({"agent", "lead", "admin"}),  # and accept/reject link suggestions
}
#: roles that may act on cases (marketing is read-only)
WRITE_ROLES: frozenset[str] = ACTIONS["edit_draft"]
#: roles that may take over claims, assign, and approve above the agent tier
LEAD_ROLES: frozenset[str] = ACTIONS["force_claim"]


def can(role: str, action: str, *, actor: str | None = None, owner: str | None = None) -> bool:
    """Whether ``role`` may do ``action``.

    ``owner`` is the person a claim belongs to: acting on a case someone else
    claimed needs ``force_claim`` rights (lead/admin).
    """
    allowed = ACTIONS.get(action)
    if allowed is None or role not in allowed:
        return False
    if owner is not None and actor is not None and owner != actor and action != "read":
        return role in ACTIONS["force_claim"]
    return True


def require(role: str, action: str, *, actor: str | None = None, owner: str | None = None) -> None:
    """Raise :class:`PermissionDenied` unless :func:`can` says yes."""
    if role not in ROLES:
        raise PermissionDenied(f"unknown role {role!r} (one of: {', '.join(ROLES)})")
    if not can(role, action, actor=actor, owner=owner):
        who = f"{actor} ({role})" if actor else role
        if (
            owner is not None
            and actor is not None
            and owner != actor
            and role in ACTIONS.get(action, frozenset())
        ):
            raise PermissionDenied(f"{who} may not {action.replace('_', ' ')}: {owner} has it")
        raise PermissionDenied(f"{who} may not {action.replace('_', ' ')}")


def may_approve_offer(
    role: str, actor: str, cost: float, lead_above: float, chosen_by: set[str]
) -> str | None:
    """Why ``actor`` may not approve an offer costing ``cost`` (None: they may).

    Above ``lead_above`` a lead (or admin) must approve, and not one of
    ``chosen_by`` (whoever drafted the reply or selected the offer).
    """
    if cost <= lead_above:
        return None
    if role not in ACTIONS["approve_high_value"]:
        return f"offers above {lead_above:g} need a lead's approval"
    if actor in chosen_by:
        return "a lead may not approve a high-value offer they drafted or selected themselves"
    return None
