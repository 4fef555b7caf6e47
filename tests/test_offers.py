"""The pure offer chooser, coupon codes, permissions, personalisation and the send guard."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from listener.cases.sending import Reply, Rules, addressable, links_in, violations
from listener.config import ApprovalSettings, CapsSettings, OfferSpec, RecoverySettings
from listener.errors import PermissionDenied
from listener.offers import (
    CODE_ALPHABET,
    CaseFacts,
    Limits,
    OfferHistory,
    cap_violations,
    describe,
    fits,
    new_coupon_code,
    suggest_offers,
)
from listener.permissions import can, may_approve_offer, require
from listener.personalize import brand_free_products, extract_order, extract_products

ROOT = Path(__file__).resolve().parent.parent


def catalogue() -> list[OfferSpec]:
    data = yaml.safe_load((ROOT / "config.yaml").read_text())
    return RecoverySettings.model_validate(data["recovery"]).offers


LIMITS = Limits(
    caps=CapsSettings(daily_budget=600, agent_daily_budget=250, customer_offers=2),
    approval=ApprovalSettings(lead_above=50),
)


def facts(
    category: str = "delivery",
    priority: int = 55,
    score: float = 0.9,
    circ: tuple[str, ...] = (),
) -> CaseFacts:
    return CaseFacts(category=category, priority=priority, unhappy_score=score, circumstances=circ)


# -- chooser ---------------------------------------------------------------------------


def test_lost_package_ranks_shipping_upgrade_first_with_reasons() -> None:
    out = suggest_offers(catalogue(), facts(), OfferHistory(team_spent_today=260), LIMITS)
    assert [s.rank for s in out] == list(range(len(out)))
    top = out[0]
    assert top.key == "overnight_upgrade" and top.eligible
    assert "delivery" in top.reasons
    assert "budget left $340" in top.reasons
    assert len([s for s in out if s.eligible]) <= 3


def test_repeat_complaint_is_a_reason_and_bereavement_gets_flowers() -> None:
    history = OfferHistory(earlier_cases=1, period=timedelta(days=30))
    out = suggest_offers(catalogue(), facts(circ=("bereavement",)), history, LIMITS)
    assert out[0].key == "condolence_flowers"
    assert "2nd complaint in 30 days" in out[0].reasons
    assert "bereavement" in out[0].reasons
    assert out[0].requires_lead  # $55 > $50
    # without the circumstance, flowers are never suggested
    assert "condolence_flowers" not in {
        s.key for s in suggest_offers(catalogue(), facts(), history, LIMITS)
    }


def test_praise_gets_no_offer_and_severity_filters_apply() -> None:
    assert (
        suggest_offers(catalogue(), facts(category="praise", score=0.1), OfferHistory(), LIMITS)
        == []
    )
    low = suggest_offers(
        catalogue(),
        facts(category="damaged_or_defective", score=0.5, priority=30),
        OfferHistory(),
        LIMITS,
    )
    keys = {s.key for s in low}
    assert "free_replacement" not in keys  # min_unhappy 0.6
    assert "handwritten_card" not in keys  # min_priority 40


def test_caps_exclude_with_visible_reasons() -> None:
    spent = OfferHistory(team_spent_today=590)
    out = suggest_offers(catalogue(), facts(), spent, LIMITS)
    excluded = {s.key: s.excluded for s in out if not s.eligible}
    assert (
        "free_replacement" in excluded and "daily budget: $10 left" in excluded["free_replacement"]
    )
    eligible = [s for s in out if s.eligible]
    assert all(s.cost <= 10 for s in eligible)
    assert out.index(eligible[-1]) < min(out.index(s) for s in out if not s.eligible)

    greedy = OfferHistory(offer_keys=("coupon_20", "overnight_upgrade"))
    assert all(not s.eligible for s in suggest_offers(catalogue(), facts(), greedy, LIMITS))
    assert (
        "customer already got 2 offer(s) in 30 days"
        in cap_violations(catalogue()[0], greedy, LIMITS)[0]
    )

    agent = OfferHistory(agent="carla", agent_spent_today=240)
    spec = next(o for o in catalogue() if o.key == "overnight_upgrade")
    assert cap_violations(spec, agent, LIMITS) == ["carla's daily budget: $10 left, it costs $18"]


def test_per_customer_cap_and_disabled_offers() -> None:
    spec = next(o for o in catalogue() if o.key == "free_replacement")
    assert cap_violations(spec, OfferHistory(offer_keys=("free_replacement",)), Limits())
    off = spec.model_copy(update={"enabled": False})
    assert not fits(off, facts(category="damaged_or_defective"))


def test_chooser_is_deterministic() -> None:
    a = suggest_offers(catalogue(), facts(), OfferHistory(), LIMITS)
    b = suggest_offers(catalogue(), facts(), OfferHistory(), LIMITS)
    assert [s.as_dict() for s in a] == [s.as_dict() for s in b]


def test_offer_spec_validation() -> None:
    with pytest.raises(ValueError, match="unknown offer kind"):
        OfferSpec(key="x", kind="yacht", description="a yacht")
    with pytest.raises(ValueError, match="duplicate offer key"):
        RecoverySettings(
            offers=[
                OfferSpec(key="a", kind="flowers", description="x"),
                OfferSpec(key="a", kind="cookies", description="y"),
            ]
        )


def test_coupon_codes_are_unique_and_unambiguous() -> None:
    codes = {new_coupon_code("ZS") for _ in range(2000)}
    assert len(codes) == 2000
    for code in list(codes)[:50]:
        assert re.fullmatch(rf"ZS-[{CODE_ALPHABET}]{{4}}-[{CODE_ALPHABET}]{{4}}", code)
    assert not set("0O1IL5S2Z8B") & set(CODE_ALPHABET)
    assert describe("code {code} inside", "ZS-AAAA-CCCC") == "code ZS-AAAA-CCCC inside"
    assert describe("code {code}", None) == "code [CODE]"


# -- permissions -------------------------------------------------------------------------


def test_roles() -> None:
    for action in ("claim", "edit_draft", "select_offer", "approve", "reject", "resolve"):
        assert can("agent", action) and can("lead", action) and can("admin", action)
        assert not can("marketing", action)
        with pytest.raises(PermissionDenied):
            require("marketing", action, actor="mo")
    assert can("marketing", "read") and can("marketing", "report")
    assert not can("agent", "assign") and can("lead", "assign")
    assert not can("agent", "release", actor="ann", owner="bob")
    assert can("lead", "release", actor="lee", owner="bob")
    with pytest.raises(PermissionDenied, match="unknown role"):
        require("intern", "claim")


def test_approval_tier() -> None:
    assert may_approve_offer("agent", "ann", 18, 50, {"ann"}) is None
    assert "lead" in (may_approve_offer("agent", "ann", 65, 50, set()) or "")
    assert "themselves" in (may_approve_offer("lead", "lee", 65, 50, {"lee"}) or "")
    assert may_approve_offer("lead", "lee", 65, 50, {"ann"}) is None


# -- personalisation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "order"),
    [
        ("tracking hasn't moved. Order #ZS-48213. Getting frustrated.", "order #ZS-48213"),
        ("order number 123456 never came", "order #123456"),
        ("my order is late #4521", "order #4521"),
        ("I ordered a 10.5 and got a 9", None),
        ("", None),
    ],
)
def test_extract_order(text: str, order: str | None) -> None:
    assert extract_order(text) == order


def test_extract_products() -> None:
    brand = ["Zephyr Shoes", "Zephyr", "@zephyrshoes"]
    assert brand_free_products("The sole came off my new Zephyr Shoes loafers", brand) == [
        "loafers"
    ]
    assert brand_free_products("Ordered trail runners from Zephyr Shoes", brand) == [
        "trail runners"
    ]
    assert brand_free_products("@zephyrshoes where is my package", brand) == []
    assert extract_products("hiking-boots and socks") == ["hiking boots", "socks"]


def test_draft_context_personalises() -> None:
    from datetime import UTC, datetime

    from listener.drafting import draft_context

    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    ctx = draft_context(
        brand_name="Zephyr Shoes",
        brand_voice="warm",
        brand_handle="@zephyrshoes",
        handle="priya.s",
        display_name="Priya Sharma",
        channel="x_reply",
        category="damaged_or_defective",
        circumstances=[],
        post_text="The sole came off my new Zephyr Shoes loafers. Order #ZS-1234",
        published_at=now - timedelta(hours=3),
        now=now,
        agent_name="Carla Reyes",
        signature="Carla",
        offer={"key": "k", "kind": "flowers", "description": "flowers", "physical": True},
    )
    # X reads "@priya.s" as the account @priya: the reply does not @mention her at all
    assert ctx["name"] == "Priya" and ctx["handle"] == ""
    assert ctx["product"] == "loafers" and ctx["order"] == "order #ZS-1234"
    assert ctx["posted_ago"] == "3 hours ago" and ctx["agent_first"] == "Carla"
    assert ctx["address_request"] is True and ctx["offer"]["description"] == "flowers"


# -- the send guard ----------------------------------------------------------------------


RULES = Rules(brand_handles=("@zephyrshoes",), allowed_domains=("zephyrshoes.example",))


def test_guard() -> None:
    ok = violations(
        Reply(
            "@ann Sorry! See https://zephyrshoes.example/help", "x_reply", "ann", in_reply_to="1"
        ),
        RULES,
    )
    assert ok == []
    bad = violations(
        Reply(
            "@ann @bob see https://evil.example/x and bit.ly/abc " + "x" * 300,
            "x_reply",
            "ann",
            in_reply_to="1",
            already_replied=True,
        ),
        RULES,
    )
    text = " | ".join(bad)
    assert "weighted" in text and "@bob" in text and "evil.example" in text
    assert "already replied" in text
    assert links_in("go to www.example.com/a, or help.zephyrshoes.example.") == [
        "www.example.com/a",
        "help.zephyrshoes.example",
    ]


def test_addressee_rules_are_the_channels() -> None:
    """An author whose stored handle X cannot @mention is never addressed by @mention."""
    assert addressable("x_reply", "@sam_flyer") == "sam_flyer"
    assert addressable("x_reply", "priya.s") is None  # X reads "@priya.s" as @priya
    assert addressable("x_reply", "joe @elonmusk") is None
    assert addressable("x_reply", "a" * 16) is None
    for handle, text in (("priya.s", "@priya.s Hi Priya"), ("joe @elonmusk", "@joe @elonmusk hi")):
        (problem,) = violations(Reply(text, "x_reply", handle, in_reply_to="1"), RULES)
        assert "cannot be @mentioned" in problem and "unsolicited @mentions" in problem
    # without the @mention the same reply may go
    assert (
        violations(Reply("Hi Priya, so sorry!", "x_reply", "priya.s", in_reply_to="1"), RULES) == []
    )
