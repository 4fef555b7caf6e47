"""#17 item 3 on the web and the API: "same person" on the case page (CSRF, roles), link
suggestions shown with their evidence and accepted or rejected, the JSON API's codes."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import webfixtures as wf
from fastapi.testclient import TestClient
from sqlalchemy import select
from test_cli_cases import _logging_as_it_was, run  # noqa: F401  (a fixture)

from listener import models as m
from listener.app import App
from listener.auth import mint_token
from listener.web import create_app

ROOT = Path(__file__).resolve().parent.parent
FLASH = re.compile(r'class="flash (\w+)"[^>]*>([^<]*)<')


@pytest.fixture
def app(make_app: Callable[..., App]) -> App:
    return wf.team_app(make_app)


@pytest.fixture
def web(app: App) -> Iterator[Callable[[str], TestClient]]:
    server = create_app(app)
    clients: list[TestClient] = []

    def make(username: str) -> TestClient:
        c = TestClient(server)
        clients.append(c)
        wf.login(c, username)
        return c

    yield make
    for c in clients:
        c.close()


def _cases(app: App) -> tuple[int, int, int]:
    a = wf.seed_case(app, "@zephyrshoes order #88231 never came. Terrible.", handle="maya_k")
    b = wf.seed_case(
        app, "Zephyr Shoes lost my wedding shoes. Awful.", handle="maya@mastodon.social"
    )
    c = wf.seed_case(app, "Blog: Zephyr Shoes order 88231 froze. Bad.", handle="Maya K")
    with app.sessions.begin() as s:
        for cid, platform in ((b, "mastodon"), (c, "blog")):
            case = s.get_one(m.Case, cid)
            s.get_one(m.Author, case.author_id).platform = platform
        s.add(
            m.LinkSuggestion(
                case_id=a,
                other_case_id=c,
                evidence=[{"kind": "order", "value": "88231", "detail": "order 88231 in both"}],
                status="suggested",
                created_at=datetime.now(UTC),
            )
        )
    return a, b, c


def _post(c: TestClient, path: str, **data: object) -> Any:
    return c.post(path, data={"csrf_token": wf.csrf_of(c), **data}, follow_redirects=False)


def _flash(c: TestClient, path: str, **data: object) -> tuple[str, str]:
    """Post a form; the flash message the next page shows (errors come back as 303 + flash)."""
    r = c.post(path, data={"csrf_token": wf.csrf_of(c), **data}, follow_redirects=True)
    found = FLASH.findall(r.text)
    assert found, r.text[:500]
    return found[-1]


def _status(app: App, case_id: int) -> str:
    with app.sessions() as s:
        return s.get_one(m.Case, case_id).status


def test_same_person_on_the_case_page(app: App, web: Callable[[str], TestClient]) -> None:
    a, b, c = _cases(app)
    ann, mia = web("ann"), web("mia")
    page = ann.get(f"/cases/{a}").text
    assert 'id="merge-form"' in page and "order 88231 in both" in page
    assert 'id="merge-form"' not in mia.get(f"/cases/{a}").text  # read-only: no button
    # CSRF and roles, as every case action; bad input is refused with the reason
    r = ann.post(f"/cases/{a}/merge", data={"other": str(b)}, follow_redirects=False)
    assert r.status_code == 403
    assert _flash(mia, f"/cases/{a}/merge", other=str(b)) == (
        "error",
        "the marketing role is read-only",
    )
    assert _flash(ann, f"/cases/{a}/merge", other=str(a)) == (
        "error",
        f"case {a} cannot be merged into itself",
    )
    assert _flash(ann, f"/cases/{a}/merge", other="abc")[0] == "error"
    assert _status(app, b) == "drafted"
    r = _post(ann, f"/cases/{a}/merge", other=str(b))
    assert r.status_code == 303 and r.headers["location"] == f"/cases/{a}"
    assert _status(app, b) == "merged"
    kind, text = _flash(ann, f"/cases/{a}/merge", other=str(b))
    assert kind == "error" and "merged into case" in text
    # the suggestion: shown with its evidence, accepted by another agent
    (sid,) = [s["id"] for s in _suggestions(app, a)]
    assert _post(web("bob"), f"/links/{sid}/accept").status_code == 303
    page = ann.get(f"/cases/{a}").text
    assert 'id="platforms"' in page and "One customer on x, mastodon, blog" in page
    assert page.count('class="post"') == 3
    assert "joined" in ann.get(f"/cases/{c}").text
    assert _flash(ann, f"/links/{sid}/reject") == (
        "error",
        f"link suggestion {sid} is already accepted",
    )


def _suggestions(app: App, case_id: int) -> list[dict[str, object]]:
    from listener.cases.linking import suggestions_for

    with app.sessions() as s:
        return suggestions_for(s, case_id)


def test_the_api(app: App) -> None:
    a, b, _ = _cases(app)
    server = create_app(app)

    def client(user: str) -> TestClient:
        return TestClient(server, headers={"Authorization": f"Bearer {mint_token(app, user)}"})

    ann, mia = client("ann"), client("mia")
    (s,) = ann.get(f"/api/v1/cases/{a}/link-suggestions").json()
    assert s["evidence"][0]["kind"] == "order"
    assert mia.post(f"/api/v1/cases/{a}/merge", json={"other_case_id": b}).status_code == 403
    assert ann.post(f"/api/v1/cases/{a}/merge", json={"other_case_id": a}).status_code == 400
    assert ann.post(f"/api/v1/cases/{a}/merge", json={"other_case_id": 0}).status_code == 422
    bad = ann.post(f"/api/v1/cases/{a}/merge", json={"other_case_id": b, "force": True})
    assert bad.status_code == 422
    assert ann.post(f"/api/v1/cases/{a}/merge", json={"other_case_id": 99999}).status_code == 404
    r = ann.post(f"/api/v1/cases/{a}/merge", json={"other_case_id": b})
    assert r.status_code == 200 and r.json()["id"] == a
    assert ann.post(f"/api/v1/cases/{a}/merge", json={"other_case_id": b}).status_code == 409
    r = ann.post(f"/api/v1/link-suggestions/{s['id']}/reject")
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    assert ann.post(f"/api/v1/link-suggestions/{s['id']}/accept").status_code == 409
    assert ann.post("/api/v1/link-suggestions/4242/accept").status_code == 404
    with app.sessions() as session:
        kinds = list(
            session.scalars(select(m.Event.kind).where(m.Event.case_id == a).order_by(m.Event.id))
        )
    assert kinds.count("case.merged") == 1 and kinds.count("link.rejected") == 1


@pytest.fixture
def cli_env(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An App with the web team and a config file for `listener --config`."""
    import yaml

    from listener.config import load_settings

    cfg = tmp_path / "config.yaml"
    recovery = {"templates_dir": str(ROOT / "templates"), **wf.WEB_OVERRIDES["recovery"]}
    cfg.write_text(
        yaml.safe_dump(
            {
                "brand": {"name": "Zephyr Shoes", "handles": ["@zephyrshoes"]},
                "database": {"url": db_url},
                "classifier": {"kind": "lexicon"},
                "recovery": recovery,
            }
        )
    )
    app = App.from_settings(load_settings(cfg))
    wf.add_users(app, *wf.TEAM)
    monkeypatch.delenv("LISTENER_USER", raising=False)
    yield app, cfg
    app.close()


