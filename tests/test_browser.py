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
    assert "draft saved (version 2)" in flash_texts(page)

    # one-click label correction feeds the learning loop
    page.click("button.correct-happy")
    page.wait_for_load_state()
    assert any("correction" in f for f in flash_texts(page))
    with app.sessions() as s:
        corrections = s.scalars(select(m.Correction)).all()
    assert [(c.unhappy, c.actor) for c in corrections] == [(False, "nora")]

    # a approves the reply as shown (keyboard); the next case opens by itself
    page.locator("h1").click()  # focus out of any field
    with page.expect_navigation():
        page.keyboard.press("a")
    assert page.url.endswith(f"/cases/{other}"), page.url
    assert f"case #{cid} approved · next: case #{other}" in flash_texts(page), flash_texts(page)
    # k goes back up the queue; the approved case is no longer in it, so open it directly
    page.goto(f"{server}/cases/{cid}")
    assert page.inner_text("#case-status") == "approved"
    assert page.locator("#approve").count() == 0 and page.locator("#save-draft").count() == 0
    assert page.locator("#mark-sent").count() == 0  # an X reply: the outbox posts it
    assert "pending" in page.inner_text("#outbox")
    events = page.inner_text("#events")
    for sentence in (
        "nora claimed the case",
        "nora edited the reply (version 2)",
        "nora corrected a post's label: not unhappy",
        "nora approved version 2 of the reply",
    ):
        assert sentence in events, (sentence, events)
    with app.sessions() as s:
        case = s.get(m.Case, cid)
        assert case is not None and case.status == "approved" and case.assignee == "nora"
        sent = s.scalars(select(m.OutboxMessage).where(m.OutboxMessage.case_id == cid)).one()
        assert sent.status == "pending" and sent.text == text
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
                     'style', 'img', 'video', 'audio', 'details:not(#reject-box)', 'marquee',
                     'math', 'x', 'svg:not(.chart)', 'form[action^="javascript"]', 'noscript']) {
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


# -- issue 12: case work you can trust, in a real browser ---------------------------------


def unexpected(errors: list[str]) -> list[str]:
    """Console errors, less the browser's note that a refused action's page came with its
    status (409, 403…): that page is the answer, shown on purpose."""
    return [
        e for e in errors if not re.match(r"Failed to load resource: .* status of 4(03|09|22) ", e)
    ]


def _page(browser: Any, server: str, username: str, start: str = "/") -> tuple[Any, Any, Watch]:
    context = browser.new_context()
    page = context.new_page()
    watch = Watch(page)
    sign_in(page, server, username, start)
    return context, page, watch


def test_stale_approve_is_refused_and_nothing_typed_is_lost(
    app: App, server: str, browser: Any
) -> None:
    wf.add_users(app, ("ann", "agent"), ("bob", "agent"))
    cid = wf.seed_case(app, channel="blog_comment", draft="Sorry about the lost package, Maria.")
    ann_ctx, ann, ann_watch = _page(browser, server, "ann", f"/cases/{cid}")
    bob_ctx, bob, bob_watch = _page(browser, server, "bob", f"/cases/{cid}")
    # bob saves a newer version while ann's page still shows version 1
    bob.locator("#draft-text").fill("Maria, we're so sorry! Overnight shipping on us.")
    bob.click("#save-draft")
    bob.wait_for_load_state()
    assert "draft saved (version 2)" in flash_texts(bob)
    # ann edits her stale page and approves: refused, her text kept, bob's shown beside it
    mine = "Maria, I'm so sorry. A replacement ships today."
    ann.locator("#draft-text").fill(mine)
    ann.click("#approve")
    ann.wait_for_load_state()
    assert "changed since you saw it" in ann.inner_text("#problem")
    assert ann.input_value("#draft-text") == mine  # nothing typed is lost
    assert "Overnight shipping on us" in ann.inner_text("#newer-version")
    assert ann.inner_text("#case-status") == "drafted"
    # having compared, ann approves what she now sees: her text, as version 3
    ann.click("#approve")
    ann.wait_for_load_state()
    assert any(f"case #{cid} approved" in f for f in flash_texts(ann)), flash_texts(ann)
    with app.sessions() as s:
        msg = s.scalars(select(m.OutboxMessage).where(m.OutboxMessage.case_id == cid)).one()
        drafts = s.scalars(select(m.Draft).where(m.Draft.case_id == cid)).all()
    assert msg.text == mine and [d.version for d in drafts] == [1, 2, 3]
    # the queue has no approve button: a case is approved from its page only
    ann.goto(server + "/queue")
    assert ann.locator("form[action$='/approve']").count() == 0
    assert unexpected(ann_watch.errors + bob_watch.errors) == []
    ann_ctx.close()
    bob_ctx.close()


def test_unsaved_edits_hold_other_actions_and_approve_saves_them(
    app: App, server: str, browser: Any
) -> None:
    wf.add_users(app, ("ann", "agent"))
    cid = wf.seed_case(app, channel="blog_comment", draft="Sorry, Maria.")
    ctx, page, watch = _page(browser, server, "ann", f"/cases/{cid}")
    page.locator("#draft-text").fill("Sorry, Maria. I'm looking into it today.")
    page.click("#snooze")  # another form: held until the edits are saved or discarded
    assert page.locator("#dirty-note").is_visible()
    assert page.url.endswith(f"/cases/{cid}")
    page.keyboard.press("Escape")
    page.keyboard.press("j")  # moving on would lose them too
    assert page.url.endswith(f"/cases/{cid}")
    page.click("#approve")
    page.wait_for_load_state()
    with app.sessions() as s:
        msg = s.scalars(select(m.OutboxMessage).where(m.OutboxMessage.case_id == cid)).one()
    assert msg.text == "Sorry, Maria. I'm looking into it today."
    assert watch.errors == [], watch.errors
    ctx.close()


def test_snooze_hides_the_case_and_it_comes_back(app: App, server: str, browser: Any) -> None:
    from datetime import UTC, datetime, timedelta

    wf.add_users(app, ("ann", "agent"))
    cid = wf.seed_case(app, priority=90)
    other = wf.seed_case(app, "Zephyr sizes run small", handle="@small", priority=10)
    ctx, page, watch = _page(browser, server, "ann", f"/cases/{cid}")
    page.select_option('#snooze-form select[name="for"]', "1h")
    page.fill('#snooze-form input[name="note"]', "waiting for her order number")
    page.click("#snooze")
    page.wait_for_load_state()
    assert page.url.endswith(f"/cases/{other}")  # on to the next case
    page.goto(server + "/queue")
    assert [r.get_attribute("data-id") for r in page.locator("tr.case-row").all()] == [str(other)]
    page.select_option('select[name="status"]', "snoozed")
    page.click("#filters button[type=submit]")
    page.wait_for_load_state()
    assert [r.get_attribute("data-id") for r in page.locator("tr.case-row").all()] == [str(cid)]
    assert "waiting for her order number" in page.inner_text("tr.case-row")
    # the hour passes: the case is back in its place, saying why it slept
    with app.sessions.begin() as s:
        s.get_one(m.Case, cid).snoozed_until = datetime.now(UTC) - timedelta(minutes=1)
    page.goto(server + "/queue")
    rows = page.locator("tr.case-row")
    assert [r.get_attribute("data-id") for r in rows.all()] == [str(cid), str(other)]
    assert "back from snooze (ann): waiting for her order number" in rows.first.inner_text()
    assert watch.errors == [], watch.errors
    ctx.close()


def test_a_second_viewer_sees_a_claimed_case_read_only(app: App, server: str, browser: Any) -> None:
    wf.add_users(app, ("ann", "agent"), ("bob", "agent"), ("lee", "lead"))
    cid = wf.seed_case(app)
    ann_ctx, ann, _ = _page(browser, server, "ann", f"/cases/{cid}")
    ann.click("#claim")
    ann.wait_for_load_state()
    bob_ctx, bob, bob_watch = _page(browser, server, "bob", f"/cases/{cid}")
    assert "ann is working on this case" in bob.inner_text("#read-only")
    assert bob.get_attribute("#draft-text", "readonly") is not None
    for button in ("#approve", "#save-draft", "#claim", "#snooze", "#resolve", "#reject-open"):
        assert bob.locator(button).count() == 0, button
    assert "also looking: ann" in bob.inner_text("#viewers")
    lee_ctx, lee, _ = _page(browser, server, "lee", f"/cases/{cid}")
    assert lee.inner_text("#claim") == "Take over from ann"
    assert bob_watch.errors == [], bob_watch.errors
    for c in (ann_ctx, bob_ctx, lee_ctx):
        c.close()


def test_a_working_day_flows_from_case_to_case(app: App, server: str, browser: Any) -> None:
    wf.add_users(app, ("ann", "agent"))
    ids = [
        wf.seed_case(app, f"Zephyr problem number {i}", handle=f"@c{i}", priority=90 - i)
        for i in range(3)
    ]
    ctx, page, watch = _page(browser, server, "ann")
    # ? lists the keys, / searches
    page.keyboard.press("?")
    assert page.locator("#keys").is_visible()
    page.keyboard.press("Escape")
    assert not page.locator("#keys").is_visible()
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "search"
    page.keyboard.press("Escape")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith(f"/cases/{ids[0]}")
    # j / k walk the queue from the case page
    with page.expect_navigation():
        page.keyboard.press("j")
    assert page.url.endswith(f"/cases/{ids[1]}")
    with page.expect_navigation():
        page.keyboard.press("k")
    assert page.url.endswith(f"/cases/{ids[0]}")
    # reject asks first, then offers an undo, and the next case opens
    assert not page.locator("#reject").is_visible()
    page.click("#reject-open")
    page.fill('#reject-form input[name="reason"]', "a competitor's shoes")
    page.click("#reject")
    page.wait_for_load_state()
    assert page.url.endswith(f"/cases/{ids[1]}")
    assert any(f"case #{ids[0]} rejected" in f for f in flash_texts(page))
    page.click("#undo")
    page.wait_for_load_state()
    assert page.url.endswith(f"/cases/{ids[0]}")
    assert page.inner_text("#case-status") == "drafted"
    # resolve: on to the next one; buttons follow the state
    page.click("#resolve")
    page.wait_for_load_state()
    assert page.url.endswith(f"/cases/{ids[1]}")
    page.goto(f"{server}/cases/{ids[0]}")
    assert page.inner_text("#case-status") == "resolved"
    assert page.locator("#approve").count() == 0 and page.locator("#resolve").count() == 0
    assert "ann resolved the case" in page.inner_text("#events")
    assert watch.dialogs == [] and watch.errors == [], (watch.dialogs, watch.errors)
    ctx.close()


def test_a_lead_has_a_list_of_cases_waiting_for_them(app: App, server: str, browser: Any) -> None:
    wf.add_users(app, ("ann", "agent"), ("lee", "lead"))
    cid = wf.seed_case(app, category="damaged_or_defective")
    wf.seed_case(app, "Zephyr sizes run small", handle="@small", priority=10)
    ann_ctx, ann, _ = _page(browser, server, "ann", f"/cases/{cid}")
    ann.select_option('#offer-form select[name="offer_key"]', "free_replacement")
    ann.click("#choose-offer")
    ann.wait_for_load_state()
    ann.click("#approve")
    ann.wait_for_load_state()
    assert "need a lead" in ann.inner_text("#problem")
    lee_ctx, lee, watch = _page(browser, server, "lee")
    lee.click("#nav-waiting")
    lee.wait_for_load_state()
    assert [r.get_attribute("data-id") for r in lee.locator("tr.case-row").all()] == [str(cid)]
    lee.locator("tr.case-row a.open").click()
    lee.wait_for_load_state()
    lee.click("#approve")
    lee.wait_for_load_state()
    assert any(f"case #{cid} approved" in f for f in flash_texts(lee)), flash_texts(lee)
    assert watch.errors == [], watch.errors
    ann_ctx.close()
    lee_ctx.close()


def test_api_docs_render_offline_under_the_csp(app: App, server: str, browser: Any) -> None:
    context = browser.new_context()
    page = context.new_page()
    watch = Watch(page)
    outside: list[str] = []
    page.on(
        "request",
        lambda r: outside.append(r.url) if not r.url.startswith((server, "data:")) else None,
    )
    page.goto(server + "/api/docs")
    page.wait_for_selector(".opblock", timeout=20_000)
    assert page.locator(".opblock").count() >= 15
    assert "/api/v1/cases/{case_id}/approve" in page.inner_text("body")
    assert outside == [] and watch.errors == [], (outside, watch.errors)
    context.close()


@pytest.mark.parametrize("path", ["/queue", "/cases/{cid}", "/report"])
def test_pages_fit_a_phone(app: App, server: str, browser: Any, path: str) -> None:
    wf.add_users(app, ("ann", "agent"))
    cid = wf.seed_case(
        app, "Zephyr Shoes " + "lost-my-package-" * 12 + " and nobody answers", priority=90
    )
    for i in range(4):
        wf.seed_case(app, f"Zephyr issue {i} with a fairly long complaint text", handle=f"@p{i}")
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    sign_in(page, server, "ann", path.format(cid=cid))
    page.wait_for_load_state()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"{path} scrolls sideways on a phone: {width}px wide"
    context.close()


def test_two_agents_link_one_customer(app: App, server: str, browser: Any) -> None:
    """#17: bob says "same person" on the case page while ann has it open; ann's stale
    merge is refused with the reason; ann accepts the suggested blog case; one case."""
    wf.add_users(app, ("ann", "agent"), ("bob", "agent"))
    a = wf.seed_case(app, "@zephyrshoes order #88231 never came. Terrible.", handle="maya_k")
    b = wf.seed_case(app, "Zephyr Shoes lost my wedding shoes.", handle="maya@mastodon.social")
    c = wf.seed_case(app, "Zephyr Shoes order 88231 froze. Bad.", handle="Maya K")
    with app.sessions.begin() as s:
        for cid, platform in ((b, "mastodon"), (c, "blog")):
            s.get_one(m.Author, s.get_one(m.Case, cid).author_id).platform = platform
        s.add(
            m.LinkSuggestion(
                case_id=a,
                other_case_id=c,
                evidence=[{"kind": "order", "value": "88231", "detail": "order 88231 in both"}],
                status="suggested",
            )
        )
    pages = []
    for user in ("ann", "bob"):
        context = browser.new_context()
        page = context.new_page()
        sign_in(page, server, user)
        page.goto(f"{server}/cases/{a}")
        pages.append((context, page, Watch(page)))
    (_, ann, ann_watch), (_, bob, bob_watch) = pages
    assert "order 88231 in both" in ann.inner_text("#link-suggestions")

    bob.fill("#merge-other", str(b))
    bob.click("#merge")
    bob.wait_for_load_state()
    assert f"case #{b} merged into case #{a}: one customer" in flash_texts(bob)

    ann.fill("#merge-other", str(b))  # ann's page is stale: b is already merged
    ann.click("#merge")
    ann.wait_for_load_state()
    assert any(f"case {b} is merged into case {a}" in f for f in flash_texts(ann))

    with ann.expect_navigation():
        ann.click("button.accept-link")
    assert ann.url.endswith(f"/cases/{a}")
    assert "One customer on x, mastodon, blog" in ann.inner_text("#platforms")
    assert ann.locator("article.post").count() == 3
    events = ann.inner_text("#events")
    assert f"bob merged case {b} (mastodon)" in events
    assert f"ann merged case {c} (blog)" in events and "accepting suggestion" in events
    for context, _, watch in pages:
        assert watch.dialogs == [] and watch.errors == [], (watch.dialogs, watch.errors)
        context.close()
    assert ann_watch is not bob_watch
