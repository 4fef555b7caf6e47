"""Recovery end to end: drafts and offers from the pipeline, the case workflow, caps and
approval tiers under concurrency, follow-ups and the team report."""

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
from listener.cases import list_queue
from listener.drafting import CHANNEL_LIMITS
from listener.errors import Conflict, NotFound, PermissionDenied, PolicyViolation
from listener.outbox import allowed_domains, guard_violations
from listener.pipeline import poll_sources
from listener.recovery import (
    approve_case,
    assign_case,
    case_detail,
    claim_case,
    edit_draft,
    mark_sent_manually,
    reject_case,
    release_case,
    resolve_case,
    select_offer,
    set_fulfilment,
    snooze_case,
    team_report,
)

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


# -- acceptance 1: every unhappy example gets a checked draft and ranked offers ------------


def test_every_unhappy_example_gets_a_draft_within_limits_and_ranked_offers(
    make_app: Callable[..., App],
) -> None:
    app = make_app({"sources": CONFIG["sources"], "recovery": recovery_block()})
    poll_sources(app)
    with app.sessions() as s:
        unhappy = s.scalars(select(m.Mention).where(m.Mention.unhappy.is_(True))).all()
        assert len(unhappy) >= 10
        assert all(x.case_id is not None for x in unhappy)
        cases = s.scalars(select(m.Case)).unique().all()
        domains = allowed_domains(app.settings)
        with_offer = 0
        for case in cases:
            drafts = [d for d in case.drafts if d.status == "current"]
            assert len(drafts) == 1, f"case {case.id} has no draft"
            draft = drafts[0]
            problems = guard_violations(
                draft.text,
                draft.channel,
                limit=CHANNEL_LIMITS[draft.channel],
                author_handle=case.author.handle,
                brand_handles=app.settings.brand.handles,
                allowed_domains=domains,
            )
            assert problems == [], (case.id, draft.text, problems)
            suggested = sorted(
                (o for o in case.offers if o.status == "suggested"), key=lambda o: o.rank
            )
            if case.category != "praise":
                assert suggested, f"case {case.id} ({case.category}) has no offer"
                with_offer += 1
                assert suggested[0].rank == 0 and all(o.reasons for o in suggested)
                assert len(suggested) <= app.settings.recovery.suggestions
        assert with_offer >= 10
    queue = list_queue(app)
    assert all(c["offer"] and c["offer"]["reasons"] for c in queue if c["category"] != "praise")
    # the X drafts carry the top offer's words (coupon codes appear only at approval)
    x_drafts = [c for c in queue if c["source"] == "example-social" and c["offer"]]
    assert any("To make it right" in c["draft"] for c in x_drafts)


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
    assert claim_case(app, cid, "ann")["assignee"] == "ann"
    with pytest.raises(Conflict, match="claimed by ann"):
        claim_case(app, cid, "bob")
    with pytest.raises(PermissionDenied):
        claim_case(app, cid, "bob", force=True)
    with pytest.raises(Conflict):
        edit_draft(app, cid, "bob", "hi")
    assert claim_case(app, cid, "lee", role="lead", force=True)["assignee"] == "lee"
    release_case(app, cid, "lee")
    claim_case(app, cid, "ann")

    summary = select_offer(app, cid, "ann", "coupon_20")
    assert summary["offer"]["key"] == "coupon_20" and summary["offer"]["status"] == "selected"
    assert "[CODE]" in summary["draft"]  # re-rendered with the chosen offer
    text = summary["draft"].replace("To make it right", "To make it up to you")
    summary = edit_draft(app, cid, "ann", text)
    assert summary["draft"] == text

    approved = approve_case(app, cid, "ann", role="agent")
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
    assert "To make it up to you" in edit[0]["data"]["diff"]
    assert [e["actor"] for e in detail["events"] if e["kind"] == "case.approved"] == ["ann"]
    # approved: nothing more may change, and it cannot be approved twice
    with pytest.raises(Conflict):
        edit_draft(app, cid, "ann", "changed")
    with pytest.raises(Conflict):
        approve_case(app, cid, "ann", role="agent")
    assert detail["budget"]["team_spent_today"] == 15


