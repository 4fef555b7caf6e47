"""#17 item 3: one customer across sources — agents link cases, Listener suggests links on
shared strong evidence, and the case shows every platform the customer used."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from test_cases import add_people, case_ids, events, recovery_block, write_jsonl
from test_followup import COMPLAINT, tweet

from listener import models as m
from listener.app import App
from listener.cases.actions import claim, reject
from listener.cases.linking import (
    Side,
    accept_suggestion,
    bounded_keys,
    case_keys,
    evidence,
    keys_of,
    merge_cases,
    profile_texts,
    reject_suggestion,
    suggestions_for,
)
from listener.cases.view import case_view
from listener.errors import Conflict, ListenerError, NotFound, PermissionDenied
from listener.pipeline import poll_sources

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
WINDOW = timedelta(days=3)
OWN = ["@zephyrshoes"]

X_POST = (
    "@zephyrshoes order #88231 was due Friday for my sister's wedding and it's still not "
    "here. Tracking hasn't moved in 5 days. Terrible, so disappointed."
)
MASTODON_POST = (
    "Zephyr Shoes lost my wedding shoes somewhere between the warehouse and my door. "
    "Awful service, nobody answers."
)
BLOG_POST = (
    "A wedding without shoes: I ordered from Zephyr Shoes two weeks ago (order 88231), "
    "the tracking froze, support never answered, and I walked down the aisle as a "
    "bridesmaid in borrowed flats. Terrible, disappointing experience."
)


def side(case_id: int, platform: str, handle: str, *texts: str, **kw: Any) -> Side:
    return Side(
        case_id=case_id,
        platform=platform,
        handle=handle,
        email=kw.get("email"),
        texts=texts,
        times=kw.get("times", (T0,)),
    )


# -- the pure evidence -----------------------------------------------------------------------


def test_keys_of_real_looking_posts() -> None:
    assert ("order", "88231") in keys_of(X_POST)
    assert ("order", "88231") in keys_of(BLOG_POST)
    assert ("order", "1234567890123") in keys_of("Amazon order no. 123-4567890-123 late again")
    assert ("email", "maya.k@example.org") in keys_of("write to me at Maya.K@example.org please")
    assert ("account", "maya@mastodon.social") in keys_of("also here: @maya@mastodon.social")
    assert ("account", "maya_k") in keys_of("my X is https://x.com/maya_k")
    assert ("account", "maya") in keys_of("https://mastodon.social/@maya")
    # not order numbers: sizes, years, prices, hashtags
    assert not {k for k in keys_of("size 10, #blackfriday 2026 deals at $120") if k[0] == "order"}


def test_evidence_needs_something_only_one_person_would_share() -> None:
    x = side(1, "x", "maya_k", X_POST)
    blog = side(3, "blog", "Maya K", BLOG_POST)
    found = evidence(x, blog, window=WINDOW, own=OWN)
    assert [(e.kind, e.value) for e in found] == [("order", "88231")]
    # the same order number a week apart: not suggested
    late = side(3, "blog", "Maya K", BLOG_POST, times=(T0 + timedelta(days=7),))
    assert evidence(x, late, window=WINDOW, own=OWN) == []
    # everyone names the brand's handle: that proves nothing
    a = side(1, "x", "pat", "@zephyrshoes where is my parcel")
    b = side(2, "mastodon", "lee@m.social", "@zephyrshoes my parcel is late too")
    assert evidence(a, b, window=WINDOW, own=OWN) == []
    # one names the other's account
    c = side(2, "mastodon", "maya@mastodon.social", "I posted on X too, @maya_k")
    named = evidence(x, c, window=WINDOW, own=OWN)
    assert [(e.kind, e.value) for e in named] == [("account", "maya_k")]
    # the brand's support address in both posts is not the customer's
    s1 = side(1, "x", "a", "I mailed support@zephyrshoes.com twice")
    s2 = side(2, "blog", "b", "support@zephyrshoes.com never answers")
    assert evidence(s1, s2, window=WINDOW, own=OWN, own_domains=["zephyrshoes.com"]) == []
    assert evidence(x, x, window=WINDOW, own=OWN) == []  # a case and itself


def test_a_profile_link_to_the_other_account_is_evidence() -> None:
    raw = {
        "platform": "mastodon",
        "account": {
            "note": "Runner, bridesmaid, shoe person.",
            "fields": [{"name": "X", "value": "https://x.com/maya_k"}, {"name": "x", "value": 3}],
        },
    }
    texts = profile_texts(raw)
    assert texts == ["Runner, bridesmaid, shoe person.", "https://x.com/maya_k"]
    assert profile_texts("not a dict") == [] and profile_texts({"account": []}) == []
    masto = side(2, "mastodon", "maya@mastodon.social", MASTODON_POST, *texts)
    x = side(1, "x", "maya_k", X_POST)
    (found,) = evidence(masto, x, window=WINDOW, own=OWN)
    assert (found.kind, found.value) == ("account", "maya_k")
    bsky = {"record": {"links": ["https://mastodon.social/@maya"]}}
    assert ("account", "maya") in keys_of(profile_texts(bsky)[0])


def test_a_post_stuffed_with_evidence_gives_a_bounded_key_set() -> None:
    spam = " ".join(f"order #{10000 + i} mail{i}@spam.example @user{i}" for i in range(2000))
    keys = case_keys(side(1, "x", "spammer", spam + " " + "x" * 5000), OWN, ["zephyrshoes.com"])
    kinds = [k for k, _ in keys]
    assert max(kinds.count(k) for k in set(kinds)) <= 16
    assert all(len(v) <= 320 for _, v in keys)
    assert ("self", "spammer") in keys
    assert not any(v == "zephyrshoes" for _, v in case_keys(side(1, "x", "@ZephyrShoes"), OWN))


# -- end to end: X + Mastodon (linked by an agent) + a blog (suggested, accepted) -------------


def rss(items: list[dict[str, Any]]) -> str:
    body = "".join(
        f"<item><title>{i['title']}</title><link>{i['link']}</link>"
        f"<guid isPermaLink='true'>{i['link']}</guid><dc:creator>{i['author']}</dc:creator>"
        f"<pubDate>{format_datetime(i['at'])}</pubDate><description>{i['text']}</description>"
        "</item>"
        for i in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
        "<title>Blogs</title><link>https://blogs.example/</link><description>b</description>"
        f"{body}</channel></rss>"
    )


class World:
    """A JSONL source (X, Mastodon) and a blog feed, polled after each step."""

    def __init__(self, make_app: Callable[..., App], tmp_path: Path) -> None:
        self.social = tmp_path / "social.jsonl"
        self.blog = tmp_path / "blog.xml"
        self.posts: list[dict[str, Any]] = []
        self.items: list[dict[str, Any]] = []
        write_jsonl(self.social, [])
        self.blog.write_text(rss([]))
        self.app = make_app(
            {
                "sources": [
                    {"name": "social", "type": "jsonl", "path": str(self.social)},
                    {"name": "blogs", "type": "feed", "path": str(self.blog)},
                ],
                "recovery": recovery_block(),
            }
        )
        add_people(self.app)

    def post(self, *posts: dict[str, Any]) -> None:
        self.posts.extend(posts)
        write_jsonl(self.social, self.posts)
        poll_sources(self.app)

    def blog_post(self, **item: Any) -> None:
        self.items.append(item)
        self.blog.write_text(rss(self.items))
        poll_sources(self.app)


def test_one_customer_on_x_mastodon_and_a_blog_ends_as_one_case(
    make_app: Callable[..., App], tmp_path: Path
) -> None:
    now = datetime.now(UTC) - timedelta(hours=5)
    w = World(make_app, tmp_path)
    w.post(tweet("1861000001", "maya_k", X_POST, now))
    w.post(
        tweet(
            "113550001",
            "maya@mastodon.social",
            MASTODON_POST,
            now + timedelta(minutes=30),
            platform="mastodon",
        )
    )
    x_case, masto_case = case_ids(w.app)
    assert suggestions_for_case(w.app, x_case) == []  # nothing shared: no suggestion

    # an agent says "same person"
    merged = merge_cases(w.app, x_case, masto_case, "ann")
    assert merged["id"] == x_case
    gone = case_view(w.app, masto_case)
    assert gone["status"] == "merged" and gone["merged_into_id"] == x_case

    # the blog post shares the order number with the X post: suggested, not merged
    w.blog_post(
        title="A wedding without shoes",
        link="https://mayawrites.example/wedding-shoes",
        author="Maya K",
        at=now + timedelta(hours=2),
        text=BLOG_POST,
    )
    ids = case_ids(w.app)
    blog_case = ids[-1]
    assert len(ids) == 3
    (suggestion,) = suggestions_for_case(w.app, x_case)
    assert {suggestion["case_id"], suggestion["other_case_id"]} == {x_case, blog_case}
    assert suggestion["evidence"] == [
        {"kind": "order", "value": "88231", "detail": "order 88231 in both"}
    ]
    assert case_view(w.app, blog_case)["status"] in ("new", "drafted")  # never silently

    accept_suggestion(w.app, suggestion["id"], "bob")

    view = case_view(w.app, x_case)
    assert len(view["posts"]) == 3
    assert {p["platform"] for p in view["posts"]} == {"x", "mastodon", "blog"}
    assert view["platforms"][0] == "x" and set(view["platforms"]) == {"x", "mastodon", "blog"}
    assert view["merged_from"] == [masto_case, blog_case]
    assert view["link_suggestions"] == []  # decided
    assert any("same customer as case" in r for r in view["reasons"])
    # audit: one event per action, on each case it touched
    kinds = events(w.app, x_case)
    assert kinds.count("case.merged") == 2 and kinds.count("link.suggested") <= 1
    assert events(w.app, masto_case).count("case.merged_into") == 1
    assert events(w.app, blog_case).count("case.merged_into") == 1
    texts = [e["text"] for e in view["events"]]
    assert any("ann merged case" in t for t in texts)
    assert any("accepting suggestion" in t for t in texts)
    with w.app.sessions() as s:
        assert (
            s.scalar(select(func.count()).select_from(m.Case).where(m.Case.status == "merged")) == 2
        )
        authors = s.scalars(select(m.Author).order_by(m.Author.id)).all()
        assert len({a.customer_id for a in authors}) == 1  # one customer, three accounts

    # the linked customer's next post on Mastodon joins the one open case
    w.post(
        tweet(
            "113550002",
            "maya@mastodon.social",
            "Still no word from Zephyr Shoes about my order. Awful.",
            now + timedelta(hours=3),
            platform="mastodon",
        )
    )
    assert case_ids(w.app) == ids
    assert len(case_view(w.app, x_case)["posts"]) == 4


def suggestions_for_case(app: App, case_id: int) -> list[dict[str, Any]]:
    with app.sessions() as s:
        return suggestions_for(s, case_id)


# -- hostile input -----------------------------------------------------------------------------


def _two(make_app: Callable[..., App], tmp_path: Path) -> tuple[World, int, int]:
    now = datetime.now(UTC) - timedelta(hours=5)
    w = World(make_app, tmp_path)
    w.post(
        tweet("2001", "maya_k", X_POST, now),
        tweet("2002", "maya@mastodon.social", MASTODON_POST, now, platform="mastodon"),
    )
    a, b = case_ids(w.app)
    return w, a, b


def test_bad_merges_are_refused(make_app: Callable[..., App], tmp_path: Path) -> None:
    w, a, b = _two(make_app, tmp_path)
    with pytest.raises(ListenerError, match="into itself"):
        merge_cases(w.app, a, a, "ann")
    with pytest.raises(NotFound):
        merge_cases(w.app, a, 999_999, "ann")
    with pytest.raises(NotFound):
        merge_cases(w.app, 999_999, a, "ann")
    with pytest.raises(PermissionDenied):
        merge_cases(w.app, a, b, "mo")  # marketing is read-only
    with pytest.raises(PermissionDenied):
        merge_cases(w.app, a, b, "nobody")
    claim(w.app, b, "bob")
    with pytest.raises(Conflict, match="claimed by bob"):
        merge_cases(w.app, a, b, "ann")  # bob holds the other case
    reject(w.app, b, "bob", reason="spam")
    with pytest.raises(Conflict, match="rejected"):
        merge_cases(w.app, a, b, "ann")  # a closed case is not merged
    with pytest.raises(Conflict):  # bob's claim, or its state: refused either way
        merge_cases(w.app, b, a, "ann")
    with pytest.raises(Conflict, match="rejected"):
        merge_cases(w.app, b, a, "bob")
    with pytest.raises(NotFound):
        accept_suggestion(w.app, 424242, "ann")
    with pytest.raises(NotFound):
        reject_suggestion(w.app, 424242, "ann")
    assert "case.merged" not in events(w.app, a)


def test_two_agents_merging_at_once_one_wins_the_other_gets_409(
    make_app: Callable[..., App], tmp_path: Path
) -> None:
    w, a, b = _two(make_app, tmp_path)
    barrier = threading.Barrier(2)
    results: list[Any] = [None, None]

    def run(i: int, target: int, other: int, who: str) -> None:
        barrier.wait()
        try:
            results[i] = merge_cases(w.app, target, other, who)
        except Exception as exc:
            results[i] = exc

    threads = [
        threading.Thread(target=run, args=(0, a, b, "ann")),
        threading.Thread(target=run, args=(1, b, a, "bob")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    wins = [r for r in results if isinstance(r, dict)]
    losses = [r for r in results if isinstance(r, Conflict)]
    assert len(wins) == 1 and len(losses) == 1, results
    kept = wins[0]["id"]
    assert events(w.app, kept).count("case.merged") == 1
    assert sum(events(w.app, c).count("case.merged_into") for c in (a, b)) == 1


def test_a_rejected_suggestion_stays_rejected(make_app: Callable[..., App], tmp_path: Path) -> None:
    now = datetime.now(UTC) - timedelta(hours=5)
    w = World(make_app, tmp_path)
    w.post(
        tweet("3001", "maya_k", X_POST, now),
        tweet(
            "3002",
            "someone_else",
            "@zephyrshoes typo? my order #88231 shows someone else's address. Terrible.",
            now + timedelta(minutes=5),
        ),
    )
    a, b = case_ids(w.app)
    (s,) = suggestions_for_case(w.app, a)
    with pytest.raises(PermissionDenied):
        reject_suggestion(w.app, s["id"], "mo")
    out = reject_suggestion(w.app, s["id"], "ann")
    assert out["status"] == "rejected" and out["decided_by"] == "ann"
    with pytest.raises(Conflict, match="already rejected"):
        reject_suggestion(w.app, s["id"], "bob")
    with pytest.raises(Conflict, match="already rejected"):
        accept_suggestion(w.app, s["id"], "bob")
    assert events(w.app, min(a, b)).count("link.rejected") == 1
    assert case_view(w.app, a)["status"] != "merged" and case_view(w.app, b)["status"] != "merged"


def test_the_bound_of_a_union_is_the_bound_of_the_bounded_parts() -> None:
    """A long-running case is indexed post by post: its keys so far (bounded) and a new
    post's make the keys of all its posts."""
    first = case_keys(side(1, "x", "maya_k", *[f"order #{30000 + 7 * i}" for i in range(40)]))
    later = case_keys(side(1, "x", "maya_k", "order #29999 and maya@example.org"))
    whole = case_keys(
        side(
            1,
            "x",
            "maya_k",
            *[f"order #{30000 + 7 * i}" for i in range(40)],
            "order #29999 and maya@example.org",
        )
    )
    assert bounded_keys(first | later) == whole


