"""The pure parts of alerting: seasonal baseline, spikes, shifts, term bursts, incidents, and
the source/outbox health deciders — on synthetic series and on replayed real tweets."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import replay

from listener.alerts import conditions as cond
from listener.alerts import detect
from listener.errors import RateLimited, SourceFailing, SourceGone, TransientError
from listener.terms import brand_exclusions, document_frequency, emerging, terms_of, top_terms

CFG = detect.DetectSettings()
HOUR = timedelta(hours=1)


def series_of(posts: list[dict[str, Any]], negative: set[str] | None = None) -> detect.Series:
    s = detect.Series()
    for p in posts:
        at = datetime.fromisoformat(p["created_at"]).replace(minute=0, second=0, microsecond=0)
        s.add(at, 1, p["id"] in (negative or set()))
    return s


def split(now: datetime, cfg: detect.DetectSettings = CFG) -> tuple[list[datetime], list[datetime]]:
    window = detect.window_hours(now, cfg.lookback)
    start = window[0] - cfg.baseline
    return detect.hours_between(start, window[0]), window


def test_window_hours_are_those_ending_within_the_lookback() -> None:
    now = datetime(2026, 11, 24, 14, 20, tzinfo=UTC)
    hours = detect.window_hours(now, timedelta(hours=6))
    assert hours[0] == datetime(2026, 11, 24, 8, tzinfo=UTC)  # ends 9:00, after 8:20
    assert hours[-1] == datetime(2026, 11, 24, 14, tzinfo=UTC)  # the current hour
    assert len(hours) == 7
    exact = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
    assert detect.window_hours(exact, timedelta(hours=6))[0] == datetime(
        2026, 11, 24, 8, tzinfo=UTC
    )


def weekly_series(weeks: int, now: datetime, rnd: random.Random) -> detect.Series:
    """A busy Monday-morning rhythm: Mondays 8–11 UTC have 6× the posts of other hours."""
    s = detect.Series()
    h = (now - timedelta(weeks=weeks)).replace(minute=0, second=0, microsecond=0)
    while h <= now:
        lam = 6.0 if h.weekday() == 0 and 8 <= h.hour <= 11 else 1.0
        lam *= 3
        s.add(h, int(rnd.gauss(lam, lam**0.5) + 0.5) if lam > 0 else 0, False)
        h += HOUR
    return s


def test_monday_mornings_do_not_alert_but_a_real_spike_does() -> None:
    now = datetime(2026, 11, 23, 10, 30, tzinfo=UTC)  # a Monday
    assert now.weekday() == 0
    s = weekly_series(4, now, random.Random(1))
    history, window = split(now)
    # the usual Monday-morning rush is expected
    assert detect.detect({"brand": s}, history, window, CFG) == []
    base = detect.fit_baseline(s, history)
    assert base.expected(now.replace(minute=0)) > 3 * base.expected(
        (now + timedelta(days=1)).replace(minute=0)
    )
    # the same count on a Tuesday morning is a spike, with its numbers
    tuesday = now + timedelta(days=1)
    s2 = weekly_series(4, tuesday, random.Random(1))
    s2.total[tuesday.replace(minute=0)] = 18
    history, window = split(tuesday)
    found = detect.detect({"brand": s2}, history, window, CFG)
    assert [(a.kind, a.scope, a.hour) for a in found] == [
        ("spike", "brand", tuesday.replace(minute=0))
    ]
    a = found[0]
    assert a.count == 18 and 2 <= a.expected <= 4.5 and a.ratio >= 4 and a.z >= CFG.threshold


def test_spike_rules_min_posts_ratio_and_history() -> None:
    now = datetime(2026, 11, 25, 15, 10, tzinfo=UTC)
    s = detect.Series()
    for h in detect.hours_between((now - timedelta(days=10)).replace(minute=0), now):
        s.add(h, 1, False)
    history, window = split(now)
    s.total[window[-1]] = 9  # 9× usual but under min_posts
    assert detect.detect({"brand": s}, history, window, CFG) == []
    s.total[window[-1]] = 12
    assert [a.kind for a in detect.detect({"brand": s}, history, window, CFG)] == ["spike"]
    # two days of history are not enough to call anything unusual
    short = history[-48:]
    assert detect.detect({"brand": s}, short, window, CFG) == []
    # a burst in an hour outside the lookback (a backfill) is never judged
    old = window[0] - timedelta(hours=30)
    s.total[window[-1]] = 1
    s.total[old] = 500
    assert detect.detect({"brand": s}, history, window, CFG) == []


def test_negative_shift_at_normal_volume_and_folded_into_a_spike() -> None:
    now = datetime(2026, 11, 26, 12, 40, tzinfo=UTC)
    s = detect.Series()
    rnd = random.Random(3)
    for h in detect.hours_between((now - timedelta(days=14)).replace(minute=0), now):
        n = 20
        s.add(h, n, False)
        s.negative[h] = sum(rnd.random() < 0.2 for _ in range(n))
    history, window = split(now)
    h = window[-1]
    s.total[h], s.negative[h] = 22, 17  # normal volume, 77 % negative (usually ~20 %)
    found = detect.detect({"brand": s}, history, window, CFG)
    assert [a.kind for a in found] == ["negative_shift"]
    assert found[0].usual_negative_share == pytest.approx(0.2, abs=0.03)
    (incident,) = detect.incidents(found)
    assert incident.kind == "negative_shift"
    # with the volume spiking too, the complaints are one spike, not two alerts
    s.total[h], s.negative[h] = 90, 80
    found = detect.detect(
        {"brand": s, "source:x": s}, history, window, CFG, shifts_for=["brand", "source:x"]
    )
    kinds = [i.kind for i in detect.incidents(found)]
    assert kinds == ["spike"]


def test_replayed_quiet_week_raises_nothing_at_any_hour(shared_data: Path) -> None:
    tweets = replay.airline_tweets(shared_data)
    start = datetime(2026, 11, 30, 0, 17, tzinfo=UTC)
    for offset in range(0, 24 * 7, 7):  # "now" at many hours of the week
        now = start + timedelta(hours=offset)
        posts = replay.week(tweets, now, days=8, seed=offset)
        negative = {p["id"] for p in posts if "late" in p["text"].lower()}
        history, window = split(now)
        first = min(datetime.fromisoformat(p["created_at"]) for p in posts).replace(minute=0)
        history = [h for h in history if h >= first]  # as evaluate() does: from the first post
        found = detect.detect({"brand": series_of(posts, negative)}, history, window, CFG)
        assert found == [], (now, found)
        texts = [p["text"] for p in posts]
        excl = brand_exclusions(["United", "@united"])
        window_terms: dict[datetime, list[set[str]]] = {}
        for p in posts:
            at = datetime.fromisoformat(p["created_at"]).replace(minute=0, second=0, microsecond=0)
            if at >= window[0]:
                window_terms.setdefault(at, []).append(terms_of(p["text"], excl))
        base = [p["text"] for p in posts if p["created_at"] < window[0].isoformat()]
        bursts = detect.term_bursts(window_terms, document_frequency(base, excl), len(base), CFG)
        assert bursts == [], (now, bursts)
        assert texts


def test_replayed_burst_of_complaints_is_one_spike(shared_data: Path) -> None:
    tweets = replay.airline_tweets(shared_data)
    now = datetime(2026, 12, 1, 15, 40, tzinfo=UTC)
    posts = replay.week(tweets, now, days=8) + replay.burst(tweets, now, 60)
    history, window = split(now)
    first = min(datetime.fromisoformat(p["created_at"]) for p in posts).replace(minute=0)
    history = [h for h in history if h >= first]
    s = series_of(posts, {p["id"] for p in posts if p["id"].startswith("b")})
    found = detect.detect({"brand": s}, history, window, CFG)
    (incident,) = detect.incidents(found)
    assert incident.kind == "spike" and incident.primary.hour == now.replace(minute=0)
    assert incident.primary.count >= 60 and incident.primary.ratio > 3


def test_term_burst_and_terms() -> None:
    excl = brand_exclusions(["Zephyr Shoes", "@zephyrshoes"])
    assert terms_of("@zephyrshoes My Zephyr Shoes LOST luggage!! https://t.co/x #Recall", excl) == {
        "lost",
        "luggage",
        "lost luggage",
        "#recall",
    }
    hour = datetime(2026, 11, 30, 10, tzinfo=UTC)
    docs = [{"recall", "sole"} for _ in range(15)] + [{"order"} for _ in range(25)]
    base = Counter({"order": 400, "sole": 300, "recall": 1})
    found = detect.term_bursts({hour: docs}, base, 1000, CFG)
    assert [a.scope for a in found] == ["term:recall"]
    df_now = Counter({"recall": 15, "order": 25, "sole": 15})
    rising = emerging(df_now, 40, base, 1000, 5)
    assert rising[0].term == "recall" and rising[0].previous == 1
    assert [
        t.term for t in top_terms(Counter({"lost luggage": 9, "lost": 10, "luggage": 9, "bag": 3}))
    ] == [
        "lost luggage",
        "bag",
    ]


def test_incidents_pick_the_brand_and_keep_drivers() -> None:
    h = datetime(2026, 11, 30, 10, tzinfo=UTC)
    a = detect.Anomaly("spike", "category:billing", h, 40, 2.0, 12.0)
    b = detect.Anomaly("spike", "brand", h, 60, 20.0, 8.0)
    c = detect.Anomaly("spike", "term:refund", h + HOUR, 30, 1.0, 20.0)
    (i,) = detect.incidents([a, b, c])
    assert i.primary is b and i.drivers == (a, c) and len(i.hours) == 2


# ---------------------------------------------------------------------------
# sources and sending


def test_failure_kinds_from_collector_errors() -> None:
    assert cond.failure_kind(RateLimited("429", None)) == "quota"
    assert (
        cond.failure_kind(SourceFailing("https://f.example/x: HTTP 401: access denied")) == "auth"
    )
    assert cond.failure_kind(SourceFailing("X rejected the bearer token (401): check X")) == "auth"
    assert cond.failure_kind(SourceFailing("X refused search (403): nope")) == "auth"
    assert cond.failure_kind(SourceFailing("https://f.example/x: HTTP 404: not found")) == "failing"
    assert cond.failure_kind(SourceGone("410")) == "gone"
    assert cond.failure_kind(TransientError("HTTP 503")) == "transient"
    assert cond.failure_kind(ValueError("bug")) == "internal"


def test_quota_is_failing_only_after_its_window_or_when_repeated() -> None:
    now = datetime(2026, 11, 30, 10, tzinfo=UTC)
    ev = {"retry_at": (now + timedelta(minutes=10)).isoformat(), "deferrals": 1}
    grace = timedelta(minutes=15)
    assert not cond.quota_failing(ev, now, grace)
    assert not cond.quota_failing(ev, now + timedelta(minutes=20), grace)
    assert cond.quota_failing(ev, now + timedelta(minutes=26), grace)
    assert cond.quota_failing({**ev, "deferrals": 2}, now, grace)


def test_silent_source() -> None:
    now = datetime(2026, 11, 30, 20, tzinfo=UTC)
    state = cond.SourceState(
        name="blog",
        source_id=1,
        last_post_hour=now - timedelta(hours=10),
        active_hours=300,  # a post most hours: usual gap ~2.2 h
        history_hours=672,
        last_success_at=now - timedelta(minutes=5),
        error_count=0,
        last_error=None,
        last_error_at=None,
    )
    c = cond.silent_condition(state, now, 4, timedelta(hours=2))
    assert c is not None and c.kind == "source_silent" and "no posts for 9 h" in c.title
    recent = cond.SourceState(**{**state.__dict__, "last_post_hour": now - timedelta(hours=3)})
    assert cond.silent_condition(recent, now, 4, timedelta(hours=2)) is None
    rare = cond.SourceState(**{**state.__dict__, "active_hours": 20})  # one post in 1.4 days
    assert cond.silent_condition(rare, now, 4, timedelta(hours=2)) is None
    failing = cond.SourceState(
        **{**state.__dict__, "error_count": 5, "last_error": "HTTP 404: not found"}
    )
    c = cond.silent_condition(failing, now, 4, timedelta(hours=2))
    assert c is not None and "5 failed polls" in c.title and "404" in c.explanation


def test_send_failing_until_a_send_succeeds() -> None:
    t = datetime(2026, 11, 30, 10, tzinfo=UTC)
    fails = [
        cond.SendEvent(t + timedelta(minutes=i), "email", False, i, 7, "SMTP 451") for i in range(3)
    ]
    (c,) = cond.send_conditions(fails, 3)
    assert c.key == "send_failing:email" and c.evidence["failures"] == 3
    assert cond.send_conditions(fails[:2], 3) == []
    ok = cond.SendEvent(t + timedelta(minutes=9), "email", True, 9, 8)
    assert cond.send_conditions([*fails, ok], 3) == []
