"""People and access: argon2 passwords, API tokens, the ``listener users`` commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import select

from listener import auth
from listener import models as m
from listener.app import App
from listener.cli import cli
from listener.errors import Conflict, ListenerError, NotFound


def test_password_hashing_is_argon2_and_verifies() -> None:
    h = auth.hash_password("s3cret-passphrase")
    assert h.startswith("$argon2id$") and "s3cret" not in h
    assert auth.verify_password(h, "s3cret-passphrase")
    assert not auth.verify_password(h, "wrong")
    assert not auth.verify_password("not-a-hash", "whatever")


def test_users_and_authentication(make_app: Callable[..., App]) -> None:
    app = make_app()
    user = auth.add_user(app, "carla", "long enough pw", role="lead", display_name="Carla")
    assert user["role"] == "lead"
    with pytest.raises(Conflict):
        auth.add_user(app, "carla", "another password")
    with pytest.raises(ListenerError, match="at least 8"):
        auth.add_user(app, "dan", "short")
    with pytest.raises(ListenerError, match="invalid username"):
        auth.add_user(app, "<script>", "long enough pw")
    with pytest.raises(ListenerError, match="unknown role"):
        auth.add_user(app, "eve", "long enough pw", role="god")
    p = auth.authenticate(app, "carla", "long enough pw")
    assert (p.username, p.role, p.is_lead, p.can_write) == ("carla", "lead", True, True)
    for name, pw in (("carla", "wrong password"), ("nobody", "long enough pw")):
        with pytest.raises(auth.InvalidCredentials, match="wrong username or password"):
            auth.authenticate(app, name, pw)
    assert auth.list_users(app)[0]["last_login_at"] is not None
    auth.set_password(app, "carla", "a new password")
    assert auth.authenticate(app, "carla", "a new password").username == "carla"
    with pytest.raises(NotFound):
        auth.set_password(app, "nobody", "a new password")


def test_tokens(make_app: Callable[..., App]) -> None:
    app = make_app()
    auth.add_user(app, "mia", "long enough pw", role="marketing")
    token = auth.mint_token(app, "mia", "dashboards")
    assert token.startswith("lst_") and len(token) > 40
    p = auth.principal_for_token(app, token)
    assert p.username == "mia" and not p.can_write
    with pytest.raises(auth.InvalidCredentials):
        auth.principal_for_token(app, token + "x")
    with pytest.raises(auth.InvalidCredentials):
        auth.principal_for_token(app, "not-a-token")
    with app.sessions.begin() as s:
        row = s.scalars(select(m.ApiToken)).one()
        assert row.token_hash == auth.hash_token(token) and row.last_used_at is not None
        row.revoked_at = row.created_at
    with pytest.raises(auth.InvalidCredentials):
        auth.principal_for_token(app, token)
    with pytest.raises(NotFound):
        auth.mint_token(app, "nobody")


def test_users_cli(db_url: str, tmp_path: Path) -> None:
    from conftest import base_config

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(base_config(db_url)))
    runner = CliRunner()
    args = ["--config", str(config)]
    r = runner.invoke(
        cli,
        [*args, "users", "add", "nora", "--role", "agent", "--password-stdin"],
        input="a fine password\n",
    )
    assert r.exit_code == 0, r.output
    assert "added nora (agent)" in r.output
    r = runner.invoke(
        cli,
        [*args, "users", "add", "lee", "--role", "lead", "--password-stdin"],
        input="a fine password\n",
    )
    r = runner.invoke(cli, [*args, "users", "list"])
    assert r.exit_code == 0 and "nora" in r.output and "lead" in r.output
    r = runner.invoke(cli, [*args, "users", "token", "nora", "--name", "script"])
    assert r.exit_code == 0 and r.output.strip().startswith("lst_")
    token = r.output.strip()
    from listener.app import App
    from listener.config import load_settings

    app = App.from_settings(load_settings(config, env={}))
    try:
        assert auth.principal_for_token(app, token).username == "nora"
        assert auth.authenticate(app, "nora", "a fine password").role == "agent"
    finally:
        app.close()
    r = runner.invoke(cli, [*args, "users", "add", "x", "--role", "boss"])
    assert r.exit_code != 0


def test_cli_lists_serve_and_users() -> None:
    r = CliRunner().invoke(cli, ["--help"])
    assert "serve" in r.output and "users" in r.output
    r = CliRunner().invoke(cli, ["serve", "--help"])
    assert r.exit_code == 0 and "--port" in r.output


def test_listener_serve_starts_and_answers(db_url: str, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys
    import time

    import httpx
    from conftest import base_config
    from webfixtures import free_port

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(base_config(db_url)))
    port = free_port()
    exe = Path(sys.executable).parent / "listener"
    env = {**os.environ, "LISTENER_SECRET_KEY": "x" * 40}
    proc = subprocess.Popen(
        [str(exe), "--config", str(config), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    out = proc.stdout.read().decode() if proc.poll() is not None else ""
                    pytest.fail(f"listener serve did not answer: {out}")
                time.sleep(0.2)
        assert r.status_code == 200 and r.json()["ok"] is True
        page = httpx.get(f"http://127.0.0.1:{port}/login")
        assert page.status_code == 200 and "Sign in" in page.text
    finally:
        proc.terminate()
        proc.wait(timeout=10)