def test_a_follow_up_naming_an_order_in_a_later_poll_is_indexed_and_suggested(
    make_app: Callable[..., App], tmp_path: Path
) -> None:
    now = datetime.now(UTC) - timedelta(hours=5)
    w = World(make_app, tmp_path)
    w.post(
        tweet("1861000101", "maya_k", COMPLAINT.replace("my order #88231", "my boots"), now),
        tweet(
            "1861000102",
            "jo_runs",
            COMPLAINT.replace("#88231", "#77120"),
            now + timedelta(minutes=5),
        ),
    )
    maya, jo = case_ids(w.app)
    assert suggestions_for_case(w.app, maya) == []
    w.post(
        tweet(
            "1861000103",
            "maya_k",
            "@zephyrshoes still nothing. it's order #77120, the one my sister placed for me",
            now + timedelta(minutes=40),
            in_reply_to="1861000101",
        )
    )
    assert case_ids(w.app) == [maya, jo]  # the follow-up joined Maya's case
    (suggestion,) = suggestions_for_case(w.app, maya)
    assert {suggestion["case_id"], suggestion["other_case_id"]} == {maya, jo}
    assert suggestion["evidence"][0]["value"] == "77120"
    with w.app.sessions() as s:
        keys = set(
            s.execute(select(m.LinkKey.kind, m.LinkKey.value).where(m.LinkKey.case_id == maya))
        )
    assert ("order", "77120") in keys and ("self", "maya_k") in keys


