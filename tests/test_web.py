"""The web pages in-process (FastAPI TestClient): sign-in, queue, case actions, dashboard,
security headers, CSRF and role checks.  Real database (SQLite, or PostgreSQL in the
second pass), real use-cases; nothing mocked."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import webfixtures as wf
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from listener import models as m
from listener.app import App
from listener.web import create_app
from listener.web.security import CSP

FLASH = re.compile(r'class="flash (\w+)"[^>]*>([^<]*)<')


@pytest.fixture
def app(make_app: Callable[..., App]) -> App:
    return wf.team_app(make_app)


@pytest.fixture
def client_for(app: App) -> Iterator[Callable[[str], TestClient]]:
    web = create_app(app)
    clients: list[TestClient] = []

    def make(username: str) -> TestClient:
        c = TestClient(web)
        clients.append(c)
        wf.login(c, username)
        return c

    yield make
    for c in clients:
        c.close()


def flashes(html: str) -> list[tuple[str, str]]:
    return FLASH.findall(html)


def post(c: TestClient, path: str, **data: Any) -> Any:
    token = wf.csrf_of(c)
    return c.post(path, data={"csrf_token": token, **data}, follow_redirects=True)


def reply_form(c: TestClient, cid: int) -> dict[str, str]:
    """The reply as the case page shows it: editor text and the version it was loaded at."""
    import html

    page = c.get(f"/cases/{cid}").text
    version = re.search(r'name="draft_version" value="(\d+)"', page)
    text = re.search(r'<textarea name="text" id="draft-text"[^>]*>(.*?)</textarea>', page, re.S)
    assert version and text, "no reply editor on the case page"
    return {"draft_version": version.group(1), "text": html.unescape(text.group(1))}


def approve_as_shown(c: TestClient, cid: int, **changes: str) -> Any:
    return post(c, f"/cases/{cid}/approve", **{**reply_form(c, cid), **changes})


def test_pages_need_sign_in(app: App) -> None:
    c = TestClient(create_app(app))
    for path in ("/", "/queue", "/dashboard", "/cases/1", "/report", "/mentions.csv"):
        r = c.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), path


def test_wrong_password_is_refused(app: App) -> None:
    c = TestClient(create_app(app))
    page = c.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    r = c.post("/login", data={"username": "ann", "password": "nope-nope", "csrf_token": token})
    assert r.status_code == 401
    assert "wrong username or password" in r.text
    r = c.post("/login", data={"username": "ghost", "password": "nope-nope", "csrf_token": token})
    assert r.status_code == 401


def test_login_form_needs_csrf(app: App) -> None:
    c = TestClient(create_app(app))
    r = c.post("/login", data={"username": "ann", "password": wf.PASSWORD})
    assert r.status_code == 403


def test_login_redirect_is_same_site_only(app: App) -> None:
    c = TestClient(create_app(app))
    page = c.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    r = c.post(
        "/login",
        data={
            "username": "ann",
            "password": wf.PASSWORD,
            "csrf_token": token,
            "next": "https://evil.example/",
        },
        follow_redirects=False,
    )
    assert r.headers["location"] == "/queue"


def test_security_headers_and_cookie_flags(app: App) -> None:
    c = TestClient(create_app(app))
    page = c.get("/login")
    assert page.headers["content-security-policy"] == CSP
    for directive in (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ):
        assert directive in CSP
    assert "unsafe-inline" not in CSP
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"]
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    # no inline script or style anywhere
    assert "<script>" not in page.text and "style=" not in page.text


def test_logout_ends_the_session(client_for: Callable[[str], TestClient]) -> None:
    c = client_for("ann")
    assert c.get("/queue").status_code == 200
    post(c, "/logout")
    assert c.get("/queue", follow_redirects=False).status_code == 303


def test_queue_sorted_by_priority_with_reasons_and_sla(
    app: App, client_for: Callable[[str], TestClient]
) -> None:
    low = wf.seed_case(
        app,
        "Zephyr Shoes size runs small",
        handle="@low",
        priority=20,
        category="wrong_item_or_size",
    )
    high = wf.seed_case(app, "Lost package from Zephyr, furious", handle="@high", priority=90)
    html = client_for("ann").get("/queue").text
    rows = re.findall(r'<tr class="case-row" data-id="(\d+)"', html)
    assert rows == [str(high), str(low)]
    assert "negative 0.97 · lost package · 12k followers" in html
    assert "data-due=" in html and ("due in" in html or "overdue" in html)


def test_queue_filters_and_search(app: App, client_for: Callable[[str], TestClient]) -> None:
    a = wf.seed_case(app, "Zephyr lost my parcel", handle="@a", source="blogs", category="delivery")
    b = wf.seed_case(
        app, "Zephyr charged me twice 100%", handle="@b", source="social", category="billing"
    )
    c = client_for("lee")

    def ids(qs: str) -> set[str]:
        return set(re.findall(r'data-id="(\d+)"', c.get("/queue?" + qs).text))

    assert ids("") == {str(a), str(b)}
    assert ids("source=blogs") == {str(a)}
    assert ids("category=billing") == {str(b)}
    assert ids("q=parcel") == {str(a)}
    assert ids("q=PARCEL") == {str(a)}
    assert ids("q=100%25") == {str(b)}  # a literal %, not a wildcard
    assert ids("q=%25") == {str(b)}
    assert ids("q=_") == set()
    post(c, f"/cases/{a}/claim")
    assert ids("assignee=lee") == {str(a)}
    assert ids("assignee=-") == {str(b)}
    assert ids("status=claimed") == {str(a)}


def test_queue_paginates(app: App, client_for: Callable[[str], TestClient]) -> None:
    for i in range(5):
        wf.seed_case(app, f"Zephyr problem {i}", handle=f"@p{i}", priority=50 + i)
    c = client_for("ann")
    first = re.findall(r'data-id="(\d+)"', c.get("/queue?per_page=2").text)
    third = re.findall(r'data-id="(\d+)"', c.get("/queue?per_page=2&page=3").text)
    assert len(first) == 2 and len(third) == 1 and not set(first) & set(third)


def test_claim_is_exclusive_and_presence_is_shown(
    app: App, client_for: Callable[[str], TestClient]
) -> None:
    cid = wf.seed_case(app)
    ann, bob = client_for("ann"), client_for("bob")
    ann.get(f"/cases/{cid}")
    page = bob.get(f"/cases/{cid}").text
    assert "also looking: ann" in page
    r = ann.post(f"/cases/{cid}/presence", headers={"X-CSRF-Token": wf.csrf_of(ann)})
    assert r.json() == {"viewers": ["bob"]}
    assert "ann" in re.search(r'class="viewers">([^<]*)<', bob.get("/queue").text).group(1)  # type: ignore[union-attr]

    assert ("ok", f"you claimed case #{cid}") in flashes(post(ann, f"/cases/{cid}/claim").text)
    r = post(bob, f"/cases/{cid}/claim")
    assert ("error", f"case {cid} is claimed by ann") in flashes(r.text)
    with app.sessions() as s:
        assert s.get(m.Case, cid).assignee == "ann"  # type: ignore[union-attr]


def test_presence_needs_csrf(app: App, client_for: Callable[[str], TestClient]) -> None:
    cid = wf.seed_case(app)
    assert client_for("ann").post(f"/cases/{cid}/presence").status_code == 403


def test_work_a_case_claim_edit_offer_approve_sent(
    app: App, client_for: Callable[[str], TestClient]
) -> None:
    cid = wf.seed_case(app, channel="blog_comment")
    c = client_for("ann")
    post(c, f"/cases/{cid}/claim")
    r = post(
        c, f"/cases/{cid}/draft", text="So sorry, Maria! A new pair ships tonight.", draft_version=1
    )
    assert ("ok", "draft saved (version 2)") in flashes(r.text)
    r = post(c, f"/cases/{cid}/offer", offer_key="overnight_upgrade", draft_version=2)
    assert ("ok", "offer: overnight_upgrade") in flashes(r.text), flashes(r.text)
    r = approve_as_shown(c, cid)
    assert ("ok", f"case #{cid} approved · the queue is empty") in flashes(r.text), flashes(r.text)
    r = post(c, f"/cases/{cid}/sent", url="https://blog.example/post#c-99")
    assert ("ok", f"case #{cid} marked as sent") in flashes(r.text), flashes(r.text)
    assert 'id="case-status">sent<' in r.text
    kinds = re.findall(r'<li data-kind="([a-z_.]+)">', r.text)
    assert {"case.claimed", "offer.selected", "case.approved", "reply.sent"} <= set(kinds), kinds
    assert "ann approved version 2 of the reply with overnight_upgrade" in r.text


def test_policy_warnings_and_length(app: App, client_for: Callable[[str], TestClient]) -> None:
    from listener.policy import x_weighted_length

    text = "@maria sorry " + "é" * 300 + " ask @someoneelse 日本"
    cid = wf.seed_case(app, draft=text)
    page = client_for("ann").get(f"/cases/{cid}").text
    assert "unsolicited @mentions" in page
    assert "allows 280" in page
    shown = re.search(r'id="draft-length">(\d+)<', page).group(1)  # type: ignore[union-attr]
    assert int(shown) == x_weighted_length(text) == 335


def test_label_correction_feeds_the_learning_loop(
    app: App, client_for: Callable[[str], TestClient]
) -> None:
    cid = wf.seed_case(app)
    with app.sessions() as s:
        mid = s.scalar(select(m.Mention.id).where(m.Mention.case_id == cid))
    c = client_for("ann")
    r = post(c, f"/mentions/{mid}/correct", unhappy="no", next=f"/cases/{cid}")
    assert any("correction" in msg for _, msg in flashes(r.text))
    r = post(c, f"/mentions/{mid}/correct", category="billing", next=f"/cases/{cid}")
    with app.sessions() as s:
        rows = s.scalars(
            select(m.Correction).where(m.Correction.mention_id == mid).order_by(m.Correction.id)
        ).all()
    assert next((x.unhappy, x.actor) for x in rows) == (False, "ann")
    assert rows[-1].category == "billing"
    assert "corrected by ann" in r.text


def test_marketing_is_read_only(app: App, client_for: Callable[[str], TestClient]) -> None:
    cid = wf.seed_case(app)
    c = client_for("mia")
    assert c.get("/", follow_redirects=False).headers["location"] == "/dashboard"
    assert c.get("/dashboard").status_code == 200
    page = c.get(f"/cases/{cid}").text
    assert 'id="approve"' not in page and 'id="claim"' not in page
    r = c.post(f"/cases/{cid}/presence", headers={"X-CSRF-Token": wf.csrf_of(c)})
    assert r.status_code == 403 and r.json()["error"] == "PermissionDenied"
    for action in ("claim", "approve", "draft", "resolve", "snooze", "reject", "sent"):
        r = c.post(
            f"/cases/{cid}/{action}",
            data={"csrf_token": wf.csrf_of(c), "text": "x", "draft_version": "1"},
            follow_redirects=False,
        )
        assert r.status_code == 303  # back with an error message, nothing done
    assert ("error", "the marketing role is read-only") in flashes(c.get("/dashboard").text)
    with app.sessions() as s:
        case = s.get(m.Case, cid)
        assert case is not None and case.status == "drafted" and case.assignee is None
        assert s.scalar(select(func.count()).select_from(m.OutboxMessage)) == 0


def test_agent_cannot_approve_above_their_tier(
    app: App, client_for: Callable[[str], TestClient]
) -> None:
    cid = wf.seed_case(app, category="damaged_or_defective")
    ann, lee = client_for("ann"), client_for("lee")
    post(ann, f"/cases/{cid}/claim")
    post(ann, f"/cases/{cid}/offer", offer_key="free_replacement")  # cost 65 > lead_above 50
    r = approve_as_shown(ann, cid)
    assert r.status_code == 403
    assert "need a lead" in re.search(r'id="problem"[^>]*>([^<]*)<', r.text).group(1)  # type: ignore[union-attr]
    with app.sessions() as s:
        assert s.get(m.Case, cid).status == "claimed"  # type: ignore[union-attr]
    r = approve_as_shown(lee, cid)
    assert ("ok", f"case #{cid} approved · the queue is empty") in flashes(r.text), flashes(r.text)


def test_only_leads_assign_and_bulk_actions(
    app: App, client_for: Callable[[str], TestClient]
) -> None:
    ids = [wf.seed_case(app, f"Zephyr issue {i}", handle=f"@b{i}") for i in range(3)]
    ann, lee = client_for("ann"), client_for("lee")
    r = post(ann, f"/cases/{ids[0]}/assign", assignee="bob")
    assert any("lead" in msg for _, msg in flashes(r.text))
    token = wf.csrf_of(lee)
    r = lee.post(
        "/queue/bulk",
        data={
            "csrf_token": token,
            "action": "assign",
            "assignee": "bob",
            "ids": [str(ids[0]), str(ids[1])],
        },
        follow_redirects=True,
    )
    assert ("ok", "2 cases assigned to bob") in flashes(r.text)
    r = ann.post(
        "/queue/bulk",
        data={"csrf_token": wf.csrf_of(ann), "action": "dismiss", "ids": [str(ids[2])]},
        follow_redirects=True,
    )
    assert ("ok", "1 case dismissed") in flashes(r.text), flashes(r.text)
    with app.sessions() as s:
        got = {c.id: (c.status, c.assignee) for c in s.scalars(select(m.Case))}
    assert got[ids[0]] == ("claimed", "bob") and got[ids[1]] == ("claimed", "bob")
    assert got[ids[2]][0] == "rejected"


def test_dashboard_drilldown_and_csv(app: App, client_for: Callable[[str], TestClient]) -> None:
    wf.seed_case(app, '=HYPERLINK("http://evil") Zephyr broke', handle="@csv", source="blogs")
    wf.seed_case(app, "Zephyr shoes are late", handle="@late", followers=90_000)
    c = client_for("mia")
    html = c.get("/dashboard?window=7d").text
    links = re.findall(r'<a href="(/mentions\?[^"]+)" class="seg">', html)
    assert links, "no drill-down links in the charts"
    assert "@late" in html  # top authors by reach
    target = links[0].replace("&amp;", "&")
    drill = c.get(target)
    assert drill.status_code == 200 and "mention-row" in drill.text
    r = c.get("/mentions.csv?window=7d")
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 2
    texts = {row["text"] for row in rows}
    assert '\'=HYPERLINK("http://evil") Zephyr broke' in texts  # no formula injection
    assert c.get("/mentions?bucket=2026-99-99").status_code == 400


def test_team_report_page(app: App, client_for: Callable[[str], TestClient]) -> None:
    cid = wf.seed_case(app)
    wf.seed_case(app, "Zephyr charged me twice", handle="@b", category="billing")
    lee = client_for("lee")
    post(lee, f"/cases/{cid}/claim")
    html = client_for("mia").get("/report?window=30d").text
    assert "SLA met" in html and "Recovery rate" in html and "Offer cost" in html
    agents = re.search(r'<table class="report" id="report-agent">(.*?)</table>', html, re.S)
    categories = re.search(r'<table class="report" id="report-category">(.*?)</table>', html, re.S)
    assert agents and categories
    assert "<th>lee</th>" in agents.group(1) and "<th>(nobody)</th>" in agents.group(1)
    assert "<th>billing</th>" in categories.group(1)
    for raw in ("None", "{", "_pct", "+00:00"):  # readable, not Python's reprs
        assert raw not in re.sub(r"<[^>]+>", " ", html.split("<main>", 1)[1]), raw


def test_health_and_metrics(app: App) -> None:
    c = TestClient(create_app(app))
    r = c.get("/healthz")
    assert r.status_code == 200
    assert c.get("/metrics").status_code == 200


def test_missing_case_is_404(client_for: Callable[[str], TestClient]) -> None:
    assert client_for("ann").get("/cases/999999").status_code == 404


def test_secret_key_generated_once_mode_600(tmp_path: Any) -> None:
    import os
    import stat

    from listener.config import settings_from_dict
    from listener.web.security import secret_key_path, session_secret

    settings = settings_from_dict(
        {"brand": {"name": "Zephyr Shoes"}, "database": {"url": f"sqlite:///{tmp_path}/x.db"}},
        env={},
    )
    path = secret_key_path(settings)
    assert path == tmp_path / "var" / "secret_key" and not path.exists()
    first = session_secret(settings)
    assert session_secret(settings) == first and len(first) >= 40
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    configured = settings_from_dict(
        {
            "brand": {"name": "Z"},
            "web": {"secret_key": "${LISTENER_SECRET_KEY}"},
            "database": {"url": f"sqlite:///{tmp_path}/x.db"},
        },
        env={"LISTENER_SECRET_KEY": "from-the-environment"},
    )
    assert session_secret(configured) == "from-the-environment"
