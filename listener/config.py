"""config.yaml → one validated :class:`Settings` object.

* Unknown keys and wrong types are errors (``extra="forbid"`` everywhere).
* Secrets are never written in the file: a string value ``${NAME}`` (or
  ``${NAME:-default}``) is replaced by the environment variable ``NAME``;
  a missing variable is an error naming the key.
* Relative paths are resolved against the directory of the config file.
* ``LISTENER_DATABASE_URL`` overrides ``database.url``.

Every problem becomes a :class:`~listener.errors.ConfigError` whose message is
one line: ``config.yaml: sources[1].interval: invalid duration 'soon'``.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, overload

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from classifiers.settings import ClassifierSettings
from listener.durations import format_duration, parse_duration
from listener.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("config.yaml")
DATABASE_URL_ENV = "LISTENER_DATABASE_URL"

Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


def _account(handle: str) -> str:
    return handle.strip().lstrip("@").lower()


class BrandSettings(_Model):
    """The brand being listened for."""

    name: str = Field(description="The brand's name, used in replies.")
    handles: list[str] = Field(
        default_factory=list, description="The brand's social handles, e.g. '@acmeshoes'."
    )
    keywords: list[str] = Field(
        default_factory=list,
        description="Words and phrases that mean the brand (case-insensitive, whole words; "
        "in Japanese, Chinese, Korean or Thai text they match without spaces around them).",
    )
    aliases: list[str] = Field(
        default_factory=list, description="Other names customers use (nicknames, misspellings)."
    )
    exclusions: list[str] = Field(
        default_factory=list,
        description="Phrases that look like the brand but are not (e.g. 'acme corporation').",
    )
    tag_terms: list[str] = Field(
        default_factory=list,
        description="Words that also count inside hashtags and handles: 'amazon' matches "
        "#amazonprimebrasil and @amazonuk (exclusions then match inside them too).",
    )
    voice: str = Field(
        default="warm, personal, plain-spoken; we own mistakes and fix them",
        description="The tone replies are written in.",
    )
    website: str | None = Field(default=None, description="The brand's website (allowed in links).")
    accounts: dict[str, list[str]] = Field(
        default_factory=dict,
        description="The brand's own accounts per platform, e.g. {x: [zephyrshoes, "
        "zephyrhelp], mastodon: ['zephyr@mastodon.social']}: their posts are the brand's "
        "answers, never complaints (``handles`` count on every platform).",
    )

    def is_own(self, platform: str, handle: str) -> bool:
        """Whether ``handle`` on ``platform`` is one of the brand's own accounts."""
        mine = {_account(h) for h in (*self.handles, *self.accounts.get(platform, ()))}
        mine.discard("")
        who = _account(handle)
        return bool(who) and who in mine

    @property
    def match_terms(self) -> list[str]:
        """Every term that means the brand: name, keywords, aliases, handles."""
        terms = [self.name, *self.keywords, *self.aliases, *self.handles]
        seen: dict[str, str] = {}
        for t in terms:
            t = t.strip()
            if t and t.lower() not in seen:
                seen[t.lower()] = t
        return list(seen.values())


SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
SUBREDDIT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]{1,20}$")


def http_url(value: str) -> str:
    """``value`` if it is an absolute http(s) URL (without a trailing slash), else ValueError."""
    from urllib.parse import urlsplit

    v = value.strip().rstrip("/")
    parts = urlsplit(v)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {value!r}")
    return v


