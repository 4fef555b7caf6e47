"""The poll use-case: collect → dedupe and store → classify → triage → draft.

``poll_sources`` is the one function the CLI, the scheduler, the web app and
the workers call.  Collection runs concurrently (I/O only, no database);
storing runs one source at a time, each in **one transaction** that writes the
mentions, their classifications, cases and drafts *and* the source's new poll
state.  A crash mid-poll therefore loses nothing and duplicates nothing: the
state (ETag, since_id, file offset) only advances together with the data.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import structlog
from sqlalchemy import TypeDecorator, bindparam, func, insert, inspect, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import instance_state, set_committed_value

from listener import models as m
from listener import rollups
from listener.alerts.conditions import failure_kind
from listener.cases import followup, linking
from listener.cases.batch import (
    BatchReads,
    add_numbered,
    attach,
    batch_of,
    first_post_of,
    reading,
    record_event,
    reserve_ids,
)
from listener.cases.followup import Follow, Redraft
from listener.cases.offering import (
    context_of,
    decide_for_case,
    draft_context_for,
    offers_event_data,
    reading_inputs,
    suggest_for_case,
    top_offer_context,
    understand_mention,
)
from listener.cases.status import CLOSED, OPEN, CaseStatus
from listener.classified import Classified, ClassifyFailed, settled
from listener.cleaning import clean_posts, reject
from listener.clock import utcnow
from listener.collectors import (
    CollectContext,
    CollectResult,
    PollState,
    Post,
    Rejected,
    get_collector,
    platform_of,
)
from listener.config import Settings, SourceSettings
from listener.db import insert_rows
from listener.drafting import channel_for, render
from listener.errors import (
    CollectorError,
    RateLimited,
    SourceFailing,
    SourceGone,
    TemplateError,
)
from listener.gcpause import fewer_collections
from listener.language import detect_language
from listener.outage import is_outage
from listener.quarantine import record as record_quarantine
from listener.readahead import Ahead
from listener.readahead import warm as warm_readers
from listener.redact import mask_text
from listener.scheduling import jittered, next_check_after_error
from listener.triage import Triage, TriageInput, score_case, sla_due
from listener.understanding import Understanding, may_ask_refund_or_fail

if TYPE_CHECKING:
    from classifiers import Prediction
    from listener.app import App

log = structlog.get_logger("listener.pipeline")
_Row = TypeVar("_Row", bound=m.Base)

OPEN_STATUSES = OPEN  # kept for callers; the statuses live in listener.cases.status
CLOSED_STATUSES = CLOSED
SYSTEM_ACTOR = "listener"


@dataclass
class PollOutcome:
    """What happened to one source in one poll (printed by the CLI, returned by the API)."""

    source: str
    status: str  # ok | not_modified | error | deferred | disabled | skipped
    fetched: int = 0
    new: int = 0
    updated: int = 0
    cases_opened: int = 0
    drafts: int = 0
    quarantined: int = 0
    error: str | None = None
    #: quota | auth | gone | failing | transient | internal (see listener.alerts.conditions)
    error_kind: str | None = None
    problems: list[str] = field(default_factory=list)
    duration_ms: float = 0.0
    #: milliseconds per stage of storing: clean, classify, store (drafts included); and,
    #: within store on the set-based path, triage, drafts (first drafts) and followups
    stage_ms: dict[str, float] = field(default_factory=dict)
    #: set-based path: posts sent to be read in the parse processes ("sent") and readings
    #: triage took from them ("used"); empty when none were sent (listener.readahead)
    read_ahead: dict[str, int] = field(default_factory=dict)
    next_check_at: datetime | None = None

    def add_stage(self, name: str, ms: float) -> None:
        """Count ``ms`` milliseconds more in stage ``name`` (a batch stored in parts adds up)."""
        self.stage_ms[name] = self.stage_ms.get(name, 0.0) + ms

    def as_dict(self) -> dict[str, Any]:
        d = self.__dict__.copy()
        d["next_check_at"] = self.next_check_at.isoformat() if self.next_check_at else None
        return d


# ---------------------------------------------------------------------------
# sources


def sync_sources(app: App, now: datetime | None = None) -> None:
    """Make the ``sources`` table match config.yaml (new rows, enabled flags, moved URLs)."""
    now = now or utcnow()
    with app.sessions() as session, session.begin():
        rows = {s.name: s for s in session.scalars(select(m.Source))}
        for cfg in app.settings.sources:
            row = rows.get(cfg.name)
            location = cfg.location
            if row is None:
                session.add(
                    m.Source(
                        name=cfg.name,
                        type=cfg.type,
                        config_location=location,
                        url=cfg.url,
                        enabled=cfg.enabled,
                        cursor={},
                        created_at=now,
                    )
                )
                continue
            if row.type != cfg.type or row.config_location != location:
                # the operator pointed the source elsewhere: start its state afresh
                row.type, row.config_location, row.url = cfg.type, location, cfg.url
                row.etag = row.last_modified = row.since_id = None
                row.cursor = {}
                row.disabled_reason = None
                row.error_count = 0
                row.last_error = None
                row.next_check_at = None
            row.enabled = cfg.enabled


def _state_of(row: m.Source) -> PollState:
    return PollState(
        url=row.url,
        etag=row.etag,
        last_modified=row.last_modified,
        since_id=row.since_id,
        cursor=dict(row.cursor or {}),
    )


def next_regular_check(
    now: datetime, interval: timedelta, jitter: float, rng: random.Random
) -> datetime:
    """Now + interval, spread by ±jitter so sources do not all fire together."""
    return now + jittered(interval, jitter, rng)


def due_sources(app: App, now: datetime | None = None) -> list[str]:
    """Names of enabled sources whose next check has come."""
    now = now or utcnow()
    names = {s.name for s in app.settings.sources if s.enabled}
    with app.sessions() as session:
        rows = session.scalars(select(m.Source).where(m.Source.name.in_(names))).all()
        return sorted(
            r.name
            for r in rows
            if r.disabled_reason is None and (r.next_check_at is None or r.next_check_at <= now)
        )


# ---------------------------------------------------------------------------
# the use-case


def poll_sources(
    app: App,
    names: Iterable[str] | None = None,
    *,
    due_only: bool = False,
    now: Callable[[], datetime] = utcnow,
    rng: random.Random | None = None,
    on_result: Callable[[PollOutcome], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    sync: bool = True,
) -> list[PollOutcome]:
    """Poll sources (all enabled ones, ``names``, or only those due) and store what is new.

    ``sync=False`` skips :func:`sync_sources` (a write over every source row):
    for callers whose source rows are known to exist and be current, like a
    worker polling the one source it has just claimed.
    """
    settings = app.settings
    rng = rng or random.Random()
    if sync:
        sync_sources(app, now())
    if names is None:
        wanted = due_sources(app, now()) if due_only else [s.name for s in settings.sources]
    else:
        wanted = list(dict.fromkeys(names))
        for name in wanted:
            settings.source(name)  # NotFound for a typo
    outcomes: list[PollOutcome] = []

    with app.sessions() as session:
        rows = {
            r.name: r for r in session.scalars(select(m.Source).where(m.Source.name.in_(wanted)))
        }
    jobs: list[tuple[SourceSettings, PollState]] = []
    for name in wanted:
        cfg, row = settings.source(name), rows[name]
        if not cfg.enabled:
            outcomes.append(
                _report(PollOutcome(name, "skipped", error="disabled in config"), on_result)
            )
        elif row.disabled_reason:
            outcomes.append(
                _report(PollOutcome(name, "disabled", error=row.disabled_reason), on_result)
            )
        else:
            jobs.append((cfg, _state_of(row)))
    if not jobs:
        return outcomes

    ctx = CollectContext(settings=settings)
    workers = max(1, min(settings.polling.max_concurrency, len(jobs)))
    started: dict[str, float] = {}

    def run(cfg: SourceSettings, state: PollState) -> CollectResult:
        started[cfg.name] = time.perf_counter()
        return get_collector(cfg.type).collect(cfg, state, ctx)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="collect") as pool:
        futures: dict[Future[CollectResult], SourceSettings] = {
            pool.submit(run, cfg, state): cfg for cfg, state in jobs
        }
        try:
            for future in as_completed(futures):
                cfg = futures[future]
                t0 = started.get(cfg.name, time.perf_counter())
                try:
                    result = future.result()
                except Exception as exc:  # recorded on the source, never raised
                    outcome = record_failure(app, cfg, exc, now(), rng)
                else:
                    outcome = ingest(app, cfg, result, now=now(), rng=rng)
                outcome.duration_ms = (time.perf_counter() - t0) * 1000
                outcomes.append(_report(outcome, on_result))
                if should_stop is not None and should_stop():
                    for f in futures:
                        f.cancel()
                    break
        finally:
            for closer in ctx.shared.get("closers", []):
                try:
                    closer()
                except Exception:  # pragma: no cover - best effort
                    log.warning("collector.close_failed", exc_info=True)
    from listener.alerts.evaluate import evaluate_after_poll

    evaluate_after_poll(app, outcomes, now())
    return outcomes


def _report(outcome: PollOutcome, on_result: Callable[[PollOutcome], None] | None) -> PollOutcome:
    if on_result is not None:
        on_result(outcome)
    return outcome


def poll_source(app: App, name: str, **kwargs: Any) -> PollOutcome:
    """Poll one source by name."""
    return poll_sources(app, [name], **kwargs)[0]


# ---------------------------------------------------------------------------
# failures


def record_failure(
    app: App, cfg: SourceSettings, exc: BaseException, now: datetime, rng: random.Random
) -> PollOutcome:
    """Record a failed poll on the source and decide when to try again."""
    polling = app.settings.polling
    bound = log.bind(source=cfg.name)
    with app.sessions() as session, session.begin():
        row = session.scalars(select(m.Source).where(m.Source.name == cfg.name)).one()
        row.last_polled_at = now
        row.polls_total = (row.polls_total or 0) + 1
        message = mask_text(str(exc) or exc.__class__.__name__)
        if isinstance(exc, RateLimited):
            retry_at = exc.retry_at or (now + polling.backoff_base)
            row.next_check_at = max(retry_at, now + timedelta(seconds=1))
            row.warning = f"rate limited: {message}"
            status = "deferred"
            bound.info("poll.deferred", retry_at=row.next_check_at.isoformat(), reason=message)
        elif isinstance(exc, SourceGone):
            row.disabled_reason = message
            row.last_error, row.last_error_at = message, now
            row.error_count = (row.error_count or 0) + 1
            row.next_check_at = None
            status = "disabled"
            session.add(
                m.Event(
                    actor=SYSTEM_ACTOR,
                    kind="source.disabled",
                    source_id=row.id,
                    data={"reason": message},
                    at=now,
                )
            )
            bound.warning("poll.source_gone", reason=message)
        else:
            if not isinstance(exc, CollectorError):
                message = mask_text(f"internal error: {exc.__class__.__name__}: {exc}")
                bound.error("poll.crashed", exc_info=exc)
            else:
                bound.warning("poll.failed", error=message, kind=exc.__class__.__name__)
            row.error_count = (row.error_count or 0) + 1
            row.last_error, row.last_error_at = message, now
            delay = next_check_after_error(
                row.error_count, polling.backoff_base, polling.backoff_max, polling.jitter, rng
            )
            if isinstance(exc, SourceFailing):
                delay = max(delay, min(cfg.interval, polling.backoff_max))
            row.next_check_at = now + delay
            status = "error"
        return PollOutcome(
            cfg.name,
            status,
            error=message,
            error_kind=failure_kind(exc),
            next_check_at=row.next_check_at,
        )


# ---------------------------------------------------------------------------
# storing


def _platform(cfg: SourceSettings, post: Post) -> str:
    platform = post.raw.get("platform") if isinstance(post.raw, dict) else None
    return str(platform or platform_of(cfg.type))


def _existing(session: Session, source_id: int, ids: list[str]) -> dict[str, tuple[int, str]]:
    found: dict[str, tuple[int, str]] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        stmt = select(m.Mention.external_id, m.Mention.id, m.Mention.content_hash).where(
            m.Mention.source_id == source_id, m.Mention.external_id.in_(chunk)
        )
        for ext, mid, h in session.execute(stmt):
            found[ext] = (mid, h)
    return found


def ingest(
    app: App,
    cfg: SourceSettings,
    result: CollectResult,
    *,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> PollOutcome:
    """Store one collect result: mentions, classifications, cases, drafts and poll state.

    The quarantine seam: every post is cleaned first (:mod:`listener.cleaning`)
    and a post that cannot be cleaned, classified or stored is quarantined
    (:mod:`listener.quarantine`) with the collector's own rejects, in the same
    transaction that stores the others and advances the source's state.  A
    batch that fails to store is stored again one post per savepoint, so only
    the posts that fail alone are quarantined.  An outage (the database is
    unreachable) is not the posts' fault: it propagates and nothing advances.
    """
    now = now or utcnow()
    rng = rng or random.Random()
    t0 = time.perf_counter()
    posts, rejected = clean_posts(result.posts, app.settings.limits, now)
    rejected = [*result.rejected, *rejected]
    with app.sessions() as session:
        source_id = session.scalars(select(m.Source.id).where(m.Source.name == cfg.name)).one()
        known = _existing(session, source_id, [p.external_id for p in posts])
    fresh = [p for p in posts if known.get(p.external_id, (0, ""))[1] != p.content_hash]
    fresh = [replace(p, detected_lang=detect_language(p.full_text or p.text)) for p in fresh]
    fresh.sort(key=lambda p: p.published_at)  # stored (and triaged) in the order written
    t1 = time.perf_counter()
    polling = app.settings.polling
    if polling.store_in_bulk:
        warm_readers(app.settings, len(fresh))  # listener.readahead
    classified = Classified.start(
        app, fresh, rejected, part=polling.classify_part if polling.store_in_bulk else 0
    )
    t2 = time.perf_counter()

    per_row = False
    for attempt in range(3):
        try:
            with fewer_collections():  # a batch's garbage is acyclic: see listener.gcpause
                outcome = _store(app, cfg, result, classified, rejected, now, rng, per_row)
            outcome.stage_ms = {
                "clean": (t1 - t0) * 1000,
                "classify": classified.seconds * 1000,
                "store": (time.perf_counter() - t2) * 1000,
                **outcome.stage_ms,
            }
            return outcome
        except ClassifyFailed as exc:
            raise exc.error from None  # the model's failure, not the posts'
        except IntegrityError as exc:
            if per_row:
                raise
            if attempt == 0:
                # someone else stored some of these mentions in between: re-read, retry once
                fresh, predictions = settled(classified)
                with app.sessions() as session:
                    known = _existing(session, source_id, [p.external_id for p in fresh])
                fresh = [p for p in fresh if known.get(p.external_id, (0, ""))[1] != p.content_hash]
                classified = Classified.done(fresh, predictions, classified.seconds)
                continue
            error: Exception = exc
        except Exception as exc:
            if per_row or is_outage(exc) or not any(classified.parts):
                raise
            error = exc
        log.warning(
            "poll.batch_failed",
            source=cfg.name,
            error=f"{type(error).__name__}: {error}"[:300],
            action="storing one post at a time",
        )
        per_row = True
    raise AssertionError("unreachable")  # pragma: no cover


def _store(
    app: App,
    cfg: SourceSettings,
    result: CollectResult,
    classified: Classified,
    rejected: list[Rejected],
    now: datetime,
    rng: random.Random,
    per_row: bool = False,
) -> PollOutcome:
    """One transaction: the posts, the quarantined items and the source's new state.

    ``per_row``: each post in its own savepoint; one that fails is quarantined
    (unless every post of a batch of two or more fails: then the failure is not
    the posts' and it propagates).
    """
    settings = app.settings
    outcome = PollOutcome(
        cfg.name,
        "not_modified" if result.not_modified else "ok",
        fetched=len(result.posts),
        problems=list(result.problems),
    )
    bound = log.bind(source=cfg.name)
    failed: list[Rejected] = []
    with app.sessions() as session, session.begin():
        src = session.scalars(select(m.Source).where(m.Source.name == cfg.name)).one()
        ids = [p.external_id for part in classified.parts for p in part]
        known = _existing(session, src.id, ids)
        authors: dict[tuple[str, str], m.Author] = {}
        counts = rollups.Batch.for_settings(settings)
        first_error: Exception | None = None
        bulk = not per_row and settings.polling.store_in_bulk
        drafting = Drafting()
        if bulk:
            # part by part as each is classified: each part's drafts after its triage; the
            # batch's reads are shared by the parts (one transaction)
            reads: BatchReads | None = None
            ahead = Ahead()  # posts read in the parse processes meanwhile (listener.readahead)
            try:
                for part, predictions in classified:
                    reads = _store_bulk(
                        session,
                        settings,
                        cfg,
                        src,
                        part,
                        predictions,
                        known,
                        outcome,
                        counts,
                        now,
                        Drafting(),
                        reads,
                        ahead,
                    )
            finally:
                if ahead.sent:
                    outcome.read_ahead = {"sent": ahead.sent, "used": ahead.hits}
                ahead.close()
            fresh: list[Post] = []
        else:
            fresh, predictions = classified.all()
        for post in sorted(fresh, key=lambda p: p.published_at):
            if not per_row:
                _store_post(
                    session,
                    settings,
                    cfg,
                    src,
                    post,
                    predictions,
                    known,
                    authors,
                    outcome,
                    counts,
                    now,
                    drafting,
                )
                continue
            cached, queued = dict(authors), drafting.copy()
            try:
                with session.begin_nested():
                    _store_post(
                        session,
                        settings,
                        cfg,
                        src,
                        post,
                        predictions,
                        known,
                        authors,
                        outcome,
                        counts,
                        now,
                        drafting,
                    )
            except Exception as exc:
                if is_outage(exc):
                    raise
                authors.clear()
                authors.update(cached)
                drafting = queued
                first_error = first_error or exc
                failed.append(
                    reject(post, f"cannot be stored: {type(exc).__name__}: {exc}", "store")
                )
        if per_row and failed and len(failed) == len(fresh) > 1 and first_error is not None:
            raise first_error
        if not bulk:
            write_drafts(session, settings, cfg, drafting, outcome, now, per_row=per_row)
        rollups.record(session, counts)
        outcome.quarantined = record_quarantine(session, src, [*rejected, *failed], now)
        _advance_state(src, cfg, result, settings, outcome, now, rng)
        outcome.next_check_at = src.next_check_at
    bound.info(
        "poll.stored",
        status=outcome.status,
        new=outcome.new,
        updated=outcome.updated,
        cases=outcome.cases_opened,
        quarantined=outcome.quarantined,
    )
    return outcome


def _store_post(
    session: Session,
    settings: Settings,
    cfg: SourceSettings,
    src: m.Source,
    post: Post,
    predictions: dict[str, Prediction],
    known: dict[str, tuple[int, str]],
    authors: dict[tuple[str, str], m.Author],
    outcome: PollOutcome,
    counts: rollups.Batch,
    now: datetime,
    drafting: Drafting,
) -> None:
    """Store one post: its author, mention, classification and case (its draft is queued
    on ``drafting``).

    ``outcome`` and the rollup ``counts`` are counted only once everything is
    written (a savepoint that fails leaves them as they were).
    """
    pred = predictions[post.external_id]
    author = _upsert_author(session, authors, _platform(cfg, post), post, now)
    existing = known.get(post.external_id)
    new = updated = 0
    uncounted: rollups.Counted | None = None
    if existing is None:
        mention = _new_mention(src, author, post, now)
        session.add(mention)
        session.flush()
        new = 1
    else:
        mention = session.get_one(m.Mention, existing[0])
        if mention.content_hash == post.content_hash:
            return
        uncounted = rollups.counted(mention, counts.terms)
        _update_mention(mention, post, now)
        updated = 1
        record_event(
            session,
            actor=SYSTEM_ACTOR,
            kind="mention.edited",
            at=now,
            mention_id=mention.id,
            case_id=mention.case_id,
            data={"edit_count": mention.edit_count},
        )
    apply_prediction(session, mention, pred, now)
    log.debug(
        "mention.stored",
        source=cfg.name,
        mention_id=mention.id,
        label=pred.label,
        unhappy=pred.unhappy,
    )
    opened = _triage_mention(session, settings, cfg, src, mention, author, pred, now, drafting)
    session.flush()
    if uncounted is not None:
        counts.removed.append(uncounted)
    counts.added.append(rollups.counted(mention, counts.terms))
    outcome.new += new
    outcome.updated += updated
    outcome.cases_opened += opened


def _advance_state(
    src: m.Source,
    cfg: SourceSettings,
    result: CollectResult,
    settings: Settings,
    outcome: PollOutcome,
    now: datetime,
    rng: random.Random,
) -> None:
    state = result.state
    src.url = state.url if state.url is not None else src.url
    src.etag, src.last_modified, src.since_id = state.etag, state.last_modified, state.since_id
    src.cursor = dict(state.cursor)
    src.last_polled_at = src.last_success_at = now
    src.error_count, src.last_error = 0, None
    src.warning = result.warning
    src.last_problems = result.problems[:20] or None
    src.items_total = (src.items_total or 0) + outcome.new
    src.last_new = outcome.new
    src.polls_total = (src.polls_total or 0) + 1
    src.next_check_at = result.next_check_at or next_regular_check(
        now, cfg.interval, settings.polling.jitter, rng
    )


def _upsert_author(
    session: Session,
    cache: dict[tuple[str, str], m.Author],
    platform: str,
    post: Post,
    now: datetime,
) -> m.Author:
    info = post.author
    handle = info.handle.strip().lstrip("@")[:200] or "unknown"
    key = (platform, handle.lower())
    author = cache.get(key)
    if author is None:
        author = session.scalars(
            select(m.Author).where(m.Author.platform == platform, m.Author.handle == handle)
        ).one_or_none()
    if author is None:
        author = m.Author(platform=platform, handle=handle, first_seen_at=now, verified=False)
        session.add(author)
    author.display_name = info.display_name or author.display_name
    author.external_id = info.external_id or author.external_id
    if info.followers is not None:
        author.followers = info.followers
    author.verified = bool(info.verified or author.verified)
    author.url = info.url or author.url
    author.email = info.email or author.email
    author.last_seen_at = now
    session.flush()
    cache[key] = author
    return author


def _new_mention(src: m.Source, author: m.Author, post: Post, now: datetime) -> m.Mention:
    return m.Mention(**_mention_row(src.id, author.id, post, now))


def _mention_row(source_id: int, author_id: int, post: Post, now: datetime) -> dict[str, Any]:
    return {
        "source_id": source_id,
        "external_id": post.external_id[:500],
        "author_id": author_id,
        "kind": post.kind,
        "url": post.url,
        "title": post.title,
        "text": post.text,
        "full_text": post.full_text if post.full_text != post.text else None,
        "lang": post.lang,
        "detected_lang": post.detected_lang,
        "conversation_id": post.conversation_id,
        "in_reply_to_id": post.in_reply_to_id,
        "matched_keywords": list(post.matched_keywords),
        "published_at": post.published_at,
        "collected_at": now,
        "content_hash": post.content_hash,
        "raw": post.raw,
        "truncated": post.truncated,
    }


def _update_mention(mention: m.Mention, post: Post, now: datetime) -> None:
    mention.text = post.text
    mention.full_text = post.full_text if post.full_text != post.text else None
    mention.title = post.title
    mention.url = post.url or mention.url
    mention.matched_keywords = list(post.matched_keywords)
    mention.content_hash = post.content_hash
    mention.raw = post.raw
    mention.truncated = post.truncated
    mention.detected_lang = post.detected_lang or mention.detected_lang
    mention.edit_count = (mention.edit_count or 0) + 1
    mention.updated_at = now


def apply_prediction(session: Session, mention: m.Mention, pred: Prediction, now: datetime) -> None:
    """Record a classification and make it the mention's current one (shared with workers)."""
    session.add(m.Classification(**_classification_row(mention.id, pred, now)))
    mention.label = pred.label
    mention.unhappy = bool(pred.unhappy)
    mention.unhappy_score = float(pred.unhappy_score)
    mention.category = pred.category
    mention.model_version = pred.model_version


def _classification_row(mention_id: int, pred: Prediction, now: datetime) -> dict[str, Any]:
    return {
        "mention_id": mention_id,
        "label": pred.label,
        "probabilities": dict(pred.probabilities),
        "unhappy_score": float(pred.unhappy_score),
        "unhappy": bool(pred.unhappy),
        "category": pred.category,
        "category_score": float(pred.category_score),
        "circumstances": list(pred.circumstances),
        "model_version": pred.model_version,
        "created_at": now,
    }


def _open_case_for(session: Session, author_ids: list[int], since: datetime) -> m.Case | None:
    reads = batch_of(session)  # the set-based path looked the batch's open cases up once
    if reads is not None:
        known, case = reads.open_case(author_ids, since)
        if known:
            return case
    return session.scalars(
        select(m.Case)
        .where(
            m.Case.author_id.in_(author_ids),
            m.Case.status.not_in((CaseStatus.RESOLVED, CaseStatus.REJECTED, CaseStatus.MERGED)),
            m.Case.last_mention_at >= since,
        )
        .order_by(m.Case.id.desc())
        .limit(1)
    ).one_or_none()


def _follow_conversation(
    session: Session,
    settings: Settings,
    mention: m.Mention,
    author: m.Author,
    pred: Prediction,
    now: datetime,
    reading: Callable[[], Understanding] | None = None,
) -> tuple[m.Case | None, followup.Followup | None]:
    """The conversation hook: the case this post follows and what it is to it
    (the brand's answer, a follow-up, or nothing) — see :mod:`listener.cases.followup`.

    ``reading``: a function that reads the post (listener.understanding), called only when
    a customer's post has a case to follow: the only time the decision asks."""
    triage_cfg = settings.triage
    customer = linking.customer_ids(session, author)
    recent = _open_case_for(session, customer, mention.published_at - triage_cfg.repeat_window)
    found = followup.find_case(session, settings, mention, author, customer, recent)
    understood = None
    if reading is not None and found.case is not None and not found.by_brand:
        understood = reading()
    kind = understood.kind if understood is not None else None
    praised = understood.praised if understood is not None else False
    facts = None
    if found.case is not None:
        _, answers_brand = context_of(settings, mention)
        if answers_brand and not found.by_brand:
            # the customer replies to one of the brand's posts: the brand has answered
            # (from Listener or elsewhere), so this post comes after our reply
            followup.record_reply_seen(session, found.case, mention, now)
        facts = followup.facts_of(found.case)
    decision = followup.decide(
        followup.PostFacts(
            published_at=mention.published_at,
            # the reading of the post overrules the score when it plainly says they are
            # happy or sorted ("Fab service today, shoes exchanged with no fuss")
            unhappy=bool(pred.unhappy) and kind not in ("praise", "resolved"),
            happy=praised,
            label=pred.label,
            text=mention.full_text or mention.text,
            by_brand=found.by_brand,
            in_thread=found.in_thread,
            # the reading of the post (listener.understanding) says it is sorted; otherwise
            # the follow-up's own phrase check decides
            resolved=True if kind == "resolved" else None,
        ),
        facts,
        repeat_window=triage_cfg.repeat_window,
        thread_window=triage_cfg.thread_window,
    )
    followup.record_brand_answer(session, decision, mention, now)
    return found.case, decision


def _triage_mention(
    session: Session,
    settings: Settings,
    cfg: SourceSettings,
    src: m.Source,
    mention: m.Mention,
    author: m.Author,
    pred: Prediction,
    now: datetime,
    drafting: Drafting,
) -> int:
    """Link the mention to its author's open case or open one. Returns how many cases it
    opened (0 or 1); the drafts it asks for are queued on ``drafting``, written once per
    case after the batch's triage (:func:`write_drafts`)."""
    triage_cfg = settings.triage
    if mention.case_id is not None:
        return 0
    # what the post says, read in context (listener.understanding): its circumstances are
    # the context-based ones, not the classifier's single keywords. Read when a rule asks
    # (a happy post with no case to follow never does), once
    reading = _Reading(session, settings, mention, pred.category)
    case, follow = _follow_conversation(
        session,
        settings,
        mention,
        author,
        pred,
        now,
        reading,
    )
    if follow is not None and not follow.joins:
        if follow.kind in (Follow.BRAND_ANSWER, Follow.BRAND_POST):
            return 0  # the brand's own post: an answer, never a complaint
        case = None
    if case is not None and follow is not None:
        _attach(session, case, mention)
        case.mention_count = (case.mention_count or 1) + 1
        case.last_mention_at = max(
            case.last_mention_at or mention.published_at, mention.published_at
        )
        _saw(session, case, mention)
        data = {
            "label": pred.label,
            "unhappy": pred.unhappy,
            "unhappy_score": round(pred.unhappy_score, 4),
            "case_status": case.status,
        }
        record_event(
            session,
            actor=SYSTEM_ACTOR,
            kind="case.mention_added",
            case_id=case.id,
            mention_id=mention.id,
            at=now,
            data=data,
        )
        if pred.unhappy and follow.kind is not Follow.RECOVERED and not follow.sorted_before_reply:
            # re-score the whole case: its worst post, every circumstance, how many posts
            case.unhappy_score = max(case.unhappy_score, pred.unhappy_score)
            case.circumstances = sorted(set(case.circumstances) | set(reading().circumstances))
            t = _score(
                settings,
                author,
                label="negative",
                unhappy_score=case.unhappy_score,
                category=case.category or pred.category,
                circumstances=case.circumstances,
                posts=case.mention_count,
                span=case.last_mention_at - _first_post_at(session, case),
                emergency=bool(reading().emergency),
            )
            case.priority, case.reasons = max(case.priority, t.priority), t.reasons
            if case.kind in ("resolved", "praise") and reading().kind in ("complaint", "question"):
                # sorted (or happy) before, unhappy again ("Hello??? What's going on????"):
                # the case is a problem again
                decide_for_case(session, settings, case, reading(), now)
        t0 = time.perf_counter()
        needs = followup.apply(
            session, settings, case, mention, follow, now, label=pred.label, unhappy=pred.unhappy
        )
        drafting.followup_seconds += time.perf_counter() - t0
        drafting.want(case, mention, author, needs)
        linking.suggest_links(session, settings, case, now, post=mention)  # it may name an order
        return 0
    if not pred.unhappy and not (
        pred.label != "positive"
        # the cheap check first, unless the reading is there anyway (it finds a failed
        # order or a refund asked for only where the check does)
        and (reading.ready() or may_ask_refund_or_fail(mention.text or ""))
        and reading().kind == "complaint"
        and (reading().failed_order or reading().asks_refund)
    ):
        # an order that failed, or a customer asking for their money back, is an unhappy
        # customer whatever the model's score says
        return 0
    understood = reading()
    circumstances = understood.circumstances
    t = _score(
        settings,
        author,
        label=pred.label,
        unhappy_score=pred.unhappy_score,
        category=pred.category,
        circumstances=circumstances,
        posts=1,
        span=None,
        emergency=bool(understood.emergency),
    )
    case = _new_row(
        session,
        m.Case,
        {
            "author": author,
            "author_id": author.id,
            "source_id": src.id,
            "status": CaseStatus.NEW,
            "priority": t.priority,
            "reasons": t.reasons,
            "category": pred.category,
            "circumstances": list(circumstances),
            "unhappy_score": float(pred.unhappy_score),
            "sla_due_at": sla_due(mention.published_at, now, triage_cfg.first_response_sla),
            "mention_count": 1,
            "last_mention_at": mention.published_at,
            "created_at": now,
        },
    )
    if inspect(case).pending:
        # a new case has no posts or drafts but those this transaction adds (and a pending
        # row loads nothing)
        set_committed_value(case, "mentions", [])
        set_committed_value(case, "drafts", [])
    _attach(session, case, mention)
    _saw(session, case, mention, opened=True)
    decide_for_case(session, settings, case, understood, now)
    record_event(
        session,
        actor=SYSTEM_ACTOR,
        kind="case.opened",
        case_id=case.id,
        mention_id=mention.id,
        at=now,
        data={
            "priority": t.priority,
            "reasons": t.reasons,
            "category": pred.category,
            "model": pred.model_version,
            "kind": case.kind,
            "severity": case.severity,
            "gesture": case.gesture,
            "gesture_reasons": case.gesture_reasons,
        },
    )
    drafting.want(case, mention, author, Redraft.FIRST)
    linking.suggest_links(session, settings, case, now)  # shown to agents, never merged
    return 1


def _attach(session: Session, case: m.Case, mention: m.Mention) -> None:
    """``mention`` joins ``case`` (and its posts, where they are loaded)."""
    attach(session, mention, case.id)
    if "mentions" in case.__dict__:
        posts = [x for x in case.mentions if x is not mention]
        posts.append(mention)
        posts.sort(key=lambda x: x.published_at)
        set_committed_value(case, "mentions", posts)


def _saw(session: Session, case: m.Case, mention: m.Mention, *, opened: bool = False) -> None:
    """Tell the batch's reads (set-based path) that triage opened or joined ``case``."""
    reads = batch_of(session)
    if reads is not None:
        reads.saw(case, mention, opened=opened)


@dataclass
class Drafting:
    """The drafts a batch's triage asks for, written once per case after it.

    A case opened in the batch gets one first draft, answering its latest post
    with the whole conversation, however many follow-ups joined it in the same
    batch; a case from earlier gets its machine draft re-rendered once, answering
    the customer's latest follow-up.  Nobody sees a draft before the batch commits,
    so the in-between versions would be versions no agent ever read."""

    work: dict[int, tuple[m.Case, m.Mention, m.Author, Redraft]] = field(default_factory=dict)
    #: seconds spent deciding follow-ups (the bench's "followups" stage)
    followup_seconds: float = 0.0

    def want(self, case: m.Case, mention: m.Mention, author: m.Author, needs: Redraft) -> None:
        """``case`` needs ``needs`` to answer ``mention`` (the later post is the one answered)."""
        if needs is Redraft.NONE:
            return
        earlier = self.work.pop(case.id, None)
        self.work[case.id] = (
            case,
            mention,
            author,
            needs if earlier is None else earlier[3].then(needs),
        )

    def copy(self) -> Drafting:
        return Drafting(dict(self.work), self.followup_seconds)


def write_drafts(
    session: Session,
    settings: Settings,
    cfg: SourceSettings,
    drafting: Drafting,
    outcome: PollOutcome,
    now: datetime,
    *,
    per_row: bool = False,
) -> None:
    """Write what ``drafting`` asks, one case at a time, in the order asked; counts the
    first drafts written and the time as the batch's ``drafts`` stage.

    ``per_row``: each case in its own savepoint; one that fails is logged and left
    without its draft (the case stays in the queue), the rest are written."""
    t0 = time.perf_counter()
    for case, mention, author, needs in drafting.work.values():
        try:
            with session.begin_nested() if per_row else nullcontext():
                written = _draft_one(session, settings, cfg, case, mention, author, needs, now)
        except Exception as exc:
            if not per_row or is_outage(exc):
                raise
            log.error("draft.failed", source=cfg.name, case_id=case.id, error=type(exc).__name__)
            continue
        outcome.drafts += written
    outcome.add_stage("drafts", (time.perf_counter() - t0) * 1000)
    outcome.add_stage("followups", drafting.followup_seconds * 1000)


def _draft_one(
    session: Session,
    settings: Settings,
    cfg: SourceSettings,
    case: m.Case,
    mention: m.Mention,
    author: m.Author,
    needs: Redraft,
    now: datetime,
) -> int:
    if needs is Redraft.FIRST:
        return int(write_draft(session, settings, cfg, case, mention, author, now))
    followup.redraft(session, settings, case, mention, now)
    return 0


def _new_row(session: Session, model: type[_Row], values: dict[str, Any]) -> _Row:
    """A new row with its id (needed at once), inserted with the next flush together
    with the rest (:func:`listener.cases.batch.add_numbered`)."""
    row = model(**values)
    add_numbered(session, row)
    return row


class _Reading:
    """:func:`understand_mention` of one post, read on first use and kept; the set-based
    path's batch keeps it for the draft (listener.cases.batch)."""

    def __init__(
        self, session: Session, settings: Settings, mention: m.Mention, category: str
    ) -> None:
        self.session, self.settings, self.mention, self.category = (
            session,
            settings,
            mention,
            category,
        )
        self.understood: Understanding | None = None

    def __call__(self) -> Understanding:
        if not self.ready():
            self.understood = understand_mention(self.settings, self.mention, self.category)
            reads = batch_of(self.session)
            if reads is not None:
                reads.read(self.mention, self.category, self.understood)
        assert self.understood is not None
        return self.understood

    def ready(self) -> bool:
        """Whether the reading costs nothing now: read already, or read ahead in the parse
        processes and back (listener.readahead)."""
        if self.understood is None:
            reads = batch_of(self.session)
            if reads is not None and reads.ahead is not None:
                mention = self.mention
                key = reading_inputs(self.settings, mention.text, mention.raw, self.category)
                self.understood = reads.ahead.get(key)
                if self.understood is not None:
                    reads.read(mention, self.category, self.understood)
        return self.understood is not None


def _first_post_at(session: Session, case: m.Case) -> datetime:
    reads = batch_of(session)  # a case the batch opened: its posts are known
    posts = reads.posts_of(case.id) if reads is not None else None
    if posts:
        return min(p.published_at for p in posts)
    return first_post_of(session, case.id) or case.created_at


def _score(
    settings: Settings,
    author: m.Author,
    *,
    label: str,
    unhappy_score: float,
    category: str,
    circumstances: Sequence[str],
    posts: int,
    span: timedelta | None,
    emergency: bool = False,
) -> Triage:
    """Triage a case (or its first post) for this author."""
    return score_case(
        TriageInput(
            label=label,
            unhappy_score=float(unhappy_score),
            category=category,
            circumstances=tuple(circumstances),
            followers=author.followers,
            verified=author.verified,
            posts_in_case=posts,
            case_span=span,
            high_reach_followers=settings.triage.high_reach_followers,
            emergency=emergency,
        )
    )


def write_draft(
    session: Session,
    settings: Settings,
    cfg: SourceSettings,
    case: m.Case,
    mention: m.Mention,
    author: m.Author,
    now: datetime,
    *,
    actor: str = SYSTEM_ACTOR,
) -> bool:
    """Render and store the first draft for a new case; a template problem is logged, not fatal.

    The offer catalogue is ranked for the case first (``listener.cases.offering``);
    the suggestions are stored and the draft is written with the best one.
    """
    channel = channel_for(cfg, author.platform)
    suggestions = suggest_for_case(session, settings, case, now)
    reads = batch_of(session)
    if (
        reads is not None
        and reads.opened_here(case.id)
        and "offers" not in case.__dict__
        and not any(s.eligible for s in suggestions)
    ):
        # the batch opened it and no offer was stored: it has none (no lazy load)
        set_committed_value(case, "offers", [])
    context = draft_context_for(
        session,
        settings,
        case,
        mention,
        channel,
        now,
        top_offer_context(suggestions, settings),
        understood=None if reads is None else reads.understood(mention, case.category),
    )
    try:
        rendered = render(
            settings.resolve_path(settings.recovery.templates_dir),
            channel,
            case.category,
            context,
            seed=f"{case.id}:{mention.external_id}",
        )
    except TemplateError as exc:
        log.error("draft.failed", source=cfg.name, case_id=case.id, error=str(exc))
        record_event(
            session,
            actor=actor,
            kind="draft.failed",
            case_id=case.id,
            at=now,
            data={"error": str(exc), "offers": offers_event_data(suggestions)},
        )
        return False
    text, writer_note = rendered.text, None
    if settings.recovery.writer.url:
        text, writer_note = _rewrite(settings, case, mention, author, channel, rendered.text)
    draft = _new_row(
        session,
        m.Draft,
        {
            "case_id": case.id,
            "channel": channel,
            "template": rendered.template,
            "variant": rendered.variant,
            "text": text,
            "subject": rendered.subject,
            "in_reply_to_mention_id": mention.id,
            "created_by": actor,
            "created_at": now,
        },
    )
    if "drafts" in case.__dict__ or (reads is not None and reads.opened_here(case.id)):
        # the case's drafts, as loaded (or none: the batch opened it), and this one
        earlier = list(case.drafts) if "drafts" in case.__dict__ else []
        set_committed_value(case, "drafts", [*earlier, draft])
    case.status = CaseStatus.DRAFTED
    record_event(
        session,
        actor=actor,
        kind="draft.created",
        case_id=case.id,
        at=now,
        data={
            "draft_id": draft.id,
            "template": rendered.template,
            "channel": channel,
            "offers": offers_event_data(suggestions),
            **({"writer": writer_note} if writer_note is not None else {}),
        },
    )
    return True


def _rewrite(
    settings: Settings,
    case: m.Case,
    mention: m.Mention,
    author: m.Author,
    channel: str,
    text: str,
) -> tuple[str, str]:
    """The local model's rewrite when it passes the checks, else ``text`` (listener.writer)."""
    from listener.cases.sending import CHANNEL_LIMITS, Rules
    from listener.writer import rewrite_draft

    result = rewrite_draft(
        text,
        settings=settings.recovery.writer,
        brand=settings.brand.name,
        voice=settings.brand.voice,
        post=mention.text or "",
        channel=channel,
        limit=CHANNEL_LIMITS.get(channel, 2000),
        author_handle=author.handle,
        rules=Rules.from_settings(settings),
        in_reply_to=mention.external_id,
    )
    if not result.used:
        log.info("draft.writer_fallback", case_id=case.id, reason=result.reason)
    return result.text, "rewritten" if result.used else result.reason


# ---------------------------------------------------------------------------
# storing a batch set-based (polling.store_in_bulk)

#: Rows per bulk statement (and ids per IN list): well under SQLite's and
#: PostgreSQL's bound-parameter limits for the widest table (mentions).
BULK_ROWS = 500


def _chunks(items: Sequence[Any], size: int = BULK_ROWS) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


#: the tables the set-based path inserts into with Core (no ORM bulk machinery)
_MENTIONS: Any = m.Mention.__table__
_CLASSIFICATIONS: Any = m.Classification.__table__


def _as_stored(model: type[_Row], values: dict[str, Any], **related: Any) -> _Row:
    """The object of a row just inserted with ``values`` (every column), ready to join a
    session as persistent: what loading it back would give, without the query.

    Built as the ORM builds the rows it loads (the class manager's new instance, its
    attributes set as committed values, ``related`` objects as loaded relationships):
    no attribute events, no history, so no flush writes it again. The declarative
    constructor took a tenth of a batch's storing time for 5,000 mentions."""
    mapper: Any = inspect(model)
    if _COLUMNS.setdefault(model, frozenset(c.key for c in mapper.column_attrs)) - set(values):
        row = model(**values, **related)  # a column left to its default: the usual way
        make_transient_to_detached(row)
        return row
    row = mapper.class_manager.new_instance()
    row.__dict__.update(values)
    row.__dict__.update(related)
    # what make_transient_to_detached does to such a row: no history to commit and no
    # column to expire (every one is set), so only its identity key is left to give
    instance_state(row).key = mapper.identity_key_from_primary_key(
        [values[c.key] for c in mapper.primary_key]
    )
    return row


_COLUMNS: dict[type, frozenset[str]] = {}


def _store_bulk(
    session: Session,
    settings: Settings,
    cfg: SourceSettings,
    src: m.Source,
    fresh: list[Post],
    predictions: dict[str, Prediction],
    known: dict[str, tuple[int, str]],
    outcome: PollOutcome,
    counts: rollups.Batch,
    now: datetime,
    drafting: Drafting,
    reads: BatchReads | None = None,
    ahead: Ahead | None = None,
) -> BatchReads | None:
    """Store a batch's authors, mentions, classifications and edit events in bulk.

    Authors are upserted together; new mentions and their classifications are
    inserted in bulk, edited ones loaded once.  Triage then runs post by post in
    order through :func:`_triage_mention` (following conversations and linking
    customers read per post; one triage decider, never a copy).  A failure
    raises: the caller stores the batch again one post per savepoint.

    ``reads``: the batch reads of the earlier parts of the same poll (one transaction),
    extended with this part's authors; returned for the next part.  ``ahead``: where the
    part's likely readings are sent to be read in another process meanwhile.
    """
    posts = sorted(fresh, key=lambda p: p.published_at)
    if not posts:
        return reads
    if ahead is not None:  # the posts triage will read, read meanwhile elsewhere
        ahead.send(
            settings,
            [
                reading_inputs(settings, p.text, p.raw, pred.category)
                for p in posts
                if (pred := predictions[p.external_id]).unhappy or pred.label != "positive"
            ],
        )
    with session.no_autoflush:
        authors = _upsert_authors(session, [(_platform(cfg, p), p) for p in posts], now)
    author_of = [authors[_author_key(_platform(cfg, p), p)] for p in posts]

    # mentions: the edited ones loaded in one go, the new ones inserted in bulk
    edited_ids = [known[p.external_id][0] for p in posts if p.external_id in known]
    loaded: dict[int, m.Mention] = {}
    for chunk in _chunks(edited_ids):
        for row in session.scalars(select(m.Mention).where(m.Mention.id.in_(chunk))):
            loaded[row.id] = row
    new_rows = [
        {**_mention_row(src.id, a.id, p, now), **_denormalised(predictions[p.external_id])}
        for p, a in zip(posts, author_of, strict=True)
        if p.external_id not in known
    ]
    inserted: dict[str, m.Mention] = {}
    ids = reserve_ids(session, m.Mention, len(new_rows)) if new_rows else []
    if ids:
        # numbered ahead (listener.cases.batch): every column given, inserted by one
        # executemany without RETURNING; the objects triage goes on with are made from
        # the same values and join the session as persistent rows (no flush to insert them)
        by_author = {a.id: a for a in author_of}
        rows = [
            {**values, "id": ident, "case_id": None, "edit_count": 0, "updated_at": now}
            for ident, values in zip(ids, new_rows, strict=True)
        ]
        insert_rows(session, _MENTIONS, rows)
        for values in rows:
            fresh_row = _as_stored(m.Mention, values)
            session.add(fresh_row)
            # its loaded relationships set once it is in the session: adding it with them
            # would walk the save-update cascade to objects already there (5 % of storing)
            fresh_row.__dict__.update(source=src, author=by_author[values["author_id"]], case=None)
            inserted[fresh_row.external_id] = fresh_row
    for chunk in _chunks(new_rows if ids is None else []):
        # RETURNING in any order (an ordered one is a statement per row on SQLite)
        for row in session.scalars(insert(m.Mention).returning(m.Mention), chunk):
            inserted[row.external_id] = row
    classifications: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []  # the edits' audit rows
    items: list[tuple[m.Mention, m.Author, Prediction]] = []
    for post, author in zip(posts, author_of, strict=True):
        pred = predictions[post.external_id]
        existing = known.get(post.external_id)
        if existing is None:
            mention = inserted[post.external_id[:500]]
            outcome.new += 1
        else:
            mention = loaded[existing[0]]
            counts.removed.append(rollups.counted(mention, counts.terms))
            _update_mention(mention, post, now)
            for key, value in _denormalised(pred).items():
                setattr(mention, key, value)
            outcome.updated += 1
            events.append(
                {
                    "actor": SYSTEM_ACTOR,
                    "kind": "mention.edited",
                    "case_id": mention.case_id,
                    "mention_id": mention.id,
                    "source_id": None,
                    "at": now,
                    "data": {"edit_count": mention.edit_count},
                }
            )
        classifications.append(_classification_row(mention.id, pred, now))
        items.append((mention, author, pred))
    insert_rows(session, _CLASSIFICATIONS, classifications)

    insert_rows(session, m.Event.__table__, events)
    for mention, _author, _pred in items:
        counts.added.append(rollups.counted(mention, counts.terms))
    # triage (and the drafts of the cases it opens): the per-post decider, post by post in
    # order, so following conversations and linking customers decide exactly as per post
    # the reads triage makes for each post, made once for the batch (listener.cases.batch)
    t0 = time.perf_counter()
    if reads is None:
        reads = BatchReads(
            session,
            authors.values(),
            open_since=posts[0].published_at - settings.triage.repeat_window,
            created_since=now - settings.recovery.caps.customer_period,
        )
    else:  # a later part of the same poll: what the earlier parts did is known
        reads.add_authors(session, authors.values())
    reads.ahead = ahead or reads.ahead
    if settings.linking.suggest:
        reads.fetch_link_keys(
            session, linking.lookup_keys(settings, [x[0] for x in items], authors.values())
        )
    with reading(session, reads):
        for mention, author, pred in items:
            outcome.cases_opened += _triage_mention(
                session, settings, cfg, src, mention, author, pred, now, drafting
            )
        session.flush()  # triage's rows now, so that the drafts stage times drafting alone
        write_drafts(session, settings, cfg, drafting, outcome, now)
        # leaving reading() flushes the drafting pass's rows and inserts the batch's events
    outcome.add_stage("triage", (time.perf_counter() - t0) * 1000)
    log.debug("batch.stored", source=cfg.name, posts=len(posts), cases=outcome.cases_opened)
    return reads


def _denormalised(pred: Prediction) -> dict[str, Any]:
    """The mention's copy of its current classification."""
    return {
        "label": pred.label,
        "unhappy": bool(pred.unhappy),
        "unhappy_score": float(pred.unhappy_score),
        "category": pred.category,
        "model_version": pred.model_version,
    }


def _author_key(platform: str, post: Post) -> tuple[str, str]:
    handle = post.author.handle.strip().lstrip("@")[:200] or "unknown"
    return platform, handle.lower()


def _upsert_authors(
    session: Session, posts: list[tuple[str, Post]], now: datetime
) -> dict[tuple[str, str], m.Author]:
    """:func:`_upsert_author` for a batch: one ``INSERT … ON CONFLICT DO UPDATE`` per
    :data:`BULK_ROWS` authors.  What a batch says of an author merges as the per-post
    path would (the latest post's details win, empty ones keep what was known)."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for platform, post in posts:
        info = post.author
        key = _author_key(platform, post)
        row = merged.setdefault(
            key,
            {
                "platform": platform,
                "handle": post.author.handle.strip().lstrip("@")[:200] or "unknown",
                "display_name": None,
                "external_id": None,
                "followers": None,
                "verified": False,
                "url": None,
                "email": None,
                "first_seen_at": now,
                "last_seen_at": now,
            },
        )
        for name in ("display_name", "external_id", "url", "email"):
            row[name] = getattr(info, name) or row[name]
        if info.followers is not None:
            row["followers"] = info.followers
        row["verified"] = bool(info.verified or row["verified"])
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        table: Any = m.Author.__table__
        upsert = _author_upsert(_pg_author_rows()).returning(*table.c)
        stmt, by_column = select(m.Author).from_statement(upsert), True
    else:
        from sqlalchemy.dialects import sqlite

        stmt, by_column = _author_upsert(sqlite.insert(m.Author)).returning(m.Author), False
    out: dict[tuple[str, str], m.Author] = {}
    # one order for every writer: two workers upserting the same authors never deadlock
    for chunk in _chunks([merged[k] for k in sorted(merged)]):
        params: Any = (
            {name: [row[name] for row in chunk] for name in _AUTHOR_COLUMNS} if by_column else chunk
        )
        rows = session.scalars(stmt, params, execution_options={"populate_existing": True})
        for author in rows:
            out[(author.platform, author.handle.lower())] = author
    return out


#: the columns a batch upserts of an author, in the order the arrays are unnested
_AUTHOR_COLUMNS = (
    "platform",
    "handle",
    "display_name",
    "external_id",
    "followers",
    "verified",
    "url",
    "email",
    "first_seen_at",
    "last_seen_at",
)


def _author_upsert(insert_stmt: Any) -> Any:
    """``insert_stmt`` (an author's row or rows) as the batch's upsert: what a post says of
    its author merges with what was known (empty details keep the known ones)."""
    table: Any = m.Author.__table__
    new = insert_stmt.excluded
    return insert_stmt.on_conflict_do_update(
        index_elements=["platform", "handle"],
        set_={
            "display_name": func.coalesce(new.display_name, table.c.display_name),
            "external_id": func.coalesce(new.external_id, table.c.external_id),
            "followers": func.coalesce(new.followers, table.c.followers),
            "verified": or_(new.verified, table.c.verified),
            "url": func.coalesce(new.url, table.c.url),
            "email": func.coalesce(new.email, table.c.email),
            "last_seen_at": new.last_seen_at,
        },
    )


def _pg_author_rows() -> Any:
    """PostgreSQL: an ``INSERT`` of authors whose rows come as one array per column
    (``SELECT unnest(:platform), unnest(:handle), …``, zipped in order) instead of a
    1,000-row ``VALUES`` list: the statement stays short, so psycopg parses it once
    rather than once per batch (a long statement is not cached)."""
    from sqlalchemy.dialects import postgresql

    table: Any = m.Author.__table__

    def array_of(name: str) -> Any:
        kind = table.c[name].type
        return postgresql.ARRAY(kind.impl_instance if isinstance(kind, TypeDecorator) else kind)

    source = select(
        *(func.unnest(bindparam(n, type_=array_of(n))).label(n) for n in _AUTHOR_COLUMNS)
    )
    return postgresql.insert(table).from_select(list(_AUTHOR_COLUMNS), source)
