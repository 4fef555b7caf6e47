"""The JSON API (/api/v1) in-process: tokens, the use-cases, errors as status codes, the
OpenAPI description, and a bounded schemathesis fuzz run that must find no 500s."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import webfixtures as wf
from fastapi.testclient import TestClient

from listener.app import App
from listener.auth import mint_token
from listener.web import create_app


@pytest.fixture
def app(make_app: Callable[..., App]) -> App:
    return wf.team_app(make_app)


@pytest.fixture
def api(app: App) -> Iterator[Callable[[str | None], TestClient]]:
    web = create_app(app)
    clients: list[TestClient] = []

    def make(username: str | None) -> TestClient:
        headers = {"Authorization": f"Bearer {mint_token(app, username)}"} if username else {}
        c = TestClient(web, headers=headers)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


def test_token_required(api: Callable[[str | None], TestClient]) -> None:
    anon = api(None)
    r = anon.get("/api/v1/queue")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    r = anon.get("/api/v1/queue", headers={"Authorization": "Bearer lst_not-a-real-token"})
    assert r.status_code == 401
    assert api("ann").get("/api/v1/me").json()["role"] == "agent"


def test_tokens_are_stored_hashed(app: App) -> None:
    from sqlalchemy import select

    from listener import models as m

    token = mint_token(app, "ann", "ci")
    with app.sessions() as s:
        stored = s.scalars(select(m.ApiToken.token_hash)).all()
    assert token not in stored and all(len(h) == 64 for h in stored)


def test_bearer_requests_need_no_csrf_but_cookie_requests_do(
    app: App, api: Callable[[str | None], TestClient]
) -> None:
    cid = wf.seed_case(app)
    assert api("ann").post(f"/api/v1/cases/{cid}/claim").status_code == 200
    browser = TestClient(create_app(app))
    wf.login(browser, "bob")
    r = browser.post(f"/api/v1/cases/{cid}/release")
    assert r.status_code == 403 and r.json()["error"] == "CsrfError"


def test_queue_and_case_detail(app: App, api: Callable[[str | None], TestClient]) -> None:
    cid = wf.seed_case(app)
    wf.seed_case(app, "Zephyr sizes are odd", handle="@odd", priority=10)
    ann = api("ann")
    page = ann.get("/api/v1/queue").json()
    assert page["total"] == 2 and page["items"][0]["id"] == cid
    assert page["items"][0]["reasons"][0] == "negative 0.97"
    assert page["items"][0]["sla_seconds"] is not None
    detail = ann.get(f"/api/v1/cases/{cid}").json()
    assert detail["id"] == cid and detail["posts"][0]["text"].startswith("My Zephyr")
    assert ann.get(f"/api/v1/cases/{cid}/events").json()[0]["kind"] == "case.opened"
    assert ann.get("/api/v1/cases/424242").status_code == 404


def test_case_flow_and_conflicts(app: App, api: Callable[[str | None], TestClient]) -> None:
    cid = wf.seed_case(app, channel="blog_comment")
    ann, bob = api("ann"), api("bob")
    assert ann.post(f"/api/v1/cases/{cid}/claim").json()["assignee"] == "ann"
    r = bob.post(f"/api/v1/cases/{cid}/claim")
    assert r.status_code == 409 and "claimed by ann" in r.json()["detail"]
    r = bob.post(f"/api/v1/cases/{cid}/claim", json={"force": True})
    assert r.status_code == 403  # agents cannot take over
    r = ann.put(f"/api/v1/cases/{cid}/draft", json={"text": "Maria, sorry! A new pair ships."})
    assert r.status_code == 200 and r.json()["draft"].startswith("Maria, sorry!")
    assert ann.put(f"/api/v1/cases/{cid}/draft", json={"text": "   "}).status_code == 422
    r = ann.post(f"/api/v1/cases/{cid}/approve")
    assert r.status_code == 200 and r.json()["status"] == "approved"
    r = ann.post(f"/api/v1/cases/{cid}/sent", json={"url": "https://x.example/1"})
    assert r.status_code == 200 and r.json()["status"] == "sent"
    assert ann.post(f"/api/v1/cases/{cid}/sent", json={}).status_code == 409


def test_marketing_cannot_write(app: App, api: Callable[[str | None], TestClient]) -> None:
    cid = wf.seed_case(app)
    mia = api("mia")
    assert mia.get("/api/v1/queue").status_code == 200
    assert mia.get("/api/v1/dashboard").status_code == 200
    for method, path, body in [
        ("post", "claim", None),
        ("post", "approve", None),
        ("put", "draft", {"text": "hi"}),
        ("post", "resolve", {}),
        ("post", "reject", {}),
    ]:
        r = getattr(mia, method)(f"/api/v1/cases/{cid}/{path}", json=body)
        assert r.status_code == 403, (path, r.text)
        assert r.json()["error"] == "PermissionDenied"


def test_agent_cannot_approve_above_tier(app: App, api: Callable[[str | None], TestClient]) -> None:
    cid = wf.seed_case(app, category="damaged_or_defective")
    ann = api("ann")
    ann.post(f"/api/v1/cases/{cid}/claim")
    r = ann.put(f"/api/v1/cases/{cid}/offer", json={"offer_key": "free_replacement"})
    assert r.status_code == 200, r.text
    r = ann.post(f"/api/v1/cases/{cid}/approve")
    assert r.status_code == 403 and "lead" in r.json()["detail"]
    assert api("lee").post(f"/api/v1/cases/{cid}/approve").status_code == 200


def test_correction_and_dashboard(app: App, api: Callable[[str | None], TestClient]) -> None:
    cid = wf.seed_case(app)
    ann = api("ann")
    mid = ann.get(f"/api/v1/cases/{cid}").json()["posts"][0]["id"]
    r = ann.post(f"/api/v1/mentions/{mid}/correction", json={"unhappy": False})
    assert r.status_code == 200 and r.json()["mention_id"] == mid
    assert ann.post(f"/api/v1/mentions/{mid}/correction", json={}).status_code == 400
    dash = api("mia").get("/api/v1/dashboard?window=7d").json()
    assert dash["total"] == 1 and len(dash["volume"]) in (7, 8)  # every day of the window
    busy = [p for p in dash["volume"] if p["total"]]
    assert len(busy) == 1 and busy[0]["counts"]["negative"] == 1
    assert dash["top_authors"][0]["handle"] == "@maria"
    key = busy[0]["key"]
    rows = api("mia").get("/api/v1/mentions", params={"bucket": key, "label": "negative"}).json()
    assert rows["total"] == 1 and rows["items"][0]["case_id"] == cid
    report = api("mia").get("/api/v1/report?window=30d").json()
    assert {"sla_met_pct", "recovery_rate_pct", "offer_cost"} <= set(report)


def test_openapi_describes_the_api(app: App) -> None:
    spec = TestClient(create_app(app)).get("/api/v1/openapi.json").json()
    paths = spec["paths"]
    for p in (
        "/api/v1/queue",
        "/api/v1/cases/{case_id}/approve",
        "/api/v1/dashboard",
        "/api/v1/report",
        "/api/v1/mentions/{mention_id}/correction",
    ):
        assert p in paths, p
    assert not any(p.startswith(("/cases", "/queue", "/login")) for p in paths)
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


@pytest.mark.slow
def test_fuzzing_finds_no_server_errors(app: App) -> None:
    """schemathesis against every operation, bounded to about a minute in all."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    for i in range(3):
        wf.seed_case(app, f"Zephyr fuzz case {i}", handle=f"@fuzz{i}")
    web = create_app(app)
    headers = {"Authorization": f"Bearer {mint_token(app, 'lee')}"}
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", web)
    operations = [op.ok() for op in schema.get_all_operations()]
    assert len(operations) >= 15
    budget = 60.0 / len(operations)
    failures: list[str] = []
    clock = {"started": 0.0}

    for operation in operations:
        clock["started"] = time.monotonic()

        strategy = operation.as_strategy() | operation.as_strategy(
            schemathesis.GenerationMode.NEGATIVE
        )

        @given(case=strategy)
        @settings(
            max_examples=30,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            if time.monotonic() - clock["started"] > budget:
                return
            response = case.call(headers=headers)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} {case.body!r} "
                    f"{case.query!r} -> {response.status_code} {response.text[:200]}"
                )

        run()
    assert not failures, "\n".join(failures[:10])