class SourceSettings(_Model):
    """One place to listen: a feed, a file of posts, an X query, …"""

    name: str = Field(description="Unique name; letters, digits, '-', '_', '.'.")
    type: str = Field(description="Collector type: feed, jsonl, x_search, x_mentions, …")
    url: str | None = Field(default=None, description="http(s) URL (feed).")
    path: str | None = Field(default=None, description="Local file (feed, jsonl).")
    query: str | None = Field(
        default=None,
        description="Search query (x_search, hackernews; mastodon: a #hashtag or keywords; "
        "bluesky, reddit).",
    )
    username: str | None = Field(
        default=None, description="Account whose mentions to read (x_mentions, reddit)."
    )
    base_url: str | None = Field(
        default=None,
        description="API root of a mastodon, bluesky, reddit or hackernews source (a local "
        "server in tests). Empty: mastodon.base_url, bluesky.base_url, reddit.base_url, or "
        "https://hn.algolia.com/api/v1.",
    )
    account: str | None = Field(
        default=None,
        description="mastodon: the brand's account on that instance, whose mentions to read "
        "('zephyrshoes').",
    )
    handle: str | None = Field(
        default=None,
        description="bluesky: the brand's handle, whose mentions, replies and quotes to read "
        "('zephyrshoes.bsky.social').",
    )
    subreddits: list[str] = Field(
        default_factory=list,
        description="reddit: subreddits to watch for posts and comments about the brand "
        "(empty: search all of Reddit for query).",
    )
    interval: Duration = Field(default=timedelta(minutes=15), description="How often to poll.")
    enabled: bool = Field(default=True, description="Disabled sources are never polled.")
    match_all: bool = Field(
        default=False,
        description="Take every entry (for sources about the brand) instead of keyword matching.",
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="Collector-specific extras (see the collector's docs)."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not SOURCE_NAME.match(v):
            raise ValueError(f"invalid source name {v!r} (letters, digits, '-', '_', '.')")
        return v

    @field_validator("interval")
    @classmethod
    def _interval(cls, v: timedelta) -> timedelta:
        if v.total_seconds() < 1:
            raise ValueError("interval must be at least 1s")
        return v

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, v: str | None) -> str | None:
        return None if v in (None, "") else http_url(v)

    @field_validator("account", "handle", "username")
    @classmethod
    def _account(cls, v: str | None) -> str | None:
        if v is None:
            return None
        v = v.strip().removeprefix("@")
        if not v or any(ch.isspace() for ch in v):
            raise ValueError(f"invalid account name {v!r}")
        return v

    @field_validator("subreddits")
    @classmethod
    def _subreddits(cls, v: list[str]) -> list[str]:
        out = []
        for name in v:
            name = name.strip().removeprefix("/").removeprefix("r/")
            if not SUBREDDIT.match(name):
                raise ValueError(f"invalid subreddit name {name!r}")
            out.append(name)
        return out

    @model_validator(mode="after")
    def _type_fields(self) -> SourceSettings:
        from listener.collectors import COLLECTOR_TYPES, SOURCE_KEYS

        if self.type not in COLLECTOR_TYPES:
            raise ValueError(
                f"unknown source type {self.type!r} (one of: {', '.join(sorted(COLLECTOR_TYPES))})"
            )
        spec = COLLECTOR_TYPES[self.type]
        if spec.needs and not any(getattr(self, f) for f in spec.needs):
            raise ValueError(f"source type {self.type!r} needs {' or '.join(spec.needs)}")
        unused = [k for k in SOURCE_KEYS if k not in spec.keys and getattr(self, k)]
        if unused:
            raise ValueError(
                f"{', '.join(unused)}: not used by {self.type!r} sources "
                f"(they take {', '.join(spec.keys)})"
            )
        if spec.options:
            known = {name for name, _ in spec.options} | {"channel"}
            unknown = sorted(set(self.options) - known)
            if unknown:
                raise ValueError(
                    f"options: unknown option(s) {', '.join(unknown)} for {self.type!r} "
                    f"sources (known: {', '.join(sorted(known))})"
                )
        return self

    @property
    def location(self) -> str:
        """What the source reads, for display."""
        where = self.url or self.path or self.base_url or ""
        what = self.account or self.handle or self.username or ""
        subs = "+".join(self.subreddits)
        parts = [p for p in (where, what, f"r/{subs}" if subs else "", self.query or "") if p]
        return " ".join(parts)


class DatabaseSettings(_Model):
    """The SQL database (SQLite by default, PostgreSQL for teams and workers)."""

    url: str = Field(
        default="sqlite:///listener.db",
        description=f"SQLAlchemy URL; {DATABASE_URL_ENV} overrides it.",
    )
    echo: bool = Field(default=False, description="Log every SQL statement (debugging).")


class PollingSettings(_Model):
    """How collectors reach the network."""

    max_concurrency: int = Field(default=64, ge=1, le=1024, description="Sources polled at once.")
    per_host: int = Field(default=4, ge=1, le=64, description="Connections per host at once.")
    timeout: Duration = Field(default=timedelta(seconds=20), description="Per-request timeout.")
    max_bytes: int = Field(
        default=20 * 1024 * 1024, ge=1024, description="Largest response body accepted."
    )
    user_agent: str = Field(
        default="Listener/0.1 (+https://example.invalid/listener; social listening)",
        description="User-Agent sent with every request.",
    )
    backoff_base: Duration = Field(
        default=timedelta(minutes=1), description="First retry delay after an error."
    )
    backoff_max: Duration = Field(
        default=timedelta(hours=6), description="Longest retry delay after repeated errors."
    )
    jitter: float = Field(
        default=0.1, ge=0, le=0.5, description="Random spread of next check times (fraction)."
    )
    parse_workers: int | None = Field(
        default=None,
        ge=0,
        le=64,
        description="Processes that parse feeds beside the fetching threads (parsing is Python "
        "work: one process parses one feed at a time). Empty: one per core, none on a "
        "single core; 0: parse in the polling process.",
    )
    fast_parse: bool = Field(
        default=True,
        description="Parse well-formed RSS/Atom feeds with Listener's fast path (expat events "
        "replayed through a port of feedparser's rules: the same entries, several times "
        "faster), and anything it is not sure of with feedparser. false: feedparser for "
        "every feed.",
    )
    store_in_bulk: bool = Field(
        default=True,
        description="Store each source's batch set-based: a few SQL statements per batch "
        "(authors upserted together, mentions, classifications and events inserted in bulk, "
        "triage decided in memory), not a few per post. false: one post at a time (the "
        "older path, kept to compare against). Either way a batch that fails is stored "
        "again one post per savepoint, so one bad post is quarantined, not the batch.",
    )
    classify_part: int = Field(
        default=1000,
        ge=0,
        le=100_000,
        description="A set-based batch larger than this many posts is classified in parts on "
        "a thread of its own, each part stored (in the batch's one transaction) while the "
        "next is classified: the model's inference and the database work overlap. 0: "
        "classify the whole batch first.",
    )
    read_ahead: int = Field(
        default=200,
        ge=0,
        le=1_000_000,
        description="A set-based batch part with at least this many unhappy or unsure posts "
        "has them read (what each says, for triage and the reply) in the parse processes "
        "(polling.parse_workers) while the part is stored; triage takes the readings that "
        "are back and reads the rest itself, so nothing waits on them. 0: read every post "
        "in the storing process.",
    )


