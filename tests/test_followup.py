"""#13 item 4: follow the conversation — the brand's answers, the customer's follow-ups,
"all good now, thanks" and "still broken" after our reply."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from test_cases import add_people, case_ids, events, recovery_block, write_jsonl

from listener import models as m
from listener.app import App
from listener.cases.actions import approve, edit_draft, mark_sent, reject
from listener.cases.followup import (
    CaseFacts,
    Follow,
    PostFacts,
    decide,
    says_resolved,
    thanks,
)
from listener.cases.view import case_view
from listener.pipeline import poll_sources

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
WINDOWS = {"repeat_window": timedelta(days=30), "thread_window": timedelta(days=14)}

COMPLAINT = (
    "@zephyrshoes my order #88231 was supposed to arrive Friday for my sister's wedding and "
    "it's still not here. Tracking hasn't moved in 5 days. Terrible, so disappointed."
)


def facts(**kw: Any) -> PostFacts:
    base: dict[str, Any] = {
        "published_at": T0 + timedelta(hours=2),
        "unhappy": False,
        "label": "neutral",
        "text": "ok",
    }
    base.update(kw)
    return PostFacts(**base)


def case(status: str = "sent", replied: datetime | None = T0 + timedelta(hours=1)) -> CaseFacts:
    return CaseFacts(case_id=7, status=status, replied_at=replied, last_mention_at=T0)


# -- the pure decision ---------------------------------------------------------------------


def test_the_brands_own_posts_are_answers_never_complaints() -> None:
    answer = decide(facts(by_brand=True, in_thread=True, unhappy=True), case("drafted"), **WINDOWS)
    assert answer.kind is Follow.BRAND_ANSWER and answer.case_id == 7
    own = decide(facts(by_brand=True, unhappy=True, label="negative"), None, **WINDOWS)
    assert own.kind is Follow.BRAND_POST and not own.joins


def test_all_good_now_after_our_reply_is_recovered() -> None:
    text = "@zephyrshoes the new pair just arrived, all good now, thanks so much!"
    out = decide(facts(text=text, in_thread=True), case(), **WINDOWS)
    assert out.kind is Follow.RECOVERED and out.recovered is True
    assert out.reasons == [
        "the customer replied in the thread after our reply: they say it is sorted"
    ]
    assert not out.back_to_queue


def test_still_unhappy_after_our_reply_comes_back_to_the_queue_with_the_reason() -> None:
    text = "@zephyrshoes Still nothing. Tracking hasn't moved and nobody answers my DMs."
    out = decide(
        facts(text=text, unhappy=True, label="negative", in_thread=True), case(), **WINDOWS
    )
    assert out.kind is Follow.STILL_UNHAPPY and out.back_to_queue and out.recovered is False
    assert out.reasons[0].startswith("still unhappy after our reply: “@zephyrshoes Still nothing.")
    # a case nobody answered yet: the follow-up joins it and refreshes its draft instead
    early = decide(facts(text=text, unhappy=True, in_thread=True), case("drafted", None), **WINDOWS)
    assert early.kind is Follow.JOIN and early.refresh_draft and not early.back_to_queue


def test_neutral_after_our_reply_changes_nothing_and_old_or_closed_cases_are_not_joined() -> None:
    ack = decide(facts(text="DM sent", in_thread=True), case(), **WINDOWS)
    assert ack.kind is Follow.ACKNOWLEDGED and ack.recovered is None
    late = facts(text="still broken", unhappy=True, in_thread=True, published_at=T0 + 20 * DAY)
    assert decide(late, case(), **WINDOWS).kind is Follow.NEW
    assert (
        decide(facts(in_thread=True, unhappy=True), case("rejected"), **WINDOWS).kind is Follow.NEW
    )
    assert decide(facts(unhappy=True), case("resolved"), **WINDOWS).kind is Follow.NEW
    other = facts(in_thread=True, unhappy=True, same_customer=False)
    assert decide(other, case("drafted", None), **WINDOWS).kind is Follow.NEW


@pytest.mark.parametrize(
    ("text", "resolved"),
    [
        ("@zephyrshoes all good now, thanks!", True),
        ("@comcastcares Already fixed! Thank you!", True),
        ("@Ask_Spectrum Came back on this morning", True),
        ("@AmericanAir It’s fine. The people on line handled fantastic.", True),
        ("@UPSHelp Nope, I’ve got my package thanks", True),
        ("@zephyrshoes it's still not working now", False),
        ("@zephyrshoes my package never arrived.", False),
        ("@AdobeCare no its still broken. will return when its working properly", False),
    ],
)
def test_says_resolved_on_real_tweets(text: str, resolved: bool) -> None:
    assert (says_resolved(text) or thanks(text)) is resolved


def test_resolved_and_thanks_on_the_labelled_twcs_dev_tweets(shared_data: Path) -> None:
    """Real replies to brands: "resolved" is heard, complaints are not taken for it."""
    texts = {}
    for line in (shared_data / "twcs-dev" / "inbound.jsonl").open():
        row = json.loads(line)
        texts[row["tweet_id"]] = row["text"]
    hits: dict[str, list[bool]] = {}
    for line in (shared_data / "twcs-dev" / "labels.jsonl").open():
        row = json.loads(line)
        text = texts[row["tweet_id"]]
        hits.setdefault(row["kind"], []).append(says_resolved(text) or thanks(text))
    recall = sum(hits["resolved"]) / len(hits["resolved"])
    complaints = sum(hits["complaint"]) / len(hits["complaint"])
    assert recall >= 0.9, recall
    assert complaints <= 0.02, complaints


# -- through the pipeline --------------------------------------------------------------------


def tweet(
    tid: str,
    handle: str,
    text: str,
    at: datetime,
    *,
    in_reply_to: str | None = None,
    conversation: str | None = None,
    platform: str = "x",
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": tid,
        "text": text,
        "author": {"handle": handle, "name": handle.title()},
        "created_at": at.isoformat().replace("+00:00", "Z"),
        "platform": platform,
    }
    if in_reply_to:
        out["in_reply_to"] = in_reply_to
    if conversation:
        out["conversation_id"] = conversation
    return out


class Thread:
    """A JSONL source that grows, polled after each step."""

    def __init__(
        self,
        make_app: Callable[..., App],
        tmp_path: Path,
        channel: str = "x_reply",
        polling: dict[str, Any] | None = None,
        **brand: Any,
    ) -> None:
        self.path = tmp_path / "posts.jsonl"
        self.posts: list[dict[str, Any]] = []
        write_jsonl(self.path, [])
        source = {"name": "social", "type": "jsonl", "path": str(self.path)}
        overrides: dict[str, Any] = {
            "sources": [{**source, "options": {"channel": channel}}],
            "recovery": recovery_block(),
        }
        if brand:
            overrides["brand"] = brand
        if polling:
            overrides["polling"] = polling
        self.app = make_app(overrides)
        add_people(self.app)

    def post(self, *posts: dict[str, Any]) -> None:
        self.posts.extend(posts)
        write_jsonl(self.path, self.posts)
        poll_sources(self.app)

    def mention(self, external_id: str) -> m.Mention:
        with self.app.sessions() as s:
            return s.scalars(select(m.Mention).where(m.Mention.external_id == external_id)).one()


def test_brand_reply_then_all_good_now_marks_the_case_recovered(
    make_app: Callable[..., App], tmp_path: Path
) -> None:
    now = datetime.now(UTC) - timedelta(hours=3)
    t = Thread(make_app, tmp_path)
    t.post(tweet("100", "maya_k", COMPLAINT, now, conversation="100"))
    (cid,) = case_ids(t.app)
    # the brand answers natively on X: an answer, not a complaint, and not a case
    t.post(
        tweet(
            "101",
            "ZephyrShoes",
            "@maya_k That's awful, Maya, sorry. We've reshipped #88231 overnight, "
            "it's terrible timing and we feel bad. Zoe at Zephyr Shoes",
            now + timedelta(minutes=20),
            in_reply_to="100",
            conversation="100",
        )
    )
    assert case_ids(t.app) == [cid]
    view = case_view(t.app, cid)
    assert view["first_response_at"] is not None
    assert "case.brand_answered" in events(t.app, cid)
    assert t.mention("101").case_id is None
    # the customer answers the brand's reply: the case is recovered
    t.post(
        tweet(
            "102",
            "maya_k",
            "@zephyrshoes they just arrived, all good now, thanks!",
            now + timedelta(hours=2),
            in_reply_to="101",
            conversation="100",
        )
    )
    assert case_ids(t.app) == [cid]
    view = case_view(t.app, cid)
    assert view["recovered"] is True and view["recovered_at"]
    assert t.mention("102").case_id == cid
    followups = [e for e in view["events"] if e["kind"] == "case.followup"]
    assert len(followups) == 1 and followups[0]["data"]["follow"] == "recovered"
    # nothing of ours went out and they say it is sorted: the reply waiting in the queue
    # thanks them (no apology for what the brand already put right, no gesture)
    assert view["kind"] == "resolved" and view["gesture"] == "none"
    assert view["priority"] <= 10
    text = view["reply"]["text"].lower()
    assert "sorry" not in text and "88231" not in text and "dm us" not in text, text


def test_a_positive_label_alone_after_the_brands_answer_keeps_the_complaint(
    make_app: Callable[..., App], tmp_path: Path
) -> None:
    """ "Just DM'd you 😊" is not "it is sorted": the case keeps its kind and reply."""
    now = datetime.now(UTC) - timedelta(hours=3)
    t = Thread(make_app, tmp_path)
    t.post(tweet("110", "maya_k", COMPLAINT, now, conversation="110"))
    (cid,) = case_ids(t.app)
    before = case_view(t.app, cid)
    t.post(
        tweet(
            "111",
            "ZephyrShoes",
            "@maya_k So sorry, Maya! Could you DM us your order number? Zoe",
            now + timedelta(minutes=20),
            in_reply_to="110",
            conversation="110",
        )
    )
    t.post(
        tweet(
            "112",
            "maya_k",
            "@zephyrshoes Just DM'd you with the order number and a photo 😊",
            now + timedelta(hours=1),
            in_reply_to="111",
            conversation="110",
        )
    )
    view = case_view(t.app, cid)
    assert view["kind"] == before["kind"] == "complaint"
    assert view["gesture"] == before["gesture"]
    assert "sorry" in view["reply"]["text"].lower()


def test_still_unhappy_after_our_sent_reply_comes_back_to_the_queue(
    make_app: Callable[..., App], tmp_path: Path
) -> None:
    now = datetime.now(UTC) - timedelta(hours=3)
    t = Thread(make_app, tmp_path, channel="dm")
    t.post(tweet("200", "dev_ravi", COMPLAINT.replace("#88231", "#77120"), now))
    (cid,) = case_ids(t.app)
    approve(t.app, cid, "lee", role="lead")
    mark_sent(t.app, cid, "lee", url="1999000555")  # our reply's id, as the outbox records it
    assert case_view(t.app, cid)["status"] == "sent"
    t.post(
        tweet(
            "201",
            "dev_ravi",
            "@zephyrshoes Still nothing arrived, tracking is stuck and nobody answers. "
            "This is awful, worst service ever.",
            datetime.now(UTC),
            in_reply_to="1999000555",  # the customer answers our reply
        )
    )
    assert case_ids(t.app) == [cid]  # no second case: the same one comes back
    view = case_view(t.app, cid)
    assert view["status"] == "drafted" and view["assignee"] is None
    assert view["recovered"] is False
    assert view["reasons"][0].startswith("still unhappy after our reply: “@zephyrshoes Still")
    assert view["reply"]["status"] == "current"  # a new draft, answering the new post
    kinds = events(t.app, cid)
    assert kinds.count("case.followup") == 1 and kinds[-1] == "draft.created"
    followup = next(e for e in view["events"] if e["kind"] == "case.followup")
    assert followup["data"]["was"] == {"status": "sent", "assignee": "lee"}


def test_a_follow_up_before_our_reply_joins_and_refreshes_an_unedited_draft(
    make_app: Callable[..., App], tmp_path: Path
) -> None:
    now = datetime.now(UTC) - timedelta(hours=3)
    t = Thread(make_app, tmp_path)
    t.post(
        tweet("300", "maya_k", COMPLAINT, now),
        tweet("400", "jo_runs", COMPLAINT.replace("#88231", "#66002"), now),
    )
    c1, c2 = case_ids(t.app)
    before = case_view(t.app, c1)["reply"]
    edit_draft(t.app, c2, "ann", "Hi Jo, so sorry — can you DM us #66002? — Ann")
    t.post(
        tweet(
            "301",
            "maya_k",
            "@zephyrshoes the wedding is tomorrow, I really need these shoes. Awful.",
            now + timedelta(minutes=30),
            in_reply_to="300",
        ),
        tweet(
            "401",
            "jo_runs",
            "@zephyrshoes hello?? still waiting, this is terrible",
            now + timedelta(minutes=30),
            in_reply_to="400",
        ),
    )
    assert case_ids(t.app) == [c1, c2]
    after = case_view(t.app, c1)
    assert after["reply"]["version"] == before["version"] + 1
    assert after["reply"]["created_by"] == "listener"
    latest = t.mention("301").id
    with t.app.sessions() as s:
        draft = s.get_one(m.Draft, after["reply"]["id"])
        assert draft.in_reply_to_mention_id == latest  # the reply answers the latest post
    texts = [e["text"] for e in after["events"]]
    assert any("rewrote the reply after the customer's follow-up" in x for x in texts)
    edited = case_view(t.app, c2)["reply"]
    assert edited["created_by"] == "ann" and edited["text"].startswith("Hi Jo")


def test_hostile_threads(make_app: Callable[..., App], tmp_path: Path) -> None:
    """Someone else in the thread, bogus reply ids, an impersonator, a rejected case."""
    now = datetime.now(UTC) - timedelta(hours=3)
    t = Thread(
        make_app,
        tmp_path,
        accounts={"mastodon": ["zephyr@mastodon.social"]},
    )
    t.post(tweet("500", "maya_k", COMPLAINT, now, conversation="500"))
    (cid,) = case_ids(t.app)
    t.post(
        # another customer piles on in maya's thread: their own case
        tweet(
            "501",
            "pat_q",
            "@zephyrshoes same here, my order is two weeks late. Terrible.",
            now + timedelta(minutes=5),
            in_reply_to="500",
            conversation="500",
        ),
        # a reply id that matches nothing, and one that is hostile
        tweet(
            "502",
            "lin",
            "@zephyrshoes my sneakers broke after one day, awful quality",
            now + timedelta(minutes=6),
            in_reply_to="../../etc/passwd' OR 1=1 --",
        ),
        # an impersonator on another instance is a customer, not the brand
        tweet(
            "503",
            "zephyr@evil.example",
            "@zephyrshoes terrible terrible awful shoes, the worst",
            now + timedelta(minutes=7),
            platform="mastodon",
        ),
        # the brand's own mastodon account complaining about nothing: never a case
        tweet(
            "504",
            "Zephyr@Mastodon.Social",
            "Terrible weather today! Stay dry, Zephyr Shoes fans — awful rain.",
            now + timedelta(minutes=8),
            platform="mastodon",
        ),
    )
    ids = case_ids(t.app)
    assert len(ids) == 4  # maya, pat, lin, the impersonator
    assert t.mention("501").case_id not in (None, cid)
    assert t.mention("504").case_id is None
    # a rejected case is not joined by a reply in its thread: a fresh complaint, a fresh case
    reject(t.app, cid, "ann", reason="duplicate")
    t.post(
        tweet(
            "505",
            "maya_k",
            "@zephyrshoes you ignored me?! still no shoes, terrible",
            now + timedelta(minutes=40),
            in_reply_to="500",
        )
    )
    assert t.mention("505").case_id not in (None, cid)


def test_sorted_before_our_reply_is_a_join_that_says_so() -> None:
    before = case(status="drafted", replied=None)
    said = decide(
        facts(text="it turned up this morning, all sorted now, thanks!"), before, **WINDOWS
    )
    assert said.kind is Follow.JOIN and said.refresh_draft and said.sorted_before_reply
    assert "they say it is sorted" in said.reasons[0]
    happy = decide(facts(text="Fab service in store today", happy=True), before, **WINDOWS)
    assert happy.sorted_before_reply and "happy" in happy.reasons[0]
    # still unhappy, or merely more detail: a plain join
    more = decide(facts(text="still nothing", unhappy=True, label="negative"), before, **WINDOWS)
    assert more.kind is Follow.JOIN and not more.sorted_before_reply


def test_a_customer_who_sorts_it_before_our_reply_gets_thanks_not_an_apology(
    make_app: Callable[..., App], tmp_path: Path
) -> None:
    now = datetime.now(UTC) - timedelta(hours=3)
    t = Thread(make_app, tmp_path)
    t.post(tweet("500", "maya_k", COMPLAINT, now))
    (cid,) = case_ids(t.app)
    opened = case_view(t.app, cid)
    t.post(
        tweet(
            "501",
            "maya_k",
            "@zephyrshoes update: they turned up this morning, all sorted now, thanks!",
            now + timedelta(hours=1),
            in_reply_to="500",
        )
    )
    assert case_ids(t.app) == [cid]
    view = case_view(t.app, cid)
    assert view["kind"] == "resolved" and view["gesture"] == "none"
    assert view["priority"] <= 10 < opened["priority"]
    assert "they say it is sorted" in view["reasons"][0]
    assert view["offer"] is None  # the machine's offer is detached, never sent
    text = view["reply"]["text"]
    assert "sorry" not in text.lower()
    assert any(w in text.lower() for w in ("glad", "great", "thank")), text
    assert view["recovered"] is not True  # we did not recover them: they sorted it


def test_a_follow_up_with_more_detail_keeps_the_first_problem_in_the_reply(
    make_app: Callable[..., App], tmp_path: Path
) -> None:
    now = datetime.now(UTC) - timedelta(hours=3)
    t = Thread(make_app, tmp_path)
    t.post(
        tweet(
            "600",
            "maya_k",
            "@zephyrshoes my order of school shoes never arrived and it's been 9 days",
            now,
        )
    )
    (cid,) = case_ids(t.app)
    t.post(
        tweet(
            "601",
            "maya_k",
            "@zephyrshoes rang customer services and they stated we are not right. Really poor.",
            now + timedelta(minutes=40),
            in_reply_to="600",
        )
    )
    text = case_view(t.app, cid)["reply"]["text"]
    assert "school shoes never arrived" in text, text
    assert "stated" not in text


def test_a_cheers_sign_off_is_not_sorted_and_unhappy_again_is_a_complaint_again(
    make_app: Callable[..., App], tmp_path: Path
) -> None:
    now = datetime.now(UTC) - timedelta(hours=3)
    t = Thread(make_app, tmp_path)
    t.post(tweet("700", "maya_k", COMPLAINT, now))
    (cid,) = case_ids(t.app)
    t.post(
        tweet(
            "701",
            "maya_k",
            "@zephyrshoes tell your courier to answer his phone. cheers",
            now + timedelta(minutes=5),
        )
    )
    view = case_view(t.app, cid)
    assert view["kind"] == "complaint" and view["priority"] > 10  # "cheers" is a sign-off
    t.post(
        tweet(
            "702",
            "maya_k",
            "@zephyrshoes they turned up, all sorted now, thanks!",
            now + timedelta(minutes=30),
        )
    )
    assert case_view(t.app, cid)["kind"] == "resolved"
    t.post(
        tweet(
            "703",
            "maya_k",
            "@zephyrshoes actually the heel is broken on both shoes. Awful, really disappointed.",
            now + timedelta(minutes=50),
        )
    )
    view = case_view(t.app, cid)
    assert view["kind"] == "complaint" and view["gesture"] != "none"
    assert "sorry" in view["reply"]["text"].lower()  # an apology again, not "glad it's sorted"


def test_a_reply_to_the_brands_own_post_means_the_brand_has_answered(
    make_app: Callable[..., App], tmp_path: Path
) -> None:
    # the brand answered from its own app (not seen by Listener); the customer's reply to
    # that answer names the brand as the author of the post it answers
    now = datetime.now(UTC) - timedelta(hours=3)
    t = Thread(make_app, tmp_path)
    t.post(tweet("800", "maya_k", COMPLAINT, now))
    (cid,) = case_ids(t.app)
    reply = tweet(
        "801", "maya_k", "@zephyrshoes Thank you, all sorted now!", now + timedelta(hours=1)
    )
    reply["in_reply_to_text"] = "@maya_k So sorry, Maya – we've reshipped it overnight."
    reply["in_reply_to_author"] = "zephyrshoes"
    t.post(reply)
    view = case_view(t.app, cid)
    assert view["recovered"] is True and view["first_response_at"] is not None
    assert "case.brand_answered" in events(t.app, cid)
    # nothing urgent is left: the case waits below every open problem, saying why
    assert view["priority"] <= 10 and "they say it is sorted" in view["reasons"][0]


def test_sorted_before_our_reply_leaves_an_agents_text_and_offer_as_they_are(
    make_app: Callable[..., App], tmp_path: Path
) -> None:
    now = datetime.now(UTC) - timedelta(hours=3)
    t = Thread(make_app, tmp_path)
    t.post(tweet("900", "maya_k", COMPLAINT, now))
    (cid,) = case_ids(t.app)
    before = case_view(t.app, cid)
    edit_draft(t.app, cid, "ann", "Hi Maya, so sorry about #88231 — Ann")
    t.post(
        tweet(
            "901",
            "maya_k",
            "@zephyrshoes update: they turned up this morning, all sorted now, thanks!",
            now + timedelta(hours=1),
            in_reply_to="900",
        )
    )
    view = case_view(t.app, cid)
    assert view["kind"] == "resolved" and view["priority"] <= 10
    assert view["reply"]["text"] == "Hi Maya, so sorry about #88231 — Ann"
    assert (view["offer"] or {}).get("key") == (before["offer"] or {}).get("key")


@pytest.mark.parametrize("bulk", [True, False])
def test_posts_that_arrive_together_get_one_draft_answering_all_of_them(
    make_app: Callable[..., App], tmp_path: Path, bulk: bool
) -> None:
    """#19: a batch drafts each case once, after its posts joined: a case opened and
    followed up in one poll gets one first draft (answering the latest post, the first
    problem leading); a case from an earlier poll followed up twice gets one new version."""
    now = datetime.now(UTC) - timedelta(hours=3)
    t = Thread(make_app, tmp_path, polling={"store_in_bulk": bulk})
    t.post(
        tweet("700", "maya_k", COMPLAINT, now),
        tweet(
            "701",
            "maya_k",
            "@zephyrshoes the wedding is tomorrow, I really need these shoes. Awful.",
            now + timedelta(minutes=20),
            in_reply_to="700",
        ),
        tweet("800", "jo_runs", COMPLAINT.replace("#88231", "#66002"), now),
    )
    c1, c2 = case_ids(t.app)
    first = case_view(t.app, c1)
    assert first["reply"]["version"] == 1
    assert events(t.app, c1).count("draft.created") == 1
    latest = t.mention("701").id
    with t.app.sessions() as s:
        draft = s.get_one(m.Draft, first["reply"]["id"])
        assert draft.in_reply_to_mention_id == latest
        assert (
            s.scalar(select(m.Draft.id).where(m.Draft.case_id == c1, m.Draft.id != draft.id))
            is None
        )
    assert "tracking hasn't moved" in first["reply"]["text"].lower(), first["reply"]["text"]

    t.post(
        tweet(
            "801",
            "jo_runs",
            "@zephyrshoes hello?? still waiting, this is terrible",
            now + timedelta(minutes=30),
            in_reply_to="800",
        ),
        tweet(
            "802",
            "jo_runs",
            "@zephyrshoes two days before the race. Still nothing.",
            now + timedelta(minutes=40),
            in_reply_to="801",
        ),
    )
    second = case_view(t.app, c2)["reply"]
    assert second["version"] == 2  # one new version for two follow-ups
    assert events(t.app, c2).count("draft.edited") == 1
    latest = t.mention("802").id
    with t.app.sessions() as s:
        assert s.get_one(m.Draft, second["id"]).in_reply_to_mention_id == latest
