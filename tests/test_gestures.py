"""The gesture ladder (pure), what a text promises, and offer/text consistency at approval."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from test_cases import case_ids, post, social_app

from listener.app import App
from listener.cases.actions import approve, claim, edit_draft, select_offer
from listener.config import GestureSettings, OfferSpec
from listener.errors import PermissionDenied, PolicyViolation
from listener.gestures import (
    GestureFacts,
    decide_gesture,
    free_text_cost,
    promise_problems,
    promises,
    shown_gesture,
)
from listener.understanding import understand

RULES = GestureSettings()


def decide(text: str, **history: object) -> str:
    u = understand(text)
    facts = GestureFacts(
        kind=u.kind,
        severity=u.severity,
        circumstances=u.circumstances,
        failed_order=u.failed_order,
        asks_refund=u.asks_refund,
        **history,  # type: ignore[arg-type]
    )
    return decide_gesture(facts, RULES).gesture


@pytest.mark.parametrize(
    ("text", "gesture"),
    [
        ("My package just got here. All good, thank you!", "none"),
        ("Love my new loafers, best shoes ever!", "none"),
        ("Do you ship to Canada?", "none"),
        ("@acme the app is a bit slow today", "apology_and_help"),
        ("my Apple Watch battery died at the gym", "apology_and_help"),
        ("My order never arrived and it's been two weeks", "make_whole"),
        ("I was charged twice for the same order", "make_whole"),
        ("I want my money back, the sole came off after three days", "make_whole"),
        ("My dad passed away and the shoes for his funeral never arrived", "personal"),
        ("WORST SERVICE EVER, the rep hung up on me twice!!!", "goodwill"),
    ],
)
def test_ladder(text: str, gesture: str) -> None:
    assert decide(text) == gesture


def test_no_compensation_for_questions_praise_and_resolved_whatever_the_history() -> None:
    for text in ("Thanks, all sorted now!", "You're the best!", "What sizes do you stock?"):
        assert decide(text, earlier_cases=5) == "none"


def test_a_question_about_an_ongoing_failure_gets_help() -> None:
    facts = GestureFacts(kind="question", severity=1)
    decision = decide_gesture(facts, RULES)
    assert decision.gesture == "apology_and_help" and decision.reasons


def test_history_and_budget_scale_the_gesture() -> None:
    text = "my order was late again and support took hours"
    assert decide(text) in ("apology_and_help", "goodwill")
    assert decide(text, earlier_cases=2) == "goodwill"
    stepped = decide_gesture(
        GestureFacts(kind="complaint", severity=2, failed_order=True, budget_left=20.0), RULES
    )
    assert stepped.gesture == "goodwill" and any("budget" in r for r in stepped.reasons)


def test_rules_come_from_config() -> None:
    strict = GestureSettings(make_whole_failed_order=False, goodwill_min_severity=4)
    facts = GestureFacts(kind="complaint", severity=3, failed_order=True)
    assert decide_gesture(facts, strict).gesture == "apology_and_help"


def test_promises_in_text() -> None:
    kinds = {
        p.kind for p in promises("To make it right, we've upgraded your shipping to overnight.")
    }
    assert kinds == {"shipping_upgrade"}
    assert promises("Sorry to hear that you want your money back.") == []
    assert promises("Sorry about the “refund never came”, I'll check.") == []
    (refund,) = promises("I'll send you a $80 refund today.")
    assert refund.kind == "refund" and refund.amount == 80 and refund.money


def test_promise_problems_against_the_attached_offer() -> None:
    card = OfferSpec(key="card", kind="handwritten_card", cost=4, description="a card")
    text = "To make it right, we've upgraded your shipping to overnight, on us."
    (problem,) = promise_problems(text, card, "a handwritten note from our team")
    assert "shipping upgrade" in problem[1] and "card" in problem[1]
    upgrade = OfferSpec(key="up", kind="shipping_upgrade", cost=18, description="upgrade")
    assert promise_problems(text, upgrade, "we've upgraded your shipping to overnight") == []


def test_free_text_cost_uses_the_amount_or_the_catalogue() -> None:
    refund = OfferSpec(key="r", kind="refund", cost=12, description="r")
    (p,) = promises("We'll refund you in full.")
    assert free_text_cost(p, [refund]) == 12
    (p,) = promises("We'll refund you $120.")
    assert free_text_cost(p, [refund]) == 120


def test_shown_gesture() -> None:
    assert shown_gesture("make_whole", "refund") == "make_whole"
    assert shown_gesture("make_whole", None) == "apology_and_help"
    assert shown_gesture(None, None) == "none"
    assert shown_gesture("none", "handwritten_card") == "personal"


# -- through the pipeline and the case actions ------------------------------------------

FAILED = (
    "@zephyrshoes my order #ZS-12345 never arrived and it's been two weeks. "
    "Terrible service, so disappointed."
)


def test_praise_and_resolved_cases_carry_no_offer(
    make_app: Callable[..., App], tmp_path: Path
) -> None:
    posts = [
        post(1, "ann_b", "@zephyrshoes My package just got here. All good, thank you!"),
        post(2, "cy", "@zephyrshoes my Apple Watch battery died at the gym, so annoying"),
        post(3, "dee", FAILED),
    ]
    app = social_app(make_app, tmp_path, posts)
    from listener.cases.queue import list_queue

    queue = {c.author: c.contract() for c in list_queue(app)}
    for item in queue.values():
        assert item["gesture"] in ("none", "apology_and_help", "make_whole"), item
        if item["kind"] in ("praise", "resolved", "question"):
            assert item["offer"] is None
    if "cy" in queue:
        assert "loss" not in queue["cy"]["draft"] and "flowers" not in queue["cy"]["draft"]
        assert queue["cy"]["offer"] is None
    assert queue["dee"]["gesture"] == "make_whole" and queue["dee"]["offer"] is not None
    assert queue["dee"]["post_ids"] == ["1003"]


def test_changing_the_offer_after_an_edit_changes_the_promise(
    make_app: Callable[..., App], tmp_path: Path
) -> None:
    app = social_app(make_app, tmp_path, [post(1, "dee", FAILED, name="Dee Jones")])
    (cid,) = case_ids(app)
    claim(app, cid, "ann")
    summary = select_offer(app, cid, "ann", "overnight_upgrade")
    assert "overnight" in summary["draft"]
    edited = summary["draft"].replace("Dee", "Dee (we go way back)")
    edit_draft(app, cid, "ann", edited)
    summary = select_offer(app, cid, "ann", "handwritten_card")
    assert "handwritten note" in summary["draft"] and "overnight" not in summary["draft"]
    assert "(we go way back)" in summary["draft"]  # the agent's words are kept
    assert approve(app, cid, "ann")["status"] == "approved"


def test_approval_refuses_a_promise_that_is_not_attached(
    make_app: Callable[..., App], tmp_path: Path
) -> None:
    app = social_app(make_app, tmp_path, [post(1, "dee", FAILED, name="Dee Jones")])
    (cid,) = case_ids(app)
    claim(app, cid, "ann")
    select_offer(app, cid, "ann", "handwritten_card")
    edit_draft(app, cid, "ann", "@dee Sorry Dee! We're sending you flowers today. – Ann")
    with pytest.raises(PolicyViolation, match="flowers"):
        approve(app, cid, "ann")


def test_a_free_text_money_promise_needs_the_offers_tier(
    make_app: Callable[..., App], tmp_path: Path
) -> None:
    app = social_app(make_app, tmp_path, [post(1, "dee", FAILED, name="Dee Jones")])
    (cid,) = case_ids(app)
    claim(app, cid, "ann")
    select_offer(app, cid, "ann", None)
    edit_draft(app, cid, "ann", "@dee Sorry Dee, I'll refund you $90 today. – Ann")
    with pytest.raises(PermissionDenied, match="refund"):
        approve(app, cid, "ann")
    # a lead who did not write it may approve it; a small one needs no lead
    assert approve(app, cid, "lee", role="lead")["status"] == "approved"
