"""The X reply channel: policy, posting, and exactly-once delivery across crashes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from xserver import TEST_ENV, XServer, settings_dict, snowflake

from listener.channels.base import Channel, OutboundMessage
from listener.channels.x import XReplyChannel, normalize_text
from listener.config import XSettings, settings_from_dict
from listener.errors import PolicyViolation, RateLimited, SourceFailing, TransientError

MENTIONS = "/2/users/783214/mentions"
RECORDED_MENTION = "1578516295611748353"  # "@Twitter @TwitterSupport this is my ENTIRE feed…"
CUSTOMER = {"id": "9000000001", "username": "sam_flyer", "name": "Sam Flyer"}


@pytest.fixture
def server(shared_data: Path) -> Iterator[XServer]:
    with XServer(shared_data / "x-api") as srv:
        yield srv


@pytest.fixture
def target(server: XServer) -> str:
    """A customer's post mentioning the brand, with a known author."""
    tid = snowflake(time.time() - 60)
    server.add_tweets(
        MENTIONS,
        [
            {
                "id": tid,
                "author_id": CUSTOMER["id"],
                "conversation_id": tid,
                "text": "@Twitter my order never arrived & support is silent",
            }
        ],
        [CUSTOMER],
    )
    return tid


def x_settings(server: XServer, **env: str) -> XSettings:
    data = settings_dict(server.base_url)
    return settings_from_dict(data, env={**TEST_ENV, **env}).x


def channel(server: XServer, timeout: float = 2.0) -> XReplyChannel:
    return XReplyChannel(x_settings(server), timeout=timeout)


def message(
    in_reply_to: str | None,
    text: str = "Sorry Sam, we're on it — DM us your order number & we'll fix it today.",
    **kw: Any,
) -> OutboundMessage:
    return OutboundMessage(
        idempotency_key=kw.pop("key", "draft-1"),
        channel="x",
        text=text,
        in_reply_to=in_reply_to,
        recipient=kw.pop("recipient", "sam_flyer"),
        brand_handles=("@Twitter",),
        brand_terms=("Twitter",),
        target_text=kw.pop("target_text", "@Twitter my order never arrived & support is silent"),
        **kw,
    )


def deliver(ch: Channel, msg: OutboundMessage, row: dict[str, Any]) -> str:
    """The outbox protocol the lead implements (reference for these tests).

    ``row`` is the outbox row: status pending → sending (committed before the
    call) → sent with the external id.  A row found ``sending`` may have gone
    out already: ask the channel before posting again.
    """
    if row.get("status") == "sent":
        return str(row["external_id"])
    if row.get("status") == "sending":
        existing = ch.find_existing(msg)
        if existing is not None:
            row.update(status="sent", external_id=existing)
            return existing
    row["status"] = "sending"
    external_id = ch.send(msg)
    row.update(status="sent", external_id=external_id)
    return external_id


def posts(server: XServer) -> list[Any]:
    return server.requests_to("/2/tweets", "POST")


# ---------------------------------------------------------------------------
# posting


def test_send_posts_a_reply_with_user_context(server: XServer, target: str) -> None:
    assert isinstance(channel(server), Channel)
    new_id = channel(server).send(message(target))

    (req,) = posts(server)
    assert req.json == {
        "text": "Sorry Sam, we're on it — DM us your order number & we'll fix it today.",
        "reply": {"in_reply_to_tweet_id": target},
    }
    assert req.headers["authorization"].startswith("OAuth ")
    assert 'oauth_consumer_key="ck-SECRET"' in req.headers["authorization"]
    assert "cs-SECRET" not in req.headers["authorization"]  # secrets only sign
    assert "ats-SECRET" not in req.headers["authorization"]
    (created,) = server.created
    assert created["id"] == new_id and int(new_id) > int(target)
    assert created["referenced_tweets"] == [{"type": "replied_to", "id": target}]


def test_reply_to_a_recorded_mention(server: XServer) -> None:
    text = "We hear you. Tell us what you'd like to see less of and we'll pass it on."
    msg = message(
        RECORDED_MENTION,
        text,
        recipient=None,
        target_text="@Twitter @TwitterSupport this is my ENTIRE feed",
    )
    new_id = channel(server).send(msg)
    assert channel(server).find_existing(msg) == new_id


def test_find_existing_is_none_before_sending(server: XServer, target: str) -> None:
    assert channel(server).find_existing(message(target)) is None
    req = server.requests_to("/2/users/1072250532645998596/tweets")[-1]
    assert req.query["since_id"] == target
    assert req.headers["authorization"].startswith("OAuth ")


# ---------------------------------------------------------------------------
# exactly once


def test_crash_after_send_is_recovered_without_a_second_post(server: XServer, target: str) -> None:
    msg = message(target)
    row: dict[str, Any] = {"status": "pending"}

    # attempt 1: the row is committed as 'sending', the post goes out, the process dies
    row["status"] = "sending"
    first_id = channel(server).send(msg)
    assert len(posts(server)) == 1  # ... and first_id is never recorded

    # restart: a fresh channel, the same message, the row still 'sending'
    recovered = deliver(channel(server), msg, row)

    assert recovered == first_id
    assert row == {"status": "sent", "external_id": first_id}
    assert len(posts(server)) == 1
    assert deliver(channel(server), msg, row) == first_id
    assert len(posts(server)) == 1


