"""Spike and shift detection: pure functions over hourly counts.

**Baseline.**  For one scope (the whole brand, one source, one category) the
expected count of an hour is learnt from the history before the windows being
judged (``alerts.baseline``, default 28 days):

    expected(h) = mean per hour × hour-of-day factor(h) × day-of-week factor(h)

each factor shrunk towards 1 by a few pseudo-observations (a factor seen once
is not trusted), and — once there are two weeks or more — blended with that
hour of the week's own mean, so "Monday 9:00" is compared with Monday mornings.
Real social counts vary more than Poisson, so the spread is
``expected + (φ·expected)²`` with the over-dispersion φ measured on the same
history.

**Spike.**  An hour is a spike when it has at least ``min_posts`` posts, at
least ``min_ratio`` × expected, and is ``threshold`` standard deviations above
expected.  The current hour counts with what it has so far (compared with a
full hour: it can only be conservative).

**Negative shift.**  An hour whose share of negative posts is
``negative_shift`` above the scope's usual share and ``threshold`` binomial
standard deviations above it, when its volume is *not* a spike (a burst of
complaints is one spike whose explanation gives the negative share, not two
alerts).

**Term burst.**  A term (word or pair of words) used in ``min_posts`` posts of
one hour, at least 3 × (and ``min_ratio`` ×) its usual share of posts, and
``threshold`` deviations above it.

Every :class:`Anomaly` carries the numbers that explain it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

HOUR = timedelta(hours=1)
#: pseudo-observations a seasonal factor is shrunk towards 1 with
PSEUDO_HOURS = 2.0
PSEUDO_DAYS = 1.0
PSEUDO_WEEKS = 1.0
MAX_DISPERSION = 1.5
TERM_MIN_RATIO = 3.0
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class DetectSettings:
    """The detector's knobs (from ``alerts:`` in config.yaml)."""

    threshold: float = 4.0
    min_ratio: float = 2.0
    min_posts: int = 10
    negative_shift: float = 0.25
    lookback: timedelta = timedelta(hours=6)
    baseline: timedelta = timedelta(days=28)
    min_history: timedelta = timedelta(days=3)

    @classmethod
    def from_settings(cls, a: object) -> DetectSettings:
        return cls(
            **{f: getattr(a, f) for f in cls.__dataclass_fields__}  # type: ignore[arg-type]
        )


@dataclass
class Series:
    """Hourly counts of one scope: all posts and negative ones, by UTC hour."""

    total: Counter[datetime] = field(default_factory=Counter)
    negative: Counter[datetime] = field(default_factory=Counter)

    def add(self, hour: datetime, n: int, negative: bool) -> None:
        self.total[hour] += n
        if negative:
            self.negative[hour] += n


def window_hours(now: datetime, lookback: timedelta) -> list[datetime]:
    """The hours that may raise an alert: those ending within ``lookback`` of ``now``
    (the current, unfinished hour included)."""
    current = now.replace(minute=0, second=0, microsecond=0)
    first = (now - lookback).replace(minute=0, second=0, microsecond=0)
    if first + HOUR <= now - lookback:
        first += HOUR
    out = []
    h = first
    while h <= current:
        out.append(h)
        h += HOUR
    return out


def hours_between(start: datetime, end: datetime) -> list[datetime]:
    out = []
    h = start
    while h < end:
        out.append(h)
        h += HOUR
    return out


@dataclass(frozen=True)
class Baseline:
    """What an hour of one scope usually looks like."""

    mean: float  #: posts per hour over the history
    hod: tuple[float, ...]  #: 24 hour-of-day factors
    dow: tuple[float, ...]  #: 7 day-of-week factors
    how: Mapping[int, tuple[float, int]]  #: hour of week → (sum, hours seen) when ≥ 2 weeks
    dispersion: float  #: φ: spread beyond Poisson
    negative_share: float  #: usual share of negative posts
    hours: int  #: hours of history

    def multiplicative(self, hour: datetime) -> float:
        return self.mean * self.hod[hour.hour] * self.dow[hour.weekday()]

    def expected(self, hour: datetime) -> float:
        e = self.multiplicative(hour)
        if self.how:
            s, n = self.how.get(hour.weekday() * 24 + hour.hour, (0.0, 0))
            e = (s + PSEUDO_WEEKS * e) / (n + PSEUDO_WEEKS)
        return e

    def sd(self, expected: float) -> float:
        return math.sqrt(max(1.0, expected + (self.dispersion * expected) ** 2))


