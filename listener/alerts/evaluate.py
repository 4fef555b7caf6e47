"""The alert use-case: after every poll, decide which alerts hold, store them, notify.

:func:`evaluate` is called by :func:`listener.pipeline.poll_sources` at the end of
every poll — ``listener poll``, the scheduler, Celery workers and the web app all
poll through it — with the poll's outcomes:

1. **read** the hourly rollups of the baseline history and of the window (the
   hours ending within ``alerts.lookback`` of now: posts' own timestamps), the
   sources' state, recent send outcomes from the audit trail and the posts of
   the window (their terms);
2. **decide** with the pure functions of :mod:`listener.alerts.detect` (spikes,
   shifts, term bursts) and :mod:`listener.alerts.conditions` (sources, outbox);
3. **store** in one transaction (:mod:`listener.alerts.store`): open, update or
   re-open the alert of each condition, resolve those whose condition cleared,
   queue one notification per target for each *new* alert;
4. **notify** what is due (:mod:`listener.alerts.notify`).

The baseline history only changes when posts arrive for old hours, so its fits
are kept per process until the history's post count or the hour changes.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import func, select

from listener import models as m
from listener import rollups
from listener.alerts import conditions as cond
from listener.alerts import detect, notify, store
from listener.clock import utcnow
from listener.outage import is_outage
from listener.terms import brand_exclusions, document_frequency, emerging, terms_of

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from listener.app import App
    from listener.pipeline import PollOutcome

log = structlog.get_logger("listener.alerts")

HOUR = timedelta(hours=1)
TERM_SAMPLE = 2000  #: baseline posts read for the usual share of each term
WINDOW_POSTS = 3000  #: window posts read for term bursts (newest first)


@dataclass
class Report:
    """What one evaluation did."""

    changes: list[store.Change] = field(default_factory=list)
    conditions: int = 0
    notifications: dict[str, int] = field(default_factory=dict)

    @property
    def opened(self) -> list[int]:
        return [c.alert_id for c in self.changes if c.action == "opened"]


# ---------------------------------------------------------------------------
# the baseline cache


@dataclass
class _History:
    key: tuple[Any, ...]
    hours: list[datetime]
    scopes: dict[str, detect.Series]
    term_df: Counter[str]
    term_docs: int
    active_hours: dict[int, int]


_cache: dict[int, _History] = {}
_cache_lock = threading.Lock()


def _history(
    session: Session, app: App, start: datetime, end: datetime, names: dict[int, str]
) -> _History:
    fingerprint = session.execute(
        select(func.count(), func.coalesce(func.sum(m.MentionRollup.n), 0)).where(
            m.MentionRollup.hour >= start, m.MentionRollup.hour < end
        )
    ).one()
    key = (start, end, int(fingerprint[0]), int(fingerprint[1]), tuple(sorted(names.items())))
    with _cache_lock:
        hit = _cache.get(id(app.engine))
        if hit is not None and hit.key == key:
            return hit
    rows = rollups.hourly_rows(session, start, end)
    scopes = _scopes(rows, names)
    active: dict[int, set[datetime]] = {}
    for hour, sid, _cat, _lab, n in rows:
        if n > 0:
            active.setdefault(sid, set()).add(hour)
    total = int(fingerprint[1])
    df, docs = _baseline_terms(session, app, start, end, total)
    built = _History(
        key,
        detect.hours_between(start, end),
        scopes,
        df,
        docs,
        {sid: len(hours) for sid, hours in active.items()},
    )
    with _cache_lock:
        _cache[id(app.engine)] = built
    return built


def _scopes(
    rows: Iterable[tuple[datetime, int, str, str, int]], names: dict[int, str]
) -> dict[str, detect.Series]:
    scopes: dict[str, detect.Series] = {"brand": detect.Series()}
    for hour, sid, category, label, n in rows:
        negative = label == "negative"
        scopes["brand"].add(hour, n, negative)
        scopes.setdefault(f"source:{names.get(sid, sid)}", detect.Series()).add(hour, n, negative)
        if category:
            scopes.setdefault(f"category:{category}", detect.Series()).add(hour, n, negative)
    return scopes


def _exclusions(app: App) -> frozenset[str]:
    return brand_exclusions(
        rollups.brand_terms(app.settings).names + app.settings.brand.match_terms
    )


def _baseline_terms(
    session: Session, app: App, start: datetime, end: datetime, total: int
) -> tuple[Counter[str], int]:
    """Document frequency of terms in an evenly spread sample of the history's posts."""
    if total <= 0:
        return Counter(), 0
    step = max(1, total // TERM_SAMPLE)
    stmt = select(m.Mention.text).where(
        m.Mention.published_at >= start, m.Mention.published_at < end
    )
    if step > 1:
        stmt = stmt.where(m.Mention.id % step == 0)
    texts = list(session.scalars(stmt.limit(TERM_SAMPLE * 2)))
    return document_frequency(texts, _exclusions(app)), len(texts)


# ---------------------------------------------------------------------------
# the use-case


def evaluate(app: App, outcomes: Sequence[PollOutcome] = (), now: datetime | None = None) -> Report:
    """Evaluate every alert condition now; store changes; send due notifications."""
    report = Report()
    settings = app.settings
    a = settings.alerts
    if not a.enabled:
        return report
    now = now or utcnow()
    cfg = detect.DetectSettings.from_settings(a)
    configured = {s.name for s in settings.sources if s.enabled}
    with app.sessions() as session:
        sources = {
            r.name: r
            for r in session.scalars(select(m.Source))
            if r.name in configured and r.disabled_reason is None
        }
        names = {r.id: r.name for r in sources.values()}
        window = detect.window_hours(now, a.lookback)
        first = rollups.first_post_hour(session)
        hist_end = window[0]
        hist_start = max(hist_end - _whole_hours(a.baseline), first or hist_end)
        history = _history(session, app, hist_start, hist_end, names)
        window_rows = rollups.hourly_rows(session, hist_end, window[-1] + HOUR)
        scopes = _merge(history.scopes, _scopes(window_rows, names))
        source_scopes = [f"source:{n}" for n in names.values()]
        anomalies = detect.detect(
            scopes,
            history.hours,
            window,
            cfg,
            shifts_for=("brand", *source_scopes),
            own_start=source_scopes,
        )
        detection_ran = len(history.hours) * HOUR >= cfg.min_history
        if detection_ran and history.term_docs:
            anomalies += detect.term_bursts(
                _window_terms(session, app, window), history.term_df, history.term_docs, cfg
            )
        found: list[cond.Condition] = []
        for incident in detect.incidents(anomalies):
            found.append(_incident_condition(session, app, incident, scopes, history, names))
        last_posts = rollups.last_post_hours(session, list(names))
        for name, row in sorted(sources.items()):
            silent = cond.silent_condition(
                cond.SourceState(
                    name=name,
                    source_id=row.id,
                    last_post_hour=last_posts.get(row.id),
                    active_hours=history.active_hours.get(row.id, 0),
                    history_hours=len(history.hours),
                    last_success_at=row.last_success_at,
                    error_count=row.error_count or 0,
                    last_error=row.last_error,
                    last_error_at=row.last_error_at,
                    watched_since=row.created_at,
                ),
                now,
                a.silent_after,
                a.silent_min,
            )
            if silent is not None:
                found.append(silent)
        found += cond.send_conditions(_send_events(session, now - a.lookback), a.send_failures)
    report.conditions = len(found)
    _store(app, found, outcomes, sources, detection_ran, now, report)
    if any(c.action == "opened" for c in report.changes) or notify.targets(settings):
        report.notifications = notify.deliver_due(app, now)
    return report


def _whole_hours(d: timedelta) -> timedelta:
    return timedelta(hours=max(1, int(d.total_seconds() // 3600)))


def _merge(a: dict[str, detect.Series], b: dict[str, detect.Series]) -> dict[str, detect.Series]:
    out = {}
    for scope in set(a) | set(b):
        s = detect.Series()
        for part in (a.get(scope), b.get(scope)):
            if part is not None:
                s.total.update(part.total)
                s.negative.update(part.negative)
        out[scope] = s
    return out


_window_cache: dict[int, dict[tuple[int, str], set[str]]] = {}


def _window_terms(
    session: Session, app: App, window: list[datetime]
) -> dict[datetime, list[set[str]]]:
    """The terms of each post in the window, by hour (a post is tokenised once per process:
    every poll re-reads the window, but only new or edited posts are new work)."""
    rows = session.execute(
        select(m.Mention.id, m.Mention.content_hash, m.Mention.published_at, m.Mention.text)
        .where(m.Mention.published_at >= window[0], m.Mention.published_at < window[-1] + HOUR)
        .order_by(m.Mention.published_at.desc())
        .limit(WINDOW_POSTS)
    ).all()
    excl = _exclusions(app)
    with _cache_lock:
        known = _window_cache.get(id(app.engine), {})
    fresh: dict[tuple[int, str], set[str]] = {}
    out: dict[datetime, list[set[str]]] = {}
    for mid, digest, published, text in rows:
        key = (mid, digest)
        terms = known.get(key)
        if terms is None:
            terms = terms_of(text or "", excl)
        fresh[key] = terms
        out.setdefault(rollups.hour_of(published), []).append(terms)
    with _cache_lock:
        _window_cache[id(app.engine)] = fresh  # only the window's posts are kept
    return out


def _send_events(session: Session, since: datetime) -> list[cond.SendEvent]:
    rows = session.execute(
        select(m.Event.at, m.Event.kind, m.Event.case_id, m.Event.data)
        .where(
            m.Event.kind.in_(("outbox.retry", "outbox.failed", "reply.sent")), m.Event.at >= since
        )
        .order_by(m.Event.at)
    ).all()
    ids = {int(d["outbox_id"]) for _, _, _, d in rows if isinstance(d, dict) and d.get("outbox_id")}
    channels = (
        dict(
            session.execute(
                select(m.OutboxMessage.id, m.OutboxMessage.channel).where(
                    m.OutboxMessage.id.in_(sorted(ids))
                )
            ).all()
        )
        if ids
        else {}
    )
    out = []
    for at, kind, case_id, data in rows:
        data = data if isinstance(data, dict) else {}
        oid = data.get("outbox_id")
        channel = data.get("channel") or (channels.get(int(oid)) if oid is not None else None)
        if kind == "reply.sent" and data.get("manual"):
            continue  # a person posted it by hand: says nothing about the channel
        if channel is None:
            continue
        out.append(
            cond.SendEvent(
                at=at,
                channel=str(channel),
                ok=kind == "reply.sent",
                outbox_id=oid,
                case_id=case_id,
                error=data.get("error"),
            )
        )
    return out


# ---------------------------------------------------------------------------
# explaining a spike or a shift


def _scope_filter(scope: str, names: dict[int, str]) -> list[Any]:
    kind, _, value = scope.partition(":")
    if kind == "source":
        ids = [sid for sid, n in names.items() if n == value]
        return [m.Mention.source_id.in_(ids)]
    if kind == "category":
        return [m.Mention.category == value]
    if kind == "term":
        word = value.split(" ")[0].lstrip("#")
        escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return [m.Mention.text.like(f"%{escaped}%", escape="\\")]
    return []


def _post_dict(row: Any) -> dict[str, Any]:
    text = " ".join((row.text or "").split())
    return {
        "id": row.id,
        "author": row.handle,
        "followers": row.followers,
        "source": row.source,
        "published_at": row.published_at.isoformat(),
        "url": row.url,
        "text": text[:280] + ("…" if len(text) > 280 else ""),
    }


def _posts(session: Session, where: list[Any], order: Any, limit: int) -> list[dict[str, Any]]:
    rows = session.execute(
        select(
            m.Mention.id,
            m.Mention.text,
            m.Mention.url,
            m.Mention.published_at,
            m.Author.handle,
            m.Author.followers,
            m.Source.name.label("source"),
        )
        .join(m.Author, m.Author.id == m.Mention.author_id)
        .join(m.Source, m.Source.id == m.Mention.source_id)
        .where(*where)
        .order_by(*order)
        .limit(limit)
    ).all()
    return [_post_dict(r) for r in rows]


def _breakdown(
    prefix: str,
    hour: datetime,
    scopes: dict[str, detect.Series],
    history: _History,
    limit: int = 5,
) -> list[dict[str, Any]]:
    """The scopes of one kind (categories, sources) furthest above their usual for ``hour``."""
    out: list[dict[str, Any]] = []
    for scope, series in scopes.items():
        if not scope.startswith(prefix):
            continue
        c = series.total.get(hour, 0)
        if not c:
            continue
        base = detect.fit_baseline(history.scopes.get(scope, detect.Series()), history.hours)
        e = base.expected(hour)
        out.append({"name": scope.partition(":")[2], "count": c, "expected": round(e, 1)})
    out.sort(key=lambda d: (-(float(d["count"]) - float(d["expected"])), str(d["name"])))
    return out[:limit]


def _incident_condition(
    session: Session,
    app: App,
    incident: detect.Incident,
    scopes: dict[str, detect.Series],
    history: _History,
    names: dict[int, str],
) -> cond.Condition:
    p = incident.primary
    start = incident.hours[0]
    end = incident.hours[-1] + HOUR
    where = [m.Mention.published_at >= p.hour, m.Mention.published_at < p.hour + HOUR]
    where += _scope_filter(p.scope, names)
    top = _posts(
        session,
        where,
        (m.Author.followers.desc().nulls_last(), m.Mention.published_at),
        3,
    )
    first_where = [m.Mention.published_at >= start, m.Mention.published_at < end]
    first_where += _scope_filter(p.scope, names)
    first = _posts(session, first_where, (m.Mention.published_at, m.Mention.id), 1)
    texts = list(session.scalars(select(m.Mention.text).where(*where).limit(WINDOW_POSTS)))
    df = document_frequency(texts, _exclusions(app))
    terms = emerging(df, len(texts), history.term_df, history.term_docs, 5, min_count=2)
    categories = _breakdown("category:", p.hour, scopes, history)
    sources = _breakdown("source:", p.hour, scopes, history)
    when = f"the hour from {p.hour:%Y-%m-%d %H}:00 UTC ({detect.describe_hour(p.hour)})"
    where_text = "" if p.scope == "brand" else f" in {detect.scope_text(p.scope)}"
    if incident.kind == "spike":
        if p.scope.startswith("term:"):
            lead = (
                f"“{p.scope[5:]}” appeared in {p.count} posts in {when}, "
                f"{_ratio(p)} the {p.expected:.1f} its usual share of posts predicts"
            )
        else:
            lead = (
                f"{p.count} posts{where_text} in {when}, {_ratio(p)} the usual "
                f"{p.expected:.1f} for that hour of the week (+{p.z:.1f} standard deviations)"
            )
        if p.count:
            lead += (
                f"; {p.negative_share:.0%} negative (usually {p.usual_negative_share:.0%})"
                if p.scope != "term" and not p.scope.startswith("term:")
                else ""
            )
        title = (
            f"Spike: {p.count} posts{where_text} in the hour from {p.hour:%H}:00 UTC "
            f"({_ratio(p)} usual)"
        )
        severity = "critical" if p.ratio >= 5 and p.negative_share >= 0.5 else "warning"
    else:
        lead = (
            f"{p.negative_share:.0%} of the {p.count} posts{where_text} in {when} are negative, "
            f"against {p.usual_negative_share:.0%} usually (+{p.z:.1f} standard deviations), "
            "at a normal volume"
        )
        title = (
            f"Negative shift: {p.negative_share:.0%} negative{where_text} in the hour from "
            f"{p.hour:%H}:00 UTC (usually {p.usual_negative_share:.0%})"
        )
        severity = "warning"
    parts = [lead + "."]
    driving = [c for c in categories if c["count"] > c["expected"]]
    if driving:
        parts.append(
            "Driven by "
            + ", ".join(
                f"category {c['name']} ({c['count']} vs {c['expected']} usual)" for c in driving[:3]
            )
            + (
                "; source " + ", ".join(f"{s['name']} ({s['count']})" for s in sources[:2])
                if sources
                else ""
            )
            + "."
        )
    if terms:
        parts.append("Top terms: " + ", ".join(f"“{t.term}” ({t.count})" for t in terms) + ".")
    if len(incident.hours) > 1:
        parts.append(f"Unusual hours: {len(incident.hours)} since {start:%H}:00 UTC.")
    if top:
        t = top[0]
        reach = f"{t['followers']:,} followers" if t["followers"] is not None else "reach unknown"
        parts.append(f"Most reached: @{t['author']} ({reach}): “{t['text']}”.")
    if first:
        f = first[0]
        parts.append(
            f"First post of the burst: @{f['author']} at "
            f"{datetime.fromisoformat(f['published_at']):%H:%M} UTC: “{f['text']}”."
        )
    evidence: dict[str, Any] = {
        "scope": p.scope,
        "hours": [h.isoformat() for h in incident.hours],
        "hour": p.hour.isoformat(),
        "count": p.count,
        "expected": round(p.expected, 2),
        "ratio": None if p.expected <= 0 else round(p.ratio, 2),
        "z": round(p.z, 2),
        "negative": p.negative,
        "negative_share": round(p.negative_share, 3),
        "usual_negative_share": round(p.usual_negative_share, 3),
        "categories": categories,
        "sources": sources,
        "terms": [
            {"term": t.term, "count": t.count, "usual": t.previous, "new": t.new} for t in terms
        ],
        "top_posts": top,
        "first_post": first[0] if first else None,
        "anomalies": [x.as_dict() for x in incident.all[:20]],
        "history_hours": len(history.hours),
    }
    return cond.Condition(
        kind=incident.kind,
        key=incident.kind,
        scope=p.scope,
        title=title,
        explanation=" ".join(parts),
        started_at=start,
        evidence=evidence,
        severity=severity,
    )


def _ratio(a: detect.Anomaly) -> str:
    return "far above" if a.expected <= 0.05 else f"{a.ratio:.1f}×"


# ---------------------------------------------------------------------------
# storing


def _store(
    app: App,
    found: list[cond.Condition],
    outcomes: Sequence[PollOutcome],
    sources: dict[str, m.Source],
    detection_ran: bool,
    now: datetime,
    report: Report,
) -> None:
    a = app.settings.alerts
    by_name = {o.source: o for o in outcomes}
    with app.sessions() as session, session.begin():
        live = store.live_alerts(session)
        # failures this poll saw: auth and quota
        for name, o in by_name.items():
            row = sources.get(name)
            sid = row.id if row is not None else None
            kind = getattr(o, "error_kind", None)
            if kind == "auth":
                prev = live.get(f"source_auth:{name}")
                found.append(
                    cond.auth_condition(
                        name, sid, o.error or "", now, prev.started_at if prev else None
                    )
                )
            elif kind == "quota":
                prev = live.get(f"source_quota:{name}")
                deferrals = 1 + (int((prev.evidence or {}).get("deferrals") or 0) if prev else 0)
                retry_at = o.next_check_at
                if prev is not None and retry_at is not None:
                    old = (prev.evidence or {}).get("retry_at")
                    if old and datetime.fromisoformat(old) == retry_at:
                        deferrals -= 1  # the same deferral seen again, not a new 429
                found.append(
                    cond.quota_condition(
                        name,
                        sid,
                        o.error or "",
                        retry_at,
                        now,
                        prev.started_at if prev else None,
                        max(1, deferrals),
                    )
                )
        keys = {c.key for c in found}
        for c in found:
            change = store.raise_condition(session, c, now, a.cooldown)
            if change is None:
                continue
            report.changes.append(change)
            if change.action == "opened":
                notify.queue_for(session, app.settings, change.alert_id, now)
        # conditions that cleared
        for key, alert in live.items():
            if key in keys:
                continue
            kind, _, name = key.partition(":")
            cleared = False
            if kind in ("spike", "negative_shift"):
                cleared = detection_ran
            elif kind == "source_silent" or kind == "send_failing":
                cleared = True
            elif kind in ("source_auth", "source_quota"):
                seen = by_name.get(name)
                gone = name not in sources
                cleared = gone or (seen is not None and seen.status in ("ok", "not_modified"))
            if cleared:
                report.changes.append(store.resolve_alert(session, alert, now))
    if report.changes:
        log.info(
            "alerts.evaluated",
            opened=len(report.opened),
            changes=[(c.alert_id, c.action) for c in report.changes][:20],
        )


def evaluate_after_poll(app: App, outcomes: Sequence[PollOutcome], now: datetime) -> None:
    """The poll's last step: never lets an alert problem fail the poll."""
    try:
        evaluate(app, outcomes, now)
    except Exception as exc:  # logged; the poll itself succeeded
        if is_outage(exc):
            # the database went away after the poll committed: the scheduler's outage
            # handling reports it once; a traceback here would only repeat it
            log.warning("alerts.evaluation_skipped", reason="a service is unreachable")
            return
        log.error("alerts.evaluation_failed", exc_info=True)
