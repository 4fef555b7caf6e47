"""Secrets never printed: `listener config`, logs at -vv (third-party debug loggers
included) and error messages mask every password, token and key."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from conftest import ROOT, base_config

from listener.cli import cli
from listener.redact import mask_text, mask_url, register_secret, url_password

PASSWORDS = {
    "database": "db-Pa55word-1",
    "broker": "broker-Pa55word-2",
    "backend": "redis-Pa55word-3",
    "feed": "feed-Pa55word-4",
    "x_api": "x-Pa55word-5",
}
ENV_SECRETS = {"SMTP_PASSWORD": "smtp-Pa55word-6", "LISTENER_SECRET_KEY": "session-key-Pa55-7"}


def secret_config(db_url: str) -> dict[str, Any]:
    data = base_config(db_url)
    data["workers"] = {
        "broker_url": f"amqp://listener:{PASSWORDS['broker']}@rabbit.example:5672//",
        "result_backend": f"redis://:{PASSWORDS['backend']}@redis.example:6379/1",
    }
    data["sources"] = [
        {
            "name": "private-blog",
            "type": "feed",
            "url": f"https://reader:{PASSWORDS['feed']}@blog.example/feed.xml",
        }
    ]
    data["x"] = {"api_base_url": f"https://proxy:{PASSWORDS['x_api']}@x-proxy.example"}
    data["email"] = {"host": "smtp.example", "username": "care", "password": "${SMTP_PASSWORD}"}
    data["web"] = {"secret_key": "${LISTENER_SECRET_KEY}"}
    return data


def test_listener_config_prints_no_password_from_any_url(tmp_path: Path) -> None:
    pg = f"postgresql+psycopg://app:{PASSWORDS['database']}@db.example:5432/listener"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(secret_config(pg)))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}, **ENV_SECRETS}
    for extra in ([], ["--json"]):
        proc = subprocess.run(
            [sys.executable, "-m", "listener", "--config", str(config), "config", *extra],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        out = proc.stdout + proc.stderr
        for secret in [*PASSWORDS.values(), *ENV_SECRETS.values()]:
            assert secret not in out, f"{secret} printed by `listener config {' '.join(extra)}`"
        assert "postgresql+psycopg://app:***@db.example:5432/listener" in out
        assert "amqp://listener:***@rabbit.example:5672//" in out
        assert "https://reader:***@blog.example/feed.xml" in out
        assert "**********" in out  # SecretStr fields
    data = json.loads(proc.stdout)
    assert data["workers"]["result_backend"] == "redis://:***@redis.example:6379/1"


def test_listener_sources_and_init_mask_source_urls(db_url: str, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(secret_config(db_url)))
    runner = CliRunner(env=ENV_SECRETS)
    args = ["--config", str(config)]
    for command in (["init"], ["sources", "--json"]):
        r = runner.invoke(cli, [*args, *command], catch_exceptions=False)
        assert r.exit_code == 0, r.output
        assert PASSWORDS["feed"] not in r.output
        assert "reader:***@blog.example" in r.output


def test_an_unreachable_database_error_shows_no_password(tmp_path: Path) -> None:
    with_password = f"postgresql+psycopg://app:{PASSWORDS['database']}@127.0.0.1:9/listener"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(base_config(with_password)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}
    proc = subprocess.run(
        [sys.executable, "-m", "listener", "-vv", "--config", str(config), "poll"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert PASSWORDS["database"] not in out
    assert "error:" in out and "Traceback" not in out


# ---------------------------------------------------------------------------
# -vv


@pytest.fixture
def x_server(shared_data: Path) -> Iterator[Any]:
    from xserver import XServer

    with XServer(shared_data / "x-api") as srv:
        yield srv


def test_vv_logs_contain_no_token(x_server: Any, db_url: str, tmp_path: Path) -> None:
    """The probe: `listener -vv send` logged the X consumer key and access token through
    oauthlib's debug lines.  Now it logs at debug level and prints none of them."""
    from opsfixtures import add_outbox_messages
    from sqlalchemy import update
    from xserver import TEST_ENV, settings_dict, snowflake

    from listener import models as m
    from listener.app import App
    from listener.config import settings_from_dict

    tid = snowflake(time.time() - 60)
    x_server.add_tweets(
        "/2/users/783214/mentions",
        [{"id": tid, "author_id": "9000000001", "text": "@Twitter my order never arrived"}],
        [{"id": "9000000001", "username": "sam_flyer", "name": "Sam Flyer"}],
    )
    data = settings_dict(x_server.base_url, timeout="10s")
    data.update(
        {
            "database": {"url": db_url},
            "classifier": {"kind": "lexicon"},
            "recovery": {"templates_dir": str(ROOT / "templates")},
        }
    )
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    app = App.from_settings(settings_from_dict(data, base_dir=tmp_path, env=TEST_ENV))
    try:
        (mid,) = add_outbox_messages(app, 1, channel="x_reply")  # approved, waiting to send
        with app.sessions.begin() as s:
            s.execute(
                update(m.OutboxMessage)
                .where(m.OutboxMessage.id == mid)
                .values(
                    recipient="sam_flyer",
                    in_reply_to=tid,
                    text="So sorry, Sam. DM us your order number and we'll fix it today.",
                )
            )
    finally:
        app.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}
    env.update(TEST_ENV)
    proc = subprocess.run(
        [sys.executable, "-m", "listener", "-vv", "--config", str(config), "send", "--once"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert x_server.requests_to("/2/tweets", "POST"), "the reply was sent through X"
    assert "outbox.sent" in out  # the logs were written (at -vv: debug and up)
    leaked = [name for name, value in TEST_ENV.items() if value in out]
    assert not leaked, f"{leaked} printed at -vv"
    for name in ("oauth_consumer_key", "oauth_token", "oauth_signature"):
        assert f"{name}=" not in out.replace(f"{name}=***", "")


def test_third_party_debug_lines_are_masked_even_when_shown(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Defence in depth: a library logging credentials at DEBUG through the standard
    library (shown at -vv) has them masked by the root handler's filter."""
    from listener.logs import configure

    register_secret("consumer-KEY-value-1")
    configure("DEBUG")
    try:
        lib = logging.getLogger("some.http.library")
        lib.debug(
            "Updated headers: {'Authorization': 'OAuth oauth_nonce=\"1\", "
            'oauth_consumer_key="consumer-KEY-value-1", oauth_token="1234-abcdefgh"\'}'
        )
        lib.debug("GET %s", "https://user:hunter2-pw@example.com/feed?api_key=k-123456&x=1")
        lib.debug("Authorization: Bearer %s", "AAAAAAAAAAAAAAAAAAAAAN-bearer")
        try:
            raise RuntimeError("cannot connect to redis://:redis-pw-99@cache:6379/0")
        except RuntimeError:
            lib.exception("failed")
        import structlog

        structlog.get_logger("t").debug("event", url="amqp://u:amqp-pw-77@h//", token="x")
    finally:
        configure("WARNING")
    err = capfd.readouterr().err
    for secret in (
        "consumer-KEY-value-1",
        "1234-abcdefgh",
        "hunter2-pw",
        "k-123456",
        "AAAAAAAAAAAAAAAAAAAAAN-bearer",
        "redis-pw-99",
        "amqp-pw-77",
    ):
        assert secret not in err, f"{secret} printed"
    assert "Traceback" in err and "RuntimeError" in err  # the traceback itself is kept


def test_oauth_libraries_stay_quiet_at_vv() -> None:
    from listener.logs import QUIET_LOGGERS, configure

    configure("DEBUG")
    try:
        for name in ("oauthlib", "requests_oauthlib", "urllib3", "httpx"):
            assert name in QUIET_LOGGERS
            assert not logging.getLogger(f"{name}.sub").isEnabledFor(logging.DEBUG)
    finally:
        configure("WARNING")


# ---------------------------------------------------------------------------
# the masking functions


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("postgresql+psycopg://app:p@ss@db:5432/x", "postgresql+psycopg://app:***@db:5432/x"),
        ("amqp://guest:guest@127.0.0.1:5672//", "amqp://guest:***@127.0.0.1:5672//"),
        ("redis://:pw123@r:6379/0", "redis://:***@r:6379/0"),
        ("sqlite:///listener.db", "sqlite:///listener.db"),
        ("https://example.com/feed.xml", "https://example.com/feed.xml"),
        ("see https://u:pw@h/a and ftp://x:y@z/", "see https://u:***@h/a and ftp://x:***@z/"),
        ("https://x/feed?token=abc123&page=2", "https://x/feed?token=***&page=2"),
        ("password=hunter22; next", "password=***; next"),
        ("csrf_token=keep-me pagination_token=keep", "csrf_token=keep-me pagination_token=keep"),
        ("Authorization: Bearer abcdefghijklmnop", "Authorization: Bearer ***"),
        ("Authorization: Basic dXNlcjpwYXNz", "Authorization: Basic ***"),
        ("Basic information about shoes", "Basic information about shoes"),
        (
            "oauth_consumer_key%3Dxvz1evFS%26oauth_nonce%3D1",
            "oauth_consumer_key%3D***%26oauth_nonce%3D1",
        ),
        ("token lst_abcdefghijklmnopqrstuvwxyz0123", "token lst_***"),
    ],
)
def test_mask_text(text: str, masked: str) -> None:
    assert mask_text(text) == masked


def test_registered_secrets_are_masked_in_any_form() -> None:
    register_secret("s3cr3t/value+1")
    assert mask_text("plain s3cr3t/value+1 here") == "plain *** here"
    assert mask_text("quoted s3cr3t%2Fvalue%2B1 here") == "quoted *** here"
    assert mask_text("twice s3cr3t%252Fvalue%252B1") == "twice ***"
    register_secret("abc")  # too short to mask safely: ignored
    assert mask_text("abc") == "abc"


def test_url_helpers() -> None:
    assert url_password("amqp://u:pw@h//") == "pw"
    assert url_password("https://h/x") is None
    assert mask_url("https://u:pw@h/x") == "https://u:***@h/x"


def test_settings_register_their_secrets(tmp_path: Path) -> None:
    from listener.config import settings_from_dict

    data = secret_config("sqlite:///x.db")
    settings_from_dict(data, env=ENV_SECRETS)
    for secret in [PASSWORDS["broker"], PASSWORDS["feed"], *ENV_SECRETS.values()]:
        assert mask_text(f"x {secret} y") == "x *** y"
