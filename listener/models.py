"""The database schema (SQLAlchemy 2.0 typed models).

Every timestamp is stored and returned as timezone-aware UTC.  JSON columns
are JSONB on PostgreSQL.  The ``events`` table is append-only (database
triggers refuse UPDATE and DELETE; see the first migration).

Schema changes go through Alembic: edit the models, then
``alembic -c listener/migrations/alembic.ini revision --autogenerate -m "…"``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from listener.clock import utcnow


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out, on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
    }


class Source(Base):
    """A configured source and its poll state (ETag, since_id, next check, health)."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    type: Mapped[str] = mapped_column(String(40))
    config_location: Mapped[str | None] = mapped_column(Text)  # url/path/query as configured
    url: Mapped[str | None] = mapped_column(Text)  # current URL (permanent redirects update it)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    since_id: Mapped[str | None] = mapped_column(String(100))
    cursor: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    next_check_at: Mapped[datetime | None] = mapped_column(index=True)
    last_polled_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None]
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    warning: Mapped[str | None] = mapped_column(Text)
    last_problems: Mapped[list[str] | None] = mapped_column(JSONType)
    items_total: Mapped[int] = mapped_column(Integer, default=0)
    last_new: Mapped[int] = mapped_column(Integer, default=0)
    polls_total: Mapped[int] = mapped_column(Integer, default=0)
    # a worker's claim while it polls (see listener.locks): no two workers poll one source
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Author(Base):
    """Someone who posted; identified per platform by handle."""

    __tablename__ = "authors"
    __table_args__ = (UniqueConstraint("platform", "handle"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(40))
    handle: Mapped[str] = mapped_column(String(200))
    display_name: Mapped[str | None] = mapped_column(String(300))
    external_id: Mapped[str | None] = mapped_column(String(100))
    followers: Mapped[int | None] = mapped_column(Integer)
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    url: Mapped[str | None] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(String(320))
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: the person this account belongs to: the lowest author id of the accounts an agent
    #: linked (listener.cases.linking); None: not linked to any other account
    customer_id: Mapped[int | None] = mapped_column(Integer, index=True)


class Case(Base):
    """A queue item: one unhappy customer's problem, with its posts, drafts and offers."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("authors.id"), index=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="new", index=True)
    priority: Mapped[int] = mapped_column(Integer, default=0, index=True)
    reasons: Mapped[list[str]] = mapped_column(JSONType, default=list)
    category: Mapped[str | None] = mapped_column(String(100), index=True)
    circumstances: Mapped[list[str]] = mapped_column(JSONType, default=list)
    unhappy_score: Mapped[float] = mapped_column(Float, default=0.0)
    assignee: Mapped[str | None] = mapped_column(String(200), index=True)
    claimed_at: Mapped[datetime | None]
    sla_due_at: Mapped[datetime | None] = mapped_column(index=True)
    first_response_at: Mapped[datetime | None]
    snoozed_until: Mapped[datetime | None]
    # who snoozed it and why: the queue shows the note when the case comes back
    snoozed_by: Mapped[str | None] = mapped_column(String(200))
    snooze_note: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None]
    mention_count: Mapped[int] = mapped_column(Integer, default=1)
    last_mention_at: Mapped[datetime | None]
    # did it work? set from the author's next post after our reply
    recovered: Mapped[bool | None] = mapped_column(Boolean)
    recovered_at: Mapped[datetime | None]
    #: a merged case's posts moved to this one (one customer across sources)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    # what the post is and the gesture it calls for (listener.understanding, listener.gestures)
    kind: Mapped[str | None] = mapped_column(String(20))
    severity: Mapped[int | None] = mapped_column(Integer)
    gesture: Mapped[str | None] = mapped_column(String(20))
    gesture_reasons: Mapped[list[str] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    author: Mapped[Author] = relationship(lazy="joined")
    source: Mapped[Source] = relationship()
    mentions: Mapped[list[Mention]] = relationship(
        back_populates="case", order_by="Mention.published_at"
    )
    drafts: Mapped[list[Draft]] = relationship(back_populates="case", order_by="Draft.id")
    offers: Mapped[list[Offer]] = relationship(back_populates="case", order_by="Offer.id")


class Mention(Base):
    """One post that mentions the brand, unique per source and external id."""

    __tablename__ = "mentions"
    __table_args__ = (
        UniqueConstraint("source_id", "external_id"),
        Index("ix_mentions_author_published", "author_id", "published_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    external_id: Mapped[str] = mapped_column(String(500))
    author_id: Mapped[int] = mapped_column(ForeignKey("authors.id"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20), default="post")
    url: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    full_text: Mapped[str | None] = mapped_column(Text)
    lang: Mapped[str | None] = mapped_column(String(20))  #: as the platform declared it
    detected_lang: Mapped[str | None] = mapped_column(String(20))  #: ours (listener.language)
    conversation_id: Mapped[str | None] = mapped_column(String(100), index=True)
    in_reply_to_id: Mapped[str | None] = mapped_column(String(100))
    matched_keywords: Mapped[list[str]] = mapped_column(JSONType, default=list)
    published_at: Mapped[datetime] = mapped_column(index=True)
    collected_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    content_hash: Mapped[str] = mapped_column(String(64))
    edit_count: Mapped[int] = mapped_column(Integer, default=0)
    raw: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    #: the text was longer than ``limits.max_text_chars`` and was cut
    truncated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # the current classification, denormalised for fast queue and dashboard queries
    label: Mapped[str | None] = mapped_column(String(10), index=True)
    unhappy: Mapped[bool | None] = mapped_column(Boolean)
    unhappy_score: Mapped[float | None] = mapped_column(Float)
    category: Mapped[str | None] = mapped_column(String(100), index=True)
    model_version: Mapped[str | None] = mapped_column(String(200))

    source: Mapped[Source] = relationship(lazy="joined")
    author: Mapped[Author] = relationship(lazy="joined")
    case: Mapped[Case | None] = relationship(back_populates="mentions")


class LinkSuggestion(Base):
    """Two cases that may be one customer's, with the evidence; an agent accepts or rejects.

    One row per pair (``case_id`` < ``other_case_id``): a rejected pair is not suggested again.
    """

    __tablename__ = "link_suggestions"
    __table_args__ = (UniqueConstraint("case_id", "other_case_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    other_case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    status: Mapped[str] = mapped_column(String(20), default="suggested", index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None]

    # the flush inserts the cases before the rows that name them (a case may be numbered
    # ahead and inserted with the rest: listener.cases.batch.reserve_id)
    case: Mapped[Case] = relationship(foreign_keys=[case_id])
    other_case: Mapped[Case] = relationship(foreign_keys=[other_case_id])


class LinkKey(Base):
    """Strong evidence a case carries (an order number, an e-mail address, an account it
    names, its author's own handle): the index behind link suggestions."""

    __tablename__ = "link_keys"
    __table_args__ = (Index("ix_link_keys_kind_value", "kind", "value"),)

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    value: Mapped[str] = mapped_column(String(320), primary_key=True)

    case: Mapped[Case] = relationship()  # inserted after its case (see LinkSuggestion)


class Classification(Base):
    """Every classification ever made of a mention (the mention holds the current one)."""

    __tablename__ = "classifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    mention_id: Mapped[int] = mapped_column(ForeignKey("mentions.id"), index=True)
    label: Mapped[str] = mapped_column(String(10))
    probabilities: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    unhappy_score: Mapped[float] = mapped_column(Float)
    unhappy: Mapped[bool] = mapped_column(Boolean)
    category: Mapped[str] = mapped_column(String(100))
    category_score: Mapped[float] = mapped_column(Float)
    circumstances: Mapped[list[str]] = mapped_column(JSONType, default=list)
    model_version: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Correction(Base):
    """An agent's correction of a mention's label: training data for the next head."""

    __tablename__ = "corrections"

    id: Mapped[int] = mapped_column(primary_key=True)
    mention_id: Mapped[int] = mapped_column(ForeignKey("mentions.id"), index=True)
    unhappy: Mapped[bool | None] = mapped_column(Boolean)
    label: Mapped[str | None] = mapped_column(String(10))
    category: Mapped[str | None] = mapped_column(String(100))
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Draft(Base):
    """A proposed reply; edits create new versions, the newest is current."""

    __tablename__ = "drafts"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    channel: Mapped[str] = mapped_column(String(30))
    template: Mapped[str | None] = mapped_column(String(300))
    variant: Mapped[int] = mapped_column(Integer, default=0)
    text: Mapped[str] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(Text)
    in_reply_to_mention_id: Mapped[int | None] = mapped_column(ForeignKey("mentions.id"))
    status: Mapped[str] = mapped_column(String(20), default="current")
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str] = mapped_column(String(200), default="listener")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    case: Mapped[Case] = relationship(back_populates="drafts")


class Offer(Base):
    """A wow gesture suggested for, or granted on, a case."""

    __tablename__ = "offers"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    offer_key: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(40))
    value: Mapped[float] = mapped_column(Float, default=0.0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    rank: Mapped[int] = mapped_column(Integer, default=0)
    reasons: Mapped[list[str]] = mapped_column(JSONType, default=list)
    status: Mapped[str] = mapped_column(String(20), default="suggested")
    code: Mapped[str | None] = mapped_column(String(64), unique=True)
    fulfilment_status: Mapped[str | None] = mapped_column(String(20))
    requires_lead: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(200), default="listener")
    approved_by: Mapped[str | None] = mapped_column(String(200))
    approved_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    case: Mapped[Case] = relationship(back_populates="offers")