def fit_baseline(series: Series, history: Sequence[datetime]) -> Baseline:
    """The baseline of ``series`` learnt from the ``history`` hours (empty hours are zeros)."""
    n = len(history)
    counts = [series.total.get(h, 0) for h in history]
    total = sum(counts)
    mean = total / n if n else 0.0
    if mean <= 0:
        return Baseline(0.0, (1.0,) * 24, (1.0,) * 7, {}, 0.0, 0.0, n)
    s_h, n_h = [0.0] * 24, [0] * 24
    s_d, n_d = [0.0] * 7, [0] * 7
    s_w: dict[int, float] = {}
    n_w: dict[int, int] = {}
    for h, c in zip(history, counts, strict=True):
        s_h[h.hour] += c
        n_h[h.hour] += 1
        s_d[h.weekday()] += c
        n_d[h.weekday()] += 1
        k = h.weekday() * 24 + h.hour
        s_w[k] = s_w.get(k, 0.0) + c
        n_w[k] = n_w.get(k, 0) + 1
    hod = tuple(
        (s_h[i] + PSEUDO_HOURS * mean) / ((n_h[i] + PSEUDO_HOURS) * mean) for i in range(24)
    )
    day = 24 * PSEUDO_DAYS
    dow = tuple((s_d[i] + day * mean) / ((n_d[i] + day) * mean) for i in range(7))
    how = {k: (s_w[k], n_w[k]) for k in s_w} if n >= 24 * 14 else {}
    partial = Baseline(mean, hod, dow, how, 0.0, 0.0, n)
    # over-dispersion by the method of moments: E[(c - e)^2] = e + (φe)^2
    num = den = 0.0
    for h, c in zip(history, counts, strict=True):
        e = partial.expected(h)
        num += (c - e) ** 2 - e
        den += e * e
    phi = math.sqrt(max(0.0, num / den)) if den > 0 else 0.0
    neg = sum(series.negative.get(h, 0) for h in history)
    share = (neg + 1) / (total + 2)
    return Baseline(mean, hod, dow, how, min(phi, MAX_DISPERSION), share, n)


@dataclass(frozen=True)
class Anomaly:
    """One unusual hour of one scope, with the numbers that make it unusual."""

    kind: str  #: "spike" or "negative_shift"
    scope: str  #: "brand", "source:NAME", "category:NAME" or "term:TERM"
    hour: datetime
    count: int
    expected: float
    z: float
    negative: int = 0
    negative_share: float = 0.0
    usual_negative_share: float = 0.0

    @property
    def ratio(self) -> float:
        return self.count / self.expected if self.expected > 0 else float("inf")

    @property
    def excess(self) -> float:
        return self.count - self.expected

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "scope": self.scope,
            "hour": self.hour.isoformat(),
            "count": self.count,
            "expected": round(self.expected, 2),
            "ratio": None if math.isinf(self.ratio) else round(self.ratio, 2),
            "z": round(self.z, 2),
            "negative": self.negative,
            "negative_share": round(self.negative_share, 3),
            "usual_negative_share": round(self.usual_negative_share, 3),
        }


def judge_hour(
    scope: str, hour: datetime, series: Series, base: Baseline, cfg: DetectSettings
) -> Anomaly | None:
    """A spike or a negative shift in ``hour`` of this scope, or None."""
    c = series.total.get(hour, 0)
    neg = series.negative.get(hour, 0)
    if c < cfg.min_posts:
        return None
    e = base.expected(hour)
    z = (c - e) / base.sd(e)
    share = neg / c
    if c >= cfg.min_ratio * e and z >= cfg.threshold:
        return Anomaly("spike", scope, hour, c, e, z, neg, share, base.negative_share)
    p0 = base.negative_share
    if base.mean > 0 and share - p0 >= cfg.negative_shift:
        zs = (neg - c * p0) / math.sqrt(c * p0 * (1 - p0))
        if zs >= cfg.threshold:
            return Anomaly("negative_shift", scope, hour, c, e, zs, neg, share, p0)
    return None