def test_two_agents_claiming_at_once_one_wins(
    app: App, api: Callable[[str | None], TestClient]
) -> None:
    import threading

    cid = wf.seed_case(app)
    clients = {"ann": api("ann"), "bob": api("bob")}
    barrier = threading.Barrier(2)
    codes: dict[str, int] = {}

    def claim(name: str) -> None:
        barrier.wait()
        codes[name] = clients[name].post(f"/api/v1/cases/{cid}/claim").status_code

    threads = [threading.Thread(target=claim, args=(n,)) for n in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes.values()) == [200, 409], codes
    winner = next(n for n, c in codes.items() if c == 200)
    assert api("lee").get(f"/api/v1/cases/{cid}").json()["assignee"] == winner


def test_approve_with_an_old_draft_version_is_409_with_the_current_text(
    app: App, api: Callable[[str | None], TestClient]
) -> None:
    cid = wf.seed_case(app)
    ann, bob = api("ann"), api("bob")
    seen = ann.get(f"/api/v1/cases/{cid}").json()
    assert seen["draft_version"] == 1
    newer = "@maria So sorry! I'm on it now and will update you shortly."
    r = bob.put(f"/api/v1/cases/{cid}/draft", json={"text": newer, "draft_version": 1})
    assert r.status_code == 200 and r.json()["draft_version"] == 2
    r = ann.put(f"/api/v1/cases/{cid}/offer", json={"offer_key": None, "draft_version": 1})
    assert r.status_code == 409
    r = ann.post(f"/api/v1/cases/{cid}/approve", json={"draft_version": 1})
    assert r.status_code == 409 and r.json()["error"] == "StaleDraft"
    assert r.json()["current"] == {"draft_version": 2, "text": newer, "subject": None}
    assert ann.get(f"/api/v1/cases/{cid}").json()["status"] == "drafted"
    r = ann.post(f"/api/v1/cases/{cid}/approve", json={"draft_version": 2})
    assert r.status_code == 200 and r.json()["status"] == "approved"
    r = ann.post(f"/api/v1/cases/{cid}/approve", json={"draft_vresion": 2})
    assert r.status_code == 422  # unknown fields are refused, never ignored


