"""Alerts end to end: replayed real tweets through the poll use-case, a local webhook
receiver, sources answering 401 / 429 / nothing, failing sends, `listener alerts` and
`listener health` exit codes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import replay
from click.testing import CliRunner
from feedserver import FeedServer, Reply
from sqlalchemy import select
from webhookserver import WebhookReceiver

from listener import models as m
from listener.alerts.evaluate import evaluate
from listener.app import App
from listener.cli import cli
from listener.pipeline import poll_sources

ALERT_KEYS = {"id", "kind", "status", "started_at", "explanation", "evidence"}


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


def alerts_of(app: App) -> list[m.Alert]:
    with app.sessions() as s:
        return list(s.scalars(select(m.Alert).order_by(m.Alert.id)))


def replay_app(
    make_app: Callable[..., App], tmp_path: Path, posts: list[dict[str, Any]], **alerts: Any
) -> App:
    feed = tmp_path / "replay.jsonl"
    replay.write_jsonl(feed, posts)
    return make_app(
        {
            "sources": [
                {"name": "x-replay", "type": "jsonl", "path": str(feed), "match_all": True}
            ],
            "alerts": alerts,
        }
    )


def test_replayed_burst_raises_one_spike_delivered_once_and_shown(
    make_app: Callable[..., App], tmp_path: Path, shared_data: Path, hook: WebhookReceiver
) -> None:
    tweets = replay.airline_tweets(shared_data)
    now = datetime.now(UTC)
    posts = replay.week(tweets, now, days=7) + replay.burst(tweets, now, 60)
    app = replay_app(make_app, tmp_path, posts, webhook_url=hook.url)

    poll_sources(app)  # evaluates after the poll, on the posts' own timestamps

    (alert,) = alerts_of(app)
    assert alert.kind == "spike" and alert.status == "open" and alert.scope == "brand"
    ev = alert.evidence
    assert ev["count"] >= 60 and ev["ratio"] > 3
    assert ev["hour"] == now.replace(minute=0, second=0, microsecond=0).isoformat()
    assert ev["top_posts"] and ev["first_post"] and ev["terms"]
    assert "posts in the hour from" in alert.explanation
    assert "usual" in alert.explanation and "First post of the burst" in alert.explanation
    assert "Most reached" in alert.explanation
    (delivery,) = hook.received
    body = delivery["json"]
    assert body["alert"]["id"] == alert.id and body["alert"]["kind"] == "spike"
    assert "Spike" in body["text"] and "<" not in body["text"].replace("&lt;", "")
    assert delivery["headers"]["idempotency-key"] == f"listener-alert-{alert.id}"

    # the next polls see the same burst: the same alert, no second delivery
    poll_sources(app)
    evaluate(app)
    assert [a.id for a in alerts_of(app)] == [alert.id]
    assert len(hook.received) == 1

    # shown in the web app: a banner on every page and the alerts page
    import webfixtures as wf
    from fastapi.testclient import TestClient

    from listener.web import create_app

    wf.add_users(app, ("lee", "lead"))
    app.settings.web.secret_key = (
        type(app.settings.web).model_validate(wf.WEB_OVERRIDES["web"]).secret_key
    )
    client = TestClient(create_app(app))
    wf.login(client, "lee")
    queue = client.get("/queue").text
    assert 'id="alert-banner"' in queue and "Spike" in queue
    page = client.get("/alerts").text
    assert alert.title in page.replace("&#215;", "×").replace("&#39;", "'")
    assert "First post of the burst" in page


def test_replayed_quiet_week_raises_nothing(
    make_app: Callable[..., App], tmp_path: Path, shared_data: Path, hook: WebhookReceiver
) -> None:
    tweets = replay.airline_tweets(shared_data)
    now = datetime.now(UTC)
    app = replay_app(
        make_app, tmp_path, replay.week(tweets, now, days=7, seed=4), webhook_url=hook.url
    )
    poll_sources(app)
    assert alerts_of(app) == []
    assert hook.received == []


def test_backfill_of_an_old_burst_raises_nothing(
    make_app: Callable[..., App], tmp_path: Path, shared_data: Path
) -> None:
    tweets = replay.airline_tweets(shared_data)
    then = datetime.now(UTC) - timedelta(days=3)  # the burst ended three days ago
    app = replay_app(
        make_app, tmp_path, replay.week(tweets, then, days=7) + replay.burst(tweets, then, 80)
    )
    poll_sources(app)
    assert alerts_of(app) == []


def test_alerts_cli_json_contract_ack_and_resolve(
    make_app: Callable[..., App], tmp_path: Path, shared_data: Path
) -> None:
    tweets = replay.airline_tweets(shared_data)
    now = datetime.now(UTC)
    app = replay_app(make_app, tmp_path, replay.week(tweets, now) + replay.burst(tweets, now))
    poll_sources(app)
    config = _write_config(app, tmp_path)
    runner = CliRunner()
    r = runner.invoke(cli, ["--config", str(config), "alerts", "--json"])
    assert r.exit_code == 0, r.output
    (row,) = [json.loads(line) for line in r.output.splitlines()]
    assert set(row) >= ALERT_KEYS and row["kind"] == "spike" and row["status"] == "open"
    assert isinstance(row["evidence"], dict) and isinstance(row["explanation"], str)
    r = runner.invoke(
        cli, ["--config", str(config), "alerts", "ack", str(row["id"]), "--by", "lee"]
    )
    assert r.exit_code == 0 and "acknowledged" in r.output
    r = runner.invoke(cli, ["--config", str(config), "alerts"])
    assert "acknowledged by lee" in r.output
    r = runner.invoke(
        cli, ["--config", str(config), "alerts", "resolve", str(row["id"]), "--by", "lee"]
    )
    assert r.exit_code == 0 and "resolved" in r.output
    # the same burst, still in the lookback, does not come back: it was told already
    evaluate(app)
    assert [a.status for a in alerts_of(app)] == ["resolved"]
    r = runner.invoke(cli, ["--config", str(config), "alerts", "ack", "999"])
    assert r.exit_code == 2


def _write_config(app: App, tmp_path: Path) -> Path:
    import yaml

    data = app.settings.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["database"]["url"] = app.settings.database.url
    hook = app.settings.alerts.webhook_url
    if hook is not None:  # dumped as ********** like every secret
        data["alerts"]["webhook_url"] = hook.get_secret_value()
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------
# sources and health


def regular_posts(until: datetime, hours: int, every: int = 1) -> list[dict[str, Any]]:
    return [
        {
            "id": f"r{i}",
            "text": f"Zephyr Shoes update number {i}",
            "author": "zephyrfan",
            "created_at": (until - timedelta(hours=i * every)).isoformat(),
        }
        for i in range(hours)
    ]


def test_refused_silent_and_rate_limited_sources_each_raise_one_alert(
    make_app: Callable[..., App], tmp_path: Path, hook: WebhookReceiver
) -> None:
    now = datetime.now(UTC)
    quiet = tmp_path / "quiet.jsonl"
    replay.write_jsonl(quiet, regular_posts(now - timedelta(hours=12), 24 * 5))
    with FeedServer() as server:
        reset = (now + timedelta(minutes=30)).strftime("%a, %d %b %Y %H:%M:%S GMT")
        refused = server.route("/private.xml", Reply(401, b"no", {"Content-Type": "text/plain"}))
        limited = server.route(
            "/busy.xml",
            Reply(429, b"slow down", {"Retry-After": reset, "Content-Type": "text/plain"}),
        )
        app = make_app(
            {
                "sources": [
                    {"name": "private-blog", "type": "feed", "url": refused},
                    {"name": "busy-blog", "type": "feed", "url": limited},
                    {"name": "quiet-social", "type": "jsonl", "path": str(quiet)},
                ],
                "alerts": {"webhook_url": hook.url},
            }
        )
        from listener.pipeline import sync_sources

        sync_sources(app)
        with app.sessions.begin() as s:  # we have listened to the quiet one for a week
            quiet_row = s.scalars(select(m.Source).where(m.Source.name == "quiet-social")).one()
            quiet_row.created_at = now - timedelta(days=7)
        poll_sources(app)
        poll_sources(app, ["private-blog"])  # failing again: the same alert, updated
    alerts = {a.kind: a for a in alerts_of(app)}
    assert sorted(alerts) == ["source_auth", "source_quota", "source_silent"]
    assert len(alerts_of(app)) == 3
    assert "401" in alerts["source_auth"].explanation
    assert alerts["source_quota"].evidence["retry_at"] is not None
    assert alerts["source_quota"].evidence["deferrals"] == 1
    assert "no posts for" in alerts["source_silent"].title
    assert sorted(d["json"]["alert"]["kind"] for d in hook.received) == sorted(alerts)

    config = _write_config(app, tmp_path)
    r = CliRunner().invoke(cli, ["--config", str(config), "health", "--json"])
    assert r.exit_code == 3, r.output
    status = json.loads(r.output)
    failing = {a["kind"]: a["failing"] for a in status["alerts"]}
    assert failing == {"source_auth": True, "source_quota": False, "source_silent": True}
    assert status["ok"] is True  # /healthz stays 200: the web app itself is fine

    # the operator fixes the token and the quiet source speaks again: those two resolve
    with app.sessions.begin() as s:
        s.execute(select(m.Source))  # (nothing to change in the rows themselves)
    with quiet.open("a", encoding="utf-8") as fh:  # new posts arrive
        for post in regular_posts(now, 3):
            post["id"] = "new-" + post["id"]
            fh.write(json.dumps(post) + "\n")
    with FeedServer() as server:
        ok = server.route(
            "/private.xml",
            Reply(200, b"<rss version='2.0'><channel><title>t</title></channel></rss>"),
        )
        app.settings.sources[0].url = ok
        from listener.pipeline import sync_sources

        sync_sources(app)
        poll_sources(app, ["private-blog", "quiet-social"])
    statuses = {a.kind: a.status for a in alerts_of(app)}
    assert statuses == {
        "source_auth": "resolved",
        "source_quota": "open",
        "source_silent": "resolved",
    }
    # only the deferral inside its quota window is left: health passes
    r = CliRunner().invoke(cli, ["--config", str(_write_config(app, tmp_path)), "health"])
    assert r.exit_code == 0, r.output
    assert "waiting" in r.output


def test_rate_limited_again_after_the_reset_fails_health(make_app: Callable[..., App]) -> None:
    now = datetime.now(UTC)
    with FeedServer() as server:
        first = (now + timedelta(minutes=5)).strftime("%a, %d %b %Y %H:%M:%S GMT")
        url = server.route("/busy.xml", Reply(429, b"", {"Retry-After": first}))
        app = make_app({"sources": [{"name": "busy", "type": "feed", "url": url}]})
        poll_sources(app)
        from listener.health import health_status

        assert health_status(app)["alerts_ok"] is True
        second = (now + timedelta(minutes=40)).strftime("%a, %d %b %Y %H:%M:%S GMT")
        server.route("/busy.xml", Reply(429, b"", {"Retry-After": second}))
        poll_sources(app, ["busy"])
    (alert,) = alerts_of(app)
    assert alert.kind == "source_quota" and alert.evidence["deferrals"] == 2
    assert health_status(app)["alerts_ok"] is False


def test_repeated_send_failures_raise_send_failing_until_a_send_works(
    make_app: Callable[..., App],
) -> None:
    import webfixtures as wf

    from listener import outbox

    app = make_app(wf.WEB_OVERRIDES)
    case_id = wf.seed_case(app, channel="email")
    with app.sessions.begin() as s:
        rows = [
            m.OutboxMessage(
                idempotency_key=f"k{i}",
                case_id=case_id,
                channel="email",
                recipient="maria@example.com",
                text="sorry",
                status="sending",
                attempts=1,
                created_by="lee",
            )
            for i in range(4)
        ]
        s.add_all(rows)
    ids = [r.id for r in rows]
    for i in ids[:3]:
        outbox.record_failure(app, i, "the mail server answered 451", permanent=False, worker="w")
    report = evaluate(app)
    (alert,) = alerts_of(app)
    assert alert.kind == "send_failing" and alert.status == "open"
    assert alert.evidence["failures"] == 3 and "451" in alert.explanation
    assert report.opened == [alert.id]
    from listener.health import health_status

    assert health_status(app)["alerts_ok"] is False
    outbox.record_sent(app, ids[3], "<msg@x>", worker="w")
    evaluate(app)
    assert [a.status for a in alerts_of(app)] == ["resolved"]
    assert health_status(app)["alerts_ok"] is True


def test_notifications_retry_dedupe_cooldown_and_email(
    make_app: Callable[..., App], hook: WebhookReceiver
) -> None:
    from smtpserver import SMTPTestServer

    from listener.alerts import store
    from listener.alerts.conditions import Condition

    with SMTPTestServer() as smtp:
        app = make_app(
            {
                "alerts": {
                    "webhook_url": hook.url,
                    "email_to": ["oncall@zephyrshoes.example"],
                    "cooldown": "1h",
                },
                "email": {"host": "127.0.0.1", "port": smtp.port, "security": "none"},
            }
        )
        now = datetime.now(UTC)
        hook.fail_next(1)
        c = Condition(
            kind="source_silent",
            key="source_silent:blog",
            scope="source:blog",
            title="blog: no posts for 9 h <!channel>",
            explanation="Source blog is quiet & <https://evil.example|click>.",
            started_at=now,
        )
        with app.sessions.begin() as s:
            change = store.raise_condition(s, c, now, timedelta(hours=1))
            assert change is not None and change.action == "opened"
            from listener.alerts import notify

            notify.queue_for(s, app.settings, change.alert_id, now)
        first = notify.deliver_due(app, now)
        assert first == {"sent": 1, "retry": 1, "failed": 0}  # the mail went, the hook failed
        assert notify.deliver_due(app, now) == {"sent": 0, "retry": 0, "failed": 0}  # backing off
        assert notify.deliver_due(app, now + timedelta(minutes=5))["sent"] == 1
        (delivery,) = hook.received
        text = delivery["json"]["text"]
        assert "<!channel>" not in text and "&lt;!channel&gt;" in text
        assert "<https://evil" not in text
        (mail,) = smtp.wait_for_messages(1)
        assert mail.rcpt_tos == ["oncall@zephyrshoes.example"]
        assert "blog: no posts for 9 h" in str(mail.message["Subject"])
        # resolved, then back within the cool-down: re-opened, nobody notified again
        with app.sessions.begin() as s:
            alert = s.get_one(m.Alert, change.alert_id)
            store.resolve_alert(s, alert, now)
        with app.sessions.begin() as s:
            again = store.raise_condition(s, c, now + timedelta(minutes=20), timedelta(hours=1))
        assert again is not None and again.action == "reopened"
        assert notify.deliver_due(app, now + timedelta(hours=2)) == {
            "sent": 0,
            "retry": 0,
            "failed": 0,
        }
        # after the cool-down it is a new alert
        with app.sessions.begin() as s:
            store.resolve_alert(s, s.get_one(m.Alert, change.alert_id), now + timedelta(hours=1))
        with app.sessions.begin() as s:
            later = store.raise_condition(s, c, now + timedelta(hours=3), timedelta(hours=1))
        assert later is not None and later.action == "opened" and later.alert_id != change.alert_id


def test_one_live_alert_per_key_even_when_two_writers_race(make_app: Callable[..., App]) -> None:
    from sqlalchemy.exc import IntegrityError

    app = make_app()
    now = datetime.now(UTC)
    with app.sessions.begin() as s:
        s.add(
            m.Alert(
                kind="spike",
                key="spike",
                status="open",
                title="a",
                explanation="a",
                evidence={},
                started_at=now,
                last_seen_at=now,
            )
        )
    with pytest.raises(IntegrityError), app.sessions.begin() as s:
        s.add(
            m.Alert(
                kind="spike",
                key="spike",
                status="acknowledged",
                title="b",
                explanation="b",
                evidence={},
                started_at=now,
                last_seen_at=now,
            )
        )
    with app.sessions.begin() as s:  # a resolved one beside the live one is fine
        s.add(
            m.Alert(
                kind="spike",
                key="spike",
                status="resolved",
                title="c",
                explanation="c",
                evidence={},
                started_at=now,
                last_seen_at=now,
            )
        )


def test_alert_evaluation_during_a_database_outage_logs_no_traceback(
    make_app: Callable[..., Any],
) -> None:
    import structlog

    from listener.alerts.evaluate import evaluate_after_poll

    app = make_app()
    app.engine.dispose()
    # the database goes away between the poll's commit and the alerts' evaluation
    app.engine.pool._creator = _refused  # type: ignore[attr-defined]
    with structlog.testing.capture_logs() as logs:
        evaluate_after_poll(app, [], datetime.now(UTC))
    events = [e["event"] for e in logs]
    assert events == ["alerts.evaluation_skipped"], logs
    assert not any(e.get("exc_info") for e in logs)


def _refused() -> Any:
    import psycopg

    raise psycopg.OperationalError("connection refused")
