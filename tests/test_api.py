"""The JSON API (/api/v1) in-process: tokens, the use-cases, errors as status codes, the
OpenAPI description, and a bounded schemathesis fuzz run that must find no 500s."""

from __future__ import annotations

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
    cid = wf.seed_case(app)
    ann, bob = api("ann"), api("bob")
    assert ann.post(f"/api/v1/cases/{cid}/claim").json()["assignee"] == "ann"
    r = bob.post(f"/api/v1/cases/{cid}/claim")
    assert r.status_code == 409 and "claimed by ann" in r.json()["detail"]
    r = bob.post(f"/api/v1/cases/{cid}/claim", json={"force": True})
    assert r.status_code == 403  # agents cannot take over
    r = ann.put(f"/api/v1/cases/{cid}/draft", json={"text": "@maria Sorry! A new pair ships."})
    assert r.status_code == 200 and r.json()["draft"].startswith("@maria Sorry!")
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