def test_writes_on_another_agents_claim_are_refused(
    app: App, api: Callable[[str | None], TestClient]
) -> None:
    cid = wf.seed_case(app, channel="blog_comment")
    ann, bob, lee = api("ann"), api("bob"), api("lee")
    assert ann.post(f"/api/v1/cases/{cid}/claim").status_code == 200
    for path, body in (
        ("resolve", {"note": "mine"}),
        ("snooze", {"until": "2099-01-01T00:00:00Z"}),
        ("reject", {"reason": "spam"}),
        ("release", None),
    ):
        r = bob.post(f"/api/v1/cases/{cid}/{path}", json=body)
        assert r.status_code == 409 and "claimed by ann" in r.json()["detail"], (path, r.text)
    assert ann.put(f"/api/v1/cases/{cid}/offer", json={"offer_key": None}).status_code == 200
    assert ann.post(f"/api/v1/cases/{cid}/approve").status_code == 200
    r = bob.post(f"/api/v1/cases/{cid}/sent", json={"url": "https://made.up/1"})
    assert r.status_code == 409 and "claimed by ann" in r.json()["detail"]
    assert lee.post(f"/api/v1/cases/{cid}/sent", json={}).json()["status"] == "sent"
    # assign only to active agents and leads
    other = wf.seed_case(app, "Zephyr again", handle="@other")
    assert lee.post(f"/api/v1/cases/{other}/assign", json={"assignee": "mia"}).status_code == 403
    assert lee.post(f"/api/v1/cases/{other}/assign", json={"assignee": "nope"}).status_code == 404