class TriageSettings(_Model):
    """How cases are prioritised and when a first response is due."""

    first_response_sla: Duration = Field(
        default=timedelta(hours=1), description="Target time from post to first reply."
    )
    high_reach_followers: int = Field(
        default=10_000, ge=0, description="Followers from which an author counts as high reach."
    )
    repeat_window: Duration = Field(
        default=timedelta(days=30),
        description="Later posts by the same author within this window join their open case.",
    )
    thread_window: Duration = Field(
        default=timedelta(days=14),
        description="A customer's reply in a case's thread (to their post, or to our reply) "
        "within this time joins that case, even a sent or resolved one: 'all good now, "
        "thanks' marks it recovered, a still unhappy reply brings it back to the queue.",
    )


class LinkingSettings(_Model):
    """One customer across sources: when Listener suggests two cases are one person's."""

    suggest: bool = Field(
        default=True,
        description="Suggest links between cases that share strong evidence (the same order "
        "number or e-mail address, or one naming the other's account); an agent accepts or "
        "rejects each one, nothing is merged silently.",
    )
    window: Duration = Field(
        default=timedelta(days=3),
        description="How close in time two cases' posts must be for a suggested link.",
    )


OFFER_KINDS: tuple[str, ...] = (
    "percent_coupon",
    "amount_coupon",
    "shipping_upgrade",
    "free_replacement",
    "refund",
    "store_credit",
    "handwritten_card",
    "flowers",
    "cookies",
    "gift",
)
#: kinds that get a unique coupon code at approval
COUPON_KINDS: frozenset[str] = frozenset({"percent_coupon", "amount_coupon", "store_credit"})
#: kinds that are posted or shipped: a fulfilment task (to_send → sent) and an address
PHYSICAL_KINDS: frozenset[str] = frozenset(
    {"free_replacement", "handwritten_card", "flowers", "cookies", "gift"}
)
OFFER_KEY = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")
#: the gesture ladder, lowest first (listener.gestures)
GESTURES: tuple[str, ...] = ("none", "apology_and_help", "goodwill", "make_whole", "personal")
#: which rung of the ladder each offer kind stands on (an offer's ``gesture`` overrides)
GESTURE_OF_KIND: dict[str, str] = {
    "percent_coupon": "goodwill",
    "amount_coupon": "goodwill",
    "store_credit": "goodwill",
    "cookies": "goodwill",
    "gift": "goodwill",
    "shipping_upgrade": "make_whole",
    "free_replacement": "make_whole",
    "refund": "make_whole",
    "handwritten_card": "personal",
    "flowers": "personal",
}
#: kinds that are money (a free-text promise of one needs the tier the catalogue offer would)
MONEY_KINDS: frozenset[str] = frozenset(
    {"percent_coupon", "amount_coupon", "store_credit", "refund"}
)


class OfferSpec(_Model):
    """One gesture in the offer catalogue (``recovery.offers``)."""

    key: str = Field(description="Unique identifier, e.g. 'overnight_upgrade'.")
    kind: str = Field(description=f"One of: {', '.join(OFFER_KINDS)}.")
    value: float = Field(
        default=0.0, ge=0, description="Face value: percent for percent_coupon, money otherwise."
    )
    cost: float = Field(default=0.0, ge=0, description="Estimated cost to us (budgets, tiers).")
    description: str = Field(
        description="How a reply words it, e.g. 'here is 20% off your next pair'."
    )
    categories: list[str] = Field(
        default_factory=list, description="Problem categories it suits (empty: any)."
    )
    min_unhappy: float = Field(default=0.0, ge=0, le=1, description="Lowest unhappy score.")
    min_priority: int = Field(default=0, ge=0, le=100, description="Lowest case priority.")
    circumstances: list[str] = Field(
        default_factory=list,
        description="Only for cases with one of these circumstances (e.g. bereavement).",
    )
    boost: int = Field(
        default=0, description="Ranking weight: higher ranks first among eligible offers."
    )
    per_customer: int | None = Field(
        default=None, ge=1, description="Most times one customer gets it per customer_period."
    )
    enabled: bool = Field(default=True, description="Disabled offers are never suggested.")
    gesture: Literal["goodwill", "make_whole", "personal"] | None = Field(
        default=None,
        description="The gesture-ladder rung it stands on (goodwill, make_whole, personal); "
        "default from its kind: coupons and credits are goodwill, refunds, replacements and "
        "shipping upgrades make_whole, cards and flowers personal.",
    )

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        if not OFFER_KEY.match(v):
            raise ValueError(f"invalid offer key {v!r} (lower-case letters, digits, '_', '-')")
        return v

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        if v not in OFFER_KINDS:
            raise ValueError(f"unknown offer kind {v!r} (one of: {', '.join(OFFER_KINDS)})")
        return v

    @property
    def physical(self) -> bool:
        """Posted or shipped to the customer (needs an address, becomes a fulfilment task)."""
        return self.kind in PHYSICAL_KINDS

    @property
    def coupon(self) -> bool:
        """Gets a unique code at approval."""
        return self.kind in COUPON_KINDS

    @property
    def tier(self) -> str:
        """Its rung on the gesture ladder (``gesture``, else from its kind)."""
        return self.gesture or GESTURE_OF_KIND.get(self.kind, "goodwill")


