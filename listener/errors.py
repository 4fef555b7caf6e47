"""Listener's exception tree, documented in one place.

Third-party errors (httpx, tweepy, SQLAlchemy, pydantic, Jinja2…) are caught
at the boundary where they happen and re-raised as one of these, with the
original chained as ``__cause__``.

    ListenerError
    ├── ConfigError              config.yaml is missing, malformed or names a missing secret
    ├── StorageError             the database cannot be reached or migrated
    ├── CollectorError           a source could not be collected (recorded on the source)
    │   ├── TransientError       network error, timeout, 5xx: retry later with backoff
    │   │   └── RateLimited      429 / budget exhausted: retry at ``retry_at``
    │   ├── SourceFailing        401/403, bad credentials or query: a human must act
    │   └── SourceGone           410 Gone: the source is disabled
    ├── ClassifierError          the model cannot be loaded or run
    ├── TemplateError            a reply template is missing, unsafe or fails to render
    ├── PolicyViolation          a reply breaks a sending rule (length, links, @mentions…)
    ├── PermissionDenied         the person's role or tier does not allow the action
    ├── Conflict                 someone else got there first (claimed case, spent budget…)
    │   └── StaleDraft           the reply changed since the actor saw it (carries the current one)
    ├── DeliveryError            a channel could not send (SMTP down, X 5xx): retried later
    └── NotFound                 a named source, mention or case does not exist
"""

from __future__ import annotations

from datetime import datetime


class ListenerError(Exception):
    """Base class of every error Listener raises on purpose."""


class ConfigError(ListenerError):
    """The configuration cannot be used. ``str(err)`` is one line naming the file and key."""


class StorageError(ListenerError):
    """The database cannot be reached, created or migrated."""


class CollectorError(ListenerError):
    """A source could not be collected this time."""


class TransientError(CollectorError):
    """Temporary failure (network, timeout, 5xx): back off and retry."""


class RateLimited(TransientError):
    """The remote asked us to wait (429) or our own request budget is spent."""

    def __init__(self, message: str, retry_at: datetime | None = None) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class SourceFailing(CollectorError):
    """Needs a human: bad credentials (401/403), a bad query, a missing file."""


class SourceGone(CollectorError):
    """The source is gone for good (410): it gets disabled with this reason."""


class ClassifierError(ListenerError):
    """The classifier cannot be loaded or run."""


class TemplateError(ListenerError):
    """A template is missing, unsafe, or fails to render."""


class PolicyViolation(ListenerError):
    """A reply breaks a sending rule; nothing is sent."""


class NotFound(ListenerError):
    """A named object does not exist."""


class PermissionDenied(ListenerError):
    """The actor's role or approval tier does not allow this action."""


class Conflict(ListenerError):
    """The action lost a race or breaks a cap: the case is claimed by someone else, the
    daily budget is spent, the state changed underneath."""


class StaleDraft(Conflict):
    """The reply changed since the actor saw it: nothing was overwritten or approved.

    ``version``, ``text`` and ``subject`` are the current draft's (None when
    there is none), so the interface can show it beside the actor's own.
    """

    def __init__(
        self,
        message: str,
        *,
        version: int | None,
        text: str | None,
        subject: str | None = None,
    ) -> None:
        super().__init__(message)
        self.version = version
        self.text = text
        self.subject = subject

    def current(self) -> dict[str, object]:
        return {"draft_version": self.version, "text": self.text, "subject": self.subject}


class DeliveryError(ListenerError):
    """A channel failed to send; ``retryable`` says whether to try again later."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable
