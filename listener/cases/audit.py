"""The audit trail as sentences a person reads, and masking for read-only viewers.

Pure: no I/O.  :func:`sentence` turns one event (kind, actor, data) into a
line such as "ann approved version 3 with coupon_20 (code ZS-7KQ4-M2XH)";
:func:`mask` hides customers' e-mail addresses and coupon codes in anything a
marketing viewer is shown.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

T = TypeVar("T")

SYSTEM = "listener"

_EMAIL = re.compile(r"([A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]*@[A-Za-z0-9.\-]+?(\.[A-Za-z]{2,24})\b")


def _code_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(rf"\b({re.escape(prefix)})-[A-Z0-9]{{2,}}(?:-[A-Z0-9]{{2,}})*\b")


def mask_text(text: str, prefix: str = "ZS", codes: Iterable[str] = ()) -> str:
    """``text`` with e-mail addresses and coupon codes masked (``p***@***.com``, ``ZS-****``)."""
    for code in codes:
        if code:
            text = text.replace(code, _masked_code(code))
    text = _code_pattern(prefix).sub(lambda mt: f"{mt.group(1)}-****", text)
    return _EMAIL.sub(lambda mt: f"{mt.group(1)}***@***{mt.group(2)}", text)


def _masked_code(code: str) -> str:
    head, _, _ = code.partition("-")
    return f"{head}-****" if head != code else "****"


def mask(obj: T, prefix: str = "ZS", codes: Iterable[str] = ()) -> T:
    """A copy of ``obj`` (dicts, lists, strings) with every string masked (:func:`mask_text`)."""
    known = tuple(sorted({c for c in codes if c}, key=len, reverse=True))

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return mask_text(value, prefix, known)
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(walk(v) for v in value)
        return value

    return walk(obj)  # type: ignore[no-any-return]


def _who(actor: str) -> str:
    return "Listener" if actor == SYSTEM else actor


def _money(amount: Any, currency: str) -> str:
    try:
        return f"{currency}{float(amount):,.2f}".replace(".00", "")
    except (TypeError, ValueError):
        return str(amount)


def _when(value: Any) -> str:
    if not value:
        return ""
    try:
        dt = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return dt.strftime("%Y-%m-%d %H:%M UTC")


def _offer(data: dict[str, Any], currency: str) -> str:
    offer = data.get("offer")
    if not isinstance(offer, dict):
        return "with no offer"
    text = f"with {offer.get('key')} ({_money(offer.get('cost'), currency)})"
    if offer.get("code"):
        text += f", code {offer['code']}"
    if offer.get("fulfilment"):
        text += ", a gift to send"
    return text


def _list(items: Any) -> str:
    return ", ".join(str(i) for i in items) if items else "none"


def _suggested(data: dict[str, Any]) -> str:
    offers = [o for o in data.get("offers") or [] if isinstance(o, dict)]
    ok = [str(o.get("key")) for o in offers if not o.get("excluded")]
    return f"; offers suggested: {_list(ok)}" if offers else ""


_SENTENCES: dict[str, Callable[[str, dict[str, Any], str], str]] = {
    "case.opened": lambda a, d, c: (
        f"{a} opened the case (priority {d.get('priority')}"
        + (f": {' · '.join(d['reasons'])}" if d.get("reasons") else "")
        + ")"
    ),
    "draft.created": lambda a, d, c: (
        f"{a} wrote the first reply"
        + (f" from the template {d['template']}" if d.get("template") else "")
        + (f" for {d['channel']}" if d.get("channel") else "")
        + _suggested(d)
    ),
    "draft.edited": lambda a, d, c: (
        f"{a} rewrote the reply after {d['after']} (version {d.get('version')})"
        if d.get("after")
        else f"{a} rewrote the reply for {d['because']}'s offer choice (version {d.get('version')})"
        if d.get("because")
        else f"{a} edited the reply (version {d.get('version')})"
    ),
    "draft.failed": lambda a, d, c: f"{a} could not draft a reply: {d.get('error')}",
    "case.claimed": lambda a, d, c: (
        f"{a} took the case over from {d['previous']}"
        if d.get("forced")
        else f"{a} claimed the case"
    ),
    "case.released": lambda a, d, c: (
        f"{a} released the case" + (f" (held by {d['previous']})" if d.get("previous") else "")
    ),
    "case.assigned": lambda a, d, c: (
        f"{a} assigned the case to {d.get('assignee')}"
        + (f" (was {d['previous']})" if d.get("previous") else "")
    ),
    "offer.selected": lambda a, d, c: (
        f"{a} chose the offer {d.get('key')} ({_money(d.get('cost'), c)})"
        + (", which needs a lead's approval" if d.get("requires_lead") else "")
    ),
    "offer.none": lambda a, d, c: f"{a} chose to reply without an offer",
    "offers.suggested": lambda a, d, c: f"{a} ranked the offers{_suggested(d)}",
    "case.approved": lambda a, d, c: (
        f"{a} approved version {d.get('version')} of the reply {_offer(d, c)}"
    ),
    "case.rejected": lambda a, d, c: (
        f"{a} rejected the case: {d.get('reason') or 'no reason given'}"
    ),
    "case.reopened": lambda a, d, c: f"{a} reopened the case (the rejection is undone)",
    "case.snoozed": lambda a, d, c: (
        f"{a} snoozed the case until {_when(d.get('until'))}"
        + (f": {d['note']}" if d.get("note") else "")
    ),
    "case.woken": lambda a, d, c: f"{a} woke the case",
    "case.resolved": lambda a, d, c: (
        f"{a} resolved the case" + (f": {d['note']}" if d.get("note") else "")
    ),
    "reply.sent": lambda a, d, c: (
        f"{a} marked the reply as posted by hand"
        + (
            f" ({d['external_id']})"
            if not str(d.get("external_id", "")).startswith("manual:")
            else ""
        )
        if d.get("manual")
        else f"{a} sent the reply on {d.get('channel')} (id {d.get('external_id')})"
        + (", found already posted after a crash" if d.get("recovered") else "")
    ),
    "outbox.sending": lambda a, d, c: (
        f"{a} started sending (attempt {d.get('attempt')})"
        + (", checking first whether it already went out" if d.get("recovering") else "")
    ),
    "outbox.retry": lambda a, d, c: (
        f"Sending failed, retrying at {_when(d.get('next_attempt_at'))}: {d.get('error')}"
    ),
    "outbox.failed": lambda a, d, c: f"Sending failed for good: {d.get('error')}",
    "case.mention_added": lambda a, d, c: (
        f"The customer posted again ({'unhappy' if d.get('unhappy') else 'not unhappy'}"
        + (f", {d['label']}" if d.get("label") else "")
        + ")"
    ),
    "case.followup": lambda a, d, c: (
        "; ".join(str(r) for r in d["reasons"]) + (": back in the queue" if d.get("was") else "")
        if d.get("reasons")
        else "After our reply the customer is no longer unhappy: recovered"
        if d.get("recovered")
        else "After our reply the customer is still unhappy"
    ),
    "mention.corrected": lambda a, d, c: (
        f"{a} corrected a post's label: "
        + ", ".join(
            x
            for x in (
                None
                if d.get("unhappy") is None
                else ("unhappy" if d.get("unhappy") else "not unhappy"),
                f"category {d['category']}" if d.get("category") else None,
            )
            if x
        )
    ),
    "mention.edited": lambda a, d, c: "The customer edited a post",
    "case.merged": lambda a, d, c: (
        f"{a} merged case {d.get('other_case_id')} ({d.get('platform')}) into this one: "
        f"the same customer"
        + (f", accepting suggestion {d['suggestion_id']}" if d.get("suggestion_id") else "")
    ),
    "case.merged_into": lambda a, d, c: (
        f"{a} merged this case into case {d.get('into_case_id')}: the same customer"
    ),
    "link.suggested": lambda a, d, c: (
        f"{a} suggests case {d.get('other_case_id')} is the same customer: "
        + "; ".join(str(e.get("detail")) for e in d.get("evidence") or [] if isinstance(e, dict))
    ),
    "link.rejected": lambda a, d, c: (
        f"{a} rejected the suggestion that case {d.get('other_case_id')} is the same customer"
    ),
    "case.brand_answered": lambda a, d, c: (
        f"The brand answered in the thread (@{d.get('handle')})"
        if d.get("handle")
        else "The brand answered (seen in the customer's reply to it)"
    ),
    "case.retriaged": lambda a, d, c: (
        f"{a}'s correction re-triaged the case: priority {d.get('priority')}"
        + (f", category {d['category']}" if d.get("category") else "")
        + (f" (changed: {_list(sorted(d['changed']))})" if d.get("changed") else " (no change)")
    ),
    "offer.fulfilment": lambda a, d, c: (
        f"{a} marked the gift {d.get('key')} as {str(d.get('status', '')).replace('_', ' ')}"
    ),
}


def sentence(kind: str, actor: str, data: dict[str, Any] | None, currency: str = "$") -> str:
    """One audit event as a sentence (unknown kinds: "actor: kind")."""
    who = _who(actor)
    make = _SENTENCES.get(kind)
    if make is None:
        return f"{who}: {kind}"
    try:
        return make(who, dict(data or {}), currency)
    except (KeyError, TypeError, ValueError, AttributeError):
        return f"{who}: {kind}"
