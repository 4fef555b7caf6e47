"""The Celery app for running Listener on several machines.

Start workers with ``listener worker`` (or ``celery -A listener.tasks worker``)
and one dispatcher with ``listener beat`` (or ``celery -A listener.tasks beat``,
whose schedule calls :func:`dispatch_due`).  Each process builds its
:class:`~listener.app.App` from ``LISTENER_CONFIG`` (default ``./config.yaml``);
the ``workers:`` block of that file names the broker (Redis or RabbitMQ).
Use PostgreSQL as the database in this mode.

Delivery guarantees: tasks are acknowledged late (after they finish) and
re-queued if their worker dies (``task_acks_late``,
``task_reject_on_worker_lost``), so a task may run twice; every task is
idempotent:

* ``poll_source`` claims the source row first (``FOR UPDATE SKIP LOCKED``,
  lease committed before any network I/O); a duplicate finds it claimed
  (retries after the lease) or no longer due (nothing to do); mentions are
  unique per (source, external id).
* ``classify_batch`` locks its mentions and skips those already classified by
  the current model.
* ``send_message`` goes through the outbox, whose idempotency key and
  ``sending`` state make a second run a no-op or a checked retry.

Outages: a worker reconnects to a lost broker for ever (``broker_connection_*``
settings), and a task that finds the database (or the broker) unreachable is
retried with exponential backoff (2 s doubling to 60 s) instead of failing;
each worker process logs ``database.unavailable`` once per outage and
``database.restored`` when a task gets through again.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from celery import Celery, Task
from celery.exceptions import Retry

from listener.broker import transport_for

if TYPE_CHECKING:
    from listener.app import App
    from listener.config import Settings

log = structlog.get_logger("listener.tasks")

CONFIG_ENV = "LISTENER_CONFIG"
#: Retries of a task whose row another (possibly dead) worker still holds.
MAX_LEASE_RETRIES = 10
#: Seconds after which the beat enqueues unfinished re-classification batches again.
CLASSIFY_REQUEUE_AFTER = 600.0

_state: dict[str, Any] = {}
_state_lock = threading.Lock()


def config_path() -> Path:
    return Path(os.environ.get(CONFIG_ENV) or "config.yaml")


def settings() -> Settings:
    """This process's settings (read once from ``LISTENER_CONFIG``)."""
    with _state_lock:
        if "settings" not in _state:
            from listener.config import load_settings

            _state["settings"] = for_workers(load_settings(config_path()))
        return _state["settings"]  # type: ignore[no-any-return]


def for_workers(s: Settings) -> Settings:
    """``s`` as Celery workers run it: feeds parsed in the worker's own process.

    Workers are already one process each (prefork, whose children may not have
    children of their own), so they get no parse pool unless
    ``polling.parse_workers`` asks for one explicitly.
    """
    if s.polling.parse_workers is not None:
        return s
    polling = s.polling.model_copy(update={"parse_workers": 0})
    return s.model_copy(update={"polling": polling})


def get_app() -> App:
    """This process's App, created on first use *in this process* (after a fork)."""
    with _state_lock:
        app = _state.get("app")
        if app is None or _state.get("pid") != os.getpid():
            from listener.app import App

            app = None
    if app is None:
        built = App.from_settings(settings())
        with _state_lock:
            _state["app"], _state["pid"] = built, os.getpid()
        return built
    return app  # type: ignore[no-any-return]


def celery_config(s: Settings) -> dict[str, Any]:
    """Celery settings from the ``workers:`` block (pure)."""
    w = s.workers
    visibility = w.visibility_timeout.total_seconds()
    conf: dict[str, Any] = {
        "broker_url": w.broker_url,
        "result_backend": w.result_backend,
        "task_ignore_result": w.result_backend is None,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": w.prefetch_multiplier,
        "worker_concurrency": w.concurrency,
        "broker_transport_options": {
            # Redis: a task whose worker died comes back after visibility_timeout; sweep for
            # such tasks often enough that a short timeout means a short wait
            "visibility_timeout": visibility,
            "unacked_restore_interval": max(1, min(10, int(visibility / 4))),
            "unacked_restore_throttle": 1,
        },
        # ride out broker outages: reconnect for ever (with Celery's backoff), never exit
        "broker_connection_retry_on_startup": True,
        "broker_connection_retry": True,
        "broker_connection_max_retries": None,
        "broker_channel_error_retry": True,
        "task_default_queue": w.queue,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "timezone": "UTC",
        "enable_utc": True,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        # No remote control (celery inspect/control; Listener uses neither): on Redis its
        # fan-out (pub/sub) connection noticed a lost broker while BRPOP was in flight, and
        # kombu 5.7's cleanup then crashed the worker ("Unrecoverable error: AttributeError
        # 'NoneType' object has no attribute 'hostname'") instead of reconnecting.
        "worker_enable_remote_control": False,
        "beat_schedule": {
            "listener-dispatch-due": {
                "task": "listener.dispatch_due",
                "schedule": w.dispatch_interval.total_seconds(),
                "options": {"expires": w.dispatch_interval.total_seconds()},
            }
        },
    }
    if w.broker_url.startswith(("amqp", "pyamqp")):
        # RabbitMQ: redeliver an unacked message only when its consumer is gone
        conf["broker_transport_options"] = {}
    # Redis: kombu's transport with an acknowledgement that a broker blip cannot turn
    # into a worker that never asks for work again (listener.broker)
    conf["broker_transport"] = transport_for(w.broker_url)
    return conf


celery_app = Celery("listener", set_as_current=False)
app = celery_app  # ``celery -A listener.tasks`` finds ``app``


