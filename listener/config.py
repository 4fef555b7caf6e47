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
from typing import Annotated, Any, Literal

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


class BrandSettings(_Model):
    """The brand being listened for."""

    name: str = Field(description="The brand's name, used in replies.")
    handles: list[str] = Field(
        default_factory=list, description="The brand's social handles, e.g. '@acmeshoes'."
    )
    keywords: list[str] = Field(
        default_factory=list,
        description="Words and phrases that mean the brand (case-insensitive, whole words).",
    )
    aliases: list[str] = Field(
        default_factory=list, description="Other names customers use (nicknames, misspellings)."
    )
    exclusions: list[str] = Field(
        default_factory=list,
        description="Phrases that look like the brand but are not (e.g. 'acme corporation').",
    )
    voice: str = Field(
        default="warm, personal, plain-spoken; we own mistakes and fix them",
        description="The tone replies are written in.",
    )
    website: str | None = Field(default=None, description="The brand's website (allowed in links).")

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


class SourceSettings(_Model):
    """One place to listen: a feed, a file of posts, an X query, …"""

    name: str = Field(description="Unique name; letters, digits, '-', '_', '.'.")
    type: str = Field(description="Collector type: feed, jsonl, x_search, x_mentions, …")
    url: str | None = Field(default=None, description="http(s) URL (feed).")
    path: str | None = Field(default=None, description="Local file (feed, jsonl).")
    query: str | None = Field(default=None, description="Search query (x_search, …).")
    username: str | None = Field(default=None, description="Account whose mentions to read.")
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

    @model_validator(mode="after")
    def _type_fields(self) -> SourceSettings:
        from listener.collectors import COLLECTOR_TYPES

        if self.type not in COLLECTOR_TYPES:
            raise ValueError(
                f"unknown source type {self.type!r} (one of: {', '.join(sorted(COLLECTOR_TYPES))})"
            )
        needs = COLLECTOR_TYPES[self.type].needs
        if needs and not any(getattr(self, f) for f in needs):
            raise ValueError(f"source type {self.type!r} needs {' or '.join(needs)}")
        return self

    @property
    def location(self) -> str:
        """What the source reads, for display."""
        return self.url or self.path or self.query or self.username or ""


class DatabaseSettings(_Model):
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


class TriageSettings(_Model):
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


class RecoverySettings(_Model):
    templates_dir: str = Field(default="templates", description="Folder of Jinja2 templates.")
    agent_name: str = Field(default="The Loyalty Team", description="Signs drafted replies.")
    signature: str = Field(default="", description="Appended to email replies.")
    offers: list[dict[str, Any]] = Field(
        default_factory=list, description="The offer catalogue (see docs/configuration.md)."
    )


class WebSettings(_Model):
    host: str = Field(default="127.0.0.1", description="Address `listener serve` binds.")
    port: int = Field(default=8080, ge=1, le=65535, description="Port `listener serve` binds.")
    secret_key: SecretStr | None = Field(
        default=None, description="Signs session cookies; use ${LISTENER_SECRET_KEY}."
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


class LoggingSettings(_Model):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_logs: bool = Field(default=False, alias="json", description="One JSON object per line.")


class Settings(_Model):
    """Everything config.yaml can say."""

    brand: BrandSettings
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    sources: list[SourceSettings] = Field(default_factory=list)
    classifier: ClassifierSettings = Field(default_factory=ClassifierSettings)
    triage: TriageSettings = Field(default_factory=TriageSettings)
    recovery: RecoverySettings = Field(default_factory=RecoverySettings)
    web: WebSettings = Field(default_factory=WebSettings)
    polling: PollingSettings = Field(default_factory=PollingSettings)
    x: XSettings = Field(default_factory=XSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)

    #: Directory relative paths are resolved against (the config file's folder).
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)
    config_path: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _unique_sources(self) -> Settings:
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate source name(s): {', '.join(dupes)}")
        return self

    def resolve_path(self, path: str | Path) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)

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
