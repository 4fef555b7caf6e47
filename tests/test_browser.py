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
    if (el.getAttribute('src') !== '/static/app.js') bad.push('script ' + el.outerHTML);
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
    pages = [
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
        assert "{{7*7}}" in body or path.startswith(("/dashboard", "/report")), path
    page.goto(server + f"/cases/{ids[PAYLOADS.index('{{7*7}}')]}")
    assert page.inner_text(".post-text") == "{{7*7}}"
    assert "49" not in page.inner_text(".post-text")
    assert watch.dialogs == [], watch.dialogs
    context.close()