class ApprovalSettings(_Model):
    """Who may approve what."""

    lead_above: float = Field(
        default=50.0,
        ge=0,
        description="Offers costing more than this need a lead's approval, and not from the "
        "person who drafted or selected them.",
    )


class CapsSettings(_Model):
    """Limits on gestures; an offer that would break one is not suggested or approved."""

    daily_budget: float | None = Field(
        default=None, ge=0, description="Team spend per UTC day (offer cost estimates)."
    )
    agent_daily_budget: float | None = Field(
        default=None, ge=0, description="Spend per agent per UTC day."
    )
    customer_offers: int | None = Field(
        default=None, ge=0, description="Most offers one customer gets per customer_period."
    )
    customer_period: Duration = Field(
        default=timedelta(days=30), description="Window for per-customer caps."
    )


class GestureSettings(_Model):
    """The gesture ladder's rules (listener.gestures): which rung a case gets, and why.

    Questions, praise and resolved posts never get compensation; a question about
    an ongoing failure gets help and an apology.  The defaults suit a retailer.
    """

    goodwill_min_severity: int = Field(
        default=3,
        ge=1,
        le=4,
        description="A complaint at least this severe (0-3) gets goodwill (a coupon or credit); "
        "4: never by severity alone.",
    )
    goodwill_after_cases: int = Field(
        default=2,
        ge=1,
        description="A customer's Nth complaint within recovery.caps.customer_period gets goodwill "
        "(history scales the gesture).",
    )
    make_whole_failed_order: bool = Field(
        default=True,
        description="An order or booked service that failed (never came, cancelled, broken, "
        "wrong, charged wrongly), or a request for money back, gets make_whole.",
    )
    make_whole_min_severity: int = Field(
        default=2, ge=0, le=3, description="Lowest severity for make_whole."
    )
    personal_circumstances: list[str] = Field(
        default_factory=lambda: ["bereavement", "illness"],
        description="Life events that get a personal gesture (a card, flowers) with the help.",
    )
    step_down_below: float = Field(
        default=100.0,
        ge=0,
        description="With less than this left of recovery.caps.daily_budget, a gesture steps "
        "down one rung (make_whole to goodwill, goodwill to apology_and_help).",
    )


class WriterSettings(_Model):
    """An optional local language model that rewrites the grounded draft (off by default)."""

    url: str | None = Field(
        default=None,
        description="Base URL of an OpenAI-compatible server (Ollama, llama.cpp, vLLM), e.g. "
        "'http://127.0.0.1:11434/v1'; none: drafts are the grounded templates only.",
    )
    model: str = Field(default="llama3.1", description="The model name the server knows.")
    api_key: SecretStr | None = Field(
        default=None, description="Bearer token, if the server wants one (use ${ENV_VAR})."
    )
    timeout: Duration = Field(
        default=timedelta(seconds=20),
        description="Per request; on timeout or error the grounded draft is kept.",
    )
    temperature: float = Field(default=0.4, ge=0, le=2, description="Sampling temperature.")

    @field_validator("url", mode="before")
    @classmethod
    def _empty_is_none(cls, v: Any) -> Any:
        return v or None


class RecoverySettings(_Model):
    templates_dir: str | None = Field(
        default=None,
        description="Folder of your own Jinja2 reply templates "
        "(replies/<channel>/<category>[.<n>].j2), relative to config.yaml. Each file there "
        "overrides the packaged template of the same name; the rest stay the packaged ones. "
        "Unset: the templates packaged with Listener (`listener templates copy DIR` copies "
        "them for editing). A folder that does not exist stops every command (exit 2).",
    )
    agent_name: str = Field(default="The Loyalty Team", description="Signs drafted replies.")
    signature: str = Field(default="", description="Appended to email replies.")
    signoff: str = Field(
        default="– {agent_first}",
        description="How short replies end; {agent_first}, {agent} and {brand} are filled in.",
    )
    gestures: GestureSettings = Field(
        default_factory=GestureSettings,
        description="The gesture ladder: which cases get help, goodwill, make-whole or personal.",
    )
    writer: WriterSettings = Field(
        default_factory=WriterSettings,
        description="Optional local language model that rewrites drafts in the brand's voice.",
    )
    currency: str = Field(default="$", description="Currency symbol for costs and budgets.")
    coupon_prefix: str = Field(
        default="ZS", pattern=r"^[A-Z0-9]{1,8}$", description="Start of generated coupon codes."
    )
    allowed_links: list[str] = Field(
        default_factory=list,
        description="Domains replies may link to besides brand.website (e.g. 'help.example').",
    )
    suggestions: int = Field(default=3, ge=1, le=20, description="Offers suggested per case.")
    offers: list[OfferSpec] = Field(
        default_factory=list, description="The offer catalogue (see docs/recovery.md)."
    )
    caps: CapsSettings = Field(
        default_factory=CapsSettings,
        description="Budgets and per-customer limits; an offer that breaks one is refused.",
    )
    approval: ApprovalSettings = Field(
        default_factory=ApprovalSettings, description="Approval tiers (who may approve what)."
    )
    outbox_lease: Duration = Field(
        default=timedelta(minutes=2),
        description="How long a sender holds a message; a crashed sender's message is "
        "retried after this.",
    )
    outbox_max_attempts: int = Field(
        default=8, ge=1, le=100, description="Attempts before a message is marked failed."
    )
    retry_base: Duration = Field(
        default=timedelta(seconds=30), description="First retry delay after a send error."
    )
    local_outbox: bool = Field(
        default=False,
        description="The offline demo: a reply whose platform's credentials are not set (x.*, "
        "mastodon.*, bluesky.*, reddit.*, email.host) is delivered to the local file "
        "var/outbox.jsonl (beside a SQLite database, else beside config.yaml) and recorded "
        "as sent there (its external id starts with 'local:'). Off: such replies wait, "
        "retried, until the credentials are set. Replies posted by hand (blog, DM, Hacker "
        "News) are never affected: `listener sent CASE` records them.",
    )

    @field_validator("offers")
    @classmethod
    def _unique_offers(cls, v: list[OfferSpec]) -> list[OfferSpec]:
        keys = [o.key for o in v]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"duplicate offer key(s): {', '.join(dupes)}")
        return v

    def offer(self, key: str) -> OfferSpec | None:
        """The catalogue entry named ``key``."""
        for o in self.offers:
            if o.key == key:
                return o
        return None


