"""Grounded drafts: every sentence true to the post, specifics mirrored, one question,
channel rules kept, variety, and the gesture sentence derived from the attached offer."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from listener.cases.sending import Reply, Rules, violations
from listener.composing import mirror, problem_clause
from listener.drafting import draft_context, render
from listener.policy import x_weighted_length

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
CARD = {
    "key": "handwritten_card",
    "kind": "handwritten_card",
    "description": "a handwritten note from our team is on its way to you",
    "physical": True,
    "coupon": False,
}
UPGRADE = {
    "key": "overnight_upgrade",
    "kind": "shipping_upgrade",
    "description": "we've upgraded your shipping to overnight, on us",
    "physical": False,
    "coupon": False,
}


def draft(
    text: str,
    *,
    category: str | None = "delivery",
    channel: str = "x_reply",
    offer: dict[str, Any] | None = None,
    handle: str = "sam_k",
    name: str | None = "Sam Kerr",
    seed: str = "1",
    signoff: str = "– {agent_first}",
) -> str:
    ctx = draft_context(
        brand_name="Zephyr Shoes",
        brand_voice="warm",
        brand_handle="@zephyrshoes",
        handle=handle,
        display_name=name,
        channel=channel,
        category=category,
        circumstances=[],
        post_text=text,
        published_at=NOW,
        now=NOW,
        agent_name="Carla Reyes",
        signature="Carla Reyes · Zephyr Shoes",
        offer=offer,
        brand_terms=["Zephyr Shoes", "zephyrshoes"],
        signoff=signoff,
        seed=seed,
    )
    return render(ROOT / "templates", channel, category, ctx, seed=seed).text


def test_resolved_post_gets_thanks_and_no_false_premise() -> None:
    text = draft("My package just got here. All good, thank you!")
    low = text.lower()
    assert "didn't arrive" not in low and "hasn't" not in low and "sorry" not in low
    assert "thank" in low or "great" in low or "glad" in low
    assert "order number" not in low


def test_late_shoes_are_late_not_missing() -> None:
    text = draft("My shoes arrived two days late for the party. Not impressed.")
    low = text.lower()
    assert "should have your shoes by now" not in low
    assert "didn't arrive" not in low and "hasn't arrived" not in low
    assert "two days late" in low


def test_a_dead_battery_is_not_a_bereavement() -> None:
    text = draft("my Apple Watch battery died at the gym and now it won't charge", category=None)
    low = text.lower()
    assert "loss" not in low and "flowers" not in low and "condolence" not in low
    assert "apple watch" in low or "battery died" in low


def test_bereavement_is_named_once_with_care() -> None:
    text = draft(
        "My father passed away and the shoes I ordered for his funeral arrived two days late.",
        offer=CARD,
    )
    assert text.count("loss") == 1
    assert "handwritten note" in text


def test_the_gesture_sentence_follows_the_attached_offer() -> None:
    post = "My order never arrived and it's been two weeks."
    with_upgrade = draft(post, offer=UPGRADE)
    with_card = draft(post, offer=CARD)
    without = draft(post)
    assert "overnight" in with_upgrade and "handwritten" not in with_upgrade
    assert "handwritten" in with_card and "overnight" not in with_card
    assert "overnight" not in without and "handwritten" not in without


def test_ask_for_an_order_number_only_when_needed() -> None:
    assert "order number" in draft("My parcel never arrived, still waiting").lower()
    with_order = draft("My parcel never arrived, order #ZS-48213, still waiting").lower()
    assert "order number" not in with_order and "#zs-48213" in with_order
    app = draft("the app crashes every time I try to check out", category="app_or_website")
    assert "order number" not in app.lower() and "?" in app


def test_one_question_at_most() -> None:
    for post in (
        "My parcel never arrived, still waiting",
        "the app crashes every time I try to check out",
        "Charged twice for one order, what is going on",
    ):
        assert draft(post).count("?") <= 1


def test_mirroring_swaps_first_and_second_person() -> None:
    assert mirror("my order never came and you ignored me") == (
        "your order never came and we ignored you"
    )
    clause = problem_clause("@acme Hi! My box was crushed and the heel is cracked.")
    assert clause is not None and clause[0].startswith("your box was crushed")
    # an emoji selector after a letter (iOS's "I\ufe0f", twcs-dev Uber) is not part of the word
    clause = problem_clause("I\ufe0ft took our driver over 5 minutes to start moving for our ride")
    assert clause == ("it took your driver over 5 minutes to start moving for your ride", False)
    clause = problem_clause("Well I\ufe0f tried that yet it still doesn't work", plain=True)
    assert (
        clause is not None and clause[0].startswith("you tried that") and "\ufe0f" not in clause[0]
    )


@pytest.mark.parametrize("channel", ["x_reply", "bluesky_reply", "mastodon_reply"])
def test_social_drafts_fit_and_name_only_the_author(channel: str) -> None:
    post = (
        "@zephyrshoes @otherbrand @friend my order #ZS-99999999 never arrived, see "
        "https://evil.example/x and evil.com, and support at @zephyrhelp hung up on me twice. "
        + "Really annoyed. "
        * 10
    )
    text = draft(post, channel=channel, offer=CARD, name="Maximilianaoctavia Konstantinopolous")
    reply = Reply(
        text=text, channel=channel, author_handle="sam_k", recipient="sam_k", in_reply_to="1"
    )
    rules = Rules(brand_handles=("zephyrshoes",), brand_terms=("Zephyr Shoes",))
    assert violations(reply, rules) == [], text
    assert "otherbrand" not in text and "@friend" not in text and "evil." not in text
    if channel == "x_reply":
        assert x_weighted_length(text) <= 280


def test_drafts_are_varied() -> None:
    posts = [
        f"my {item} {problem} {when}"
        for item in ("order", "boots", "parcel", "refund", "sandals")
        for problem in ("never arrived", "came damaged", "is still missing", "was wrong")
        for when in ("last week", "after 3 days", "again")
    ]
    texts = [draft(p, seed=str(i), handle=f"user{i}", name=None) for i, p in enumerate(posts)]
    assert len(set(texts)) / len(texts) >= 0.9


def test_signoff_comes_from_config() -> None:
    text = draft("my parcel never arrived", signoff="Cheers, {agent_first} at {brand}")
    assert text.endswith("Cheers, Carla at Zephyr Shoes")


def test_email_drafts_have_a_subject_and_use_no_dm_language() -> None:
    ctx = draft_context(
        brand_name="Zephyr Shoes",
        brand_voice="warm",
        brand_handle=None,
        handle="sam@example.com",
        display_name="Sam Kerr",
        channel="email",
        category="delivery",
        circumstances=[],
        post_text="My parcel never arrived and nobody answers.",
        published_at=NOW,
        now=NOW,
        agent_name="Carla Reyes",
        signature="Carla",
    )
    out = render(ROOT / "templates", "email", "delivery", ctx, seed="x")
    assert out.subject and "Hi" not in out.subject and out.text.startswith("Hi Sam,")
    assert "DM" not in out.text
    assert "your parcel never arrived" in out.text.lower()


@pytest.mark.parametrize(
    "post",
    ["", "{{ 7*7 }} {% raw %}", "<script>alert(1)</script> my order never came", "\x00" * 20],
)
def test_hostile_posts_render_safely(post: str) -> None:
    text = draft(post)
    assert "49" not in text  # the post is data, never a template
    assert text.startswith("@sam_k ")
    # and markup or template syntax is never repeated to the customer
    for bad in ("<script", "alert(1)", "{{", "{%"):
        assert bad not in text, text


def test_a_feeling_or_a_threat_to_leave_is_not_echoed_as_their_problem() -> None:
    from listener.composing import problem_clause

    found = problem_clause(
        "why wasn't the earlier flight offered when I tried to rebook, not cool at all",
        plain=True,
    )
    assert found is None or not found[0].startswith("not cool")  # their question, quoted
    found = problem_clause(
        "Charged me twice for one order. Definitely won't ever be a customer again!",
        plain=True,
    )
    assert found is not None and "charged" in found[0].lower()
    found = problem_clause(
        "I get that it's a busy night but the manager was screaming at customers", plain=True
    )
    assert found is None or not found[0].lower().startswith("you get that")


def test_a_blog_posts_title_is_not_echoed_as_the_customers_words() -> None:
    from listener import models as m
    from listener.cases.offering import post_body

    body = "I returned the boots on October 3rd and the refund never came."
    post = m.Mention(title="My refund saga, part 2", text=f"My refund saga, part 2\n\n{body}")
    assert post_body(post) == body
    assert post_body(m.Mention(title=None, text="My order is late\n\nPlease help")) == (
        "My order is late\n\nPlease help"
    )


def test_a_team_signs_with_its_whole_name_an_agent_with_their_first() -> None:
    from listener.composing import agent_first

    assert agent_first("Carla Reyes") == "Carla"
    assert agent_first("The Loyalty Team") == "The Loyalty Team"  # never "– The"
    assert agent_first("M&S Care Team") == "M&S Care Team"


def test_a_complaint_put_as_a_question_is_quoted_when_it_names_the_failure() -> None:
    from listener.composing import problem_clause

    # the question carries the problem; the threat to leave after it never does
    found = problem_clause(
        "@bank what's with charging 15¢ to non-customers for a roll of quarters!? "
        "That's ridiculous! Definitely won't ever be a customer there!",
        plain=True,
    )
    assert found is not None
    assert "roll of quarters" in found[0] and "customer there" not in found[0]
    # our own handle inside their question is the "you" they meant
    found = problem_clause(
        "@acme why does @acme charge me twice for one order?", plain=True, brand_handles=("@acme",)
    )
    assert found == ("“why do you charge me twice for one order?” is a fair question", False)
    # "@brand is this …?" asks; it is not "we are this …"
    found = problem_clause(
        "@comcast is this where I report an outage?", plain=True, brand_handles=("@comcast",)
    )
    assert found is not None and "you are this" not in found[0] and "we are" not in found[0]
    # a statement with a question tacked on keeps the statement
    found = problem_clause(
        ".@air I didn't get my points from my last flights, who should I contact about that?",
        plain=True,
        brand_handles=("@air",),
    )
    assert found == ("you didn't get your points from your last flights", True)


def test_a_brands_possessive_handle_becomes_our() -> None:
    from listener.composing import problem_clause

    found = problem_clause(
        ".@eats’s surge pricing is ridiculous tonight", plain=True, brand_handles=("@eats",)
    )
    assert found is not None and found[0].startswith("our surge pricing")


def test_late_november_is_a_date_not_a_failure_and_labels_are_not_echoed() -> None:
    from listener.composing import problem_clause

    found = problem_clause(
        "I returned the boots on October 3rd. It is now late November. Still no refund.",
        limit=80,
        plain=True,
    )
    assert found == ("still no refund", False)
    found = problem_clause("update: still no package, 3rd day of asking", plain=True)
    assert found is not None and not found[0].lower().startswith("update")
    found = problem_clause("the rep told me it's 'not their problem' and hung up", plain=True)
    assert found is not None and found[0].count("'") - found[0].count("it's") in (0, 2)


def test_their_you_as_an_object_becomes_us_and_hashtag_runs_are_never_echoed() -> None:
    # twcs-dev: "I'll DM you if you can give me a real answer" came back "you'll DM we …"
    assert mirror("I'll DM you if you can give me a real answer") == (
        "you'll DM us if we can give you a real answer"
    )
    assert mirror("I'll let you know") == "you'll let us know"
    assert mirror("I think you lost my bag") == "you think we lost your bag"  # a subject
    # "#equipment #change #no #guaranteed #seats" is tags, not words to repeat
    found = problem_clause(
        "@Delta Same again! #equipment #change #no #guaranteed #seats #apologies", plain=True
    )
    assert found is None or "equipment change" not in found[0]


def test_mirroring_keeps_the_grammar_of_who_told_whom() -> None:
    from listener.composing import problem_clause
    from listener.understanding import understand

    found = problem_clause(
        "this is an inadequate response to me telling you I had to throw away the £18 order",
        plain=True,
    )
    assert found is not None and "telling us you had to throw away" in found[0]
    found = problem_clause(
        ":( Spent money on a ticket, the site says I get a full refund", plain=True
    )
    assert found is not None and found[0].startswith("spent money")
    # our handle as the object of a verb is "us", as a subject "we" (twcs-dev: "you have
    # flown we 15 times")
    handles = ("@AmericanAir",)
    for post, said in (
        ("I have flown @AmericanAir 15 times and left on time 4 times", "flown us 15 times"),
        ("I keep calling @AmericanAir and nobody picks up", "calling us and nobody"),
        ("I used to love @AmericanAir but my bag is lost", "love us but"),
        ("and @AmericanAir and the airport both lost my bag", "we and the airport"),
        ("@AmericanAir lost my bag again", "we lost your bag"),
        ("Worst customer service @AmericanAir, flight cancelled twice", "service, flight"),
    ):
        found = problem_clause(post, plain=True, brand_handles=handles)
        assert found is not None and said in found[0], (post, found)
    # "for the love of god" is exasperation, not praise
    assert understand("Change your hold music, a 2 min loop, for the love of god.").kind != "praise"


def test_a_customer_who_only_vents_hears_what_they_judged_in_their_word() -> None:
    from listener.composing import _judged

    assert _judged("@sprintcare is the worst customer service") == "customer service"
    assert _judged("@hulu Your support SUCKS!!!") == "support"
    assert _judged("Fuck Wells Fargo") is None  # nothing judged by name: no claim about it
    assert _judged("my app crashed") is None  # no judgement: their clause is echoed instead


def test_a_failed_order_gets_the_orders_question_whoever_was_slow() -> None:
    from listener.composing import compose
    from listener.understanding import understand

    post = "Ordered trail runners two weeks ago, still not delivered and nobody answers the chat."
    parts = compose(
        understand(post, category="rude_or_slow_service"),
        post=post,
        category="rude_or_slow_service",
        name="Dan",
        handle="@dan",
        products=["trail runners"],
        order="",
        offer=None,
        address_known=False,
        agent="Carla",
        brand="Zephyr",
        signoff="– {agent_first}",
        seed="1",
    )
    assert "order number" in parts.question, parts.question


def test_the_handle_they_speak_to_is_not_a_subject() -> None:
    from listener.composing import problem_clause

    found = problem_clause(
        "Oh @Delta you were very unhelpful :/ .: never had this problem.",
        plain=True,
        brand_handles=("@Delta",),
    )
    assert found is not None and not found[0].startswith("we we ") and ":/" not in found[0]
    found = problem_clause(
        "I told @Delta your crew lost my bag", plain=True, brand_handles=("@Delta",)
    )
    assert found == ("you told us our crew lost your bag", True)
    # a conversation's later post loses its own leading handles ("we It seems …" never)
    found = problem_clause(
        "@Delta the search on your website is broken.\n@Delta It seems this still isn't fixed.",
        plain=True,
        brand_handles=("@Delta",),
    )
    assert found is not None and not found[0].startswith("we It")


def test_a_thank_you_that_still_waits_is_not_great_news() -> None:
    from listener.understanding import understand

    def opening(post: str) -> str:
        u = understand(post, context="@sam Here to help! Send us a note", context_by_brand=True)
        assert u.kind == "resolved", u
        return composed(post, u=u).ack

    waiting = opening("@zephyr Thank you for your response. Put in a request and am waiting!")
    assert "keep an eye on it" in waiting and "great" not in waiting.lower(), waiting
    done = opening("@zephyr all sorted now, the parcel arrived this morning. Thank you!")
    assert "keep an eye" not in done, done


def composed(post: str, category: str = "other", u: Any = None) -> Any:
    """The reply's parts for ``post`` (read with ``category`` unless ``u`` is given)."""
    from listener.composing import compose
    from listener.understanding import understand

    return compose(
        u if u is not None else understand(post, category=category),
        post=post,
        category=category,
        name="Sam",
        handle="@sam",
        products=[],
        order="",
        offer=None,
        address_known=False,
        agent="Carla",
        brand="Zephyr",
        signoff="– {agent_first}",
        seed="3",
    )


def test_a_trip_is_asked_for_its_booking_reference_not_an_order_number() -> None:
    flight = composed(
        "@zephyrair I cancelled my flight within 24 hours and I want my money back",
        "returns_and_refunds",
    )
    assert "booking reference" in flight.question and "order" not in flight.question, flight
    standby = composed(
        "@Delta I had the option to see the standby list for 1445 but it's gone, you took me off",
        "delivery",
    )
    assert "order" not in standby.question, standby.question
    shoes = composed(
        "@zephyr I returned the boots a month ago, where is my refund?", "returns_and_refunds"
    )
    assert "order number" in shoes.question, shoes.question