def detect(
    scopes: Mapping[str, Series],
    history: Sequence[datetime],
    window: Sequence[datetime],
    cfg: DetectSettings,
    *,
    shifts_for: Iterable[str] = ("brand",),
    own_start: Iterable[str] = (),
) -> list[Anomaly]:
    """Every anomaly in the ``window`` hours of every scope, against baselines learnt from the
    ``history`` hours (which must come before the window).  History shorter than
    ``cfg.min_history`` detects nothing: too little is known to call anything unusual.
    Negative shifts are judged only for the scopes in ``shifts_for``; the scopes in
    ``own_start`` (sources, which come and go with the configuration) learn only from their
    first post on, so a source added last week is not "usually silent"."""
    if len(history) * HOUR < cfg.min_history:
        return []
    shift_scopes = set(shifts_for)
    trimmed = set(own_start)
    out: list[Anomaly] = []
    for scope, series in scopes.items():
        hours = history
        if scope in trimmed:
            first = min((h for h, n in series.total.items() if n > 0), default=None)
            hours = [h for h in history if first is not None and h >= first]
            if len(hours) * HOUR < cfg.min_history:
                continue
        base = fit_baseline(series, hours)
        for hour in window:
            a = judge_hour(scope, hour, series, base, cfg)
            if a is not None and (a.kind == "spike" or scope in shift_scopes):
                out.append(a)
    return out


def term_bursts(
    window_terms: Mapping[datetime, Sequence[set[str]]],
    baseline_df: Counter[str],
    baseline_docs: int,
    cfg: DetectSettings,
) -> list[Anomaly]:
    """Terms used in far more posts of an hour than their usual share of posts predicts."""
    if baseline_docs <= 0:
        return []
    out: list[Anomaly] = []
    ratio = max(cfg.min_ratio, TERM_MIN_RATIO)
    for hour, docs in window_terms.items():
        n = len(docs)
        if n < cfg.min_posts:
            continue
        counts: Counter[str] = Counter()
        for d in docs:
            counts.update(d)
        for term, c in counts.items():
            if c < cfg.min_posts:
                continue
            p = (baseline_df.get(term, 0) + 0.5) / (baseline_docs + 1)
            e = n * p
            z = (c - e) / math.sqrt(max(1.0, e * (1 - p)))
            if c >= ratio * e and z >= cfg.threshold:
                out.append(Anomaly("spike", f"term:{term}", hour, c, e, z))
    return out


@dataclass(frozen=True)
class Incident:
    """Anomalies that make one alert: the primary one and what drove it."""

    kind: str
    primary: Anomaly
    hours: tuple[datetime, ...]
    drivers: tuple[Anomaly, ...]  #: the other anomalies of the same kind, strongest first
    all: tuple[Anomaly, ...]


def incidents(anomalies: Sequence[Anomaly]) -> list[Incident]:
    """At most one spike incident and one negative-shift incident.

    All spikes in the window are one incident (one alert): its primary anomaly
    is the whole brand's strongest hour if the brand spiked, else the strongest
    of any scope; the rest drive it.  Negative shifts in an hour or scope that
    also spiked are dropped (the spike explains them).
    """
    spikes = [a for a in anomalies if a.kind == "spike"]
    spiked = {(a.scope, a.hour) for a in spikes} | {("brand", a.hour) for a in spikes}
    shifts = [
        a
        for a in anomalies
        if a.kind == "negative_shift"
        and (a.scope, a.hour) not in spiked
        and ("brand", a.hour) not in spiked
    ]
    out = []
    for kind, group in (("spike", spikes), ("negative_shift", shifts)):
        if not group:
            continue
        brand = [a for a in group if a.scope == "brand"]
        primary = max(brand or group, key=lambda a: (a.z, a.count))
        drivers = sorted(
            (a for a in group if a is not primary), key=lambda a: (-a.excess, -a.z, a.scope)
        )
        hours = tuple(sorted({a.hour for a in group}))
        out.append(Incident(kind, primary, hours, tuple(drivers), tuple(group)))
    return out


def describe_hour(hour: datetime) -> str:
    """'Tuesday 14:00 UTC'."""
    return f"{WEEKDAYS[hour.weekday()]} {hour:%H}:00 UTC"


def scope_text(scope: str) -> str:
    kind, _, name = scope.partition(":")
    return {
        "brand": "all mentions",
        "source": f"source {name}",
        "category": f"category {name}",
        "term": f"term “{name}”",
    }.get(kind, scope)
