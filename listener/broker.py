"""Celery's Redis transport with an acknowledgement that cannot stall a worker.

kombu's Redis transport emulates acknowledgements: a delivered message sits in
an "unacked" hash in Redis and in the consumer's own table of deliveries,
which is what the prefetch limit counts.  Acknowledging removes it from Redis
first and from the table second — so when Redis cannot be reached at that
moment (a broker restart or a network drop just as a task finishes), kombu
raises before the second step, Celery logs "Couldn't ack …" and carries on,
and the delivery stays in the table for ever.  With a prefetch limit of one
(``-c 1``, ``worker_prefetch_multiplier: 1``) the worker then never asks the
broker for another message and never notices the broker is gone: it sits idle
until restarted while the queue grows.  Seen in ``tests/test_outage.py`` (a
broker cut right after a task finished; one run in three) and reported
upstream (celery/celery#8030, #9054, #10205, #10302).

:class:`Transport` frees the slot whatever Redis says.  The message itself is
not lost: it is still in Redis's unacked hash and comes back to the queue
after ``workers.visibility_timeout``, and every Listener task is idempotent
(see :mod:`listener.tasks`), so the price is one repeated, harmless run.  The
failure is still raised, so Celery still logs it, and the consumer's next
read finds the broken connection and reconnects as it does for any outage.

Used for ``redis://`` and ``rediss://`` broker URLs (``broker_transport`` in
:func:`listener.tasks.celery_config`); RabbitMQ acknowledges natively and
needs none of this.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import TRANSPORT_ALIASES, virtual
from kombu.transport import redis as kombu_redis

#: Broker URL schemes this transport serves.
SCHEMES = ("redis", "rediss")
#: What Celery's ``broker_transport`` setting names (an alias, so that the worker's
#: log says ``Connected to listener-redis://…``).
TRANSPORT = "listener-redis"


class QoS(kombu_redis.QoS):  # type: ignore[misc]
    """kombu's Redis QoS; the local delivery is released even when Redis fails."""

    def ack(self, delivery_tag: Any) -> None:
        try:
            self._remove_from_indices(delivery_tag).execute()
        finally:
            # virtual.QoS.ack: mark the delivery done, freeing its prefetch slot
            virtual.QoS.ack(self, delivery_tag)

    def reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        try:
            if requeue:
                self.restore_by_tag(delivery_tag, leftmost=True)
            else:
                self._remove_from_indices(delivery_tag).execute()
        finally:
            virtual.QoS.ack(self, delivery_tag)


class Channel(kombu_redis.Channel):  # type: ignore[misc]
    QoS = QoS


class Transport(kombu_redis.Transport):  # type: ignore[misc]
    Channel = Channel


TRANSPORT_ALIASES.setdefault(TRANSPORT, f"{__name__}:Transport")


def transport_for(broker_url: str) -> str | None:
    """The ``broker_transport`` for ``broker_url``: this module's for Redis, else
    ``None`` (kombu picks by the URL's scheme)."""
    scheme = broker_url.partition("://")[0].lower()
    return TRANSPORT if scheme in SCHEMES else None