class EmailSettings(_Model):
    """Outgoing mail (SMTP) for email replies; the password comes from the environment."""

    host: str | None = Field(default=None, description="SMTP server; none: email is off.")
    port: int = Field(default=587, ge=1, le=65535, description="SMTP port.")
    security: Literal["starttls", "ssl", "none"] = Field(
        default="starttls", description="starttls (587), ssl (465) or none (local relays)."
    )
    username: str | None = Field(default=None, description="SMTP login.")
    password: SecretStr | None = Field(default=None, description="Use ${SMTP_PASSWORD}.")
    from_address: str = Field(
        default="care@example.invalid", description="From: address of replies."
    )
    from_name: str | None = Field(default=None, description="Display name in From:.")
    reply_to: str | None = Field(default=None, description="Reply-To: address.")
    timeout: Duration = Field(default=timedelta(seconds=30), description="SMTP timeout.")

    @field_validator("host", "username", "password", "reply_to", mode="before")
    @classmethod
    def _empty_is_none(cls, v: Any) -> Any:
        return None if v == "" else v


class LimitsSettings(_Model):
    """Bounds on what enters from sources (see docs/security.md)."""

    max_post_bytes: int = Field(
        default=256 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Largest single post read from a source, in bytes (a JSONL line); a "
        "longer one is quarantined without being read into memory.",
    )
    max_text_chars: int = Field(
        default=20_000,
        ge=280,
        le=1_000_000,
        description="Longest post text kept, in characters; longer text is cut and the "
        "mention flagged truncated (or the post quarantined, see oversize).",
    )
    oversize: Literal["truncate", "quarantine"] = Field(
        default="truncate",
        description="What happens to a post whose text is longer than max_text_chars.",
    )
    max_json_depth: int = Field(
        default=32,
        ge=4,
        le=500,
        description="Deepest nesting of JSON arrays and objects accepted in a post; a "
        "deeper one is quarantined.",
    )
    future_slack: Duration = Field(
        default=timedelta(days=1),
        description="A post dated later than now plus this is stored as published when it "
        "was collected (posts dated before 1970 are quarantined).",
    )
    read_per_poll: int = Field(
        default=32 * 1024 * 1024,
        ge=64 * 1024,
        description="Most bytes a file source (jsonl) reads in one poll; the rest is read "
        "by the next poll, which is due at once.",
    )


class WebSettings(_Model):
    """The web app (`listener serve`)."""

    host: str = Field(default="127.0.0.1", description="Address `listener serve` binds.")
    port: int = Field(default=8080, ge=1, le=65535, description="Port `listener serve` binds.")
    secret_key: SecretStr | None = Field(
        default=None, description="Signs session cookies; use ${LISTENER_SECRET_KEY}."
    )
    secure_cookies: bool = Field(
        default=False,
        description="Mark the session cookie Secure (sent over HTTPS only): turn it on "
        "whenever Listener is served behind HTTPS.",
    )
    public_health: bool = Field(
        default=True,
        description="Answer /healthz and /metrics without signing in (load balancers, "
        "Prometheus); false: they need a session or an API token, 401 otherwise.",
    )
    login_attempts: int = Field(
        default=10,
        ge=1,
        le=10_000,
        description="Failed sign-ins allowed per account within login_window; further "
        "attempts are refused (429) until the window has passed, right password or not.",
    )
    login_attempts_per_address: int = Field(
        default=50,
        ge=1,
        le=100_000,
        description="Failed sign-ins allowed per client address within login_window, "
        "whatever the account.",
    )
    login_window: Duration = Field(
        default=timedelta(minutes=1), description="The window login throttling counts in."
    )


class XBudgetSettings(_Model):
    """Our own cap on X API reads, below the paid tier's quota (counted per X source)."""

    requests_per_15min: int | None = Field(
        default=None,
        ge=1,
        description="Most read requests per source in a 15-minute window (none: no own cap).",
    )
    requests_per_month: int | None = Field(
        default=None,
        ge=1,
        description="Most read requests per source in a calendar month, UTC (none: no own cap).",
    )
    warn_at: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description="Fraction of a budget (or of X's own rate limit) used that raises a warning.",
    )


