"""Taking access back: revoked and expired tokens, disabled users, sign-out, password
changes, login throttling, Secure cookies and restricted health endpoints.

Each probe from issue #14 is reproduced against the real web app (FastAPI's
TestClient over the real routes, the real session middleware and database).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import webfixtures as wf
import yaml
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from listener import auth
from listener import models as m
from listener.app import App
from listener.cli import cli
from listener.clock import utcnow
from listener.errors import Conflict, ListenerError, NotFound
from listener.web import create_app


@pytest.fixture
def app(make_app: Callable[..., App]) -> App:
    return wf.team_app(make_app)


@pytest.fixture
def client(app: App) -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def make(target: App | None = None, **kwargs: Any) -> TestClient:
        c = TestClient(create_app(target or app), **kwargs)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sign_in(c: TestClient, username: str, password: str = wf.PASSWORD) -> Any:
    page = c.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    return c.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token.group(1)},
        follow_redirects=False,
    )


# ---------------------------------------------------------------------------
# tokens


def test_a_revoked_token_gets_401(app: App, client: Callable[..., TestClient]) -> None:
    token = auth.mint_token(app, "ann", "ci")
    c = client()
    assert c.get("/api/v1/me", headers=bearer(token)).status_code == 200
    auth.revoke_token(app, "ann", "ci")
    r = c.get("/api/v1/me", headers=bearer(token))
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    (row,) = auth.list_tokens(app, "ann")
    assert row["status"] == "revoked" and row["revoked_reason"] == "revoked by listener"
    with pytest.raises(NotFound, match="no live token named 'ci'"):
        auth.revoke_token(app, "ann", "ci")


def test_an_expired_token_gets_401(app: App, client: Callable[..., TestClient]) -> None:
    token = auth.mint_token(app, "ann", "short-lived", expires_in=timedelta(hours=1))
    c = client()
    assert c.get("/api/v1/me", headers=bearer(token)).status_code == 200
    (row,) = auth.list_tokens(app, "ann")
    assert row["status"] == "active" and row["expires_at"] is not None
    with app.sessions.begin() as s:  # an hour later
        s.execute(update(m.ApiToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert c.get("/api/v1/me", headers=bearer(token)).status_code == 401
    assert auth.list_tokens(app, "ann")[0]["status"] == "expired"
    # an expired token's name may be taken again (the old one is revoked)
    auth.mint_token(app, "ann", "short-lived")
    statuses = sorted(t["status"] for t in auth.list_tokens(app, "ann"))
    assert statuses == ["active", "revoked"]
    with pytest.raises(ListenerError, match="must be in the future"):
        auth.mint_token(app, "ann", "x", expires_in=timedelta(0))


def test_token_names_are_unique_per_user(app: App) -> None:
    auth.mint_token(app, "ann", "ci")
    with pytest.raises(Conflict, match="already has a token named 'ci'"):
        auth.mint_token(app, "ann", "ci")
    auth.mint_token(app, "bob", "ci")  # another user may use the name
    assert auth.mint_token(app, "ann").startswith("lst_")  # unnamed: cli, cli-2…
    auth.mint_token(app, "ann")
    assert sorted(t["name"] for t in auth.list_tokens(app, "ann")) == ["ci", "cli", "cli-2"]
    auth.revoke_token(app, "ann", "ci")
    auth.mint_token(app, "ann", "ci")  # a revoked token's name is free again
    with pytest.raises(ListenerError, match="invalid token name"):
        auth.mint_token(app, "ann", "bad name\n")


def test_token_names_made_unique_when_upgrading(db_url: str) -> None:
    """Migration 0004 renames live duplicates before the unique index is created."""
    from alembic import command
    from sqlalchemy import text

    from listener.db import alembic_config, make_engine

    engine = make_engine(db_url)
    try:
        command.upgrade(alembic_config(engine), "0002")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO users (id, username, role, password_hash, active, created_at) "
                    "VALUES (1, 'ann', 'agent', 'x', true, CURRENT_TIMESTAMP)"
                )
            )
            for i, name in enumerate(["cli", "cli", "cli", "ci"]):
                conn.execute(
                    text(
                        "INSERT INTO api_tokens (user_id, name, token_hash, created_at) "
                        "VALUES (1, :name, :hash, CURRENT_TIMESTAMP)"
                    ),
                    {"name": name, "hash": f"h{i}"},
                )
        command.upgrade(alembic_config(engine), "head")
        with engine.connect() as conn:
            names = sorted(conn.execute(text("SELECT name FROM api_tokens")).scalars())
        assert names == ["ci", "cli", "cli-2", "cli-3"]
    finally:
        engine.dispose()


# ---------------------------------------------------------------------------
# users and sessions


def test_a_disabled_user_gets_401_with_token_and_cookie(
    app: App, client: Callable[..., TestClient]
) -> None:
    token = auth.mint_token(app, "ann", "ci")
    browser = client()
    assert sign_in(browser, "ann").status_code == 303
    assert browser.get("/api/v1/me").status_code == 200
    assert auth.set_active(app, "ann", False) == 1  # one token revoked
    assert browser.get("/api/v1/me").status_code == 401
    assert client().get("/api/v1/me", headers=bearer(token)).status_code == 401
    r = sign_in(client(), "ann")
    assert r.status_code == 401 and "wrong username or password" in r.text
    # enabled again: a fresh sign-in works, the old token stays revoked
    auth.set_active(app, "ann", True)
    assert sign_in(client(), "ann").status_code == 303
    assert client().get("/api/v1/me", headers=bearer(token)).status_code == 401
    with app.sessions() as s:
        kinds = s.scalars(select(m.Event.kind).where(m.Event.kind.like("user.%"))).all()
    assert kinds == ["user.disabled", "user.enabled"]


def test_an_old_cookie_after_logout_gets_401(app: App, client: Callable[..., TestClient]) -> None:
    browser = client()
    assert sign_in(browser, "ann").status_code == 303
    captured = dict(browser.cookies)  # an attacker's copy of the session cookie
    assert browser.get("/api/v1/me").status_code == 200
    r = browser.post("/logout", headers={"X-CSRF-Token": wf.csrf_of(browser)})
    assert r.status_code in (200, 303)
    thief = client(cookies=captured)
    assert thief.get("/api/v1/me").status_code == 401
    assert thief.get("/queue", follow_redirects=False).status_code == 303  # to /login
    # signing in again gives a working session; the stolen one stays dead
    assert sign_in(browser, "ann").status_code == 303
    assert browser.get("/api/v1/me").status_code == 200
    assert thief.get("/api/v1/me").status_code == 401


def test_a_password_change_ends_sessions_and_revokes_tokens(
    app: App, client: Callable[..., TestClient]
) -> None:
    token = auth.mint_token(app, "bob", "ci")
    browser = client()
    sign_in(browser, "bob")
    assert browser.get("/api/v1/me").status_code == 200
    auth.set_password(app, "bob", "a brand new password")
    assert browser.get("/api/v1/me").status_code == 401
    assert client().get("/api/v1/me", headers=bearer(token)).status_code == 401
    assert auth.list_tokens(app, "bob")[0]["revoked_reason"] == "password changed"
    assert sign_in(client(), "bob", "a brand new password").status_code == 303


def test_a_cookie_without_a_session_version_is_refused(
    app: App, client: Callable[..., TestClient]
) -> None:
    """Cookies from before session versions (uid only) are no longer accepted."""
    import base64

    from itsdangerous import TimestampSigner

    from listener.web.security import SESSION_COOKIE, session_secret

    with app.sessions() as s:
        uid = s.scalar(select(m.User.id).where(m.User.username == "ann"))
    payload = base64.b64encode(json.dumps({"uid": uid}).encode())
    forged = TimestampSigner(session_secret(app.settings)).sign(payload).decode()
    c = client(cookies={SESSION_COOKIE: forged})
    assert c.get("/api/v1/me").status_code == 401


# ---------------------------------------------------------------------------
# throttling


def test_the_11th_wrong_password_in_a_minute_is_throttled(
    app: App, client: Callable[..., TestClient]
) -> None:
    c = client()
    for _ in range(10):
        r = sign_in(c, "ann", "wrong password")
        assert r.status_code == 401 and "wrong username or password" in r.text
    r = sign_in(c, "ann", "wrong password")
    assert r.status_code == 429
    assert re.search(r"too many failed sign-ins for this account: try again in \d+ s", r.text)
    # the right password is refused too while the account is throttled
    assert sign_in(c, "ann").status_code == 429
    # other accounts are not affected
    assert sign_in(client(), "bob").status_code == 303
    # a minute later it works again
    with app.sessions.begin() as s:
        s.execute(update(m.LoginFailure).values(at=utcnow() - timedelta(minutes=2)))
    assert sign_in(c, "ann").status_code == 303


def test_throttling_per_address(make_app: Callable[..., App]) -> None:
    app = make_app({**wf.WEB_OVERRIDES, "web": {"login_attempts_per_address": 3}})
    wf.add_users(app, ("ann", "agent"))
    for name in ("x1", "x2", "x3"):
        with pytest.raises(auth.InvalidCredentials, match="wrong username"):
            auth.authenticate(app, name, "nope", address="10.0.0.9")
    with pytest.raises(auth.LoginThrottled, match="from this address") as err:
        auth.authenticate(app, "ann", wf.PASSWORD, address="10.0.0.9")
    assert 1 <= err.value.retry_after <= 60
    assert auth.authenticate(app, "ann", wf.PASSWORD, address="10.0.0.10").username == "ann"


def test_a_successful_sign_in_forgets_the_accounts_failures(make_app: Callable[..., App]) -> None:
    app = make_app({**wf.WEB_OVERRIDES, "web": {"login_attempts": 3}})
    wf.add_users(app, ("ann", "agent"))
    for _ in range(2):
        with pytest.raises(auth.InvalidCredentials):
            auth.authenticate(app, "ann", "typo", address="a")
    auth.authenticate(app, "ann", wf.PASSWORD, address="a")
    for _ in range(2):  # a fresh allowance
        with pytest.raises(auth.InvalidCredentials):
            auth.authenticate(app, "ann", "typo", address="a")
    auth.authenticate(app, "ann", wf.PASSWORD, address="a")


# ---------------------------------------------------------------------------
# cookies and health endpoints


def test_secure_cookies(make_app: Callable[..., App]) -> None:
    for secure in (False, True):
        app = make_app({**wf.WEB_OVERRIDES, "web": {"secure_cookies": secure}})
        if not secure:
            wf.add_users(app, ("ann", "agent"))
        base = "https://testserver" if secure else "http://testserver"
        with TestClient(create_app(app), base_url=base) as c:
            r = sign_in(c, "ann")
            assert r.status_code == 303
            cookie = r.headers["set-cookie"].lower()
            assert ("secure" in cookie) is secure
            assert "httponly" in cookie and "samesite=lax" in cookie


def test_health_endpoints_public_by_default_and_restricted_on_request(
    make_app: Callable[..., App],
) -> None:
    public = make_app(wf.WEB_OVERRIDES)
    wf.add_users(public, ("ann", "agent"))
    with TestClient(create_app(public)) as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/metrics").status_code == 200
    private = make_app({**wf.WEB_OVERRIDES, "web": {"public_health": False}})
    token = auth.mint_token(private, "ann", "prometheus")
    with TestClient(create_app(private)) as c:
        for path in ("/healthz", "/metrics"):
            r = c.get(path)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
            assert c.get(path, headers=bearer(token)).status_code == 200
        sign_in(c, "ann")
        assert c.get("/healthz").status_code == 200


# ---------------------------------------------------------------------------
# the commands


def test_users_commands_take_access_back(db_url: str, tmp_path: Path) -> None:
    from conftest import base_config

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(base_config(db_url)))
    runner = CliRunner()
    args = ["--config", str(config)]

    def run(*more: str, input: str | None = None) -> Any:
        return runner.invoke(cli, [*args, *more], input=input, catch_exceptions=False)

    def refused(*more: str) -> str:
        """The one-line error `listener` prints (exit status 2) for a ListenerError."""
        r = runner.invoke(cli, [*args, *more])
        assert isinstance(r.exception, ListenerError), r.output
        return str(r.exception)

    assert run("users", "add", "carla", "--password-stdin", input="long enough pw\n").exit_code == 0
    r = run("users", "token", "carla", "--name", "ci", "--expires", "90d")
    token = r.output.strip()
    assert token.startswith("lst_")
    assert "already has a token named 'ci'" in refused("users", "token", "carla", "--name", "ci")
    r = runner.invoke(cli, [*args, "users", "token", "carla", "--expires", "soon"])
    assert r.exit_code == 2 and "--expires" in r.output
    run("users", "token", "carla")
    r = run("users", "tokens", "carla")
    assert re.search(r"^ci\s+active .* expires ", r.output, re.M)
    assert re.search(r"^cli\s+active ", r.output, re.M) and token not in r.output
    r = run("users", "tokens", "carla", "--json")
    rows = [json.loads(x) for x in r.output.splitlines()]
    assert {t["name"] for t in rows} == {"ci", "cli"} and all("hash" not in str(t) for t in rows)
    r = run("users", "revoke-token", "carla", "ci")
    assert "revoked carla's token 'ci'" in r.output
    assert "no live token named 'ci'" in refused("users", "revoke-token", "carla", "ci")
    r = run("users", "disable", "carla")
    assert "disabled carla" in r.output and "1 token(s) revoked" in r.output
    r = run("users", "list")
    assert "(inactive)" in r.output
    assert "enabled carla" in run("users", "enable", "carla").output
    r = run("users", "tokens", "carla")
    assert "revoked" in r.output and "active" not in r.output.replace("inactive", "")
    assert "no user 'nobody'" in refused("users", "disable", "nobody")
