"""What a post says before we answer it: kind, severity, specifics, circumstances."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from listener.understanding import detect_circumstances, extract_specifics, understand

DEV = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "twcs-dev"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("My package just got here. All good, thank you!", "resolved"),
        ("@acme all sorted now, thanks for the help!", "resolved"),
        ("Already fixed! Thank you!", "resolved"),
        ("Love my new trail runners from @acme, best pair I've owned!", "praise"),
        ("@acme do you ship to Canada?", "question"),
        ("@acme where is my order?? it's been 3 weeks", "complaint"),
        ("@acme my order never arrived and nobody answers the chat", "complaint"),
        ("@acme ok", "other"),
        ("DM sent", "other"),
        ("@acme thanks for nothing, still no refund", "complaint"),
        ("@acme no it's still broken, thanks", "complaint"),
    ],
)
def test_kind(text: str, kind: str) -> None:
    assert understand(text).kind == kind, understand(text).reasons


def test_thanks_after_the_brands_reply_is_resolved() -> None:
    assert understand("@acme thank you!", context_by_brand=True).kind == "resolved"


def test_resolved_post_has_no_problem_and_severity_zero() -> None:
    u = understand("My package just got here. All good, thank you!")
    assert (u.kind, u.severity, u.problem, u.failed_order) == ("resolved", 0, None, False)


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("@acme the app is a bit slow today", 1, 1),
        ("@acme I was charged twice for the same order", 2, 2),
        ("@acme WORST SERVICE EVER, charged twice and nobody cares!!!", 3, 3),
        ("@acme do you sell gift cards?", 0, 0),
    ],
)
def test_severity(text: str, low: int, high: int) -> None:
    assert low <= understand(text).severity <= high


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("my Apple Watch battery died at the gym", ()),
        ("my phone died and I lost my boarding pass", ()),
        ("I'm sick of waiting for this delivery", ()),
        ("can't wait for the Christmas sale", ()),
        ("my dad passed away last week and I need shoes for the funeral", ("bereavement",)),
        ("I lost my mum in October", ("bereavement",)),
        ("the heels for my sister's wedding are lost", ("event_deadline",)),
        ("we have a flight to catch and the driver never came", ("event_deadline",)),
        ("my 3 year old son was on the flight", ("child",)),
        ("sitting here with a broken leg and no service", ("illness",)),
        ("I'm recovering from surgery so can't get to the post office", ("illness",)),
        ("the disabled toilet was locked again", ("accessibility",)),
        ("I've been a loyal customer for 4 years", ("loyal_customer",)),
        ("customer for 12 yrs and this is how you treat me", ("loyal_customer",)),
    ],
)
def test_circumstances_come_from_context_not_single_words(
    text: str, expected: tuple[str, ...]
) -> None:
    found, phrases = detect_circumstances(text)
    assert found == expected
    assert set(phrases) == set(expected)


def test_specifics_are_phrases_from_the_text() -> None:
    text = "@acme My Apple Watch battery died at the gym and order #AB-12345 took 6 days"
    specifics = extract_specifics(text, ["acme"])
    assert specifics, specifics
    for s in specifics:
        assert s.lower() in text.lower()
    joined = " ".join(specifics).lower()
    assert "battery died" in joined
    assert "apple watch" in joined


def test_failed_order_and_refund_requests() -> None:
    assert understand("@acme my parcel never arrived").failed_order
    assert understand("@acme the sole came off after three days").failed_order
    assert understand("@acme I want my money back").asks_refund
    assert not understand("@acme love the new colours").failed_order


@pytest.mark.parametrize(
    "text",
    ["", " ", "\x00\x01", "@a @b @c @d @e", "?" * 10_000, "💥" * 500, "<script>alert(1)</script>"],
)
def test_hostile_or_empty_text_gives_an_answer(text: str) -> None:
    u = understand(text)
    assert u.kind in ("complaint", "question", "praise", "resolved", "other")
    assert 0 <= u.severity <= 3


@pytest.mark.skipif(not (DEV / "labels.jsonl").exists(), reason="twcs-dev not present")
def test_dev_set_floors() -> None:
    """The annotated dev set (read in place, never copied): kind and circumstance floors."""
    posts = {}
    with (DEV / "inbound.jsonl").open() as f:
        for line in f:
            d = json.loads(line)
            posts[d["tweet_id"]] = d
    right = tp = fp = fn = 0
    labels = [json.loads(line) for line in (DEV / "labels.jsonl").open()]
    for label in labels:
        post = posts[label["tweet_id"]]
        u = understand(
            post["text"],
            context=post.get("in_reply_to_text"),
            context_by_brand=post.get("in_reply_to_author") == post["brand"],
        )
        right += u.kind == label["kind"]
        got, want = set(u.circumstances), set(label["circumstances"])
        tp, fp, fn = tp + len(got & want), fp + len(got - want), fn + len(want - got)
    assert right / len(labels) >= 0.7
    assert tp / max(1, tp + fp) >= 0.9
    assert tp / max(1, tp + fn) >= 0.5


def test_a_named_event_on_a_near_day_is_a_deadline() -> None:
    from listener.understanding import detect_circumstances

    assert detect_circumstances("Still not delivered. Race is Saturday.")[0] == ("event_deadline",)
    assert detect_circumstances("wrong size again. Kid starts Monday.")[0] == ("event_deadline",)
    assert detect_circumstances("the school is closed today")[0] == ()


def test_an_allergic_reaction_is_illness_an_allergen_question_is_not() -> None:
    from listener.understanding import detect_circumstances

    said = "@Tesco your label says nothing about nut allergies! I nearly died."
    assert detect_circumstances(said)[0] == ("illness",)
    assert detect_circumstances("does this contain nut allergens?")[0] == ()