class XSettings(_Model):
    """X (Twitter) API access; credentials come from the environment."""

    api_base_url: str = Field(
        default="https://api.twitter.com",
        description="API host; another base (e.g. http://127.0.0.1:8765) for a local test server.",
    )
    budget: XBudgetSettings = Field(
        default_factory=XBudgetSettings,
        description="Request budget that stops polling before X's quota runs out.",
    )
    bearer_token: SecretStr | None = Field(default=None, description="App-only token (reads).")
    consumer_key: SecretStr | None = Field(default=None, description="User context (posting).")
    consumer_secret: SecretStr | None = Field(default=None, description="User context.")
    access_token: SecretStr | None = Field(default=None, description="User context.")
    access_token_secret: SecretStr | None = Field(default=None, description="User context.")


class MastodonSettings(_Model):
    """Mastodon: the brand account's instance and token (replies are posted there)."""

    base_url: str | None = Field(
        default=None,
        description="The brand account's instance, e.g. https://mastodon.social: replies are "
        "posted there, and mastodon sources without a base_url read it.",
    )
    access_token: SecretStr | None = Field(
        default=None,
        description="The brand account's access token (scopes read:notifications, "
        "read:search, read:statuses, write:statuses); use ${MASTODON_ACCESS_TOKEN}. Sent only "
        "to base_url: sources on other instances read public timelines without it.",
    )

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        return None if v in (None, "") else http_url(v)


class BlueskySettings(_Model):
    """Bluesky: the brand account's sign-in (an app password from the environment)."""

    base_url: str = Field(
        default="https://bsky.social",
        description="The brand account's PDS (or bsky.social): sign-in, replies, and every "
        "bluesky source without a base_url go through it.",
    )
    handle: str | None = Field(
        default=None,
        description="The brand account's handle, e.g. zephyrshoes.bsky.social (empty: the "
        "first bluesky source's handle).",
    )
    app_password: SecretStr | None = Field(
        default=None,
        description="An app password of that account (Settings → Privacy and security → App "
        "passwords); use ${BLUESKY_APP_PASSWORD}.",
    )

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        return http_url(v)


class RedditSettings(_Model):
    """Reddit: OAuth for the brand account (a "script" app, or a refresh token)."""

    base_url: str = Field(
        default="https://oauth.reddit.com",
        description="The OAuth API root; reddit sources without a base_url and replies use it.",
    )
    auth_url: str = Field(
        default="https://www.reddit.com",
        description="Where access tokens come from (POST /api/v1/access_token).",
    )
    username: str | None = Field(
        default=None,
        description="The brand's Reddit account, without u/ (empty: the first reddit "
        "source's username).",
    )
    client_id: SecretStr | None = Field(
        default=None, description="The app's client id; use ${REDDIT_CLIENT_ID}."
    )
    client_secret: SecretStr | None = Field(
        default=None, description="The app's secret; use ${REDDIT_CLIENT_SECRET}."
    )
    password: SecretStr | None = Field(
        default=None,
        description="The account's password (script apps); use ${REDDIT_PASSWORD}.",
    )
    refresh_token: SecretStr | None = Field(
        default=None,
        description="A refresh token (installed or web apps) instead of the password; use "
        "${REDDIT_REFRESH_TOKEN}.",
    )
    user_agent: str | None = Field(
        default=None,
        description="Reddit asks for 'platform:app-id:version (by /u/name)'; empty: "
        "polling.user_agent with the account name.",
    )

    @field_validator("base_url", "auth_url")
    @classmethod
    def _url(cls, v: str) -> str:
        return http_url(v)

    @field_validator("username")
    @classmethod
    def _user(cls, v: str | None) -> str | None:
        return v.strip().removeprefix("/").removeprefix("u/") or None if v else None


class WorkersSettings(_Model):
    """Celery workers for several machines (``listener worker`` / ``listener beat``)."""

    broker_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        description="Celery broker: redis://… or amqp://user:pass@host:5672// (RabbitMQ).",
    )
    result_backend: str | None = Field(
        default=None, description="Celery result backend (optional; results are not needed)."
    )
    concurrency: int = Field(default=2, ge=1, le=256, description="Processes per worker.")
    prefetch_multiplier: int = Field(
        default=1, ge=1, le=64, description="Messages a worker process reserves ahead."
    )
    visibility_timeout: Duration = Field(
        default=timedelta(hours=1),
        description="Redis broker: an unacknowledged task is redelivered after this long.",
    )
    dispatch_interval: Duration = Field(
        default=timedelta(seconds=10),
        description="How often `listener beat` enqueues due sources and approved messages.",
    )
    lease: Duration = Field(
        default=timedelta(seconds=60),
        description="A worker's claim on a source or message; renewed while it works.",
    )
    classify_batch: int = Field(
        default=256, ge=1, le=100_000, description="Mentions per re-classification task."
    )
    queue: str = Field(default="listener", description="Celery queue the tasks go through.")


