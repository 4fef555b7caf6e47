"""The backfill use-case: read a large source to its end in bounded chunks.

``backfill(app, name)`` polls one source again and again, each time reading at
most ``chunk_bytes`` (a file source: that many bytes of lines; an API source:
one page, as a poll reads), and stores each chunk with :func:`pipeline.ingest`
in **one transaction together with the source's new state**.  So memory stays
flat whatever the source's size (one chunk's posts at a time), and a backfill
killed at any moment resumes where the last committed chunk ended: nothing is
lost, nothing is stored twice.

It stops when the source says it has nothing more right now (its next check
is not "at once"), when ``should_stop`` says so, or on an error (recorded on
the source as a poll's would be).  Alerts are not evaluated per chunk: a
backfill is history, not news.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import select

from listener import models as m
from listener.clock import utcnow
from listener.collectors import CollectContext, get_collector
from listener.pipeline import PollOutcome, _state_of, ingest, record_failure, sync_sources

if TYPE_CHECKING:
    from listener.app import App
    from listener.collectors import PollState

log = structlog.get_logger("listener.backfill")

#: Default bytes read per chunk from a file source (about 5,000 short posts).
CHUNK_BYTES = 1024 * 1024


@dataclass
class BackfillProgress:
    """Where a backfill stands after a chunk (the CLI draws its bar from this)."""

    source: str
    chunks: int = 0
    fetched: int = 0
    new: int = 0
    updated: int = 0
    cases_opened: int = 0
    quarantined: int = 0
    #: bytes read so far and the source's size, for a file source (else None)
    position: int | None = None
    total: int | None = None
    status: str = "running"  # running | done | error | stopped
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _position(state: PollState) -> int | None:
    offset = state.cursor.get("offset") if state.cursor else None
    return int(offset) if isinstance(offset, int | float) else None


def _file_size(app: App, name: str) -> int | None:
    cfg = app.settings.source(name)
    if cfg.type != "jsonl" or not cfg.path:
        return None
    try:
        return app.settings.resolve_path(cfg.path).stat().st_size
    except OSError:
        return None


def backfill(
    app: App,
    name: str,
    *,
    chunk_bytes: int = CHUNK_BYTES,
    on_chunk: Callable[[BackfillProgress, PollOutcome], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    max_chunks: int | None = None,
) -> BackfillProgress:
    """Read source ``name`` to its end, one committed chunk at a time (see the module doc)."""
    settings = app.settings
    cfg = settings.source(name)  # NotFound for a typo
    chunked = settings.model_copy(
        update={"limits": settings.limits.model_copy(update={"read_per_poll": chunk_bytes})}
    )
    sync_sources(app)
    progress = BackfillProgress(source=name, total=_file_size(app, name))
    ctx = CollectContext(settings=chunked)
    rng = random.Random()
    collector = get_collector(cfg.type)
    try:
        while True:
            with app.sessions() as session:
                row = session.scalars(select(m.Source).where(m.Source.name == name)).one()
                if row.disabled_reason:
                    progress.status, progress.error = "error", row.disabled_reason
                    return progress
                state = _state_of(row)
            if progress.position is None:
                progress.position = _position(state)
            try:
                result = collector.collect(cfg, state, ctx)
            except Exception as exc:  # recorded on the source, as a poll records it
                outcome = record_failure(app, cfg, exc, utcnow(), rng)
                progress.status, progress.error = "error", outcome.error
                return progress
            outcome = ingest(app, cfg, result, now=utcnow(), rng=rng)
            progress.chunks += 1
            progress.fetched += outcome.fetched
            progress.new += outcome.new
            progress.updated += outcome.updated
            progress.cases_opened += outcome.cases_opened
            progress.quarantined += outcome.quarantined
            progress.position = _position(result.state)
            if progress.total is not None:
                progress.total = max(progress.total, progress.position or 0)
            log.info("backfill.chunk", source=name, chunk=progress.chunks, new=outcome.new)
            if on_chunk is not None:
                on_chunk(progress, outcome)
            more = result.next_check_at is not None and result.next_check_at <= utcnow()
            if result.not_modified or not more:
                progress.status = "done"
                return progress
            if (should_stop is not None and should_stop()) or (
                max_chunks is not None and progress.chunks >= max_chunks
            ):
                progress.status = "stopped"
                return progress
    finally:
        for closer in ctx.shared.get("closers", []):
            try:
                closer()
            except Exception:  # pragma: no cover - best effort
                log.warning("collector.close_failed", exc_info=True)
