"""#16 item 4: a correction reaches its case — priority, category, reasons, an unedited draft."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from test_cases import case_ids, events, post, social_app

from listener import models as m
from listener.app import App
from listener.cases.actions import edit_draft, reject
from listener.cases.labels import correct_label
from listener.cases.retriage import CaseTriage, decide, verdict_of
from listener.cases.view import case_view
from listener.errors import NotFound, PermissionDenied

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)

LATE = (
    "@zephyrshoes my order #88231 was supposed to arrive Friday for my sister's wedding "
    "and it's still not here. Tracking hasn't moved in 5 days. Terrible, so disappointed."
)


def _case(**kw: object) -> CaseTriage:
    base: dict[str, object] = {
        "category": "product_or_policy",
        "priority": 40,
        "reasons": ("negative 0.70", "product or policy"),
        "unhappy_score": 0.7,
        "circumstances": (),
        "followers": 120,
        "verified": False,
    }
    base.update(kw)
    return CaseTriage(**base)  # type: ignore[arg-type]


# -- the pure decision -------------------------------------------------------------------------


def test_a_category_correction_retriages_with_the_one_triage_rule_set() -> None:
    model = verdict_of(1, T0, True, 0.7, "product_or_policy", None)
    fixed = verdict_of(1, T0, True, 0.7, "product_or_policy", (True, "delivery", "ann"))
    assert fixed.category == "delivery" and fixed.score == 1.0 and fixed.corrected_by == "ann"
    out = decide(_case(), [fixed], fixed)
    assert out.category == "delivery"
    assert "delivery" in out.reasons and out.reasons[-1] == "corrected by ann"
    assert out.priority > 40  # delivery weighs more than product/policy, and the agent is sure
    assert set(out.changed) == {"priority", "category", "unhappy_score"}
    assert out.redraft
    # the model's own verdict, uncorrected, changes nothing about the category
    same = decide(_case(), [model], model)
    assert same.category == "product_or_policy" and "category" not in same.changed


def test_not_unhappy_after_all_drops_the_case_to_priority_zero_with_the_reason() -> None:
    fixed = verdict_of(1, T0, True, 0.81, "delivery", (False, None, "bob"))
    out = decide(_case(category="delivery"), [fixed], fixed)
    assert out.priority == 0 and out.unhappy_score == 0.0
    assert out.reasons == ["no unhappy post (corrected by bob)"]
    assert out.category == "delivery"  # no category named: the case keeps its own


def test_one_of_several_posts_corrected_keeps_the_others_verdicts() -> None:
    first = verdict_of(1, T0, True, 0.9, "delivery", None)
    second = verdict_of(2, T0 + timedelta(hours=3), True, 0.4, "delivery", (False, None, "ann"))
    out = decide(_case(category="delivery", unhappy_score=0.9), [first, second], second)
    assert out.unhappy_score == 0.9
    assert any(r.startswith("2nd post") for r in out.reasons)


# -- end to end: a correction re-triages its case -------------------------------------------


def _app(make_app: Callable[..., App], tmp_path: Path) -> tuple[App, int, int]:
    app = social_app(make_app, tmp_path, [post(1, "maya_k", LATE, at=datetime.now(UTC))])
    (cid,) = case_ids(app)
    with app.sessions() as s:
        mid = s.scalars(select(m.Mention.id).where(m.Mention.case_id == cid)).one()
    return app, cid, mid


def test_a_correction_retriages_its_case(make_app: Callable[..., App], tmp_path: Path) -> None:
    app, cid, mid = _app(make_app, tmp_path)
    before = case_view(app, cid)
    assert before["reply"]["created_by"] == "listener"
    new_category = "billing" if before["category"] != "billing" else "delivery"

    done = correct_label(app, mid, "ann", unhappy=True, category=new_category)

    after = case_view(app, cid)
    assert done["retriaged"]["category"] == new_category
    assert after["category"] == new_category
    assert after["reasons"][-1] == "corrected by ann"
    assert after["priority"] == done["retriaged"]["priority"]
    # the unedited, machine-written draft is written again for the new triage; a grounded
    # draft quotes the customer, so it may read the same under another category, and then
    # no new version is made
    redrafted = "draft.edited" in events(app, cid)
    assert after["reply"]["version"] == before["reply"]["version"] + int(redrafted)
    assert redrafted or after["reply"]["text"] == before["reply"]["text"]
    assert after["reply"]["created_by"] == "listener"
    kinds = events(app, cid)
    assert kinds.count("case.retriaged") == 1 and kinds.count("mention.corrected") == 1
    expected = ["mention.corrected", "case.retriaged"] + ["draft.edited"] * redrafted
    assert kinds[-len(expected) :] == expected
    texts = [e["text"] for e in after["events"]]
    assert any("ann's correction re-triaged the case" in t for t in texts)
    assert redrafted == any("rewrote the reply after ann's correction" in t for t in texts)

    # not unhappy after all: bottom of the queue, with the reason
    correct_label(app, mid, "bob", unhappy=False)
    again = case_view(app, cid)
    assert again["priority"] == 0 and again["reasons"] == ["no unhappy post (corrected by bob)"]


def test_an_agents_edited_reply_is_never_rewritten(
    make_app: Callable[..., App], tmp_path: Path
) -> None:
    app, cid, mid = _app(make_app, tmp_path)
    edit_draft(app, cid, "ann", "Hi Maya, so sorry. Can you DM us order #88231? — Zoe")
    correct_label(app, mid, "bob", unhappy=True, category="billing")
    view = case_view(app, cid)
    assert view["category"] == "billing"
    assert view["reply"]["created_by"] == "ann"
    assert view["reply"]["text"].startswith("Hi Maya")


def test_a_closed_case_keeps_its_triage_and_bad_input_is_refused(
    make_app: Callable[..., App], tmp_path: Path
) -> None:
    app, cid, mid = _app(make_app, tmp_path)
    reject(app, cid, "ann", reason="spam")
    before = case_view(app, cid)
    done = correct_label(app, mid, "ann", unhappy=True, category="billing")
    assert done["retriaged"] is None
    after = case_view(app, cid)
    assert after["category"] == before["category"] and after["priority"] == before["priority"]
    assert "case.retriaged" not in events(app, cid)
    with pytest.raises(NotFound):
        correct_label(app, 999_999, "ann", unhappy=True)
    with pytest.raises(PermissionDenied):
        correct_label(app, mid, "mo", unhappy=False)  # marketing is read-only
    with pytest.raises(PermissionDenied):
        correct_label(app, mid, "nobody", unhappy=False)