def test_an_x_reply_cannot_be_marked_sent_by_hand(
    app: App, api: Callable[[str | None], TestClient]
) -> None:
    cid = wf.seed_case(app)  # an X reply: the outbox posts it
    ann = api("ann")
    ann.put(f"/api/v1/cases/{cid}/offer", json={"offer_key": None})
    assert ann.post(f"/api/v1/cases/{cid}/approve").status_code == 200
    r = ann.post(f"/api/v1/cases/{cid}/sent", json={"url": "https://x.com/i/made-up"})
    assert r.status_code == 409 and "outbox" in r.json()["detail"]
    assert ann.get(f"/api/v1/cases/{cid}").json()["outbox"][0]["status"] == "pending"


def test_snooze_hides_the_case_until_its_time(
    app: App, api: Callable[[str | None], TestClient]
) -> None:
    cid = wf.seed_case(app)
    ann = api("ann")
    r = ann.post(
        f"/api/v1/cases/{cid}/snooze", json={"until": "2099-01-01T09:00:00", "note": "on leave"}
    )
    assert r.status_code == 200 and r.json()["snoozed_until"].startswith("2099-01-01T09:00")
    assert ann.get("/api/v1/queue").json()["total"] == 0
    (item,) = ann.get("/api/v1/queue?status=snoozed").json()["items"]
    assert item["id"] == cid and item["snooze_note"] == "on leave"
    assert ann.post(f"/api/v1/cases/{cid}/snooze", json={"until": None}).status_code == 200
    assert [i["id"] for i in ann.get("/api/v1/queue").json()["items"]] == [cid]


def test_marketing_sees_contact_details_and_codes_masked(
    app: App, api: Callable[[str | None], TestClient]
) -> None:
    from sqlalchemy import select

    from listener import models as m

    cid = wf.seed_case(
        app, "Zephyr lost my order, write me at jane.doe@example.com", channel="blog_comment"
    )
    with app.sessions.begin() as s:
        s.scalars(select(m.Author)).one().email = "jane.doe@example.com"
    lee = api("lee")
    lee.post(f"/api/v1/cases/{cid}/claim")
    assert lee.put(f"/api/v1/cases/{cid}/offer", json={"offer_key": None}).status_code == 200
    assert lee.post(f"/api/v1/cases/{cid}/approve").status_code == 200
    with app.sessions.begin() as s:  # a coupon granted on this case
        offer = m.Offer(
            case_id=cid,
            offer_key="c",
            kind="percent_coupon",
            status="approved",
            code="ZS-AB12-CD34",
        )
        s.add(offer)
    agent_view = lee.get(f"/api/v1/cases/{cid}").json()
    assert agent_view["author_detail"]["email"] == "jane.doe@example.com"
    mia = api("mia")
    seen = mia.get(f"/api/v1/cases/{cid}").text + mia.get("/api/v1/queue?status=all").text
    seen += mia.get(f"/api/v1/cases/{cid}/events").text
    drill = mia.get("/api/v1/mentions?window=7d")  # the dashboard's drill-down to the posts
    assert drill.status_code == 200 and drill.json()["total"] == 1
    seen += drill.text + mia.get("/mentions.csv?window=7d").text
    assert "j***@***.com" in drill.text
    assert "jane.doe@example.com" not in seen and "ZS-AB12-CD34" not in seen
    assert "j***@***.com" in seen and "ZS-****" in seen
    assert mia.get(f"/api/v1/cases/{cid}").json()["can"]["approve"] is False


def test_api_docs_are_served_offline_under_the_csp(app: App) -> None:
    from listener.web.security import CSP

    c = TestClient(create_app(app))
    page = c.get("/api/docs")
    assert page.status_code == 200 and page.headers["content-security-policy"] == CSP
    assert "<script>" not in page.text and "cdn" not in page.text.lower()
    scripts = re.findall(r'<script src="([^"]+)"', page.text)
    styles = re.findall(r'<link rel="stylesheet" href="([^"]+)"', page.text)
    assert scripts and styles and all(u.startswith("/") for u in scripts + styles)
    for url in scripts + styles:
        r = c.get(url)
        assert r.status_code == 200 and len(r.content) > 400, url
    assert c.get("/docs").status_code != 200 or "swagger" not in c.get("/docs").text.lower()