class AlertsSettings(_Model):
    """Spike, shift and source-health alerts, and where they are sent (see docs/alerts.md)."""

    enabled: bool = Field(
        default=True, description="Evaluate alerts after every poll (false: never raise any)."
    )
    lookback: Duration = Field(
        default=timedelta(hours=6),
        description="Only hourly windows that end within this long of now can raise a spike or "
        "shift alert (a backfill of older posts never does).",
    )
    baseline: Duration = Field(
        default=timedelta(days=28),
        description="History the seasonal baseline (hour of day, day of week) is learnt from.",
    )
    min_history: Duration = Field(
        default=timedelta(days=3),
        description="Spike and shift detection waits until this much history exists.",
    )
    threshold: float = Field(
        default=4.0,
        gt=0,
        le=50,
        description="How unusual an hour must be to alert: standard deviations above the "
        "seasonal baseline (volume) or above the usual negative share (shift).",
    )
    min_ratio: float = Field(
        default=2.0, ge=1, le=100, description="A spike is at least this many times the baseline."
    )
    min_posts: int = Field(
        default=10, ge=1, le=100_000, description="Fewest posts in an hour that can be a spike."
    )
    negative_shift: float = Field(
        default=0.25,
        gt=0,
        le=1,
        description="Smallest rise of the negative share (0.25 = 25 points) that is a shift.",
    )
    silent_after: int = Field(
        default=4,
        ge=2,
        le=1000,
        description="A source is silent after this many of its usual gaps between posts "
        "without a new one.",
    )
    silent_min: Duration = Field(
        default=timedelta(hours=2),
        description="Never call a source silent before this long without posts.",
    )
    quota_grace: Duration = Field(
        default=timedelta(minutes=15),
        description="A rate-limited source counts as failing (`listener health`) once its reset "
        "time is this far past, or when it is rate-limited again after the reset.",
    )
    send_failures: int = Field(
        default=3,
        ge=1,
        le=1000,
        description="Outbox messages failed or retrying that make a send_failing alert.",
    )
    cooldown: Duration = Field(
        default=timedelta(hours=1),
        description="The same alert coming back within this long after it was resolved "
        "re-opens it without notifying again.",
    )
    webhook_url: SecretStr | None = Field(
        default=None,
        description="POST each new alert here as JSON with a Slack-compatible `text` "
        "(e.g. ${ALERTS_WEBHOOK_URL}).",
    )
    webhook_timeout: Duration = Field(
        default=timedelta(seconds=10), description="Timeout of one webhook request."
    )
    email_to: list[str] = Field(
        default_factory=list,
        description="E-mail each new alert to these addresses (through the email: SMTP settings).",
    )
    notify_attempts: int = Field(
        default=6, ge=1, le=100, description="Attempts to deliver a notification before giving up."
    )

    @field_validator("webhook_url", mode="before")
    @classmethod
    def _empty_url(cls, v: Any) -> Any:
        return None if v == "" else v

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not re.match(r"^https?://[^\s/]+", v.get_secret_value()):
            raise ValueError("webhook_url must be an http(s) URL")
        return v

    @field_validator("email_to")
    @classmethod
    def _addresses(cls, v: list[str]) -> list[str]:
        bad = [a for a in v if not re.fullmatch(r"[^@\s]+@[^@\s]+", a)]
        if bad:
            raise ValueError(f"not an e-mail address: {', '.join(bad)}")
        return v


class CompetitorSettings(_Model):
    """Another brand counted in share of voice."""

    name: str = Field(description="The name shown on the dashboard.")
    terms: list[str] = Field(
        min_length=1,
        description="Words and handles that mean this brand (case-insensitive, whole words).",
    )


