"""Alerts: know within minutes when something breaks, and why.

* :mod:`listener.alerts.detect` — spikes, negative shifts and term bursts over hourly
  counts against a seasonal baseline (pure);
* :mod:`listener.alerts.conditions` — failing, rate-limited and silent sources, failing
  sends (pure);
* :mod:`listener.alerts.store` — alerts in the database: de-duplicated by key, cool-down,
  acknowledge, resolve, list;
* :mod:`listener.alerts.notify` — each new alert sent once: webhook (Slack-compatible) and
  e-mail;
* :mod:`listener.alerts.evaluate` — the use-case run after every poll.

Kinds: ``spike``, ``negative_shift``, ``source_silent``, ``source_auth``,
``source_quota``, ``send_failing``; statuses: ``open``, ``acknowledged``, ``resolved``.
"""

from __future__ import annotations

#: every kind of alert (the ``kind`` of ``listener alerts --json``)
KINDS = (
    "spike",
    "negative_shift",
    "source_silent",
    "source_auth",
    "source_quota",
    "send_failing",
)
#: the kinds that make ``listener health`` fail while open
SOURCE_AND_SEND_KINDS = ("source_silent", "source_auth", "source_quota", "send_failing")
STATUSES = ("open", "acknowledged", "resolved")