def test_the_cli(cli_env: tuple[App, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """`listener merge`, `listener link suggestions|accept|reject`: the same use-cases."""
    app, cfg = cli_env
    a, b, _ = _cases(app)
    code, out, _ = run(capsys, cfg, "link", "suggestions", "--case", str(a))
    assert code == 0 and "order 88231 in both" in out and "blog" in out
    code, _, err = run(capsys, cfg, "merge", str(a), str(a), "--by", "ann")
    assert code != 0 and "cannot be merged into itself" in err
    code, _, err = run(capsys, cfg, "merge", str(a), str(b), "--by", "mia")
    assert code != 0 and "may not merge" in err
    code, out, _ = run(capsys, cfg, "merge", str(a), str(b), "--by", "ann", "--json")
    assert code == 0 and json.loads(out.strip().splitlines()[-1])["id"] == a
    code, _, err = run(capsys, cfg, "merge", str(a), str(b), "--by", "ann")
    assert code != 0 and "merged into case" in err
    (sid,) = [s["id"] for s in _suggestions(app, a)]
    code, out, _ = run(capsys, cfg, "link", "accept", str(sid), "--by", "bob")
    assert code == 0 and f"case {a}" in out
    code, _, err = run(capsys, cfg, "link", "reject", str(sid), "--by", "bob")
    assert code != 0 and "already accepted" in err
    code, out, _ = run(capsys, cfg, "link", "suggestions", "--all", "--json")
    assert code == 0 and json.loads(out)["status"] == "accepted"
