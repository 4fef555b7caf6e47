"""Someone's health or safety at risk: the top of the queue, help on the spot first, no
coupon, and none of the usual "DM us your booking reference" (twcs-dev: "There is a man in
3A who is moaning in pain and sweating" was answered "Sorry – he's not well. If you DM us
the booking reference, I'll see what I can do right away.")."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from test_cases import case_ids, post, social_app
from test_drafts import composed

from listener.app import App
from listener.cases.queue import list_queue
from listener.config import GestureSettings
from listener.gestures import GestureFacts, decide_gesture
from listener.triage import TriageInput, score_case
from listener.understanding import understand

ON_BOARD = (
    "@zephyrair I'm on flight ZA 404 to Denver. There is a man in 14C who is moaning in pain "
    "and sweating. He's not well."
)


@pytest.mark.parametrize(
    "text",
    [
        ON_BOARD,
        "@acme a customer collapsed on the floor of your Leeds store and nobody came",
        "@acme there's a medical emergency on board and the crew can't find a doctor",
        "@acme my son is having an allergic reaction to your cookies, the label said nut free",
        "@acme the man next to me is not breathing, we need an ambulance",
    ],
)
def test_someone_in_danger_is_read_as_the_most_serious_case(text: str) -> None:
    u = understand(text)
    assert u.emergency, text
    assert u.kind == "complaint" and u.severity == 3
    assert any("health or safety" in r for r in u.reasons)


@pytest.mark.parametrize(
    "text",
    [
        "@acme the bill nearly gave me a heart attack",
        "I had a medical emergency last month and had to cancel, where is my refund?",
        "@acme my husband is unwell, can we move our booking to next week?",
        "@acme stop moaning about the weather and fix my wifi",
        "waiting on hold is such a pain",
        "@acme your app keeps crashing, what a pain in the neck",
    ],
)
def test_figures_of_speech_and_past_events_are_not_emergencies(text: str) -> None:
    assert understand(text).emergency is None, text


def _compose(text: str, category: str) -> str:
    parts = composed(text, category)
    return " ".join(
        p for p in (parts.opening, parts.circumstance, parts.question, parts.closing) if p
    )


def test_the_reply_asks_for_help_on_the_spot_first() -> None:
    reply = _compose(ON_BOARD, "travel_disruption")
    assert "crew right away" in reply, reply
    for wrong in ("DM", "booking reference", "sorry", "not well", "feeling better"):
        assert wrong.lower() not in reply.lower(), reply
    store = _compose(
        "@acme a customer collapsed on the floor of your Leeds store and nobody came", "other"
    )
    assert "emergency services" in store and "crew" not in store, store


def test_no_coupon_for_an_emergency_and_the_top_of_the_queue() -> None:
    u = understand(ON_BOARD)
    decision = decide_gesture(
        GestureFacts(kind=u.kind, severity=u.severity, emergency=True, failed_order=True),
        GestureSettings(),
    )
    assert decision.gesture == "apology_and_help" and not decision.compensates
    calm = TriageInput(
        label="neutral",
        unhappy_score=0.2,
        category="travel_disruption",
        circumstances=(),
        followers=None,
        verified=False,
        posts_in_case=1,
        case_span=None,
    )
    urgent = score_case(TriageInput(**{**calm.__dict__, "emergency": True}))
    assert urgent.priority >= 90 > score_case(calm).priority
    assert urgent.reasons[0] == "someone's health or safety at risk"


def test_through_the_pipeline(make_app: Callable[..., App], tmp_path: Path) -> None:
    app = social_app(
        make_app,
        tmp_path,
        [
            post(
                1,
                "sam",
                "@zephyrshoes a customer collapsed on the floor of your Leeds store and the "
                "staff just stood there",
            ),
            post(2, "dee", "@zephyrshoes my order #88231 never arrived and it's been two weeks"),
        ],
    )
    assert len(case_ids(app)) == 2
    queue = [c.contract() for c in list_queue(app)]
    first = queue[0]
    assert first["author"] == "sam", queue  # above the delay
    assert first["priority"] >= 90 and first["gesture"] == "apology_and_help"
    assert first["offer"] is None
    assert "emergency services" in first["draft"], first["draft"]
    assert "DM" not in first["draft"] and "order number" not in first["draft"], first["draft"]


def test_a_category_correction_keeps_someone_in_danger_on_top() -> None:
    from datetime import UTC, datetime

    from listener.cases.retriage import CaseTriage, decide, verdict_of

    at = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    case = CaseTriage(
        category="travel_disruption",
        priority=97,
        reasons=("someone's health or safety at risk", "negative 0.99"),
        unhappy_score=0.99,
        circumstances=(),
        followers=None,
        verified=False,
    )
    fixed = verdict_of(1, at, True, 0.99, "travel_disruption", (True, "other", "ann"))
    out = decide(case, [fixed], fixed)
    assert out.priority >= 90 and out.reasons[0] == "someone's health or safety at risk"
