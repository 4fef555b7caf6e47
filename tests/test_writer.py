"""The optional local rewriter: used when it passes the checks, the grounded draft otherwise.

Runs against a small OpenAI-compatible server on 127.0.0.1 (no model, no network)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import select

from listener import models as m
from listener.app import App
from listener.cases.sending import Rules
from listener.config import WriterSettings
from listener.writer import check_rewrite, rewrite_draft

RULES = Rules(brand_handles=("zephyrshoes",), brand_terms=("Zephyr Shoes",))
DRAFT = (
    "@sam_k Hi Sam, sorry to hear that your parcel never arrived. "
    "Could you DM us the order number? – Carla"
)


class Model:
    """What the fake server answers: a function of the draft it was sent."""

    answer: Callable[[str], str] = staticmethod(lambda draft: draft)
    status: int = 200
    seen: ClassVar[list[dict[str, Any]]] = []


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Model.seen.append(
            {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
        )
        draft = body["messages"][-1]["content"].split("Draft reply to rewrite:\n", 1)[1]
        payload = {"choices": [{"message": {"role": "assistant", "content": Model.answer(draft)}}]}
        data = json.dumps(payload).encode()
        self.send_response(Model.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    Model.answer, Model.status, Model.seen = (lambda d: d), 200, []
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def run(url: str, draft: str = DRAFT) -> Any:
    return rewrite_draft(
        draft,
        settings=WriterSettings(url=url, model="tiny", timeout="5s"),
        brand="Zephyr Shoes",
        voice="warm",
        post="my parcel never arrived",
        channel="x_reply",
        limit=280,
        author_handle="sam_k",
        rules=RULES,
        in_reply_to="1",
    )


def test_a_good_rewrite_is_used(server: str) -> None:
    Model.answer = lambda d: d.replace("sorry to hear", "so sorry to read")
    out = run(server)
    assert out.used and "so sorry to read" in out.text
    (call,) = Model.seen
    assert call["path"] == "/v1/chat/completions" and call["body"]["model"] == "tiny"


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (lambda d: d + " We'll refund you in full, too.", "promises"),
        (lambda d: d.replace("@sam_k", "@sam_k @elonmusk"), "unsolicited"),
        (lambda d: d.replace("@sam_k ", ""), "start with"),
        (lambda d: d + " " + "so sorry " * 40, "weighted"),
        (lambda d: "", "empty"),
    ],
)
def test_a_rewrite_that_breaks_a_rule_falls_back(
    server: str, answer: Callable[[str], str], why: str
) -> None:
    Model.answer = answer
    out = run(server)
    assert not out.used and out.text == DRAFT and why in out.reason


def test_server_errors_and_a_dead_server_fall_back(server: str) -> None:
    Model.status = 500
    out = run(server)
    assert not out.used and out.text == DRAFT and "unavailable" in out.reason
    dead = run("http://127.0.0.1:9/v1")
    assert not dead.used and dead.text == DRAFT


def test_keeping_the_attached_offers_promise() -> None:
    draft = "@sam_k Sorry! To make it right, we've upgraded your shipping to overnight, on us. – C"
    dropped = "@sam_k Sorry about that! – C"
    assert any(
        "drops" in p
        for p in check_rewrite(
            draft, dropped, channel="x_reply", author_handle="sam_k", rules=RULES, in_reply_to="1"
        )
    )


def test_pipeline_uses_the_writer_when_configured(
    make_app: Callable[..., App], tmp_path: Path, server: str
) -> None:
    from test_cases import post, social_app

    Model.answer = lambda d: d.replace("– Carla", "Talk soon. – Carla")
    text = "@zephyrshoes my order #ZS-12345 never arrived. Terrible service, so disappointed."
    app = social_app(
        make_app, tmp_path, [post(1, "dee", text, name="Dee Jones")], writer={"url": server}
    )
    with app.sessions() as s:
        draft = s.scalars(select(m.Draft)).one()
        event = s.scalars(select(m.Event).where(m.Event.kind == "draft.created")).one()
    assert "Talk soon." in draft.text and event.data["writer"] == "rewritten"
