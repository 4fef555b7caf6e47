"""The gesture ladder: how much a case should get, and what a reply may promise.

Pure functions, no I/O.

* :func:`decide_gesture` — ``none`` | ``apology_and_help`` | ``goodwill`` |
  ``make_whole`` | ``personal`` for one case, with the reasons an agent reads:
  no compensation for questions, praise or resolved posts (a question about
  an ongoing failure gets help and an apology); help and an apology first for
  mild cases; goodwill for real inconvenience (severe, or the customer's
  repeat complaint); make-whole for a failed order or service; personal for
  a life event; one rung down when the day's budget runs low.  The rules are
  ``recovery.gestures`` in config.yaml.
* :func:`promises` — the gestures a reply's text promises (a refund, a
  coupon, a card…), by offer kind, and the money amount when one is written.
* :func:`promise_problems` — what is wrong with a text against the offer
  actually attached: approval refuses a text that promises a gesture that is
  not attached.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from listener.config import GESTURE_OF_KIND, GESTURES, MONEY_KINDS

if TYPE_CHECKING:
    from listener.config import GestureSettings, OfferSpec

NO_COMPENSATION = ("none", "apology_and_help")


@dataclass(frozen=True)
class GestureFacts:
    """What the decider needs to know about the case (from listener.understanding)."""

    kind: str
    severity: int
    circumstances: tuple[str, ...] = ()
    failed_order: bool = False
    asks_refund: bool = False
    costly: bool = True  #: the failure cost time or money (angry words alone do not)
    earlier_cases: int = 0  #: the customer's other cases in the period
    budget_left: float | None = None  #: of the team's daily budget (None: no budget)
    emergency: bool = False  #: someone's health or safety at risk (listener.understanding)


@dataclass(frozen=True)
class GestureDecision:
    gesture: str
    reasons: tuple[str, ...]

    @property
    def compensates(self) -> bool:
        return self.gesture not in NO_COMPENSATION


def rank(gesture: str) -> int:
    return GESTURES.index(gesture) if gesture in GESTURES else 0


def decide_gesture(facts: GestureFacts, rules: GestureSettings) -> GestureDecision:
    """The rung of the ladder this case gets, and why."""
    reasons: list[str] = []
    if facts.kind in ("praise", "resolved", "other"):
        what = {"praise": "praise", "resolved": "resolved", "other": "no problem reported"}
        return GestureDecision("none", (f"{what[facts.kind]}: no compensation",))
    if facts.kind == "question" and facts.failed_order and facts.severity >= 2:
        reasons.append("asks about an order or service that failed")
    elif facts.kind == "question":
        if facts.severity >= 1 or facts.failed_order:
            return GestureDecision(
                "apology_and_help", ("a question about an ongoing failure: help first",)
            )
        return GestureDecision("none", ("a plain question: an answer, no compensation",))
    if facts.emergency:
        # a coupon is the wrong answer to "a man in 3A is moaning in pain": help first; an
        # agent may still choose a gesture once everyone is safe
        return GestureDecision(
            "apology_and_help", ("someone's health or safety at risk: help first, no offer",)
        )
    personal = sorted(set(facts.circumstances) & set(rules.personal_circumstances))
    gesture = "apology_and_help"
    if personal:
        gesture = "personal"
        reasons.append("life event: " + ", ".join(c.replace("_", " ") for c in personal))
    elif (
        rules.make_whole_failed_order
        and (facts.failed_order or facts.asks_refund)
        and facts.severity >= rules.make_whole_min_severity
    ):
        gesture = "make_whole"
        reasons.append(
            "a failed order or service"
            if facts.failed_order
            else "asks for their money back or compensation"
        )
    elif facts.severity >= rules.goodwill_min_severity and facts.costly:
        gesture = "goodwill"
        reasons.append(f"severity {facts.severity}: real inconvenience")
    elif facts.earlier_cases + 1 >= rules.goodwill_after_cases and facts.severity >= 2:
        gesture = "goodwill"
        reasons.append(f"complaint number {facts.earlier_cases + 1} in the period")
    else:
        reasons.append(f"severity {facts.severity}: help and an apology first")
    if (
        gesture in ("goodwill", "make_whole")
        and facts.budget_left is not None
        and facts.budget_left < rules.step_down_below
    ):
        lower = "goodwill" if gesture == "make_whole" else "apology_and_help"
        reasons.append(f"budget low ({facts.budget_left:.0f} left): {gesture} → {lower}")
        gesture = lower
    return GestureDecision(gesture, tuple(reasons))


def shown_gesture(decided: str | None, attached_kind: str | None) -> str:
    """The case's gesture as people see it: the attached offer's rung; with none attached,
    ``none`` or ``apology_and_help`` (a compensating decision whose offer was dropped is
    help and an apology)."""
    if attached_kind:
        return GESTURE_OF_KIND.get(attached_kind, "goodwill")
    if decided in (None, "", "none"):
        return "none"
    return "apology_and_help"


def tier_of(spec: OfferSpec | None) -> str:
    if spec is None:
        return "none"
    return spec.tier


# ---------------------------------------------------------------------------
# what a text promises

_AMOUNT = (
    r"(?:[$£€]\s?\d[\d,]*(?:\.\d\d)?|\d[\d,]*(?:\.\d\d)?\s?(?:dollars|pounds|euros|usd|gbp|eur))"
)
#: what each offer kind sounds like inside a sentence where we promise something
_PROMISE_PATTERNS: dict[str, re.Pattern[str]] = {
    "refund": re.compile(r"\brefund\w*|\bmoney back\b|\breimburs\w+", re.I),
    "percent_coupon": re.compile(
        r"\b\d{1,3}\s?% off\b|\b(?:discount|coupon|promo)(?: code)?\b", re.I
    ),
    "amount_coupon": re.compile(rf"{_AMOUNT}\s+(?:off|coupon|voucher|gift card)\b", re.I),
    "store_credit": re.compile(r"\bcredit(?:ed)?\b(?! card)", re.I),
    "shipping_upgrade": re.compile(
        r"\b(?:upgrad\w* (?:your )?(?:shipping|delivery)|(?:overnight|express|next[- ]day) "
        r"(?:shipping|delivery)|shipped overnight)\b",
        re.I,
    ),
    "free_replacement": re.compile(
        r"\b(?:(?:a |an )?(?:brand[- ]new|replacement|new) (?:pair|one|unit|item|order|device)|"
        r"send(?:ing)? you (?:a )?(?:new|replacement)|replace (?:it|them)\b)",
        re.I,
    ),
    "handwritten_card": re.compile(r"\bhand-?written (?:card|note)\b", re.I),
    "flowers": re.compile(r"\b(?:flowers|bouquet)\b", re.I),
    "cookies": re.compile(r"\b(?:cookies|a treat)\b", re.I),
}
_PROMISE_MARKER = re.compile(
    r"\b(?:we|i)(?:'ve|'ll|'re|'m|'d| have| will| are| am| can| would| could)?\s+(?:\w+\s+){0,3}?"
    r"(?:send\w*|sent|add\w*|refund\w*|upgrad\w*|credit\w*|replac\w*|give|giving|gave|offer\w*|"
    r"issu\w*|post\w*|ship\w*|cover\w*|waiv\w*|reimburs\w*|put|arrang\w*|comp\w*|deliver\w*)\b"
    r"|\bhere(?:'s| is| are)\b|\bon (?:its|their|the) way\b|\b(?:with |use )?(?:the )?code\b|"
    r"\byou'?ll (?:get|receive|have|see)\b|\bon us\b|\bat no (?:charge|cost)\b|\bfree of charge\b",
    re.I,
)


@dataclass(frozen=True)
class Promise:
    kind: str
    phrase: str
    amount: float | None = None

    @property
    def money(self) -> bool:
        return self.kind in MONEY_KINDS

    @property
    def tier(self) -> str:
        return GESTURE_OF_KIND.get(self.kind, "goodwill")


def _amount(text: str) -> float | None:
    m = re.search(r"[$£€]\s?(\d[\d,]*(?:\.\d\d)?)", text)
    if not m:
        return None
    try:
        return float(m.group(1).replace(",", ""))
    except ValueError:  # pragma: no cover - the pattern only matches numbers
        return None


_QUOTED = re.compile(r"“[^”]{0,300}”|\"[^\"\n]{0,300}\"")


def promises(text: str) -> list[Promise]:
    """The gestures ``text`` promises, by offer kind (one per kind, first phrase).

    Words in quotation marks are the customer's, quoted back, not a promise.
    """
    text = _QUOTED.sub(" ", text or "")
    # only sentences where we promise something ("we're sending…", "here's…", "I've added…")
    text = " ".join(s for s in re.split(r"(?<=[.!?])\s+|\n+", text) if _PROMISE_MARKER.search(s))
    out: list[Promise] = []
    for kind, pattern in _PROMISE_PATTERNS.items():
        m = pattern.search(text)
        if m:
            around = (text or "")[max(0, m.start() - 20) : m.end() + 20]
            out.append(Promise(kind, m.group(0), _amount(around) if kind in MONEY_KINDS else None))
    return out


def _same_gesture(promise: Promise, spec: OfferSpec, wording: str) -> bool:
    """Whether the attached offer is what ``promise`` promises."""
    if promise.kind == spec.kind:
        return True
    # the attached offer's own wording may match another pattern ("20% off … code")
    return bool(_PROMISE_PATTERNS[promise.kind].search(wording))


def promise_problems(
    text: str, attached: OfferSpec | None, attached_wording: str = ""
) -> list[tuple[Promise, str]]:
    """Promises in ``text`` that the attached offer does not cover, each with the reason.

    A money promise (refund, credit, coupon) with no such offer attached is
    reported too; the caller decides whether the approver's tier covers it
    (:func:`free_text_cost`).
    """
    problems: list[tuple[Promise, str]] = []
    for p in promises(text):
        if attached is not None and _same_gesture(p, attached, attached_wording):
            continue
        what = f"the reply promises {p.kind.replace('_', ' ')} (“{p.phrase}”)"
        if attached is None:
            problems.append((p, f"{what} but no offer is attached"))
        else:
            problems.append((p, f"{what} but the attached offer is {attached.key}"))
    return problems


def free_text_cost(promise: Promise, catalogue: list[OfferSpec]) -> float:
    """What a free-text money promise costs, for its approval tier: the amount written, else
    the dearest catalogue offer of that kind (0 when the catalogue has none)."""
    same = [o.cost for o in catalogue if o.kind == promise.kind]
    if promise.amount is not None:
        return max(promise.amount, min(same) if same else 0.0)
    return max(same) if same else 0.0