def test_lost_response_is_recovered_without_a_second_post(server: XServer, target: str) -> None:
    """The post takes effect on X but the answer never arrives (timeout)."""
    msg = message(target)
    row: dict[str, Any] = {"status": "pending"}
    server.delay("/2/tweets", 1.0, method="POST", after=True)

    with pytest.raises(TransientError):
        deliver(channel(server, timeout=0.3), msg, row)
    assert row["status"] == "sending" and len(server.created) == 1

    assert deliver(channel(server), msg, row) == server.created[0]["id"]
    assert len(posts(server)) == 1


def test_sending_row_without_a_post_is_sent(server: XServer, target: str) -> None:
    """Crash *before* the API call: find_existing finds nothing, so it is sent once."""
    row: dict[str, Any] = {"status": "sending"}
    new_id = deliver(channel(server), message(target), row)
    assert row == {"status": "sent", "external_id": new_id}
    assert len(posts(server)) == 1


def test_find_existing_ignores_other_replies(server: XServer, target: str) -> None:
    ch = channel(server)
    ch.send(message(target, "Sorry Sam, we're on it."))
    other = snowflake(time.time() - 30)
    server.add_tweets(
        MENTIONS, [{"id": other, "author_id": CUSTOMER["id"], "text": "@Twitter also this"}]
    )
    ch.send(
        message(
            other,
            "A different reply to another post about Twitter",
            target_text="@Twitter also this",
        )
    )
    assert ch.find_existing(message(target, "Sorry Sam, we're on it — another text")) is None
    assert ch.find_existing(message(other, "Sorry Sam, we're on it.")) is None


def test_duplicate_content_refusal_resolves_to_the_existing_post(
    server: XServer, target: str
) -> None:
    msg = message(target)
    first = channel(server).send(msg)
    # without find_existing (a careless retry), X refuses the duplicate; we resolve it
    assert channel(server).send(msg) == first
    assert len(server.created) == 1


def test_text_comparison_ignores_x_reply_prefix_links_and_escaping() -> None:
    posted = "@sam_flyer Sorry &amp; thanks — see https://t.co/abc123"
    assert normalize_text(posted) == normalize_text("Sorry & thanks —  see https://acme.example/h")


# ---------------------------------------------------------------------------
# policy and errors


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"text": "x" * 281}, "281 characters"),
        ({"text": "Thanks! cc @jo_b"}, "@jo_b"),
        ({"target_text": "my order never arrived"}, "does not mention the brand"),
        ({"already_replied": True}, "already replied"),
        ({"in_reply_to": None}, "only replies"),
        ({"text": "   "}, "empty"),
    ],
)
def test_policy_refusals_send_nothing(
    server: XServer, target: str, kwargs: dict[str, Any], reason: str
) -> None:
    in_reply_to = kwargs.pop("in_reply_to", target)
    with pytest.raises(PolicyViolation, match=reason):
        channel(server).send(message(in_reply_to, **kwargs))
    assert server.received == []


def test_mentioning_the_author_and_own_handle_is_allowed(server: XServer, target: str) -> None:
    channel(server).send(message(target, "@sam_flyer so sorry! Our @Twitter team will DM you."))
    assert len(server.created) == 1


def test_without_target_text_only_the_reply_text_is_checked(server: XServer, target: str) -> None:
    channel(server).send(message(target, target_text=None))
    with pytest.raises(PolicyViolation, match="@jo_b"):
        channel(server).send(message(target, "ask @jo_b", target_text=None))


def test_reply_to_a_deleted_post_is_a_policy_violation(server: XServer) -> None:
    with pytest.raises(PolicyViolation, match="deleted or not visible"):
        channel(server).send(message("1234567890123456789"))


def test_bad_user_credentials_are_a_source_failure(server: XServer, target: str) -> None:
    server.fail("/2/tweets", 401, method="POST")
    with pytest.raises(SourceFailing, match=r"user-context credentials \(401\): check X_CONSUMER"):
        channel(server).send(message(target))


def test_missing_write_permission_is_a_source_failure(server: XServer, target: str) -> None:
    server.fail(
        "/2/tweets",
        403,
        method="POST",
        body={
            "title": "Forbidden",
            "status": 403,
            "detail": "Your client app is not configured with "
            "the appropriate oauth1 app permissions for this endpoint.",
        },
    )
    with pytest.raises(SourceFailing, match="write access"):
        channel(server).send(message(target))


def test_from_settings_uses_polling_timeout(server: XServer, target: str) -> None:
    data = settings_dict(server.base_url, timeout="7s")
    ch = XReplyChannel.from_settings(settings_from_dict(data, env=TEST_ENV))
    assert ch.timeout == 7.0
    ch.send(message(target))
    assert server.requests_to("/2/tweets", "POST")[0].headers["user-agent"].startswith("Listener/")


def test_missing_credentials_are_a_source_failure(server: XServer, target: str) -> None:
    data = settings_dict(server.base_url)
    del data["x"]["access_token_secret"]
    x = settings_from_dict(data, env=TEST_ENV).x
    with pytest.raises(SourceFailing, match=r"x\.access_token_secret"):
        XReplyChannel(x).send(message(target))


def test_server_error_and_rate_limit(server: XServer, target: str) -> None:
    server.fail("/2/tweets", 503, method="POST")
    with pytest.raises(TransientError):
        channel(server).send(message(target))
    reset = int(time.time()) + 900
    server.fail("/2/tweets", 429, method="POST", headers={"x-rate-limit-reset": str(reset)})
    with pytest.raises(RateLimited) as info:
        channel(server).send(message(target))
    assert info.value.retry_at is not None and int(info.value.retry_at.timestamp()) == reset
    assert server.created == []