def _every_key(text: str) -> set[tuple[str, str]]:
    """keys_of as it was: every pattern run over every text."""
    from listener.cases import linking

    out: set[tuple[str, str]] = set()
    for found in linking._ORDER.finditer(text):
        value = linking._order_value(found.group(1) or found.group(2))
        if value:
            out.add(("order", value))
    out |= {("email", e.lower()) for e in linking._EMAIL.findall(text)}
    for found in linking._ACCOUNT.finditer(text):
        out.add(("account", found.group(1).rstrip(".").lower()))
    for found in linking._PROFILE.finditer(text):
        x, bsky, instance, local = found.groups()
        if x:
            out.add(("account", x.lower()))
        elif bsky:
            out.add(("account", bsky.lower()))
        elif instance and local:
            out.add(("account", f"{local}@{instance}".lower()))
            out.add(("account", local.lower()))
    return out


def test_keys_found_only_where_they_can_be_are_every_key(shared_data: Path) -> None:
    """keys_of runs each pattern only where it can match (four digits, an '@', a '/') and
    keeps short texts' keys: the same keys as running every pattern, on real posts."""
    import csv
    import json

    from listener.cases.linking import keys_of

    with (shared_data / "airline-dev" / "Tweets-dev.csv").open(encoding="utf-8") as fh:
        texts = [r["text"] for r in csv.DictReader(fh)]
    with (shared_data / "twcs-dev" / "inbound.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            texts += [row["text"], row.get("in_reply_to_text") or ""]
    texts += [
        "order #١٢٣٤٥",  # other scripts' digits
        "booking ref AB1234 and ref ABCDEF",
        "mail me: a.b@example.com / x.com/maya_k and @maya@mastodon.social",
        "bsky.app/profile/maya.bsky.social mastodon.social/@maya",
        "1 2 3",
        "ticket K12345 ſ9999",
        "#" + "9" * 30,
        "x" * 3000 + " order 123456",  # a long text: not kept, still found
    ]
    found = 0
    for text in texts:
        want = _every_key(text)
        assert set(keys_of(text)) == want, text
        assert set(keys_of(text)) == want, text  # the kept answer is the same
        found += bool(want)
    assert found > 100
