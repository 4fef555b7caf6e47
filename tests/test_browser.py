"""End-to-end tests in headless Chromium (Debian's ``chromium`` driven by Playwright).

The app is served by uvicorn on 127.0.0.1:<free port>.  Covers: a new user signs in
and works a case from claim to sent (keyboard included) and corrects a label; the
marketing dashboard with drill-down; an XSS corpus rendered inert everywhere.

Chromium is required: without it these tests FAIL, saying how to install it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import webfixtures as wf
from sqlalchemy import select

from listener import models as m
from listener.app import App

CHROMIUM = os.environ.get("LISTENER_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PAYLOADS = [
    line
    for line in (Path(__file__).parent / "xss_payloads.txt").read_text("utf-8").splitlines()
    if line.strip()
]
INSTALL = (
    "install it with: apt-get update && apt-get install -y chromium chromium-driver "
    "(Playwright drives the system Chromium; do not run `playwright install`)"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: {INSTALL}", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            f"the playwright Python package is missing: pip install playwright (and {INSTALL})",
            pytrace=False,
        )
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def app(make_app: Callable[..., App]) -> App:
    return make_app(wf.WEB_OVERRIDES)


@pytest.fixture
def server(app: App) -> Iterator[str]:
    with wf.live_server(app) as url:
        yield url


class Watch:
    """Dialogs and console errors (CSP violations show up there) seen by a page."""

    def __init__(self, page: Any) -> None:
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on(
            "console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None
        )
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


def sign_in(page: Any, base: str, username: str, start: str = "/") -> None:
    page.goto(base + start)
    assert "/login" in page.url
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', wf.PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_load_state()


def flash_texts(page: Any) -> list[str]:
    return [t.strip() for t in page.locator(".flash").all_inner_texts()]


def test_new_user_works_a_case_from_claim_to_sent(app: App, server: str, browser: Any) -> None:
    from listener.auth import add_user
    from listener.policy import x_weighted_length

    add_user(app, "nora", wf.PASSWORD, role="agent")  # a brand-new agent
    cid = wf.seed_case(app, "Zephyr Shoes lost my package, three weeks now!", priority=90)
    other = wf.seed_case(app, "Zephyr sizes run small", handle="@small", priority=10)
    context = browser.new_context()
    page = context.new_page()
    watch = Watch(page)
    sign_in(page, server, "nora")
    assert page.url.endswith("/queue")
    rows = page.locator("tr.case-row")
    assert rows.count() == 2
    assert rows.nth(0).get_attribute("data-id") == str(cid)
    assert "lost package · 12k followers" in rows.nth(0).inner_text()
    assert re.search(r"(due in|overdue) \d", rows.nth(0).locator("td.sla").inner_text())

    # keyboard: j/k move the selection, c claims the selected case
    page.keyboard.press("j")
    assert rows.nth(1).get_attribute("class") == "case-row selected"
    page.keyboard.press("k")
    assert "selected" in (rows.nth(0).get_attribute("class") or "")
    with page.expect_navigation():
        page.keyboard.press("c")
    assert page.url.endswith(f"/cases/{cid}")
    assert f"you claimed case #{cid}" in flash_texts(page)
    assert page.inner_text("#assignee") == "nora"

    # e focuses the editor; the counter follows X's weighted length as you type
    page.keyboard.press("e")
    text = "@maria So sorry 😞 — a new pair ships tonight: https://zephyrshoes.example/track 日本"
    page.locator("#draft-text").fill(text)
    assert int(page.inner_text("#draft-length")) == x_weighted_length(text)
    page.locator("#draft-text").fill(text + " " + "x" * 300)
    page.wait_for_selector("#warnings li.live")
    page.locator("#draft-text").fill(text)
    assert page.locator("#warnings li.live").count() == 0
    page.click("#save-draft")
    page.wait_for_load_state()
    assert "draft saved" in flash_texts(page)

    # one-click label correction feeds the learning loop
    page.click("button.correct-happy")
    page.wait_for_load_state()
    assert any("correction" in f for f in flash_texts(page))
    with app.sessions() as s:
        corrections = s.scalars(select(m.Correction)).all()
    assert [(c.unhappy, c.actor) for c in corrections] == [(False, "nora")]

    # a approves (keyboard), then the reply is marked as sent by hand
    page.locator("h1").click()  # focus out of any field
    with page.expect_navigation():
        page.keyboard.press("a")
    assert f"case #{cid} approved" in flash_texts(page), flash_texts(page)
    assert page.inner_text("#case-status") == "approved"
    page.fill('#sent-form input[name="url"]', "https://x.example/status/42")
    page.click("#mark-sent")
    page.wait_for_load_state()
    assert page.inner_text("#case-status") == "sent"
    events = page.inner_text("#events")
    for kind in ("case.claimed", "draft.edited", "mention.corrected", "case.approved"):
        assert kind in events or kind.replace("edited", "created") in events, (kind, events)
    with app.sessions() as s:
        case = s.get(m.Case, cid)
        assert case is not None and case.status == "sent" and case.first_response_at
        sent = s.scalars(select(m.OutboxMessage).where(m.OutboxMessage.case_id == cid)).one()
        assert sent.status == "sent" and sent.text == text
        assert s.get(m.Case, other).status == "drafted"  # type: ignore[union-attr]

    page.click("#logout")
    page.wait_for_load_state()
    assert "/login" in page.url
    assert watch.dialogs == [] and watch.errors == [], (watch.dialogs, watch.errors)
    context.close()


def test_marketing_dashboard_drilldown(app: App, server: str, browser: Any) -> None:
    wf.add_users(app, ("mia", "marketing"))
    for i in range(3):
        wf.seed_case(app, f"Zephyr order {i} is late", handle=f"@late{i}", followers=1000 * i)
    context = browser.new_context()
    page = context.new_page()
    watch = Watch(page)
    sign_in(page, server, "mia")
    assert page.url.endswith("/dashboard")
    assert page.locator("svg.chart").count() >= 3
    assert page.locator("table.authors tbody tr").first.inner_text().startswith("@late2")
    assert page.get_attribute("#csv", "href").startswith("/mentions.csv")
    with page.expect_navigation():
        page.locator("svg.chart a.seg").first.click()
    assert "/mentions?" in page.url
    assert page.locator("tr.mention-row").count() == 3
    assert page.locator("nav a", has_text="Queue").count() == 0  # read-only role
    assert watch.dialogs == [] and watch.errors == [], (watch.dialogs, watch.errors)
    context.close()


def test_dashboard_range_comparison_drilldown_exports_and_phone_width(
    app: App, server: str, browser: Any
) -> None:
    from datetime import UTC, datetime, timedelta

    wf.add_users(app, ("mia", "marketing"))
    app.settings.dashboard.competitors = [
        type(app.settings.dashboard)
        .model_validate({"competitors": [{"name": "Nimbus", "terms": ["nimbus"]}]})
        .competitors[0]
    ]
    now = datetime.now(UTC)
    for i in range(4):  # this week
        wf.seed_case(
            app,
            f"Zephyr order {i} is late" + (", Nimbus never was" if i == 0 else ""),
            handle=f"@now{i}",
            followers=500 * (i + 1),
            published_at=now - timedelta(days=i % 3, minutes=5),
            url=f"https://x.example/now{i}/status/{i}",
        )
    wf.seed_case(
        app, "Zephyr sole fell off", handle="@before", published_at=now - timedelta(days=9)
    )
    from listener import rollups

    rollups.ensure_brands(app)
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    watch = Watch(page)
    sign_in(page, server, "mia")
    page.select_option('#range select[name="window"]', "7d")
    with page.expect_navigation():
        page.click("#range button[type=submit]")
    assert "window=7d" in page.url
    assert page.inner_text("#kpi-total dd").startswith("4")
    assert "+300%" in page.inner_text("#kpi-total dd")  # 4 now, 1 in the previous 7 days
    assert "80%" in page.inner_text("#kpi-voice dd")  # 4 of the 5 brand namings are ours
    assert page.locator("#chart-volume polyline.previous").count() == 1
    page.wait_for_selector('#terms[data-loaded="1"]')  # filled in after the charts
    assert page.locator("#terms li a").count() >= 1
    assert page.locator("#emerging li").count() >= 1

    # exports: chart data as CSV, the chart as SVG and as PNG (drawn in the browser)
    with page.expect_download() as csv_dl:
        page.locator("a.export-csv").first.click()
    assert csv_dl.value.suggested_filename.startswith("volume-")
    assert Path(csv_dl.value.path()).read_text().startswith("key,negative,neutral,positive")
    with page.expect_download() as svg_dl:
        page.locator("a.export-svg").first.click()
    svg = Path(svg_dl.value.path()).read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "Mentions per day" in svg
    with page.expect_download() as png_dl:
        page.locator("a.export-png").first.click()
    assert png_dl.value.suggested_filename == "volume.png"
    assert Path(png_dl.value.path()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # a custom range keeps its dates in every link
    page.select_option('#range select[name="window"]', "custom")
    page.fill('#range input[name="from"]', (now - timedelta(days=13)).date().isoformat())
    page.fill('#range input[name="to"]', now.date().isoformat())
    with page.expect_navigation():
        page.click("#range button[type=submit]")
    assert "from=" in page.url and page.inner_text("#kpi-total dd").startswith("5")

    # drill down from a bar to the posts, each linked to its original
    with page.expect_navigation():
        page.locator("#chart-volume a.seg").last.click()
    assert "/mentions?" in page.url and "from=" in page.url
    rows = page.locator("tr.mention-row")
    assert rows.count() >= 1
    assert rows.first.locator("a.original").get_attribute("href").startswith("https://x.example/")

    # a phone: nothing wider than the screen, charts shrink to fit
    phone = browser.new_context(viewport={"width": 375, "height": 800})
    small = phone.new_page()
    sign_in(small, server, "mia")
    widths = small.evaluate(
        "() => [document.documentElement.scrollWidth, window.innerWidth,"
        " document.querySelector('#chart-volume').getBoundingClientRect().width]"
    )
    assert widths[0] <= widths[1] and widths[2] <= widths[1], widths
    assert watch.dialogs == [] and watch.errors == [], (watch.dialogs, watch.errors)
    phone.close()
    context.close()


def test_alert_banner_alerts_page_and_acknowledge(app: App, server: str, browser: Any) -> None:
    from datetime import UTC, datetime, timedelta

    from listener.alerts import store
    from listener.alerts.conditions import Condition

    wf.add_users(app, ("ann", "agent"))
    now = datetime.now(UTC)
    with app.sessions.begin() as s:
        store.raise_condition(
            s,
            Condition(
                kind="spike",
                key="spike",
                scope="brand",
                title="Spike: 62 posts in the hour from 14:00 UTC (5.2× usual)",
                explanation="62 posts in the hour from 14:00 UTC, 5.2× the usual 11.9.",
                started_at=now,
                evidence={"hours": [now.replace(minute=0).isoformat()], "top_posts": []},
            ),
            now,
            timedelta(hours=1),
        )
    context = browser.new_context()
    page = context.new_page()
    watch = Watch(page)
    sign_in(page, server, "ann")
    banner = page.locator("#alert-banner")
    assert "1 open alert" in banner.inner_text() and "Spike: 62 posts" in banner.inner_text()
    with page.expect_navigation():
        banner.locator("a").click()
    assert page.url.endswith("/alerts")
    card = page.locator("article.alert-card").first
    assert "5.2× the usual" in card.inner_text()
    with page.expect_navigation():
        card.locator("button", has_text="Acknowledge").click()
    assert "alert #1 acknowledged" in flash_texts(page)
    assert "acknowledged by ann" in page.locator("article.alert-card").first.inner_text()
    assert "1 acknowledged alert" in page.inner_text("#alert-banner")
    assert watch.dialogs == [] and watch.errors == [], (watch.dialogs, watch.errors)
    context.close()


INJECTED_JS = """() => {
  const bad = [];
  for (const el of document.querySelectorAll('*')) {
    for (const a of el.attributes) {
      if (a.name.startsWith('on')) bad.push(el.tagName + ' ' + a.name);
      if (['href', 'src', 'action', 'data', 'formaction'].includes(a.name)
          && /^\\s*javascript:/i.test(a.value)) bad.push(el.tagName + ' ' + a.name + '=js');
    }
  }
  for (const el of document.querySelectorAll('script')) {
    if (!['/static/app.js', '/static/dashboard.js'].includes(el.getAttribute('src')))
      bad.push('script ' + el.outerHTML);
  }
  for (const sel of ['iframe', 'object', 'embed', 'base', 'meta[http-equiv]', 'link[href^="http"]',
                     'style', 'img', 'video', 'audio', 'details', 'marquee', 'math', 'x',
                     'svg:not(.chart)', 'form[action^="javascript"]', 'noscript']) {
    for (const el of document.querySelectorAll(sel)) bad.push(el.tagName);
  }
  return bad;
}"""


def test_xss_corpus_renders_inert(app: App, server: str, browser: Any) -> None:
    assert len(PAYLOADS) >= 40
    wf.add_users(app, ("ann", "agent"))
    ids = []
    for i, payload in enumerate(PAYLOADS):
        ids.append(
            wf.seed_case(
                app,
                payload,
                handle=f"@x{i}{payload[:40]}",
                draft=payload,
                category=payload[:100],
                label="negative",
                url=payload if i % 2 else "javascript:alert(1)",
                source=f"src{i % 3}",
            )
        )
    with app.sessions.begin() as s:  # payloads in every field a page shows
        for case in s.scalars(select(m.Case)):
            case.reasons = [PAYLOADS[case.id % len(PAYLOADS)], "{{7*7}}"]
        for author in s.scalars(select(m.Author)):
            author.display_name = PAYLOADS[author.id % len(PAYLOADS)]
    context = browser.new_context()
    page = context.new_page()
    watch = Watch(page)
    sign_in(page, server, "ann")
    from datetime import UTC, datetime, timedelta

    from listener.alerts import store
    from listener.alerts.conditions import Condition

    now = datetime.now(UTC)
    with app.sessions.begin() as s:  # payloads in alerts too (they quote posts)
        for i, payload in enumerate(PAYLOADS[:10]):
            store.raise_condition(
                s,
                Condition(
                    kind="source_silent",
                    key=f"x{i}",
                    scope=payload[:200],
                    title=payload,
                    explanation=payload,
                    started_at=now,
                    evidence={"top_posts": [{"author": payload, "text": payload, "url": payload}]},
                ),
                now,
                timedelta(hours=1),
            )
    pages = [
        "/alerts",
        "/queue?per_page=200",
        "/queue?q=%3Cscript%3E",
        "/dashboard?window=7d",
        "/mentions?window=7d",
        "/report",
    ]
    pages += [f"/cases/{cid}" for cid in ids]
    for path in pages:
        page.goto(server + path)
        page.wait_for_load_state()
        injected = page.evaluate(INJECTED_JS)
        assert injected == [], (path, injected)
        body = page.inner_text("body")
        if path.startswith("/cases/"):
            payload = PAYLOADS[ids.index(int(path.rsplit("/", 1)[1]))]
            assert payload.strip() in page.inner_text(".post-text"), path
            assert page.input_value("#draft-text") == payload
        assert "{{7*7}}" in body or path.startswith(("/dashboard", "/report", "/alerts")), path
    page.goto(server + f"/cases/{ids[PAYLOADS.index('{{7*7}}')]}")
    assert page.inner_text(".post-text") == "{{7*7}}"
    assert "49" not in page.inner_text(".post-text")
    assert watch.dialogs == [], watch.dialogs
    context.close()