class DashboardSettings(_Model):
    """Marketing's dashboard: share of voice and top terms."""

    competitors: list[CompetitorSettings] = Field(
        default_factory=list,
        description="Brands compared with ours in share of voice (posts that name them, among "
        "what the sources collect).",
    )
    term_sample: int = Field(
        default=400,
        ge=50,
        le=100_000,
        description="Posts read per period (spread over it) for top terms and emerging topics.",
    )

    @field_validator("competitors")
    @classmethod
    def _unique_names(cls, v: list[CompetitorSettings]) -> list[CompetitorSettings]:
        names = [c.name.lower() for c in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate competitor name(s): {', '.join(dupes)}")
        return v


class LoggingSettings(_Model):
    """Log output of long-running commands (`listener run`, workers, web)."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Minimum level logged."
    )
    json_logs: bool = Field(default=False, alias="json", description="One JSON object per line.")


class Settings(_Model):
    """Everything config.yaml can say."""

    brand: BrandSettings = Field(description="The brand: name, handles, keywords, voice.")
    database: DatabaseSettings = Field(
        default_factory=DatabaseSettings, description="Where mentions, cases and events live."
    )
    sources: list[SourceSettings] = Field(
        default_factory=list, description="Where to listen: feeds, files, X, …"
    )
    classifier: ClassifierSettings = Field(
        default_factory=ClassifierSettings, description="The model that flags unhappy customers."
    )
    triage: TriageSettings = Field(
        default_factory=TriageSettings, description="Priorities and response targets."
    )
    linking: LinkingSettings = Field(
        default_factory=LinkingSettings,
        description="One customer across sources: suggested links between cases.",
    )
    recovery: RecoverySettings = Field(
        default_factory=RecoverySettings, description="Reply templates, offers, approvals."
    )
    email: EmailSettings = Field(
        default_factory=EmailSettings, description="SMTP for email replies."
    )
    web: WebSettings = Field(default_factory=WebSettings, description="`listener serve`.")
    polling: PollingSettings = Field(
        default_factory=PollingSettings, description="How collectors reach the network."
    )
    x: XSettings = Field(default_factory=XSettings, description="X (Twitter) API access.")
    mastodon: MastodonSettings = Field(
        default_factory=MastodonSettings, description="Mastodon: the brand account's instance."
    )
    bluesky: BlueskySettings = Field(
        default_factory=BlueskySettings, description="Bluesky: the brand account's sign-in."
    )
    reddit: RedditSettings = Field(
        default_factory=RedditSettings, description="Reddit: OAuth for the brand account."
    )
    workers: WorkersSettings = Field(
        default_factory=WorkersSettings, description="Celery workers (scale-out mode)."
    )
    logging: LoggingSettings = Field(
        default_factory=LoggingSettings, description="Log level and format."
    )
    limits: LimitsSettings = Field(
        default_factory=LimitsSettings,
        description="Bounds on posts from sources: size, nesting, dates, bytes per poll.",
    )
    alerts: AlertsSettings = Field(
        default_factory=AlertsSettings,
        description="Spike, shift and source-health alerts; webhook and e-mail notifications.",
    )
    dashboard: DashboardSettings = Field(
        default_factory=DashboardSettings,
        description="Marketing's dashboard: competitors for share of voice, top terms.",
    )

    #: Directory relative paths are resolved against (the config file's folder).
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)
    config_path: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _unique_sources(self) -> Settings:
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate source name(s): {', '.join(dupes)}")
        for i, src in enumerate(self.sources):
            if src.type == "mastodon" and not (src.base_url or self.mastodon.base_url):
                raise ValueError(
                    f"sources[{i}].base_url: a mastodon source needs its instance "
                    "(base_url, or mastodon.base_url)"
                )
        return self

    @overload
    def resolve_path(self, path: str | Path) -> Path: ...
    @overload
    def resolve_path(self, path: str | Path | None) -> Path | None: ...
    def resolve_path(self, path: str | Path | None) -> Path | None:
        """``path`` relative to config.yaml's folder (``None`` stays ``None``)."""
        if path is None:
            return None
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)

    def data_dir(self) -> Path:
        """Where Listener keeps its own files (``var/``): beside a SQLite database file,
        else in config.yaml's folder."""
        url = self.database.url
        if url.startswith("sqlite:///") and ":memory:" not in url:
            db = Path(url.removeprefix("sqlite:///"))
            base = db.parent if db.is_absolute() else self.resolve_path(db).parent
        else:
            base = self.base_dir
        return base / "var"

    def check_paths(self) -> None:
        """Folders config.yaml names must exist (``init`` and ``config`` call this)."""
        folder = self.resolve_path(self.recovery.templates_dir)
        if folder is not None and not folder.is_dir():
            where = self.config_path or "config.yaml"
            raise ConfigError(
                f"{where}: recovery.templates_dir: {str(folder)!r} is not a folder "
                "(remove the key to use the packaged templates, or create it with "
                "`listener templates copy DIR`)"
            )

    def source(self, name: str) -> SourceSettings:
        for s in self.sources:
            if s.name == name:
                return s
        from listener.errors import NotFound

        raise NotFound(f"no source named {name!r} in {self.config_path or 'the configuration'}")


# ---------------------------------------------------------------------------
# loading

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _fmt_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _substitute_env(node: Any, loc: tuple[Any, ...], env: dict[str, str], where: str) -> Any:
    if isinstance(node, dict):
        return {k: _substitute_env(v, (*loc, k), env, where) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute_env(v, (*loc, i), env, where) for i, v in enumerate(node)]
    if isinstance(node, str) and "${" in node:

        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env and env[name] != "":
                return env[name]
            if default is not None:
                return default
            raise ConfigError(
                f"{where}: {_fmt_loc(loc)}: environment variable {name} is not set "
                f"(the value refers to ${{{name}}})"
            )

        return _ENV_REF.sub(repl, node)
    return node


def _pydantic_error_line(err: ValidationError, where: str) -> str:
    first = err.errors()[0]
    loc = tuple(p for p in first["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    typ = first.get("type", "")
    msg = first.get("msg", "invalid value")
    if typ == "extra_forbidden":
        msg = "unknown key"
    elif typ == "missing":
        msg = "required key is missing"
    msg = msg.removeprefix("Value error, ")
    more = len(err.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{where}: {_fmt_loc(loc)}: {msg}{suffix}"


def settings_from_dict(
    data: dict[str, Any],
    *,
    where: str = "config.yaml",
    base_dir: Path | None = None,
    env: dict[str, str] | None = None,
) -> Settings:
    """Validate an already-parsed config mapping (used by tests and the loader)."""
    env = dict(os.environ) if env is None else env
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: the file must contain a mapping of settings")
    data = _substitute_env(data, (), env, where)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_pydantic_error_line(err, where)) from None
    if base_dir is not None:
        settings.base_dir = base_dir
    override = env.get(DATABASE_URL_ENV)
    if override:
        settings.database.url = override
    from listener.redact import register_settings

    register_settings(settings)  # logs and errors mask these values from now on
    return settings


def load_settings(path: str | Path | None = None, env: dict[str, str] | None = None) -> Settings:
    """Read and validate config.yaml (default ``./config.yaml``)."""
    p = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    where = str(p)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{where}: file not found (pass --config PATH)") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{where}: {line}{problem}") from None
    if data is None:
        data = {}
    settings = settings_from_dict(data, where=where, base_dir=p.resolve().parent, env=env)
    settings.config_path = p
    return settings