def test_marketing_is_read_only(make_app: Callable[..., App], tmp_path: Path) -> None:
    app = social_app(make_app, tmp_path, [post(1, "priya", UNHAPPY)])
    (cid,) = case_ids(app)
    mk = {"role": "marketing"}
    calls: list[Callable[[], Any]] = [
        lambda: claim_case(app, cid, "mo", **mk),
        lambda: release_case(app, cid, "mo", **mk),
        lambda: assign_case(app, cid, "mo", "ann", **mk),
        lambda: edit_draft(app, cid, "mo", "text", **mk),
        lambda: select_offer(app, cid, "mo", None, **mk),
        lambda: approve_case(app, cid, "mo", **mk),
        lambda: reject_case(app, cid, "mo", "no", **mk),
        lambda: snooze_case(app, cid, "mo", None, **mk),
        lambda: resolve_case(app, cid, "mo", **mk),
        lambda: mark_sent_manually(app, cid, "mo", **mk),
        lambda: set_fulfilment(app, 1, "mo", "sent", **mk),
    ]
    for call in calls:
        with pytest.raises(PermissionDenied):
            call()
    # the users table is consulted when no role is given
    with app.sessions() as s, s.begin():
        s.add(m.User(username="mo", role="marketing", password_hash="x"))
    with pytest.raises(PermissionDenied):
        edit_draft(app, cid, "mo", "text")
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
        approve_case(app, cid, "ann", role="agent")
    assert "evil.example" in str(err.value) and "@someoneelse" in str(err.value)
    edit_draft(app, cid, "ann", "@priya " + "so sorry " * 40)
    with pytest.raises(PolicyViolation, match="weighted"):
        approve_case(app, cid, "ann", role="agent")
    with app.sessions() as s:
        assert s.scalar(select(func.count(m.OutboxMessage.id))) == 0
    assert "case.approved" not in events(app, cid)
    edit_draft(
        app, cid, "ann", "@priya So sorry. Details at https://help.zephyrshoes.example/returns"
    )
    assert approve_case(app, cid, "ann", role="agent")["status"] == "approved"


def test_lead_tier_and_no_self_approval(make_app: Callable[..., App], tmp_path: Path) -> None:
    app = social_app(make_app, tmp_path, [post(1, "priya", UNHAPPY)])
    (cid,) = case_ids(app)
    select_offer(app, cid, "lee", "free_replacement")  # $65 > lead_above $50
    with pytest.raises(PermissionDenied, match="lead"):
        approve_case(app, cid, "ann", role="agent")
    with pytest.raises(PermissionDenied, match="themselves"):
        approve_case(app, cid, "lee", role="lead")
    out = approve_case(app, cid, "max", role="lead")
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
    assert snooze_case(app, c1, "ann", until)["id"] == c1
    assert case_detail(app, c1)["snoozed_until"] is not None
    with pytest.raises(PermissionDenied):
        assign_case(app, c1, "ann", "bob", role="agent")
    assert assign_case(app, c1, "lee", "bob")["assignee"] == "bob"
    rejected = reject_case(app, c2, "ann", "not a customer")
    assert rejected["status"] == "rejected"
    with pytest.raises(Conflict):
        approve_case(app, c2, "ann", role="agent")
    with pytest.raises(NotFound):
        select_offer(app, c1, "bob", "yacht")
    assert resolve_case(app, c1, "bob", "sorted by phone")["status"] == "resolved"
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
    # every approver gets its own App (own engine and connections), like separate processes
    apps = [App.from_settings(app.settings, upgrade=False) for _ in ids]
    try:
        results = _race(
            [
                lambda a=a, c=c: approve_case(a, c, f"agent{c}", role="agent")
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
    apps = [App.from_settings(app.settings, upgrade=False) for _ in range(4)]
    try:
        results = _race(
            [
                lambda a=a, i=i: approve_case(a, c1, f"lead{i}", role="lead")
                for i, a in enumerate(apps)
            ]
        )
        ok = [r for r in results if isinstance(r, dict)]
        assert len(ok) == 1 and all(isinstance(r, Conflict) for r in results if r not in ok)
        # high value: two leads race; the one who selected it may never approve it
        select_offer(app, c2, "lee", "free_replacement")
        results = _race(
            [
                lambda a=apps[0]: approve_case(a, c2, "lee", role="lead"),
                lambda a=apps[1]: approve_case(a, c2, "lee", role="lead"),
                lambda a=apps[2]: approve_case(a, c2, "ann", role="agent"),
            ]
        )
        assert all(isinstance(r, PermissionDenied) for r in results), results
        assert approve_case(apps[3], c2, "max", role="lead")["status"] == "approved"
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
    approve_case(app, c1, "ann", role="agent")
    detail = case_detail(app, c2)
    assert detail["history"]["offers_received"], detail["history"]
    assert all(s["excluded"] for s in detail["catalogue"])
    with pytest.raises(Conflict, match="customer already got 1 offer"):
        approve_case(app, c2, "ann", role="agent")
    select_offer(app, c2, "ann", None)
    assert approve_case(app, c2, "ann", role="agent")["status"] == "approved"


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
    poll_sources(app)
    c1, c2 = case_ids(app)
    for cid in (c1, c2):
        approve_case(app, cid, "lee", role="lead")
        out = mark_sent_manually(app, cid, "ann", url="https://x.com/brand/status/1")
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