class OutboxMessage(Base):
    """A message to send exactly once: intent → sending → sent (or failed)."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    draft_id: Mapped[int | None] = mapped_column(ForeignKey("drafts.id"))
    channel: Mapped[str] = mapped_column(String(30))
    recipient: Mapped[str | None] = mapped_column(String(320))
    in_reply_to: Mapped[str | None] = mapped_column(String(500))
    subject: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    external_id: Mapped[str | None] = mapped_column(String(200))
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    sent_at: Mapped[datetime | None]


class Event(Base):
    """Append-only audit log: who did what, when (UPDATE/DELETE refused by triggers)."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(60), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    mention_id: Mapped[int | None] = mapped_column(ForeignKey("mentions.id"))
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id"))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)

    # never loaded by the code: it tells the flush to insert the case (a case may be
    # numbered ahead, listener.cases.batch.reserve_id) before its events
    case: Mapped[Case | None] = relationship()


class User(Base):
    """A person who signs in: agent, lead, marketing (read-only) or admin."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(200), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(300))
    email: Mapped[str | None] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(20), default="agent")
    password_hash: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    #: signed into every session cookie; raised by sign-out, password change and
    #: disabling, so every cookie issued before stops working at once
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ApiToken(Base):
    """A token for the JSON API; only its hash is stored."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        # a name is unique among a user's tokens that are not revoked
        Index(
            "ix_api_tokens_live_name",
            "user_id",
            "name",
            unique=True,
            sqlite_where=sql_text("revoked_at IS NULL"),
            postgresql_where=sql_text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    #: why it was revoked: by hand, password changed, user disabled
    revoked_reason: Mapped[str | None] = mapped_column(String(200))
    #: none: the token never expires
    expires_at: Mapped[datetime | None]


class LoginFailure(Base):
    """A failed sign-in (for throttling per account and per address; old rows are pruned)."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(200), index=True)
    address: Mapped[str] = mapped_column(String(100), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class QuarantinedPost(Base):
    """A post that could not be parsed, cleaned, classified or stored.

    Kept (bounded) instead of stopping its source; one row per source and
    fingerprint (the external id, else the excerpt), counted when it comes again.
    """

    __tablename__ = "quarantine"
    __table_args__ = (UniqueConstraint("source_id", "fingerprint"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"), index=True)
    external_id: Mapped[str | None] = mapped_column(String(500))
    stage: Mapped[str] = mapped_column(String(20))  # parse | clean | classify | store
    reason: Mapped[str] = mapped_column(Text)
    excerpt: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64))
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    times: Mapped[int] = mapped_column(Integer, default=1)

    source: Mapped[Source] = relationship(lazy="joined")


class CaseViewer(Base):
    """Who has a case open right now (presence, refreshed while the page is open)."""

    __tablename__ = "case_viewers"

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    username: Mapped[str] = mapped_column(String(200), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class SchedulerLock(Base):
    """Only one ``listener run`` per database: the holder renews its lease."""

    __tablename__ = "scheduler_locks"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


# Indexes for the web queue (priority order walk) and dashboard (index-only aggregates,
# top authors by reach); created by migration 0004.
Index("ix_cases_queue", Case.priority.desc(), Case.sla_due_at, Case.id)
Index(
    "ix_mentions_dashboard",
    Mention.published_at,
    Mention.label,
    Mention.source_id,
    Mention.category,
)
Index("ix_authors_followers", Author.followers)
# The queue holds awake cases only: counting them is an index-only scan (migration 0003).
Index("ix_cases_status_snoozed", Case.status, Case.snoozed_until)


# ---------------------------------------------------------------------------
# rollups and alerts (migration 0006)


class MentionRollup(Base):
    """Mentions per UTC hour, source, category and label, kept current at ingest.

    The dashboard's short ranges and the alert detectors read these instead of
    the mentions.  ``category`` is ``''`` and ``label`` is ``'unclassified'``
    when the mention has none (key columns are never NULL).
    """

    __tablename__ = "mention_rollups"
    __table_args__ = (
        Index("ix_mention_rollups_source_hour", "source_id", "hour"),
        {"sqlite_with_rowid": False},
    )

    hour: Mapped[datetime] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"), primary_key=True)
    category: Mapped[str] = mapped_column(String(100), primary_key=True)
    label: Mapped[str] = mapped_column(String(20), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)


class MentionRollupDaily(Base):
    """The same counts per UTC day (long dashboard ranges read a 24th of the rows)."""

    __tablename__ = "mention_rollups_daily"
    __table_args__ = (
        Index("ix_mention_rollups_daily_source_day", "source_id", "day"),
        {"sqlite_with_rowid": False},
    )

    day: Mapped[datetime] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"), primary_key=True)
    category: Mapped[str] = mapped_column(String(100), primary_key=True)
    label: Mapped[str] = mapped_column(String(20), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)


class MentionFacetDaily(Base):
    """Mentions per UTC day and label for each facet on its own — ``all`` (value ``''``),
    ``source`` (value: the source id) and ``category`` — so the unfiltered dashboard, or
    one filtered by a single source or category, reads a few hundred rows per quarter."""

    __tablename__ = "mention_facets_daily"
    __table_args__ = ({"sqlite_with_rowid": False},)

    facet: Mapped[str] = mapped_column(String(10), primary_key=True)
    day: Mapped[datetime] = mapped_column(primary_key=True)
    value: Mapped[str] = mapped_column(String(100), primary_key=True)
    label: Mapped[str] = mapped_column(String(20), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)


class BrandRollupDaily(Base):
    """Posts naming each brand (ours and configured competitors) per UTC day and source:
    share of voice.  ``brand`` is the configured name; ``''`` counts posts naming none."""

    __tablename__ = "brand_rollups_daily"
    __table_args__ = ({"sqlite_with_rowid": False},)

    day: Mapped[datetime] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"), primary_key=True)
    brand: Mapped[str] = mapped_column(String(200), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)


class RollupState(Base):
    """What the brand rollups were counted with (a change of terms needs a recount)."""

    __tablename__ = "rollup_state"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    signature: Mapped[str] = mapped_column(String(64))
    built_at: Mapped[datetime] = mapped_column(default=utcnow)


class Alert(Base):
    """Something the team should know now: a spike, a shift, a failing source or outbox.

    ``key`` identifies the condition (``spike``, ``source_auth:x-search``…): at
    most one alert per key is not resolved (a partial unique index), so a
    condition that persists updates its alert instead of opening another.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        Index(
            "ux_alerts_live_key",
            "key",
            unique=True,
            sqlite_where=sql_text("status != 'resolved'"),
            postgresql_where=sql_text("status != 'resolved'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(30), index=True)
    key: Mapped[str] = mapped_column(String(300), index=True)
    status: Mapped[str] = mapped_column(String(20), default="open", index=True)
    severity: Mapped[str] = mapped_column(String(10), default="warning")
    scope: Mapped[str] = mapped_column(String(300), default="brand")
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id"))
    title: Mapped[str] = mapped_column(Text)
    explanation: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    started_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(200))
    reopened: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AlertNotification(Base):
    """One delivery of one alert to one target (the webhook, an e-mail address): sent once."""

    __tablename__ = "alert_notifications"
    __table_args__ = (UniqueConstraint("alert_id", "channel", "target"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    target: Mapped[str] = mapped_column(String(320))  # "webhook" or an address (never the URL)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