@celery_app.on_configure.connect
def _configure(sender: Celery, **_kwargs: Any) -> None:
    sender.conf.update(celery_config(settings()))


def configure_from(s: Settings) -> Celery:
    """Use ``s`` instead of reading ``LISTENER_CONFIG`` (CLI commands, tests, benchmark)."""
    s = for_workers(s)
    with _state_lock:
        _state["settings"] = s
    conf = celery_config(s)
    changed = celery_app.configured and (
        celery_app.conf.broker_url != conf["broker_url"]
        or celery_app.conf.task_default_queue != conf["task_default_queue"]
    )
    celery_app.conf.update(conf)
    if changed:
        # forget the connection pool and routing made for the earlier broker/queue
        celery_app._pool = None
        celery_app.__dict__.pop("amqp", None)
    return celery_app


#: This process's view of the database (one log line per outage, not per task).
_DATABASE = None


def _database_outage() -> Any:
    global _DATABASE
    if _DATABASE is None:
        from listener.outage import Outage

        _DATABASE = Outage("database", base=2.0, cap=60.0, logger=log)
    return _DATABASE


def riding_outages(task: Task, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``; an outage error becomes a retry of ``task`` with backoff
    (no retry limit: the outage ends some time), any other error propagates."""
    from listener.outage import is_outage

    outage = _database_outage()
    try:
        result = fn(*args, **kwargs)
    except Exception as exc:
        if not is_outage(exc) or isinstance(exc, Retry):
            raise
        raise task.retry(exc=exc, countdown=outage.failed(exc), max_retries=None) from None
    outage.recovered()
    return result


def _owner(task: Task) -> str:
    from listener.locks import default_owner

    return default_owner(str(task.request.id or "local"))


def _seconds_left(until: datetime | None) -> float:
    if until is None:
        return 0.0
    return max(0.0, (until - datetime.now(UTC)).total_seconds())


# ---------------------------------------------------------------------------
# tasks


@celery_app.task(
    name="listener.poll_source",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_LEASE_RETRIES,
)
def poll_source(self: Task, name: str, force: bool = False) -> dict[str, Any] | None:
    """Poll one source under a claim; a duplicate or late copy does nothing."""
    return riding_outages(self, _poll_source, self, name, force)  # type: ignore[no-any-return]


def _poll_source(task: Task, name: str, force: bool) -> dict[str, Any] | None:
    from listener.locks import source_is_due, source_lease
    from listener.scheduler import poll_claimed

    a = get_app()
    outcome = poll_claimed(a, name, owner=_owner(task), force=force)
    if outcome is not None:
        return outcome.as_dict()
    if not force and not source_is_due(a, name):
        return None  # polled meanwhile (this is a duplicate or a late copy): nothing to do
    # still due but claimed by another worker (maybe a dead one whose task this is):
    # try again once its lease has run out
    _holder, until = source_lease(a, name)
    raise task.retry(countdown=_seconds_left(until) + 0.5)


@celery_app.task(
    name="listener.classify_batch", bind=True, acks_late=True, reject_on_worker_lost=True
)
def classify_batch(self: Task, mention_ids: list[int]) -> int:
    """(Re-)classify mentions that lack the current model's classification."""
    from listener.scheduler import classify_mentions

    ids = [int(i) for i in mention_ids]
    return riding_outages(self, lambda: classify_mentions(get_app(), ids))  # type: ignore[no-any-return]


@celery_app.task(
    name="listener.send_message", bind=True, acks_late=True, reject_on_worker_lost=True
)
def send_message(self: Task, message_id: int) -> str:
    """Send one approved outbox message (exactly once, by its idempotency key)."""
    from listener.scheduler import send_claimed

    owner = _owner(self)
    return riding_outages(  # type: ignore[no-any-return]
        self, lambda: send_claimed(get_app(), int(message_id), owner=owner)
    )


@celery_app.task(name="listener.dispatch_due", bind=True, acks_late=True)
def dispatch_due(self: Task, classify: bool = True) -> dict[str, Any]:
    """Enqueue due sources, messages to send and mentions to re-classify."""
    return riding_outages(self, lambda: enqueue_due(get_app(), classify=classify))  # type: ignore[no-any-return]


def enqueue_due(
    a: App, *, classify: bool = True, state: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What ``listener beat`` does each tick (also callable without a worker).

    ``state`` (kept by the beat between ticks) stops a re-classification
    backlog from being enqueued again every tick while the batches already
    enqueued are still being worked on (they would be no-ops, but they pile up).
    """
    from listener.scheduler import plan_dispatch

    version = a.classifier.version if classify else None
    plan = plan_dispatch(a, model_version=version, classify=classify)
    if plan.classify and state is not None:
        upto, at = state.get("classify_upto"), state.get("classify_at", 0.0)
        in_flight = upto is not None and plan.classify[0][0] <= upto
        if in_flight and time.monotonic() - at < CLASSIFY_REQUEUE_AFTER:
            plan.classify = []
        else:
            state["classify_upto"], state["classify_at"] = plan.classify[-1][-1], time.monotonic()
    expires = max(60.0, a.settings.workers.dispatch_interval.total_seconds() * 6)
    for name in plan.sources:
        poll_source.apply_async((name,), expires=expires)
    for mid in plan.messages:
        send_message.apply_async((mid,), expires=expires)
    for batch in plan.classify:
        classify_batch.apply_async((batch,), expires=expires)
    if plan.sources or plan.messages or plan.classify:
        log.info("dispatch.enqueued", **plan.as_dict())
    return plan.as_dict()
