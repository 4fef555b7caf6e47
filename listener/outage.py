"""Riding out outages of the database and the broker.

Long-running processes (``listener run``, ``listener beat``, Celery workers)
must outlive a database restart or a broker failover: an error that means
"the service is unreachable" is retried with exponential backoff, logged once
when the outage starts and once when it ends, and never ends the process.

* :func:`is_outage` (pure) tells such an error from a bug: connection errors of
  SQLAlchemy/psycopg, kombu, redis and amqp, socket errors, and
  :class:`~listener.errors.StorageError` caused by one.  SQLite's own
  ``OperationalError`` counts only when the file is locked or unreadable
  (a missing table is a bug, not an outage).
* :class:`Outage` keeps the state of one dependency: when it went down, how
  many attempts failed, the next delay.
* :func:`ride_out` calls a function until it succeeds (or the process is told
  to stop), sleeping the backoff between attempts.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import structlog

from listener.errors import StorageError
from listener.redact import mask_text

log = structlog.get_logger("listener.outage")
T = TypeVar("T")

#: (module prefix, class name) of errors that mean "cannot reach the service".
_OUTAGE_CLASSES = frozenset(
    {
        ("sqlalchemy", "OperationalError"),
        ("sqlalchemy", "InterfaceError"),
        ("sqlalchemy", "DisconnectionError"),
        ("sqlalchemy", "TimeoutError"),  # the pool: no connection came back in time
        ("psycopg", "OperationalError"),
        ("psycopg", "InterfaceError"),
        ("kombu", "OperationalError"),
        ("kombu", "ConnectionError"),
        ("redis", "ConnectionError"),
        ("redis", "TimeoutError"),
        ("redis", "BusyLoadingError"),
        ("amqp", "ConnectionError"),
        ("amqp", "RecoverableConnectionError"),
        ("celery", "OperationalError"),
    }
)
#: SQLite OperationalError messages that are an outage (the rest are bugs).
_SQLITE_TRANSIENT = ("locked", "busy", "unable to open", "disk i/o", "readonly database")


def _is_outage_class(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionError | TimeoutError):  # OSError subclasses: sockets
        return True
    for cls in type(exc).__mro__:
        module = cls.__module__.split(".", 1)[0]
        if (module, cls.__name__) in _OUTAGE_CLASSES:
            return not (module == "sqlalchemy" and _is_sqlite_bug(exc))
    return getattr(exc, "connection_invalidated", False) is True


def _is_sqlite_bug(exc: BaseException) -> bool:
    orig = getattr(exc, "orig", None)
    if orig is None or type(orig).__module__.split(".", 1)[0] != "sqlite3":
        return False
    message = str(orig).lower()
    return not any(word in message for word in _SQLITE_TRANSIENT)


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` (or an error it was raised from) means a service is unreachable."""
    seen: set[int] = set()
    node: BaseException | None = exc
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        if _is_outage_class(node):
            return True
        if isinstance(node, StorageError) and "cannot reach" in str(node):
            return True
        node = node.__cause__ or node.__context__
    return False


class Outage:
    """The state of one dependency (``"database"``, ``"broker"``) in one process.

    :meth:`failed` logs ``<what>.unavailable`` on the first failure of an
    outage only and returns the delay before the next attempt (exponential,
    ``base`` doubling up to ``cap``, ±20 % jitter); :meth:`recovered` logs
    ``<what>.restored`` with the outage's length once it is over.  Thread-safe.
    """

    def __init__(
        self,
        what: str,
        *,
        base: float = 1.0,
        cap: float = 30.0,
        logger: Any = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.base, self.cap = base, cap
        self.log = logger or log
        self.rng = rng or random.Random()
        self.clock = clock
        self.failures = 0
        self.since: float | None = None
        self._lock = threading.Lock()

    @property
    def down(self) -> bool:
        return self.since is not None

    def delay(self) -> float:
        """The wait before the next attempt, from the failures so far."""
        step = min(self.cap, self.base * 2 ** max(0, self.failures - 1))
        return step * self.rng.uniform(0.8, 1.2)

    def failed(self, exc: BaseException) -> float:
        """Count a failed attempt; returns the seconds to wait before the next one."""
        with self._lock:
            self.failures += 1
            if self.since is None:
                self.since = self.clock()
                self.log.error(
                    f"{self.what}.unavailable",
                    error=mask_text(f"{type(exc).__name__}: {exc}")[:300],
                    action="retrying with backoff until it is back",
                )
            return self.delay()

    def recovered(self) -> None:
        """The dependency answered again (logs once, if it was down)."""
        with self._lock:
            if self.since is None:
                return
            down_for = self.clock() - self.since
            self.log.warning(
                f"{self.what}.restored", down_s=round(down_for, 1), attempts=self.failures
            )
            self.since, self.failures = None, 0


def ride_out(
    fn: Callable[[], T],
    outage: Outage,
    *,
    stopping: threading.Event | None = None,
) -> T:
    """``fn()``, retried through outages (other errors propagate).

    Raises :class:`InterruptedError` when ``stopping`` is set while waiting.
    """
    while True:
        try:
            result = fn()
        except Exception as exc:
            if not is_outage(exc):
                raise
            delay = outage.failed(exc)
            if stopping is not None:
                if stopping.wait(delay):
                    raise InterruptedError("stopped while waiting for the service") from exc
            else:
                time.sleep(delay)
            continue
        outage.recovered()
        return result


def broker_reachable(url: str, timeout: float = 3.0) -> tuple[bool, str | None]:
    """Whether the Celery broker at ``url`` accepts a connection: (ok, error)."""
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=timeout) as conn:
            conn.ensure_connection(
                max_retries=1, interval_start=0, interval_step=0, timeout=timeout
            )
    except Exception as exc:
        return False, mask_text(f"{type(exc).__name__}: {exc}")[:300]
    return True, None
