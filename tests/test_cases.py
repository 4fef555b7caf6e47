"""Case work end to end: drafts and offers from the pipeline, the case actions (one unit of
work: actor and role from the users table, claim, state, one event), caps and approval
tiers under concurrency, follow-ups and the team report."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select

from listener import models as m
from listener.app import App
from listener.cases.actions import (
    approve,
    assign,
    claim,
    edit_draft,
    mark_sent,
    reject,
    release,
    resolve,
    select_offer,
    set_fulfilment,
    snooze,
)
from listener.cases.queue import list_queue
from listener.cases.report import team_report
from listener.cases.sending import Reply, Rules, violations
from listener.cases.view import case_view as case_detail
from listener.errors import Conflict, NotFound, PermissionDenied, PolicyViolation
from listener.pipeline import poll_sources

ROOT = Path(__file__).resolve().parent.parent
CONFIG = yaml.safe_load((ROOT / "config.yaml").read_text())


def recovery_block(**changes: Any) -> dict[str, Any]:
    block = dict(CONFIG["recovery"])
    block.pop("templates_dir", None)
    block.update(changes)
    return block


def post(
    i: int,
    handle: str,
    text: str,
    *,
    name: str | None = None,
    email: str | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    at = at or datetime.now(UTC) - timedelta(hours=1)
    author: dict[str, Any] = {"handle": handle, "name": name or handle.title()}
    if email:
        author["email"] = email
    return {
        "id": str(1000 + i),
        "text": text,
        "author": author,
        "created_at": at.isoformat().replace("+00:00", "Z"),
        "platform": "x",
    }


def write_jsonl(path: Path, posts: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(p) + "\n" for p in posts))
    return path


#: the people these tests act as (the unit of work takes roles from the users table)
PEOPLE = (
    ("ann", "agent"),
    ("bob", "agent"),
    ("lee", "lead"),
    ("max", "lead"),
    ("mo", "marketing"),
)


def add_people(app: App, *people: tuple[str, str]) -> None:
    with app.sessions.begin() as s:
        for name, role in people or PEOPLE:
            s.add(m.User(username=name, role=role, password_hash="x"))


def social_app(
    make_app: Callable[..., App],
    tmp_path: Path,
    posts: list[dict[str, Any]],
    channel: str = "x_reply",
    **recovery: Any,
) -> App:
    path = write_jsonl(tmp_path / "posts.jsonl", posts)
    app = make_app(
        {
            "sources": [
                {
                    "name": "social",
                    "type": "jsonl",
                    "path": str(path),
                    "interval": "5m",
                    "options": {"channel": channel},
                }
            ],
            "recovery": recovery_block(**recovery),
        }
    )
    add_people(app)
    poll_sources(app)
    return app


def case_ids(app: App) -> list[int]:
    with app.sessions() as s:
        return list(s.scalars(select(m.Case.id).order_by(m.Case.id)))


def events(app: App, case_id: int) -> list[str]:
    with app.sessions() as s:
        return list(
            s.scalars(select(m.Event.kind).where(m.Event.case_id == case_id).order_by(m.Event.id))
        )


UNHAPPY = "My Zephyr Shoes loafers fell apart after two days, the sole came off. Terrible quality."


# -- acceptance 1: every unhappy example gets a checked draft; offers only where they fit ----


def test_every_unhappy_example_gets_a_draft_within_limits_and_offers_only_where_they_fit(
    make_app: Callable[..., App],
) -> None:
    app = make_app({"sources": CONFIG["sources"], "recovery": recovery_block()})
    poll_sources(app)
    with app.sessions() as s:
        unhappy = s.scalars(select(m.Mention).where(m.Mention.unhappy.is_(True))).all()
        assert len(unhappy) >= 10
        assert all(x.case_id is not None for x in unhappy)
        cases = s.scalars(select(m.Case)).unique().all()
        rules = Rules.from_settings(app.settings)
        with_offer = 0
        for case in cases:
            drafts = [d for d in case.drafts if d.status == "current"]
            assert len(drafts) == 1, f"case {case.id} has no draft"
            draft = drafts[0]
            mention = next(x for x in case.mentions if x.id == draft.in_reply_to_mention_id)
            reply = Reply(
                draft.text,
                draft.channel,
                author_handle=case.author.handle,
                recipient=case.author.email or case.author.handle,
                in_reply_to=mention.external_id,
                target_text=mention.text,
            )
            # the very rules approval and the outbox apply: every draft may be approved as is
            problems = violations(reply, rules)
            assert problems == [], (case.id, draft.text, problems)
            # the gesture ladder decides: an offer is attached (selected by the machine)
            # only when the case calls for compensation, with the decider's reasons
            assert case.kind and case.gesture and case.gesture_reasons
            attached = [o for o in case.offers if o.status == "selected"]
            if case.gesture in ("none", "apology_and_help") or case.kind != "complaint":
                assert attached == [], (case.id, case.kind, case.gesture)
            else:
                assert len(attached) <= 1
                if attached:
                    with_offer += 1
                    assert attached[0].rank == 0 and attached[0].reasons
                    ranked = [o for o in case.offers if o.status in ("selected", "suggested")]
                    assert len(ranked) <= app.settings.recovery.suggestions
        assert with_offer >= 5
        assert with_offer < len(cases)  # not every case carries an offer
    queue = [c.contract() for c in list_queue(app)]
    # the queue's offer is the attached one (or null), never a mere suggestion
    for c in queue:
        assert c["gesture"] in ("none", "apology_and_help", "goodwill", "make_whole", "personal")
        assert c["post_ids"] and c["kind"]
        if c["offer"] is not None:
            assert c["offer"]["status"] == "selected" and c["offer"]["reasons"]
        else:
            assert c["gesture"] in ("none", "apology_and_help")
    # the X drafts carry the attached offer's words (coupon codes appear only at approval)
    x_drafts = [c for c in queue if c["source"] == "example-social" and c["offer"]]
    assert x_drafts
    for c in x_drafts:
        spec = app.settings.recovery.offer(c["offer"]["key"])
        assert spec is not None
        words = spec.description.split("{code}")[0].strip().rstrip(",")
        assert words.lower() in c["draft"].lower(), (words, c["draft"])


# -- the workflow --------------------------------------------------------------------------


def test_claim_edit_offer_approve_and_the_event_trail(
    make_app: Callable[..., App],
    tmp_path: Path,
) -> None:
    app = social_app(
        make_app,
        tmp_path,
        [post(1, "priya", "@zephyrshoes " + UNHAPPY, name="Priya Sharma")],
        channel="x_reply",
    )
    (cid,) = case_ids(app)
    assert claim(app, cid, "ann")["assignee"] == "ann"
    with pytest.raises(Conflict, match="claimed by ann"):
        claim(app, cid, "bob")
    with pytest.raises(PermissionDenied):
        claim(app, cid, "bob", force=True)
    with pytest.raises(Conflict):
        edit_draft(app, cid, "bob", "hi")
    assert claim(app, cid, "lee", role="lead", force=True)["assignee"] == "lee"
    release(app, cid, "lee")
    claim(app, cid, "ann")

    summary = select_offer(app, cid, "ann", "coupon_20")
    assert summary["offer"]["key"] == "coupon_20" and summary["offer"]["status"] == "selected"
    assert "[CODE]" in summary["draft"]  # re-rendered with the chosen offer
    text = summary["draft"].replace("– Carla", "– Ann")
    summary = edit_draft(app, cid, "ann", text)
    assert summary["draft"] == text

    approved = approve(app, cid, "ann")
    assert approved["status"] == "approved"
    code = approved["offer"]["code"]
    assert code and code.startswith("ZS-")
    detail = case_detail(app, cid)
    (msg,) = detail["outbox"]
    assert code in msg["text"] and "[CODE]" not in msg["text"]
    assert msg["status"] == "pending" and msg["in_reply_to"] == "1001"
    kinds = [e["kind"] for e in detail["events"]]
    assert kinds[:2] == ["case.opened", "draft.created"]
    assert detail["events"][1]["data"]["offers"][0]["rank"] == 0
    for k in (
        "draft.created",
        "case.claimed",
        "case.released",
        "offer.selected",
        "draft.edited",
        "case.approved",
    ):
        assert k in kinds
    edit = [e for e in detail["events"] if e["kind"] == "draft.edited" and e["actor"] == "ann"]
    assert "-" in edit[0]["data"]["diff"] and "+" in edit[0]["data"]["diff"]
    assert "– Ann" in edit[0]["data"]["diff"]
    assert [e["actor"] for e in detail["events"] if e["kind"] == "case.approved"] == ["ann"]
    # approved: nothing more may change, and it cannot be approved twice
    with pytest.raises(Conflict):
        edit_draft(app, cid, "ann", "changed")
    with pytest.raises(Conflict):
        approve(app, cid, "ann")
    assert detail["budget"]["team_spent_today"] == 15


def test_marketing_is_read_only(make_app: Callable[..., App], tmp_path: Path) -> None:
    app = social_app(make_app, tmp_path, [post(1, "priya", UNHAPPY)])
    (cid,) = case_ids(app)
    mk = {"role": "marketing"}
    calls: list[Callable[[], Any]] = [
        lambda: claim(app, cid, "mo", **mk),
        lambda: release(app, cid, "mo", **mk),
        lambda: assign(app, cid, "mo", "ann", **mk),
        lambda: edit_draft(app, cid, "mo", "text", **mk),
        lambda: select_offer(app, cid, "mo", None, **mk),
        lambda: approve(app, cid, "mo", **mk),
        lambda: reject(app, cid, "mo", "no", **mk),
        lambda: snooze(app, cid, "mo", None, **mk),
        lambda: resolve(app, cid, "mo", **mk),
        lambda: mark_sent(app, cid, "mo", **mk),
        lambda: set_fulfilment(app, 1, "mo", "sent", **mk),
    ]
    for call in calls:
        with pytest.raises(PermissionDenied):
            call()
    # the role comes from the users table: no role given, or a false one, changes nothing
    with pytest.raises(PermissionDenied, match=r"read-only|may not"):
        edit_draft(app, cid, "mo", "text")
    with pytest.raises(PermissionDenied, match="mo is a marketing, not a lead"):
        edit_draft(app, cid, "mo", "text", role="lead")
    assert events(app, cid).count("draft.edited") == 0
    assert case_detail(app, cid)["id"] == cid  # reading is fine


def test_policy_guard_blocks_approval_and_writes_nothing(
    make_app: Callable[..., App],
    tmp_path: Path,
) -> None:
    app = social_app(make_app, tmp_path, [post(1, "priya", UNHAPPY)])
    (cid,) = case_ids(app)
    select_offer(app, cid, "ann", None)
    edit_draft(app, cid, "ann", "@priya sorry! see https://evil.example/x and ask @someoneelse")
    with pytest.raises(PolicyViolation) as err:
        approve(app, cid, "ann")
    assert "evil.example" in str(err.value) and "@someoneelse" in str(err.value)
    edit_draft(app, cid, "ann", "@priya " + "so sorry " * 40)
    with pytest.raises(PolicyViolation, match="weighted"):
        approve(app, cid, "ann")
    with app.sessions() as s:
        assert s.scalar(select(func.count(m.OutboxMessage.id))) == 0
    assert "case.approved" not in events(app, cid)
    edit_draft(
        app, cid, "ann", "@priya So sorry. Details at https://help.zephyrshoes.example/returns"
    )
    assert approve(app, cid, "ann")["status"] == "approved"


def test_lead_tier_and_no_self_approval(make_app: Callable[..., App], tmp_path: Path) -> None:
    app = social_app(make_app, tmp_path, [post(1, "priya", UNHAPPY)])
    (cid,) = case_ids(app)
    select_offer(app, cid, "lee", "free_replacement")  # $65 > lead_above $50
    with pytest.raises(PermissionDenied, match="lead"):
        approve(app, cid, "ann")
    with pytest.raises(PermissionDenied, match="themselves"):
        approve(app, cid, "lee", role="lead")
    out = approve(app, cid, "max", role="lead")
    assert out["status"] == "approved"
    detail = case_detail(app, cid)
    (offer,) = [o for o in detail["offers"] if o["status"] == "approved"]
    assert offer["approved_by"] == "max" and offer["requires_lead"]
    assert offer["fulfilment_status"] == "to_send" and offer["code"] is None
    assert "address" in detail["outbox"][0]["text"]
    set_fulfilment(app, offer["id"], "ann", "sent")
    detail = case_detail(app, cid)
    assert (
        next(o for o in detail["offers"] if o["id"] == offer["id"])["fulfilment_status"] == "sent"
    )
    assert "offer.fulfilment" in events(app, cid)


def test_snooze_reject_resolve_assign(make_app: Callable[..., App], tmp_path: Path) -> None:
    app = social_app(make_app, tmp_path, [post(1, "a1", UNHAPPY), post(2, "a2", UNHAPPY)])
    c1, c2 = case_ids(app)
    until = datetime.now(UTC) + timedelta(hours=2)
    assert snooze(app, c1, "ann", until)["id"] == c1
    assert case_detail(app, c1)["snoozed_until"] is not None
    with pytest.raises(PermissionDenied):
        assign(app, c1, "ann", "bob", role="agent")
    assert assign(app, c1, "lee", "bob")["assignee"] == "bob"
    rejected = reject(app, c2, "ann", "not a customer")
    assert rejected["status"] == "rejected"
    with pytest.raises(Conflict):
        approve(app, c2, "ann", role="agent")
    with pytest.raises(NotFound):
        select_offer(app, c1, "bob", "yacht")
    assert resolve(app, c1, "bob", "sorted by phone")["status"] == "resolved"
    assert events(app, c1)[-1] == "case.resolved"


# -- acceptance 2: caps and tiers under concurrent approvals --------------------------------


def _race(workers: list[Callable[[], Any]]) -> list[Any]:
    barrier = threading.Barrier(len(workers))
    results: list[Any] = [None] * len(workers)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = workers[i]()
        except Exception as exc:  # collected for the assertions
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_concurrent_approvals_never_overspend_the_budget(
    make_app: Callable[..., App],
    tmp_path: Path,
) -> None:
    n = 8
    posts = [post(i, f"cust{i}", UNHAPPY) for i in range(n)]
    offers = [
        {
            "key": "gift",
            "kind": "amount_coupon",
            "value": 30,
            "cost": 30,
            "description": "here is $30 off with code {code}",
        }
    ]
    app = social_app(
        make_app,
        tmp_path,
        posts,
        offers=offers,
        caps={"daily_budget": 100, "agent_daily_budget": None, "customer_offers": None},
        approval={"lead_above": 1000},
    )
    ids = case_ids(app)
    assert len(ids) == n
    add_people(app, *((f"agent{c}", "agent") for c in ids))
    # every approver gets its own App (own engine and connections), like separate processes
    apps = [App.from_settings(app.settings, upgrade=False) for _ in ids]
    try:
        results = _race(
            [
                lambda a=a, c=c: approve(a, c, f"agent{c}", role="agent")
                for a, c in zip(apps, ids, strict=True)
            ]
        )
    finally:
        for a in apps:
            a.close()
    ok = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(ok) == 3 and len(refused) == n - 3, results
    assert all("daily budget" in str(r) for r in refused)
    with app.sessions() as s:
        spent = s.scalar(select(func.sum(m.Offer.cost)).where(m.Offer.status == "approved"))
        assert spent == 90
        assert s.scalar(select(func.count(m.OutboxMessage.id))) == 3


def test_concurrent_approvals_of_one_case_and_high_value_tier(
    make_app: Callable[..., App],
    tmp_path: Path,
) -> None:
    app = social_app(make_app, tmp_path, [post(1, "a1", UNHAPPY), post(2, "a2", UNHAPPY)])
    c1, c2 = case_ids(app)
    add_people(app, *((f"lead{i}", "lead") for i in range(4)))
    apps = [App.from_settings(app.settings, upgrade=False) for _ in range(4)]
    try:
        results = _race(
            [lambda a=a, i=i: approve(a, c1, f"lead{i}", role="lead") for i, a in enumerate(apps)]
        )
        ok = [r for r in results if isinstance(r, dict)]
        assert len(ok) == 1 and all(isinstance(r, Conflict) for r in results if r not in ok)
        # high value: two leads race; the one who selected it may never approve it
        select_offer(app, c2, "lee", "free_replacement")
        results = _race(
            [
                lambda a=apps[0]: approve(a, c2, "lee", role="lead"),
                lambda a=apps[1]: approve(a, c2, "lee", role="lead"),
                lambda a=apps[2]: approve(a, c2, "ann", role="agent"),
            ]
        )
        assert all(isinstance(r, PermissionDenied) for r in results), results
        assert approve(apps[3], c2, "max", role="lead")["status"] == "approved"
    finally:
        for a in apps:
            a.close()
    with app.sessions() as s:
        assert s.scalar(select(func.count(m.OutboxMessage.id))) == 2
        approvals = s.scalars(select(m.Event).where(m.Event.kind == "case.approved")).all()
        assert sorted((e.case_id, e.actor) for e in approvals)[1] == (c2, "max")


def test_customer_cap_across_cases(make_app: Callable[..., App], tmp_path: Path) -> None:
    now = datetime.now(UTC)
    posts = [
        post(1, "repeat", UNHAPPY, at=now - timedelta(days=45)),
        post(
            2,
            "repeat",
            "Zephyr Shoes sent the wrong size AGAIN. Useless.",
            at=now - timedelta(hours=1),
        ),
    ]
    app = social_app(
        make_app,
        tmp_path,
        posts,
        caps={
            "daily_budget": None,
            "agent_daily_budget": None,
            "customer_offers": 1,
            "customer_period": "60d",
        },
    )
    c1, c2 = case_ids(app)
    select_offer(app, c1, "ann", "coupon_20")
    approve(app, c1, "ann", role="agent")
    detail = case_detail(app, c2)
    assert detail["history"]["offers_received"], detail["history"]
    assert all(s["excluded"] for s in detail["catalogue"])
    with pytest.raises(Conflict, match="customer already got 1 offer"):
        approve(app, c2, "ann", role="agent")
    select_offer(app, c2, "ann", None)
    assert approve(app, c2, "ann", role="agent")["status"] == "approved"


# -- did it work? --------------------------------------------------------------------------


def test_followup_records_recovery_and_the_report(
    make_app: Callable[..., App],
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC)
    path = tmp_path / "posts.jsonl"
    first = [
        post(1, "happyend", UNHAPPY, at=now - timedelta(hours=2)),
        post(2, "stillmad", UNHAPPY, at=now - timedelta(hours=2)),
    ]
    write_jsonl(path, first)
    app = make_app(
        {
            "sources": [
                {
                    "name": "social",
                    "type": "jsonl",
                    "path": str(path),
                    "interval": "5m",
                    "options": {"channel": "dm"},
                }
            ],
            "recovery": recovery_block(),
        }
    )
    add_people(app)
    poll_sources(app)
    c1, c2 = case_ids(app)
    for cid in (c1, c2):
        approve(app, cid, "lee", role="lead")
        with pytest.raises(Conflict, match="claimed by lee"):  # lee approved it: lee holds it
            mark_sent(app, cid, "ann", url="https://x.com/brand/status/1")
        out = mark_sent(app, cid, "lee", url="https://x.com/brand/status/1")
        assert out["status"] == "sent"
    later = now + timedelta(minutes=5)
    write_jsonl(
        path,
        [
            *first,
            post(3, "happyend", "Thank you Zephyr Shoes, new pair arrived, love them!", at=later),
            post(4, "stillmad", "Still not fixed. " + UNHAPPY, at=later),
        ],
    )
    poll_sources(app)
    d1, d2 = case_detail(app, c1), case_detail(app, c2)
    assert d1["recovered"] is True and d1["recovered_at"]
    assert d2["recovered"] is False
    assert [e["kind"] for e in d1["events"]][-2:] == ["case.mention_added", "case.followup"]
    assert "reply.sent" in [e["kind"] for e in d1["events"]]

    report = team_report(app, now - timedelta(days=1), now + timedelta(days=1))
    assert report["cases"] == 2 and report["replied"] == 2
    assert report["followed_up"] == 2 and report["recovered"] == 1
    assert report["recovery_rate_pct"] == 50.0
    assert report["first_response_seconds"]["median"] >= 2 * 3600 - 60
    assert report["sla_met_pct"] == 0.0  # an hour's SLA, answered after two
    cost = report["offer_cost"]
    assert cost > 0 and report["cost_per_recovered_customer"] == cost
    assert sum(v["count"] for v in report["offers_by_kind"].values()) == 2
    json.dumps(report)


# -- issue 12: approve what you saw, claims, snooze, identity, the state table ------------


def test_approve_what_you_saw(make_app: Callable[..., App], tmp_path: Path) -> None:
    from listener.errors import StaleDraft

    app = social_app(make_app, tmp_path, [post(1, "priya", UNHAPPY)])
    (cid,) = case_ids(app)
    seen = case_detail(app, cid)["draft_version"]
    assert seen == 1
    # bob saves a newer version while ann still reads version 1
    edit_draft(app, cid, "bob", "@priya So sorry! A new pair ships tonight.", draft_version=1)
    with pytest.raises(StaleDraft) as err:
        approve(app, cid, "ann", draft_version=1)
    assert err.value.version == 2 and err.value.text == "@priya So sorry! A new pair ships tonight."
    with pytest.raises(StaleDraft):  # nor may ann overwrite it silently
        edit_draft(app, cid, "ann", "@priya my version", draft_version=1)
    assert "case.approved" not in events(app, cid)
    # approving with the text shown saves it as a version first, in the same transaction
    select_offer(app, cid, "ann", None, draft_version=2)
    out = approve(app, cid, "ann", draft_version=2, text="@priya Sorry! Replacing them today.")
    assert out["status"] == "approved" and out["draft_version"] == 3
    with app.sessions() as s:
        (msg,) = s.scalars(select(m.OutboxMessage)).all()
        assert msg.text == "@priya Sorry! Replacing them today."
    assert events(app, cid)[-2:] == ["draft.edited", "case.approved"]


def test_a_refused_approval_keeps_nothing_half_done(
    make_app: Callable[..., App], tmp_path: Path
) -> None:
    app = social_app(make_app, tmp_path, [post(1, "priya", UNHAPPY)])
    (cid,) = case_ids(app)
    select_offer(app, cid, "ann", None)
    with pytest.raises(PolicyViolation, match=r"evil\.example"):
        approve(app, cid, "ann", draft_version=2, text="@priya see https://evil.example")
    assert case_detail(app, cid)["draft_version"] == 2  # the edit rolled back with it


def test_claims_mean_something(make_app: Callable[..., App], tmp_path: Path) -> None:
    app = social_app(
        make_app,
        tmp_path,
        [post(1, "a1", UNHAPPY), post(2, "a2", UNHAPPY), post(3, "a3", UNHAPPY)],
        channel="dm",
    )
    c1, c2, c3 = case_ids(app)
    claim(app, c1, "ann")
    until = datetime.now(UTC) + timedelta(hours=1)
    for call in (
        lambda: resolve(app, c1, "bob", "mine now"),
        lambda: snooze(app, c1, "bob", until),
        lambda: reject(app, c1, "bob", "spam"),
        lambda: release(app, c1, "bob"),
    ):
        with pytest.raises(Conflict, match="claimed by ann"):
            call()
    select_offer(app, c1, "ann", None)
    approve(app, c1, "ann")
    with pytest.raises(Conflict, match="claimed by ann"):
        mark_sent(app, c1, "bob", url="https://made.up/1")
    assert mark_sent(app, c1, "lee")["status"] == "sent"  # a lead may
    # assign only to active agents and leads
    with pytest.raises(PermissionDenied, match="read-only"):
        assign(app, c2, "lee", "mo")
    with pytest.raises(NotFound, match="unknown user"):
        assign(app, c2, "lee", "ghost")
    assert assign(app, c2, "lee", "bob")["assignee"] == "bob"
    with pytest.raises(PermissionDenied):
        assign(app, c3, "ann", "bob")


def test_x_replies_are_not_marked_sent_by_hand(
    make_app: Callable[..., App], tmp_path: Path
) -> None:
    """An X reply goes out through the outbox: nobody marks it sent with a made-up URL."""
    app = social_app(make_app, tmp_path, [post(9, "xer", UNHAPPY)], channel="x_reply")
    (cid,) = case_ids(app)
    select_offer(app, cid, "ann", None)
    approve(app, cid, "ann")
    with pytest.raises(Conflict, match="outbox sends"):
        mark_sent(app, cid, "ann", url="https://x.com/made-up")
    with app.sessions() as s:
        assert s.scalars(select(m.OutboxMessage.status)).one() == "pending"
    assert "reply.sent" not in events(app, cid)


def test_the_actor_is_a_known_user_and_the_role_is_theirs(
    make_app: Callable[..., App], tmp_path: Path
) -> None:
    app = social_app(make_app, tmp_path, [post(1, "a1", UNHAPPY)])
    (cid,) = case_ids(app)
    with pytest.raises(PermissionDenied, match="unknown user 'zed'"):
        claim(app, cid, "zed")
    with pytest.raises(PermissionDenied, match="ann is an agent, not a lead"):
        approve(app, cid, "ann", role="lead")
    with app.sessions.begin() as s:
        s.scalars(select(m.User).where(m.User.username == "bob")).one().active = False
    with pytest.raises(PermissionDenied, match="disabled"):
        claim(app, cid, "bob")
    assert events(app, cid) == ["case.opened", "draft.created"]


def test_snooze_leaves_the_queue_and_comes_back_with_its_note(
    make_app: Callable[..., App], tmp_path: Path
) -> None:
    from listener.cases.queue import QueueFilter

    app = social_app(make_app, tmp_path, [post(1, "a1", UNHAPPY), post(2, "a2", UNHAPPY)])
    c1, c2 = case_ids(app)

    def ids(status: str | None = None) -> list[int]:
        return [c.id for c in list_queue(app, QueueFilter(status=status))]

    assert set(ids()) == {c1, c2}
    snooze(app, c1, "ann", datetime.now(UTC) + timedelta(hours=2), note="waiting for order #")
    assert ids() == [c2] and ids("snoozed") == [c1]
    # snoozed earlier until a moment ago: back in its place, with the note
    earlier = datetime.now(UTC) - timedelta(hours=3)
    snooze(app, c2, "bob", datetime.now(UTC) - timedelta(seconds=1), note="call back", now=earlier)
    (back,) = [c for c in list_queue(app) if c.id == c2]
    assert back.back_from_snooze and back.snooze_note == "call back" and back.snoozed_by == "bob"
    assert ids("snoozed") == [c1]
    # waking, or working the case, brings it back at once
    claim(app, c1, "ann")
    assert set(ids()) == {c1, c2} and ids("snoozed") == []
    detail = case_detail(app, c1)
    assert [e["data"].get("woke") for e in detail["events"] if e["kind"] == "case.claimed"] == [
        True
    ]


def test_reject_is_undone_by_reopen(make_app: Callable[..., App], tmp_path: Path) -> None:
    app = social_app(make_app, tmp_path, [post(1, "a1", UNHAPPY)])
    (cid,) = case_ids(app)
    claim(app, cid, "ann")
    select_offer(app, cid, "ann", "coupon_20")
    before = case_detail(app, cid)
    reject(app, cid, "ann", "not a customer")
    assert case_detail(app, cid)["reply"]["status"] == "rejected"
    from listener.cases.actions import reopen

    out = reopen(app, cid, "ann")
    assert out["status"] == "claimed" and out["assignee"] == "ann"
    after = case_detail(app, cid)
    assert (
        after["reply"]["status"] == "current" and after["draft_version"] == before["draft_version"]
    )
    assert [(o["key"], o["status"]) for o in after["offers"]] == [
        (o["key"], o["status"]) for o in before["offers"]
    ]
    assert events(app, cid)[-2:] == ["case.rejected", "case.reopened"]
    assert approve(app, cid, "ann")["status"] == "approved"


def test_waiting_for_a_lead_and_sending_views(make_app: Callable[..., App], tmp_path: Path) -> None:
    from listener.cases.queue import QueueFilter

    app = social_app(make_app, tmp_path, [post(1, "a1", UNHAPPY), post(2, "a2", UNHAPPY)])
    c1, c2 = case_ids(app)
    select_offer(app, c1, "ann", "free_replacement")  # above lead_above: a lead approves
    select_offer(app, c2, "ann", "coupon_20")  # an agent may approve this one

    def ids(status: str, viewer: str | None = None) -> list[int]:
        return [c.id for c in list_queue(app, QueueFilter(status=status, viewer=viewer))]

    assert ids("waiting", "lee") == [c1]
    select_offer(app, c1, "lee", "free_replacement")  # lee chose it: not lee's to approve
    assert ids("waiting", "lee") == [] and ids("waiting", "max") == [c1]
    approve(app, c2, "ann")
    assert ids("sending") == [c2] and c2 not in [c.id for c in list_queue(app)]


def test_the_transitions_table() -> None:
    from listener.cases.status import (
        TRANSITIONS,
        WORKABLE,
        Action,
        CaseStatus,
        can_start,
        check_start,
        next_status,
    )

    assert set(TRANSITIONS) == set(Action)
    for status in CaseStatus:
        assert can_start(Action.APPROVE, status) == (status in WORKABLE)
    assert next_status(Action.RELEASE, "claimed", has_draft=True, assignee=None) == "drafted"
    assert next_status(Action.RELEASE, "claimed", has_draft=False, assignee=None) == "new"
    assert next_status(Action.EDIT_DRAFT, "new", has_draft=True, assignee=None) == "drafted"
    assert next_status(Action.EDIT_DRAFT, "claimed", has_draft=True, assignee="a") == "claimed"
    assert next_status(Action.REOPEN, "rejected", has_draft=True, assignee="a") == "claimed"
    assert next_status(Action.SNOOZE, "drafted", has_draft=True, assignee=None) == "drafted"
    with pytest.raises(Conflict, match="case 7 is sent: it cannot be approved"):
        check_start(Action.APPROVE, 7, "sent")
    with pytest.raises(Conflict, match="waiting to be sent"):
        check_start(Action.CLAIM, 7, "approved")


def test_one_guard_at_approval_and_at_send(make_app: Callable[..., App], tmp_path: Path) -> None:
    """#14 item 7: the demo's priya.s and a JSONL handle 'joe @elonmusk'."""
    from listener.outbox import check_message

    posts = [
        post(1, "priya.s", "@zephyrshoes " + UNHAPPY, name="Priya Sharma"),
        post(2, "joe @elonmusk", "@zephyrshoes " + UNHAPPY, name=""),
    ]
    app = social_app(make_app, tmp_path, posts, channel="x_reply")
    priya, joe = case_ids(app)
    rules = Rules.from_settings(app.settings)
    # an agent who types the @mention back in is refused at approval, for the reason send gives
    for cid, text, who in (
        (priya, "@priya.s So sorry, a new pair ships today!", "priya.s"),
        (joe, "@joe @elonmusk So sorry, a new pair ships today!", "joe @elonmusk"),
    ):
        select_offer(app, cid, "ann", None)
        with pytest.raises(PolicyViolation, match="cannot be @mentioned") as refused:
            approve(app, cid, "ann", text=text)
        at_send = violations(Reply(text, "x_reply", who, in_reply_to="1"), rules)
        assert str(refused.value) == "; ".join(at_send)
    for cid in (priya, joe):
        draft = case_detail(app, cid)["reply"]
        assert draft["warnings"] == [], draft  # drafted without an @mention X would misread
        assert "@priya" not in draft["text"] and "@elonmusk" not in draft["text"]
        approve(app, cid, "ann")
    with app.sessions() as s:
        rows = s.scalars(select(m.OutboxMessage)).all()
        assert len(rows) == 2
        for row in rows:
            assert check_message(s, app.settings, row) == []  # what passed approval can be sent
